//! The load: simulated people texting the shared number through the signed webhook,
//! exactly as Twilio would deliver their messages, and the replies they get back at
//! the fake Twilio.
//!
//! Each simulated user has at most one message in flight: they text, wait for the
//! answer (or give up after the reply timeout), think, and text again. That is how
//! people use an SMS assistant, and it makes every reply attributable to exactly
//! one message by its recipient number without reading its text.
//!
//! With a target rate, think times are exponential with mean `users / rate`, so
//! the aggregate is a Poisson stream at that rate (bursty, like real traffic);
//! a user whose reply comes late simply texts later, so the achieved rate is
//! reported next to the target. With rate 0 (open loop) every user texts again as
//! soon as it has its answer: the system's own speed sets the rate.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use sidekick_domain::MessageSid;
use sidekick_integrations::twilio::{signature, FakeMessage, FakeTwilio};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::server::SHARED_NUMBER;

/// What a simulated person texts. Everything but [`MessageKind::Fragment`] is a
/// complete message by the assistant's rule (a recognised intent, or ending in `.`,
/// `?` or `!`), so it is answered at once; a fragment waits ~2 s for the rest of a
/// burst by design, so its latency is reported on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    AddTask,
    List,
    Done,
    Remind,
    Remember,
    Recall,
    Help,
    Greeting,
    Fragment,
}

/// The mix, in percent: mostly capture and recall, a little help and chit-chat,
/// and a few half-sent thoughts.
const MIX: &[(MessageKind, u32)] = &[
    (MessageKind::AddTask, 22),
    (MessageKind::List, 14),
    (MessageKind::Done, 14),
    (MessageKind::Remind, 14),
    (MessageKind::Remember, 10),
    (MessageKind::Recall, 10),
    (MessageKind::Help, 5),
    (MessageKind::Greeting, 6),
    (MessageKind::Fragment, 5),
];

impl MessageKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::AddTask => "add_task",
            Self::List => "list",
            Self::Done => "done",
            Self::Remind => "remind",
            Self::Remember => "remember",
            Self::Recall => "recall",
            Self::Help => "help",
            Self::Greeting => "greeting",
            Self::Fragment => "fragment",
        }
    }

    pub fn is_debounced(self) -> bool {
        self == Self::Fragment
    }

    /// Whether a model (when one is configured) writes the reply: planning and
    /// memory commands and HELP are answered without one, whatever the provider.
    pub fn answered_by_model(self) -> bool {
        matches!(self, Self::Greeting | Self::Fragment)
    }

    pub fn texts(self) -> &'static [&'static str] {
        match self {
            Self::AddTask => &[
                "Add task: buy milk.",
                "Add: email the landlord about the sink.",
                "Todo: book the dentist appointment.",
                "I need to renew my passport this month.",
            ],
            Self::List => &["What's on my list?", "What do I have to do today?"],
            Self::Done => &["Done with the laundry!", "Finished the dishes."],
            Self::Remind => &[
                "Remind me to call mom at 5pm.",
                "Remind me to take my meds at 9.",
                "Remind me tomorrow at 8 to pay rent.",
            ],
            Self::Remember => &[
                "Remember that my locker code is 4512.",
                "Remember: Sam's birthday is June 3.",
            ],
            Self::Recall => &["What's my locker code?", "When is Sam's birthday?"],
            Self::Help => &["HELP", "help"],
            Self::Greeting => &["hi", "hello"],
            Self::Fragment => &["remind me to", "so about tomorrow", "call the"],
        }
    }

    pub fn pick(rng: &mut impl Rng) -> Self {
        let total: u32 = MIX.iter().map(|(_, w)| w).sum();
        let mut roll = rng.gen_range(0..total);
        for &(kind, weight) in MIX {
            if roll < weight {
                return kind;
            }
            roll -= weight;
        }
        MessageKind::AddTask
    }

    #[cfg(test)]
    pub fn all() -> impl Iterator<Item = MessageKind> {
        MIX.iter().map(|(k, _)| *k)
    }
}

/// The `i`-th simulated user's number: 555-0100…0199 in area codes 201…, numbers
/// reserved for fiction, so a misdirected text can reach nobody.
pub fn phone_for(i: usize) -> String {
    format!("+1{}5550{}", 201 + i / 100, 100 + i % 100)
}

/// Where and how to send the webhooks.
#[derive(Debug, Clone)]
pub struct Target {
    pub webhook_url: String,
    pub auth_token: String,
    pub account_sid: String,
}

/// Hands each reply the fake Twilio accepts to the user waiting for it.
///
/// One scan of the fake's message list per accepted message, in order, with a
/// cursor (the last accepted instant seen), so the cost stays at a comparison per
/// stored message no matter how many users wait.
#[derive(Default)]
pub struct ReplyRouter {
    state: Mutex<RouterState>,
}

#[derive(Default)]
struct RouterState {
    last: Option<Instant>,
    /// SIDs accepted at exactly `last` (instants can tie).
    ties: Vec<String>,
    waiters: HashMap<String, oneshot::Sender<Instant>>,
    /// Messages nobody waited for: consent texts, or replies after a user gave up.
    unmatched: u64,
}

impl ReplyRouter {
    /// Registers interest in the next text to `to`; call before sending.
    pub fn expect_reply(&self, to: &str) -> oneshot::Receiver<Instant> {
        let (tx, rx) = oneshot::channel();
        if let Ok(mut st) = self.state.lock() {
            st.waiters.insert(to.to_string(), tx);
        }
        rx
    }

    pub fn forget(&self, to: &str) {
        if let Ok(mut st) = self.state.lock() {
            st.waiters.remove(to);
        }
    }

    pub fn unmatched(&self) -> u64 {
        self.state.lock().map(|s| s.unmatched).unwrap_or(0)
    }

    fn offer(&self, m: &FakeMessage) {
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        match st.last {
            Some(last) if m.received_at < last => return,
            Some(last) if m.received_at == last && st.ties.contains(&m.sid) => return,
            Some(last) if m.received_at == last => {}
            _ => {
                st.ties.clear();
                st.last = Some(m.received_at);
            }
        }
        st.ties.push(m.sid.clone());
        match st.waiters.remove(&m.to) {
            Some(tx) => {
                let _ = tx.send(m.received_at);
            }
            None => st.unmatched += 1,
        }
    }

    /// Follows `twilio` until `stop` is cancelled.
    pub fn spawn(
        self: &Arc<Self>,
        twilio: Arc<FakeTwilio>,
        stop: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let router = self.clone();
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                // The predicate never matches: it only feeds the router, in order,
                // and `wait_for` sleeps until the fake accepts something new.
                let scan = twilio.wait_for(
                    |m| {
                        router.offer(m);
                        false
                    },
                    Duration::from_millis(200),
                );
                tokio::select! {
                    _ = scan => {}
                    _ = stop.cancelled() => {}
                }
            }
        })
    }

    /// Waits until `n` texts nobody waited for have arrived (the consent texts of
    /// newly added users), or `timeout` passes. Returns how many did.
    pub async fn wait_unmatched(&self, n: u64, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.unmatched();
            if got >= n || Instant::now() >= deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// How much load, for how long.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    pub phones: Vec<String>,
    /// Aggregate messages per second; 0 for open loop.
    pub rate: f64,
    /// No new message starts after this.
    pub window: Duration,
    pub max_messages: Option<u64>,
    pub reply_timeout: Duration,
    pub seed: u64,
}

/// One message's fate.
#[derive(Debug, Clone)]
pub struct Sample {
    pub kind: MessageKind,
    /// When it was sent, from the start of the load.
    pub sent_at: Duration,
    /// Webhook round trip, or the error kind.
    pub ack: Result<Duration, String>,
    /// Sent → reply accepted at the fake Twilio; `Some(Err)` when none came in time;
    /// `None` when replies were not awaited (no sink, or the webhook failed).
    pub reply: Option<Result<Duration, ()>>,
}

pub struct LoadOutcome {
    pub samples: Vec<Sample>,
    pub started_utc: chrono::DateTime<chrono::Utc>,
    /// From the start to the last acknowledgement or reply.
    pub elapsed: Duration,
    /// Sends that started over 100 ms after their scheduled time (the load
    /// generator itself falling behind, not the server).
    pub schedule_slips: u64,
    /// Users who stopped after a failed webhook or a reply that never came.
    pub users_retired: u64,
}

/// Live counters for the progress bar and the sampler.
#[derive(Default)]
pub struct Progress {
    pub sent: AtomicU64,
    pub acked: AtomicU64,
    pub replied: AtomicU64,
    pub errors: AtomicU64,
    /// Recent latencies (ms) since the sampler last looked: (ack, reply).
    pub recent: Mutex<(Vec<f64>, Vec<f64>)>,
}

struct Ctx {
    client: reqwest::Client,
    target: Target,
    router: Option<Arc<ReplyRouter>>,
    plan: LoadPlan,
    started: Instant,
    budget: Option<AtomicU64>,
    slips: AtomicU64,
    retired: AtomicU64,
    last_event: Mutex<Instant>,
    progress: Arc<Progress>,
    bar: Option<ProgressBar>,
    stop: CancellationToken,
}

/// An HTTP client tuned for many concurrent simulated senders on loopback.
pub fn http_client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(60))
        .tcp_nodelay(true)
        .build()?)
}

/// Runs the plan; every user finishes its message in flight before this returns.
pub async fn run(
    plan: LoadPlan,
    target: Target,
    router: Option<Arc<ReplyRouter>>,
    progress: Arc<Progress>,
    bar: Option<ProgressBar>,
    stop: CancellationToken,
) -> anyhow::Result<LoadOutcome> {
    let started = Instant::now();
    let started_utc = chrono::Utc::now();
    let ctx = Arc::new(Ctx {
        client: http_client()?,
        target,
        router,
        budget: plan.max_messages.map(AtomicU64::new),
        plan,
        started,
        slips: AtomicU64::new(0),
        retired: AtomicU64::new(0),
        last_event: Mutex::new(started),
        progress,
        bar,
        stop,
    });
    let mut tasks = tokio::task::JoinSet::new();
    for (i, phone) in ctx.plan.phones.iter().enumerate() {
        tasks.spawn(simulate_user(ctx.clone(), i, phone.clone()));
    }
    let mut samples = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        samples.extend(joined?);
    }
    let last = ctx.last_event.lock().map(|l| *l).unwrap_or(started);
    Ok(LoadOutcome {
        samples,
        started_utc,
        elapsed: last.duration_since(started),
        schedule_slips: ctx.slips.load(Ordering::Relaxed),
        users_retired: ctx.retired.load(Ordering::Relaxed),
    })
}

fn exponential(rng: &mut impl Rng, mean: Duration) -> Duration {
    let u: f64 = rng.gen_range(f64::EPSILON..1.0);
    mean.mul_f64(-u.ln())
}

impl Ctx {
    fn take_budget(&self) -> bool {
        match &self.budget {
            None => true,
            Some(b) => b
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok(),
        }
    }

    fn touch(&self, at: Instant) {
        if let Ok(mut last) = self.last_event.lock() {
            *last = (*last).max(at);
        }
    }

    fn record_recent(&self, ack: Option<f64>, reply: Option<f64>) {
        if let Ok(mut r) = self.progress.recent.lock() {
            r.0.extend(ack);
            r.1.extend(reply);
        }
    }
}

async fn simulate_user(ctx: Arc<Ctx>, index: usize, phone: String) -> Vec<Sample> {
    let mut rng = StdRng::seed_from_u64(ctx.plan.seed ^ (index as u64).wrapping_mul(0x9E37_79B9));
    let deadline = ctx.started + ctx.plan.window;
    let mean_think = (ctx.plan.rate > 0.0)
        .then(|| Duration::from_secs_f64(ctx.plan.phones.len() as f64 / ctx.plan.rate));
    // Paced: the first text, like every later one, comes after an exponential
    // think time, so the aggregate is Poisson at the target rate from the first
    // second (a uniform first wave followed by exponential gaps would overshoot it
    // for the first think time). Open loop: spread the first wave over 1 s.
    let mut next = match mean_think {
        Some(mean) => ctx.started + exponential(&mut rng, mean),
        None => ctx.started + Duration::from_micros((index as u64).wrapping_mul(7919) % 1_000_000),
    };
    let mut samples = Vec::new();
    loop {
        if next >= deadline {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(next.into()) => {}
            _ = ctx.stop.cancelled() => break,
        }
        let now = Instant::now();
        if now >= deadline || !ctx.take_budget() {
            break;
        }
        if mean_think.is_some() && now.duration_since(next) > Duration::from_millis(100) {
            ctx.slips.fetch_add(1, Ordering::Relaxed);
        }
        let kind = MessageKind::pick(&mut rng);
        let texts = kind.texts();
        let body = texts[rng.gen_range(0..texts.len())];
        let waiter = ctx.router.as_ref().map(|r| r.expect_reply(&phone));
        let sent = Instant::now();
        ctx.progress.sent.fetch_add(1, Ordering::Relaxed);
        let ack = post_webhook(&ctx.client, &ctx.target, &phone, body).await;
        let acked_at = Instant::now();
        ctx.touch(acked_at);
        let mut sample = Sample {
            kind,
            sent_at: sent.duration_since(ctx.started),
            ack: ack.clone(),
            reply: None,
        };
        match &ack {
            Ok(d) => {
                ctx.progress.acked.fetch_add(1, Ordering::Relaxed);
                ctx.record_recent(Some(d.as_secs_f64() * 1e3), None);
            }
            Err(_) => {
                // Whether it was recorded is unknown: a reply may still come, and
                // would be taken for the next message's. This user stops here.
                ctx.progress.errors.fetch_add(1, Ordering::Relaxed);
                if let Some(r) = &ctx.router {
                    r.forget(&phone);
                }
                ctx.retired.fetch_add(1, Ordering::Relaxed);
                samples.push(sample);
                break;
            }
        }
        if let Some(waiter) = waiter {
            match tokio::time::timeout(ctx.plan.reply_timeout, waiter).await {
                Ok(Ok(at)) => {
                    let latency = at.saturating_duration_since(sent);
                    ctx.touch(at);
                    ctx.progress.replied.fetch_add(1, Ordering::Relaxed);
                    if !kind.is_debounced() {
                        ctx.record_recent(None, Some(latency.as_secs_f64() * 1e3));
                    }
                    sample.reply = Some(Ok(latency));
                }
                _ => {
                    if let Some(r) = &ctx.router {
                        r.forget(&phone);
                    }
                    ctx.progress.errors.fetch_add(1, Ordering::Relaxed);
                    ctx.retired.fetch_add(1, Ordering::Relaxed);
                    sample.reply = Some(Err(()));
                    samples.push(sample);
                    break;
                }
            }
        }
        samples.push(sample);
        if let Some(bar) = &ctx.bar {
            bar.inc(1);
        }
        next = match mean_think {
            Some(mean) => (next + exponential(&mut rng, mean)).max(Instant::now()),
            None => Instant::now(),
        };
    }
    samples
}

/// Posts one inbound SMS, signed as Twilio signs it. Returns the round trip of a
/// `200`, or what went wrong (`http_503`, `timeout`, `connect`, …).
pub async fn post_webhook(
    client: &reqwest::Client,
    target: &Target,
    from: &str,
    body: &str,
) -> Result<Duration, String> {
    let sid = MessageSid::generate().to_string();
    let params: Vec<(String, String)> = [
        ("AccountSid", target.account_sid.as_str()),
        ("ApiVersion", "2010-04-01"),
        ("Body", body),
        ("From", from),
        ("MessageSid", sid.as_str()),
        ("NumMedia", "0"),
        ("NumSegments", "1"),
        ("SmsMessageSid", sid.as_str()),
        ("SmsSid", sid.as_str()),
        ("SmsStatus", "received"),
        ("To", SHARED_NUMBER),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let signature = signature::compute(&target.auth_token, &target.webhook_url, &params);
    let started = Instant::now();
    let response = client
        .post(&target.webhook_url)
        .header(signature::HEADER, signature)
        .form(&params)
        .send()
        .await
        .map_err(error_kind)?;
    let status = response.status();
    let _ = response.bytes().await.map_err(error_kind)?;
    if status.as_u16() != 200 {
        return Err(format!("http_{}", status.as_u16()));
    }
    Ok(started.elapsed())
}

fn error_kind(e: reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connect".into()
    } else {
        "request".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sidekick_domain::intent::{self, Intent};
    use sidekick_domain::PhoneNumber;

    /// The assistant's own rule (`worker::looks_complete`) for a finished user.
    fn answered_at_once(text: &str) -> bool {
        intent::parse(text) != Intent::Unknown || text.trim_end().ends_with(['.', '!', '?'])
    }

    #[test]
    fn the_mix_is_complete_messages_except_fragments_and_never_an_opt_out() {
        for kind in MessageKind::all() {
            for text in kind.texts() {
                assert_eq!(
                    answered_at_once(text),
                    !kind.is_debounced(),
                    "{kind:?}: {text:?}"
                );
                assert!(
                    !matches!(intent::parse(text), Intent::Stop { .. } | Intent::Start),
                    "{text:?} would opt out or in"
                );
            }
        }
        assert_eq!(MIX.iter().map(|(_, w)| w).sum::<u32>(), 100);
    }

    #[test]
    fn simulated_numbers_are_valid_distinct_and_fictional() {
        let phones: Vec<String> = (0..20_000).map(phone_for).collect();
        let distinct: std::collections::HashSet<&String> = phones.iter().collect();
        assert_eq!(distinct.len(), phones.len());
        for p in phones.iter().step_by(997) {
            assert!(PhoneNumber::parse(p).is_ok(), "{p}");
            assert_eq!(&p[5..9], "5550", "{p}");
        }
    }
}
