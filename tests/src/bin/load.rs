//! A bounded load run: N complete sign-ins at C concurrent users through the layer against the
//! emulator on loopback, then one chat each. Zero errors and zero crossed keys are required;
//! throughput, /login and /callback latency, and the server's memory are reported.
//!
//! ```text
//! cargo run --release -p modelgates-e2e --bin load -- --users 10000 --concurrency 100
//! ```
//!
//! The app server (example-chat's app behind `ModelGatesAuth`, plus a `/whoami` route that
//! answers the SHA-256 fingerprint of the signed-in key) runs in a child process, so its memory
//! is measured alone; the emulator and the simulated browsers run in this process.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use futures_util::StreamExt as _;
use modelgates_e2e::child::{fingerprint, memory_kib, serve_until_stdin_closes, start_server};
use modelgates_emulator::Emulator;

#[derive(Parser, Debug)]
#[command(about = "Load-test sign-ins through ModelGatesAuth against the emulator on loopback")]
struct Args {
    /// Complete sign-ins to run.
    #[arg(long, default_value_t = 10_000)]
    users: usize,
    /// Users in flight at once.
    #[arg(long, default_value_t = 100)]
    concurrency: usize,
    /// Internal: serve the app against this emulator and print its URL.
    #[arg(long, hide = true)]
    serve: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    match args.serve {
        Some(base_url) => {
            runtime.block_on(serve_until_stdin_closes(base_url));
            ExitCode::SUCCESS
        }
        None => runtime.block_on(drive(args.users, args.concurrency)),
    }
}

/// What one user measured.
struct UserRun {
    login: Duration,
    callback: Duration,
    code: String,
    cookie: String,
}

fn cookie_pair(response: &reqwest::Response, name: &str) -> Result<String, String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .and_then(|v| v.split(';').next())
        .map(str::to_owned)
        .ok_or_else(|| format!("no {name} cookie (status {})", response.status()))
}

fn location(response: &reqwest::Response) -> Result<String, String> {
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| format!("no Location (status {})", response.status()))
}

async fn sign_in(http: &reqwest::Client, app: &str) -> Result<UserRun, String> {
    let started = Instant::now();
    let login = http
        .get(format!("{app}/login"))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let login_time = started.elapsed();
    let flow = cookie_pair(&login, "modelgates_flow")?;
    let approved = http
        .get(location(&login)?)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let callback_url = location(&approved)?;
    let code = url::Url::parse(&callback_url)
        .map_err(|e| e.to_string())?
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .ok_or("no code")?;
    let started = Instant::now();
    let landed = http
        .get(&callback_url)
        .header("cookie", flow)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let callback_time = started.elapsed();
    if landed.status() != reqwest::StatusCode::SEE_OTHER {
        return Err(format!("callback answered {}", landed.status()));
    }
    Ok(UserRun {
        login: login_time,
        callback: callback_time,
        code,
        cookie: cookie_pair(&landed, "modelgates_key")?,
    })
}

async fn chat_and_check(
    http: &reqwest::Client,
    app: &str,
    user: &UserRun,
    index: usize,
) -> Result<String, String> {
    let message = format!("user {index}");
    let reply = http
        .post(format!("{app}/chat"))
        .header("cookie", &user.cookie)
        .form(&[("message", &message)])
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if reply.status() != reqwest::StatusCode::OK {
        return Err(format!("chat answered {}", reply.status()));
    }
    let page = reply.text().await.map_err(|e| e.to_string())?;
    if !page.contains(&format!("You said: {message}</div>")) {
        return Err("the chat reply is not this user's".into());
    }
    let whoami = http
        .get(format!("{app}/whoami"))
        .header("cookie", &user.cookie)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    whoami.text().await.map_err(|e| e.to_string())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

async fn drive(users: usize, concurrency: usize) -> ExitCode {
    let emulator = Emulator::start_auto_approve()
        .await
        .expect("start the emulator");
    let server = start_server(emulator.base_url());
    let pid = server.child.id();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(concurrency)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    // Warm up one sign-in so the baseline includes a live connection pool and TLS-free client.
    sign_in(&http, &server.url)
        .await
        .expect("a first sign-in works");
    let (rss_before, _) = memory_kib(pid);

    let app = Arc::new(server.url.clone());
    let started = Instant::now();
    let runs: Vec<Result<UserRun, String>> = futures_util::stream::iter(0..users)
        .map(|_| {
            let (http, app) = (http.clone(), app.clone());
            async move { sign_in(&http, &app).await }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let sign_in_time = started.elapsed();
    let (ok, errors): (Vec<_>, Vec<_>) = runs.into_iter().partition(Result::is_ok);
    let ok: Vec<UserRun> = ok.into_iter().map(Result::unwrap).collect();

    let chats: Vec<(usize, Result<String, String>)> =
        futures_util::stream::iter(ok.iter().enumerate())
            .map(|(i, user)| {
                let (http, app) = (http.clone(), app.clone());
                async move { (i, chat_and_check(&http, &app, user, i).await) }
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
    let (rss_after, peak) = memory_kib(pid);

    let issued: std::collections::HashMap<String, String> = emulator
        .issued_keys()
        .into_iter()
        .map(|record| (record.code, fingerprint(&record.key)))
        .collect();
    let mut chat_errors = 0;
    let mut crossed = 0;
    for (i, result) in &chats {
        match result {
            Ok(seen) if issued.get(&ok[*i].code) == Some(seen) => {}
            Ok(_) => crossed += 1,
            Err(error) => {
                chat_errors += 1;
                eprintln!("chat error: {error}");
            }
        }
    }
    for error in errors.iter().take(5) {
        eprintln!("sign-in error: {}", error.as_ref().err().unwrap());
    }

    let mut logins: Vec<Duration> = ok.iter().map(|u| u.login).collect();
    let mut callbacks: Vec<Duration> = ok.iter().map(|u| u.callback).collect();
    logins.sort();
    callbacks.sort();
    let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1000.0);
    println!("| measure | value |");
    println!("| --- | --- |");
    println!(
        "| sign-ins completed | {} of {users} ({concurrency} concurrent) |",
        ok.len()
    );
    println!("| sign-in errors | {} |", errors.len());
    println!("| chat errors | {chat_errors} |");
    println!("| keys crossed between users | {crossed} |");
    println!(
        "| sign-ins per second | {:.0} |",
        ok.len() as f64 / sign_in_time.as_secs_f64()
    );
    println!(
        "| sign-in phase wall time | {:.2} s |",
        sign_in_time.as_secs_f64()
    );
    if !logins.is_empty() {
        println!(
            "| /login p50 / p99 | {} / {} |",
            ms(percentile(&logins, 0.5)),
            ms(percentile(&logins, 0.99))
        );
        println!(
            "| /callback p50 / p99 (includes the key exchange) | {} / {} |",
            ms(percentile(&callbacks, 0.5)),
            ms(percentile(&callbacks, 0.99))
        );
    }
    println!(
        "| server RSS before / after | {rss_before} KiB / {rss_after} KiB (peak {peak} KiB) |"
    );

    if errors.is_empty() && chat_errors == 0 && crossed == 0 && ok.len() == users {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
