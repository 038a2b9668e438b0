//! Sidekick's PostgreSQL side: the event store (cqrs-es + postgres-es with our own
//! snapshots), the outbox relay's reading end, per-user data keys, phone routing, API
//! tokens, and read-model queries scoped to one user under row-level security.
//!
//! # Layout
//! - [`db`]: connect (creating the database if missing) and migrate.
//! - [`event_store`]: the cqrs-es `EventStore` with correct snapshots.
//! - [`events`]: reading the log in commit-safe order, per user, per aggregate.
//! - [`relay`]: the outbox relay loop, publishing through the [`relay::Outbox`] port.
//! - [`keys`]: per-user data keys wrapped by the master key.
//! - [`erasure`]: a user's read models as one document, and deleting the account.
//! - [`registry`]: phone → user, API tokens, unknown-sender limits, dead letters.
//! - [`signin`]: texted sign-in codes and their rate limits.
//! - [`second_factor`]: the optional TOTP factor and its recovery codes.
//! - [`sessions`]: browser sessions (server-side, revocable) and their CSRF tokens.
//! - [`scoped`]: transactions that act as one user under row-level security.
//! - [`sync`]: queries of the sync read model.
//! - [`planning`]: queries of the planning read model (tasks, reminders, plan, progress).
//! - [`memory`]: queries of the memory read model, ranked search included.
//! - [`schedule`]: the scheduler's due items: claiming them across users with leases.
//! - [`vault`]: the credential vault (OAuth tokens sealed per user and service),
//!   feature switches, connect flows in flight and texted connect links.
//!
//! This crate knows the domain and PostgreSQL only: never the bus or HTTP.

pub mod db;
pub mod erasure;
mod error;
pub mod event_store;
pub mod events;
pub mod keys;
pub mod memory;
pub mod planning;
pub mod registry;
pub mod relay;
pub mod schedule;
pub mod scoped;
pub mod second_factor;
pub mod sessions;
pub mod signin;
pub mod sync;
pub mod testing;
pub mod vault;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use cqrs_es::{Aggregate, AggregateError, CqrsFramework, EventStore};
use sidekick_domain::envelope::meta;
use sidekick_domain::memory::{Memory, MemoryCommand};
use sidekick_domain::planner::{Planner, PlannerCommand};
use sidekick_domain::{
    Account, AccountCommand, Conversation, ConversationCommand, DataKey, MasterKey, PhoneNumber,
    SignupChannel, Timezone, UserId,
};
use sqlx::PgPool;
use uuid::Uuid;

pub use error::{Result, StoreError};
use event_store::{Check, Recent, SnapshotEventStore};
pub use events::Cursor;

/// How often an aggregate is snapshotted: a load reads at most this many events.
pub const SNAPSHOT_EVERY: usize = 25;
/// Aggregate states kept in memory per aggregate type (see [`event_store::Recent`]):
/// enough for every active user of a deployment of a few thousand.
const KEPT_STATES: usize = 4096;
const MAX_CONFLICT_RETRIES: u32 = 12;
/// Shards of [`CommandTurns`]: far more than the commands in flight at once (tens).
const COMMAND_TURNS: usize = 1024;

/// Who caused a command and which conversation turn it belongs to; written as
/// metadata on every event it produces.
#[derive(Debug, Clone, Copy)]
pub struct CommandMeta {
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
}

impl CommandMeta {
    pub fn new() -> Self {
        Self {
            correlation_id: Uuid::now_v7(),
            causation_id: None,
        }
    }

    pub fn caused_by(event_id: Uuid, correlation_id: Option<Uuid>) -> Self {
        Self {
            correlation_id: correlation_id.unwrap_or(event_id),
            causation_id: Some(event_id),
        }
    }

    fn to_map(self, user: UserId) -> HashMap<String, String> {
        let mut m = HashMap::new();
        m.insert(meta::USER_ID.to_string(), user.to_string());
        m.insert(
            meta::CORRELATION_ID.to_string(),
            self.correlation_id.to_string(),
        );
        if let Some(c) = self.causation_id {
            m.insert(meta::CAUSATION_ID.to_string(), c.to_string());
        }
        m
    }
}

impl Default for CommandMeta {
    fn default() -> Self {
        Self::new()
    }
}

struct Inner {
    pool: PgPool,
    keys: keys::KeyRing,
    accounts: CqrsFramework<Account, SnapshotEventStore<Account>>,
    conversations: CqrsFramework<Conversation, SnapshotEventStore<Conversation>>,
    planners: CqrsFramework<Planner, SnapshotEventStore<Planner>>,
    memories: CqrsFramework<Memory, SnapshotEventStore<Memory>>,
    account_loader: SnapshotEventStore<Account>,
    conversation_loader: SnapshotEventStore<Conversation>,
    planner_loader: SnapshotEventStore<Planner>,
    memory_loader: SnapshotEventStore<Memory>,
    turns: CommandTurns,
}

/// The command side: executes commands on the user's aggregates and holds their keys.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl Store {
    pub fn new(pool: PgPool, master: MasterKey) -> Self {
        let (accounts, conversations, planners, memories) = (
            Recent::new(KEPT_STATES),
            Recent::new(KEPT_STATES),
            Recent::new(KEPT_STATES),
            Recent::new(KEPT_STATES),
        );
        Self {
            inner: Arc::new(Inner {
                keys: keys::KeyRing::new(master),
                accounts: CqrsFramework::new(
                    SnapshotEventStore::new(
                        pool.clone(),
                        SNAPSHOT_EVERY,
                        accounts.clone(),
                        Check::OnCommit,
                    ),
                    vec![],
                    (),
                ),
                conversations: CqrsFramework::new(
                    SnapshotEventStore::new(
                        pool.clone(),
                        SNAPSHOT_EVERY,
                        conversations.clone(),
                        Check::OnCommit,
                    ),
                    vec![],
                    (),
                ),
                planners: CqrsFramework::new(
                    SnapshotEventStore::new(
                        pool.clone(),
                        SNAPSHOT_EVERY,
                        planners.clone(),
                        Check::OnCommit,
                    ),
                    vec![],
                    (),
                ),
                memories: CqrsFramework::new(
                    SnapshotEventStore::new(
                        pool.clone(),
                        SNAPSHOT_EVERY,
                        memories.clone(),
                        Check::OnCommit,
                    ),
                    vec![],
                    (),
                ),
                planner_loader: SnapshotEventStore::new(
                    pool.clone(),
                    SNAPSHOT_EVERY,
                    planners,
                    Check::OnLoad,
                ),
                memory_loader: SnapshotEventStore::new(
                    pool.clone(),
                    SNAPSHOT_EVERY,
                    memories,
                    Check::OnLoad,
                ),
                account_loader: SnapshotEventStore::new(
                    pool.clone(),
                    SNAPSHOT_EVERY,
                    accounts,
                    Check::OnLoad,
                ),
                conversation_loader: SnapshotEventStore::new(
                    pool.clone(),
                    SNAPSHOT_EVERY,
                    conversations,
                    Check::OnLoad,
                ),
                pool,
                turns: CommandTurns::new(COMMAND_TURNS),
            }),
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    pub fn master_key(&self) -> &MasterKey {
        self.inner.keys.master()
    }

    pub async fn data_key(&self, user: UserId) -> Result<DataKey> {
        self.inner.keys.get(&self.inner.pool, user).await
    }

    pub async fn execute_account(
        &self,
        user: UserId,
        command: AccountCommand,
        meta: CommandMeta,
    ) -> Result<()> {
        execute_with_retry(
            &self.inner.turns,
            &self.inner.accounts,
            &self.inner.account_loader,
            user,
            command,
            meta,
        )
        .await
    }

    pub async fn execute_conversation(
        &self,
        user: UserId,
        command: ConversationCommand,
        meta: CommandMeta,
    ) -> Result<()> {
        execute_with_retry(
            &self.inner.turns,
            &self.inner.conversations,
            &self.inner.conversation_loader,
            user,
            command,
            meta,
        )
        .await
    }

    pub async fn execute_planner(
        &self,
        user: UserId,
        command: PlannerCommand,
        meta: CommandMeta,
    ) -> Result<()> {
        execute_with_retry(
            &self.inner.turns,
            &self.inner.planners,
            &self.inner.planner_loader,
            user,
            command,
            meta,
        )
        .await
    }

    pub async fn execute_memory(
        &self,
        user: UserId,
        command: MemoryCommand,
        meta: CommandMeta,
    ) -> Result<()> {
        execute_with_retry(
            &self.inner.turns,
            &self.inner.memories,
            &self.inner.memory_loader,
            user,
            command,
            meta,
        )
        .await
    }

    pub async fn planner(&self, user: UserId) -> Result<Planner> {
        load(&self.inner.planner_loader, user).await
    }

    pub async fn memory(&self, user: UserId) -> Result<Memory> {
        load(&self.inner.memory_loader, user).await
    }

    pub async fn account(&self, user: UserId) -> Result<Account> {
        load(&self.inner.account_loader, user).await
    }

    /// Whether `user` finished registering. A registration is never undone (a
    /// deleted account's number leaves the registry, so nothing routes to it), so a
    /// state this process kept that says so is taken as it is, without a query.
    pub async fn is_registered(&self, user: UserId) -> Result<bool> {
        let id = user.to_string();
        if self
            .inner
            .account_loader
            .kept(&id)
            .is_some_and(|account| account.is_registered())
        {
            return Ok(true);
        }
        Ok(self.account(user).await?.is_registered())
    }

    pub async fn conversation(&self, user: UserId) -> Result<Conversation> {
        load(&self.inner.conversation_loader, user).await
    }

    /// Signs a number up, or returns the user it already belongs to. Safe to repeat and
    /// to race: the phone is reserved first, then the key made, then the account
    /// registered (a no-op when it already is). Returns `(user, newly_registered)`.
    pub async fn register(
        &self,
        phone: &PhoneNumber,
        name: Option<&str>,
        timezone: Option<Timezone>,
        via: SignupChannel,
        meta: CommandMeta,
    ) -> Result<(UserId, bool)> {
        let (user, _) = registry::reserve_phone(&self.inner.pool, phone).await?;
        let key = self.inner.keys.ensure(&self.inner.pool, user).await?;
        let was_registered = self.account(user).await?.is_registered();
        if !was_registered {
            let command = AccountCommand::RegisterAccount {
                user_id: user,
                phone: phone.clone(),
                name: name.map(|n| key.seal(n)),
                timezone,
                via,
                at: chrono::Utc::now(),
            };
            self.execute_account(user, command, meta).await?;
        }
        Ok((user, !was_registered))
    }

    /// Deletes the account of `user`: records `AccountDeleted` (the fact the audit
    /// shows), then destroys the data key and purges everything outside the log (see
    /// [`erasure::erase`]). Safe to repeat; a half-done deletion finishes on retry.
    ///
    /// This process forgets the key at once; other processes of the deployment stop
    /// using their cached copy within [`keys::CACHE_TTL`].
    pub async fn delete_account(&self, user: UserId, meta: CommandMeta) -> Result<erasure::Erased> {
        let command = AccountCommand::DeleteAccount {
            at: chrono::Utc::now(),
        };
        self.execute_account(user, command, meta).await?;
        let erased = erasure::erase(&self.inner.pool, user).await?;
        self.inner.keys.forget(user);
        Ok(erased)
    }

    pub async fn user_by_phone(&self, phone: &PhoneNumber) -> Result<Option<UserId>> {
        registry::user_by_phone(&self.inner.pool, phone).await
    }

    /// Whether the database answers (readiness).
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.inner.pool).await?;
        Ok(())
    }
}

/// Commands on one aggregate take turns within this process: each decides on the
/// state the one before it committed, instead of both deciding on the same state and
/// one failing to append. Without this, a user's next text arriving while the
/// notifier records the last reply's outcome made the webhook's append fail, read
/// the state again and retry (under load, for 5–25 % of inbound messages). A lock per
/// shard of aggregate ids, held for one attempt (load, decide, append): unrelated
/// aggregates sharing a shard wait at most one command's round trips for each other.
struct CommandTurns {
    shards: Box<[tokio::sync::Mutex<()>]>,
}

impl CommandTurns {
    fn new(shards: usize) -> Self {
        Self {
            shards: (0..shards.max(1))
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        }
    }

    async fn take(&self, aggregate_type: &str, id: &str) -> tokio::sync::MutexGuard<'_, ()> {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (aggregate_type, id).hash(&mut hasher);
        self.shards[hasher.finish() as usize % self.shards.len()]
            .lock()
            .await
    }
}

async fn load<A: Aggregate + Clone>(store: &SnapshotEventStore<A>, user: UserId) -> Result<A> {
    let mut ctx = store
        .load_aggregate(&user.to_string())
        .await
        .map_err(error::from_aggregate)?;
    Ok(std::mem::take(&mut ctx.aggregate))
}

/// Executes a command, retrying optimistic-lock conflicts with jittered backoff: the
/// webhook, the assistant and the notifier all write to a user's Conversation.
/// Within this process, commands on one aggregate take turns ([`CommandTurns`]), so
/// only another process's write can make one conflict.
///
/// Commands decide on the state this process kept when it has one (see
/// [`event_store`]): a command the aggregate rejects is tried once more on the state
/// read afresh, so a rejection never rests on a state another process moved on.
async fn execute_with_retry<A>(
    turns: &CommandTurns,
    cqrs: &CqrsFramework<A, SnapshotEventStore<A>>,
    loader: &SnapshotEventStore<A>,
    user: UserId,
    command: A::Command,
    meta: CommandMeta,
) -> Result<()>
where
    A: Aggregate + Clone,
    A::Command: Clone,
{
    let id = user.to_string();
    let metadata = meta.to_map(user);
    let mut rejected_once = false;
    for attempt in 1..=MAX_CONFLICT_RETRIES {
        let turn = turns.take(A::TYPE, &id).await;
        let result = cqrs
            .execute_with_metadata(&id, command.clone(), metadata.clone())
            .await;
        drop(turn);
        match result {
            Ok(()) => return Ok(()),
            Err(AggregateError::UserError(_)) if !rejected_once => {
                rejected_once = true;
                loader.forget(&id);
            }
            Err(AggregateError::AggregateConflict) => {
                metrics::counter!("sidekick_command_conflicts_total", "aggregate" => A::TYPE)
                    .increment(1);
                let jitter = Uuid::new_v4().as_u128() as u64 % (2 + 3 * u64::from(attempt));
                tokio::time::sleep(Duration::from_millis(1 + jitter)).await;
            }
            Err(e) => return Err(error::from_aggregate(e)),
        }
    }
    Err(StoreError::Conflict {
        aggregate: A::TYPE,
        id,
        attempts: MAX_CONFLICT_RETRIES,
    })
}
