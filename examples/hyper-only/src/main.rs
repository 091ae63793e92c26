//! `cargo run -p example-hyper-only`: the app on 127.0.0.1:3001, against the embedded
//! ModelGates emulator (press Approve on its consent page).

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let emulator = modelgates_emulator::Emulator::builder().start().await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3001").await?;
    let secret = modelgates_oauth_core::random::random_token::<48>();
    let app = example_hyper_only::App::new(
        "http://localhost:3001",
        emulator.base_url(),
        secret.as_bytes(),
    )?;
    println!("ModelGates emulator: {}", emulator.base_url());
    println!("App: http://localhost:3001");
    example_hyper_only::serve(listener, app).await;
    Ok(())
}
