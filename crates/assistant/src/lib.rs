//! The conversation engine and the outbound side.
//!
//! # Layout
//! - [`engine`]: the model-provider port ([`engine::ModelProvider`]): a turn in, a reply
//!   and actions out. Providers never write anything themselves.
//! - [`providers`]: the language models — Gemini and any OpenAI-compatible server —
//!   with a multi-step tool loop; [`tools`]: what they may call, generated schemas
//!   and the gate; [`context`]: what they are told, within a token budget;
//!   [`prompt`]: the versioned ADHD rules and the checks on every reply.
//! - [`offline`]: the deterministic offline engine, the first provider and the fallback.
//! - [`copy`]: every fixed message Sidekick sends, in one place, written for ADHD.md.
//! - [`worker`]: the assistant role: per-user lanes, debouncing bursts into one turn,
//!   executing the turn's actions and queueing its reply.
//! - [`notifier`]: the notifier role: sends queued replies through Twilio, paced and
//!   prioritised, at most once each.
//! - [`scheduler`]: the scheduler role: due reminders, time-box starts, focus and
//!   inactivity check-ins become commands (fire, queue a message), at most once each.
//! - [`tokens`]: access tokens of connected services, refreshed once however many ask,
//!   and a broken connection reported to the user once.
//! - [`microsoft`]: "today's meetings", "email triage", "add to calendar …" and the busy slots "plan my
//!   day" avoids, from the user's connected Microsoft account.
//! - [`search`]: "search …" as the top web results; [`youtube`]: "summarise <link>"
//!   as a memory of the video's transcript; [`notes`]: "note to notion …".
//! - [`features`]: which features of connected services a user has (the tool gate).
//!
//! Providers and the engine are pure decisions over a [`engine::Turn`]; every effect goes
//! through commands on the user's aggregates (`sidekick-store`).

pub mod context;
pub mod copy;
pub mod engine;
pub mod features;
pub mod microsoft;
pub mod notes;
pub mod notifier;
pub mod offline;
pub mod outside;
pub mod planning;
pub mod prompt;
pub mod providers;
pub mod scheduler;
pub mod search;
pub mod stub;
pub mod tokens;
pub mod tools;
pub mod worker;
pub mod youtube;
