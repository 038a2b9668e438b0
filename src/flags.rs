//! `sidekick flags list|resolve`: safety flags waiting for a person.
//!
//! The assistant raises a flag when an inbound message carries a self-harm signal;
//! by then it has sent the fixed crisis message and paused nudges for 24 hours. What
//! is left is for a person: someone on the operating team follows up (how is outside
//! Sidekick) and resolves the flag here, optionally with a note. Raising and
//! resolving are events on the user's Account, so both show in `sidekick audit`.
//!
//! Listing reads the `safety_flags` read model across users, declaring itself an
//! operator to row-level security; resolving finds the flag's user in the event
//! store, so it works even before the projector has caught up. Phone numbers are
//! masked and message text is never shown: `sidekick audit --reveal` is the
//! deliberate step that opens it.

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use clap::Subcommand;
use sidekick_domain::{mask_phone, AccountCommand, UserId};
use sidekick_store::{CommandMeta, Store, StoreError};
use uuid::Uuid;

use crate::config::Config;
use crate::serve::connect_db;
use crate::UsageError;

#[derive(Subcommand)]
pub enum FlagsCommand {
    /// Open safety flags across users, oldest first: flag, user, masked phone, when.
    List {
        /// Include resolved flags.
        #[arg(long)]
        all: bool,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Record that a person has followed up on a flag.
    Resolve {
        /// The flag id, as `sidekick flags list` prints it.
        flag_id: String,
        /// How it was followed up; stored sealed under the user's key.
        #[arg(long)]
        note: Option<String>,
    },
}

#[derive(sqlx::FromRow)]
struct FlagRow {
    flag_id: Uuid,
    user_id: Uuid,
    phone: Option<String>,
    channel: String,
    message_number: i64,
    raised_at: DateTime<Utc>,
    paused_until: DateTime<Utc>,
    resolved_at: Option<DateTime<Utc>>,
}

pub async fn run(config: &Config, command: FlagsCommand) -> Result<()> {
    match command {
        FlagsCommand::List { all, json } => list(config, all, json).await,
        FlagsCommand::Resolve { flag_id, note } => resolve(config, &flag_id, note).await,
    }
}

fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

async fn list(config: &Config, all: bool, json: bool) -> Result<()> {
    let pool = connect_db(config).await?;
    let mut tx = pool.begin().await?;
    // Row-level security shows an operator's transaction every user's flags only
    // when it says that is what it is (see the safety_flags migration).
    sqlx::query("SELECT set_config('sidekick.operator', 'on', true)")
        .execute(&mut *tx)
        .await?;
    let rows: Vec<FlagRow> = sqlx::query_as(
        "SELECT f.flag_id, f.user_id, r.phone, f.channel, f.message_number, f.raised_at,
                f.paused_until, f.resolved_at
           FROM safety_flags f LEFT JOIN phone_registry r ON r.user_id = f.user_id
          WHERE $1 OR f.resolved_at IS NULL
          ORDER BY f.raised_at, f.flag_id",
    )
    .bind(all)
    .fetch_all(&mut *tx)
    .await
    .context("reading safety flags failed")?;
    tx.commit().await?;
    if rows.is_empty() {
        eprintln!("no {}safety flags", if all { "" } else { "open " });
    }
    for f in rows {
        let phone = f
            .phone
            .as_deref()
            .map_or_else(|| "-".to_string(), mask_phone);
        if json {
            let line = serde_json::json!({
                "flag_id": f.flag_id,
                "user_id": f.user_id,
                "phone": phone,
                "channel": f.channel,
                "message_number": f.message_number,
                "raised_at": f.raised_at,
                "paused_until": f.paused_until,
                "resolved_at": f.resolved_at,
            });
            println!("{line}");
        } else {
            let status = match f.resolved_at {
                Some(t) => format!("resolved {}", when(t)),
                None => "open".to_string(),
            };
            println!(
                "{}  user {}  {}  {} message #{}  raised {}  nudges paused until {}  {}",
                f.flag_id,
                f.user_id,
                phone,
                f.channel,
                f.message_number,
                when(f.raised_at),
                when(f.paused_until),
                status
            );
        }
    }
    Ok(())
}

async fn resolve(config: &Config, flag_id: &str, note: Option<String>) -> Result<()> {
    let flag_id = Uuid::parse_str(flag_id.trim()).map_err(|_| {
        UsageError(format!(
            "{flag_id:?} is not a flag id; `sidekick flags list` prints them"
        ))
    })?;
    if note.as_deref().is_some_and(|n| n.len() > 2000) {
        return Err(UsageError("--note must be at most 2000 characters".into()).into());
    }
    let pool = connect_db(config).await?;
    let owner: Option<String> = sqlx::query_scalar(
        "SELECT aggregate_id FROM events
          WHERE event_type = 'SafetyFlagRaised' AND aggregate_type = 'account'
            AND (payload -> 'SafetyFlagRaised' ->> 'flag_id') = $1
          LIMIT 1",
    )
    .bind(flag_id.to_string())
    .fetch_optional(&pool)
    .await?;
    let Some(owner) = owner else {
        return Err(UsageError(format!(
            "no safety flag {flag_id}; `sidekick flags list` shows the open ones"
        ))
        .into());
    };
    let user = UserId::parse(&owner).context("the flag's account id is not a user id")?;
    let store = Store::new(pool, config.master_key()?);
    let note = match note {
        Some(text) => Some(
            store
                .data_key(user)
                .await
                .context("cannot seal the note: this user's data key is gone")?
                .seal(&text),
        ),
        None => None,
    };
    let command = AccountCommand::ResolveSafetyFlag {
        flag_id,
        note,
        at: Utc::now(),
    };
    match store
        .execute_account(user, command, CommandMeta::new())
        .await
    {
        Ok(()) => {
            println!("resolved {flag_id} (user {user})");
            Ok(())
        }
        Err(StoreError::Rejected(_)) => Err(UsageError(format!(
            "flag {flag_id} is already resolved; `sidekick flags list --all` shows when"
        ))
        .into()),
        Err(e) => Err(e).context("recording the resolution failed"),
    }
}
