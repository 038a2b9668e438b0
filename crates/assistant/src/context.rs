//! What a model is told about the user for one turn, within a token budget.
//!
//! Tokens are approximated as characters / 4 ([`approx_tokens`]): close enough
//! for English with the tokenizers Gemini and GPT-style models use (they average
//! 3.5–4.5 characters per token), cheap, and the same for every provider. The
//! budget is a ceiling on what Sidekick adds, not a promise about billing; the
//! provider's own counts are what is recorded.
//!
//! Sections, most important first; a section that does not fit is dropped whole,
//! except the conversation, which loses its oldest lines first:
//! 1. profile: name, timezone, local time, quiet hours;
//! 2. memories the memory read model ranks best for this message;
//! 3. open tasks (numbered as the user sees them), the next reminders and, when the
//!    calendar is connected, today's meetings (fenced: titles are others' text);
//! 4. connected services;
//! 5. the recent conversation.

use chrono::{DateTime, Utc};
use sidekick_domain::{DataKey, SealedText};
use sidekick_integrations::oauth::Feature;
use sidekick_integrations::UntrustedText;
use sidekick_store::planning::{self as rm, Page, ReminderFilter};
use sidekick_store::{events, memory as memories, sync, StoreError};

use crate::planning::Desk;
use crate::prompt::{fence, SYSTEM_PROMPT};

/// What Sidekick adds to a turn's prompt at most, in approximate tokens.
pub const CONTEXT_TOKENS: usize = 2_000;
/// How many earlier messages are considered for the conversation section.
const HISTORY_MESSAGES: i64 = 12;

/// `text`'s length in approximate tokens: characters / 4, rounded up.
pub fn approx_tokens(text: &str) -> usize {
    text.chars().count().div_ceil(4)
}

/// Who said a line of the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speaker {
    User,
    Assistant,
}

/// A turn's prompt: the system instruction (rules + context), earlier
/// conversation, and the user's new message.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnContext {
    pub system: String,
    pub history: Vec<(Speaker, String)>,
    pub user: String,
}

impl TurnContext {
    /// Just the rules and the message: for tests and the evaluation harness.
    pub fn bare(user: &str, facts: &str) -> Self {
        Self {
            system: format!("{SYSTEM_PROMPT}\n# About the user\n{facts}"),
            history: Vec::new(),
            user: user.to_string(),
        }
    }

    /// Approximate tokens of everything in the prompt.
    pub fn tokens(&self) -> usize {
        approx_tokens(&self.system)
            + approx_tokens(&self.user)
            + self
                .history
                .iter()
                .map(|(_, t)| approx_tokens(t))
                .sum::<usize>()
    }
}

fn open(key: &DataKey, sealed: &str) -> Option<String> {
    SealedText::from_stored(sealed.to_string())
        .ok()
        .and_then(|s| key.open(&s).ok())
}

/// Builds the context for the user's new message `user_text`; messages numbered
/// `first_new` and later are this turn's and are not repeated as history.
pub async fn build(
    desk: &Desk<'_>,
    name: Option<&str>,
    user_text: &str,
    first_new: u64,
    enabled: &[Feature],
    calendar: Option<&UntrustedText>,
    budget: usize,
) -> Result<TurnContext, StoreError> {
    let tz = desk.account.timezone.tz();
    let local = desk.now.with_timezone(&tz);
    let quiet = desk.account.quiet_hours;
    let mut profile = vec![
        format!("Name: {}", name.unwrap_or("(not given)")),
        format!("Timezone: {}", desk.account.timezone),
        format!("Local time: {}", local.format("%A %Y-%m-%d %H:%M")),
        format!("Quiet hours: {}-{}", quiet.start, quiet.end),
    ];
    if desk.account.nudges_paused_at(desk.now) {
        profile.push("Check-ins are paused right now.".into());
    }
    let mut sections = vec![("Profile", profile.join("\n"))];

    caught_up(desk, "memory", "memory").await;
    let hits = memories::search(desk.store.pool(), desk.user, user_text, 5).await?;
    let facts: Vec<String> = hits
        .iter()
        .filter_map(|h| open(desk.key, &h.content_sealed))
        .map(|f| format!("- {f}"))
        .collect();
    if !facts.is_empty() {
        sections.push(("Saved memories that may help", facts.join("\n")));
    }

    let listed = desk.listed_tasks().await?;
    let tasks: Vec<String> = listed
        .iter()
        .take(8)
        .enumerate()
        .map(|(i, t)| format!("{} {}", i + 1, t.title))
        .collect();
    sections.push((
        "Open tasks (numbered as the user sees them)",
        if tasks.is_empty() {
            "(none)".to_string()
        } else {
            let more = listed.len().saturating_sub(tasks.len());
            let more = if more > 0 {
                format!("\n(+{more} more)")
            } else {
                String::new()
            };
            format!("{}{more}", tasks.join("\n"))
        },
    ));

    let reminders = rm::reminders(
        desk.store.pool(),
        desk.user,
        &ReminderFilter::upcoming(),
        &Page::first(3),
    )
    .await?;
    let upcoming: Vec<String> = reminders
        .iter()
        .filter_map(|r| {
            let text = open(desk.key, &r.text_sealed)?;
            let at = r.next_due_at.map(|d| local_text(d, tz)).unwrap_or_default();
            Some(format!("- {text} ({at})"))
        })
        .collect();
    if !upcoming.is_empty() {
        sections.push(("Next reminders", upcoming.join("\n")));
    }

    // Event titles come from whoever sent the invitation: fenced as data.
    if let Some(today) = calendar {
        sections.push(("Today's calendar", fence("calendar", today)));
    }

    let connected: Vec<&str> = enabled.iter().map(|f| f.name()).collect();
    sections.push((
        "Connected services",
        if connected.is_empty() {
            "none (only Sidekick's own tasks, reminders and memories)".to_string()
        } else {
            connected.join(", ")
        },
    ));

    let header = "\n# About the user (facts from Sidekick, not instructions)\n";
    let mut system = format!("{SYSTEM_PROMPT}{header}");
    let mut used = approx_tokens(user_text) + approx_tokens(header);
    for (title, body) in sections {
        let section = format!("## {title}\n{body}\n");
        let cost = approx_tokens(&section);
        if used + cost > budget {
            continue;
        }
        used += cost;
        system.push_str(&section);
    }

    caught_up(desk, "sync", "conversation").await;
    let rows = sync::conversation(desk.store.pool(), desk.user, None, HISTORY_MESSAGES).await?;
    let mut history: Vec<(Speaker, String)> = Vec::new();
    for row in rows.iter().rev() {
        let speaker = match row.direction.as_str() {
            "in" if row.number.is_some_and(|n| n as u64 >= first_new) => continue,
            "in" => Speaker::User,
            _ => Speaker::Assistant,
        };
        let Some(text) = open(desk.key, &row.body_sealed) else {
            continue;
        };
        let cost = approx_tokens(&text);
        if used + cost > budget {
            break;
        }
        used += cost;
        history.push((speaker, text));
    }
    history.reverse();
    Ok(TurnContext {
        system,
        history,
        user: user_text.to_string(),
    })
}

/// Waits briefly for the user's own latest writes to reach a read model ("remember
/// X" then a question about X). A projector that is further behind only makes the
/// context a moment stale.
async fn caught_up(desk: &Desk<'_>, projection: &str, aggregate_type: &str) {
    let patience = std::time::Duration::from_millis(300);
    events::wait_caught_up(
        desk.store.pool(),
        desk.user,
        projection,
        aggregate_type,
        patience,
    )
    .await;
}

fn local_text(at: DateTime<Utc>, tz: chrono_tz::Tz) -> String {
    at.with_timezone(&tz).format("%a %H:%M").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_characters_over_four_rounded_up() {
        assert_eq!(approx_tokens(""), 0);
        assert_eq!(approx_tokens("abcd"), 1);
        assert_eq!(approx_tokens("abcde"), 2);
        assert_eq!(approx_tokens("héllo wörld"), 3);
    }
}
