//! The credential vault: each user's OAuth tokens per service, and the features
//! they switched off.
//!
//! Tokens are the most sensitive thing Sidekick holds, so:
//! - they are sealed (AES-256-GCM) under the user's data key with the user id and
//!   the service as associated data ([`seal_context`]): a ciphertext moved into
//!   another user's or another service's row does not open;
//! - they never leave this module except as a [`Secret`], whose `Debug` is
//!   redacted and which has no `Display`;
//! - every query runs as the user under row-level security ([`scoped`]);
//! - [`purge_user`] destroys them with the rest of the account.
//!
//! Refreshing is the caller's business (`sidekick_assistant::tokens`), but the
//! vault gives it the two things it needs to be safe across processes: a row
//! lock held for the whole refresh ([`lock_for_refresh`]) and a version that
//! every write of new tokens bumps.
//!
//! Service and feature names are plain strings here (`"google"`, `"calendar"`):
//! this crate does not know the integrations crate's types. The database checks
//! service names; callers parse them before they get here.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use sidekick_domain::{DataKey, UserId};
use sqlx::{PgPool, Postgres, Transaction};

use crate::error::{Result, StoreError};
use crate::scoped::{self, UserTx};
use crate::Store;

/// A token read from the vault. `Debug` is redacted; [`Secret::expose`] is the
/// only way to the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The token itself, for a request to the provider and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Whether a connection works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionStatus {
    Connected,
    /// The provider refused our refresh token or the user revoked consent: the
    /// user must connect again. Tokens are kept until then (they do nothing).
    NeedsReconnect,
}

impl ConnectionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connected => "connected",
            Self::NeedsReconnect => "needs_reconnect",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        match s {
            "connected" => Ok(Self::Connected),
            "needs_reconnect" => Ok(Self::NeedsReconnect),
            other => Err(StoreError::Corrupt(format!("connection status {other:?}"))),
        }
    }
}

/// Tokens to store, as a token endpoint issued them.
#[derive(Clone)]
pub struct NewTokens {
    pub access_token: Secret,
    pub refresh_token: Option<Secret>,
    pub expires_at: Option<DateTime<Utc>>,
    pub scopes: Vec<String>,
    pub account_label: Option<String>,
}

impl fmt::Debug for NewTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewTokens")
            .field("expires_at", &self.expires_at)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

/// One user's connection to one service, tokens opened.
#[derive(Debug, Clone)]
pub struct Credential {
    pub service: String,
    pub access_token: Secret,
    pub refresh_token: Option<Secret>,
    pub expires_at: Option<DateTime<Utc>>,
    pub scopes: Vec<String>,
    pub account_label: Option<String>,
    pub status: ConnectionStatus,
    /// Bumped by every write of new tokens.
    pub version: i64,
}

/// A connection as the Connections page shows it: no tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub service: String,
    pub status: ConnectionStatus,
    pub scopes: Vec<String>,
    pub account_label: Option<String>,
}

/// The associated-data context of a sealed token: the user id is added by
/// [`DataKey::seal_with_context`], so the AAD binds user and service.
fn seal_context(service: &str, part: &str) -> String {
    format!("oauth/{service}/{part}")
}

fn seal(key: &DataKey, service: &str, part: &str, value: &str) -> String {
    key.seal_with_context(&seal_context(service, part), value.as_bytes())
}

fn open(key: &DataKey, service: &str, part: &str, sealed: &str) -> Result<Secret> {
    let bytes = key.open_with_context(&seal_context(service, part), sealed)?;
    String::from_utf8(bytes)
        .map(Secret)
        .map_err(|_| StoreError::Corrupt("sealed token is not UTF-8".into()))
}

type Row = (
    String,
    String,
    Option<String>,
    Option<DateTime<Utc>>,
    Vec<String>,
    Option<String>,
    String,
    i64,
);

const COLUMNS: &str =
    "service, access_sealed, refresh_sealed, expires_at, scopes, label_sealed, status, version";

fn credential(key: &DataKey, row: Row) -> Result<Credential> {
    let (service, access, refresh, expires_at, scopes, label, status, version) = row;
    let label = label
        .map(|l| open(key, &service, "label", &l).map(|s| s.0))
        .transpose()?;
    Ok(Credential {
        access_token: open(key, &service, "access", &access)?,
        refresh_token: refresh
            .map(|r| open(key, &service, "refresh", &r))
            .transpose()?,
        expires_at,
        scopes,
        account_label: label,
        status: ConnectionStatus::parse(&status)?,
        version,
        service,
    })
}

/// Stores a fresh connection (the end of a connect flow), replacing any earlier
/// one for the service, and marks it connected.
#[tracing::instrument(skip_all, fields(user_id = %user, service), err)]
pub async fn save_connection(
    store: &Store,
    user: UserId,
    service: &str,
    tokens: &NewTokens,
) -> Result<()> {
    let key = store.data_key(user).await?;
    let mut tx = scoped::begin_as(store.pool(), user).await?;
    sqlx::query(
        "INSERT INTO oauth_credentials (user_id, service, access_sealed, refresh_sealed, expires_at, \
             scopes, label_sealed, status, connected_at, version, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'connected', now(), 1, now()) \
         ON CONFLICT (user_id, service) DO UPDATE SET access_sealed = EXCLUDED.access_sealed, \
             refresh_sealed = COALESCE(EXCLUDED.refresh_sealed, oauth_credentials.refresh_sealed), \
             expires_at = EXCLUDED.expires_at, scopes = EXCLUDED.scopes, \
             label_sealed = COALESCE(EXCLUDED.label_sealed, oauth_credentials.label_sealed), \
             status = 'connected', connected_at = now(), \
             version = oauth_credentials.version + 1, updated_at = now()",
    )
    .bind(user.as_uuid())
    .bind(service)
    .bind(seal(&key, service, "access", tokens.access_token.expose()))
    .bind(
        tokens
            .refresh_token
            .as_ref()
            .map(|r| seal(&key, service, "refresh", r.expose())),
    )
    .bind(tokens.expires_at)
    .bind(&tokens.scopes)
    .bind(
        tokens
            .account_label
            .as_deref()
            .map(|l| seal(&key, service, "label", l)),
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The user's connection to `service`, tokens opened; `None` if not connected.
pub async fn load(store: &Store, user: UserId, service: &str) -> Result<Option<Credential>> {
    let key = store.data_key(user).await?;
    let mut tx = scoped::begin_as(store.pool(), user).await?;
    let row: Option<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM oauth_credentials WHERE user_id = $1 AND service = $2"
    ))
    .bind(user.as_uuid())
    .bind(service)
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    row.map(|r| credential(&key, r)).transpose()
}

/// A refresh in progress: the credential row stays locked (`FOR UPDATE`) until
/// [`RefreshLock::store`] commits or the lock is dropped, so refreshes of the
/// same user and service in other processes wait and then see the result.
pub struct RefreshLock {
    tx: UserTx,
    key: DataKey,
    user: UserId,
    pub credential: Credential,
}

impl fmt::Debug for RefreshLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshLock")
            .field("user", &self.user)
            .field("credential", &self.credential)
            .finish_non_exhaustive()
    }
}

/// Locks the user's `service` row for a refresh; `None` if not connected.
pub async fn lock_for_refresh(
    store: &Store,
    user: UserId,
    service: &str,
) -> Result<Option<RefreshLock>> {
    let key = store.data_key(user).await?;
    let mut tx = scoped::begin_as(store.pool(), user).await?;
    let row: Option<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM oauth_credentials WHERE user_id = $1 AND service = $2 FOR UPDATE"
    ))
    .bind(user.as_uuid())
    .bind(service)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let credential = credential(&key, row)?;
    Ok(Some(RefreshLock {
        tx,
        key,
        user,
        credential,
    }))
}

impl RefreshLock {
    /// Writes the refreshed tokens and commits, releasing the lock. A rotated
    /// refresh token replaces the old one in the same statement as the access
    /// token: there is never a moment when one is new and the other old.
    pub async fn store(mut self, tokens: &NewTokens) -> Result<()> {
        let service = self.credential.service.clone();
        let key = &self.key;
        sqlx::query(
            "UPDATE oauth_credentials SET access_sealed = $3, \
                 refresh_sealed = COALESCE($4, refresh_sealed), expires_at = $5, scopes = $6, \
                 version = version + 1, updated_at = now() \
             WHERE user_id = $1 AND service = $2",
        )
        .bind(self.user.as_uuid())
        .bind(&service)
        .bind(seal(key, &service, "access", tokens.access_token.expose()))
        .bind(
            tokens
                .refresh_token
                .as_ref()
                .map(|r| seal(key, &service, "refresh", r.expose())),
        )
        .bind(tokens.expires_at)
        .bind(&tokens.scopes)
        .execute(&mut *self.tx)
        .await?;
        self.tx.commit().await?;
        Ok(())
    }

    /// Marks the connection as needing a reconnect and commits. `true` if it was
    /// connected until now: the caller tells the user, once.
    pub async fn needs_reconnect(mut self) -> Result<bool> {
        let changed =
            set_needs_reconnect(&mut self.tx, self.user, &self.credential.service).await?;
        self.tx.commit().await?;
        Ok(changed)
    }
}

async fn set_needs_reconnect(tx: &mut UserTx, user: UserId, service: &str) -> Result<bool> {
    let changed = sqlx::query(
        "UPDATE oauth_credentials SET status = 'needs_reconnect', updated_at = now() \
         WHERE user_id = $1 AND service = $2 AND status = 'connected'",
    )
    .bind(user.as_uuid())
    .bind(service)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(changed == 1)
}

/// Marks the connection as needing a reconnect. `true` only for the one call
/// that changed it from connected: that caller tells the user.
pub async fn mark_needs_reconnect(store: &Store, user: UserId, service: &str) -> Result<bool> {
    let mut tx = scoped::begin_as(store.pool(), user).await?;
    let changed = set_needs_reconnect(&mut tx, user, service).await?;
    tx.commit().await?;
    Ok(changed)
}

/// Deletes the user's connection to `service` and returns it (so its tokens can
/// be revoked at the provider); `None` if there was none.
pub async fn remove(store: &Store, user: UserId, service: &str) -> Result<Option<Credential>> {
    let key = store.data_key(user).await?;
    let mut tx = scoped::begin_as(store.pool(), user).await?;
    let row: Option<Row> = sqlx::query_as(&format!(
        "DELETE FROM oauth_credentials WHERE user_id = $1 AND service = $2 RETURNING {COLUMNS}"
    ))
    .bind(user.as_uuid())
    .bind(service)
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    // A row that no longer opens is still deleted; there is just nothing to revoke.
    Ok(row.and_then(|r| credential(&key, r).ok()))
}

/// The user's connections, without tokens, by service name.
pub async fn connections(store: &Store, user: UserId) -> Result<Vec<Connection>> {
    let key = store.data_key(user).await?;
    let mut tx = scoped::begin_as(store.pool(), user).await?;
    let rows: Vec<(String, String, Vec<String>, Option<String>)> = sqlx::query_as(
        "SELECT service, status, scopes, label_sealed FROM oauth_credentials \
         WHERE user_id = $1 ORDER BY service",
    )
    .bind(user.as_uuid())
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    rows.into_iter()
        .map(|(service, status, scopes, label)| {
            Ok(Connection {
                account_label: label
                    .and_then(|l| open(&key, &service, "label", &l).ok().map(|s| s.0)),
                status: ConnectionStatus::parse(&status)?,
                scopes,
                service,
            })
        })
        .collect()
}

/// The features the user switched on or off explicitly; a feature not listed
/// is on.
pub async fn feature_switches(pool: &PgPool, user: UserId) -> Result<BTreeMap<String, bool>> {
    let mut tx = scoped::begin_as(pool, user).await?;
    let rows: Vec<(String, bool)> =
        sqlx::query_as("SELECT feature, enabled FROM feature_switches WHERE user_id = $1")
            .bind(user.as_uuid())
            .fetch_all(&mut *tx)
            .await?;
    tx.commit().await?;
    Ok(rows.into_iter().collect())
}

/// Switches one feature on or off for the user.
pub async fn set_feature(pool: &PgPool, user: UserId, feature: &str, enabled: bool) -> Result<()> {
    let mut tx = scoped::begin_as(pool, user).await?;
    sqlx::query(
        "INSERT INTO feature_switches (user_id, feature, enabled, updated_at) VALUES ($1, $2, $3, now()) \
         ON CONFLICT (user_id, feature) DO UPDATE SET enabled = EXCLUDED.enabled, updated_at = now()",
    )
    .bind(user.as_uuid())
    .bind(feature)
    .bind(enabled)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Destroys everything the vault holds for `user` (account deletion): tokens,
/// feature switches, connect flows in flight and texted links. Runs in the
/// caller's transaction, acting as the user.
pub async fn purge_user(tx: &mut Transaction<'static, Postgres>, user: UserId) -> Result<()> {
    scoped::act_as(tx, user).await?;
    for table in [
        "oauth_credentials",
        "feature_switches",
        "oauth_states",
        "connect_links",
    ] {
        sqlx::query(&format!("DELETE FROM {table} WHERE user_id = $1"))
            .bind(user.as_uuid())
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Connect flows in flight, and texted links.

/// How long an authorization attempt (its state) and a texted link stay valid.
pub const FLOW_TTL: chrono::Duration = chrono::Duration::minutes(10);

fn hash(value: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(value.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An authorization attempt read back at the callback.
#[derive(Debug, Clone)]
pub struct PendingAuthorization {
    pub user: UserId,
    pub service: String,
    /// The PKCE verifier, for the code exchange.
    pub verifier: Secret,
    pub features: Vec<String>,
}

/// Records an authorization attempt under `state` (only its hash is kept), with
/// its PKCE verifier sealed under the user's key. Valid for [`FLOW_TTL`].
pub async fn begin_authorization(
    store: &Store,
    user: UserId,
    service: &str,
    state: &str,
    verifier: &str,
    features: &[String],
) -> Result<()> {
    let key = store.data_key(user).await?;
    sqlx::query(
        "INSERT INTO oauth_states (state_hash, user_id, service, verifier_sealed, features, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(hash(state))
    .bind(user.as_uuid())
    .bind(service)
    .bind(key.seal_with_context(&seal_context(service, "pkce"), verifier.as_bytes()))
    .bind(features)
    .bind(Utc::now() + FLOW_TTL)
    .execute(store.pool())
    .await?;
    // Old attempts of this user's are of no use to anyone.
    sqlx::query("DELETE FROM oauth_states WHERE user_id = $1 AND expires_at < now()")
        .bind(user.as_uuid())
        .execute(store.pool())
        .await?;
    Ok(())
}

/// Why a callback's state is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateRefusal {
    /// Never issued, or used already.
    Unknown,
    /// Issued more than [`FLOW_TTL`] ago.
    Expired,
    /// Issued for another service's callback.
    WrongService,
}

/// An `oauth_states` row: user, service, sealed verifier, features, expiry.
type StateRow = (uuid::Uuid, String, String, Vec<String>, DateTime<Utc>);

/// Takes (deletes) the authorization attempt with `state`, for `service`: a
/// state works once, whatever the outcome.
pub async fn take_authorization(
    store: &Store,
    service: &str,
    state: &str,
) -> Result<std::result::Result<PendingAuthorization, StateRefusal>> {
    let row: Option<StateRow> = sqlx::query_as(
        "DELETE FROM oauth_states WHERE state_hash = $1 \
         RETURNING user_id, service, verifier_sealed, features, expires_at",
    )
    .bind(hash(state))
    .fetch_optional(store.pool())
    .await?;
    let Some((user, stored_service, verifier, features, expires_at)) = row else {
        return Ok(Err(StateRefusal::Unknown));
    };
    if expires_at <= Utc::now() {
        return Ok(Err(StateRefusal::Expired));
    }
    if stored_service != service {
        return Ok(Err(StateRefusal::WrongService));
    }
    let user = UserId(user);
    let key = store.data_key(user).await?;
    let verifier = open(&key, service, "pkce", &verifier)?;
    Ok(Ok(PendingAuthorization {
        user,
        service: stored_service,
        verifier,
        features,
    }))
}

/// A texted link's target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectLink {
    pub user: UserId,
    pub service: String,
    pub features: Vec<String>,
}

/// Makes a short code for a link that starts connecting `service` for `user`,
/// valid for [`FLOW_TTL`]. Only the code's hash is kept.
pub async fn create_link(
    pool: &PgPool,
    user: UserId,
    service: &str,
    features: &[String],
) -> Result<String> {
    let code = short_code();
    sqlx::query(
        "INSERT INTO connect_links (code_hash, user_id, service, features, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(hash(&code))
    .bind(user.as_uuid())
    .bind(service)
    .bind(features)
    .bind(Utc::now() + FLOW_TTL)
    .execute(pool)
    .await?;
    Ok(code)
}

/// The link with `code`, if it exists and has not expired.
pub async fn find_link(pool: &PgPool, code: &str) -> Result<Option<ConnectLink>> {
    let row: Option<(uuid::Uuid, String, Vec<String>)> = sqlx::query_as(
        "SELECT user_id, service, features FROM connect_links \
         WHERE code_hash = $1 AND expires_at > now()",
    )
    .bind(hash(code))
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(user, service, features)| ConnectLink {
        user: UserId(user),
        service,
        features,
    }))
}

/// 12 characters from a 55-letter alphabet without look-alikes (≈69 bits):
/// short enough for an SMS, far too many to guess within ten minutes.
fn short_code() -> String {
    use rand::Rng as _;
    const ALPHABET: &[u8] = b"23456789abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ";
    let mut rng = rand::rngs::OsRng;
    (0..12)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}
