//! Time to first token, relayed through example-chat versus straight from the emulator, and
//! the relay's memory per open stream. Bounded: a fixed number of requests, on loopback.
//!
//! ```text
//! cargo run --release -p modelgates-e2e --bin relay -- --requests 500 --streams 200
//! ```
//!
//! The app runs in a child process (so its memory is measured alone); the emulator and the
//! client run in this one. "First token" is the first chunk carrying text: a `content` delta
//! straight from the emulator, a `delta` event through the app. Each request is a fresh
//! completion, read to its end; connections are pooled, as a browser's would be.
//!
//! A third path measures the floor: the same completion through the app's `/__passthrough`,
//! which forwards the request and streams the answer back untouched (no layer, no parsing, no
//! re-encoding): what one more HTTP hop costs on this machine, which no relay goes below.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use modelgates_e2e::child::{ServeArgs, memory_kib, serve_until_stdin_closes, start_server};
use modelgates_emulator::{Emulator, Endpoint, Fault};

#[derive(Parser, Debug)]
#[command(about = "Measure the SSE relay's time to first token and memory per stream")]
struct Args {
    /// Completions timed on each path.
    #[arg(long, default_value_t = 500)]
    requests: usize,
    /// Relayed streams held open at once for the memory figure.
    #[arg(long, default_value_t = 200)]
    streams: usize,
    #[command(flatten)]
    server: ServeArgs,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    if let Some(base_url) = args.server.serve.clone() {
        runtime.block_on(serve_until_stdin_closes(base_url, args.server));
        return ExitCode::SUCCESS;
    }
    match runtime.block_on(measure(args.requests, args.streams, &args.server)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("relay: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Reads `response` until `marker` appears; the time since `started`.
async fn first(
    mut response: reqwest::Response,
    marker: &str,
    started: Instant,
) -> Result<(Duration, reqwest::Response), String> {
    let mut seen = String::new();
    while !seen.contains(marker) {
        let chunk = response
            .chunk()
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the stream ended before its first token")?;
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    Ok((started.elapsed(), response))
}

/// The time to the first token of `response` (see [`first`]); the rest is read to its end, as
/// a browser reads a reply, so that no path leaves a broken connection behind for the next.
async fn timed(
    response: reqwest::Response,
    marker: &str,
    started: Instant,
) -> Result<Duration, String> {
    let (elapsed, mut response) = first(response, marker, started).await?;
    while response.chunk().await.map_err(|e| e.to_string())?.is_some() {}
    Ok(elapsed)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index]
}

fn report(name: &str, mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    let (p50, p99) = (percentile(&samples, 0.5), percentile(&samples, 0.99));
    println!(
        "{name:>8}: p50 {:.3} ms, p99 {:.3} ms over {} completions",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        samples.len()
    );
    p50
}

/// A client signed in to the app at `app` (a session of its own, keeping its cookie).
async fn signed_in(app: &str, emulator: &Emulator) -> Result<reqwest::Client, String> {
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    let login = http
        .get(format!("{app}/login"))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let auth = login
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .ok_or("no redirect to /auth")?
        .to_owned();
    let callback = emulator.approve(&auth).map_err(|e| e.to_string())?;
    http.get(format!(
        "{app}{}?{}",
        callback.path(),
        callback.query().unwrap_or("")
    ))
    .send()
    .await
    .map_err(|e| e.to_string())?;
    Ok(http)
}

/// A relayed streamed chat through the app, sent by `http`.
fn relayed(http: &reqwest::Client, app: &str) -> reqwest::RequestBuilder {
    http.post(format!("{app}/chat"))
        .header("accept", "text/event-stream")
        .form(&[("message", "time to first token")])
}

async fn measure(requests: usize, streams: usize, server: &ServeArgs) -> Result<(), String> {
    let emulator = Emulator::start_auto_approve()
        .await
        .map_err(|e| e.to_string())?;
    let server = start_server(emulator.base_url(), server);
    let http = signed_in(&server.url, &emulator).await?;
    let key = emulator.issued_keys().pop().ok_or("no key issued")?.key;

    let completion = |url: String| {
        http.post(url).bearer_auth(&key).json(&serde_json::json!({
            "model": "openai/gpt-5.2",
            "stream": true,
            "messages": [{"role": "user", "content": "time to first token"}]
        }))
    };
    let direct = || completion(format!("{}/api/v1/chat/completions", emulator.base_url()));
    let passthrough = || completion(format!("{}/__passthrough", server.url));

    let mut samples = [Vec::new(), Vec::new(), Vec::new()];
    // Interleaved, so all paths see the same machine; the first 20 of each warm up.
    for round in 0..requests + 20 {
        let started = Instant::now();
        let response = direct().send().await.map_err(|e| e.to_string())?;
        let direct_elapsed = timed(response, "\"content\"", started).await?;
        let started = Instant::now();
        let response = passthrough().send().await.map_err(|e| e.to_string())?;
        let passed_elapsed = timed(response, "\"content\"", started).await?;
        let started = Instant::now();
        let response = relayed(&http, &server.url)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let relay_elapsed = timed(response, "\"delta\"", started).await?;
        if round >= 20 {
            for (kept, elapsed) in
                samples
                    .iter_mut()
                    .zip([direct_elapsed, passed_elapsed, relay_elapsed])
            {
                kept.push(elapsed);
            }
        }
    }
    let [direct_samples, passed_samples, relayed_samples] = samples;
    let direct_p50 = report("direct", direct_samples);
    let passed_p50 = report("passed", passed_samples);
    let relayed_p50 = report("relayed", relayed_samples);
    let over = |p50: Duration, base: Duration| (p50.as_secs_f64() - base.as_secs_f64()) * 1e3;
    println!(
        "relay adds {:.3} ms at p50; a bare pass-through (the floor) adds {:.3} ms; the relay's own \
         part: {:.3} ms",
        over(relayed_p50, direct_p50),
        over(passed_p50, direct_p50),
        over(relayed_p50, passed_p50),
    );

    // Memory: hold `streams` relayed streams open (the emulator stalls each after its first
    // token) and compare the app's resident memory before and after. Each stream is another
    // person's (a session holds at most 8 streams, `with_max_streams_per_session`); they sign
    // in before the baseline is read.
    let mut people = Vec::with_capacity(streams);
    for _ in 0..streams {
        people.push(signed_in(&server.url, &emulator).await?);
    }
    emulator.inject(Endpoint::Chat, Fault::StallStream);
    let pid = server.child.id();
    let (before, _) = memory_kib(pid);
    let mut open = Vec::with_capacity(streams);
    for person in &people {
        let response = relayed(person, &server.url)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let (_, response) = first(response, "\"delta\"", Instant::now()).await?;
        open.push(response);
    }
    let (during, peak) = memory_kib(pid);
    drop(open);
    emulator.clear_faults();
    #[allow(clippy::cast_precision_loss)]
    let per_stream = (during.saturating_sub(before)) as f64 / streams as f64;
    println!(
        "memory: {before} KiB before, {during} KiB with {streams} open streams (peak {peak} KiB): \
         {per_stream:.1} KiB per open stream"
    );
    Ok(())
}
