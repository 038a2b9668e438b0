//! Where each provider's OAuth endpoints are, and what each expects.
//!
//! The differences that matter, each written down once:
//!
//! | | Google | Microsoft (`common`, v2) | Notion |
//! |---|---|---|---|
//! | scopes | `openid email` + per feature | `offline_access User.Read` + per feature | none (`owner=user`) |
//! | token endpoint client auth | in the form body | in the form body | HTTP Basic, JSON body |
//! | refresh tokens | yes (with `access_type=offline`) | yes, rotated on every use | no: access lasts until revoked |
//! | revocation | `POST /revoke`, form `token=` | none for delegated tokens | `POST /v1/oauth/revoke`, Basic, JSON |
//!
//! Incremental consent: Google's `include_granted_scopes=true` returns a token
//! for everything granted so far; Microsoft adds newly requested scopes to the
//! existing grant on its own. Asking again with more features is enough for both.

use std::fmt;
use std::str::FromStr;

use reqwest::Url;

use super::{OAuthError, PkceChallenge, Result};

/// An OAuth provider a user can connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Provider {
    Google,
    Microsoft,
    Notion,
}

impl Provider {
    pub const ALL: [Provider; 3] = [Provider::Google, Provider::Microsoft, Provider::Notion];

    /// The name in URLs (`/connect/google`), the API and events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Google => "google",
            Self::Microsoft => "microsoft",
            Self::Notion => "notion",
        }
    }

    /// The prefix of its settings: `GOOGLE_CLIENT_ID`, `GOOGLE_AUTH_URL`, …
    pub fn env_prefix(self) -> &'static str {
        match self {
            Self::Google => "GOOGLE",
            Self::Microsoft => "MICROSOFT",
            Self::Notion => "NOTION",
        }
    }

    /// The features this provider's connection can unlock.
    pub fn features(self) -> &'static [Feature] {
        match self {
            Self::Google => &[Feature::YouTube],
            Self::Microsoft => &[Feature::Calendar, Feature::Mail],
            Self::Notion => &[Feature::Notes],
        }
    }

    /// The provider's real endpoints and rules (no overrides applied).
    pub fn settings(self) -> ProviderSettings {
        ProviderSettings::defaults(self)
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Provider {
    type Err = OAuthError;

    fn from_str(name: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(name.trim()))
            .ok_or_else(|| OAuthError::UnknownProvider(name.to_string()))
    }
}

/// Something a connected service lets Sidekick do. Tools declare the feature they
/// need; a user can switch each one off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Feature {
    /// Video details for a link the user texts (YouTube Data API, Google).
    YouTube,
    /// Read the calendar, add time-boxes to it (Microsoft Graph).
    Calendar,
    /// Triage unread important mail (Microsoft Graph).
    Mail,
    /// Capture notes into a Notion page or database.
    Notes,
}

impl Feature {
    pub const ALL: [Feature; 4] = [
        Feature::YouTube,
        Feature::Calendar,
        Feature::Mail,
        Feature::Notes,
    ];

    /// The name on the Connections page and in `GET /api/connections`.
    pub fn name(self) -> &'static str {
        match self {
            Self::YouTube => "youtube",
            Self::Calendar => "calendar",
            Self::Mail => "mail",
            Self::Notes => "notes",
        }
    }

    pub fn provider(self) -> Provider {
        match self {
            Self::YouTube => Provider::Google,
            Self::Calendar | Self::Mail => Provider::Microsoft,
            Self::Notes => Provider::Notion,
        }
    }

    /// The scopes this feature needs beyond the provider's base scopes.
    ///
    /// Least privilege where the API allows it: YouTube is read-only; calendar
    /// needs write to add time-boxes; mail asks for `Mail.ReadWrite` (as the issue
    /// specifies) so that a triaged message can later be marked read.
    pub fn scopes(self) -> &'static [&'static str] {
        match self {
            Self::YouTube => &["https://www.googleapis.com/auth/youtube.readonly"],
            Self::Calendar => &["Calendars.ReadWrite"],
            Self::Mail => &["Mail.ReadWrite"],
            Self::Notes => &[],
        }
    }

    /// Whether a grant of `granted` scopes (as a token response lists them) covers
    /// this feature. Microsoft may answer with Graph scopes as full URIs
    /// (`https://graph.microsoft.com/Calendars.ReadWrite`) and in any case; both
    /// are accepted.
    pub fn granted_by<S: AsRef<str>>(self, granted: &[S]) -> bool {
        self.scopes().iter().all(|needed| {
            granted
                .iter()
                .any(|g| normalise_scope(g.as_ref()) == normalise_scope(needed))
        })
    }
}

impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Feature {
    type Err = OAuthError;

    fn from_str(name: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(name.trim()))
            .ok_or_else(|| OAuthError::UnknownFeature(name.to_string()))
    }
}

fn normalise_scope(scope: &str) -> String {
    scope
        .trim()
        .trim_start_matches("https://graph.microsoft.com/")
        .to_ascii_lowercase()
}

/// How a client proves who it is to a token or revocation endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// `client_id` and `client_secret` as fields of the body (`client_secret_post`).
    RequestBody,
    /// `Authorization: Basic base64(client_id:client_secret)` (`client_secret_basic`).
    BasicAuth,
    /// No client authentication: the token itself is the proof (Google's revoke).
    None,
}

/// How a token or revocation request's body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestBody {
    /// `application/x-www-form-urlencoded`, as RFC 6749 specifies.
    Form,
    /// `application/json`, as Notion documents its endpoints (with a
    /// `Notion-Version` header).
    Json,
}

/// One provider's OAuth endpoints and rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderSettings {
    pub provider: Provider,
    /// Where the user's browser is sent to consent.
    pub auth_url: String,
    /// Where codes and refresh tokens are exchanged.
    pub token_url: String,
    /// Where a token is revoked on disconnect; `None` when the provider offers no
    /// revocation for delegated tokens (Microsoft), in which case disconnecting
    /// deletes our copy and the grant expires on its own.
    pub revoke_url: Option<String>,
    /// Requested whatever the features: identity for the account label, and
    /// `offline_access` where refresh tokens must be asked for by scope.
    pub base_scopes: &'static [&'static str],
    pub token_client_auth: ClientAuth,
    pub token_request_body: RequestBody,
    pub revoke_client_auth: ClientAuth,
    pub revoke_request_body: RequestBody,
    /// Whether the token response carries a refresh token. Without one (Notion)
    /// the access token does not expire and a 401 means the user revoked access:
    /// the connection needs reconnecting.
    pub issues_refresh_tokens: bool,
    /// Whether each refresh returns a new refresh token that replaces the old one
    /// (Microsoft): the vault must store it atomically, and concurrent refreshes
    /// must collapse into one, or the loser's token is dead.
    pub rotates_refresh_tokens: bool,
    /// Parameters every authorization request to this provider carries.
    pub extra_authorize_params: &'static [(&'static str, &'static str)],
}

impl ProviderSettings {
    /// The provider's real endpoints.
    pub fn defaults(provider: Provider) -> Self {
        match provider {
            Provider::Google => Self {
                provider,
                auth_url: "https://accounts.google.com/o/oauth2/v2/auth".into(),
                token_url: "https://oauth2.googleapis.com/token".into(),
                revoke_url: Some("https://oauth2.googleapis.com/revoke".into()),
                base_scopes: &["openid", "email"],
                token_client_auth: ClientAuth::RequestBody,
                token_request_body: RequestBody::Form,
                revoke_client_auth: ClientAuth::None,
                revoke_request_body: RequestBody::Form,
                issues_refresh_tokens: true,
                rotates_refresh_tokens: false,
                // `offline` for a refresh token; `consent` because Google sends
                // one only on a consent screen; incremental consent.
                extra_authorize_params: &[
                    ("access_type", "offline"),
                    ("prompt", "consent"),
                    ("include_granted_scopes", "true"),
                ],
            },
            Provider::Microsoft => Self {
                provider,
                auth_url: "https://login.microsoftonline.com/common/oauth2/v2.0/authorize".into(),
                token_url: "https://login.microsoftonline.com/common/oauth2/v2.0/token".into(),
                revoke_url: None,
                base_scopes: &["offline_access", "User.Read"],
                token_client_auth: ClientAuth::RequestBody,
                token_request_body: RequestBody::Form,
                revoke_client_auth: ClientAuth::None,
                revoke_request_body: RequestBody::Form,
                issues_refresh_tokens: true,
                rotates_refresh_tokens: true,
                extra_authorize_params: &[("response_mode", "query")],
            },
            Provider::Notion => Self {
                provider,
                auth_url: "https://api.notion.com/v1/oauth/authorize".into(),
                token_url: "https://api.notion.com/v1/oauth/token".into(),
                revoke_url: Some("https://api.notion.com/v1/oauth/revoke".into()),
                base_scopes: &[],
                token_client_auth: ClientAuth::BasicAuth,
                token_request_body: RequestBody::Json,
                revoke_client_auth: ClientAuth::BasicAuth,
                revoke_request_body: RequestBody::Json,
                issues_refresh_tokens: false,
                rotates_refresh_tokens: false,
                // Installs for the user (their pages), not workspace-wide.
                extra_authorize_params: &[("owner", "user")],
            },
        }
    }

    /// The defaults with `<PREFIX>_AUTH_URL`, `<PREFIX>_TOKEN_URL` and
    /// `<PREFIX>_REVOKE_URL` taken from `lookup` where set and non-empty (tests
    /// point them at a fake). `lookup` is `|k| std::env::var(k).ok()` in the
    /// binary; taking it as a function keeps tests from touching the process
    /// environment.
    pub fn with_overrides(mut self, lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let prefix = self.provider.env_prefix();
        let read = |suffix: &str| {
            let setting = format!("{prefix}_{suffix}");
            lookup(&setting)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .map(|v| (setting, v))
        };
        if let Some((setting, value)) = read("AUTH_URL") {
            self.auth_url = checked_url(&setting, &value)?;
        }
        if let Some((setting, value)) = read("TOKEN_URL") {
            self.token_url = checked_url(&setting, &value)?;
        }
        if let Some((setting, value)) = read("REVOKE_URL") {
            self.revoke_url = Some(checked_url(&setting, &value)?);
        }
        Ok(self)
    }

    /// The defaults with overrides from the process environment.
    pub fn from_env(provider: Provider) -> Result<Self> {
        Self::defaults(provider).with_overrides(|key| std::env::var(key).ok())
    }

    /// The scopes to request for `features`: the base scopes, then each feature's
    /// (features of other providers are ignored), without duplicates.
    pub fn scopes_for(&self, features: &[Feature]) -> Vec<&'static str> {
        let mut scopes: Vec<&'static str> = self.base_scopes.to_vec();
        for feature in features.iter().filter(|f| f.provider() == self.provider) {
            for scope in feature.scopes() {
                if !scopes.contains(scope) {
                    scopes.push(scope);
                }
            }
        }
        scopes
    }

    /// The URL to send the user's browser to, to start the authorization-code flow
    /// with PKCE.
    pub fn authorize_url(&self, request: &AuthorizeRequest<'_>) -> Result<Url> {
        if request.client_id.trim().is_empty() {
            return Err(OAuthError::IncompleteRequest("client id"));
        }
        if request.redirect_uri.trim().is_empty() {
            return Err(OAuthError::IncompleteRequest("redirect URI"));
        }
        if request.state.trim().is_empty() {
            return Err(OAuthError::IncompleteRequest("state"));
        }
        let mut url = Url::parse(&self.auth_url).map_err(|_| OAuthError::InvalidUrl {
            setting: format!("{}_AUTH_URL", self.provider.env_prefix()),
            value: self.auth_url.clone(),
        })?;
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", request.client_id)
                .append_pair("redirect_uri", request.redirect_uri);
            let scopes = self.scopes_for(request.features);
            if !scopes.is_empty() {
                query.append_pair("scope", &scopes.join(" "));
            }
            query
                .append_pair("state", request.state)
                .append_pair("code_challenge", request.pkce_challenge.as_str())
                .append_pair("code_challenge_method", request.pkce_challenge.method());
            for (name, value) in self.extra_authorize_params {
                query.append_pair(name, value);
            }
            if let Some(hint) = request.login_hint {
                query.append_pair("login_hint", hint);
            }
        }
        Ok(url)
    }
}

/// The per-attempt values of an authorization request.
#[derive(Debug, Clone)]
pub struct AuthorizeRequest<'a> {
    /// `<PROVIDER>_CLIENT_ID`.
    pub client_id: &'a str,
    /// Built from `SIDEKICK_PUBLIC_URL`: `…/oauth/{provider}/callback`.
    pub redirect_uri: &'a str,
    /// Random, single-use, bound to the user, expiring: the CSRF defence.
    pub state: &'a str,
    pub pkce_challenge: &'a PkceChallenge,
    /// What the user is connecting for; decides the scopes.
    pub features: &'a [Feature],
    /// Pre-fills the account chooser when reconnecting a known account.
    pub login_hint: Option<&'a str>,
}

fn checked_url(setting: &str, value: &str) -> Result<String> {
    match Url::parse(value) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => {
            Ok(value.to_string())
        }
        _ => Err(OAuthError::InvalidUrl {
            setting: setting.to_string(),
            value: value.to_string(),
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a panic is the failure report
mod tests {
    use super::*;
    use crate::oauth::PkceVerifier;
    use std::collections::HashMap;

    #[test]
    fn names_round_trip() {
        for provider in Provider::ALL {
            assert_eq!(provider.as_str().parse::<Provider>().unwrap(), provider);
            for feature in provider.features() {
                assert_eq!(feature.provider(), provider);
                assert_eq!(feature.name().parse::<Feature>().unwrap(), *feature);
            }
        }
        assert!("yahoo".parse::<Provider>().is_err());
        assert_eq!(" Notion ".parse::<Provider>().unwrap(), Provider::Notion);
    }

    #[test]
    fn overrides_replace_only_what_is_set() {
        let env: HashMap<&str, &str> = [
            ("MICROSOFT_AUTH_URL", "http://127.0.0.1:9000/authorize"),
            ("MICROSOFT_TOKEN_URL", " "),
            ("GOOGLE_TOKEN_URL", "http://127.0.0.1:9001/token"),
        ]
        .into();
        let lookup = |k: &str| env.get(k).map(|v| v.to_string());
        let microsoft = Provider::Microsoft
            .settings()
            .with_overrides(lookup)
            .unwrap();
        assert_eq!(microsoft.auth_url, "http://127.0.0.1:9000/authorize");
        assert_eq!(
            microsoft.token_url, "https://login.microsoftonline.com/common/oauth2/v2.0/token",
            "an empty override is no override"
        );
        assert_eq!(microsoft.revoke_url, None);
        let google = Provider::Google.settings().with_overrides(lookup).unwrap();
        assert_eq!(google.token_url, "http://127.0.0.1:9001/token");

        let bad = |k: &str| (k == "NOTION_REVOKE_URL").then(|| "not a url".to_string());
        let error = Provider::Notion.settings().with_overrides(bad).unwrap_err();
        assert!(error.to_string().contains("NOTION_REVOKE_URL"), "{error}");
    }

    #[test]
    fn scopes_follow_the_features_of_the_provider() {
        let google = Provider::Google.settings();
        assert_eq!(
            google.scopes_for(&Feature::ALL),
            vec![
                "openid",
                "email",
                "https://www.googleapis.com/auth/youtube.readonly"
            ]
        );
        let microsoft = Provider::Microsoft.settings();
        assert_eq!(
            microsoft.scopes_for(&[Feature::Calendar]),
            vec!["offline_access", "User.Read", "Calendars.ReadWrite"]
        );
        assert_eq!(
            microsoft.scopes_for(&[Feature::Mail, Feature::Calendar, Feature::Mail]),
            vec![
                "offline_access",
                "User.Read",
                "Mail.ReadWrite",
                "Calendars.ReadWrite"
            ]
        );
        assert!(Provider::Notion
            .settings()
            .scopes_for(&Feature::ALL)
            .is_empty());
    }

    #[test]
    fn granted_scopes_unlock_features() {
        let granted = [
            "https://graph.microsoft.com/Calendars.ReadWrite",
            "https://graph.microsoft.com/User.Read",
            "openid",
        ];
        assert!(Feature::Calendar.granted_by(&granted));
        assert!(!Feature::Mail.granted_by(&granted));
        assert!(Feature::Mail.granted_by(&["mail.readwrite"]));
        assert!(Feature::Notes.granted_by::<&str>(&[]));
        assert!(!Feature::YouTube.granted_by(&["openid", "email"]));
    }

    #[test]
    fn authorize_urls_carry_pkce_state_and_provider_extras() {
        let challenge = PkceVerifier::generate().challenge();
        let request = AuthorizeRequest {
            client_id: "client-1",
            redirect_uri: "http://127.0.0.1:8080/oauth/notion/callback",
            state: "st4te",
            pkce_challenge: &challenge,
            features: &[Feature::Notes],
            login_hint: None,
        };
        let url = Provider::Notion.settings().authorize_url(&request).unwrap();
        let query: HashMap<String, String> = url.query_pairs().into_owned().collect();
        assert_eq!(url.host_str(), Some("api.notion.com"));
        assert_eq!(query["response_type"], "code");
        assert_eq!(query["client_id"], "client-1");
        assert_eq!(
            query["redirect_uri"],
            "http://127.0.0.1:8080/oauth/notion/callback"
        );
        assert_eq!(query["state"], "st4te");
        assert_eq!(query["code_challenge"], challenge.as_str());
        assert_eq!(query["code_challenge_method"], "S256");
        assert_eq!(query["owner"], "user");
        assert!(!query.contains_key("scope"), "Notion takes no scopes");

        let google = Provider::Google
            .settings()
            .authorize_url(&AuthorizeRequest {
                features: &[Feature::YouTube],
                login_hint: Some("a@example.com"),
                ..request.clone()
            })
            .unwrap();
        let query: HashMap<String, String> = google.query_pairs().into_owned().collect();
        assert_eq!(
            query["scope"],
            "openid email https://www.googleapis.com/auth/youtube.readonly"
        );
        assert_eq!(query["access_type"], "offline");
        assert_eq!(query["include_granted_scopes"], "true");
        assert_eq!(query["login_hint"], "a@example.com");

        let missing = Provider::Microsoft
            .settings()
            .authorize_url(&AuthorizeRequest {
                state: "",
                ..request
            });
        assert_eq!(missing, Err(OAuthError::IncompleteRequest("state")));
    }

    #[test]
    fn provider_rules_match_their_documentation() {
        let notion = Provider::Notion.settings();
        assert_eq!(notion.token_client_auth, ClientAuth::BasicAuth);
        assert!(!notion.issues_refresh_tokens);
        assert!(notion.revoke_url.is_some());
        let microsoft = Provider::Microsoft.settings();
        assert!(microsoft.auth_url.contains("/common/oauth2/v2.0/"));
        assert!(microsoft.rotates_refresh_tokens);
        assert_eq!(microsoft.revoke_url, None);
        let google = Provider::Google.settings();
        assert!(google.issues_refresh_tokens);
        assert_eq!(google.revoke_client_auth, ClientAuth::None);
    }
}
