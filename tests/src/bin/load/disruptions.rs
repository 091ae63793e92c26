//! The load run's disruptions: the database cut under load (`--chaos`), and a rolling restart
//! of the instances under load (`--rolling-restart`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use modelgates_e2e::child::{ServeArgs, Server, start_server};
use modelgates_e2e::proxy::FaultProxy;
use modelgates_emulator::Emulator;

use crate::{UserRun, sign_in, whoami};

/// The instances a load balancer sends requests to: their URLs, which are draining, and how
/// many requests each has in flight.
pub(crate) struct Balancer {
    urls: RwLock<Vec<String>>,
    draining: Vec<AtomicBool>,
    in_flight: Vec<AtomicUsize>,
}

/// A request in flight on an instance; counted down when dropped.
struct InFlight<'b>(&'b AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Balancer {
    pub(crate) fn new(urls: Vec<String>) -> Self {
        let count = urls.len();
        Self {
            urls: RwLock::new(urls),
            draining: (0..count).map(|_| AtomicBool::new(false)).collect(),
            in_flight: (0..count).map(|_| AtomicUsize::new(0)).collect(),
        }
    }

    /// The first instance from `preferred` on that is not draining, counted in flight.
    fn pick(&self, preferred: usize) -> (String, InFlight<'_>) {
        let urls = self.urls.read().unwrap_or_else(PoisonError::into_inner);
        let count = urls.len();
        let index = (0..count)
            .map(|step| (preferred + step) % count)
            .find(|&i| !self.draining[i].load(Ordering::SeqCst))
            .unwrap_or(preferred % count);
        self.in_flight[index].fetch_add(1, Ordering::SeqCst);
        // Checked again now that it is counted: a drain that began meanwhile waits for us.
        (urls[index].clone(), InFlight(&self.in_flight[index]))
    }

    fn urls(&self) -> Vec<String> {
        self.urls
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// What the users saw: answers by status (or transport error), per window of the run.
#[derive(Default)]
struct Tally {
    by_window: Mutex<BTreeMap<&'static str, BTreeMap<String, usize>>>,
}

impl Tally {
    fn add(&self, window: &'static str, outcome: String) {
        *self
            .by_window
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(window)
            .or_default()
            .entry(outcome)
            .or_default() += 1;
    }

    fn window(&self, window: &'static str) -> BTreeMap<String, usize> {
        self.by_window
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(window)
            .cloned()
            .unwrap_or_default()
    }
}

fn outcome(result: &Result<(reqwest::StatusCode, String), String>) -> String {
    match result {
        Ok((status, _)) => status.as_u16().to_string(),
        Err(_) => "transport error".to_owned(),
    }
}

fn summary(counts: &BTreeMap<String, usize>) -> String {
    if counts.is_empty() {
        return "none".to_owned();
    }
    counts
        .iter()
        .map(|(outcome, count)| format!("{outcome}: {count}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Users making signed-in requests (`workers` at a time) until `stop`, each answer tallied
/// in the window `window()` names at the time it came.
async fn keep_requesting(
    http: &reqwest::Client,
    balancer: &Balancer,
    users: &[UserRun],
    workers: usize,
    stop: &AtomicBool,
    tally: &Tally,
    window: impl Fn() -> &'static str + Sync,
) {
    futures_util::stream::iter(0..workers)
        .for_each_concurrent(workers, |worker| {
            let window = &window;
            async move {
                let mut turn = worker;
                while !stop.load(Ordering::SeqCst) {
                    let user = &users[turn % users.len()];
                    let (app, in_flight) = balancer.pick(turn);
                    let result = whoami(http, &app, &user.cookie).await;
                    drop(in_flight);
                    tally.add(window(), outcome(&result));
                    turn += workers;
                }
            }
        })
        .await;
}

/// The database behind a fault-injecting proxy: the proxy, and `server` pointed at it.
pub(crate) async fn proxied(server: &ServeArgs) -> Option<(FaultProxy, ServeArgs)> {
    let url = server.store.server_url()?;
    let mut parsed = url::Url::parse(url).ok()?;
    let port = parsed
        .port()
        .unwrap_or(if parsed.scheme().starts_with("postgres") {
            5432
        } else {
            6379
        });
    let target = tokio::net::lookup_host((parsed.host_str()?, port))
        .await
        .ok()?
        .next()?;
    let proxy = FaultProxy::start(target).await;
    parsed.set_host(Some("127.0.0.1")).ok()?;
    parsed.set_port(Some(proxy.addr().port())).ok()?;
    let mut through = server.clone();
    through.store = server.store.at(parsed.to_string());
    Some((proxy, through))
}

/// The chaos phase: `outage` of database cut in the middle of signed-in requests and
/// sign-ins. Whether it passed (only 200 and 503 during the outage, no key lost, recovery).
pub(crate) async fn chaos(
    http: &reqwest::Client,
    emulator: &Emulator,
    apps: &[String],
    users: &[UserRun],
    proxy: &FaultProxy,
    outage: Duration,
    concurrency: usize,
) -> bool {
    let balancer = Balancer::new(apps.to_vec());
    let tally = Tally::default();
    let stop = AtomicBool::new(false);
    // 0: before the cut, 1: the outage, 2: after it.
    let window_now = AtomicUsize::new(0);
    let window = || ["before", "outage", "after"][window_now.load(Ordering::SeqCst)];
    let exchanges_before = emulator.exchange_count();
    let signed_in = AtomicUsize::new(0);
    let recovered_after = Mutex::new(None::<Duration>);
    let sign_ins = async {
        let mut i = 0;
        while !stop.load(Ordering::SeqCst) {
            let instance = i % apps.len();
            let result = sign_in(http, &apps[instance], instance).await;
            let seen = match &result {
                Ok(_) => {
                    signed_in.fetch_add(1, Ordering::SeqCst);
                    "sign-in 303".to_owned()
                }
                Err(error) => format!("sign-in {error}"),
            };
            tally.add(window(), seen);
            i += 1;
        }
    };
    let requests = keep_requesting(http, &balancer, users, concurrency, &stop, &tally, window);
    let script = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        proxy.refuse();
        window_now.store(1, Ordering::SeqCst);
        tokio::time::sleep(outage).await;
        proxy.restore();
        let restored = Instant::now();
        window_now.store(2, Ordering::SeqCst);
        // Recovered: every user's request answered 200 on every instance, in one sweep.
        loop {
            let failures = futures_util::stream::iter(users.iter().take(200))
                .map(|user| async move {
                    let mut failed = false;
                    for app in apps {
                        let answer = whoami(http, app, &user.cookie).await;
                        failed |= !matches!(answer, Ok((reqwest::StatusCode::OK, _)));
                    }
                    failed
                })
                .buffer_unordered(16)
                .filter(|failed| std::future::ready(*failed))
                .count()
                .await;
            if failures == 0 {
                *recovered_after.lock().unwrap() = Some(restored.elapsed());
                break;
            }
            if restored.elapsed() > Duration::from_secs(60) {
                break;
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        stop.store(true, Ordering::SeqCst);
    };
    tokio::join!(sign_ins, requests, script);

    let recovery = *recovered_after.lock().unwrap();
    let issued = emulator.exchange_count() - exchanges_before;
    let kept = signed_in.load(Ordering::SeqCst);
    println!(
        "| chaos: database cut for | {} s, through the fault proxy |",
        outage.as_secs()
    );
    for name in ["before", "outage", "after"] {
        println!(
            "| chaos: answers {name} the cut | {} |",
            summary(&tally.window(name))
        );
    }
    println!(
        "| chaos: keys issued / kept / lost | {issued} / {kept} / {} |",
        issued.saturating_sub(kept)
    );
    println!(
        "| chaos: recovery (store back to a sweep of 200 sessions on every instance all answered 200) | {} |",
        recovery.map_or("not within 60 s".to_owned(), |took| format!(
            "{} ms",
            took.as_millis()
        ))
    );
    let outage_answers = tally.window("outage");
    let only_expected = outage_answers.keys().all(|outcome| {
        ["200", "503", "sign-in 303"].contains(&outcome.as_str()) || outcome.contains("503")
    });
    only_expected && issued == kept && recovery.is_some()
}

/// The rolling-restart phase: each instance drained, stopped gracefully, started again and
/// put back, while users keep making signed-in requests; then every session checked on every
/// new instance. Whether no request failed and no session was lost.
pub(crate) async fn rolling_restart(
    http: &reqwest::Client,
    base_url: &str,
    servers: &mut [Server],
    server_args: &ServeArgs,
    users: &[UserRun],
    concurrency: usize,
) -> bool {
    let balancer = Arc::new(Balancer::new(
        servers.iter().map(|s| s.url.clone()).collect(),
    ));
    let tally = Tally::default();
    let stop = AtomicBool::new(false);
    let requests = keep_requesting(
        http,
        &balancer,
        users,
        concurrency,
        &stop,
        &tally,
        || "during",
    );
    let restarts = async {
        let mut took = Vec::new();
        for (index, server) in servers.iter_mut().enumerate() {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let started = Instant::now();
            balancer.draining[index].store(true, Ordering::SeqCst);
            while balancer.in_flight[index].load(Ordering::SeqCst) > 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            let old = std::mem::replace(server, {
                let (base_url, args) = (base_url.to_owned(), server_args.clone());
                tokio::task::spawn_blocking(move || start_server(&base_url, &args))
                    .await
                    .expect("start an instance")
            });
            let new_url = server.url.clone();
            // Stop the old one gracefully (its stdin closes; drop waits for it to exit).
            tokio::task::spawn_blocking(move || drop(old))
                .await
                .expect("stop an instance");
            balancer.urls.write().unwrap()[index] = new_url;
            balancer.draining[index].store(false, Ordering::SeqCst);
            took.push(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        stop.store(true, Ordering::SeqCst);
        took
    };
    let ((), took) = tokio::join!(requests, restarts);
    let during = tally.window("during");
    let failed: usize = during
        .iter()
        .filter(|(outcome, _)| outcome.as_str() != "200")
        .map(|(_, count)| count)
        .sum();
    let lost = futures_util::stream::iter(users.iter())
        .map(|user| {
            let urls = balancer.urls();
            async move {
                for app in &urls {
                    if !matches!(
                        whoami(http, app, &user.cookie).await,
                        Ok((reqwest::StatusCode::OK, _))
                    ) {
                        return 1;
                    }
                }
                0
            }
        })
        .buffer_unordered(concurrency)
        .fold(0, |sum, lost| async move { sum + lost })
        .await;
    println!(
        "| rolling restart: instances restarted, each (drain, stop, start) | {} in turn: {} |",
        took.len(),
        took.iter()
            .map(|t| format!("{} ms", t.as_millis()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "| rolling restart: signed-in answers meanwhile | {} |",
        summary(&during)
    );
    println!(
        "| rolling restart: sessions lost (checked on every new instance) | {lost} of {} |",
        users.len()
    );
    failed == 0 && lost == 0
}
