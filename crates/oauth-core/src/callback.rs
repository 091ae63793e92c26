//! Step 2 of the flow, on the app's side: what ModelGates' redirect brought back to the
//! callback URL.
//!
//! [`CallbackParams::parse`] reads the callback's query string by these rules:
//!
//! * An `error` parameter wins over everything else: `error=access_denied` means the user
//!   pressed Deny ([`CallbackParams::AccessDenied`]); any other value is reported as
//!   [`CallbackParams::Failed`], keeping only the characters RFC 6749 §4.1.2.1 allows in an
//!   `error` (`%x20-21 / %x23-5B / %x5D-7E`: no control characters, no `"` or `\`, nothing
//!   outside ASCII), cut to 100 characters. It is still untrusted text: it may hold `<`.
//! * Otherwise `code` must be present exactly once ([`CallbackError::CodeMissing`],
//!   [`CallbackError::CodeDuplicated`]), and be 1 to 2,048 bytes of printable
//!   ASCII ([`CallbackError::CodeMalformed`]), so that no header, log line or request body
//!   built from it can be split.
//! * Other parameters are ignored: the callback URL may carry the app's own.
//!
//! ```
//! use modelgates_oauth_core::CallbackParams;
//! use modelgates_oauth_core::flow::CallbackError;
//!
//! assert_eq!(CallbackParams::parse("code=abc&from=nav"), Ok(CallbackParams::Code("abc".into())));
//! assert_eq!(CallbackParams::parse("error=access_denied"), Ok(CallbackParams::AccessDenied));
//! assert_eq!(CallbackParams::parse("code=a&code=b"), Err(CallbackError::CodeDuplicated));
//! assert_eq!(CallbackParams::parse("code=a%0Ab"), Err(CallbackError::CodeMalformed));
//! ```

/// The longest `code` accepted, in bytes.
pub(crate) const MAX_CODE_LEN: usize = 2048;

/// The longest `error` value kept, in characters.
const MAX_ERROR_CHARS: usize = 100;

/// What ModelGates' redirect to the callback URL says.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallbackParams {
    /// The user approved: exchange this one-time code for the key.
    Code(String),
    /// The user pressed Deny (`error=access_denied`).
    AccessDenied,
    /// ModelGates reported another error (`error=…`, filtered, at most 100 characters).
    Failed {
        /// The `error` value with only RFC 6749's characters kept; untrusted text, to be
        /// escaped wherever it is shown.
        error: String,
    },
}

/// A callback query that carries neither a usable code nor an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallbackError {
    /// No `code` parameter.
    #[error("the callback carries no code; start the sign-in again")]
    CodeMissing,
    /// More than one `code` parameter.
    #[error("the callback carries more than one code; start the sign-in again")]
    CodeDuplicated,
    /// An empty code, one over 2 KB, or one with characters other than printable ASCII.
    #[error("the callback's code is malformed; start the sign-in again")]
    CodeMalformed,
}

impl CallbackParams {
    /// Reads a callback's query string (without the `?`) by the module's rules.
    ///
    /// # Errors
    ///
    /// A [`CallbackError`] when there is no error and no single well-formed code.
    pub fn parse(query: &str) -> Result<Self, CallbackError> {
        let mut code = None;
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            match &*name {
                "error" if value == "access_denied" => return Ok(Self::AccessDenied),
                "error" => {
                    return Ok(Self::Failed {
                        error: value
                            .chars()
                            .filter(|&c| is_error_char(c))
                            .take(MAX_ERROR_CHARS)
                            .collect(),
                    });
                }
                "code" if code.is_some() => return Err(CallbackError::CodeDuplicated),
                "code" => code = Some(value),
                _ => {}
            }
        }
        let code = code.ok_or(CallbackError::CodeMissing)?;
        let well_formed = !code.is_empty()
            && code.len() <= MAX_CODE_LEN
            && code.bytes().all(|b| b.is_ascii_graphic());
        if !well_formed {
            return Err(CallbackError::CodeMalformed);
        }
        Ok(Self::Code(code.into_owned()))
    }
}

/// RFC 6749 §4.1.2.1: `error = 1*( %x20-21 / %x23-5B / %x5D-7E )`.
fn is_error_char(c: char) -> bool {
    matches!(c, '\x20'..='\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_one_and_printable() {
        assert_eq!(
            CallbackParams::parse("a=1&code=xyz"),
            Ok(CallbackParams::Code("xyz".into()))
        );
        assert_eq!(CallbackParams::parse(""), Err(CallbackError::CodeMissing));
        assert_eq!(
            CallbackParams::parse("code="),
            Err(CallbackError::CodeMalformed)
        );
        assert_eq!(
            CallbackParams::parse("code=a%20b"),
            Err(CallbackError::CodeMalformed)
        );
        let longest = "c".repeat(MAX_CODE_LEN);
        assert!(CallbackParams::parse(&format!("code={longest}")).is_ok());
        assert_eq!(
            CallbackParams::parse(&format!("code={longest}c")),
            Err(CallbackError::CodeMalformed)
        );
    }

    #[test]
    fn errors_keep_only_rfc_6749_characters() {
        assert_eq!(
            CallbackParams::parse("error=bad%0D%0Aforged%20line%22%5C%C3%A9%00"),
            Ok(CallbackParams::Failed {
                error: "badforged line".into()
            })
        );
    }

    #[test]
    fn errors_win_and_are_bounded() {
        assert_eq!(
            CallbackParams::parse("code=x&error=access_denied"),
            Ok(CallbackParams::AccessDenied)
        );
        let long = "e".repeat(500);
        assert_eq!(
            CallbackParams::parse(&format!("error={long}")),
            Ok(CallbackParams::Failed {
                error: "e".repeat(100)
            })
        );
    }
}
