//! The key a sign-in asks ModelGates for: its spend limit, the most a user may choose, its
//! label.

use super::{ModelGatesConfig, SpendLimit};

/// The most a user may ask to be the spend limit at sign-in unless configured: 1000 credits.
pub const DEFAULT_MAX_KEY_LIMIT: SpendLimit = match SpendLimit::from_cents(100_000) {
    Some(limit) => limit,
    None => panic!("1000 credits is a valid limit"),
};

impl ModelGatesConfig {
    /// The spend limit asked for every key a sign-in issues, unless the user picks one with
    /// `GET /login?limit=N` (default: none, and then the maximum,
    /// [`Self::with_max_key_limit`], is asked: a key is never asked for without a limit).
    /// ModelGates shows it on its consent page, where the user may change it (raise it too),
    /// and enforces it: the app does not.
    ///
    /// ```
    /// use modelgates_axum::config::SpendLimit;
    /// use modelgates_axum::{CookieSecret, ModelGatesConfig};
    ///
    /// let config = ModelGatesConfig::new("http://localhost:3000", CookieSecret::generate())
    ///     .with_key_limit(SpendLimit::parse("5").unwrap())
    ///     .with_max_key_limit(SpendLimit::parse("50").unwrap())
    ///     .with_key_label("My chat app");
    /// ```
    pub fn with_key_limit(mut self, limit: SpendLimit) -> Self {
        self.key_limit = Some(limit);
        self
    }

    /// The spend limit asked for every key unless the user picks one ([`Self::with_key_limit`]),
    /// for a page that offers it.
    #[must_use]
    pub fn key_limit(&self) -> Option<SpendLimit> {
        self.key_limit
    }

    /// The most a user may ask for with `GET /login?limit=N` (default
    /// [`DEFAULT_MAX_KEY_LIMIT`], 1000 credits; more is a 400), and the limit asked when neither
    /// the user nor [`Self::with_key_limit`] picked one. This bounds what the app asks for; the
    /// person may still change the limit on ModelGates' consent page.
    pub fn with_max_key_limit(mut self, limit: SpendLimit) -> Self {
        self.max_key_limit = limit;
        self
    }

    /// The label asked for every key a sign-in issues, shown to the user on ModelGates
    /// (default: the app title, [`Self::with_app_title`]).
    pub fn with_key_label(mut self, label: impl Into<String>) -> Self {
        self.key_label = Some(label.into());
        self
    }
}
