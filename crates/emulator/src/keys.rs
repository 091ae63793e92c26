//! `POST /api/v1/auth/keys`: redeem a code for a user-controlled key.
//!
//! The rules, in the order they are applied:
//!
//! 1. Any method but POST: 405 `Method Not Allowed`.
//! 2. A body that is not a JSON object with a string `code`: 400.
//! 3. The code is taken out of the table (whatever happens next, it cannot be used again):
//!    unknown, used or expired is 403 `Invalid code or code_verifier`.
//! 4. A code bound to a challenge needs the same `code_challenge_method` as `/auth` got:
//!    otherwise 400 `Invalid code_challenge_method`.
//! 5. The `code_verifier` must be present, well formed, and match the challenge:
//!    otherwise 403 `Invalid code or code_verifier`.
//! 6. A code issued without a challenge must be redeemed without a `code_verifier`
//!    (RFC 9700 §2.1.1: otherwise an attacker's code could be redeemed in a victim's PKCE
//!    flow): 403 `Invalid code or code_verifier`, unless the emulator was built with
//!    [`lenient_pkce`](crate::EmulatorBuilder::lenient_pkce).
//! 7. Success: `{"key": "sk-mg-v1-…", "user_id": "…"}`, with `expires_at` (RFC 3339) when keys
//!    expire ([`key_lifetime`](crate::EmulatorBuilder::key_lifetime)). The key has the spend
//!    limit and label its approval granted.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method as HttpMethod, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};

use crate::faults::{Endpoint, Outcome};
use crate::refusals::api_error;
use crate::state::{Challenge, ExchangeRecord, Method, Shared};

const INVALID_CODE: &str = "Invalid code or code_verifier";
const INVALID_METHOD: &str = "Invalid code_challenge_method";

#[derive(serde::Deserialize)]
struct ExchangeBody {
    code: String,
    #[serde(default)]
    code_verifier: Option<String>,
    #[serde(default)]
    code_challenge_method: Option<String>,
}

pub(crate) async fn exchange(
    State(shared): State<Arc<Shared>>,
    method: HttpMethod,
    body: Bytes,
) -> Response {
    shared.record_exchange(ExchangeRecord {
        method: method.to_string(),
        json: serde_json::from_slice(&body).ok(),
        raw: String::from_utf8_lossy(&body).into_owned(),
    });
    if method != HttpMethod::POST {
        return api_error(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
    }
    if let Outcome::Answer(response) = shared.faults.apply(Endpoint::Keys).await {
        return response;
    }
    let Ok(request) = serde_json::from_slice::<ExchangeBody>(&body) else {
        return api_error(
            StatusCode::BAD_REQUEST,
            "Invalid request body: expected JSON {code, code_verifier, code_challenge_method}",
        );
    };
    let Some(entry) = shared.take_code(&request.code) else {
        return api_error(StatusCode::FORBIDDEN, INVALID_CODE);
    };
    if let Some(challenge) = &entry.challenge {
        let given = request
            .code_challenge_method
            .as_deref()
            .and_then(Method::parse);
        if given != Some(challenge.method) {
            return api_error(StatusCode::BAD_REQUEST, INVALID_METHOD);
        }
        if !verifier_matches(request.code_verifier.as_deref(), challenge) {
            return api_error(StatusCode::FORBIDDEN, INVALID_CODE);
        }
    } else if request.code_verifier.is_some() && !shared.lenient_pkce {
        return api_error(StatusCode::FORBIDDEN, INVALID_CODE);
    }
    let key = shared.issue_key(&request.code, &entry.grant);
    let expires_at = shared
        .accounts
        .key(&key)
        .and_then(|record| record.expires_at)
        .map(crate::api::rfc3339);
    let mut answer = serde_json::json!({"key": key, "user_id": entry.grant.user_id});
    if let Some(expires_at) = expires_at {
        answer["expires_at"] = expires_at.into();
    }
    Json(answer).into_response()
}

fn verifier_matches(verifier: Option<&str>, challenge: &Challenge) -> bool {
    let Some(verifier) = verifier else {
        return false;
    };
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    if !well_formed {
        return false;
    }
    let derived = match challenge.method {
        Method::S256 => URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
        Method::Plain => verifier.to_owned(),
    };
    derived == challenge.value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_vector_matches() {
        let challenge = Challenge {
            value: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
            method: Method::S256,
        };
        assert!(verifier_matches(
            Some("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            &challenge
        ));
        assert!(!verifier_matches(
            Some("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK"),
            &challenge
        ));
        assert!(!verifier_matches(None, &challenge));
    }
}
