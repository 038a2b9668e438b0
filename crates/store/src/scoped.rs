//! Read-model access scoped to one user.
//!
//! Every read-model query runs in a transaction that switches to the `sidekick_app`
//! role and sets `sidekick.user_id`; row-level security then shows that user's rows
//! and nothing else. A transaction that skips this sees no rows at all (policies
//! compare with an unset setting), which is the second wall behind the queries' own
//! `WHERE user_id = …`.

use sidekick_domain::UserId;
use sqlx::{PgPool, Postgres, Transaction};

use crate::error::Result;

pub type UserTx = Transaction<'static, Postgres>;

/// Begins a transaction acting as `user` under row-level security, in one round
/// trip (`BEGIN` and the settings go as one simple query; a user id is a UUID, so
/// writing it into the text is safe).
pub async fn begin_as(pool: &PgPool, user: UserId) -> Result<UserTx> {
    Ok(pool.begin_with(begin_as_sql(user)).await?)
}

fn begin_as_sql(user: UserId) -> String {
    let id: uuid::Uuid = user.as_uuid();
    format!(
        "BEGIN; SELECT set_config('role', 'sidekick_app', true), set_config('sidekick.user_id', '{id}', true)"
    )
}

/// Switches an open transaction to act as `user` (after any system-level reads).
/// One round trip: `set_config('role', …, true)` is `SET LOCAL ROLE`.
pub async fn act_as(tx: &mut UserTx, user: UserId) -> Result<()> {
    sqlx::query(
        "SELECT set_config('role', 'sidekick_app', true), set_config('sidekick.user_id', $1, true)",
    )
    .bind(user.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
}
