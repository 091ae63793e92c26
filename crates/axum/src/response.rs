//! One way to answer: every response the layer and the extractor build comes from here.
//!
//! The rules:
//!
//! * Redirects are `303 See Other`, so a `POST` is followed by a `GET`.
//! * One content negotiation for every answer the crate makes (see [`prefers_html`]): HTML
//!   when the `Accept` headers, read together with their q-values (RFC 9110), prefer
//!   `text/html` to `application/json`; JSON otherwise, so a tie (`*/*`, curl, `fetch()`), no
//!   `Accept` at all or one naming neither gets JSON. A request is a *browser navigation* when
//!   it is a `GET` or `HEAD` that prefers HTML.
//! * Every error the crate answers (a sign-in route's [`AuthError`](crate::AuthError), the
//!   extractor's rejection, an [`ApiError`](crate::ApiError), the same-origin guard's refusal)
//!   is first one [`Problem`] (status, stable code, title, message, `Retry-After`, `Allow`),
//!   then rendered by [`Problem::render`], the one place that writes error answers: a page when
//!   the request prefers HTML, else JSON, with the problem's headers.
//! * JSON errors are `{"error": {"status": <u16>, "code": "<stable code>", "message": "…"}}`
//!   with `Content-Type: application/json` and `X-Content-Type-Options: nosniff`.
//! * HTML error pages escape every value they show.
//! * `Retry-After` is whole seconds, at least one, rounded up.
//! * Cookies are added as ready `HeaderValue`s (see the `cookies` module), never re-parsed.
//! * A response that sets a cookie must never be stored by a shared cache (a CDN would hand
//!   one user's cookie to everyone): it gets `Cache-Control: private, no-store`, keeping only
//!   the directives of the inner service that do not allow storing (`no-transform`, say), and
//!   `Vary: Cookie` unless `Vary` already names `Cookie` or `*`.

use axum_core::body::Body;
use http::header::{
    ACCEPT, ALLOW, CACHE_CONTROL, CONTENT_TYPE, LOCATION, RETRY_AFTER, SET_COOKIE, VARY,
};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};

/// A `303 See Other` to `location`, which the caller has already made a safe local path or
/// an URL it built itself.
pub(crate) fn see_other(location: &str) -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SEE_OTHER;
    match HeaderValue::from_str(location) {
        Ok(location) => {
            response.headers_mut().insert(LOCATION, location);
        }
        // Every location is checked before it gets here; refuse rather than redirect nowhere.
        Err(_) => *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR,
    }
    response
}

/// How well one media range of an `Accept` header matches a type: its q-value, how specific
/// the range is (2: `type/subtype`, 1: `type/*`, 0: `*/*`) and its position in the header.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Match {
    q: f32,
    specificity: u8,
    position: usize,
}

/// How specifically the media range `range_kind/range_subtype` names `kind/subtype`: 2 exactly,
/// 1 as `kind/*`, 0 as `*/*`; `None` when it does not.
fn specificity(range: (&str, &str), kind: &str, subtype: &str) -> Option<u8> {
    match range {
        ("*", "*") => Some(0),
        (k, "*") if k.eq_ignore_ascii_case(kind) => Some(1),
        (k, s) if k.eq_ignore_ascii_case(kind) && s.eq_ignore_ascii_case(subtype) => Some(2),
        _ => None,
    }
}

/// The matches of `text/html` and `application/json` in the `Accept` headers, in one pass:
/// for each, the most specific range that names it (the first of equals).
fn best_matches(headers: &HeaderMap) -> [Option<Match>; 2] {
    const TYPES: [(&str, &str); 2] = [("text", "html"), ("application", "json")];
    let ranges = headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','));
    let mut best = [None; 2];
    for (position, range) in ranges.enumerate() {
        let mut parts = range.split(';');
        let Some(named) = parts.next().and_then(|t| t.trim().split_once('/')) else {
            continue;
        };
        let q = parts
            .filter_map(|param| param.trim().split_once('='))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("q"))
            .map_or(Some(1.0), |(_, value)| value.trim().parse::<f32>().ok())
            .filter(|q| (0.0..=1.0).contains(q));
        let Some(q) = q else { continue };
        for ((kind, subtype), best) in TYPES.iter().zip(&mut best) {
            let Some(specificity) = specificity(named, kind, subtype) else {
                continue;
            };
            if best.is_none_or(|found: Match| specificity > found.specificity) {
                *best = Some(Match {
                    q,
                    specificity,
                    position,
                });
            }
        }
    }
    best
}

/// The rule's answer at a glance when the first range is exactly `text/html` or
/// `application/json`, without parameters (a browser's `Accept`, or an API client's): that
/// type has q=1, the most specific match and the first position, which nothing after it can
/// beat. `None` otherwise (the whole rule decides).
fn first_range_decides(headers: &HeaderMap) -> Option<bool> {
    let first = headers.get(ACCEPT)?.as_bytes();
    [(&b"text/html"[..], true), (&b"application/json"[..], false)]
        .into_iter()
        .find(|(range, _)| {
            first.starts_with(range) && matches!(first.get(range.len()), None | Some(b','))
        })
        .map(|(_, html)| html)
}

/// The one negotiation rule: whether an answer to a request with these headers is an HTML
/// page rather than JSON, by RFC 9110's `Accept`: each type takes the q-value of the most
/// specific range that matches it; HTML wins with a higher q-value, or with an equal one
/// matched by a more specific range, or by an equally specific one listed first. So
/// `text/html,*/*;q=0.8` (a browser) gets HTML, and `*/*` (a tie on one range),
/// `application/json`, no header, or one naming neither get JSON. One pass, no allocation:
/// the layer asks this on every signed-in request.
///
/// Re-exported at the crate's root for handlers that answer browsers and scripts apart, by the
/// same rule as the crate's own answers:
///
/// ```
/// use axum::http::{HeaderMap, HeaderValue, header};
///
/// let mut headers = HeaderMap::new();
/// headers.insert(header::ACCEPT, HeaderValue::from_static("text/html,*/*;q=0.8"));
/// assert!(modelgates_axum::prefers_html(&headers));
/// headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
/// assert!(!modelgates_axum::prefers_html(&headers));
/// ```
#[must_use]
pub fn prefers_html(headers: &HeaderMap) -> bool {
    first_range_decides(headers).unwrap_or_else(|| by_the_whole_rule(headers))
}

/// [`prefers_html`], range by range.
fn by_the_whole_rule(headers: &HeaderMap) -> bool {
    let [html, json] = best_matches(headers);
    let Some(html) = html.filter(|m| m.q > 0.0) else {
        return false;
    };
    let Some(json) = json.filter(|m| m.q > 0.0) else {
        return true;
    };
    if html.q != json.q {
        return html.q > json.q;
    }
    if html.specificity != json.specificity {
        return html.specificity > json.specificity;
    }
    html.position < json.position
}

/// `GET` or `HEAD`: a request that only reads.
pub(crate) fn is_reading(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD)
}

/// One error answer, whatever made it: what [`Problem::render`] turns into JSON or a page.
#[derive(Debug, Clone)]
pub(crate) struct Problem {
    pub(crate) status: StatusCode,
    /// The stable machine-readable code.
    pub(crate) code: &'static str,
    /// The page's heading.
    pub(crate) title: &'static str,
    /// What happened and what to do; may echo untrusted text (escaped on the page).
    pub(crate) message: String,
    /// How long to wait before trying again (`Retry-After`).
    pub(crate) retry_after: Option<std::time::Duration>,
    /// The method to use instead (`Allow`, with a 405).
    pub(crate) allow: Option<&'static str>,
}

impl Problem {
    /// A problem with no `Retry-After` and no `Allow`.
    pub(crate) fn new(
        status: StatusCode,
        code: &'static str,
        title: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code,
            title,
            message: message.into(),
            retry_after: None,
            allow: None,
        }
    }

    /// This problem, asking the client to wait `wait` before trying again.
    pub(crate) fn retry_after(mut self, wait: Option<std::time::Duration>) -> Self {
        self.retry_after = wait;
        self
    }

    /// The answer: the built-in page linking to `links` (label, href) when `page` (the client
    /// prefers HTML, by [`prefers_html`]), JSON otherwise; the status and the problem's headers
    /// either way.
    pub(crate) fn render(&self, page: bool, links: &[(&str, &str)]) -> Response<Body> {
        let body = if page {
            html_error_page(self.title, &self.message, links)
        } else {
            json_error(self.status, self.code, &self.message)
        };
        self.with_headers(body)
    }

    /// `response` (the app's own page for this problem, say) with the problem's status and
    /// headers.
    pub(crate) fn with_headers(&self, mut response: Response<Body>) -> Response<Body> {
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        if let Some(wait) = self.retry_after {
            headers.insert(RETRY_AFTER, HeaderValue::from(whole_seconds(wait)));
        }
        if let Some(allow) = self.allow {
            headers.insert(ALLOW, HeaderValue::from_static(allow));
        }
        response
    }
}

/// `duration` in whole seconds, rounded up, at least one: what `Retry-After` says.
pub(crate) fn whole_seconds(duration: std::time::Duration) -> u64 {
    (duration.as_secs() + u64::from(duration.subsec_nanos() > 0)).max(1)
}

/// The JSON error envelope.
fn json_error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let body =
        serde_json::json!({"error": {"status": status.as_u16(), "code": code, "message": message}});
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    // A message may echo what the request sent: never let a browser sniff it as HTML.
    headers.insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// The built-in HTML error page: a title, a message, and `links` (label, href) below them.
/// The caller sets the status.
fn html_error_page(title: &str, message: &str, links: &[(&str, &str)]) -> Response<Body> {
    let links: Vec<String> = links
        .iter()
        .map(|(label, href)| {
            format!(
                r#"<a href="{}">{}</a>"#,
                html_escape::encode_double_quoted_attribute(href),
                html_escape::encode_text(label)
            )
        })
        .collect();
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem}}</style>\
         </head><body><h1>{title}</h1><p id=\"message\">{message}</p><p>{links}</p></body></html>",
        title = html_escape::encode_text(title),
        message = html_escape::encode_text(message),
        links = links.join(" · "),
    );
    let mut response = Response::new(Body::from(page));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

/// Adds a `Set-Cookie`, and keeps every cache from storing the response.
pub(crate) fn set_cookie<B>(response: &mut Response<B>, cookie: HeaderValue) {
    response.headers_mut().append(SET_COOKIE, cookie);
    no_store(response);
}

/// `Cache-Control` directives that let a cache store or share a response.
const STORING_DIRECTIVES: [&str; 11] = [
    "public",
    "private",
    "no-store",
    "no-cache",
    "max-age",
    "s-maxage",
    "immutable",
    "must-revalidate",
    "proxy-revalidate",
    "stale-while-revalidate",
    "stale-if-error",
];

/// Marks a response as never to be stored by any cache: `Cache-Control: private, no-store`
/// merged with the directives already there, and `Vary: Cookie`.
pub(crate) fn no_store<B>(response: &mut Response<B>) {
    let headers = response.headers_mut();
    let mut directives = String::from("private, no-store");
    for kept in headers
        .get_all(CACHE_CONTROL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|directive| {
            let name = directive.split('=').next().unwrap_or_default().trim();
            !name.is_empty()
                && !STORING_DIRECTIVES
                    .iter()
                    .any(|storing| name.eq_ignore_ascii_case(storing))
        })
    {
        directives.push_str(", ");
        directives.push_str(kept);
    }
    let value = HeaderValue::from_str(&directives)
        .unwrap_or_else(|_| HeaderValue::from_static("private, no-store"));
    headers.insert(CACHE_CONTROL, value);
    let varies_on_cookie = headers
        .get_all(VARY)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|name| name.trim() == "*" || name.trim().eq_ignore_ascii_case("cookie"));
    if !varies_on_cookie {
        headers.append(VARY, HeaderValue::from_static("Cookie"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(values: &[&'static str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(ACCEPT, HeaderValue::from_static(value));
        }
        headers
    }

    const FIREFOX: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    const CHROME: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,\
                          image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7";

    #[test]
    fn html_only_when_preferred_to_json_by_q_value() {
        let html = |values: &[&'static str]| prefers_html(&accept(values));
        // Browsers navigating or posting a form.
        assert!(html(&[FIREFOX]));
        assert!(html(&[CHROME]));
        assert!(html(&["text/*"]));
        assert!(html(&["application/json;q=0.5, text/html"]));
        assert!(html(&["text/html;q=0.9, application/json;q=0.1"]));
        // Scripts, curl, fetch() and clients that say nothing.
        assert!(!html(&[]));
        assert!(!html(&["*/*"]));
        assert!(!html(&["application/json"]));
        assert!(
            !html(&["application/json, text/html"]),
            "a tie: listed first wins"
        );
        assert!(!html(&["text/html;q=0.5, application/json"]));
        assert!(
            !html(&["text/html;q=0, */*"]),
            "the most specific range decides"
        );
        assert!(!html(&["image/png"]));
        assert!(!html(&["not a media type"]));
        assert!(
            !html(&["text/html;q=2"]),
            "a q-value out of range is ignored"
        );
        assert!(
            html(&["application/json;q=0.1, */*"]),
            "HTML through */* beats JSON's own q=0.1"
        );
        assert!(html(&["TEXT/HTML"]), "media types ignore case");
        assert!(
            !html(&["*/*, application/json"]),
            "the more specific wins a tie"
        );
        // Several headers are one list.
        assert!(html(&["application/json;q=0.1", "text/html"]));
        assert!(!html(&["text/html;q=0.1", "application/json"]));
    }

    proptest::proptest! {
        /// The glance at the first range never disagrees with the whole rule.
        #[test]
        fn the_first_range_decides_as_the_whole_rule_would(
            ranges in proptest::collection::vec(
                proptest::sample::select(vec![
                    "text/html", "application/json", "text/html;q=0.5", "application/json;q=0",
                    "*/*", "text/*;q=0.9", "TEXT/HTML", "text/htmlx", "application/jsonp",
                    " text/html", "image/png", "text/html;level=1", "application/json;q=1",
                ]),
                1..5,
            ),
            split in proptest::bool::ANY,
        ) {
            let headers = if split {
                let mut headers = HeaderMap::new();
                for range in &ranges {
                    headers.append(ACCEPT, HeaderValue::from_str(range).unwrap());
                }
                headers
            } else {
                let mut headers = HeaderMap::new();
                headers.insert(ACCEPT, HeaderValue::from_str(&ranges.join(",")).unwrap());
                headers
            };
            if let Some(decided) = first_range_decides(&headers) {
                proptest::prop_assert_eq!(decided, by_the_whole_rule(&headers), "{:?}", ranges);
            }
        }
    }

    fn cache_headers(cache_control: Option<&'static str>, vary: Option<&'static str>) -> HeaderMap {
        let mut response = Response::new(());
        if let Some(value) = cache_control {
            response
                .headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static(value));
        }
        if let Some(value) = vary {
            response
                .headers_mut()
                .insert(VARY, HeaderValue::from_static(value));
        }
        set_cookie(&mut response, HeaderValue::from_static("a=b"));
        response.into_parts().0.headers
    }

    #[test]
    fn cookies_make_responses_private_and_uncacheable() {
        let plain = cache_headers(None, None);
        assert_eq!(plain[CACHE_CONTROL], "private, no-store");
        assert_eq!(plain[VARY], "Cookie");
        let public = cache_headers(
            Some("public, max-age=3600, s-maxage=600, no-transform"),
            Some("Accept-Encoding"),
        );
        assert_eq!(public[CACHE_CONTROL], "private, no-store, no-transform");
        let vary: Vec<_> = public.get_all(VARY).iter().collect();
        assert_eq!(vary, ["Accept-Encoding", "Cookie"]);
        assert_eq!(cache_headers(None, Some("cookie"))[VARY], "cookie");
        assert_eq!(
            cache_headers(None, Some("*")).get_all(VARY).iter().count(),
            1
        );
    }

    #[test]
    fn redirects_go_only_where_a_header_can_say() {
        assert_eq!(see_other("/a").status(), StatusCode::SEE_OTHER);
        assert_eq!(see_other("/a").headers()[LOCATION], "/a");
        assert_eq!(
            see_other("/a\n").status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
