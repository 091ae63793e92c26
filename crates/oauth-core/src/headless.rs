//! Headless sign-in: a tool on a machine with no browser (an SSH session, a container) shows a
//! URL, the person approves on any device, and pastes the code ModelGates then shows.
//!
//! The rules:
//!
//! * The `/auth` URL carries no `callback_url`, which is what asks ModelGates to show the code
//!   instead of redirecting. PKCE is always S256 (ModelGates refuses `plain` or no challenge
//!   here: the code is read off a screen, so only the verifier the tool never shows makes it
//!   useless to anyone else). `limit` and `key_label` are asked as in the web flow
//!   ([`KeyRequest`]).
//! * A pasted code is checked before anything is sent ([`PastedCode::parse`]): surrounding
//!   whitespace (the newline of a terminal, spaces of a copy) is trimmed, and what is left
//!   must be a code as a callback would carry it: 1 to 2,048 bytes of printable ASCII
//!   without spaces. Otherwise [`PastedCodeError`] says what to do, and the sign-in can take
//!   another paste.
//! * The code, like the verifier, never prints: [`PastedCode`]'s `Debug` hides it, and no
//!   error holds it.
//!
//! ```no_run
//! use modelgates_oauth_core::{KeyRequest, ModelGatesClient};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = ModelGatesClient::builder().app_title("My tool").build()?;
//! let sign_in = client.headless_sign_in(&KeyRequest::default());
//! println!("Open this URL on any device, approve, then paste the code shown:\n{}", sign_in.url());
//! let mut pasted = String::new();
//! std::io::stdin().read_line(&mut pasted)?;
//! let issued = sign_in.exchange(&client, &pasted).await?;
//! println!("signed in with {}", issued.key.masked());
//! # Ok(())
//! # }
//! ```

use url::Url;

use crate::callback::MAX_CODE_LEN;
use crate::{ChallengeMethod, ExchangeError, IssuedKey, KeyRequest, ModelGatesClient, Pkce};

/// A headless sign-in under way: the URL to show, and the verifier its code needs.
#[derive(Debug)]
#[must_use = "the sign-in needs its URL shown and the pasted code exchanged"]
pub struct HeadlessSignIn {
    url: Url,
    pkce: Pkce,
}

impl ModelGatesClient {
    /// Starts a headless sign-in asking for a key as `key` says (spend limit, label): an
    /// `/auth` URL without `callback_url`, with a fresh S256 challenge. See
    /// [`headless`](crate::headless).
    ///
    /// ```
    /// use modelgates_oauth_core::{KeyRequest, ModelGatesClient};
    ///
    /// let client = ModelGatesClient::new().unwrap();
    /// let sign_in = client.headless_sign_in(&KeyRequest::default());
    /// let url = sign_in.url().as_str();
    /// assert!(url.starts_with("https://modelgates.ai/auth?code_challenge="));
    /// assert!(url.ends_with("&code_challenge_method=S256"));
    /// assert!(!url.contains("callback_url"));
    /// ```
    pub fn headless_sign_in(&self, key: &KeyRequest) -> HeadlessSignIn {
        let pkce = Pkce::generate(ChallengeMethod::S256);
        let url = self.auth_url(None, Some(&pkce.challenge()), key);
        HeadlessSignIn { url, pkce }
    }
}

impl HeadlessSignIn {
    /// The URL to show the person, alone on its line (a terminal makes it clickable, and it
    /// can be copied to another device).
    #[must_use]
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Checks what the person pasted ([`PastedCode::parse`]) and exchanges it for the key.
    ///
    /// # Errors
    ///
    /// [`HeadlessError::Code`] when the paste is not a code (nothing was sent: ask again);
    /// [`HeadlessError::Exchange`] when ModelGates refused it (a wrong or expired code is
    /// [`ExchangeError::CodeRejected`]: start again) or could not be reached.
    pub async fn exchange(
        &self,
        client: &ModelGatesClient,
        pasted: &str,
    ) -> Result<IssuedKey, HeadlessError> {
        let code = PastedCode::parse(pasted)?;
        Ok(client
            .exchange_code(code.expose_secret(), Some(&self.pkce))
            .await?)
    }
}

/// A code as the person pasted it, checked by the module's rules. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct PastedCode(String);

impl std::fmt::Debug for PastedCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PastedCode(…)")
    }
}

impl PastedCode {
    /// `input` trimmed and checked.
    ///
    /// ```
    /// use modelgates_oauth_core::headless::{PastedCode, PastedCodeError};
    ///
    /// assert_eq!(PastedCode::parse("  abc-123_XYZ \n").unwrap().expose_secret(), "abc-123_XYZ");
    /// assert_eq!(PastedCode::parse(" \n"), Err(PastedCodeError::Empty));
    /// assert_eq!(PastedCode::parse("two words"), Err(PastedCodeError::Malformed));
    /// assert_eq!(format!("{:?}", PastedCode::parse("abc").unwrap()), "PastedCode(…)");
    /// ```
    ///
    /// # Errors
    ///
    /// [`PastedCodeError::Empty`] when nothing but whitespace was pasted,
    /// [`PastedCodeError::Malformed`] when what was pasted cannot be a code.
    pub fn parse(input: &str) -> Result<Self, PastedCodeError> {
        let code = input.trim();
        if code.is_empty() {
            return Err(PastedCodeError::Empty);
        }
        let well_formed = code.len() <= MAX_CODE_LEN && code.bytes().all(|b| b.is_ascii_graphic());
        if !well_formed {
            return Err(PastedCodeError::Malformed);
        }
        Ok(Self(code.to_owned()))
    }

    /// The code, for the exchange.
    #[must_use]
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

/// A paste that is not a code; nothing was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PastedCodeError {
    /// Nothing but whitespace.
    #[error("nothing was pasted: paste the code ModelGates showed after you approved")]
    Empty,
    /// Spaces inside, characters a code never has, or too long.
    #[error(
        "that is not a code ModelGates shows (one word of letters, digits and punctuation): copy it again and paste it alone"
    )]
    Malformed,
}

/// Why a headless sign-in's exchange failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HeadlessError {
    /// What was pasted is not a code: ask again.
    #[error(transparent)]
    Code(#[from] PastedCodeError),
    /// ModelGates refused the code or could not be reached.
    #[error(transparent)]
    Exchange(#[from] ExchangeError),
}
