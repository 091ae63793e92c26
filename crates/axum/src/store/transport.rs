//! Which database URLs may carry keys in clear text.
//!
//! The rules, applied by `connect` before any connection is made:
//!
//! * A database on this machine (`localhost`, `127.0.0.0/8`, `[::1]`, or a Unix socket) may
//!   be reached without TLS.
//! * Any other PostgreSQL host needs `sslmode=require`, `verify-ca` or `verify-full` in the
//!   URL. sqlx's default, `prefer`, falls back to plaintext in silence, so it is refused, as
//!   are `allow` and no `sslmode`; `sslmode=disable` is the explicit request for plaintext
//!   and is accepted, with a warning in the log.
//! * Any other Redis host needs `rediss://`; `redis://` is accepted only with the explicit
//!   request `plaintext=true` in the query (removed before the URL reaches the client), with
//!   a warning in the log.

use url::Url;

use super::StoreError;
use modelgates_oauth_core::is_loopback;

fn refused(what: &str, fix: &str) -> StoreError {
    StoreError::new(format!(
        "{what} would be reached without TLS, and keys would cross the network in clear text: {fix}"
    ))
}

fn parse(raw: &str) -> Result<Url, StoreError> {
    Url::parse(raw).map_err(|e| StoreError::with_source("the database URL is invalid", e))
}

/// A host that keeps the connection on this machine: loopback, or none (a Unix socket).
fn stays_on_this_machine(url: &Url, socket_param: Option<&str>) -> bool {
    let host = url.host_str().unwrap_or_default();
    host.is_empty() || is_loopback(url) || socket_param.is_some_and(|h| h.starts_with('/'))
}

/// Checks a PostgreSQL URL by the module's rules.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) fn check_postgres(raw: &str) -> Result<(), StoreError> {
    let url = parse(raw)?;
    let param = |name: &str| {
        url.query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    };
    if stays_on_this_machine(&url, param("host").as_deref()) {
        return Ok(());
    }
    match param("sslmode").as_deref() {
        Some("require" | "verify-ca" | "verify-full") => Ok(()),
        Some("disable") => {
            tracing::warn!(
                host = url.host_str(),
                "the PostgreSQL store connects without TLS, as its URL asks (sslmode=disable)"
            );
            Ok(())
        }
        _ => Err(refused(
            &format!("the PostgreSQL server at {}", url.host_str().unwrap_or("?")),
            "add sslmode=verify-full (or require) to the URL, or sslmode=disable to accept \
             plaintext explicitly",
        )),
    }
}

/// Checks a Redis URL by the module's rules; returns the URL to give the Redis client.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) fn check_redis(raw: &str) -> Result<String, StoreError> {
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
    let clear = matches!(url.scheme(), "redis");
    if !clear || stays_on_this_machine(&url, None) {
        return Ok(url.into());
    }
    if plaintext_requested {
        tracing::warn!(
            host = url.host_str(),
            "the Redis store connects without TLS, as its URL asks (plaintext=true)"
        );
        return Ok(url.into());
    }
    Err(refused(
        &format!("the Redis server at {}", url.host_str().unwrap_or("?")),
        "use a rediss:// URL, or add plaintext=true to the query to accept plaintext explicitly",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_needs_tls_off_this_machine() {
        for ok in [
            "postgres://app@127.0.0.1/app",
            "postgres://app@localhost:5433/app",
            "postgres://app@[::1]/app",
            "postgres:///app?host=/var/run/postgresql",
            "postgres://app@db.example/app?sslmode=require",
            "postgres://app@db.example/app?sslmode=verify-full",
            "postgres://app@db.example/app?sslmode=disable",
            "postgres://app@127.0.0.2:5432/app",
        ] {
            assert!(check_postgres(ok).is_ok(), "{ok}");
        }
        for refused in [
            "postgres://app@db.example/app",
            "postgres://app@db.example/app?sslmode=prefer",
            "postgres://app@10.0.0.5/app?sslmode=allow",
        ] {
            let error = check_postgres(refused).unwrap_err().to_string();
            assert!(error.contains("sslmode=verify-full"), "{refused}: {error}");
        }
    }

    #[test]
    fn redis_needs_tls_off_this_machine() {
        assert_eq!(
            check_redis("redis://127.0.0.1:6379/").unwrap(),
            "redis://127.0.0.1:6379/"
        );
        assert!(check_redis("rediss://cache.example/").is_ok());
        let error = check_redis("redis://cache.example/")
            .unwrap_err()
            .to_string();
        assert!(error.contains("rediss://"), "{error}");
        assert_eq!(
            check_redis("redis://cache.example/0?plaintext=true&protocol=resp3").unwrap(),
            "redis://cache.example/0?protocol=resp3",
            "the request is honoured and removed"
        );
    }
}
