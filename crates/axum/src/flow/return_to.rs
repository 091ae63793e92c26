//! Sanitising `return_to`, the local page to come back to after sign-in.
//!
//! A `return_to` is kept only if all of these hold; otherwise the configured default is used:
//!
//! * every character is printable ASCII (no control characters, no CR or LF that could split
//!   a header, no spaces), and it is at most 2048 bytes long;
//! * it starts with exactly one `/`, not followed by `/` or `\` (so it cannot name another
//!   host as `//evil.example` or `/\evil.example` does);
//! * percent-decoded once, it holds no `\`, no control character and nothing outside ASCII,
//!   and still starts with a single `/` (`/%2F%2Fevil.example`), so an app that decodes the
//!   path again cannot be turned into an open redirect;
//! * resolved against the app's origin as a browser resolves it (dot segments removed, `%2e`
//!   read as `.`), it stays on that origin and its path does not start with `//`, and so does
//!   its once-decoded form: `/.//evil`, `/%2e%2e//evil` and `/%2E/%2Fevil` would otherwise
//!   become the path `//evil`, one step from an off-site link wherever a page echoes its own
//!   path.
//!
//! The rule is idempotent: a kept value is kept again unchanged.

use std::sync::LazyLock;

use url::Url;

/// The longest `return_to` kept.
pub(crate) const MAX_RETURN_TO_LEN: usize = 2048;

/// Any origin serves to resolve a path that starts with a single `/`: the result's origin is
/// that origin exactly when the path is local.
static ORIGIN: LazyLock<Url> =
    LazyLock::new(|| Url::parse("https://return-to.invalid/").expect("a valid URL"));

/// Whether `candidate` is a safe local target by the module's rules.
///
/// ```
/// use modelgates_axum::is_safe_return_to;
///
/// assert!(is_safe_return_to("/chat?room=1#latest"));
/// assert!(!is_safe_return_to("//evil.example"));
/// assert!(!is_safe_return_to("/\\evil.example"));
/// assert!(!is_safe_return_to("https://evil.example"));
/// assert!(!is_safe_return_to("/%2F%2Fevil.example"));
/// assert!(!is_safe_return_to("/.//evil.example"));
/// ```
#[must_use]
pub fn is_safe_return_to(candidate: &str) -> bool {
    if candidate.len() > MAX_RETURN_TO_LEN || !candidate.bytes().all(|b| b.is_ascii_graphic()) {
        return false;
    }
    if !is_local_path(candidate.as_bytes()) {
        return false;
    }
    let decoded: Vec<u8> = percent_encoding::percent_decode_str(candidate).collect();
    let decoded_is_clean = decoded
        .iter()
        .all(|&b| b.is_ascii() && !b.is_ascii_control() && b != b'\\');
    if !decoded_is_clean || !is_local_path(&decoded) {
        return false;
    }
    // Clean ASCII, so the decoded bytes are text.
    let decoded = String::from_utf8_lossy(&decoded);
    resolves_locally(candidate) && resolves_locally(&decoded)
}

/// Whether `path`, resolved as a browser resolves it, stays on the origin with a path that
/// does not start with `//`.
fn resolves_locally(path: &str) -> bool {
    ORIGIN.join(path).is_ok_and(|resolved| {
        resolved.origin() == ORIGIN.origin() && !resolved.path().starts_with("//")
    })
}

fn is_local_path(path: &[u8]) -> bool {
    match path {
        [b'/'] => true,
        [b'/', second, ..] => *second != b'/' && *second != b'\\',
        _ => false,
    }
}

/// `candidate` if it is safe, otherwise `default`.
pub(crate) fn sanitize<'a>(candidate: Option<&'a str>, default: &'a str) -> &'a str {
    candidate
        .filter(|c| is_safe_return_to(c))
        .unwrap_or(default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_local_paths() {
        for ok in [
            "/",
            "/chat",
            "/a/b?c=d&e=%2F",
            "/search?q=%3Cb%3E",
            "/@user",
            "/a//b",
            "/#top",
        ] {
            assert!(is_safe_return_to(ok), "{ok}");
            assert_eq!(sanitize(Some(ok), "/home"), ok);
        }
    }

    #[test]
    fn refuses_hostile_targets() {
        for bad in [
            "",
            "//evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "/%2F%2Fevil.example",
            "/%2f/evil.example",
            "/%5Cevil.example",
            "https://evil.example",
            "http:/evil.example",
            "javascript:alert(1)",
            "evil.example",
            "/ok\r\nSet-Cookie: x=1",
            "/ok%0d%0aLocation:%20x",
            "/tab\there",
            "/space here",
            "/caf\u{e9}",
            "/caf%C3%A9",
            "/a\\b",
            "/a%5Cb",
            "/.//evil.example",
            "/%2e%2e//evil.example",
            "/%2E/%2Fevil.example",
            "/a/..//evil.example",
            "/a/%2e%2e//evil.example",
        ] {
            assert!(!is_safe_return_to(bad), "{bad:?}");
            assert_eq!(sanitize(Some(bad), "/"), "/");
        }
        assert!(!is_safe_return_to(&format!(
            "/{}",
            "a".repeat(MAX_RETURN_TO_LEN)
        )));
        assert_eq!(sanitize(None, "/home"), "/home");
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Strings rich in the characters open redirects are made of, and arbitrary ones.
    fn candidates() -> impl Strategy<Value = String> {
        prop_oneof![
            "[/\\\\%2FfC5c@:.a-z?#\r\n\t ]{0,24}",
            "(/|//|/\\\\|%2F|%5C|%2f|%5c|https:|javascript:|evil.example|@|\\.|\\?|#){0,8}",
            any::<String>(),
        ]
    }

    fn stays_on_site(target: &str) -> bool {
        let base = url::Url::parse("https://app.example/").unwrap();
        base.join(target).is_ok_and(|url| {
            url.scheme() == "https" && url.host_str() == Some("app.example") && url.port().is_none()
        })
    }

    proptest! {
        #[test]
        fn never_off_site_or_scheme_relative(candidate in candidates()) {
            let kept = sanitize(Some(&candidate), "/");
            prop_assert!(kept.starts_with('/') && !kept.starts_with("//") && !kept.starts_with("/\\"));
            prop_assert!(stays_on_site(kept), "{kept:?}");
            // Decoded once more, as an app might, it still stays on the site.
            let decoded = percent_encoding::percent_decode_str(kept).decode_utf8_lossy();
            prop_assert!(stays_on_site(&decoded), "{decoded:?}");
        }

        #[test]
        fn is_idempotent(candidate in candidates()) {
            let once = sanitize(Some(&candidate), "/");
            prop_assert_eq!(sanitize(Some(once), "/"), once);
        }
    }
}
