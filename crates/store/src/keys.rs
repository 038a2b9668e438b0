//! Per-user data keys: generated at sign-up, stored wrapped by the master key, cached
//! unwrapped in memory. Deleting a user's row destroys their key (crypto-shredding).

use std::collections::HashMap;
use std::sync::RwLock;

use sidekick_domain::{DataKey, MasterKey, UserId};
use sqlx::PgPool;

use crate::error::{Result, StoreError};

pub struct KeyRing {
    master: MasterKey,
    // A std lock: held only for a map lookup or insert, never across an await.
    cache: RwLock<HashMap<UserId, DataKey>>,
}

impl KeyRing {
    pub fn new(master: MasterKey) -> Self {
        Self {
            master,
            cache: RwLock::new(HashMap::new()),
        }
    }

    pub fn master(&self) -> &MasterKey {
        &self.master
    }

    fn cached(&self, user: UserId) -> Option<DataKey> {
        self.cache.read().ok().and_then(|c| c.get(&user).cloned())
    }

    fn remember(&self, key: &DataKey) {
        if let Ok(mut c) = self.cache.write() {
            c.insert(key.user(), key.clone());
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
        let wrapped = wrapped.ok_or(StoreError::NoKey(user))?;
        let key = self.master.unwrap_key(user, &wrapped)?;
        self.remember(&key);
        Ok(key)
    }
}
