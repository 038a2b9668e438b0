//! Talking to a provider's token and revocation endpoints: exchanging an
//! authorization code (with its PKCE verifier), refreshing, revoking.
//!
//! The code exchange and the refresh go through the `oauth2` crate, which knows
//! RFC 6749's request and error shapes; this module adds what it does not:
//!
//! - Notion wants its token request as JSON (with HTTP Basic client auth), so the
//!   HTTP function handed to `oauth2` re-encodes the form body as JSON for
//!   providers whose [`RequestBody`] is `Json`;
//! - the account label (Google's `id_token` email claim, Notion's workspace
//!   name), read from the extra fields of the token response;
//! - revocation as each provider documents it (Google: form `token=`, no client
//!   auth; Notion: JSON with Basic auth; Microsoft: none).
//!
//! Errors say what the caller should do: [`TokenError::InvalidGrant`] means the
//! user must reconnect; [`TokenError::Unavailable`] may pass if tried later;
//! [`TokenError::Rejected`] is a configuration or protocol problem.

use std::fmt;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use oauth2::basic::{
    BasicErrorResponse, BasicErrorResponseType, BasicRevocationErrorResponse,
    BasicTokenIntrospectionResponse, BasicTokenType,
};
use oauth2::{
    AuthUrl, AuthorizationCode, Client, ClientId, ClientSecret, EndpointNotSet, EndpointSet,
    ExtraTokenFields, PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError,
    StandardRevocableToken, StandardTokenResponse, TokenResponse as _, TokenUrl,
};
use serde::{Deserialize, Serialize};

use super::{AccessToken, ClientAuth, Provider, ProviderSettings, RequestBody};

/// How long one token or revocation request may take before we give up.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// The longest label kept for an account (an email address, a workspace name).
const MAX_LABEL: usize = 120;
/// The largest token-endpoint answer read.
const MAX_RESPONSE: usize = 256 * 1024;

/// What can go wrong at a token or revocation endpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The provider refused the grant (`invalid_grant`: the code was used or
    /// expired, the refresh token was revoked or rotated away). The user has to
    /// connect again; retrying cannot help.
    #[error("the provider refused the grant: {0}")]
    InvalidGrant(String),
    /// The provider could not be reached or answered 5xx/429. Try again later.
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
    /// Any other refusal (bad client credentials, a malformed answer): an
    /// operator must look. Retrying changes nothing.
    #[error("the provider rejected the request: {0}")]
    Rejected(String),
}

/// Tokens as a token endpoint issued them. `Debug` redacts the secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSet {
    pub access_token: AccessToken,
    /// `None` when the provider issues none (Notion) or did not rotate it.
    pub refresh_token: Option<String>,
    /// `None` when the token does not expire (Notion).
    pub expires_at: Option<DateTime<Utc>>,
    /// Granted scopes; when the answer lists none, those requested (RFC 6749 §5.1).
    pub scopes: Vec<String>,
    /// Who the user is at the provider, for display ("sam@example.com").
    pub account_label: Option<String>,
}

impl fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSet")
            .field("access_token", &"[redacted]")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .field("expires_at", &self.expires_at)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

/// The fields beyond RFC 6749's that give us an account label.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct LabelFields {
    /// Google (and Microsoft with `openid`): an OpenID Connect ID token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
    /// Notion: the workspace the integration was installed in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    workspace_name: Option<String>,
}

impl ExtraTokenFields for LabelFields {}

type TokenResponse = StandardTokenResponse<LabelFields, BasicTokenType>;
type OAuthClient = Client<
    BasicErrorResponse,
    TokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// One provider's OAuth app as this deployment registered it: client id and
/// secret, endpoints, and the redirect URI built from `SIDEKICK_PUBLIC_URL`.
#[derive(Clone)]
pub struct OAuthApp {
    pub settings: ProviderSettings,
    pub client_id: String,
    client_secret: Option<String>,
    /// `<public url>/oauth/<provider>/callback`.
    pub redirect_uri: String,
    http: reqwest::Client,
}

impl fmt::Debug for OAuthApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthApp")
            .field("provider", &self.settings.provider)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<set>"),
            )
            .field("redirect_uri", &self.redirect_uri)
            .finish()
    }
}

impl OAuthApp {
    pub fn new(
        settings: ProviderSettings,
        client_id: impl Into<String>,
        client_secret: Option<String>,
        public_url: &str,
    ) -> Self {
        let redirect_uri = format!(
            "{}/oauth/{}/callback",
            public_url.trim_end_matches('/'),
            settings.provider
        );
        // Redirects off: a token endpoint that redirects is misconfigured, and
        // following it would resend the code or the secret elsewhere.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(REQUEST_TIMEOUT)
            .build()
            .unwrap_or_default();
        Self {
            settings,
            client_id: client_id.into(),
            client_secret: client_secret.filter(|s| !s.trim().is_empty()),
            redirect_uri,
            http,
        }
    }

    pub fn provider(&self) -> Provider {
        self.settings.provider
    }

    fn client(&self) -> Result<OAuthClient, TokenError> {
        let bad = |what: &str| TokenError::Rejected(format!("invalid {what} URL"));
        let mut client = Client::new(ClientId::new(self.client_id.clone()))
            .set_auth_uri(AuthUrl::new(self.settings.auth_url.clone()).map_err(|_| bad("auth"))?)
            .set_token_uri(
                TokenUrl::new(self.settings.token_url.clone()).map_err(|_| bad("token"))?,
            )
            .set_redirect_uri(
                RedirectUrl::new(self.redirect_uri.clone()).map_err(|_| bad("redirect"))?,
            );
        if let Some(secret) = &self.client_secret {
            client = client.set_client_secret(ClientSecret::new(secret.clone()));
        }
        Ok(match self.settings.token_client_auth {
            ClientAuth::BasicAuth => client.set_auth_type(oauth2::AuthType::BasicAuth),
            ClientAuth::RequestBody | ClientAuth::None => {
                client.set_auth_type(oauth2::AuthType::RequestBody)
            }
        })
    }

    /// Exchanges the authorization `code` from the callback, proving the flow
    /// with the PKCE `verifier` kept since it started. `requested` are the scopes
    /// asked for, assumed granted when the answer does not list them.
    pub async fn exchange_code(
        &self,
        code: &str,
        verifier: &str,
        requested: &[&str],
    ) -> Result<TokenSet, TokenError> {
        let client = self.client()?;
        let http = self.http_fn();
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_string()))
            .request_async(&http)
            .await
            .map_err(classify)?;
        Ok(token_set(&response, requested, None))
    }

    /// Exchanges `refresh_token` for a new access token. When the provider does
    /// not rotate, the old refresh token stays in the returned set; `scopes` are
    /// those granted before, kept when the answer lists none.
    pub async fn refresh(
        &self,
        refresh_token: &str,
        scopes: &[String],
    ) -> Result<TokenSet, TokenError> {
        let client = self.client()?;
        let http = self.http_fn();
        let token = RefreshToken::new(refresh_token.to_string());
        let response = client
            .exchange_refresh_token(&token)
            .request_async(&http)
            .await
            .map_err(classify)?;
        let requested: Vec<&str> = scopes.iter().map(String::as_str).collect();
        Ok(token_set(&response, &requested, Some(refresh_token)))
    }

    /// Revokes `token` where the provider offers revocation; `Ok(false)` when it
    /// does not (Microsoft), so the caller knows nothing was sent.
    pub async fn revoke(&self, token: &str) -> Result<bool, TokenError> {
        let Some(url) = &self.settings.revoke_url else {
            return Ok(false);
        };
        let mut request = self.http.post(url);
        request = match self.settings.revoke_request_body {
            RequestBody::Form => request.form(&[("token", token)]),
            RequestBody::Json => request
                .header("Notion-Version", "2022-06-28")
                .json(&serde_json::json!({ "token": token })),
        };
        if self.settings.revoke_client_auth == ClientAuth::BasicAuth {
            request = request.basic_auth(&self.client_id, self.client_secret.as_ref());
        }
        let response = request
            .send()
            .await
            .map_err(|e| TokenError::Unavailable(transport_reason(&e)))?;
        let status = response.status();
        if status.is_success() {
            Ok(true)
        } else if status.is_server_error() || status.as_u16() == 429 {
            Err(TokenError::Unavailable(format!(
                "revocation answered {status}"
            )))
        } else {
            // 400 from Google means the token was already invalid: nothing to revoke.
            Ok(status.as_u16() == 400)
        }
    }

    /// The HTTP function handed to `oauth2`: our client (no redirects, a
    /// timeout), with the form body re-encoded as JSON for Notion.
    fn http_fn(
        &self,
    ) -> impl Fn(
        oauth2::HttpRequest,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<oauth2::HttpResponse, HttpError>> + Send>,
    > {
        let http = self.http.clone();
        let json = self.settings.token_request_body == RequestBody::Json;
        move |request| Box::pin(send(http.clone(), json, request))
    }
}

/// A transport failure under `oauth2`, carrying no URL or body.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpError(String);

async fn send(
    http: reqwest::Client,
    json: bool,
    request: oauth2::HttpRequest,
) -> Result<oauth2::HttpResponse, HttpError> {
    let (parts, body) = request.into_parts();
    let mut builder = http.request(parts.method, parts.uri.to_string());
    for (name, value) in &parts.headers {
        if json && name == oauth2::http::header::CONTENT_TYPE {
            continue;
        }
        builder = builder.header(name, value);
    }
    builder = if json {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
        let object: serde_json::Map<String, serde_json::Value> = pairs
            .into_iter()
            .map(|(k, v)| (k, serde_json::Value::String(v)))
            .collect();
        builder
            .header("Notion-Version", "2022-06-28")
            .json(&serde_json::Value::Object(object))
    } else {
        builder.body(body)
    };
    let response = builder
        .send()
        .await
        .map_err(|e| HttpError(transport_reason(&e)))?;
    let mut out = oauth2::http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        out = out.header(name, value);
    }
    let bytes = response
        .bytes()
        .await
        .map_err(|e| HttpError(transport_reason(&e)))?;
    if bytes.len() > MAX_RESPONSE {
        return Err(HttpError("token response too large".into()));
    }
    out.body(bytes.to_vec())
        .map_err(|_| HttpError("malformed response".into()))
}

fn transport_reason(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timed out".into()
    } else if error.is_connect() {
        "could not connect".into()
    } else {
        "transport error".into()
    }
}

fn classify(error: RequestTokenError<HttpError, BasicErrorResponse>) -> TokenError {
    match error {
        RequestTokenError::ServerResponse(response) => match response.error() {
            BasicErrorResponseType::InvalidGrant => {
                TokenError::InvalidGrant(response.error().to_string())
            }
            // RFC 6749 §4.1.2.1's outage codes, which oauth2 has no variant for.
            BasicErrorResponseType::Extension(code)
                if code == "temporarily_unavailable" || code == "server_error" =>
            {
                TokenError::Unavailable(code.clone())
            }
            other => TokenError::Rejected(other.to_string()),
        },
        RequestTokenError::Request(e) => TokenError::Unavailable(e.to_string()),
        // A 5xx with an HTML body lands here: unavailable, not a protocol bug.
        RequestTokenError::Parse(_, body) => {
            if body.is_empty() || body.starts_with(b"<") {
                TokenError::Unavailable("the token endpoint answered without JSON".into())
            } else {
                TokenError::Rejected("the token endpoint's answer could not be read".into())
            }
        }
        RequestTokenError::Other(reason) => {
            if reason.contains("Server returned") || reason.contains("status code 5") {
                TokenError::Unavailable(reason)
            } else {
                TokenError::Rejected(reason)
            }
        }
    }
}

fn token_set(response: &TokenResponse, requested: &[&str], old_refresh: Option<&str>) -> TokenSet {
    let scopes = match response.scopes() {
        Some(granted) if !granted.is_empty() => granted.iter().map(|s| s.to_string()).collect(),
        _ => requested.iter().map(|s| s.to_string()).collect(),
    };
    let extras = response.extra_fields();
    let label = extras
        .id_token
        .as_deref()
        .and_then(email_from_id_token)
        .or_else(|| extras.workspace_name.clone())
        .map(|l| l.chars().take(MAX_LABEL).collect());
    TokenSet {
        access_token: AccessToken::new(response.access_token().secret().clone()),
        refresh_token: response
            .refresh_token()
            .map(|t| t.secret().clone())
            .or_else(|| old_refresh.map(str::to_string)),
        expires_at: response
            .expires_in()
            .and_then(|d| chrono::Duration::from_std(d).ok().map(|d| Utc::now() + d)),
        scopes,
        account_label: label,
    }
}

/// The `email` claim of an ID token. Its signature is not checked: the token
/// came straight from the provider's token endpoint over TLS, which OpenID
/// Connect Core §3.1.3.7 accepts in place of validation, and it is used for a
/// display label only, never to decide who someone is.
fn email_from_id_token(id_token: &str) -> Option<String> {
    let payload = id_token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims
        .get("email")
        .or_else(|| claims.get("preferred_username"))
        .and_then(|v| v.as_str())
        .map(str::to_string)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a panic is the failure report
mod tests {
    use super::*;

    #[test]
    fn id_token_email_is_read_without_the_signature() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"sub":"1","email":"sam@example.com"}"#);
        let token = format!("eyJhbGciOiJSUzI1NiJ9.{payload}.c2ln");
        assert_eq!(email_from_id_token(&token).unwrap(), "sam@example.com");
        assert_eq!(email_from_id_token("not-a-jwt"), None);
    }

    #[test]
    fn token_sets_do_not_print_secrets() {
        let set = TokenSet {
            access_token: AccessToken::new("at-secret"),
            refresh_token: Some("rt-secret".into()),
            expires_at: None,
            scopes: vec![],
            account_label: None,
        };
        let shown = format!("{set:?}");
        assert!(!shown.contains("secret"), "{shown}");
    }

    #[test]
    fn redirect_uris_come_from_the_public_url() {
        let app = OAuthApp::new(
            Provider::Notion.settings(),
            "id",
            Some("s".into()),
            "https://sk.example/",
        );
        assert_eq!(app.redirect_uri, "https://sk.example/oauth/notion/callback");
        assert!(!format!("{app:?}").contains("\"s\""));
    }
}
