//! The OAuth provider settings and PKCE, through the crate's public API.

// In tests a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use sidekick_integrations::oauth::{
    AuthorizeRequest, ClientAuth, Feature, OAuthError, PkceVerifier, Provider, ProviderSettings,
    RequestBody,
};

#[test]
fn pkce_matches_rfc_7636_appendix_b() {
    let verifier = PkceVerifier::parse("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk").unwrap();
    assert_eq!(
        verifier.challenge().as_str(),
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    );
    assert_eq!(verifier.challenge().method(), "S256");
}

#[test]
fn generated_verifiers_use_only_unreserved_characters() {
    for _ in 0..100 {
        let verifier = PkceVerifier::generate();
        let secret = verifier.secret();
        assert!((43..=128).contains(&secret.len()));
        assert!(secret
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~')));
        assert!(
            !verifier.challenge().as_str().contains(['=', '+', '/']),
            "base64url without padding"
        );
    }
}

#[test]
fn a_microsoft_connect_for_calendar_and_mail_asks_for_the_documented_scopes() {
    let settings = ProviderSettings::defaults(Provider::Microsoft);
    let challenge = PkceVerifier::generate().challenge();
    let url = settings
        .authorize_url(&AuthorizeRequest {
            client_id: "00000000-0000-0000-0000-000000000001",
            redirect_uri: "https://sidekick.example/oauth/microsoft/callback",
            state: "0193a7f0-state",
            pkce_challenge: &challenge,
            features: Provider::Microsoft.features(),
            login_hint: None,
        })
        .unwrap();

    assert_eq!(
        url.as_str().split('?').next(),
        Some("https://login.microsoftonline.com/common/oauth2/v2.0/authorize")
    );
    let query: HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(
        query["scope"],
        "offline_access User.Read Calendars.ReadWrite Mail.ReadWrite"
    );
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["code_challenge"], challenge.as_str());
    assert_eq!(query["response_type"], "code");
    assert_eq!(query["state"], "0193a7f0-state");
}

#[test]
fn env_overrides_point_every_provider_at_a_fake() {
    for provider in Provider::ALL {
        let prefix = provider.env_prefix();
        let env: HashMap<String, String> = [
            (
                format!("{prefix}_AUTH_URL"),
                "http://127.0.0.1:9100/authorize".to_string(),
            ),
            (
                format!("{prefix}_TOKEN_URL"),
                "http://127.0.0.1:9100/token".to_string(),
            ),
            (
                format!("{prefix}_REVOKE_URL"),
                "http://127.0.0.1:9100/revoke".to_string(),
            ),
        ]
        .into();
        let settings = provider
            .settings()
            .with_overrides(|key| env.get(key).cloned())
            .unwrap();
        assert_eq!(settings.auth_url, "http://127.0.0.1:9100/authorize");
        assert_eq!(settings.token_url, "http://127.0.0.1:9100/token");
        assert_eq!(
            settings.revoke_url.as_deref(),
            Some("http://127.0.0.1:9100/revoke")
        );
    }
    let error = Provider::Google
        .settings()
        .with_overrides(|key| (key == "GOOGLE_TOKEN_URL").then(|| "file:///etc/passwd".to_string()))
        .unwrap_err();
    assert!(
        matches!(error, OAuthError::InvalidUrl { ref setting, .. } if setting == "GOOGLE_TOKEN_URL")
    );
}

#[test]
fn notion_is_the_odd_one_out() {
    let notion = Provider::Notion.settings();
    assert_eq!(notion.token_client_auth, ClientAuth::BasicAuth);
    assert_eq!(notion.token_request_body, RequestBody::Json);
    assert!(!notion.issues_refresh_tokens);
    assert!(notion.scopes_for(&[Feature::Notes]).is_empty());
    assert_eq!(notion.extra_authorize_params, &[("owner", "user")]);
    assert_eq!(
        notion.revoke_url.as_deref(),
        Some("https://api.notion.com/v1/oauth/revoke")
    );

    let google = Provider::Google.settings();
    assert_eq!(
        google.scopes_for(&[Feature::YouTube]),
        vec![
            "openid",
            "email",
            "https://www.googleapis.com/auth/youtube.readonly"
        ]
    );
    assert_eq!(google.token_client_auth, ClientAuth::RequestBody);
}

#[test]
fn each_feature_belongs_to_exactly_one_provider() {
    for feature in Feature::ALL {
        let owners: Vec<_> = Provider::ALL
            .into_iter()
            .filter(|p| p.features().contains(&feature))
            .collect();
        assert_eq!(owners, vec![feature.provider()], "{feature}");
    }
}
