//! The assistant role: turns inbound messages into replies.
//!
//! Each user with messages in flight has a *lane* (a task with a queue), so one user's
//! slow turn never delays another's while each user's messages are handled in order.
//! People with ADHD often text in bursts ("remind me" … "to call mom" … "tomorrow"):
//! a message the offline parser recognises as complete is answered at once; anything
//! else waits up to [`TurnSettings::debounce`] for more, and the burst is answered
//! once, as one turn.
//!
//! Idempotency: a turn answers inbound messages up to number *n*; the Conversation
//! aggregate drops a second reply to the same messages, and messages already answered
//! are acknowledged without a new turn. The reply id is derived from the last message
//! id, so a redelivered turn queues the same reply id. Everything a turn changes is
//! written before the reply that answers it, so a turn cut short is redone whole.
//!
//! # Safety, in the order a turn meets it
//!
//! 1. **Crisis language** (`sidekick_domain::safety::assess`) is screened on every
//!    inbound message, SMS and web, before anything else reads it. On a signal the
//!    turn raises a safety flag on the Account (which pauses nudges for 24 hours and
//!    shows in `sidekick flags list`) and answers with the fixed crisis message for
//!    the person's country. No provider, not even the offline engine, sees the turn.
//! 2. **Fixed answers** ([`offline::fixed_answer`]): opt-out in any words, silence
//!    after an opt-out until START, HELP, "are you a bot?", "stop reminding me about
//!    X", medical questions. They come before the provider, whichever it is.
//! 3. **The reply check** (`sidekick_domain::safety::check_reply`) on whatever the
//!    provider said: dosing advice, a diagnosis, claiming to be a person or harmful
//!    content is replaced by a fixed message before it is queued.
//!
//! Message text is never logged; a flag is logged by its id and message number.
//!
//! # With a language model
//!
//! When the provider is a model, a turn nothing above answered goes through the
//! `model` submodule: the context within a token budget, the tools the user's
//! features allow, a holding reply for a slow model, the daily token budget, the
//! ADHD reply checks with one repair, and the offline engine (with an honest note)
//! when the model fails.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use sidekick_bus::worker::{Delivery, Handler, Outcome};
use sidekick_domain::command::{self, PlanningIntent};
use sidekick_domain::intent::{self, Intent};
use sidekick_domain::safety::{self, Violation};
use sidekick_domain::services_command::{self, ConnectRequest, ServiceQuery};
use sidekick_domain::{
    sms, Account, AccountCommand, AccountEvent, Channel, ConversationCommand, ConversationEvent,
    DataKey, DomainEventKind, Onboarding, OutboundKind, SignupChannel, UserId,
};
use sidekick_integrations::duckduckgo::DuckDuckGoClient;
use sidekick_integrations::oauth::OAuthApps;
use sidekick_store::vault;
use sidekick_store::{CommandMeta, Store, StoreError};
use tokio::sync::mpsc;
use tokio::time::Instant;
use uuid::Uuid;

use crate::copy;
use crate::engine::{Action, ModelProvider, Reply, Turn};
use crate::microsoft::MicrosoftAccess;
use crate::notes::NotesAccess;
use crate::offline::{self, OfflineEngine};
use crate::planning::Desk;
use crate::tools::{Outside, Registry};
use crate::youtube::VideoAccess;

mod model;

/// Replies are at most this many SMS segments (the crisis message excepted, see
/// [`copy::CRISIS_MAX_SEGMENTS`]).
pub const MAX_SEGMENTS: usize = 2;

#[derive(Debug, Clone)]
pub struct TurnSettings {
    /// How long an incomplete-looking message waits for the rest of a burst.
    pub debounce: Duration,
    /// The longest a burst is collected before it is answered anyway.
    pub max_wait: Duration,
    /// A lane with nothing to do for this long ends (a new message starts a new one).
    pub idle: Duration,
    /// A provider taking longer than this is abandoned for the offline engine.
    pub model_timeout: Duration,
    /// A language model slower than this gets a brief holding reply queued
    /// ("On it, one moment."); the full answer follows when it comes.
    pub holding_after: Duration,
    /// Model tokens (input + output) one user may use per local day; 0 means no
    /// limit. Past it, turns are answered without the model, kindly.
    pub daily_tokens: u64,
    /// What a turn's context may add to the prompt, in approximate tokens.
    pub context_tokens: usize,
    /// The support contact HELP names (carrier rules): the deployment's public URL.
    /// Without it, HELP says to reply HELP.
    pub support_url: Option<String>,
    /// `SIDEKICK_PUBLIC_URL`, for the short links "connect calendar" answers with.
    pub public_url: Option<String>,
    /// The OAuth apps configured here: a service without one cannot be connected.
    pub oauth: OAuthApps,
    /// Answers "today's meetings" and "email triage" from the user's connected
    /// Microsoft account; `None` leaves such texts to the planner and the model.
    pub microsoft: Option<MicrosoftAccess>,
    /// Answers "search …" / "look up …" with web results; `None` leaves such
    /// texts to the planner ("look up" then recalls a memory) and the model.
    pub search: Option<DuckDuckGoClient>,
    /// Keeps "summarise `<youtube link>`" as a memory of the transcript; `None`
    /// leaves such texts to the planner and the model.
    pub videos: Option<VideoAccess>,
    /// Appends "note to notion …" to the user's Notion; `None` leaves such
    /// texts to the planner and the model.
    pub notes: Option<NotesAccess>,
}

impl Default for TurnSettings {
    fn default() -> Self {
        Self {
            debounce: Duration::from_secs(2),
            max_wait: Duration::from_secs(6),
            idle: Duration::from_secs(60),
            model_timeout: Duration::from_secs(10),
            holding_after: Duration::from_millis(2_500),
            daily_tokens: 200_000,
            context_tokens: crate::context::CONTEXT_TOKENS,
            support_url: None,
            public_url: None,
            oauth: OAuthApps::default(),
            microsoft: None,
            search: None,
            videos: None,
            notes: None,
        }
    }
}

/// An inbound message waiting in a lane, with the delivery to settle once its turn
/// is done.
struct Inbound {
    delivery: Delivery,
    said: Said,
}

/// One inbound message as a turn reads it.
#[derive(Debug, Clone)]
struct Said {
    message_id: Uuid,
    number: u64,
    channel: Channel,
    text: String,
    /// The `MessageReceived` event: what the turn's commands are caused by.
    event_id: Uuid,
    correlation_id: Option<Uuid>,
}

struct Shared {
    store: Store,
    provider: Arc<dyn ModelProvider>,
    settings: TurnSettings,
    /// The tools a language model may be offered.
    registry: Registry,
    /// The user's connected integrations, for integration tools; `None` until the
    /// OAuth token store is wired in (core tools only).
    outside: Option<Arc<dyn Outside>>,
    lanes: Mutex<HashMap<UserId, mpsc::UnboundedSender<Inbound>>>,
    /// Deliveries taken but not yet settled, by event id: handed back on shutdown.
    in_flight: Mutex<HashMap<Uuid, Delivery>>,
}

pub struct AssistantWorker {
    shared: Arc<Shared>,
}

impl AssistantWorker {
    pub fn new(
        store: Store,
        provider: Arc<dyn ModelProvider>,
        settings: TurnSettings,
    ) -> Arc<Self> {
        Self::with_outside(store, provider, settings, None)
    }

    /// With the user's connected integrations, which integration tools use.
    pub fn with_outside(
        store: Store,
        provider: Arc<dyn ModelProvider>,
        settings: TurnSettings,
        outside: Option<Arc<dyn Outside>>,
    ) -> Arc<Self> {
        Arc::new(Self {
            shared: Arc::new(Shared {
                store,
                provider,
                settings,
                registry: Registry::new(),
                outside,
                lanes: Mutex::new(HashMap::new()),
                in_flight: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// Hands every message still waiting in a lane back to the bus for immediate
    /// redelivery (to this process's successor), instead of after the ack timeout.
    /// Called once consuming has stopped, at shutdown.
    pub async fn release(&self) {
        let pending: Vec<Delivery> = match self.shared.in_flight.lock() {
            Ok(mut map) => map.drain().map(|(_, d)| d).collect(),
            Err(_) => return,
        };
        if let Ok(mut lanes) = self.shared.lanes.lock() {
            lanes.clear();
        }
        for d in &pending {
            d.nak(Duration::ZERO).await;
        }
        if !pending.is_empty() {
            tracing::info!(
                released = pending.len(),
                "handed unanswered messages back for redelivery"
            );
        }
    }

    /// Users with a lane right now (a gauge for operators).
    pub fn active_lanes(&self) -> usize {
        self.shared.lanes.lock().map(|l| l.len()).unwrap_or(0)
    }

    fn enqueue(&self, user: UserId, inbound: Inbound) {
        if let Ok(mut in_flight) = self.shared.in_flight.lock() {
            in_flight.insert(inbound.delivery.envelope.event_id, inbound.delivery.clone());
        }
        let Ok(mut lanes) = self.shared.lanes.lock() else {
            return;
        };
        let inbound = match lanes.get(&user) {
            Some(tx) => match tx.send(inbound) {
                Ok(()) => return,
                Err(mpsc::error::SendError(back)) => back,
            },
            None => inbound,
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send(inbound);
        lanes.insert(user, tx);
        metrics::gauge!("sidekick_assistant_lanes").set(lanes.len() as f64);
        tokio::spawn(lane(self.shared.clone(), user, rx));
    }
}

/// Whether a message is answered at once instead of waiting for the rest of a
/// burst. A crisis message never waits.
fn looks_complete(text: &str, onboarding: bool) -> bool {
    onboarding
        || intent::parse(text) != Intent::Unknown
        || is_whole_command(text)
        || text.trim_end().ends_with(['.', '!', '?'])
        || reads_as_finished(text)
        || safety::assess(text).crisis
}

/// Words a sentence that is still being typed tends to end on.
const DANGLING: &[&str] = &[
    "and", "or", "but", "so", "to", "the", "a", "an", "my", "of", "for", "with", "at", "in", "on",
    "because", "about", "if", "when", "then", "also", "like", "is", "i", "me",
];

/// A sentence of several words that does not end mid-thought ("ugh I have so much
/// to do and the garage is a disaster") is answered without the burst wait, so a
/// model-driven turn is not 2 s late; "remind me to" still waits for the rest.
fn reads_as_finished(text: &str) -> bool {
    let words: Vec<&str> = text.split_whitespace().collect();
    let Some(last) = words.last() else {
        return false;
    };
    let last = last
        .trim_end_matches(|c: char| !c.is_alphanumeric())
        .to_lowercase();
    words.len() >= 5
        && !text.trim_end().ends_with([',', ':', '-'])
        && !DANGLING.contains(&last.as_str())
}

/// A planning or memory command that needs nothing more ("todo buy milk", "done 2").
/// "remind me" alone is a fragment: the rest ("to call mom", "at 5") often follows.
fn is_whole_command(text: &str) -> bool {
    if services_command::parse(text).is_some()
        || services_command::query(text).is_some()
        || services_command::search(text).is_some()
        || services_command::wants_video_summary(text)
        || services_command::note_to_notion(text).is_some()
        || services_command::add_to_calendar(text, chrono::Utc::now(), chrono_tz::UTC).is_some()
    {
        return true;
    }
    match command::parse(text, chrono::Utc::now(), chrono_tz::UTC) {
        PlanningIntent::Unknown => false,
        PlanningIntent::Remind { text, when } => text.is_some() && when.is_some(),
        _ => true,
    }
}

async fn lane(shared: Arc<Shared>, user: UserId, mut rx: mpsc::UnboundedReceiver<Inbound>) {
    loop {
        let first = match tokio::time::timeout(shared.settings.idle, rx.recv()).await {
            Ok(Some(m)) => m,
            _ => {
                // Remove the lane under the lock, unless a message slipped in meanwhile.
                let Ok(mut lanes) = shared.lanes.lock() else {
                    return;
                };
                match rx.try_recv() {
                    Ok(m) => {
                        drop(lanes);
                        m
                    }
                    Err(_) => {
                        lanes.remove(&user);
                        metrics::gauge!("sidekick_assistant_lanes").set(lanes.len() as f64);
                        return;
                    }
                }
            }
        };
        let account = shared.store.account(user).await.ok();
        let onboarding = account
            .as_ref()
            .is_none_or(|a| a.onboarding() != Onboarding::Complete);
        let started = Instant::now();
        let mut batch = vec![first];
        let mut deadline = started + shared.settings.debounce;
        let cap = started + shared.settings.max_wait;
        let mut waited = false;
        while !batch
            .last()
            .is_some_and(|m| looks_complete(&m.said.text, onboarding))
        {
            waited = true;
            tokio::select! {
                next = rx.recv() => match next {
                    Some(m) => {
                        batch.push(m);
                        deadline = (Instant::now() + shared.settings.debounce).min(cap);
                    }
                    None => break,
                },
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        while let Ok(m) = rx.try_recv() {
            batch.push(m);
        }
        // The account just read is as fresh as a new read when the turn starts at
        // once; after waiting for fragments the turn reads it again.
        shared
            .run_turn(user, batch, account.filter(|_| !waited))
            .await;
    }
}

impl Shared {
    async fn run_turn(&self, user: UserId, batch: Vec<Inbound>, account: Option<Account>) {
        self.settle(user, &batch, account).await;
        if let Ok(mut in_flight) = self.in_flight.lock() {
            for m in &batch {
                in_flight.remove(&m.delivery.envelope.event_id);
            }
        }
    }

    /// Runs the turn and acks its messages, or naks them for a retry.
    async fn settle(&self, user: UserId, batch: &[Inbound], account: Option<Account>) {
        let started = std::time::Instant::now();
        let said: Vec<Said> = batch.iter().map(|m| m.said.clone()).collect();
        match self.turn(user, &said, account).await {
            Ok(()) => {
                for m in batch {
                    m.delivery.ack().await;
                }
                metrics::histogram!("sidekick_assistant_turn_seconds")
                    .record(started.elapsed().as_secs_f64());
            }
            Err(e) => {
                tracing::warn!(%user, error = %e, "turn failed; messages will be redelivered");
                for m in batch {
                    m.delivery.nak(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// Answers `batch`. `account`, when given, was read just before (the lane's).
    #[tracing::instrument(skip_all, fields(%user, correlation_id), err)]
    async fn turn(
        &self,
        user: UserId,
        batch: &[Said],
        account: Option<Account>,
    ) -> Result<(), StoreError> {
        let conversation = self.store.conversation(user).await?;
        let fresh: Vec<&Said> = batch
            .iter()
            .filter(|m| m.number > conversation.answered_through)
            .collect();
        let Some(last) = fresh.last() else {
            return Ok(());
        };
        let correlation = last.correlation_id.unwrap_or(last.message_id);
        tracing::Span::current().record("correlation_id", tracing::field::display(correlation));
        let meta = CommandMeta::caused_by(last.event_id, Some(correlation));
        let account = match account {
            Some(account) => account,
            None => self.store.account(user).await?,
        };
        if !account.is_registered() {
            tracing::warn!("message for an unregistered account; ignored");
            return Ok(());
        }
        let key = self.store.data_key(user).await?;
        let to = ReplyTo {
            message_id: last.message_id,
            number: last.number,
            channel: last.channel,
        };
        // Crisis language first: before an opt-out is read, before any engine.
        if let Some(flagged) = fresh.iter().find(|m| safety::assess(&m.text).crisis) {
            return self
                .answer_crisis(user, &account, &key, &fresh, flagged, to, meta)
                .await;
        }
        let turn = Turn {
            user,
            channel: last.channel,
            messages: fresh.iter().map(|m| m.text.clone()).collect(),
            name: account.name.as_ref().and_then(|n| key.open(n).ok()),
            timezone: account.timezone,
            onboarding: account.onboarding(),
            opted_out: account.opted_out,
        };
        let reply = match self.one_reminder(&turn, &account, &key, meta).await? {
            Some(cancelled) => cancelled,
            None => match offline::fixed_answer(&turn, self.settings.support_url.as_deref()) {
                Some(fixed) => fixed,
                None => match self.plan(&turn, &account, &key, meta).await? {
                    Some(planned) => planned,
                    None if self.provider.is_model() => {
                        let first_new = fresh.first().map_or(last.number, |m| m.number);
                        self.converse(&turn, &account, &key, meta, to, first_new)
                            .await?
                    }
                    None => checked(self.provider.name(), self.respond(&turn).await),
                },
            },
        };
        for action in &reply.actions {
            self.store
                .execute_account(user, action_command(action, &key), meta)
                .await?;
        }
        if let Some(text) = reply.text {
            // A model's reply may run longer when the user asked for detail; the
            // reply checks held it to that (crate::prompt::check_reply).
            let segments =
                if self.provider.is_model() && crate::prompt::asked_for_more(&turn.text()) {
                    MAX_SEGMENTS * 2
                } else {
                    MAX_SEGMENTS
                };
            queue_reply_within(
                &self.store,
                user,
                &key,
                to,
                &text,
                reply.kind,
                meta,
                segments,
            )
            .await?;
        }
        Ok(())
    }

    /// Answers a turn that carries a self-harm signal, without any engine: raises the
    /// safety flag (pausing nudges), records an opt-out said in the same burst, and
    /// queues the fixed crisis message for the person's number.
    ///
    /// Idempotent like every turn: the flag id derives from the flagged message (and
    /// the Account raises a message's flag once), the opt-out is recorded once, and
    /// the reply answering the turn is written last, so a turn cut short is redone.
    #[allow(clippy::too_many_arguments)]
    async fn answer_crisis(
        &self,
        user: UserId,
        account: &Account,
        key: &DataKey,
        fresh: &[&Said],
        flagged: &Said,
        to: ReplyTo,
        meta: CommandMeta,
    ) -> Result<(), StoreError> {
        let flag_id = Uuid::new_v5(&flagged.message_id, b"safety-flag");
        let first_time = !account.flagged_message(flagged.number);
        let raise = AccountCommand::RaiseSafetyFlag {
            flag_id,
            message_number: flagged.number,
            channel: flagged.channel,
            at: chrono::Utc::now(),
        };
        self.store.execute_account(user, raise, meta).await?;
        if first_time {
            metrics::counter!("sidekick_safety_flags_total", "channel" => flagged.channel.as_str())
                .increment(1);
            // The flag and where it is, never the words: they stay sealed in the log.
            tracing::warn!(
                %flag_id,
                message_number = flagged.number,
                channel = flagged.channel.as_str(),
                "safety flag raised: crisis resources sent, nudges paused for 24 hours; \
                 a person should follow up (sidekick flags list)"
            );
        }
        // "Leave me alone, I want to die": both are heard. The opt-out is recorded and
        // confirmed in the same fixed message, which may still go out after it.
        let opt_out = fresh.iter().find_map(|m| match intent::parse(&m.text) {
            Intent::Stop { keyword } => Some(keyword),
            _ => None,
        });
        let text = match opt_out {
            Some(keyword) => {
                let command = AccountCommand::OptOut {
                    keyword,
                    at: chrono::Utc::now(),
                };
                self.store.execute_account(user, command, meta).await?;
                copy::crisis_and_opted_out(account.phone.as_ref())
            }
            None => copy::crisis(account.phone.as_ref()).to_owned(),
        };
        queue_reply(
            &self.store,
            user,
            key,
            to,
            &text,
            OutboundKind::Crisis,
            meta,
        )
        .await
    }
}

/// The provider's reply, or a fixed one in its place if it fails the safety check.
/// Logged by the kind of violation, never by its text.
fn checked(provider: &'static str, mut reply: Reply) -> Reply {
    let Some(text) = &reply.text else {
        return reply;
    };
    if let Err(violation) = safety::check_reply(text) {
        tracing::warn!(
            provider,
            violation = violation.as_str(),
            "reply failed the safety check; a fixed message is sent instead"
        );
        metrics::counter!(
            "sidekick_safety_replies_replaced_total",
            "provider" => provider,
            "violation" => violation.as_str()
        )
        .increment(1);
        reply.text = Some(match violation {
            Violation::MedicalAdvice | Violation::Diagnosis => copy::ask_prescriber(),
            Violation::ClaimsToBeHuman => copy::not_a_person(),
            Violation::HarmfulContent => copy::not_understood(),
        });
        reply.kind = OutboundKind::Reply;
    }
    reply
}

impl Shared {
    fn desk<'a>(
        &'a self,
        turn: &Turn,
        account: &'a Account,
        key: &'a DataKey,
        meta: CommandMeta,
    ) -> Desk<'a> {
        Desk {
            store: &self.store,
            user: turn.user,
            key,
            account,
            now: chrono::Utc::now(),
            meta,
            busy: Vec::new(),
        }
    }

    /// Planning and memory commands the offline parser is sure of ("todo …", "done 2",
    /// "remind me …", "what's my locker code?") are carried out directly, for every
    /// provider: they are the core that must work with no model at all.
    async fn plan(
        &self,
        turn: &Turn,
        account: &Account,
        key: &DataKey,
        meta: CommandMeta,
    ) -> Result<Option<Reply>, StoreError> {
        if turn.onboarding != Onboarding::Complete || turn.opted_out {
            return Ok(None);
        }
        if let Some(request) = services_command::parse(&turn.text()) {
            return self.connect_link(turn.user, &request).await.map(Some);
        }
        if let Some(reply) = self.ask_service(turn, account, meta).await? {
            return Ok(Some(reply));
        }
        let mut desk = self.desk(turn, account, key, meta);
        let text = turn.text();
        if let (true, Some(videos)) = (
            services_command::wants_video_summary(&text),
            self.settings.videos.as_ref(),
        ) {
            if let Some(summary) = videos.summarise(&desk, &text).await? {
                return Ok(Some(Reply {
                    text: Some(summary),
                    kind: OutboundKind::Reply,
                    actions: vec![],
                }));
            }
        }
        let intent = command::parse(&text, desk.now, account.timezone.tz());
        if intent == PlanningIntent::Unknown {
            return Ok(None);
        }
        if let (PlanningIntent::PlanDay | PlanningIntent::Replan, Some(microsoft)) =
            (&intent, self.settings.microsoft.as_ref())
        {
            desk.busy = microsoft
                .busy_today(&self.store, turn.user, account.timezone, desk.now)
                .await?;
        }
        Ok(desk.answer(intent).await?.map(|text| Reply {
            text: Some(text),
            kind: OutboundKind::Reply,
            actions: vec![],
        }))
    }

    /// "connect calendar": a short link, valid ten minutes and bound to this user,
    /// that starts the OAuth flow (`GET /c/{code}` in the web crate).
    async fn connect_link(
        &self,
        user: UserId,
        request: &ConnectRequest,
    ) -> Result<Reply, StoreError> {
        let reply = |text: String| Reply {
            text: Some(text),
            kind: OutboundKind::Reply,
            actions: vec![],
        };
        let configured = request
            .service
            .parse()
            .ok()
            .and_then(|p| self.settings.oauth.get(p));
        let (Some(_), Some(public_url)) = (configured, self.settings.public_url.as_deref()) else {
            return Ok(reply(copy::connect_unavailable(request)));
        };
        let features: Vec<String> = request.features.iter().map(|f| f.to_string()).collect();
        let code = vault::create_link(self.store.pool(), user, request.service, &features).await?;
        let link = format!("{}/c/{code}", public_url.trim_end_matches('/'));
        Ok(reply(copy::connect_link(request, &link)))
    }

    /// "today's meetings" and other questions a connected service answers.
    async fn ask_service(
        &self,
        turn: &Turn,
        account: &Account,
        meta: CommandMeta,
    ) -> Result<Option<Reply>, StoreError> {
        let text = turn.text();
        let now = chrono::Utc::now();
        if let (Some(entry), Some(microsoft)) = (
            services_command::add_to_calendar(&text, now, account.timezone.tz()),
            self.settings.microsoft.as_ref(),
        ) {
            // Derived from the message, so a redelivered turn books the event once.
            let source = meta.causation_id.unwrap_or(meta.correlation_id);
            let transaction = Uuid::new_v5(&source, b"calendar-event");
            let text = microsoft
                .add_event(
                    &self.store,
                    turn.user,
                    account.timezone,
                    &entry,
                    now,
                    transaction,
                )
                .await?;
            return Ok(Some(Reply {
                text: Some(text),
                kind: OutboundKind::Reply,
                actions: vec![],
            }));
        }
        if let (Some(words), Some(client)) = (
            services_command::search(&text),
            self.settings.search.as_ref(),
        ) {
            // "look up the door code" was always a memory question: when a
            // memory matches, the planner's recall answers it, not the web.
            let look_up = text.trim_start().to_lowercase().starts_with("look");
            if look_up
                && !sidekick_store::memory::search(self.store.pool(), turn.user, &words, 1)
                    .await?
                    .is_empty()
            {
                return Ok(None);
            }
            return Ok(Some(Reply {
                text: Some(crate::search::answer(client, &words).await),
                kind: OutboundKind::Reply,
                actions: vec![],
            }));
        }
        if let (Some(note), Some(notes)) = (
            services_command::note_to_notion(&text),
            self.settings.notes.as_ref(),
        ) {
            return Ok(Some(Reply {
                text: Some(notes.note(&self.store, turn.user, &note).await?),
                kind: OutboundKind::Reply,
                actions: vec![],
            }));
        }
        let (Some(query), Some(microsoft)) = (
            services_command::query(&text),
            self.settings.microsoft.as_ref(),
        ) else {
            return Ok(None);
        };
        let text = match query {
            ServiceQuery::EmailTriage => {
                let (text, proposals) = microsoft.email_triage(&self.store, turn.user).await?;
                if proposals.is_empty() {
                    text
                } else {
                    // One YES makes them tasks (the Conversation keeps the question).
                    let key = self.store.data_key(turn.user).await?;
                    let desk = self.desk(turn, account, &key, meta);
                    let titles = proposals.iter().map(|t| key.seal(t)).collect();
                    desk.ask(sidekick_domain::conversation::Question::AddTasks { titles })
                        .await?;
                    let them = if proposals.len() == 1 { "it" } else { "them" };
                    format!("{text} Want {them} as tasks? Reply YES.")
                }
            }
            ServiceQuery::TodaysMeetings => {
                microsoft
                    .todays_meetings(&self.store, turn.user, account.timezone, chrono::Utc::now())
                    .await?
            }
        };
        Ok(Some(Reply {
            text: Some(text),
            kind: OutboundKind::Reply,
            actions: vec![],
        }))
    }

    /// "Stop reminding me about laundry" is about one reminder: cancel it when it
    /// names one; otherwise the fixed answer asks which was meant.
    async fn one_reminder(
        &self,
        turn: &Turn,
        account: &Account,
        key: &DataKey,
        meta: CommandMeta,
    ) -> Result<Option<Reply>, StoreError> {
        let text = turn.text();
        if turn.opted_out || intent::parse(&text) != Intent::StopOneThing {
            return Ok(None);
        }
        let desk = self.desk(turn, account, key, meta);
        let PlanningIntent::CancelReminder { target } =
            command::parse(&text, desk.now, account.timezone.tz())
        else {
            return Ok(None);
        };
        Ok(desk.cancel_matching(target).await?.map(|text| Reply {
            text: Some(text),
            kind: OutboundKind::Reply,
            actions: vec![],
        }))
    }

    async fn respond(&self, turn: &Turn) -> Reply {
        let provider = self.provider.name();
        match tokio::time::timeout(self.settings.model_timeout, self.provider.respond(turn)).await {
            Ok(Ok(reply)) => {
                metrics::counter!("sidekick_assistant_turns_total", "provider" => provider)
                    .increment(1);
                reply
            }
            Ok(Err(e)) => {
                tracing::warn!(provider, error = %e, "provider failed; offline engine answers");
                metrics::counter!("sidekick_assistant_fallbacks_total", "provider" => provider)
                    .increment(1);
                OfflineEngine.reply(turn)
            }
            Err(_) => {
                tracing::warn!(provider, "provider timed out; offline engine answers");
                metrics::counter!("sidekick_assistant_fallbacks_total", "provider" => provider)
                    .increment(1);
                OfflineEngine.reply(turn)
            }
        }
    }
}

fn action_command(action: &Action, key: &DataKey) -> AccountCommand {
    let at = chrono::Utc::now();
    match action {
        Action::OptOut { keyword } => AccountCommand::OptOut {
            keyword: keyword.clone(),
            at,
        },
        Action::OptIn => AccountCommand::OptIn { at },
        Action::SetName(name) => AccountCommand::SetName {
            name: key.seal(name),
        },
        Action::SetTimezone(timezone) => AccountCommand::SetTimezone {
            timezone: *timezone,
        },
    }
}

/// What a reply answers.
#[derive(Debug, Clone, Copy)]
pub struct ReplyTo {
    pub message_id: Uuid,
    pub number: u64,
    pub channel: Channel,
}

/// Queues a reply, trimmed to two segments; the crisis message is never trimmed. Its
/// id is derived from the message it answers, so a repeated turn queues the same
/// reply (and the aggregate drops it).
pub async fn queue_reply(
    store: &Store,
    user: UserId,
    key: &DataKey,
    to: ReplyTo,
    text: &str,
    kind: OutboundKind,
    meta: CommandMeta,
) -> Result<(), StoreError> {
    queue_reply_within(store, user, key, to, text, kind, meta, MAX_SEGMENTS).await
}

/// [`queue_reply`] with another segment limit (a reply the user asked to be long).
#[allow(clippy::too_many_arguments)]
pub async fn queue_reply_within(
    store: &Store,
    user: UserId,
    key: &DataKey,
    to: ReplyTo,
    text: &str,
    kind: OutboundKind,
    meta: CommandMeta,
    max_segments: usize,
) -> Result<(), StoreError> {
    let text = match kind {
        // A crisis message cut off mid-number would be worse than a longer one; its
        // length is held to CRISIS_MAX_SEGMENTS by the copy's tests.
        OutboundKind::Crisis => text.to_owned(),
        _ => sms::fit(text, max_segments),
    };
    let command = ConversationCommand::QueueReply {
        reply_id: Uuid::new_v5(&to.message_id, b"reply"),
        answers_through: Some(to.number),
        channel: to.channel,
        segments: sms::segments(&text) as u32,
        body: key.seal(&text),
        kind,
        queued_at: chrono::Utc::now(),
    };
    store.execute_conversation(user, command, meta).await
}

#[async_trait]
impl Handler for AssistantWorker {
    async fn handle(&self, d: &Delivery) -> Outcome {
        let e = &d.envelope;
        let decoded = match e.decode() {
            Ok(decoded) => decoded,
            Err(err) => return Outcome::Retry(err.to_string()),
        };
        match decoded {
            DomainEventKind::Conversation(ConversationEvent::MessageReceived {
                message_id,
                number,
                channel,
                body,
                ..
            }) => {
                let text = match self
                    .shared
                    .store
                    .data_key(e.user_id)
                    .await
                    .and_then(|k| Ok(k.open(&body)?))
                {
                    Ok(text) => text,
                    // The key is gone (account deleted): nothing to answer.
                    Err(StoreError::NoKey(_)) | Err(StoreError::Sealed(_)) => return Outcome::Ack,
                    Err(err) => return Outcome::Retry(err.to_string()),
                };
                self.enqueue(
                    e.user_id,
                    Inbound {
                        delivery: d.clone(),
                        said: Said {
                            message_id,
                            number,
                            channel,
                            text,
                            event_id: e.event_id,
                            correlation_id: e.correlation_id,
                        },
                    },
                );
                Outcome::Handed
            }
            DomainEventKind::Account(AccountEvent::AccountRegistered {
                via: SignupChannel::Operator,
                ..
            }) => {
                // An operator added this number: the first text confirms the opt-in.
                match self.welcome(e.user_id, e.event_id, e.correlation_id).await {
                    Ok(()) => Outcome::Ack,
                    Err(err) => Outcome::Retry(err.to_string()),
                }
            }
            _ => Outcome::Ack,
        }
    }
}

impl AssistantWorker {
    async fn welcome(
        &self,
        user: UserId,
        event_id: Uuid,
        correlation: Option<Uuid>,
    ) -> Result<(), StoreError> {
        let store = &self.shared.store;
        let key = store.data_key(user).await?;
        let account = store.account(user).await?;
        let name = account.name.as_ref().and_then(|n| key.open(n).ok());
        let text = copy::consent(name.as_deref(), account.onboarding());
        let command = ConversationCommand::QueueReply {
            reply_id: Uuid::new_v5(&event_id, b"welcome"),
            answers_through: None,
            channel: Channel::Sms,
            segments: sms::segments(&text) as u32,
            body: key.seal(&text),
            kind: OutboundKind::System,
            queued_at: chrono::Utc::now(),
        };
        store
            .execute_conversation(user, command, CommandMeta::caused_by(event_id, correlation))
            .await
    }
}

#[cfg(test)]
mod model_tests;

#[cfg(test)]
mod tests {
    //! Turns run directly against a real event store (no bus): what the safety
    //! screens decide, and that no provider sees what it must not.

    use std::sync::atomic::{AtomicUsize, Ordering};

    use sidekick_domain::{MasterKey, PhoneNumber, Timezone};
    use sidekick_store::events;
    use sidekick_store::testing::TestDb;

    use super::*;
    use crate::engine::ModelError;

    /// A provider that counts its calls and always says the same thing.
    struct Scripted {
        calls: AtomicUsize,
        answer: &'static str,
    }

    #[async_trait]
    impl ModelProvider for Scripted {
        fn name(&self) -> &'static str {
            "scripted"
        }

        async fn respond(&self, _: &Turn) -> Result<Reply, ModelError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Ok(Reply {
                text: Some(self.answer.to_string()),
                kind: OutboundKind::Reply,
                actions: vec![],
            })
        }
    }

    struct Harness {
        db: TestDb,
        shared: Shared,
        provider: Arc<Scripted>,
        user: UserId,
    }

    async fn harness(phone: &str, answer: &'static str) -> Harness {
        let db = TestDb::new().await;
        let store = Store::new(db.pool.clone(), MasterKey::generate());
        let (user, _) = store
            .register(
                &PhoneNumber::parse(phone).unwrap(),
                Some("Sam"),
                Some(Timezone::parse("Europe/London").unwrap()),
                SignupChannel::Operator,
                CommandMeta::new(),
            )
            .await
            .unwrap();
        let provider = Arc::new(Scripted {
            calls: AtomicUsize::new(0),
            answer,
        });
        let settings = TurnSettings {
            support_url: Some("https://sidekick.example.org".into()),
            ..TurnSettings::default()
        };
        let shared = Shared {
            store,
            provider: provider.clone(),
            settings,
            registry: Registry::new(),
            outside: None,
            lanes: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashMap::new()),
        };
        Harness {
            db,
            shared,
            provider,
            user,
        }
    }

    impl Harness {
        /// Records `texts` as the webhook would, then runs one turn over them.
        async fn turn(&self, texts: &[&str]) -> Vec<Said> {
            let store = &self.shared.store;
            let key = store.data_key(self.user).await.unwrap();
            let mut said = Vec::new();
            for text in texts {
                let message_id = Uuid::now_v7();
                let command = ConversationCommand::ReceiveMessage {
                    message_id,
                    channel: Channel::Sms,
                    provider_sid: None,
                    body: key.seal(text),
                    received_at: chrono::Utc::now(),
                };
                store
                    .execute_conversation(self.user, command, CommandMeta::new())
                    .await
                    .unwrap();
                said.push(Said {
                    message_id,
                    number: store.conversation(self.user).await.unwrap().received,
                    channel: Channel::Sms,
                    text: text.to_string(),
                    event_id: Uuid::now_v7(),
                    correlation_id: None,
                });
            }
            self.shared.turn(self.user, &said, None).await.unwrap();
            said
        }

        /// Every reply queued so far, opened.
        async fn queued(&self) -> Vec<(OutboundKind, String)> {
            let key = self.shared.store.data_key(self.user).await.unwrap();
            events::for_user(&self.db.pool, self.user, None)
                .await
                .unwrap()
                .into_iter()
                .filter_map(|e| match e.decode().unwrap() {
                    DomainEventKind::Conversation(ConversationEvent::ReplyQueued {
                        kind,
                        body,
                        ..
                    }) => Some((kind, key.open(&body).unwrap())),
                    _ => None,
                })
                .collect()
        }

        async fn account(&self) -> Account {
            self.shared.store.account(self.user).await.unwrap()
        }

        fn provider_calls(&self) -> usize {
            self.provider.calls.load(Ordering::SeqCst)
        }
    }

    #[tokio::test]
    async fn a_crisis_message_gets_fixed_resources_a_flag_and_no_engine() {
        let h = harness("+15551230001", "How about a walk?").await;
        let said = h.turn(&["i dont want to be here anymore"]).await;
        assert_eq!(h.provider_calls(), 0, "a provider saw a crisis message");
        let phone = PhoneNumber::parse("+15551230001").unwrap();
        assert_eq!(
            h.queued().await,
            vec![(OutboundKind::Crisis, copy::crisis(Some(&phone)).to_string())]
        );
        let account = h.account().await;
        assert_eq!(account.open_safety_flags.len(), 1);
        assert!(account.nudges_paused_at(chrono::Utc::now()));
        let flag = account.open_safety_flags.values().next().unwrap();
        assert_eq!(flag.message_number, said[0].number);

        // Redelivered: nothing new.
        h.shared.turn(h.user, &said, None).await.unwrap();
        assert_eq!(h.queued().await.len(), 1);
        assert_eq!(h.account().await.open_safety_flags.len(), 1);
        h.db.cleanup().await;
    }

    #[tokio::test]
    async fn a_crisis_anywhere_in_a_burst_wins_and_the_lines_follow_the_country() {
        let h = harness("+447700900123", "Sure!").await;
        h.turn(&["ugh", "honestly kms", "anyway what's next"]).await;
        let queued = h.queued().await;
        assert_eq!(queued.len(), 1);
        assert_eq!(queued[0].0, OutboundKind::Crisis);
        assert!(queued[0].1.contains("116 123"), "{}", queued[0].1);
        assert_eq!(h.provider_calls(), 0);
        h.db.cleanup().await;
    }

    #[tokio::test]
    async fn an_opt_out_said_with_a_crisis_is_honoured_too() {
        let h = harness("+15551230002", "Sure!").await;
        h.turn(&["leave me alone", "i want to die"]).await;
        let account = h.account().await;
        assert!(account.opted_out);
        assert_eq!(account.open_safety_flags.len(), 1);
        let queued = h.queued().await;
        assert_eq!(queued.len(), 1);
        assert_eq!(queued[0].0, OutboundKind::Crisis);
        assert!(queued[0].1.contains("988") && queued[0].1.contains("START"));
        h.db.cleanup().await;
    }

    #[tokio::test]
    async fn fixed_answers_come_before_any_provider() {
        let h = harness("+15551230003", "Whatever the model says").await;
        h.turn(&["HELP"]).await;
        h.turn(&["are you a human?"]).await;
        h.turn(&["stop reminding me about laundry"]).await;
        h.turn(&["can i take 2 adderall"]).await;
        h.turn(&["please stop texting me"]).await;
        h.turn(&["hello?"]).await;
        assert_eq!(
            h.provider_calls(),
            0,
            "a provider answered a fixed question"
        );
        let queued = h.queued().await;
        let texts: Vec<&str> = queued.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(
            texts,
            vec![
                copy::help(Some("https://sidekick.example.org")).as_str(),
                copy::not_a_person().as_str(),
                copy::which_stop().as_str(),
                copy::ask_prescriber().as_str(),
                copy::opted_out().as_str(),
            ],
            "the opted-out number must hear nothing after the confirmation"
        );
        assert_eq!(queued[4].0, OutboundKind::OptOutConfirmation);
        assert!(h.account().await.opted_out);
        h.db.cleanup().await;
    }

    #[tokio::test]
    async fn a_reply_giving_dosing_advice_is_replaced_before_it_is_queued() {
        let h = harness("+15551230004", "You can take another 10mg if it wears off.").await;
        h.turn(&["it's wearing off already"]).await;
        assert_eq!(h.provider_calls(), 1);
        assert_eq!(
            h.queued().await,
            vec![(OutboundKind::Reply, copy::ask_prescriber())]
        );
        h.db.cleanup().await;
    }

    #[test]
    fn whole_commands_are_answered_without_waiting_for_more() {
        assert!(looks_complete("todo buy milk", false));
        assert!(looks_complete("done 2", false));
        assert!(looks_complete("remind me tomorrow at 9 to call mom", false));
        assert!(!looks_complete("remind me", false));
        assert!(!looks_complete("to call mom", false));
    }

    #[test]
    fn a_finished_sentence_without_a_full_stop_is_not_held_back() {
        assert!(looks_complete(
            "ugh I have so much to do and the garage is a disaster",
            false
        ));
        assert!(looks_complete("can you help me sort out my week", false));
        assert!(!looks_complete("ugh I have so much to do and", false));
        assert!(!looks_complete(
            "honestly the whole garage thing is because",
            false
        ));
        assert!(!looks_complete("so the thing is,", false));
        assert!(!looks_complete("so yeah the", false));
    }

    #[test]
    fn every_violation_has_a_fixed_replacement() {
        let reply = |text: &str| Reply {
            text: Some(text.to_string()),
            kind: OutboundKind::Reply,
            actions: vec![],
        };
        for (said, fixed) in [
            ("Sounds like ADHD to me.", copy::ask_prescriber()),
            ("I'm a real person, promise.", copy::not_a_person()),
            ("Just kill yourself", copy::not_understood()),
            (
                "Nice, 3 things done today!",
                "Nice, 3 things done today!".to_string(),
            ),
        ] {
            assert_eq!(checked("test", reply(said)).text, Some(fixed), "{said}");
        }
        let silent = Reply {
            text: None,
            kind: OutboundKind::Reply,
            actions: vec![],
        };
        assert_eq!(checked("test", silent.clone()), silent);
    }

    #[test]
    fn crisis_messages_are_answered_at_once() {
        assert!(looks_complete("i want to die", false));
        assert!(!looks_complete("remind me to", false));
    }
}
