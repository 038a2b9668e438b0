//! The memory read model (`projections/memory`): every fact a user asked Sidekick
//! to remember, with its tags, category, importance and recall history, searchable
//! by words and trigrams ([`sidekick_store::memory::search`]).
//!
//! # The one place plaintext lives
//!
//! Content and tags are sealed in the events and stay sealed in `content_sealed`
//! and `tags_sealed`. PostgreSQL cannot index ciphertext, so this projection opens
//! them with the user's data key and writes the words to `search_text` (from which
//! the `tsv` column is generated). That column is a read-model row like any other:
//! forgetting a fact erases it, deleting the account deletes it, and a replay after
//! the user's key was destroyed writes it empty — a destroyed key never fails the
//! projection, it just leaves nothing to search.
//!
//! # History
//!
//! A superseded fact keeps its row, marked `superseded_by` (the thread shows "was
//! 4411 until March"). A forgotten thread keeps tombstones: ids, category and times
//! (which the event log holds in plaintext anyway), with content, tags and search
//! text erased.
//!
//! Idempotency: the framework's per-aggregate checkpoint makes a repeat a no-op; a
//! capture is an upsert too, so an id captured again after the aggregate forgot it
//! replaces its row.

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sidekick_domain::memory::{Memory, MemoryCategory, MemoryEvent, MemoryId};
use sidekick_domain::{Aggregate, DataKey, DomainEventKind, EventEnvelope, SealedText, UserId};
use sidekick_store::scoped::UserTx;
use sidekick_store::{Result, Store, StoreError};
use uuid::Uuid;

use crate::{Projection, UiChange};

/// Builds `memory_items`. Holds a [`Store`] for the users' data keys (cached by
/// the store's key ring), which it needs to write `search_text`.
pub struct MemoryProjection {
    store: Store,
}

impl MemoryProjection {
    /// Its [`Projection::name`], known without a store.
    pub const NAME: &'static str = "memory";

    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// The user's data key; `None` when it was destroyed (a deleted account).
    /// Any other failure (database down, a master key that does not unwrap it) is
    /// an error to retry, not a reason to index nothing.
    async fn key(&self, user: UserId) -> Result<Option<DataKey>> {
        match self.store.data_key(user).await {
            Ok(key) => Ok(Some(key)),
            Err(StoreError::NoKey(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[async_trait]
impl Projection for MemoryProjection {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        &["memory_items"]
    }

    fn wants(&self, aggregate_type: &str) -> bool {
        aggregate_type == Memory::TYPE
    }

    async fn apply(
        &self,
        tx: &mut UserTx,
        e: &EventEnvelope,
        decoded: &DomainEventKind,
    ) -> Result<Vec<UiChange>> {
        match decoded {
            DomainEventKind::Memory(event) => self.apply_event(tx, e.user_id, event).await,
            // `wants` admits only memory events.
            _ => Ok(Vec::new()),
        }
    }
}

fn changed(memory_id: &MemoryId) -> Vec<UiChange> {
    vec![UiChange {
        resource: "memories",
        id: Some(memory_id.to_string()),
    }]
}

fn category_str(category: MemoryCategory) -> Result<String> {
    Ok(serde_json::to_value(category)?
        .as_str()
        .unwrap_or("fact")
        .to_string())
}

/// Opens a stored sealed value; `None` if there is no key or it does not open
/// (tampered, or sealed for someone else). Never logs the value.
fn open(key: Option<&DataKey>, sealed: &str) -> Option<String> {
    let key = key?;
    let sealed = SealedText::from_stored(sealed).ok()?;
    match key.open(&sealed) {
        Ok(text) => Some(text),
        Err(e) => {
            tracing::warn!(user = %key.user(), error = %e, "memory text could not be opened; not indexed");
            None
        }
    }
}

/// What search matches against: the content, then the tags, one per line.
fn search_text(key: Option<&DataKey>, content: &str, tags: &[String]) -> String {
    let mut lines: Vec<String> = open(key, content).into_iter().collect();
    lines.extend(tags.iter().filter_map(|t| open(key, t)));
    lines.join("\n")
}

impl MemoryProjection {
    async fn apply_event(
        &self,
        tx: &mut UserTx,
        user: UserId,
        event: &MemoryEvent,
    ) -> Result<Vec<UiChange>> {
        use MemoryEvent as E;
        let uid = user.as_uuid();
        match event {
            E::MemoryCaptured {
                memory_id,
                thread,
                content,
                tags,
                category,
                importance,
                source,
                at,
                ..
            } => {
                let key = self.key(user).await?;
                let tags: Vec<String> = tags.iter().map(|t| t.as_str().to_string()).collect();
                let text = search_text(key.as_ref(), content.as_str(), &tags);
                sqlx::query(
                    "INSERT INTO memory_items (user_id, id, thread_id, content_sealed, search_text, tags_sealed,
                                               category, importance, source_message_id, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)
                     ON CONFLICT (user_id, id) DO UPDATE SET thread_id = excluded.thread_id,
                         content_sealed = excluded.content_sealed, search_text = excluded.search_text,
                         tags_sealed = excluded.tags_sealed, category = excluded.category,
                         importance = excluded.importance, recall_count = 0, last_recalled_at = NULL,
                         mention_count = 1, source_message_id = excluded.source_message_id,
                         created_at = excluded.created_at, updated_at = excluded.updated_at,
                         superseded_by = NULL, superseded_at = NULL, forgotten = false, forgotten_at = NULL",
                )
                .bind(uid)
                .bind(memory_id.0)
                .bind(thread.0)
                .bind(content.as_str())
                .bind(text)
                .bind(&tags)
                .bind(category_str(*category)?)
                .bind(i16::from(*importance))
                .bind(source)
                .bind(at)
                .execute(&mut **tx)
                .await?;
                Ok(changed(memory_id))
            }
            E::MemoryMerged {
                memory_id,
                tags,
                importance,
                at,
                ..
            } => {
                let Some((content, mut kept)) = self.row(tx, uid, memory_id).await? else {
                    return Ok(Vec::new());
                };
                let key = self.key(user).await?;
                // The duplicate's tags join the kept fact's, once each (compared as
                // plaintext: every sealing of one word differs).
                let mut seen: HashSet<String> = kept
                    .iter()
                    .filter_map(|t| open(key.as_ref(), t))
                    .map(|t| t.to_lowercase())
                    .collect();
                for tag in tags {
                    let plain = open(key.as_ref(), tag.as_str()).map(|t| t.to_lowercase());
                    if plain.as_ref().is_some_and(|p| !seen.insert(p.clone())) {
                        continue;
                    }
                    kept.push(tag.as_str().to_string());
                }
                let text = search_text(key.as_ref(), &content, &kept);
                sqlx::query(
                    "UPDATE memory_items SET tags_sealed = $3, search_text = $4,
                            importance = greatest(importance, $5), mention_count = mention_count + 1,
                            updated_at = $6
                      WHERE user_id = $1 AND id = $2",
                )
                .bind(uid)
                .bind(memory_id.0)
                .bind(&kept)
                .bind(text)
                .bind(i16::from(*importance))
                .bind(at)
                .execute(&mut **tx)
                .await?;
                Ok(changed(memory_id))
            }
            E::MemorySuperseded {
                memory_id, by, at, ..
            } => {
                sqlx::query(
                    "UPDATE memory_items SET superseded_by = $3, superseded_at = $4, updated_at = $4
                      WHERE user_id = $1 AND id = $2",
                )
                .bind(uid)
                .bind(memory_id.0)
                .bind(by.0)
                .bind(at)
                .execute(&mut **tx)
                .await?;
                Ok(changed(memory_id))
            }
            E::MemoryRetagged {
                memory_id,
                tags,
                category,
                at,
            } => {
                let Some((content, _)) = self.row(tx, uid, memory_id).await? else {
                    return Ok(Vec::new());
                };
                let key = self.key(user).await?;
                let tags: Vec<String> = tags.iter().map(|t| t.as_str().to_string()).collect();
                let text = search_text(key.as_ref(), &content, &tags);
                sqlx::query(
                    "UPDATE memory_items SET tags_sealed = $3, category = $4, search_text = $5, updated_at = $6
                      WHERE user_id = $1 AND id = $2",
                )
                .bind(uid)
                .bind(memory_id.0)
                .bind(&tags)
                .bind(category_str(*category)?)
                .bind(text)
                .bind(at)
                .execute(&mut **tx)
                .await?;
                Ok(changed(memory_id))
            }
            E::MemoryImportanceSet {
                memory_id,
                importance,
                at,
            } => {
                sqlx::query(
                    "UPDATE memory_items SET importance = $3, updated_at = $4 WHERE user_id = $1 AND id = $2",
                )
                .bind(uid)
                .bind(memory_id.0)
                .bind(i16::from(*importance))
                .bind(at)
                .execute(&mut **tx)
                .await?;
                Ok(changed(memory_id))
            }
            E::MemoryForgotten {
                memory_id,
                thread,
                at,
            } => {
                forget_thread(tx, uid, memory_id, thread, *at).await?;
                Ok(changed(memory_id))
            }
            E::MemoryRecalled { memory_id, at } => {
                sqlx::query(
                    "UPDATE memory_items SET recall_count = recall_count + 1, last_recalled_at = $3, updated_at = $3
                      WHERE user_id = $1 AND id = $2",
                )
                .bind(uid)
                .bind(memory_id.0)
                .bind(at)
                .execute(&mut **tx)
                .await?;
                Ok(changed(memory_id))
            }
        }
    }

    /// A live fact's sealed content and tags.
    async fn row(
        &self,
        tx: &mut UserTx,
        user: Uuid,
        memory_id: &MemoryId,
    ) -> Result<Option<(String, Vec<String>)>> {
        Ok(sqlx::query_as(
            "SELECT content_sealed, tags_sealed FROM memory_items
              WHERE user_id = $1 AND id = $2 AND NOT forgotten AND content_sealed IS NOT NULL",
        )
        .bind(user)
        .bind(memory_id.0)
        .fetch_optional(&mut **tx)
        .await?)
    }
}

/// Erases the content of every version of a fact, keeping tombstones.
async fn forget_thread(
    tx: &mut UserTx,
    user: Uuid,
    memory_id: &MemoryId,
    thread: &MemoryId,
    at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "UPDATE memory_items SET forgotten = true, forgotten_at = $4, content_sealed = NULL,
                search_text = '', tags_sealed = '{}', updated_at = $4
          WHERE user_id = $1 AND (thread_id = $2 OR id = $3)",
    )
    .bind(user)
    .bind(thread.0)
    .bind(memory_id.0)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_text_is_content_then_tags_and_empty_without_a_key() {
        let key = DataKey::generate(UserId::new());
        let content = key.seal("my locker code is 4411");
        let tags = vec![key.seal("gym").as_str().to_string()];
        assert_eq!(
            search_text(Some(&key), content.as_str(), &tags),
            "my locker code is 4411\ngym"
        );
        assert_eq!(search_text(None, content.as_str(), &tags), "");
        let stranger = DataKey::generate(UserId::new());
        assert_eq!(search_text(Some(&stranger), content.as_str(), &tags), "");
    }

    #[test]
    fn categories_are_stored_as_their_json_names() {
        assert_eq!(category_str(MemoryCategory::Place).unwrap(), "place");
        assert_eq!(category_str(MemoryCategory::Fact).unwrap(), "fact");
    }
}
