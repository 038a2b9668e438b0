//! Per-user data keys: generated at sign-up, stored wrapped by the master key, cached
//! unwrapped in memory. Deleting a user's row destroys their key (crypto-shredding).
//!
//! The cache holds a key for [`CACHE_TTL`] at most: when an account is deleted in
//! one process, every other process of the deployment stops opening that user's
//! data within that time, without any message between them.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use sidekick_domain::{DataKey, MasterKey, UserId};
use sqlx::PgPool;

use crate::error::{Result, StoreError};

/// How long an unwrapped key is trusted without looking at `user_keys` again.
pub const CACHE_TTL: Duration = Duration::from_secs(60);

pub struct KeyRing {
    master: MasterKey,
    ttl: Duration,
    // A std lock: held only for a map lookup or insert, never across an await.
    cache: RwLock<HashMap<UserId, (DataKey, Instant)>>,
}

impl KeyRing {
    pub fn new(master: MasterKey) -> Self {
        Self::with_ttl(master, CACHE_TTL)
    }

    /// A key ring whose cache forgets keys after `ttl` (tests use zero).
    pub fn with_ttl(master: MasterKey, ttl: Duration) -> Self {
        Self {
            master,
            ttl,
            cache: RwLock::new(HashMap::new()),
        }
    }

    pub fn master(&self) -> &MasterKey {
        &self.master
    }

    fn cached(&self, user: UserId) -> Option<DataKey> {
        let cache = self.cache.read().ok()?;
        let (key, at) = cache.get(&user)?;
        (at.elapsed() < self.ttl).then(|| key.clone())
    }

    fn remember(&self, key: &DataKey) {
        if let Ok(mut c) = self.cache.write() {
            c.insert(key.user(), (key.clone(), Instant::now()));
        }
    }

    pub fn forget(&self, user: UserId) {
        if let Ok(mut c) = self.cache.write() {
            c.remove(&user);
        }
    }

    /// The user's key, creating it if the user has none yet. Two processes racing to
    /// create it agree on whichever row was inserted first.
    pub async fn ensure(&self, pool: &PgPool, user: UserId) -> Result<DataKey> {
        if let Some(key) = self.cached(user) {
            return Ok(key);
        }
        let fresh = DataKey::generate(user);
        sqlx::query("INSERT INTO user_keys (user_id, wrapped_key) VALUES ($1, $2) ON CONFLICT (user_id) DO NOTHING")
            .bind(user.as_uuid())
            .bind(self.master.wrap(&fresh))
            .execute(pool)
            .await?;
        self.get(pool, user).await
    }

    /// The user's key; [`StoreError::NoKey`] if it was never made or has been destroyed.
    pub async fn get(&self, pool: &PgPool, user: UserId) -> Result<DataKey> {
        if let Some(key) = self.cached(user) {
            return Ok(key);
        }
        let wrapped: Option<String> =
            sqlx::query_scalar("SELECT wrapped_key FROM user_keys WHERE user_id = $1")
                .bind(user.as_uuid())
                .fetch_optional(pool)
                .await?;
        let Some(wrapped) = wrapped else {
            self.forget(user);
            return Err(StoreError::NoKey(user));
        };
        let key = self.master.unwrap_key(user, &wrapped)?;
        self.remember(&key);
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestDb;

    /// Another process deleted the key: once the cached copy is older than the TTL,
    /// this process cannot open the user's data either.
    #[tokio::test]
    async fn a_destroyed_key_stops_opening_once_the_cache_expires() {
        let db = TestDb::new().await;
        let master = MasterKey::generate();
        let user = UserId::new();
        let lasting = KeyRing::new(master.clone());
        let brief = KeyRing::with_ttl(master, Duration::ZERO);
        let key = lasting.ensure(&db.pool, user).await.expect("key");
        let sealed = key.seal("secret");
        assert!(brief.get(&db.pool, user).await.is_ok());
        sqlx::query("DELETE FROM user_keys WHERE user_id = $1")
            .bind(user.as_uuid())
            .execute(&db.pool)
            .await
            .expect("delete");
        assert!(matches!(
            brief.get(&db.pool, user).await,
            Err(StoreError::NoKey(_))
        ));
        // Within its TTL the long-lived cache still has it: the window is bounded,
        // not zero.
        let cached = lasting.get(&db.pool, user).await.expect("cached");
        assert_eq!(cached.open(&sealed).expect("open"), "secret");
        db.cleanup().await;
    }
}
