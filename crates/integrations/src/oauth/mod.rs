//! OAuth 2.0 provider settings for the services a user connects, PKCE, and the
//! access-token type every API client takes. No network here.
//!
//! - [`provider`]: per provider (Google, Microsoft, Notion) the authorize, token
//!   and revoke endpoints, the scopes each [`Feature`] needs, how the token
//!   endpoint wants the client to authenticate, whether refresh tokens exist, and
//!   the `<PROVIDER>_AUTH_URL` / `_TOKEN_URL` / `_REVOKE_URL` overrides; and
//!   [`ProviderSettings::authorize_url`], which builds the redirect that starts
//!   the authorization-code flow.
//! - [`pkce`]: RFC 7636 S256 verifier and challenge.
//! - [`client`]: the token endpoint (code exchange, refresh, through the `oauth2`
//!   crate) and revocation, per provider; [`OAuthApps`], the apps this
//!   deployment has client ids for.
//! - [`fake`]: a fake provider on loopback for tests.
//!
//! The vault that keeps tokens, when to refresh them and the connect routes live
//! elsewhere (the store, assistant and web crates); they take their endpoints and
//! rules from here so that every provider quirk is written down once.

pub mod client;
pub mod fake;
pub mod pkce;
pub mod provider;

pub use client::{OAuthApp, TokenError, TokenSet};

use std::fmt;

pub use pkce::{PkceChallenge, PkceVerifier};
pub use provider::{
    AuthorizeRequest, ClientAuth, Feature, Provider, ProviderSettings, RequestBody,
};

/// `Result` with [`OAuthError`] as the error.
pub type Result<T, E = OAuthError> = std::result::Result<T, E>;

/// What can be wrong with OAuth settings or inputs. All of these are permanent:
/// fix the configuration or the caller; retrying changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthError {
    /// An endpoint URL (a default or an override from `setting`) is not an
    /// absolute http(s) URL. An operator has to fix the environment.
    #[error("the {setting} URL {value:?} is not an absolute http(s) URL")]
    InvalidUrl { setting: String, value: String },
    /// A PKCE verifier with the wrong length or characters (RFC 7636 §4.1): a bug
    /// in whoever stored or produced it.
    #[error("invalid PKCE code verifier: {0}")]
    InvalidVerifier(String),
    /// A provider name other than `google`, `microsoft` or `notion`.
    #[error("unknown OAuth provider {0:?} (expected google, microsoft or notion)")]
    UnknownProvider(String),
    /// A feature name other than those in [`Feature::ALL`].
    #[error("unknown feature {0:?} (expected youtube, calendar, mail or notes)")]
    UnknownFeature(String),
    /// The authorization request lacks something every provider requires (a
    /// client id, a redirect URI, a state).
    #[error("incomplete authorization request: {0}")]
    IncompleteRequest(&'static str),
}

/// The OAuth apps this deployment has a client id for. A provider without one
/// is shown as unavailable, and its features stay off.
#[derive(Debug, Clone, Default)]
pub struct OAuthApps {
    apps: Vec<OAuthApp>,
}

impl OAuthApps {
    /// Reads `<PROVIDER>_CLIENT_ID`, `_CLIENT_SECRET` and the endpoint overrides
    /// through `lookup` (the process environment in the binary). A provider
    /// without a client id is left out.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>, public_url: &str) -> Result<Self> {
        let mut apps = Self::default();
        for provider in Provider::ALL {
            let prefix = provider.env_prefix();
            let Some(client_id) = lookup(&format!("{prefix}_CLIENT_ID"))
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
            else {
                continue;
            };
            let settings = provider.settings().with_overrides(&lookup)?;
            let secret = lookup(&format!("{prefix}_CLIENT_SECRET"));
            apps = apps.with(OAuthApp::new(settings, client_id, secret, public_url));
        }
        Ok(apps)
    }

    /// These apps plus `app` (replacing one for the same provider).
    pub fn with(mut self, app: OAuthApp) -> Self {
        self.apps.retain(|a| a.provider() != app.provider());
        self.apps.push(app);
        self
    }

    pub fn get(&self, provider: Provider) -> Option<&OAuthApp> {
        self.apps.iter().find(|a| a.provider() == provider)
    }
}

/// An OAuth access token, handed to the API clients for one call.
///
/// It is the most sensitive value Sidekick holds, so its `Debug` is redacted, it
/// has no `Display`, and reading it takes [`AccessToken::secret`].
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(String);

impl AccessToken {
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The token itself, for an `Authorization` header and nothing else.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken([redacted])")
    }
}

impl From<String> for AccessToken {
    fn from(token: String) -> Self {
        Self(token)
    }
}

impl From<&str> for AccessToken {
    fn from(token: &str) -> Self {
        Self(token.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_tokens_do_not_print() {
        let token = AccessToken::new("ya29.secret");
        assert_eq!(format!("{token:?}"), "AccessToken([redacted])");
        assert_eq!(token.secret(), "ya29.secret");
    }
}
