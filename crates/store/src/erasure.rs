//! A user's data as one document (export), and deleting it (erasure).
//!
//! Both walk the same set of tables: every table under row-level security that has
//! a `user_id` column — which is every read model, present and future (each
//! migration puts its read models under the same policy). `projection_checkpoints`
//! is left out: it holds only sequence numbers, and keeping it makes a redelivered
//! old event a no-op instead of a resurrection.
//!
//! The event log is not touched: it is append-only. Erasure destroys the user's
//! data key, so every sealed value of theirs in it can no longer be opened.

use std::collections::BTreeMap;

use sidekick_domain::UserId;
use sqlx::{PgPool, Postgres, Transaction};

use crate::error::Result;
use crate::scoped;

/// Tables of the user's that are bookkeeping, not data.
const NOT_USER_DATA: &[&str] = &["projection_checkpoints"];

/// Command-side tables keyed by `user_id` that erasure clears (as the system, not
/// under row-level security). `user_keys` is the data key itself.
const COMMAND_SIDE: &[&str] = &[
    "web_sessions",
    "signin_codes",
    "totp_recovery_codes",
    "totp_factors",
    "api_tokens",
    "oauth_states",
    "connect_links",
    "phone_registry",
    "user_keys",
];

/// The read-model tables: under row-level security, with a `user_id` column.
async fn read_model_tables(tx: &mut Transaction<'static, Postgres>) -> Result<Vec<String>> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.relrowsecurity
            AND EXISTS (SELECT 1 FROM pg_attribute a
                         WHERE a.attrelid = c.oid AND a.attname = 'user_id' AND NOT a.attisdropped)
          ORDER BY c.relname",
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(names
        .into_iter()
        .filter(|n| !NOT_USER_DATA.contains(&n.as_str()))
        .collect())
}

/// A table name as a quoted SQL identifier.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Every read-model row of `user`, by table, as JSON objects (column → value), read
/// under row-level security as that user. Sealed columns stay sealed here: opening
/// them is the caller's, with the user's key.
pub async fn read_models(
    pool: &PgPool,
    user: UserId,
) -> Result<BTreeMap<String, Vec<serde_json::Value>>> {
    let mut tx = pool.begin().await?;
    let tables = read_model_tables(&mut tx).await?;
    scoped::act_as(&mut tx, user).await?;
    let mut out = BTreeMap::new();
    for table in tables {
        let rows: Vec<serde_json::Value> = sqlx::query_scalar(&format!(
            "SELECT to_jsonb(t) FROM {} t WHERE t.user_id = $1",
            ident(&table)
        ))
        .bind(user.as_uuid())
        .fetch_all(&mut *tx)
        .await?;
        out.insert(table, rows);
    }
    tx.commit().await?;
    Ok(out)
}

/// What erasure removed, for the log and the answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Erased {
    /// Read-model rows deleted, all tables together.
    pub read_model_rows: u64,
    /// Whether a data key existed and was destroyed.
    pub key_destroyed: bool,
}

/// Deletes everything of `user` outside the event log, in one transaction: sessions,
/// codes, second factor, API tokens, the phone routing (so the number can sign up
/// again as a new user), the data key, the aggregates' cached snapshots, and every
/// read-model row. Safe to repeat.
pub(crate) async fn erase(pool: &PgPool, user: UserId) -> Result<Erased> {
    let mut tx = pool.begin().await?;
    let mut erased = Erased::default();
    for table in COMMAND_SIDE {
        let done = sqlx::query(&format!("DELETE FROM {} WHERE user_id = $1", ident(table)))
            .bind(user.as_uuid())
            .execute(&mut *tx)
            .await?;
        if *table == "user_keys" {
            erased.key_destroyed = done.rows_affected() > 0;
        }
    }
    // Snapshots are caches of aggregate state (sealed values and the number among
    // it); the log rebuilds them.
    sqlx::query("DELETE FROM aggregate_snapshots WHERE aggregate_id = $1")
        .bind(user.to_string())
        .execute(&mut *tx)
        .await?;
    let tables = read_model_tables(&mut tx).await?;
    scoped::act_as(&mut tx, user).await?;
    for table in tables {
        let done = sqlx::query(&format!("DELETE FROM {} WHERE user_id = $1", ident(&table)))
            .bind(user.as_uuid())
            .execute(&mut *tx)
            .await?;
        erased.read_model_rows += done.rows_affected();
    }
    tx.commit().await?;
    Ok(erased)
}

/// Every user whose account was deleted (an `AccountDeleted` event in the log).
/// Rebuilding read models skips their events: the live read models hold nothing of
/// theirs, and a replay must agree.
pub async fn deleted_users(pool: &PgPool) -> Result<std::collections::HashSet<UserId>> {
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT aggregate_id FROM events
          WHERE aggregate_type = 'account' AND event_type = 'AccountDeleted'",
    )
    .fetch_all(pool)
    .await?;
    Ok(ids.iter().filter_map(|id| UserId::parse(id).ok()).collect())
}
