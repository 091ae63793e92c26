//! The app server of the measuring programs (`load`, `relay`), run as a child process of the
//! program itself so that its memory is measured alone: example-chat's app behind
//! `ModelGatesAuth`, plus three routes of its own:
//!
//! * `GET /whoami` answers the SHA-256 fingerprint of the signed-in key;
//! * `GET /__stats` answers how many calls reached the key store's database (counted below any
//!   cache, so a cache hit counts nothing);
//! * `POST /__revoke-user` revokes every session of the signed-in user with the database
//!   store's `revoke_user`, the way an app's admin action would;
//! * `POST /__passthrough`, outside the layer, sends its body and `Authorization` header to the
//!   emulator's chat completions and streams the answer back untouched: the least any relay
//!   does (one more HTTP hop each way, on the same server), the floor the `relay` program
//!   measures the relay against.

use std::future::Future;
use std::io::{BufRead as _, BufReader};
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use axum::serve::ListenerExt as _;
use modelgates_axum::config::ExchangeLimits;
use modelgates_axum::store::{
    CacheStats, CachingStore, CookieStore, FlowSpend, KeyStore, MemoryStore, RevocationFeed,
    SessionToken, StoreError, StoredKey, TokenProtection,
};
use modelgates_axum::{CookieSecret, ModelGatesAuth, ModelGatesConfig, ModelGatesKey};
use modelgates_stores::{PostgresRevocations, PostgresStore, RedisStore, SqliteStore};
use sha2::{Digest as _, Sha256};

/// Hex SHA-256 of a key, to compare keys without printing them.
#[must_use]
pub fn fingerprint(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Where the app servers keep keys: `cookie`, `memory`, `sqlite:PATH`, `postgres://…`,
/// `redis://…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSpec {
    /// The default `CookieStore`.
    Cookie,
    /// `MemoryStore` (one process only).
    Memory,
    /// `SqliteStore` on this URL (`sqlite:PATH`).
    Sqlite(String),
    /// `PostgresStore` on this URL.
    Postgres(String),
    /// `RedisStore` on this URL.
    Redis(String),
}

impl StoreSpec {
    /// Whether several processes can share the store.
    #[must_use]
    pub fn is_shared(&self) -> bool {
        !matches!(self, Self::Memory)
    }

    /// Whether the store can revoke a session so that a copied cookie stops working.
    #[must_use]
    pub fn revokes(&self) -> bool {
        matches!(self, Self::Sqlite(_) | Self::Postgres(_) | Self::Redis(_))
    }

    /// A name for reports, without credentials.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::Cookie => "cookie",
            Self::Memory => "memory",
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
            Self::Redis(_) => "redis",
        }
    }

    /// The database's URL, for the stores on a database server (PostgreSQL, Redis).
    #[must_use]
    pub fn server_url(&self) -> Option<&str> {
        match self {
            Self::Postgres(url) | Self::Redis(url) => Some(url),
            _ => None,
        }
    }

    /// The same store at another URL (the same database through a proxy, say).
    #[must_use]
    pub fn at(&self, url: String) -> Self {
        match self {
            Self::Postgres(_) => Self::Postgres(url),
            Self::Redis(_) => Self::Redis(url),
            other => other.clone(),
        }
    }

    fn to_arg(&self) -> String {
        match self {
            Self::Cookie => "cookie".into(),
            Self::Memory => "memory".into(),
            Self::Sqlite(url) | Self::Postgres(url) | Self::Redis(url) => url.clone(),
        }
    }
}

impl FromStr for StoreSpec {
    type Err = String;

    fn from_str(spec: &str) -> Result<Self, String> {
        Ok(match spec {
            "cookie" => Self::Cookie,
            "memory" => Self::Memory,
            url if url.starts_with("sqlite:") => Self::Sqlite(url.to_owned()),
            url if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Self::Postgres(url.to_owned())
            }
            url if url.starts_with("redis://") || url.starts_with("rediss://") => {
                Self::Redis(url.to_owned())
            }
            other => {
                return Err(format!(
                    "unknown store {other:?}: use cookie, memory, sqlite:PATH, postgres://… or redis://…"
                ));
            }
        })
    }
}

/// How the app server is set up; every instance of one run gets the same.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Internal: serve the app against this emulator and print its URL.
    #[arg(long, hide = true)]
    pub serve: Option<String>,
    /// Where keys live: cookie, memory, sqlite:PATH, postgres://… or redis://…
    #[arg(long, default_value = "cookie")]
    pub store: StoreSpec,
    /// Put the in-process cache (`CachingStore`) in front of a database store.
    #[arg(long)]
    pub cached: bool,
    /// Internal: the cookie secret every instance shares, base64.
    #[arg(long, hide = true)]
    pub secret: Option<String>,
}

/// Revokes every session of a user on the database store.
type RevokeUser =
    Arc<dyn Fn(String) -> Pin<Box<dyn Future<Output = Result<u64, String>> + Send>> + Send + Sync>;

/// A key store that counts the calls that reach it.
#[derive(Debug, Clone)]
struct Counted<S> {
    inner: S,
    calls: Arc<AtomicU64>,
}

impl<S> Counted<S> {
    fn new(inner: S, calls: &Arc<AtomicU64>) -> Self {
        Self {
            inner,
            calls: calls.clone(),
        }
    }
}

impl<S: KeyStore> KeyStore for Counted<S> {
    const TOKEN_PROTECTION: TokenProtection = S::TOKEN_PROTECTION;

    async fn save(&self, key: StoredKey) -> Result<SessionToken, StoreError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.inner.save(key).await
    }

    async fn load(&self, token: &SessionToken) -> Result<Option<StoredKey>, StoreError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.inner.load(token).await
    }

    async fn remove(&self, token: &SessionToken) -> Result<(), StoreError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.inner.remove(token).await
    }

    async fn spend_flow(&self, flow_id: &str, lives: Duration) -> Result<FlowSpend, StoreError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.inner.spend_flow(flow_id, lives).await
    }
}

fn revoker<S, F, Fut>(store: S, revoke: F) -> RevokeUser
where
    S: Clone + Send + Sync + 'static,
    F: Fn(S, String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<u64, StoreError>> + Send + 'static,
{
    Arc::new(move |user: String| {
        let revoked = revoke(store.clone(), user);
        Box::pin(async move { revoked.await.map_err(|e| e.to_string()) })
    })
}

impl<F: RevocationFeed> RevocationFeed for Counted<F> {
    type Subscription = F::Subscription;

    async fn subscribe(&self) -> Result<F::Subscription, StoreError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.inner.subscribe().await
    }

    async fn next(&self, subscription: &mut F::Subscription) -> Option<String> {
        self.inner.next(subscription).await
    }

    async fn publish(&self, message: &str) -> Result<(), StoreError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.inner.publish(message).await
    }
}

/// A cache's statistics.
type StatsOf = Arc<dyn Fn() -> CacheStats + Send + Sync>;

/// `store` behind a cache if `cache` (listening to `feed` when there is one), and its stats.
async fn maybe_cached<K: KeyStore + Clone, F: RevocationFeed>(
    store: K,
    feed: Option<F>,
    cache: bool,
) -> Result<(Either<K>, Option<StatsOf>), StoreError> {
    if !cache {
        return Ok((Either::Plain(store), None));
    }
    let cached = CachingStore::new(store);
    let cached = match feed {
        Some(feed) => cached.listen(feed).await?,
        // One machine: no feed; entries live the fallback TTL.
        None => cached,
    };
    let stats = cached.clone();
    Ok((
        Either::Cached(cached),
        Some(Arc::new(move || stats.stats())),
    ))
}

/// A store, cached or not.
#[derive(Debug, Clone)]
enum Either<K> {
    Plain(K),
    Cached(CachingStore<K>),
}

impl<K: KeyStore + Clone> KeyStore for Either<K> {
    const TOKEN_PROTECTION: TokenProtection = K::TOKEN_PROTECTION;

    async fn save(&self, key: StoredKey) -> Result<SessionToken, StoreError> {
        match self {
            Self::Plain(store) => store.save(key).await,
            Self::Cached(store) => store.save(key).await,
        }
    }

    async fn load(&self, token: &SessionToken) -> Result<Option<StoredKey>, StoreError> {
        match self {
            Self::Plain(store) => store.load(token).await,
            Self::Cached(store) => store.load(token).await,
        }
    }

    fn load_now(&self, token: &SessionToken) -> Option<Result<Option<StoredKey>, StoreError>> {
        match self {
            Self::Plain(store) => store.load_now(token),
            Self::Cached(store) => store.load_now(token),
        }
    }

    async fn spend_flow(&self, flow_id: &str, lives: Duration) -> Result<FlowSpend, StoreError> {
        match self {
            Self::Plain(store) => store.spend_flow(flow_id, lives).await,
            Self::Cached(store) => store.spend_flow(flow_id, lives).await,
        }
    }

    async fn remove(&self, token: &SessionToken) -> Result<(), StoreError> {
        match self {
            Self::Plain(store) => store.remove(token).await,
            Self::Cached(store) => store.remove(token).await,
        }
    }
}

/// `POST /__passthrough` against the emulator at `base_url` (see the module docs).
fn passthrough(base_url: &str) -> axum::routing::MethodRouter<example_chat::AppState> {
    let upstream = format!("{base_url}/api/v1/chat/completions");
    let http = reqwest::Client::new();
    post(
        move |headers: axum::http::HeaderMap, body: axum::body::Bytes| async move {
            let mut request = http.post(&upstream).body(body);
            for name in [
                axum::http::header::AUTHORIZATION,
                axum::http::header::CONTENT_TYPE,
            ] {
                if let Some(value) = headers.get(&name) {
                    request = request.header(name, value);
                }
            }
            let answer = request
                .send()
                .await
                .map_err(|error| (axum::http::StatusCode::BAD_GATEWAY, error.to_string()))?;
            let status = answer.status();
            let content_type = answer
                .headers()
                .get(axum::http::header::CONTENT_TYPE)
                .cloned();
            let mut response =
                axum::response::Response::new(axum::body::Body::from_stream(answer.bytes_stream()));
            *response.status_mut() = status;
            if let Some(content_type) = content_type {
                response
                    .headers_mut()
                    .insert(axum::http::header::CONTENT_TYPE, content_type);
            }
            Ok::<_, (axum::http::StatusCode, String)>(response)
        },
    )
}

/// The app with `store` behind the layer; `calls` counts what reached the database.
fn app<K: KeyStore>(
    base_url: &str,
    config: ModelGatesConfig,
    store: K,
    calls: Arc<AtomicU64>,
    revoke_user: Option<RevokeUser>,
    cache_stats: Option<StatsOf>,
) -> Router {
    let whoami = |key: ModelGatesKey| async move { fingerprint(key.api_key().expose_secret()) };
    let stats = move || {
        let calls = calls.load(Ordering::Relaxed);
        let cache = cache_stats.as_ref().map(|stats| stats());
        async move {
            let (hits, misses, heard) =
                cache.map_or((0, 0, 0), |c| (c.hits, c.misses, c.revocations_heard));
            format!(
                "{{\"store_calls\":{calls},\"cache_hits\":{hits},\"cache_misses\":{misses},\"revocations_heard\":{heard}}}"
            )
        }
    };
    let revoke = move |key: ModelGatesKey| {
        let revoke_user = revoke_user.clone();
        async move {
            let (Some(revoke_user), Some(user)) = (revoke_user, key.user_id()) else {
                return Err((
                    axum::http::StatusCode::NOT_IMPLEMENTED,
                    "no revocation".to_owned(),
                ));
            };
            revoke_user(user.to_owned())
                .await
                .map(|n| n.to_string())
                .map_err(|e| (axum::http::StatusCode::INTERNAL_SERVER_ERROR, e))
        }
    };
    example_chat::routes()
        .route("/whoami", get(whoami))
        .route("/__stats", get(stats))
        .route("/__revoke-user", post(revoke))
        .layer(ModelGatesAuth::new(config).with_store(store))
        .route("/__passthrough", passthrough(base_url))
        .with_state(example_chat::AppState::new(example_chat::DEFAULT_MODEL))
}

/// The app over a database store, counted (its feed too) and cached if asked.
async fn over_database<K: KeyStore + Clone, F: RevocationFeed>(
    base_url: &str,
    config: ModelGatesConfig,
    calls: Arc<AtomicU64>,
    store: K,
    feed: Option<F>,
    revoke: RevokeUser,
    cache: bool,
) -> Result<Router, StoreError> {
    let feed = feed.map(|feed| Counted::new(feed, &calls));
    let (store, stats) = maybe_cached(Counted::new(store, &calls), feed, cache).await?;
    Ok(app(base_url, config, store, calls, Some(revoke), stats))
}

/// The app for `args`, with its store connected, counted, and cached if asked.
async fn build(
    base_url: &str,
    config: ModelGatesConfig,
    args: &ServeArgs,
) -> Result<Router, StoreError> {
    let calls = Arc::new(AtomicU64::new(0));
    let cache = args.cached;
    match &args.store {
        StoreSpec::Cookie => Ok(app(base_url, config, CookieStore, calls, None, None)),
        StoreSpec::Memory => Ok(app(
            base_url,
            config,
            MemoryStore::default(),
            calls,
            None,
            None,
        )),
        StoreSpec::Sqlite(url) => {
            let store = SqliteStore::connect(url, &config).await?;
            let revoke = revoker(store.clone(), |s: SqliteStore, user| async move {
                s.revoke_user(&user, None).await
            });
            let no_feed = None::<PostgresRevocations>;
            over_database(base_url, config, calls, store, no_feed, revoke, cache).await
        }
        StoreSpec::Postgres(url) => {
            let store = PostgresStore::connect(url, &config).await?;
            let revoke = revoker(store.clone(), |s: PostgresStore, user| async move {
                s.revoke_user(&user, None).await
            });
            let feed = Some(store.revocations());
            over_database(base_url, config, calls, store, feed, revoke, cache).await
        }
        StoreSpec::Redis(url) => {
            let store = RedisStore::connect(url, &config).await?;
            let revoke = revoker(store.clone(), |s: RedisStore, user| async move {
                s.revoke_user(&user, None).await
            });
            let feed = Some(store.revocations());
            over_database(base_url, config, calls, store, feed, revoke, cache).await
        }
    }
}

/// The child: example-chat's app plus `/whoami`, `/__stats`, `/__revoke-user` and
/// `/__passthrough`, until stdin closes.
///
/// # Panics
///
/// When 127.0.0.1 cannot be bound, the secret is invalid or the store cannot be reached.
pub async fn serve_until_stdin_closes(base_url: String, args: ServeArgs) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let secret = match &args.secret {
        Some(encoded) => CookieSecret::from_base64(encoded).expect("a valid secret"),
        None => CookieSecret::generate(),
    };
    // The default bounds: they count failed exchanges only, so a load run's sign-ins (all
    // from 127.0.0.1) are never held, and a flood of made-up codes meets them as it would.
    let config = ModelGatesConfig::new(&url, secret)
        .with_base_url(&base_url)
        .with_exchange_limits(ExchangeLimits::default());
    let app = build(&base_url, config, &args)
        .await
        .expect("the key store is reachable");
    println!("URL {url}");
    // Stop when the driver closes our stdin (or dies): gracefully, as a rolling restart
    // stops an instance, finishing the requests under way.
    let stdin_closed = tokio::task::spawn_blocking(|| {
        let mut sink = String::new();
        while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {}
    });
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    // As example-chat's `main` serves: TCP_NODELAY, so that no event waits for an ACK.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = stdin_closed.await;
        })
        .await
        .unwrap();
}

/// Resident and peak memory of a process, in KiB, from /proc.
#[must_use]
pub fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The app server child process; stops when dropped.
#[derive(Debug)]
pub struct Server {
    /// The process.
    pub child: Child,
    /// Its URL.
    pub url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// Starts this very program with `--serve <base_url>` and the store options of `args`, and
/// reads the URL it prints.
///
/// # Panics
///
/// When the child cannot start or prints no URL.
#[must_use]
pub fn start_server(base_url: &str, args: &ServeArgs) -> Server {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.args(["--serve", base_url, "--store", &args.store.to_arg()]);
    if args.cached {
        command.arg("--cached");
    }
    if let Some(secret) = &args.secret {
        command.args(["--secret", secret]);
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the app server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("URL ")
        .expect("the server prints its URL")
        .to_owned();
    Server { child, url }
}
