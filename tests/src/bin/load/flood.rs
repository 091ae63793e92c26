//! `--bogus-flood ADDRESSES`: made-up codes from many source addresses (127.1.x.y, all on
//! loopback) while real people sign in from 127.0.0.1. Each flooding address loops: `/login`
//! for a genuine flow cookie, then its callback with a code of its own. The people must all
//! sign in, each within 2 s of starting, whatever the flood does.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use modelgates_emulator::Emulator;

use super::{cookie_pair, location, ms, p50_p99, sign_in};

/// How long the flood runs before the first person signs in.
const HEAD_START: Duration = Duration::from_secs(2);
/// How long a person may take to sign in, retries included.
const PATIENCE: Duration = Duration::from_secs(2);

/// What the flood's callbacks were answered.
#[derive(Default)]
struct Tally {
    sent: AtomicUsize,
    rejected: AtomicUsize,
    refused: AtomicUsize,
    /// 503 `busy`: the bound on exchanges in flight, refusing at once.
    busy: AtomicUsize,
    other: AtomicUsize,
}

/// The `i`-th flooding address: 127.1.0.1, 127.1.0.2, …
fn address(i: usize) -> IpAddr {
    let i = u32::try_from(i).expect("a bounded count");
    IpAddr::V4(Ipv4Addr::new(127, 1, (i / 250) as u8, (i % 250 + 1) as u8))
}

/// One made-up code from `http` (bound to its address).
async fn bogus(http: &reqwest::Client, app: &str, tally: &Tally) -> Result<(), String> {
    let login = http
        .get(format!("{app}/login"))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let flow = cookie_pair(&login, "modelgates_flow.")?;
    let auth = url::Url::parse(&location(&login)?).map_err(|e| e.to_string())?;
    let callback = auth
        .query_pairs()
        .find(|(name, _)| name == "callback_url")
        .map(|(_, value)| value.into_owned())
        .ok_or("no callback_url")?;
    let answer = http
        .get(format!("{callback}?code=made-up-code"))
        .header("cookie", flow)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| e.to_string())?;
    tally.sent.fetch_add(1, Ordering::Relaxed);
    let counter = match answer.status().as_u16() {
        400 => &tally.rejected,
        429 => &tally.refused,
        503 => &tally.busy,
        status => {
            if tally.other.load(Ordering::Relaxed) < 3 {
                eprintln!("flood: a made-up code answered {status}");
            }
            &tally.other
        }
    };
    counter.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// A person's sign-in from 127.0.0.1, tried again after a refusal: how long it took, and how
/// many tries were refused.
async fn person(http: &reqwest::Client, app: &str) -> (Option<Duration>, usize) {
    let started = Instant::now();
    let mut refused = 0;
    while started.elapsed() < PATIENCE {
        match sign_in(http, app, 0).await {
            Ok(_) => return (Some(started.elapsed()).filter(|t| *t <= PATIENCE), refused),
            Err(error) => {
                eprintln!("person: {error}");
                refused += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    (None, refused)
}

/// Runs the flood from `addresses` addresses against `app` while `people` people sign in one
/// after another; prints the figures. Whether every person signed in within [`PATIENCE`].
pub(crate) async fn run(
    http: &reqwest::Client,
    app: &str,
    emulator: &Emulator,
    addresses: usize,
    people: usize,
) -> bool {
    let flooders: Vec<reqwest::Client> = (0..addresses)
        .map(|i| {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .local_address(address(i))
                .timeout(Duration::from_secs(30))
                .build()
                .expect("a client")
        })
        .collect();
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let exchanges_before = emulator.exchange_count();
    let mut tasks = tokio::task::JoinSet::new();
    for flooder in flooders {
        let (app, tally, stop) = (app.to_owned(), tally.clone(), stop.clone());
        tasks.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if let Err(error) = bogus(&flooder, &app, &tally).await {
                    tally.other.fetch_add(1, Ordering::Relaxed);
                    if tally.other.load(Ordering::Relaxed) <= 3 {
                        eprintln!("flood: {error}");
                    }
                }
            }
        });
    }
    let flood_started = Instant::now();
    tokio::time::sleep(HEAD_START).await;
    let mut times = Vec::new();
    let (mut late, mut refused_tries) = (0, 0);
    for _ in 0..people {
        let (took, refused) = person(http, app).await;
        refused_tries += refused;
        match took {
            Some(took) => times.push(took),
            None => late += 1,
        }
    }
    stop.store(true, Ordering::Relaxed);
    while tasks.join_next().await.is_some() {}
    let flood_time = flood_started.elapsed();
    let sent = tally.sent.load(Ordering::Relaxed);
    println!("| measure | value |");
    println!("| --- | --- |");
    println!("| flooding addresses | {addresses} (127.1.x.y) |");
    println!(
        "| made-up codes sent | {sent} in {:.1} s ({:.0}/s) |",
        flood_time.as_secs_f64(),
        sent as f64 / flood_time.as_secs_f64()
    );
    println!(
        "| answered 400 (sent to ModelGates) / 429 (the bounds) / 503 (exchanges in flight) / other | {} / {} / {} / {} |",
        tally.rejected.load(Ordering::Relaxed),
        tally.refused.load(Ordering::Relaxed),
        tally.busy.load(Ordering::Relaxed),
        tally.other.load(Ordering::Relaxed)
    );
    println!(
        "| exchanges that reached ModelGates during the flood | {} |",
        emulator.exchange_count() - exchanges_before
    );
    println!(
        "| people signed in from 127.0.0.1 within {} | {} of {people} |",
        ms(PATIENCE),
        times.len()
    );
    println!(
        "| their sign-in time p50 / max | {} / {} |",
        p50_p99(times.clone()).split(" / ").next().unwrap_or("none"),
        ms(times.iter().max().copied().unwrap_or_default())
    );
    println!("| their tries refused | {refused_tries} |");
    late == 0 && tally.other.load(Ordering::Relaxed) == 0
}
