//! Reading [`ModelGatesConfig`] from `MODELGATES_*` environment variables.
//!
//! The rules: empty values count as unset; every error names the variable and the fix; a
//! missing `MODELGATES_COOKIE_SECRET` is replaced by a generated one, with a loud warning,
//! only when the public URL is `http` on a loopback host (development), and is an error
//! everywhere else.

use std::time::Duration;

use modelgates_oauth_core::Url;

use super::error::{ConfigError, secret_command};
use super::secret::CookieSecret;
use super::{ModelGatesConfig, RateLimit, SpendLimit, TrustedProxies};
use modelgates_oauth_core::origin::is_loopback;

impl ModelGatesConfig {
    /// Reads the configuration from the environment:
    ///
    /// | variable | meaning | default |
    /// | --- | --- | --- |
    /// | `MODELGATES_PUBLIC_URL` | the app's public origin | required |
    /// | `MODELGATES_COOKIE_SECRET` | base64 of at least 64 random bytes | generated, with a warning, for a loopback `http` public URL only |
    /// | `MODELGATES_PREVIOUS_COOKIE_SECRETS` | older secrets, comma-separated, still accepted | none |
    /// | `MODELGATES_BASE_URL` | ModelGates' origin | `https://modelgates.ai` |
    /// | `MODELGATES_CHALLENGE_METHOD` | `S256`, `plain` or `none` | `S256` |
    /// | `MODELGATES_ALLOW_WEAK_PKCE` | `true` to accept `plain` or `none` | `false` |
    /// | `MODELGATES_HTTP_TIMEOUT_SECS` | timeout of the key exchange | `10` |
    /// | `MODELGATES_API_TIMEOUT_SECS` | total timeout of an API call that is not a stream | `600` |
    /// | `MODELGATES_STREAM_IDLE_TIMEOUT_SECS` | longest silence inside a stream | `60` |
    /// | `MODELGATES_APP_URL` | sent as `HTTP-Referer` | the public URL |
    /// | `MODELGATES_APP_TITLE` | sent as `X-Title` | none |
    /// | `MODELGATES_KEY_MAX_AGE_SECS` | lifetime of the key cookie | `2592000` (30 days) |
    /// | `MODELGATES_TRUSTED_PROXIES` | proxies whose forwarding headers are believed: CIDRs or addresses, comma-separated | none |
    /// | `MODELGATES_FAILED_SIGN_INS_PER_CLIENT` | the per-client bound on failed key exchanges: `<count>/<s, min or h>[,burst=<n>]`, or `off` | `10/min,burst=5` |
    /// | `MODELGATES_FAILED_SIGN_INS_GLOBAL` | the global bound on failed key exchanges, same form | `20/s,burst=50` |
    /// | `MODELGATES_KEY_LIMIT` | spend limit asked for each key, in credits | none: the maximum |
    /// | `MODELGATES_MAX_KEY_LIMIT` | the most a user may ask for at sign-in, and what is asked when nothing is chosen | `1000` |
    /// | `MODELGATES_KEY_LABEL` | the label asked for each key | the app title |
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the variable and the fix.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`Self::from_env`] over any lookup function, for tests and for other sources of settings.
    ///
    /// # Errors
    ///
    /// As [`Self::from_env`].
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let public_url = get("MODELGATES_PUBLIC_URL").ok_or(ConfigError::MissingVar {
            name: "MODELGATES_PUBLIC_URL",
            hint: "set it to the app's public origin, such as https://app.example or http://localhost:3000",
        })?;
        let secret = match get("MODELGATES_COOKIE_SECRET") {
            Some(encoded) => CookieSecret::from_base64(&encoded)
                .map_err(|e| e.for_var("MODELGATES_COOKIE_SECRET"))?,
            None => development_secret(&public_url)?,
        };
        let mut config = Self::new(public_url, secret);
        if let Some(list) = get("MODELGATES_PREVIOUS_COOKIE_SECRETS") {
            for encoded in list.split(',').filter(|s| !s.trim().is_empty()) {
                let previous = CookieSecret::from_base64(encoded)
                    .map_err(|e| e.for_var("MODELGATES_PREVIOUS_COOKIE_SECRETS"))?;
                config.previous_secrets.push(previous);
            }
        }
        if let Some(base_url) = get("MODELGATES_BASE_URL") {
            config.base_url = base_url;
        }
        if let Some(method) = get("MODELGATES_CHALLENGE_METHOD") {
            config.challenge_method = match method.trim() {
                "none" => None,
                other => Some(other.parse().map_err(|_| ConfigError::InvalidVar {
                    name: "MODELGATES_CHALLENGE_METHOD",
                    reason: "use S256 (recommended), plain or none".to_owned(),
                })?),
            };
        }
        if let Some(allow) = get("MODELGATES_ALLOW_WEAK_PKCE") {
            config.weak_pkce_allowed = match allow.trim() {
                "true" | "1" | "yes" => true,
                "false" | "0" | "no" => false,
                _ => {
                    return Err(ConfigError::InvalidVar {
                        name: "MODELGATES_ALLOW_WEAK_PKCE",
                        reason: format!("`{allow}` is not true or false"),
                    });
                }
            };
        }
        if let Some(secs) = get("MODELGATES_HTTP_TIMEOUT_SECS") {
            config.http_timeout = parse_secs("MODELGATES_HTTP_TIMEOUT_SECS", &secs)?;
        }
        if let Some(secs) = get("MODELGATES_API_TIMEOUT_SECS") {
            config.api_timeout = parse_secs("MODELGATES_API_TIMEOUT_SECS", &secs)?;
        }
        if let Some(secs) = get("MODELGATES_STREAM_IDLE_TIMEOUT_SECS") {
            config.stream_idle_timeout = parse_secs("MODELGATES_STREAM_IDLE_TIMEOUT_SECS", &secs)?;
        }
        config.app_url = get("MODELGATES_APP_URL");
        config.app_title = get("MODELGATES_APP_TITLE");
        if let Some(secs) = get("MODELGATES_KEY_MAX_AGE_SECS") {
            config.key_max_age = parse_secs("MODELGATES_KEY_MAX_AGE_SECS", &secs)?;
        }
        if let Some(limit) = get("MODELGATES_KEY_LIMIT") {
            config.key_limit = Some(parse_limit("MODELGATES_KEY_LIMIT", &limit)?);
        }
        if let Some(limit) = get("MODELGATES_MAX_KEY_LIMIT") {
            config.max_key_limit = parse_limit("MODELGATES_MAX_KEY_LIMIT", &limit)?;
        }
        config.key_label = get("MODELGATES_KEY_LABEL");
        for (name, per_client) in [
            ("MODELGATES_FAILED_SIGN_INS_PER_CLIENT", true),
            ("MODELGATES_FAILED_SIGN_INS_GLOBAL", false),
        ] {
            let Some(text) = get(name) else { continue };
            let limit = parse_rate(name, &text)?;
            let limits = std::mem::take(&mut config.exchange_limits);
            config.exchange_limits = match (per_client, limit) {
                (true, Some(limit)) => limits.with_per_client(limit),
                (true, None) => limits.without_per_client(),
                (false, Some(limit)) => limits.with_global(limit),
                (false, None) => limits.without_global(),
            };
        }
        if let Some(proxies) = get("MODELGATES_TRUSTED_PROXIES") {
            config.trusted_proxies =
                TrustedProxies::parse(&proxies).map_err(|error| ConfigError::InvalidVar {
                    name: "MODELGATES_TRUSTED_PROXIES",
                    reason: error.to_string(),
                })?;
        }
        Ok(config)
    }
}

fn development_secret(public_url: &str) -> Result<CookieSecret, ConfigError> {
    let is_local_http =
        Url::parse(public_url).is_ok_and(|url| url.scheme() == "http" && is_loopback(&url));
    if !is_local_http {
        return Err(ConfigError::MissingVar {
            name: "MODELGATES_COOKIE_SECRET",
            hint: concat!(
                "set it to base64 of at least 64 random bytes (make one with `",
                secret_command!(),
                "`); a secret is generated only for http://localhost"
            ),
        });
    }
    let warning = concat!(
        "MODELGATES_COOKIE_SECRET is not set: using a random secret for this run only. \
         Every restart signs all users out. Set it to the output of `",
        secret_command!(),
        "`."
    );
    tracing::warn!("{warning}");
    // Also to stderr, once: an app without a tracing subscriber would show nothing.
    static PRINTED: std::sync::Once = std::sync::Once::new();
    PRINTED.call_once(|| eprintln!("WARNING: {warning}"));
    Ok(CookieSecret::generate())
}

fn parse_limit(name: &'static str, value: &str) -> Result<SpendLimit, ConfigError> {
    SpendLimit::parse(value.trim()).map_err(|error| ConfigError::InvalidVar {
        name,
        reason: format!("`{value}`: {error}"),
    })
}

/// `<count>/<s, min or h>[,burst=<n>]` (`10/min,burst=5`), or `off` (`None`).
fn parse_rate(name: &'static str, value: &str) -> Result<Option<RateLimit>, ConfigError> {
    let value = value.trim();
    if value.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let invalid = || ConfigError::InvalidVar {
        name,
        reason: format!(
            "`{value}` is not a rate such as `10/min,burst=5` (count per s, min or h, an \
             optional burst; both above zero), nor `off`"
        ),
    };
    let (rate, burst) = match value.split_once(',') {
        Some((rate, burst)) => (rate, Some(burst.trim())),
        None => (value, None),
    };
    let (count, unit) = rate.split_once('/').ok_or_else(invalid)?;
    let count: u32 = count.trim().parse().map_err(|_| invalid())?;
    let limit = match unit.trim() {
        "s" => RateLimit::per_second(count),
        "min" => RateLimit::per_minute(count),
        "h" => RateLimit::per_hour(count),
        _ => return Err(invalid()),
    };
    let limit = match burst {
        Some(burst) => {
            let burst = burst.strip_prefix("burst=").ok_or_else(invalid)?;
            limit.with_burst(burst.trim().parse().map_err(|_| invalid())?)
        }
        None => limit,
    };
    if limit.is_valid() {
        Ok(Some(limit))
    } else {
        Err(invalid())
    }
}

fn parse_secs(name: &'static str, value: &str) -> Result<Duration, ConfigError> {
    value
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|secs| *secs > 0)
        .map(Duration::from_secs)
        .ok_or_else(|| ConfigError::InvalidVar {
            name,
            reason: format!("`{value}` is not a positive whole number of seconds"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use modelgates_oauth_core::ChallengeMethod;
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| vars.get(name).cloned()
    }

    #[test]
    fn the_proxies_and_the_sign_in_bounds_are_read() {
        let config = ModelGatesConfig::from_lookup(lookup(&[
            ("MODELGATES_PUBLIC_URL", "http://localhost:3000"),
            ("MODELGATES_TRUSTED_PROXIES", "10.0.0.0/8, ::1"),
            ("MODELGATES_FAILED_SIGN_INS_PER_CLIENT", "3/min,burst=2"),
            ("MODELGATES_FAILED_SIGN_INS_GLOBAL", "off"),
        ]))
        .unwrap();
        assert!(config.trusted_proxies.trusts("10.2.3.4".parse().unwrap()));
        assert_eq!(
            config.exchange_limits.per_client,
            Some(RateLimit::per_minute(3).with_burst(2))
        );
        assert_eq!(config.exchange_limits.global, None);
        for (name, value) in [
            ("MODELGATES_TRUSTED_PROXIES", "proxy.internal"),
            ("MODELGATES_FAILED_SIGN_INS_PER_CLIENT", "10/day"),
            ("MODELGATES_FAILED_SIGN_INS_GLOBAL", "0/s"),
            ("MODELGATES_FAILED_SIGN_INS_GLOBAL", "5/s,burst=x"),
        ] {
            let error = ModelGatesConfig::from_lookup(lookup(&[
                ("MODELGATES_PUBLIC_URL", "http://localhost:3000"),
                (name, value),
            ]))
            .unwrap_err();
            assert!(error.to_string().contains(name), "{error}");
        }
    }

    #[test]
    fn from_env_reads_every_variable() {
        let secret = CookieSecret::generate().to_base64();
        let old = CookieSecret::generate().to_base64();
        let previous = format!("{old},{}", CookieSecret::generate().to_base64());
        let config = ModelGatesConfig::from_lookup(lookup(&[
            ("MODELGATES_PUBLIC_URL", "https://app.example"),
            ("MODELGATES_COOKIE_SECRET", &secret),
            ("MODELGATES_PREVIOUS_COOKIE_SECRETS", &previous),
            ("MODELGATES_BASE_URL", "http://127.0.0.1:8090"),
            ("MODELGATES_CHALLENGE_METHOD", "plain"),
            ("MODELGATES_ALLOW_WEAK_PKCE", "true"),
            ("MODELGATES_HTTP_TIMEOUT_SECS", "3"),
            ("MODELGATES_KEY_MAX_AGE_SECS", "60"),
            ("MODELGATES_API_TIMEOUT_SECS", "120"),
            ("MODELGATES_STREAM_IDLE_TIMEOUT_SECS", "30"),
            ("MODELGATES_APP_URL", "https://github.com/me/app"),
            ("MODELGATES_APP_TITLE", "My app"),
        ]))
        .unwrap();
        assert_eq!(config.public_url, "https://app.example");
        assert_eq!(config.previous_secrets.len(), 2);
        assert_eq!(config.base_url, "http://127.0.0.1:8090");
        assert_eq!(config.challenge_method, Some(ChallengeMethod::Plain));
        assert!(config.weak_pkce_allowed);
        assert_eq!(config.http_timeout, Duration::from_secs(3));
        assert_eq!(config.key_max_age, Duration::from_secs(60));
        assert_eq!(config.api_timeout, Duration::from_secs(120));
        assert_eq!(config.stream_idle_timeout, Duration::from_secs(30));
        assert_eq!(config.app_url.as_deref(), Some("https://github.com/me/app"));
        assert_eq!(config.app_title.as_deref(), Some("My app"));

        let none = ModelGatesConfig::from_lookup(lookup(&[
            ("MODELGATES_PUBLIC_URL", "https://app.example"),
            ("MODELGATES_COOKIE_SECRET", &secret),
            ("MODELGATES_CHALLENGE_METHOD", "none"),
        ]))
        .unwrap();
        assert_eq!(none.challenge_method, None);
        assert!(
            !none.weak_pkce_allowed,
            "the method alone is not the opt-in"
        );
        let error = crate::ModelGatesAuth::try_new(none).unwrap_err();
        assert!(
            error.to_string().contains("MODELGATES_ALLOW_WEAK_PKCE"),
            "{error}"
        );
        assert!(
            ModelGatesConfig::from_lookup(lookup(&[
                ("MODELGATES_PUBLIC_URL", "https://app.example"),
                ("MODELGATES_COOKIE_SECRET", &secret),
                ("MODELGATES_ALLOW_WEAK_PKCE", "maybe"),
            ]))
            .is_err()
        );
    }

    #[test]
    fn from_env_errors_name_the_variable_and_the_fix() {
        let missing = ModelGatesConfig::from_lookup(lookup(&[])).unwrap_err();
        assert!(missing.to_string().contains("MODELGATES_PUBLIC_URL"));

        let production = ModelGatesConfig::from_lookup(lookup(&[(
            "MODELGATES_PUBLIC_URL",
            "https://app.example",
        )]))
        .unwrap_err();
        assert!(
            production.to_string().contains("MODELGATES_COOKIE_SECRET"),
            "{production}"
        );
        assert!(production.to_string().contains("openssl rand"));

        let short = ModelGatesConfig::from_lookup(lookup(&[
            ("MODELGATES_PUBLIC_URL", "https://app.example"),
            ("MODELGATES_COOKIE_SECRET", "c2hvcnQ="),
        ]))
        .unwrap_err();
        assert!(
            short
                .to_string()
                .starts_with("MODELGATES_COOKIE_SECRET is invalid"),
            "{short}"
        );
        assert!(short.to_string().contains("at least 64"));

        let secret = CookieSecret::generate().to_base64();
        let method = ModelGatesConfig::from_lookup(lookup(&[
            ("MODELGATES_PUBLIC_URL", "https://app.example"),
            ("MODELGATES_COOKIE_SECRET", &secret),
            ("MODELGATES_CHALLENGE_METHOD", "S512"),
        ]))
        .unwrap_err();
        assert!(method.to_string().contains("MODELGATES_CHALLENGE_METHOD"));

        let timeout = ModelGatesConfig::from_lookup(lookup(&[
            ("MODELGATES_PUBLIC_URL", "https://app.example"),
            ("MODELGATES_COOKIE_SECRET", &secret),
            ("MODELGATES_HTTP_TIMEOUT_SECS", "soon"),
        ]))
        .unwrap_err();
        assert!(timeout.to_string().contains("MODELGATES_HTTP_TIMEOUT_SECS"));
    }

    #[test]
    fn development_generates_a_secret_for_localhost_only() {
        assert!(
            ModelGatesConfig::from_lookup(lookup(&[(
                "MODELGATES_PUBLIC_URL",
                "http://localhost:3000"
            )]))
            .is_ok()
        );
        assert!(
            ModelGatesConfig::from_lookup(lookup(&[(
                "MODELGATES_PUBLIC_URL",
                "http://app.example"
            )]))
            .is_err()
        );
    }
}
