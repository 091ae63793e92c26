use super::*;
use std::time::Duration;

fn config(public_url: &str) -> ModelGatesConfig {
    ModelGatesConfig::new(public_url, CookieSecret::generate())
}

#[test]
fn https_public_urls_get_secure_host_cookies() {
    let settings = resolve(config("https://app.example")).unwrap();
    assert_eq!(settings.flow.key_cookie.spec.name, "__Host-modelgates_key");
    assert_eq!(
        settings.flow.flow_cookie.spec.name,
        "__Host-modelgates_flow"
    );
    let local = resolve(config("http://localhost:3000")).unwrap();
    assert_eq!(local.flow.key_cookie.spec.name, "modelgates_key");
    assert_eq!(
        local.flow.paths.callback_url.as_str(),
        "http://localhost:3000/callback"
    );
}

#[test]
fn public_url_rules() {
    for bad in [
        "http://app.example",
        "https://app.example/app",
        "https://app.example/?a=1",
        "ftp://app.example",
        "app.example",
    ] {
        let error = resolve(config(bad)).err().unwrap();
        assert!(
            matches!(error, ConfigError::InvalidPublicUrl { .. }),
            "{bad}: {error}"
        );
    }
    assert!(resolve(config("http://127.0.0.1:8080")).is_ok());
    assert!(resolve(config("http://[::1]:8080")).is_ok());
}

#[test]
fn paths_prefix_and_conflicts() {
    let settings = resolve(config("https://app.example").with_path_prefix("/auth/")).unwrap();
    assert_eq!(&*settings.flow.paths.login, "/auth/login");
    assert_eq!(
        settings.flow.paths.callback_url.as_str(),
        "https://app.example/auth/callback"
    );
    let dup = resolve(config("https://app.example").with_logout_path("/login"))
        .err()
        .unwrap();
    assert_eq!(dup, ConfigError::DuplicatePath("/login".into()));
    for bad in ["login", "//login", "/log in", "/login?x", "/"] {
        assert!(
            resolve(config("https://app.example").with_login_path(bad)).is_err(),
            "{bad}"
        );
    }
    assert!(
        resolve(config("https://app.example").with_default_return_to("//evil.example")).is_err()
    );
    assert!(resolve(config("https://app.example").with_key_max_age(Duration::ZERO)).is_err());
}

#[test]
fn insecure_base_url_is_refused() {
    let error = resolve(config("https://app.example").with_base_url("http://modelgates.example"))
        .err()
        .unwrap();
    assert!(matches!(error, ConfigError::Client(_)), "{error}");
    assert!(error.to_string().contains("use https"));
}

#[test]
fn weak_pkce_needs_the_opt_in() {
    use modelgates_oauth_core::ChallengeMethod;
    let plain =
        resolve(config("https://app.example").with_challenge_method(ChallengeMethod::Plain));
    assert_eq!(plain.err(), Some(ConfigError::WeakPkceNotAllowed("plain")));
    let none = resolve(config("https://app.example").without_pkce())
        .err()
        .unwrap();
    assert_eq!(none, ConfigError::WeakPkceNotAllowed("none"));
    assert!(
        none.to_string().contains("MODELGATES_ALLOW_WEAK_PKCE"),
        "{none}"
    );
    assert!(
        resolve(
            config("https://app.example")
                .without_pkce()
                .allow_weak_pkce()
        )
        .is_ok()
    );
    assert!(resolve(config("https://app.example").with_max_concurrent_exchanges(0)).is_err());
}

#[test]
fn cookie_domain_rules() {
    let shared =
        resolve(config("https://chat.example.com").with_cookie_domain("example.com")).unwrap();
    assert_eq!(shared.flow.key_cookie.spec.name, "__Secure-modelgates_key");
    assert_eq!(
        shared.flow.flow_cookie.spec.name, "__Host-modelgates_flow",
        "the flow cookie stays host-only"
    );
    for (url, domain) in [
        ("https://chat.example.com", "other.com"),
        ("https://chat.example.com", "le.com"),
        ("https://example.com", "com"),
        ("https://chat.example.com", "exa mple.com"),
    ] {
        assert!(
            matches!(
                resolve(config(url).with_cookie_domain(domain)),
                Err(ConfigError::InvalidCookieDomain { .. })
            ),
            "{url} {domain}"
        );
    }
    let host_prefixed = resolve(
        config("https://chat.example.com")
            .with_cookie_names("f", "__Host-k")
            .with_cookie_domain("example.com"),
    )
    .err()
    .unwrap();
    assert!(
        host_prefixed.to_string().contains("__Host-"),
        "{host_prefixed}"
    );
}

#[test]
fn cookie_names() {
    let settings =
        resolve(config("https://app.example").with_cookie_names("f", "__Host-k")).unwrap();
    assert_eq!(settings.flow.flow_cookie.spec.name, "__Host-f");
    assert_eq!(settings.flow.key_cookie.spec.name, "__Host-k");
    assert!(resolve(config("https://app.example").with_cookie_names("a b", "k")).is_err());
    assert!(resolve(config("https://app.example").with_cookie_names("same", "same")).is_err());
}
