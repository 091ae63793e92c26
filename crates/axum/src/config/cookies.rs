//! The cookie settings of [`ModelGatesConfig`]: names, `SameSite`, `Domain`; the rules the
//! cookies follow are in [the module's documentation](super#cookies).

use super::ModelGatesConfig;

/// The `SameSite` attribute of the key cookie. (The flow cookie is always `Lax`: it must come
/// back with the top-level navigation from ModelGates to the callback, which `Strict` would
/// block.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SameSite {
    /// Sent on same-site requests and on top-level navigations from other sites (a link to
    /// your app from elsewhere arrives signed in). The default.
    #[default]
    Lax,
    /// Sent on same-site requests only: a link from another site arrives signed out, and the
    /// first navigation inside the app signs in. Stricter against cross-site requests.
    Strict,
}

impl ModelGatesConfig {
    /// The cookie names (default `modelgates_flow` and `modelgates_key`). On an https public
    /// URL the `__Host-` prefix is added when missing.
    pub fn with_cookie_names(mut self, flow: impl Into<String>, key: impl Into<String>) -> Self {
        self.flow_cookie_name = flow.into();
        self.key_cookie_name = key.into();
        self
    }

    /// The key cookie's `SameSite` (default [`SameSite::Lax`]).
    pub fn with_key_cookie_same_site(mut self, same_site: SameSite) -> Self {
        self.key_cookie_same_site = same_site;
        self
    }

    /// A `Domain` for the key cookie, for an app spread over subdomains of `domain` (such as
    /// `example.com` for `app.example.com` and `chat.example.com`). The public URL's host must
    /// be `domain` or one of its subdomains.
    ///
    /// What it exposes: **every** subdomain of `domain` then receives the key cookie, and any
    /// of them, or a page served from one, can overwrite it (a subdomain you do not fully
    /// control is an attacker). On https the key cookie's name then carries `__Secure-`
    /// instead of `__Host-`, which forbids a Domain; naming it `__Host-…` yourself together
    /// with a Domain is refused. The flow cookie stays host-only.
    pub fn with_cookie_domain(mut self, domain: impl Into<String>) -> Self {
        self.cookie_domain = Some(domain.into());
        self
    }
}
