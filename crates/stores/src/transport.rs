//! Which database connections may carry keys in clear text.
//!
//! The rules, applied by `connect` before any connection is made, to the options the database
//! client will actually use (not to the URL's text, which sqlx and the redis crate read in
//! ways a text check would miss: the last `sslmode` wins, `ssl-mode` is the same setting,
//! `host=` and `hostaddr=` in the query replace the URL's host, an empty host comes from
//! `PGHOST`, `PGSSLMODE` sets the mode, `valkey://` is `redis://`):
//!
//! * A database on this machine (`localhost`, `127.0.0.0/8`, `::1`, or a Unix socket) may be
//!   reached without TLS.
//! * Any other PostgreSQL host needs the TLS mode `require`, `verify-ca` or `verify-full`.
//!   sqlx's default, `prefer`, falls back to plaintext in silence, so it is refused, as is
//!   `allow`; `disable` is the explicit request for plaintext and is accepted, with a warning
//!   in the log. A URL that sets the TLS mode more than once with different values
//!   (`sslmode` and `ssl-mode` included) is refused as ambiguous, whatever the values.
//! * Any other Redis or Valkey host needs TLS (`rediss://`, `valkeys://`) with the
//!   certificate checked (no `#insecure`); plaintext (`redis://`, `valkey://`) is accepted
//!   only with the explicit request `plaintext=true` in the query (removed before the URL
//!   reaches the client), with a warning in the log.

use std::time::Duration;

use url::Url;

/// How long the network stores wait for a connection or an answer before they report the
/// store as failing (a request is then answered 503 at once, rather than after sqlx's default
/// 30 s of retries against a stopped server).
pub(crate) const DATABASE_TIMEOUT: Duration = Duration::from_secs(3);

use modelgates_axum::store::StoreError;
use modelgates_oauth_core::__private::is_loopback_host;

fn refused(what: &str, fix: &str) -> StoreError {
    StoreError::new(format!(
        "{what} would be reached without TLS, and keys would cross the network in clear text: {fix}"
    ))
}

fn parse(raw: &str) -> Result<Url, StoreError> {
    Url::parse(raw).map_err(|e| StoreError::with_source("the database URL is invalid", e))
}

/// The options sqlx will connect with for `raw` (its own parsing, environment included),
/// checked by the module's rules.
#[cfg(feature = "postgres")]
pub(crate) fn check_postgres(raw: &str) -> Result<sqlx::postgres::PgConnectOptions, StoreError> {
    use sqlx::postgres::{PgConnectOptions, PgSslMode};

    let modes: Vec<String> = parse(raw)?
        .query_pairs()
        .filter(|(key, _)| key == "sslmode" || key == "ssl-mode")
        .map(|(_, value)| value.into_owned())
        .collect();
    if modes.windows(2).any(|pair| pair[0] != pair[1]) {
        return Err(StoreError::new(format!(
            "the PostgreSQL URL sets the TLS mode more than once ({}): keep one sslmode",
            modes.join(", ")
        )));
    }
    let options: PgConnectOptions = raw
        .parse()
        .map_err(|e| StoreError::with_source("the database URL is invalid", e))?;
    let host = options.get_host();
    if options.get_socket().is_some() || is_loopback_host(host) {
        return Ok(options);
    }
    match options.get_ssl_mode() {
        PgSslMode::Require | PgSslMode::VerifyCa | PgSslMode::VerifyFull => Ok(options),
        PgSslMode::Disable => {
            tracing::warn!(
                host,
                "the PostgreSQL store connects without TLS, as its URL asks (sslmode=disable)"
            );
            Ok(options)
        }
        PgSslMode::Prefer | PgSslMode::Allow => Err(refused(
            &format!("the PostgreSQL server at {host}"),
            "add sslmode=verify-full (or require) to the URL, or sslmode=disable to accept \
             plaintext explicitly",
        )),
    }
}

/// Checks a Redis URL by the module's rules, judged on the address the redis crate will
/// connect to; returns the URL to give the Redis client.
#[cfg(feature = "redis")]
pub(crate) fn check_redis(raw: &str) -> Result<String, StoreError> {
    use redis::{ConnectionAddr, IntoConnectionInfo as _};

    let mut url = parse(raw)?;
    let plaintext_requested = url
        .query_pairs()
        .any(|(key, value)| key == "plaintext" && value == "true");
    if plaintext_requested {
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(key, _)| key != "plaintext")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        url.set_query(None);
        if !kept.is_empty() {
            url.query_pairs_mut().extend_pairs(kept);
        }
    }
    let info = url
        .as_str()
        .into_connection_info()
        .map_err(|e| StoreError::with_source("the Redis URL is invalid", e))?;
    let host = match &info.addr {
        ConnectionAddr::Unix(_) => return Ok(url.into()),
        ConnectionAddr::TcpTls {
            insecure: false, ..
        } => return Ok(url.into()),
        ConnectionAddr::Tcp(host, _) | ConnectionAddr::TcpTls { host, .. } => host,
    };
    if is_loopback_host(host) {
        return Ok(url.into());
    }
    if plaintext_requested {
        tracing::warn!(
            host,
            "the Redis store connects without verified TLS, as its URL asks (plaintext=true)"
        );
        return Ok(url.into());
    }
    Err(refused(
        &format!("the Redis server at {host}"),
        "use a rediss:// (or valkeys://) URL with the certificate checked (no #insecure), or \
         add plaintext=true to the query to accept plaintext explicitly",
    ))
}

#[cfg(test)]
mod tests {
    #[cfg(feature = "postgres")]
    #[test]
    fn postgres_is_judged_on_the_options_sqlx_uses() {
        use super::check_postgres;
        for ok in [
            "postgres://app@127.0.0.1/app",
            "postgres://app@localhost:5433/app",
            "postgres://app@[::1]/app",
            "postgres:///app?host=/var/run/postgresql",
            "postgres://app@db.example/app?sslmode=require",
            "postgres://app@db.example/app?sslmode=verify-full",
            "postgres://app@db.example/app?ssl-mode=verify-ca",
            "postgres://app@db.example/app?sslmode=require&sslmode=require",
            "postgres://app@db.example/app?sslmode=disable",
            "postgres://app@127.0.0.2:5432/app",
            "postgres://app@db.example/app?host=127.0.0.1",
        ] {
            assert!(check_postgres(ok).is_ok(), "{ok}");
        }
        for refused in [
            "postgres://app@db.example/app",
            "postgres://app@db.example/app?sslmode=prefer",
            "postgres://app@10.0.0.5/app?sslmode=allow",
            // The bypasses: the query's host, the last mode, hostaddr.
            "postgres://app@127.0.0.1:5432/m?host=192.0.2.2&port=45432",
            "postgres://app@localhost/m?hostaddr=192.0.2.2",
        ] {
            let error = check_postgres(refused).unwrap_err().to_string();
            assert!(error.contains("sslmode=verify-full"), "{refused}: {error}");
        }
        for ambiguous in [
            "postgres://app@db.example/m?sslmode=require&sslmode=prefer",
            "postgres://app@db.example/m?sslmode=verify-full&ssl-mode=disable",
            "postgres://app@127.0.0.1/m?sslmode=require&sslmode=disable",
        ] {
            let error = check_postgres(ambiguous).unwrap_err().to_string();
            assert!(error.contains("more than once"), "{ambiguous}: {error}");
        }
    }

    /// `PGHOST` fills a URL's empty host, as sqlx reads it: judged like a host in the URL.
    /// The environment is the process's, so this runs the test binary again, filtered to
    /// [`pghost_in_a_child`], with `PGHOST` set.
    #[cfg(feature = "postgres")]
    #[test]
    fn an_empty_host_is_judged_as_pghost_names_it() {
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "transport::tests::pghost_in_a_child",
                "--test-threads=1",
            ])
            .env("PGHOST", "192.0.2.2")
            .env_remove("PGHOSTADDR")
            .env_remove("PGSSLMODE")
            .env(CHILD, "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{stdout}");
        assert!(stdout.contains("1 passed"), "the child ran: {stdout}");
    }

    #[cfg(feature = "postgres")]
    const CHILD: &str = "MODELGATES_TRANSPORT_TEST_CHILD";

    /// Run by [`an_empty_host_is_judged_as_pghost_names_it`]; nothing to check otherwise.
    #[cfg(feature = "postgres")]
    #[test]
    fn pghost_in_a_child() {
        if std::env::var_os(CHILD).is_none() {
            return;
        }
        let error = super::check_postgres("postgresql:///m")
            .unwrap_err()
            .to_string();
        assert!(error.contains("192.0.2.2"), "{error}");
        assert!(super::check_postgres("postgresql:///m?sslmode=verify-full").is_ok());
    }

    #[cfg(feature = "redis")]
    #[test]
    fn redis_is_judged_on_the_address_the_client_uses() {
        use super::check_redis;
        assert_eq!(
            check_redis("redis://127.0.0.1:6379/").unwrap(),
            "redis://127.0.0.1:6379/"
        );
        for ok in [
            "rediss://cache.example/",
            "valkeys://cache.example/",
            "valkey://localhost/",
            "redis+unix:///run/redis.sock",
        ] {
            assert!(check_redis(ok).is_ok(), "{ok}");
        }
        for refused in [
            "redis://cache.example/",
            "valkey://cache.example/",
            "valkey://192.0.2.2:6379/0",
            "rediss://cache.example/#insecure",
        ] {
            let error = check_redis(refused).unwrap_err().to_string();
            assert!(error.contains("rediss://"), "{refused}: {error}");
        }
        assert_eq!(
            check_redis("redis://cache.example/0?plaintext=true&protocol=resp3").unwrap(),
            "redis://cache.example/0?protocol=resp3",
            "the request is honoured and removed"
        );
        assert!(check_redis("valkey://cache.example/?plaintext=true").is_ok());
    }
}
