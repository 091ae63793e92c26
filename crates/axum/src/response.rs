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
//! * JSON errors are `{"error": {"status": <u16>, "code": "<stable code>", "message": "…"}}`
//!   with `Content-Type: application/json`.
//! * HTML error pages escape every value they show.
//! * Cookies are added as ready `HeaderValue`s (see the `cookies` module), never re-parsed.
//! * A response that sets a cookie must never be stored by a shared cache (a CDN would hand
//!   one user's cookie to everyone): it gets `Cache-Control: private, no-store`, keeping only
//!   the directives of the inner service that do not allow storing (`no-transform`, say), and
//!   `Vary: Cookie` unless `Vary` already names `Cookie` or `*`.

use axum_core::body::Body;
use http::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE, LOCATION, SET_COOKIE, VARY};
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

/// Every `Accept` header of a request as one value (they are one comma-separated list, RFC
/// 9110 §5.3); a clone of the single header in the usual case, so nothing is copied.
pub(crate) fn accept_header(headers: &HeaderMap) -> Option<HeaderValue> {
    let mut values = headers.get_all(ACCEPT).iter();
    let first = values.next()?;
    let rest: Vec<&[u8]> = values.map(HeaderValue::as_bytes).collect();
    if rest.is_empty() {
        return Some(first.clone());
    }
    let joined = std::iter::once(first.as_bytes())
        .chain(rest)
        .collect::<Vec<_>>()
        .join(&b", "[..]);
    HeaderValue::from_bytes(&joined).ok()
}

/// The one negotiation rule: whether an answer to a request with this `Accept` is an HTML page
/// rather than JSON. The most specific matching media range gives each type its q-value;
/// HTML wins only with a higher one (or an equal one listed first), so `text/html,*/*;q=0.8`
/// (a browser) gets HTML and `*/*`, `application/json`, no header, or an unreadable one get
/// JSON.
pub(crate) fn prefers_html_accept(accept: Option<&HeaderValue>) -> bool {
    use mediatype::MediaType;
    use mediatype::names::{APPLICATION, HTML, JSON, TEXT};
    // JSON first: on a tie (`*/*`) the first available type wins.
    const AVAILABLE: [MediaType<'static>; 2] = [
        MediaType::new(APPLICATION, JSON),
        MediaType::new(TEXT, HTML),
    ];
    let Some(accept) = accept.and_then(|value| value.to_str().ok()) else {
        return false;
    };
    accept
        .parse::<headers_accept::Accept>()
        .ok()
        .and_then(|accept| accept.negotiate(&AVAILABLE).cloned())
        .is_some_and(|chosen| chosen == AVAILABLE[1])
}

/// [`prefers_html_accept`] for a request's headers.
pub(crate) fn prefers_html(headers: &HeaderMap) -> bool {
    prefers_html_accept(accept_header(headers).as_ref())
}

/// `GET` or `HEAD`: a request that only reads.
pub(crate) fn is_reading(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD)
}

/// The JSON error envelope.
pub(crate) fn json_error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
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
pub(crate) fn html_error_page(
    title: &str,
    message: &str,
    links: &[(&str, &str)],
) -> Response<Body> {
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

/// An error answered by the negotiation rule: the built-in HTML page (linking to `home`) for a
/// client that prefers it, JSON otherwise.
pub(crate) fn error_response(
    headers: &HeaderMap,
    status: StatusCode,
    code: &str,
    (title, message): (&str, &str),
    home: &str,
) -> Response<Body> {
    let mut response = if prefers_html(headers) {
        html_error_page(title, message, &[("Home", home)])
    } else {
        json_error(status, code, message)
    };
    *response.status_mut() = status;
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
        // Several headers are one list.
        assert!(html(&["application/json;q=0.1", "text/html"]));
        assert!(!html(&["text/html;q=0.1", "application/json"]));
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
