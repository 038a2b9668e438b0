//! `--history N`: does a command cost more for someone with a long history?
//!
//! Someone who has texted Sidekick every day for years has tens of thousands of
//! events. The store keeps command cost flat with snapshots (a load reads the
//! snapshot and at most `SNAPSHOT_EVERY` events after it). This phase checks it on a
//! database of its own: one user gets N generated events, another none, and the
//! same command (`ReceiveMessage`, what the webhook runs) is timed for each,
//! interleaved so both see the same noise. The very first command for the long
//! history reads every event (an imported history has no snapshot yet) and is
//! reported on its own.

use std::time::Instant;

use anyhow::{Context, Result};
use indicatif::ProgressBar;
use serde::Serialize;
use sidekick_domain::{
    Channel, ConversationCommand, MasterKey, PhoneNumber, SignupChannel, Timezone, UserId,
};
use sidekick_store::{CommandMeta, Store};

use super::generate::{self, Conversation};
use super::server::Resources;
use super::stats::{ratio, round3, Summary};

#[derive(Debug, Clone, Serialize)]
pub struct HistoryResult {
    pub events: u64,
    pub commands_each: usize,
    pub generate_s: f64,
    /// The first command on the generated history (no snapshot yet: reads it all).
    pub cold_first_command_ms: f64,
    pub new_user_ms: Summary,
    pub long_history_ms: Summary,
    pub ratio_p50: Option<f64>,
    pub ratio_p99: Option<f64>,
}

const COMMANDS: usize = 300;

fn receive(key: &sidekick_domain::DataKey, i: usize) -> ConversationCommand {
    ConversationCommand::ReceiveMessage {
        message_id: uuid::Uuid::now_v7(),
        channel: Channel::Sms,
        provider_sid: Some(sidekick_domain::MessageSid::generate()),
        body: key.seal(&format!("Add task: thing number {i}.")),
        received_at: chrono::Utc::now(),
    }
}

async fn timed(store: &Store, user: UserId, command: ConversationCommand) -> Result<f64> {
    let started = Instant::now();
    store
        .execute_conversation(user, command, CommandMeta::new())
        .await?;
    Ok(started.elapsed().as_secs_f64() * 1e3)
}

pub async fn run(
    db_url: &str,
    events: u64,
    resources: &Resources,
    bar: &ProgressBar,
) -> Result<HistoryResult> {
    resources.database(db_url);
    let pool = sidekick_store::db::connect(db_url, &Default::default())
        .await
        .context("history: cannot create its database")?;
    sidekick_store::db::migrate(&pool).await?;
    let store = Store::new(pool.clone(), MasterKey::generate());
    let timezone = Some(Timezone::parse("America/Chicago")?);
    let mut users = Vec::new();
    for phone in ["+12015550100", "+12015550101"] {
        let phone = PhoneNumber::parse(phone)?;
        let (user, _) = store
            .register(
                &phone,
                Some("Sam"),
                timezone,
                SignupChannel::Operator,
                CommandMeta::new(),
            )
            .await?;
        users.push(user);
    }
    let (long, fresh) = (users[0], users[1]);

    // The long history: N events in all for this user (3 are its account's).
    let started = Instant::now();
    let key = store.data_key(long).await?;
    let mut conversation = Conversation::new(long, key.clone());
    let target = events.saturating_sub(3);
    bar.set_length(target);
    let mut written = 0u64;
    let mut batch = Vec::new();
    while written < target {
        let rows = conversation.exchange()?;
        let take = rows.len().min((target - written) as usize);
        batch.extend(rows.into_iter().take(take));
        written += take as u64;
        if batch.len() >= 5000 || written == target {
            generate::insert(&pool, &batch).await?;
            batch.clear();
            bar.set_position(written);
        }
    }
    let generate_s = round3(started.elapsed().as_secs_f64());

    let cold = timed(&store, long, receive(&key, 0)).await?;
    let fresh_key = store.data_key(fresh).await?;
    // One warm-up each, then interleaved timings.
    timed(&store, fresh, receive(&fresh_key, 0)).await?;
    let (mut new_ms, mut long_ms) = (Vec::new(), Vec::new());
    bar.set_length(2 * COMMANDS as u64);
    bar.set_position(0);
    for i in 1..=COMMANDS {
        new_ms.push(timed(&store, fresh, receive(&fresh_key, i)).await?);
        long_ms.push(timed(&store, long, receive(&key, i)).await?);
        bar.inc(2);
    }
    pool.close().await;
    let new_user_ms = Summary::of(&new_ms).rounded();
    let long_history_ms = Summary::of(&long_ms).rounded();
    Ok(HistoryResult {
        events: written + 3,
        commands_each: COMMANDS,
        generate_s,
        cold_first_command_ms: round3(cold),
        ratio_p50: ratio(long_history_ms.p50, new_user_ms.p50),
        ratio_p99: ratio(long_history_ms.p99, new_user_ms.p99),
        new_user_ms,
        long_history_ms,
    })
}
