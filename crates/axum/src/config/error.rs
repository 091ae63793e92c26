//! [`ConfigError`]: a configuration that cannot work, with a message that says what to change.

use modelgates_oauth_core::client::ClientConfigError;

/// The command every message and doc recommends for a secret: one line of base64 of 64 random
/// bytes. (`openssl rand -base64 64` alone wraps at 64 columns; wrapped secrets are accepted
/// too, but a one-line value pastes into any `.env` file or shell.)
macro_rules! secret_command {
    () => {
        "openssl rand -base64 64 | tr -d '\\n'"
    };
}
pub(super) use secret_command;

/// How to make a good secret, quoted by every secret error.
pub(super) const MAKE_A_SECRET: &str = concat!("make one with `", secret_command!(), "`");
/// A configuration that cannot work. Each message says what to change.
///
/// Its `Debug` form is the message too, so that `ModelGatesConfig::from_env()?` in a `main`
/// that returns `Result` prints something a person can act on.
///
/// ```
/// use modelgates_axum::ModelGatesConfig;
///
/// let error = ModelGatesConfig::from_lookup(|_| None).unwrap_err();
/// assert_eq!(format!("{error:?}"), error.to_string());
/// assert!(format!("{error:?}").starts_with("MODELGATES_PUBLIC_URL is not set"));
/// ```
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A required environment variable is not set.
    #[error("{name} is not set: {hint}")]
    MissingVar {
        /// The variable.
        name: &'static str,
        /// How to set it.
        hint: &'static str,
    },
    /// An environment variable has a value that cannot be used.
    #[error("{name} is invalid: {reason}")]
    InvalidVar {
        /// The variable.
        name: &'static str,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// The cookie secret is not base64.
    #[error("the cookie secret is not valid base64; {MAKE_A_SECRET}")]
    SecretNotBase64,
    /// The cookie secret is shorter than 64 bytes.
    #[error("the cookie secret has {0} bytes, at least 64 are needed; {MAKE_A_SECRET}")]
    SecretTooShort(usize),
    /// The public URL cannot serve as the app's origin.
    #[error("invalid public URL `{url}`: {reason}")]
    InvalidPublicUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A route path or redirect target is not a usable local path.
    #[error("invalid path `{path}` for {what}: {reason}")]
    InvalidPath {
        /// Which setting.
        what: &'static str,
        /// The path as given.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Two routes share a path.
    #[error("the login, callback and logout paths must differ; `{0}` is used twice")]
    DuplicatePath(String),
    /// A cookie name is not a valid cookie token.
    #[error("invalid cookie name `{0}`: use letters, digits, `-` and `_`")]
    InvalidCookieName(String),
    /// A weak PKCE mode was chosen without the explicit opt-in.
    #[error(
        "the PKCE mode `{0}` is weaker than S256 and needs an explicit opt-in: call \
         allow_weak_pkce() or set MODELGATES_ALLOW_WEAK_PKCE=true, or use S256"
    )]
    WeakPkceNotAllowed(&'static str),
    /// The cookie Domain cannot work with this public URL or cookie name.
    #[error("invalid cookie domain `{domain}`: {reason}")]
    InvalidCookieDomain {
        /// The domain as given.
        domain: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The default spend limit is above the most a user may ask for.
    #[error(
        "the key limit ({limit} credits) is above the maximum key limit ({max} credits): lower \
         it or raise the maximum"
    )]
    KeyLimitAboveMax {
        /// The default limit.
        limit: String,
        /// The maximum.
        max: String,
    },
    /// A limit is zero.
    #[error("{0} must be at least 1")]
    ZeroLimit(&'static str),
    /// A lifetime or timeout is zero.
    #[error("{0} must be longer than zero")]
    ZeroDuration(&'static str),
    /// The ModelGates base URL or the HTTP client is unusable.
    #[error(transparent)]
    Client(#[from] ClientConfigError),
}

impl From<modelgates_oauth_core::origin::InvalidPublicUrl> for ConfigError {
    fn from(error: modelgates_oauth_core::origin::InvalidPublicUrl) -> Self {
        Self::InvalidPublicUrl {
            url: error.url,
            reason: error.reason,
        }
    }
}

impl ConfigError {
    pub(super) fn for_var(self, name: &'static str) -> Self {
        Self::InvalidVar {
            name,
            reason: self.to_string(),
        }
    }
}

impl std::fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}
