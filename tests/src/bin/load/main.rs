//! A bounded load run through the layer against the emulator on loopback, on any key store and
//! any number of app instances sharing it:
//!
//! 1. sign-ins: N complete sign-ins at C concurrent users, user `i` on instance `i % instances`;
//! 2. one chat each, on the next instance;
//! 3. signed-in requests: a warm-up of one `GET /whoami` per user on every instance, then M
//!    per user (the steady state), round-robin over the instances, each checked against the
//!    fingerprint of the key the emulator issued to that very user;
//! 4. revocations (database stores, two instances or more): a user's session revoked on
//!    instance A (by `/logout`, or by the store's `revoke_user` through `/__revoke-user`, in
//!    turn), then instance B asked until it refuses the copied cookie; the time from the
//!    revocation's answer to B's first refusal is the revocation latency.
//!
//! 5. chaos (`--chaos SECS`, database stores): the database cut for SECS seconds through the
//!    fault-injecting proxy while users keep making signed-in requests and signing in; every
//!    answer during the outage must be 200 (a cached key) or 503, no key may be issued and
//!    then lost, and everything must work again after it without a restart;
//! 6. rolling restart (`--rolling-restart`, two instances or more): each instance in turn is
//!    drained, stopped gracefully and started again while users keep making signed-in
//!    requests; no request may fail and every session must work on the new instances.
//!
//! 7. a flood (`--bogus-flood ADDRESSES`, instead of the phases above): made-up codes from that
//!    many loopback addresses (127.1.x.y) while 20 people sign in from 127.0.0.1; each must be
//!    signed in within 2 s.
//!
//! Zero errors and zero crossed keys are required. Reported: sign-ins/s, signed-in
//! requests/s, latencies, database calls per signed-in request and each instance's memory.
//!
//! ```text
//! cargo run --release -p modelgates-e2e --bin load -- --users 10000 --concurrency 100
//! cargo run --release -p modelgates-e2e --bin load -- --store postgres://… --instances 2 --cached
//! cargo run --release -p modelgates-e2e --bin load -- --store postgres://… --instances 2 --cached \
//!     --users 2000 --chaos 10 --rolling-restart
//! cargo run --release -p modelgates-e2e --bin load -- --bogus-flood 1000
//! ```
//!
//! The app servers (example-chat's app behind `ModelGatesAuth`, plus the routes of
//! `modelgates_e2e::child`) run in child processes, so their memory is measured alone; the
//! emulator and the simulated browsers run in this process.

mod disruptions;
mod flood;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use futures_util::StreamExt as _;
use modelgates_axum::CookieSecret;
use modelgates_e2e::child::{
    ServeArgs, Server, fingerprint, memory_kib, serve_until_stdin_closes, start_server,
};
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
    /// Signed-in requests per user, after the sign-ins.
    #[arg(long, default_value_t = 10)]
    requests: usize,
    /// App processes sharing the store, behind a round-robin in this program.
    #[arg(long, default_value_t = 1)]
    instances: usize,
    /// Sessions revoked on one instance and checked on the next (database stores, two
    /// instances or more).
    #[arg(long, default_value_t = 1000)]
    revocations: usize,
    /// Then cut the database (through a fault-injecting proxy) for this many seconds while
    /// users keep making signed-in requests and signing in (PostgreSQL and Redis stores).
    #[arg(long)]
    chaos: Option<u64>,
    /// Then restart the instances one at a time (drain, stop gracefully, start, rejoin) while
    /// users keep making signed-in requests.
    #[arg(long)]
    rolling_restart: bool,
    /// Instead of the phases above: made-up codes from this many source addresses
    /// (127.1.x.y) while 20 people sign in from 127.0.0.1, each within 2 s.
    #[arg(long, value_name = "ADDRESSES")]
    bogus_flood: Option<usize>,
    #[command(flatten)]
    server: ServeArgs,
}

fn main() -> ExitCode {
    let mut args = Args::parse();
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    if let Some(base_url) = args.server.serve.clone() {
        runtime.block_on(serve_until_stdin_closes(base_url, args.server));
        return ExitCode::SUCCESS;
    }
    if args.instances == 0 || (args.instances > 1 && !args.server.store.is_shared()) {
        eprintln!(
            "load: the {} store cannot be shared by {} instances",
            args.server.store.name(),
            args.instances
        );
        return ExitCode::FAILURE;
    }
    // Every instance opens every other's cookies: one secret for all.
    args.server.secret = Some(CookieSecret::generate().to_base64());
    runtime.block_on(drive(&args))
}

/// What one user measured.
struct UserRun {
    /// The instance the user signed in on.
    instance: usize,
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
        // A name ending in `.` is a prefix: the flow cookies are `modelgates_flow.<flow id>`.
        .find(|v| {
            v.starts_with(&format!("{name}=")) || (name.ends_with('.') && v.starts_with(name))
        })
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

async fn sign_in(http: &reqwest::Client, app: &str, instance: usize) -> Result<UserRun, String> {
    let started = Instant::now();
    let login = http
        .get(format!("{app}/login"))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let login_time = started.elapsed();
    let flow = cookie_pair(&login, "modelgates_flow.")?;
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
        instance,
        login: login_time,
        callback: callback_time,
        code,
        cookie: cookie_pair(&landed, "modelgates_key")?,
    })
}

async fn chat(
    http: &reqwest::Client,
    app: &str,
    user: &UserRun,
    index: usize,
) -> Result<(), String> {
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
    Ok(())
}

/// `GET /whoami` with `cookie`: the status and the key fingerprint it answered.
async fn whoami(
    http: &reqwest::Client,
    app: &str,
    cookie: &str,
) -> Result<(reqwest::StatusCode, String), String> {
    let response = http
        .get(format!("{app}/whoami"))
        .header("cookie", cookie)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    Ok((status, response.text().await.map_err(|e| e.to_string())?))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// p50 / p99 of unsorted durations, or "none".
fn p50_p99(mut durations: Vec<Duration>) -> String {
    if durations.is_empty() {
        return "none".into();
    }
    durations.sort();
    format!(
        "{} / {}",
        ms(percentile(&durations, 0.5)),
        ms(percentile(&durations, 0.99))
    )
}

/// Each instance's `/__stats`.
async fn stats(
    http: &reqwest::Client,
    servers: &[Server],
) -> Result<Vec<serde_json::Value>, String> {
    let mut all = Vec::new();
    for server in servers {
        all.push(
            http.get(format!("{}/__stats", server.url))
                .send()
                .await
                .map_err(|e| e.to_string())?
                .json()
                .await
                .map_err(|e| e.to_string())?,
        );
    }
    Ok(all)
}

/// Calls that reached the store's database, summed over the instances.
async fn store_calls(http: &reqwest::Client, servers: &[Server]) -> Result<u64, String> {
    let all = stats(http, servers).await?;
    Ok(all.iter().filter_map(|s| s["store_calls"].as_u64()).sum())
}

/// What the signed-in phase measured.
#[derive(Default)]
struct SignedIn {
    latencies: Vec<Duration>,
    errors: usize,
    crossed: usize,
    wall: Duration,
}

/// `requests` of `GET /whoami` per user, round-robin over the instances, each checked against
/// the key the emulator issued to that user.
async fn signed_in_phase(
    http: &reqwest::Client,
    apps: &[String],
    users: &[UserRun],
    issued: &std::collections::HashMap<String, String>,
    requests: usize,
    concurrency: usize,
) -> SignedIn {
    let started = Instant::now();
    let per_user: Vec<SignedIn> = futures_util::stream::iter(users.iter())
        .map(|user| async move {
            let mut run = SignedIn::default();
            let expected = issued.get(&user.code);
            for j in 0..requests {
                let app = &apps[(user.instance + j) % apps.len()];
                let sent = Instant::now();
                match whoami(http, app, &user.cookie).await {
                    Ok((reqwest::StatusCode::OK, seen)) => {
                        run.latencies.push(sent.elapsed());
                        if expected != Some(&seen) {
                            run.crossed += 1;
                        }
                    }
                    Ok((status, _)) => {
                        run.errors += 1;
                        eprintln!("signed-in request answered {status}");
                    }
                    Err(error) => {
                        run.errors += 1;
                        eprintln!("signed-in request failed: {error}");
                    }
                }
            }
            run
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let mut total = SignedIn {
        wall: started.elapsed(),
        ..SignedIn::default()
    };
    for run in per_user {
        total.latencies.extend(run.latencies);
        total.errors += run.errors;
        total.crossed += run.crossed;
    }
    total
}

/// How a session is revoked on instance A.
#[derive(Clone, Copy)]
enum Revocation {
    /// `POST /logout`: the store's `remove`, which is its `revoke`.
    Logout,
    /// The store's `revoke_user`, through the app's `/__revoke-user`.
    RevokeUser,
}

/// Revokes `user`'s session on `a` and asks `b` until it refuses the cookie: the time from the
/// revocation's answer to `b`'s first refusal.
async fn revoke_and_watch(
    http: &reqwest::Client,
    a: &str,
    b: &str,
    user: &UserRun,
    how: Revocation,
) -> Result<Duration, String> {
    let path = match how {
        Revocation::Logout => "/logout",
        Revocation::RevokeUser => "/__revoke-user",
    };
    let answer = http
        .post(format!("{a}{path}"))
        .header("cookie", &user.cookie)
        .header("origin", a)
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let revoked_at = Instant::now();
    if !(answer.status().is_success() || answer.status().is_redirection()) {
        return Err(format!("{path} answered {}", answer.status()));
    }
    // Bounded: a revocation that has not reached B after 10 s is an error.
    while revoked_at.elapsed() < Duration::from_secs(10) {
        let (status, _) = whoami(http, b, &user.cookie).await?;
        if status != reqwest::StatusCode::OK {
            return Ok(revoked_at.elapsed());
        }
    }
    Err(format!(
        "a session revoked by {path} on A still works on B after 10 s"
    ))
}

/// The revocation phase: `count` users, revoked on instance `i` and watched on `i + 1`, by
/// `/logout` and by `revoke_user` in turn.
async fn revocation_phase(
    http: &reqwest::Client,
    apps: &[String],
    users: &[UserRun],
    count: usize,
) -> (Vec<Duration>, Vec<Duration>, usize) {
    let results: Vec<(Revocation, Result<Duration, String>)> =
        futures_util::stream::iter(users.iter().take(count).enumerate())
            .map(|(i, user)| async move {
                let how = if i % 2 == 0 {
                    Revocation::Logout
                } else {
                    Revocation::RevokeUser
                };
                let a = &apps[user.instance];
                let b = &apps[(user.instance + 1) % apps.len()];
                (how, revoke_and_watch(http, a, b, user, how).await)
            })
            // A few at a time: each watch polls instance B as fast as it answers.
            .buffer_unordered(4)
            .collect()
            .await;
    let (mut logout, mut revoke_user, mut errors) = (Vec::new(), Vec::new(), 0);
    for (how, result) in results {
        match (how, result) {
            (Revocation::Logout, Ok(d)) => logout.push(d),
            (Revocation::RevokeUser, Ok(d)) => revoke_user.push(d),
            (_, Err(error)) => {
                errors += 1;
                eprintln!("revocation error: {error}");
            }
        }
    }
    (logout, revoke_user, errors)
}

async fn drive(args: &Args) -> ExitCode {
    let (users, concurrency) = (args.users, args.concurrency);
    let emulator = Emulator::start_auto_approve()
        .await
        .expect("start the emulator");
    // With --chaos the instances reach the database through a proxy this program can cut.
    let (proxy, server_args) = match args.chaos {
        Some(_) => match disruptions::proxied(&args.server).await {
            Some((proxy, through)) => (Some(proxy), through),
            None => {
                eprintln!("load: --chaos needs a PostgreSQL or Redis store");
                return ExitCode::FAILURE;
            }
        },
        None => (None, args.server.clone()),
    };
    let mut servers: Vec<Server> = (0..args.instances)
        .map(|_| start_server(emulator.base_url(), &server_args))
        .collect();
    let apps: Vec<String> = servers.iter().map(|s| s.url.clone()).collect();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(concurrency)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    // Warm up one sign-in per instance, so the baseline includes live connection pools.
    for (instance, app) in apps.iter().enumerate() {
        sign_in(&http, app, instance)
            .await
            .expect("a first sign-in works");
    }
    if let Some(addresses) = args.bogus_flood {
        return if flood::run(&http, &apps[0], &emulator, addresses, 20).await {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    let rss_before: Vec<u64> = servers.iter().map(|s| memory_kib(s.child.id()).0).collect();

    let started = Instant::now();
    let runs: Vec<Result<UserRun, String>> = futures_util::stream::iter(0..users)
        .map(|i| {
            let (http, instance) = (&http, i % apps.len());
            let app = &apps[instance];
            async move { sign_in(http, app, instance).await }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let sign_in_time = started.elapsed();
    let (ok, errors): (Vec<_>, Vec<_>) = runs.into_iter().partition(Result::is_ok);
    let ok: Vec<UserRun> = ok.into_iter().map(Result::unwrap).collect();
    for error in errors.iter().take(5) {
        eprintln!("sign-in error: {}", error.as_ref().err().unwrap());
    }

    let chat_errors = futures_util::stream::iter(ok.iter().enumerate())
        .map(|(i, user)| {
            let (http, app) = (&http, &apps[(user.instance + 1) % apps.len()]);
            async move { chat(http, app, user, i).await }
        })
        .buffer_unordered(concurrency)
        .filter_map(|result| async move { result.err() })
        .inspect(|error| eprintln!("chat error: {error}"))
        .count()
        .await;

    let issued: std::collections::HashMap<String, String> = emulator
        .issued_keys()
        .into_iter()
        .map(|record| (record.code, fingerprint(&record.key)))
        .collect();
    // Warm-up: one request per user on every instance, so that the measured phase is the
    // steady state (a cache's first load of a session on each instance happens here).
    let calls_at_start = store_calls(&http, &servers).await.expect("stats");
    let warm_up = signed_in_phase(&http, &apps, &ok, &issued, apps.len(), concurrency).await;
    let calls_before = store_calls(&http, &servers).await.expect("stats");
    let signed_in = signed_in_phase(&http, &apps, &ok, &issued, args.requests, concurrency).await;
    let calls_after = store_calls(&http, &servers).await.expect("stats");
    let memory: Vec<(u64, u64)> = servers.iter().map(|s| memory_kib(s.child.id())).collect();
    let cache_stats = stats(&http, &servers).await.expect("stats");

    let revocations = if args.server.store.revokes() && apps.len() > 1 {
        args.revocations.min(ok.len())
    } else {
        0
    };
    let (by_logout, by_revoke_user, revocation_errors) =
        revocation_phase(&http, &apps, &ok, revocations).await;

    let store = format!(
        "{}{}",
        args.server.store.name(),
        if args.server.cached { " (cached)" } else { "" }
    );
    println!("| measure | value |");
    println!("| --- | --- |");
    println!("| store, instances | {store}, {} |", apps.len());
    println!(
        "| sign-ins completed | {} of {users} ({concurrency} concurrent) |",
        ok.len()
    );
    println!("| sign-in errors | {} |", errors.len());
    println!("| chat errors | {chat_errors} |");
    println!(
        "| sign-ins per second | {:.0} |",
        ok.len() as f64 / sign_in_time.as_secs_f64()
    );
    println!(
        "| /login p50 / p99 | {} |",
        p50_p99(ok.iter().map(|u| u.login).collect())
    );
    println!(
        "| /callback p50 / p99 (includes the key exchange) | {} |",
        p50_p99(ok.iter().map(|u| u.callback).collect())
    );
    let warm_up_requests = warm_up.latencies.len();
    println!(
        "| warm-up requests (one per user per instance) | {warm_up_requests}, {} errors, {:.4} database calls per request |",
        warm_up.errors,
        (calls_before - calls_at_start) as f64 / warm_up_requests.max(1) as f64
    );
    let requests = signed_in.latencies.len();
    println!(
        "| signed-in requests | {requests} ({} per user), {} errors |",
        args.requests, signed_in.errors
    );
    println!(
        "| keys crossed between users | {} |",
        signed_in.crossed + warm_up.crossed
    );
    println!(
        "| signed-in requests per second | {:.0} |",
        requests as f64 / signed_in.wall.as_secs_f64()
    );
    println!(
        "| signed-in request p50 / p99 | {} |",
        p50_p99(signed_in.latencies)
    );
    println!(
        "| database calls per signed-in request (steady state) | {:.4} ({} calls) |",
        (calls_after - calls_before) as f64 / requests.max(1) as f64,
        calls_after - calls_before
    );
    if args.server.cached {
        for (i, stats) in cache_stats.iter().enumerate() {
            println!(
                "| instance {i} cache hits / misses (all phases) | {} / {} |",
                stats["cache_hits"], stats["cache_misses"]
            );
        }
    }
    for (i, (before, (after, peak))) in rss_before.iter().zip(&memory).enumerate() {
        println!(
            "| instance {i} RSS before / after (peak) | {before} KiB / {after} KiB ({peak} KiB) |"
        );
    }
    if revocations > 0 {
        println!(
            "| revocations refused on B: by logout, p50 / p99 / max | {} / {} ({} revocations) |",
            p50_p99(by_logout.clone()),
            ms(by_logout.iter().max().copied().unwrap_or_default()),
            by_logout.len()
        );
        println!(
            "| revocations refused on B: by revoke_user, p50 / p99 / max | {} / {} ({} revocations) |",
            p50_p99(by_revoke_user.clone()),
            ms(by_revoke_user.iter().max().copied().unwrap_or_default()),
            by_revoke_user.len()
        );
        println!("| revocation errors | {revocation_errors} |");
    }

    // The users whose sessions the revocation phase left alone.
    let live = &ok[revocations..];
    let chaos_passed = match (&proxy, args.chaos) {
        (Some(proxy), Some(secs)) => {
            let outage = Duration::from_secs(secs);
            disruptions::chaos(&http, &emulator, &apps, live, proxy, outage, concurrency).await
        }
        _ => true,
    };
    let restart_passed = if args.rolling_restart && args.server.store.is_shared() {
        disruptions::rolling_restart(
            &http,
            emulator.base_url(),
            &mut servers,
            &server_args,
            live,
            concurrency,
        )
        .await
    } else {
        true
    };

    let clean = chaos_passed
        && restart_passed
        && errors.is_empty()
        && chat_errors == 0
        && signed_in.errors + warm_up.errors == 0
        && signed_in.crossed + warm_up.crossed == 0
        && revocation_errors == 0
        && ok.len() == users;
    if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
