//! `modelgates-emulator`: serve a local ModelGates until stopped.
//!
//! ```text
//! cargo run -p modelgates-emulator -- --port 8090
//! ```

use std::time::Duration;

use clap::Parser;
use modelgates_emulator::Emulator;

/// A local ModelGates for development: the OAuth PKCE /auth page, the key exchange, and chat
/// completions, on 127.0.0.1.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, env = "MODELGATES_EMULATOR_PORT", default_value_t = 8090)]
    port: u16,
    /// Approve every /auth request at once instead of showing the consent page.
    #[arg(long)]
    auto_approve: bool,
    /// Seconds an issued code may be redeemed.
    #[arg(long, default_value_t = 600)]
    code_lifetime_secs: u64,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    // Logs go to stderr, coloured only on a terminal: no escape codes in files and pipes.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
    let emulator = Emulator::builder()
        .port(args.port)
        .auto_approve(args.auto_approve)
        .code_lifetime(Duration::from_secs(args.code_lifetime_secs))
        .start()
        .await?;
    println!("ModelGates emulator listening on {}", emulator.base_url());
    println!(
        "Use it with MODELGATES_BASE_URL={}; stop with Ctrl-C.",
        emulator.base_url()
    );
    tokio::signal::ctrl_c().await?;
    emulator.shutdown().await;
    Ok(())
}
