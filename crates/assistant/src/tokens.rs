//! Access tokens for the services a user connected: fresh when asked for,
//! refreshed once however many callers ask at the same moment, and a broken
//! connection reported to the user once.
//!
//! # Why refreshes must collapse
//!
//! Microsoft rotates refresh tokens: each refresh returns a new one and the old
//! one dies. Two refreshes racing with the same refresh token leave one of them
//! holding a dead token, and a later refresh with it fails with `invalid_grant`
//! — the user would be told to reconnect for nothing. So a refresh for one user
//! and service happens at most once at a time:
//!
//! - in this process, callers queue on a per-(user, service) async mutex; the
//!   first refreshes, the rest find the fresh token when their turn comes;
//! - across processes, the refresh runs while holding the credential row's lock
//!   (`SELECT … FOR UPDATE`, [`vault::lock_for_refresh`]), and re-reads the row
//!   under it, so a second process waits and then uses the first one's result.
//!
//! The new access and refresh tokens are written in one statement under that
//! lock: there is never a stored state with one new and the other old.
//!
//! # When a connection breaks
//!
//! `invalid_grant` at refresh, a 401 on a token that cannot be refreshed
//! (Notion issues none), or a 401 on a token just refreshed (consent revoked)
//! marks the connection "needs reconnect" in the vault.
//! The one caller that changed it (the update is conditional on "connected")
//! records `ServiceNeedsReconnect` on the Account and queues one SMS; everyone
//! else just gets [`TokenError::NeedsReconnect`]. Only that service's features
//! degrade: other services are untouched.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use sidekick_domain::{AccountCommand, Channel, ConversationCommand, OutboundKind, UserId};
use sidekick_integrations::graph::GraphError;
use sidekick_integrations::notion::NotionError;
use sidekick_integrations::oauth::{self, OAuthApps, Provider, TokenSet};
use sidekick_integrations::youtube::YouTubeError;
use sidekick_integrations::{AccessToken, Recovery};
use sidekick_store::vault::{self, ConnectionStatus, Credential, NewTokens, Secret};
use sidekick_store::{CommandMeta, Store, StoreError};
use uuid::Uuid;

/// Refresh this long before the provider's expiry, so a token handed out is
/// still good for the call it is used for.
pub const REFRESH_MARGIN: chrono::Duration = chrono::Duration::seconds(120);

/// Why no access token could be had.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The user never connected the service (or disconnected it). Offer the
    /// connect link.
    #[error("{0} is not connected")]
    NotConnected(Provider),
    /// The provider no longer accepts our tokens: the user must connect again.
    /// They have been told (once).
    #[error("{0} needs reconnecting")]
    NeedsReconnect(Provider),
    /// This deployment has no client id for the provider.
    #[error("{0} is not configured on this server")]
    NotConfigured(Provider),
    /// The provider could not be reached or refused our client. Try later.
    #[error("{0} is unavailable: {1}")]
    Unavailable(Provider, String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a failed provider call says about the token it used.
pub trait AuthFailure {
    /// Whether the provider refused the access token (a 401).
    fn token_refused(&self) -> bool;
}

impl AuthFailure for GraphError {
    fn token_refused(&self) -> bool {
        self.recovery() == Recovery::RefreshToken
    }
}

impl AuthFailure for NotionError {
    fn token_refused(&self) -> bool {
        self.recovery() == Recovery::RefreshToken
    }
}

impl AuthFailure for YouTubeError {
    fn token_refused(&self) -> bool {
        self.recovery() == Recovery::RefreshToken
    }
}

/// The outcome of [`TokenManager::call`].
#[derive(Debug, thiserror::Error)]
pub enum CallError<E> {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Service(E),
}

type Gate = Arc<tokio::sync::Mutex<()>>;

/// Hands out access tokens, refreshing them (once) when they are about to
/// expire or were refused. Cheap to clone; one per process.
#[derive(Clone)]
pub struct TokenManager {
    store: Store,
    apps: OAuthApps,
    // A std mutex: held only to find or insert a gate, never across an await.
    gates: Arc<Mutex<HashMap<(UserId, Provider), Gate>>>,
}

impl std::fmt::Debug for TokenManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenManager")
            .field("apps", &self.apps)
            .finish_non_exhaustive()
    }
}

fn expiring(credential: &Credential, now: DateTime<Utc>) -> bool {
    credential
        .expires_at
        .is_some_and(|at| at - REFRESH_MARGIN <= now)
}

fn new_tokens(set: &TokenSet) -> NewTokens {
    NewTokens {
        access_token: Secret::new(set.access_token.secret()),
        refresh_token: set.refresh_token.as_deref().map(Secret::new),
        expires_at: set.expires_at,
        scopes: set.scopes.clone(),
        account_label: set.account_label.clone(),
    }
}

impl TokenManager {
    pub fn new(store: Store, apps: OAuthApps) -> Self {
        Self {
            store,
            apps,
            gates: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    pub fn apps(&self) -> &OAuthApps {
        &self.apps
    }

    fn gate(&self, user: UserId, provider: Provider) -> Gate {
        let mut gates = self.gates.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(gates.entry((user, provider)).or_default())
    }

    /// A usable access token for the user's `provider`, refreshed first if it
    /// expires within [`REFRESH_MARGIN`].
    #[tracing::instrument(skip_all, fields(user_id = %user, service = %provider), err)]
    pub async fn access_token(
        &self,
        user: UserId,
        provider: Provider,
    ) -> Result<AccessToken, TokenError> {
        let credential = self.current(user, provider).await?;
        if !expiring(&credential, Utc::now()) {
            return Ok(AccessToken::new(credential.access_token.expose()));
        }
        self.refresh(user, provider, &credential.access_token).await
    }

    /// Calls `f` with an access token; if the provider refuses it (401), gets a
    /// fresh one and calls once more. A refusal of the token just refreshed
    /// means the provider issues tokens it no longer honours (consent revoked):
    /// the connection is marked "needs reconnect" and the user told, once.
    pub async fn call<T, E, F, Fut>(
        &self,
        user: UserId,
        provider: Provider,
        f: F,
    ) -> Result<T, CallError<E>>
    where
        E: AuthFailure,
        F: Fn(AccessToken) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let token = self.access_token(user, provider).await?;
        match f(token.clone()).await {
            Err(e) if e.token_refused() => {
                let stale = Secret::new(token.secret());
                let fresh = self.refresh(user, provider, &stale).await?;
                match f(fresh.clone()).await {
                    Err(e) if e.token_refused() => {
                        Err(self.revoked(user, provider, &fresh).await.into())
                    }
                    other => other.map_err(CallError::Service),
                }
            }
            other => other.map_err(CallError::Service),
        }
    }

    /// The provider refused `refused`, a token fresh from a refresh: marks the
    /// connection broken unless another caller replaced that token meanwhile.
    async fn revoked(&self, user: UserId, provider: Provider, refused: &AccessToken) -> TokenError {
        let gate = self.gate(user, provider);
        let _turn = gate.lock().await;
        let lock = match vault::lock_for_refresh(&self.store, user, provider.as_str()).await {
            Ok(Some(lock)) => lock,
            Ok(None) => return TokenError::NotConnected(provider),
            Err(e) => return e.into(),
        };
        if lock.credential.access_token != Secret::new(refused.secret()) {
            // Someone stored a newer token since: not proof of a revoked consent.
            return TokenError::Unavailable(provider, "the token changed during the call".into());
        }
        match lock.needs_reconnect().await {
            Ok(changed) => self.broken(changed, user, provider).await,
            Err(e) => e.into(),
        }
    }

    async fn current(&self, user: UserId, provider: Provider) -> Result<Credential, TokenError> {
        let credential = vault::load(&self.store, user, provider.as_str())
            .await?
            .ok_or(TokenError::NotConnected(provider))?;
        match credential.status {
            ConnectionStatus::Connected => Ok(credential),
            ConnectionStatus::NeedsReconnect => Err(TokenError::NeedsReconnect(provider)),
        }
    }

    /// Replaces `stale` (expiring, or refused by the provider) with a fresh
    /// token, unless someone else already did while we waited our turn.
    async fn refresh(
        &self,
        user: UserId,
        provider: Provider,
        stale: &Secret,
    ) -> Result<AccessToken, TokenError> {
        let gate = self.gate(user, provider);
        let _turn = gate.lock().await;
        let lock = vault::lock_for_refresh(&self.store, user, provider.as_str())
            .await?
            .ok_or(TokenError::NotConnected(provider))?;
        let credential = lock.credential.clone();
        if credential.status == ConnectionStatus::NeedsReconnect {
            return Err(TokenError::NeedsReconnect(provider));
        }
        if credential.access_token != *stale && !expiring(&credential, Utc::now()) {
            // Another caller (here or in another process) refreshed already.
            return Ok(AccessToken::new(credential.access_token.expose()));
        }
        let Some(refresh_token) = credential.refresh_token.clone() else {
            // No refresh token (Notion): a refused token means revoked access.
            return Err(self
                .broken(lock.needs_reconnect().await?, user, provider)
                .await);
        };
        let app = self
            .apps
            .get(provider)
            .ok_or(TokenError::NotConfigured(provider))?;
        match app
            .refresh(refresh_token.expose(), &credential.scopes)
            .await
        {
            Ok(set) => {
                lock.store(&new_tokens(&set)).await?;
                metrics::counter!("sidekick_oauth_refreshes_total", "service" => provider.as_str(), "outcome" => "ok").increment(1);
                Ok(set.access_token)
            }
            Err(oauth::TokenError::InvalidGrant(_)) => {
                metrics::counter!("sidekick_oauth_refreshes_total", "service" => provider.as_str(), "outcome" => "invalid_grant").increment(1);
                Err(self
                    .broken(lock.needs_reconnect().await?, user, provider)
                    .await)
            }
            Err(oauth::TokenError::Unavailable(reason) | oauth::TokenError::Rejected(reason)) => {
                metrics::counter!("sidekick_oauth_refreshes_total", "service" => provider.as_str(), "outcome" => "failed").increment(1);
                Err(TokenError::Unavailable(provider, reason))
            }
        }
    }

    /// After the vault marked the connection broken: if this caller is the one
    /// that changed it, record the event and tell the user, once.
    async fn broken(&self, changed: bool, user: UserId, provider: Provider) -> TokenError {
        if changed {
            if let Err(error) = self.report_broken(user, provider).await {
                tracing::error!(%error, user_id = %user, service = %provider, "could not report a broken connection");
            }
        }
        TokenError::NeedsReconnect(provider)
    }

    async fn report_broken(&self, user: UserId, provider: Provider) -> Result<(), StoreError> {
        let at = Utc::now();
        let meta = CommandMeta::new();
        let service = provider.as_str().to_string();
        self.store
            .execute_account(
                user,
                AccountCommand::RecordServiceNeedsReconnect { service, at },
                meta,
            )
            .await?;
        let body = needs_reconnect_text(provider);
        let key = self.store.data_key(user).await?;
        let reply_id = Uuid::new_v5(
            &user.as_uuid(),
            format!("needs-reconnect/{provider}/{}", at.timestamp_millis()).as_bytes(),
        );
        let command = ConversationCommand::QueueReply {
            reply_id,
            answers_through: None,
            channel: Channel::Sms,
            segments: sidekick_domain::sms::segments(&body) as u32,
            body: key.seal(&body),
            // An account notice the user must get once, not a nudge: the
            // notifier holds back only unprompted kinds (a safety pause), and
            // nudge settings must not swallow it.
            kind: OutboundKind::System,
            queued_at: at,
        };
        self.store.execute_conversation(user, command, meta).await
    }
}

/// The one text a user gets when a service stops working: what is paused, and
/// the one thing to do, without blame or urgency.
pub fn needs_reconnect_text(provider: Provider) -> String {
    let (name, paused, phrase) = match provider {
        Provider::Google => ("Google", "YouTube lookups are", "connect youtube"),
        Provider::Microsoft => ("Microsoft", "calendar and email are", "connect calendar"),
        Provider::Notion => ("Notion", "notes to Notion are", "connect notion"),
    };
    format!(
        "{name} asked me to reconnect, so {paused} paused for now. \
         No rush: text \"{phrase}\" when you have a minute."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reconnect_text_fits_one_segment_per_provider() {
        for provider in Provider::ALL {
            let text = needs_reconnect_text(provider);
            assert_eq!(sidekick_domain::sms::segments(&text), 1, "{text}");
            assert!(text.contains("connect"), "{text}");
        }
    }

    #[test]
    fn the_reconnect_notice_is_not_held_back_with_nudges() {
        // report_broken queues it as System: the kinds a nudge pause holds back
        // exclude it.
        assert!(!OutboundKind::System.unprompted());
    }
}
