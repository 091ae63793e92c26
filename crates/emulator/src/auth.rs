//! `GET /auth` and its consent form.
//!
//! The rules, as ModelGates documents them and RFC 7636 defines the challenge:
//!
//! * `callback_url` must be `https`, or `http` on `localhost`, `127.0.0.1` or `[::1]` (any
//!   port). Without it the sign-in is *headless* (a tool on a machine with no browser): the
//!   challenge is required and its method must be `S256` (`plain` or none is a 400), and instead
//!   of a redirect the approval shows the code on the page, in `<code id="code">…</code>`, for
//!   the person to paste into the tool;
//! * `code_challenge_method` is `S256`, `plain`, or absent; absent with a challenge means
//!   `plain`; a method without a challenge, or any other method, is a 400;
//! * an S256 challenge is 43 base64url characters; a plain one 43 to 128 unreserved characters;
//! * `limit` (optional) is a positive number of credits, the key's spend limit; `key_label`
//!   (optional) at most 100 characters, the key's label;
//! * a parameter given twice is a 400.
//!
//! The consent page shows the app, the limit and the label; the person may change the limit
//! before approving. Approve redirects to the callback with `code` appended to its query (an
//! existing query is kept); Deny redirects with `error=access_denied`. The person who approves
//! is remembered by a cookie (`modelgates_person`), so a second approval in the same browser
//! (consent page or auto-approve) is the same user; the page offers to approve as another
//! person instead.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Form, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use url::Url;

use crate::account::KeyAsk;
use crate::faults::{Endpoint, Outcome};
use crate::pages::{bad_auth_request, code_page, consent, denied_page};
use crate::state::{Challenge, Grant, Method, Shared};

/// The cookie that remembers who approved in this browser.
const PERSON_COOKIE: &str = "modelgates_person";

/// How the consent page names an app that gave no callback.
const HEADLESS_APP: &str = "a tool without a browser (the code is shown here to paste)";

pub(crate) async fn authorize(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Outcome::Answer(response) = shared.faults.apply(Endpoint::Auth).await {
        return response;
    }
    let request = match AuthRequest::parse(query.as_deref().unwrap_or("")) {
        Ok(request) => request,
        Err(reason) => return bad_auth_request(&reason),
    };
    let person = known_person(&shared, &headers);
    if shared.auto_approve {
        let user_id = person.unwrap_or_else(|| shared.accounts.new_user());
        let grant = Grant {
            user_id,
            ask: request.ask,
        };
        let code = shared.issue_code(request.challenge, grant.clone());
        let answer = match &request.callback_url {
            Some(callback) => redirect(StatusCode::FOUND, with_param(callback, "code", &code)),
            None => code_page(&code),
        };
        return remembering(&grant.user_id, answer);
    }
    let origin = match &request.callback_url {
        Some(callback) => callback.origin().ascii_serialization(),
        None => HEADLESS_APP.to_owned(),
    };
    let ask = request.ask.clone();
    let consent_id = shared.add_consent(request.callback_url, request.challenge, request.ask);
    consent(&origin, &consent_id, &ask, person.as_deref())
}

/// The person this browser approved as before, if the emulator knows them.
fn known_person(shared: &Shared, headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == PERSON_COOKIE)
        .map(|(_, value)| value.to_owned())
        .filter(|user_id| shared.accounts.knows(user_id))
}

/// `response`, with the cookie that remembers `user_id` in this browser.
fn remembering(user_id: &str, mut response: Response) -> Response {
    let cookie =
        format!("{PERSON_COOKIE}={user_id}; Path=/; HttpOnly; SameSite=Lax; Max-Age=31536000");
    if let Ok(cookie) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

#[derive(serde::Deserialize)]
pub(crate) struct Decision {
    consent_id: String,
    decision: String,
    /// The spend limit as the person left it on the page (empty: the one asked).
    #[serde(default)]
    limit: Option<String>,
    /// `new`: approve as another person than the one remembered.
    #[serde(default)]
    person: Option<String>,
}

/// The request an `/auth` URL makes, read as `GET /auth` would read it.
fn parse_auth_url(auth_url: &str) -> Result<AuthRequest, InvalidAuthUrl> {
    let url =
        Url::parse(auth_url).map_err(|_| InvalidAuthUrl("it is not an absolute URL".into()))?;
    if url.path() != "/auth" {
        return Err(InvalidAuthUrl(format!(
            "its path is {}, not /auth",
            url.path()
        )));
    }
    AuthRequest::parse(url.query().unwrap_or("")).map_err(InvalidAuthUrl)
}

/// An `/auth` URL answered as a user on the consent page would answer it, without a browser.
/// `approve`: `Some(Some(user))` approves as that user, `Some(None)` as a new person, `None`
/// denies.
pub(crate) fn decide_url(
    shared: &Shared,
    auth_url: &str,
    approve: Option<Option<String>>,
) -> Result<Url, InvalidAuthUrl> {
    let request = parse_auth_url(auth_url)?;
    let Some(callback) = request.callback_url.clone() else {
        return Err(InvalidAuthUrl(
            "it has no callback_url (a headless sign-in): use Emulator::approve_headless".into(),
        ));
    };
    Ok(match approve {
        Some(user_id) => with_param(&callback, "code", &approved_code(shared, request, user_id)),
        None => with_param(&callback, "error", "access_denied"),
    })
}

/// A headless `/auth` URL (no `callback_url`) approved as a new person: the code the page
/// would show.
pub(crate) fn approve_headless(shared: &Shared, auth_url: &str) -> Result<String, InvalidAuthUrl> {
    let request = parse_auth_url(auth_url)?;
    if request.callback_url.is_some() {
        return Err(InvalidAuthUrl(
            "it has a callback_url: use Emulator::approve".into(),
        ));
    }
    Ok(approved_code(shared, request, None))
}

/// The code an approval of `request` issues, as `user_id` or a new person.
fn approved_code(shared: &Shared, request: AuthRequest, user_id: Option<String>) -> String {
    let user_id = user_id.unwrap_or_else(|| shared.accounts.new_user());
    let grant = Grant {
        user_id,
        ask: request.ask,
    };
    shared.issue_code(request.challenge, grant)
}

/// An `/auth` URL that [`Emulator::approve`](crate::Emulator::approve) or
/// [`Emulator::deny`](crate::Emulator::deny) could not answer; the message says why, as the
/// emulator's 400 page would.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidAuthUrl(String);

impl std::fmt::Display for InvalidAuthUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "not a valid /auth URL: {}", self.0)
    }
}

impl std::error::Error for InvalidAuthUrl {}

impl InvalidAuthUrl {
    pub(crate) fn new(reason: String) -> Self {
        Self(reason)
    }
}

pub(crate) async fn decide(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Form(decision): Form<Decision>,
) -> Response {
    let Some(consent) = shared.take_consent(&decision.consent_id) else {
        return bad_auth_request(
            "This authorization request has expired or was already answered. Start again from the app.",
        );
    };
    match decision.decision.as_str() {
        "approve" => {
            let mut ask = consent.ask;
            match decision.limit.as_deref().map(str::trim) {
                None | Some("") => {}
                Some(limit) => match parse_limit(limit) {
                    Ok(limit) => ask.limit = Some(limit),
                    Err(reason) => return bad_auth_request(reason),
                },
            }
            let remembered = known_person(&shared, &headers)
                .filter(|_| decision.person.as_deref() != Some("new"));
            let user_id = remembered.unwrap_or_else(|| shared.accounts.new_user());
            let grant = Grant { user_id, ask };
            let code = shared.issue_code(consent.challenge, grant.clone());
            let answer = match &consent.callback_url {
                Some(callback) => {
                    redirect(StatusCode::SEE_OTHER, with_param(callback, "code", &code))
                }
                None => code_page(&code),
            };
            remembering(&grant.user_id, answer)
        }
        "deny" => match &consent.callback_url {
            Some(callback) => redirect(
                StatusCode::SEE_OTHER,
                with_param(callback, "error", "access_denied"),
            ),
            None => denied_page(),
        },
        _ => bad_auth_request("The decision must be approve or deny."),
    }
}

struct AuthRequest {
    /// `None`: a headless sign-in, whose code is shown on the page.
    callback_url: Option<Url>,
    challenge: Option<Challenge>,
    ask: KeyAsk,
}

/// A spend limit as `/auth` and the consent page take it: a positive number of credits.
fn parse_limit(text: &str) -> Result<f64, &'static str> {
    match text.parse::<f64>() {
        Ok(limit) if limit.is_finite() && limit > 0.0 => Ok(limit),
        _ => Err("limit must be a positive number of credits."),
    }
}

impl AuthRequest {
    fn parse(query: &str) -> Result<Self, String> {
        let mut params: HashMap<String, String> = HashMap::new();
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            if params
                .insert(name.to_string(), value.into_owned())
                .is_some()
            {
                return Err(format!("The parameter {name} is given more than once."));
            }
        }
        let callback_url = params
            .get("callback_url")
            .map(|url| check_callback_url(url))
            .transpose()?;
        let method = match params.get("code_challenge_method") {
            None => None,
            Some(m) => {
                Some(Method::parse(m).ok_or("Invalid code_challenge_method: use S256 or plain.")?)
            }
        };
        let challenge = match (params.get("code_challenge"), method) {
            (None, None) => None,
            (None, Some(_)) => {
                return Err("code_challenge_method was given without a code_challenge.".into());
            }
            (Some(value), method) => {
                let method = method.unwrap_or(Method::Plain);
                check_challenge(value, method)?;
                Some(Challenge {
                    value: value.clone(),
                    method,
                })
            }
        };
        let s256 = matches!(&challenge, Some(c) if c.method == Method::S256);
        if callback_url.is_none() && !s256 {
            return Err(
                "Without a callback_url (a headless sign-in, whose code is shown on the \
                 page), a code_challenge with code_challenge_method=S256 is required."
                    .into(),
            );
        }
        let limit = params.get("limit").map(|l| parse_limit(l)).transpose()?;
        let label = params.get("key_label").cloned();
        if label.as_ref().is_some_and(|l| l.chars().count() > 100) {
            return Err("key_label must be at most 100 characters.".into());
        }
        Ok(Self {
            callback_url,
            challenge,
            ask: KeyAsk { limit, label },
        })
    }
}

fn check_callback_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|_| "callback_url is not an absolute URL.".to_owned())?;
    let local = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match url.scheme() {
        "https" => Ok(url),
        "http" if local => Ok(url),
        _ => Err("callback_url must use https, or http on localhost, 127.0.0.1 or [::1].".into()),
    }
}

fn check_challenge(value: &str, method: Method) -> Result<(), String> {
    let ok = match method {
        Method::S256 => {
            value.len() == 43
                && value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        }
        Method::Plain => {
            (43..=128).contains(&value.len())
                && value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
        }
    };
    if ok {
        Ok(())
    } else {
        Err(match method {
            Method::S256 => "An S256 code_challenge must be 43 base64url characters.".into(),
            Method::Plain => {
                "A plain code_challenge must be 43 to 128 unreserved characters.".into()
            }
        })
    }
}

fn with_param(callback: &Url, name: &str, value: &str) -> Url {
    let mut url = callback.clone();
    url.query_pairs_mut().append_pair(name, value);
    url
}

fn redirect(status: StatusCode, to: Url) -> Response {
    match HeaderValue::from_str(to.as_str()) {
        Ok(location) => (status, [(header::LOCATION, location)]).into_response(),
        Err(_) => bad_auth_request("callback_url cannot be redirected to."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S256: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn parse(q: &str) -> Result<AuthRequest, String> {
        AuthRequest::parse(q)
    }

    #[test]
    fn callback_rules() {
        assert!(parse("callback_url=https%3A%2F%2Fapp.example%2Fcb").is_ok());
        assert!(parse("callback_url=http%3A%2F%2Flocalhost%3A3000%2Fcb").is_ok());
        assert!(parse("callback_url=http%3A%2F%2F127.0.0.1%3A9%2Fcb").is_ok());
        assert!(parse("callback_url=http%3A%2F%2F%5B%3A%3A1%5D%3A9%2Fcb").is_ok());
        assert!(parse("callback_url=http%3A%2F%2Fapp.example%2Fcb").is_err());
        assert!(parse("callback_url=javascript%3Aalert(1)").is_err());
        assert!(parse("callback_url=%2Fcb").is_err());
        assert!(parse("").is_err());
    }

    #[test]
    fn challenge_rules() {
        let cb = "callback_url=https%3A%2F%2Fa.example%2F";
        let s256 = parse(&format!(
            "{cb}&code_challenge={S256}&code_challenge_method=S256"
        ))
        .unwrap();
        assert_eq!(s256.challenge.unwrap().method, Method::S256);
        let implicit = parse(&format!("{cb}&code_challenge={S256}")).unwrap();
        assert_eq!(
            implicit.challenge.unwrap().method,
            Method::Plain,
            "absent method means plain"
        );
        assert!(
            parse(&format!(
                "{cb}&code_challenge={S256}x&code_challenge_method=S256"
            ))
            .is_err()
        );
        assert!(
            parse(&format!(
                "{cb}&code_challenge={S256}&code_challenge_method=S512"
            ))
            .is_err()
        );
        assert!(parse(&format!("{cb}&code_challenge_method=S256")).is_err());
        assert!(
            parse(&format!(
                "{cb}&code_challenge=short&code_challenge_method=plain"
            ))
            .is_err()
        );
        assert!(
            parse(&format!(
                "{cb}&code_challenge={}&code_challenge_method=plain",
                "a".repeat(129)
            ))
            .is_err()
        );
        assert!(
            parse(&format!(
                "{cb}&code_challenge={}&code_challenge_method=plain",
                "a~.-_".repeat(20)
            ))
            .is_ok()
        );
        assert!(parse(&format!("{cb}&{cb}")).is_err(), "duplicates");
    }

    #[test]
    fn limit_and_label_rules() {
        let cb = "callback_url=https%3A%2F%2Fa.example%2F";
        let asked = parse(&format!("{cb}&limit=12.5&key_label=My+app")).unwrap();
        assert_eq!(asked.ask.limit, Some(12.5));
        assert_eq!(asked.ask.label.as_deref(), Some("My app"));
        for bad in ["0", "-1", "NaN", "inf", "x"] {
            assert!(parse(&format!("{cb}&limit={bad}")).is_err(), "{bad}");
        }
        assert!(parse(&format!("{cb}&key_label={}", "a".repeat(101))).is_err());
    }
}
