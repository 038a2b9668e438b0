//! The token manager and the feature gate against a real PostgreSQL and a fake
//! OAuth provider on loopback: refresh on expiry and on a 401, concurrent
//! refreshes collapsing into one (in one process and across two), rotation
//! stored, `invalid_grant` → needs reconnect + exactly one SMS, only that
//! service's features degrading, and the vault's sealing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::time::Duration;

use sidekick_assistant::features::enabled_features;
use sidekick_assistant::tokens::{CallError, TokenError, TokenManager};
use sidekick_domain::{MasterKey, PhoneNumber, SignupChannel, UserId};
use sidekick_integrations::oauth::fake::{FakeOAuthProvider, ME_PATH};
use sidekick_integrations::oauth::{
    AuthorizeRequest, Feature, OAuthApp, OAuthApps, PkceVerifier, Provider, TokenSet,
};
use sidekick_integrations::AccessToken;
use sidekick_store::testing::TestDb;
use sidekick_store::vault::{self, ConnectionStatus, NewTokens, Secret};
use sidekick_store::{events, CommandMeta, Store, StoreError};

const CLIENT_ID: &str = "sidekick-test-client";
const CLIENT_SECRET: &str = "sidekick-test-secret";
const PUBLIC_URL: &str = "http://127.0.0.1:9";

struct Harness {
    db: TestDb,
    store: Store,
    fake: FakeOAuthProvider,
    app: OAuthApp,
}

impl Harness {
    async fn start(provider: Provider) -> Self {
        let db = TestDb::new().await;
        let store = Store::new(db.pool.clone(), MasterKey::generate());
        let fake = FakeOAuthProvider::start(provider, CLIENT_ID, CLIENT_SECRET).await;
        let app = OAuthApp::new(
            fake.settings(),
            CLIENT_ID,
            Some(CLIENT_SECRET.into()),
            PUBLIC_URL,
        );
        Self {
            db,
            store,
            fake,
            app,
        }
    }

    fn manager(&self) -> TokenManager {
        TokenManager::new(
            self.store.clone(),
            OAuthApps::default().with(self.app.clone()),
        )
    }

    async fn user(&self, phone: &str) -> UserId {
        let (user, _) = self
            .store
            .register(
                &PhoneNumber::parse(phone).unwrap(),
                Some("Sam"),
                None,
                SignupChannel::Operator,
                CommandMeta::new(),
            )
            .await
            .unwrap();
        user
    }

    /// Tokens the fake really issued: authorize, consent, exchange.
    async fn authorize(&self, features: &[Feature]) -> TokenSet {
        let verifier = PkceVerifier::generate();
        let challenge = verifier.challenge();
        let url = self
            .app
            .settings
            .authorize_url(&AuthorizeRequest {
                client_id: CLIENT_ID,
                redirect_uri: &self.app.redirect_uri,
                state: "s",
                pkce_challenge: &challenge,
                features,
                login_hint: None,
            })
            .unwrap();
        let back = reqwest::Url::parse(&self.fake.consent(url.as_str()).await).unwrap();
        let code = back
            .query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .expect("a code");
        let scopes = self.app.settings.scopes_for(features);
        self.app
            .exchange_code(&code, verifier.secret(), &scopes)
            .await
            .unwrap()
    }

    async fn connect(&self, user: UserId, features: &[Feature]) -> TokenSet {
        let tokens = self.authorize(features).await;
        vault::save_connection(
            &self.store,
            user,
            self.app.provider().as_str(),
            &new(&tokens),
        )
        .await
        .unwrap();
        self.store
            .execute_account(
                user,
                sidekick_domain::AccountCommand::RecordServiceConnected {
                    service: self.app.provider().as_str().into(),
                    scopes: tokens.scopes.clone(),
                    account_label: None,
                    at: chrono::Utc::now(),
                },
                CommandMeta::new(),
            )
            .await
            .unwrap();
        tokens
    }

    /// Makes the stored access token look expired.
    async fn expire(&self, user: UserId) {
        sqlx::query("UPDATE oauth_credentials SET expires_at = now() - interval '1 minute' WHERE user_id = $1")
            .bind(user.as_uuid())
            .execute(self.store.pool())
            .await
            .unwrap();
    }

    async fn event_types(&self, user: UserId) -> Vec<String> {
        events::for_user(self.store.pool(), user, None)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.event_type)
            .collect()
    }

    async fn cleanup(self) {
        self.fake.stop().await;
        self.db.cleanup().await;
    }
}

fn new(tokens: &TokenSet) -> NewTokens {
    NewTokens {
        access_token: Secret::new(tokens.access_token.secret()),
        refresh_token: tokens.refresh_token.as_deref().map(Secret::new),
        expires_at: tokens.expires_at,
        scopes: tokens.scopes.clone(),
        account_label: tokens.account_label.clone(),
    }
}

#[derive(Debug)]
struct Refused(u16);

impl sidekick_assistant::tokens::AuthFailure for Refused {
    fn token_refused(&self) -> bool {
        self.0 == 401
    }
}

/// The fake's protected resource: 200 for a live token, 401 otherwise.
async fn whoami(base: String, token: AccessToken) -> Result<(), Refused> {
    let status = reqwest::Client::new()
        .get(format!("{base}{ME_PATH}"))
        .bearer_auth(token.secret())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    if status == 200 {
        Ok(())
    } else {
        Err(Refused(status))
    }
}

#[tokio::test]
async fn a_fresh_token_is_used_as_is_and_an_expiring_one_is_refreshed_and_rotated() {
    let h = Harness::start(Provider::Microsoft).await;
    let user = h.user("+15557000001").await;
    let issued = h.connect(user, &[Feature::Calendar]).await;
    let manager = h.manager();

    let token = manager
        .access_token(user, Provider::Microsoft)
        .await
        .unwrap();
    assert_eq!(token, issued.access_token);
    assert_eq!(h.fake.refresh_hits(), 0);

    h.expire(user).await;
    let before = vault::load(&h.store, user, "microsoft")
        .await
        .unwrap()
        .unwrap();
    let fresh = manager
        .access_token(user, Provider::Microsoft)
        .await
        .unwrap();
    assert_ne!(fresh, issued.access_token);
    assert_eq!(h.fake.refresh_hits(), 1);
    let after = vault::load(&h.store, user, "microsoft")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.access_token.expose(), fresh.secret());
    assert_ne!(
        after.refresh_token, before.refresh_token,
        "Microsoft rotates refresh tokens; the new one is stored"
    );
    assert_eq!(after.version, before.version + 1);
    assert!(after.expires_at.unwrap() > chrono::Utc::now());
    // The rotated token works for the next refresh (the old one is dead at the fake).
    h.expire(user).await;
    manager
        .access_token(user, Provider::Microsoft)
        .await
        .unwrap();
    assert_eq!(h.fake.refresh_hits(), 2);
    h.cleanup().await;
}

#[tokio::test]
async fn a_refused_token_is_refreshed_once_and_the_call_retried() {
    let h = Harness::start(Provider::Microsoft).await;
    let user = h.user("+15557000002").await;
    h.connect(user, &[Feature::Calendar]).await;
    let manager = h.manager();
    let base = h.fake.base_url();

    h.fake.invalidate_access_tokens();
    let calls = std::sync::atomic::AtomicU32::new(0);
    let outcome = manager
        .call(user, Provider::Microsoft, |token| {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            whoami(base.clone(), token)
        })
        .await;
    assert!(outcome.is_ok(), "{outcome:?}");
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert_eq!(h.fake.refresh_hits(), 1);

    h.cleanup().await;
}

#[tokio::test]
async fn a_refusal_right_after_a_refresh_marks_the_connection_and_texts_once() {
    let h = Harness::start(Provider::Microsoft).await;
    let user = h.user("+15557000010").await;
    h.connect(user, &[Feature::Calendar]).await;
    let manager = h.manager();
    let replies_before = h
        .event_types(user)
        .await
        .iter()
        .filter(|t| *t == "ReplyQueued")
        .count();

    // The provider refreshes fine but refuses every token: consent revoked.
    let calls = std::sync::atomic::AtomicU32::new(0);
    let outcome: Result<(), CallError<Refused>> = manager
        .call(user, Provider::Microsoft, |_token| {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async { Err(Refused(401)) }
        })
        .await;
    assert!(
        matches!(
            outcome,
            Err(CallError::Token(TokenError::NeedsReconnect(
                Provider::Microsoft
            )))
        ),
        "{outcome:?}"
    );
    assert_eq!(
        calls.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "retried once, not looped"
    );
    assert_eq!(h.fake.refresh_hits(), 1);
    assert_eq!(
        vault::load(&h.store, user, "microsoft")
            .await
            .unwrap()
            .unwrap()
            .status,
        ConnectionStatus::NeedsReconnect
    );

    // Later calls learn it from the vault: no provider call, no second text.
    let outcome: Result<(), CallError<Refused>> = manager
        .call(user, Provider::Microsoft, |_token| {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async { Ok(()) }
        })
        .await;
    assert!(matches!(
        outcome,
        Err(CallError::Token(TokenError::NeedsReconnect(_)))
    ));
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert_eq!(h.fake.refresh_hits(), 1);
    let types = h.event_types(user).await;
    assert_eq!(
        types
            .iter()
            .filter(|t| *t == "ServiceNeedsReconnect")
            .count(),
        1
    );
    assert_eq!(
        types.iter().filter(|t| *t == "ReplyQueued").count(),
        replies_before + 1,
        "exactly one SMS"
    );
    assert!(enabled_features(&h.store, user).await.unwrap().is_empty());
    h.cleanup().await;
}

#[tokio::test]
async fn concurrent_refreshes_collapse_into_one_in_a_process_and_across_processes() {
    let h = Harness::start(Provider::Microsoft).await;
    let user = h.user("+15557000003").await;
    h.connect(user, &[Feature::Calendar]).await;
    // A slow token endpoint widens the race window.
    h.fake.set_token_delay(Duration::from_millis(300));

    h.expire(user).await;
    let manager = h.manager();
    let tokens: Vec<_> =
        futures::future::join_all((0..8).map(|_| manager.access_token(user, Provider::Microsoft)))
            .await;
    let tokens: Vec<AccessToken> = tokens.into_iter().map(|t| t.unwrap()).collect();
    assert!(
        tokens.windows(2).all(|w| w[0] == w[1]),
        "everyone got the one fresh token"
    );
    assert_eq!(h.fake.refresh_hits(), 1);

    // Two managers stand for two processes: only the row lock is shared.
    h.expire(user).await;
    let (a, b) = (h.manager(), h.manager());
    let (x, y) = tokio::join!(
        a.access_token(user, Provider::Microsoft),
        b.access_token(user, Provider::Microsoft)
    );
    assert_eq!(x.unwrap(), y.unwrap());
    assert_eq!(h.fake.refresh_hits(), 2, "one more refresh, not two");
    assert_eq!(
        vault::load(&h.store, user, "microsoft")
            .await
            .unwrap()
            .unwrap()
            .status,
        ConnectionStatus::Connected,
        "no racing refresh burnt the rotated token"
    );
    h.cleanup().await;
}

#[tokio::test]
async fn invalid_grant_marks_the_connection_and_texts_the_user_exactly_once() {
    let h = Harness::start(Provider::Microsoft).await;
    let user = h.user("+15557000004").await;
    h.connect(user, &[Feature::Calendar, Feature::Mail]).await;
    // Notion stays connected: its feature must not degrade.
    vault::save_connection(
        &h.store,
        user,
        "notion",
        &NewTokens {
            access_token: Secret::new("notion-token"),
            refresh_token: None,
            expires_at: None,
            scopes: vec![],
            account_label: Some("Sam's Workspace".into()),
        },
    )
    .await
    .unwrap();
    assert_eq!(
        enabled_features(&h.store, user).await.unwrap(),
        vec![Feature::Calendar, Feature::Mail, Feature::Notes]
    );
    let texts_before = h
        .event_types(user)
        .await
        .iter()
        .filter(|t| *t == "ReplyQueued")
        .count();

    h.fake.revoke_consent();
    h.expire(user).await;
    let manager = h.manager();
    let outcomes =
        futures::future::join_all((0..4).map(|_| manager.access_token(user, Provider::Microsoft)))
            .await;
    for outcome in outcomes {
        assert!(
            matches!(
                outcome,
                Err(TokenError::NeedsReconnect(Provider::Microsoft))
            ),
            "{outcome:?}"
        );
    }
    // Later callers learn it from the vault without asking the provider.
    let hits = h.fake.refresh_hits();
    assert!(matches!(
        manager.access_token(user, Provider::Microsoft).await,
        Err(TokenError::NeedsReconnect(_))
    ));
    assert_eq!(h.fake.refresh_hits(), hits);
    assert_eq!(hits, 1, "the refresh was tried once");

    let types = h.event_types(user).await;
    assert_eq!(
        types
            .iter()
            .filter(|t| *t == "ServiceNeedsReconnect")
            .count(),
        1
    );
    assert_eq!(
        types.iter().filter(|t| *t == "ReplyQueued").count(),
        texts_before + 1,
        "exactly one SMS"
    );
    let reply = events::for_user(h.store.pool(), user, None)
        .await
        .unwrap()
        .into_iter()
        .rfind(|e| e.event_type == "ReplyQueued")
        .unwrap();
    let key = h.store.data_key(user).await.unwrap();
    let sealed: sidekick_domain::SealedText =
        serde_json::from_value(reply.payload["ReplyQueued"]["body"].clone()).unwrap();
    let text = key.open(&sealed).unwrap();
    assert!(
        text.contains("Microsoft") && text.contains("connect calendar"),
        "{text}"
    );
    assert_eq!(
        reply.payload["ReplyQueued"]["kind"], "system",
        "an account notice, not a nudge that nudges-off could drop"
    );

    assert_eq!(
        vault::load(&h.store, user, "microsoft")
            .await
            .unwrap()
            .unwrap()
            .status,
        ConnectionStatus::NeedsReconnect
    );
    assert_eq!(
        enabled_features(&h.store, user).await.unwrap(),
        vec![Feature::Notes],
        "only Microsoft's features degrade"
    );
    h.cleanup().await;
}

#[tokio::test]
async fn a_refused_notion_token_cannot_be_refreshed_and_needs_reconnect() {
    let h = Harness::start(Provider::Notion).await;
    let user = h.user("+15557000005").await;
    h.connect(user, &[Feature::Notes]).await;
    let manager = h.manager();
    let base = h.fake.base_url();
    assert!(manager
        .call(user, Provider::Notion, |t| whoami(base.clone(), t))
        .await
        .is_ok());
    h.fake.revoke_consent();
    let outcome = manager
        .call(user, Provider::Notion, |t| whoami(base.clone(), t))
        .await;
    assert!(matches!(
        outcome,
        Err(CallError::Token(TokenError::NeedsReconnect(
            Provider::Notion
        )))
    ));
    assert_eq!(h.fake.refresh_hits(), 0, "Notion has no refresh grant");
    assert_eq!(
        h.event_types(user)
            .await
            .iter()
            .filter(|t| *t == "ServiceNeedsReconnect")
            .count(),
        1
    );
    h.cleanup().await;
}

#[tokio::test]
async fn features_unlock_only_for_connected_services_with_scope_and_switched_on() {
    let h = Harness::start(Provider::Microsoft).await;
    let user = h.user("+15557000006").await;
    let other = h.user("+15557000007").await;
    let manager = h.manager();
    assert!(enabled_features(&h.store, user).await.unwrap().is_empty());
    assert!(matches!(
        manager.access_token(user, Provider::Google).await,
        Err(TokenError::NotConnected(Provider::Google))
    ));

    h.connect(user, &[Feature::Calendar]).await;
    assert_eq!(
        enabled_features(&h.store, user).await.unwrap(),
        vec![Feature::Calendar],
        "mail was not granted"
    );
    assert!(
        enabled_features(&h.store, other).await.unwrap().is_empty(),
        "another user's connection unlocks nothing"
    );
    vault::set_feature(h.store.pool(), user, "calendar", false)
        .await
        .unwrap();
    assert!(enabled_features(&h.store, user).await.unwrap().is_empty());
    vault::set_feature(h.store.pool(), user, "calendar", true)
        .await
        .unwrap();
    assert_eq!(
        enabled_features(&h.store, user).await.unwrap(),
        vec![Feature::Calendar]
    );
    h.cleanup().await;
}

#[tokio::test]
async fn a_sealed_token_moved_to_another_users_or_services_row_does_not_open() {
    let h = Harness::start(Provider::Microsoft).await;
    let alice = h.user("+15557000008").await;
    let bob = h.user("+15557000009").await;
    h.connect(alice, &[Feature::Calendar]).await;
    vault::save_connection(
        &h.store,
        bob,
        "microsoft",
        &NewTokens {
            access_token: Secret::new("bobs-token"),
            refresh_token: None,
            expires_at: None,
            scopes: vec![],
            account_label: None,
        },
    )
    .await
    .unwrap();
    // Nothing in the table is plaintext.
    let stored: HashMap<String, String> = sqlx::query_as::<_, (String, String)>(
        "SELECT user_id::text, access_sealed FROM oauth_credentials",
    )
    .fetch_all(h.store.pool())
    .await
    .unwrap()
    .into_iter()
    .collect();
    assert!(stored
        .values()
        .all(|v| v.starts_with("v1.") && !v.contains("bobs-token")));

    // Alice's ciphertext copied into Bob's row (an attacker with SQL access).
    sqlx::query(
        "UPDATE oauth_credentials SET access_sealed = (SELECT access_sealed FROM oauth_credentials WHERE user_id = $1) WHERE user_id = $2",
    )
    .bind(alice.as_uuid())
    .bind(bob.as_uuid())
    .execute(h.store.pool())
    .await
    .unwrap();
    assert!(matches!(
        vault::load(&h.store, bob, "microsoft").await,
        Err(StoreError::Sealed(_))
    ));
    // … or into another service's row of Alice's own.
    sqlx::query(
        "INSERT INTO oauth_credentials (user_id, service, access_sealed, status, connected_at, updated_at) \
         SELECT user_id, 'notion', access_sealed, 'connected', now(), now() FROM oauth_credentials WHERE user_id = $1",
    )
    .bind(alice.as_uuid())
    .execute(h.store.pool())
    .await
    .unwrap();
    assert!(matches!(
        vault::load(&h.store, alice, "notion").await,
        Err(StoreError::Sealed(_))
    ));
    assert!(vault::load(&h.store, alice, "microsoft")
        .await
        .unwrap()
        .is_some());

    // Row-level security: acting as Bob shows none of Alice's rows.
    let mut tx = sidekick_store::scoped::begin_as(h.store.pool(), bob)
        .await
        .unwrap();
    let visible: i64 =
        sqlx::query_scalar("SELECT count(*) FROM oauth_credentials WHERE user_id = $1")
            .bind(alice.as_uuid())
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    assert_eq!(visible, 0);
    drop(tx);

    // Purging Alice leaves Bob's row.
    let mut tx = h.store.pool().begin().await.unwrap();
    vault::purge_user(&mut tx, alice).await.unwrap();
    tx.commit().await.unwrap();
    assert!(vault::load(&h.store, alice, "microsoft")
        .await
        .unwrap()
        .is_none());
    let bobs: i64 = sqlx::query_scalar("SELECT count(*) FROM oauth_credentials WHERE user_id = $1")
        .bind(bob.as_uuid())
        .fetch_one(h.store.pool())
        .await
        .unwrap();
    assert_eq!(bobs, 1);
    h.cleanup().await;
}
