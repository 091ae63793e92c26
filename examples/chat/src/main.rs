//! `cargo run -p example-chat`: the chat app, on the embedded ModelGates emulator unless
//! `MODELGATES_BASE_URL` is set. See the crate documentation for every variable.

#[tokio::main]
async fn main() {
    // Logs go to stderr, coloured only on a terminal: no escape codes in files and pipes.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let result = match example_chat::Settings::from_env() {
        Ok(settings) => example_chat::run(settings).await,
        Err(message) => Err(message.into()),
    };
    if let Err(error) = result {
        eprintln!("example-chat: {error}");
        std::process::exit(1);
    }
}
