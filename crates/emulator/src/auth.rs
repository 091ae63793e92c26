//! `GET /auth` and its consent form.
//!
//! The rules, as ModelGates documents them and RFC 7636 defines the challenge:
//!
//! * `callback_url` is required and must be `https`, or `http` on `localhost`, `127.0.0.1` or
//!   `[::1]` (any port);
//! * `code_challenge_method` is `S256`, `plain`, or absent; absent with a challenge means
//!   `plain`; a method without a challenge, or any other method, is a 400;
//! * an S256 challenge is 43 base64url characters; a plain one 43 to 128 unreserved characters;
//! * a parameter given twice is a 400.
//!
//! Approve redirects to the callback with `code` appended to its query (an existing query is
//! kept); Deny redirects with `error=access_denied`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Form, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use url::Url;

use crate::faults::{Endpoint, Outcome};
use crate::pages::{bad_auth_request, consent};
use crate::state::{Challenge, Method, Shared};

pub(crate) async fn authorize(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
) -> Response {
    if let Outcome::Answer(response) = shared.faults.apply(Endpoint::Auth).await {
        return response;
    }
    let request = match AuthRequest::parse(query.as_deref().unwrap_or("")) {
        Ok(request) => request,
        Err(reason) => return bad_auth_request(&reason),
    };
    if shared.auto_approve {
        let code = shared.issue_code(request.challenge);
        return redirect(
            StatusCode::FOUND,
            with_param(&request.callback_url, "code", &code),
        );
    }
    let origin = request.callback_url.origin().ascii_serialization();
    let consent_id = shared.add_consent(request.callback_url, request.challenge);
    consent(&origin, &consent_id)
}

#[derive(serde::Deserialize)]
pub(crate) struct Decision {
    consent_id: String,
    decision: String,
}

/// An `/auth` URL answered as a user on the consent page would answer it, without a browser.
pub(crate) fn decide_url(
    shared: &Shared,
    auth_url: &str,
    approve: bool,
) -> Result<Url, InvalidAuthUrl> {
    let url =
        Url::parse(auth_url).map_err(|_| InvalidAuthUrl("it is not an absolute URL".into()))?;
    if url.path() != "/auth" {
        return Err(InvalidAuthUrl(format!(
            "its path is {}, not /auth",
            url.path()
        )));
    }
    let request = AuthRequest::parse(url.query().unwrap_or("")).map_err(InvalidAuthUrl)?;
    Ok(if approve {
        let code = shared.issue_code(request.challenge);
        with_param(&request.callback_url, "code", &code)
    } else {
        with_param(&request.callback_url, "error", "access_denied")
    })
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

pub(crate) async fn decide(
    State(shared): State<Arc<Shared>>,
    Form(decision): Form<Decision>,
) -> Response {
    let Some(consent) = shared.take_consent(&decision.consent_id) else {
        return bad_auth_request(
            "This authorization request has expired or was already answered. Start again from the app.",
        );
    };
    match decision.decision.as_str() {
        "approve" => {
            let code = shared.issue_code(consent.challenge);
            redirect(
                StatusCode::SEE_OTHER,
                with_param(&consent.callback_url, "code", &code),
            )
        }
        "deny" => redirect(
            StatusCode::SEE_OTHER,
            with_param(&consent.callback_url, "error", "access_denied"),
        ),
        _ => bad_auth_request("The decision must be approve or deny."),
    }
}

struct AuthRequest {
    callback_url: Url,
    challenge: Option<Challenge>,
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
            .ok_or("callback_url is required.")?;
        let callback_url = check_callback_url(callback_url)?;
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
        Ok(Self {
            callback_url,
            challenge,
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
}
