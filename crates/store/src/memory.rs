//! Queries of the memory read model (`projections/memory`), always as one user
//! under row-level security: ranked search ("what's my locker code?"), listing,
//! one item, and a fact's history.
//!
//! Content and tags come back sealed; the API opens them. `search_text`, the
//! plaintext the projector indexes, is never returned.
//!
//! # Ranking
//!
//! One SQL statement scores every live fact (not forgotten, not superseded) that
//! shares a word stem with the question or resembles it by trigrams:
//!
//! | weight | signal | what it is |
//! |---|---|---|
//! | 0.45 | coverage | share of the question's English stems (stop words dropped) the fact contains |
//! | 0.10 | density | `ts_rank_cd(tsv, q, 1\|32)`: matched words close together, in a short fact |
//! | 0.20 | trigram | `word_similarity(question words, search_text)`: typos, partial words |
//! | 0.05 | kind | the question asks where / when / who and the fact is a place / date / person |
//! | 0.08 | recency | halves every 90 days since it was saved or last recalled |
//! | 0.07 | importance | (importance − 1) / 4 |
//! | 0.05 | recall | ln(1 + recalls) / ln(21), capped at 1: facts the user keeps asking for |
//!
//! Why these: what the question says dominates (0.80 for the three text signals),
//! so a fact that answers it always beats one that merely is new or important;
//! among equally good matches the priors (0.20) pick the likelier one. Coverage
//! rather than raw `ts_rank` because a question's words are few and each one the
//! fact lacks is a real miss; the question is matched as OR of its words
//! (`websearch_to_tsquery` with `or`), since an AND would drop a fact for one extra
//! word in the question ("what's my *gym* locker code?"). Trigrams catch "lokcer".
//! `crates/store/tests/retrieval.rs` measures precision@1 on a labelled set.

use chrono::{DateTime, Utc};
use sidekick_domain::memory::MemoryId;
use sidekick_domain::{DataKey, UserId};
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

use crate::error::Result;
use crate::planning::{Page, PageKey};
use crate::scoped::begin_as;

/// The purpose [`DataKey::derive_secret`] is called with for the Memory
/// aggregate's fingerprints ([`sidekick_domain::memory::MemoryKey`],
/// [`sidekick_domain::memory::SubjectKey`]).
pub const FINGERPRINT_PURPOSE: &str = "memory-fingerprints";

/// The user's secret for memory fingerprints: derived from their data key, so
/// destroying the key shreds the fingerprints too.
pub fn fingerprint_secret(key: &DataKey) -> [u8; 32] {
    key.derive_secret(FINGERPRINT_PURPOSE)
}

/// Longest question searched, in words; the rest is ignored.
const MAX_QUERY_WORDS: usize = 32;
/// The least trigram word-similarity that makes a fact a candidate on its own.
const TRIGRAM_THRESHOLD: &str = "0.3";

/// A live remembered fact.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct MemoryRow {
    pub id: Uuid,
    /// The first fact on this subject; later versions share it.
    pub thread_id: Uuid,
    pub content_sealed: String,
    pub tags_sealed: Vec<String>,
    /// `code`, `place`, `person`, `date`, `health`, `preference` or `fact`.
    pub category: String,
    /// 1 (trivia) to 5 (must not lose).
    pub importance: i16,
    pub recall_count: i32,
    pub last_recalled_at: Option<DateTime<Utc>>,
    /// How often it was said (duplicates merged into it, plus one).
    pub mention_count: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The newer fact that replaced this one (only in [`thread`]).
    pub superseded_by: Option<Uuid>,
    pub superseded_at: Option<DateTime<Utc>>,
}

impl MemoryRow {
    pub fn page_key(&self) -> PageKey {
        PageKey {
            created_at: self.created_at,
            id: self.id,
        }
    }
}

macro_rules! memory_select {
    ($rest:literal) => {
        concat!(
            "SELECT id, thread_id, content_sealed, tags_sealed, category, importance, recall_count,
                    last_recalled_at, mention_count, created_at, updated_at, superseded_by, superseded_at
               FROM memory_items ",
            $rest
        )
    };
}

/// One search result, best first.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct MemoryHit {
    pub id: Uuid,
    pub thread_id: Uuid,
    pub content_sealed: String,
    pub tags_sealed: Vec<String>,
    pub category: String,
    pub importance: i16,
    pub created_at: DateTime<Utc>,
    /// The weighted score (see the module docs), about 0 to 1.
    pub score: f64,
    /// Share of the question's word stems the fact contains (0 to 1): a caller
    /// answering from the top hit alone may want it high.
    pub matched: f64,
}

/// The words of a question, at most [`MAX_QUERY_WORDS`], as `websearch_to_tsquery`
/// input meaning "any of them". Only letters and digits pass, so nothing the user
/// typed can act as query syntax.
fn any_of_words(query: &str) -> String {
    query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty() && !w.eq_ignore_ascii_case("or"))
        .take(MAX_QUERY_WORDS)
        .collect::<Vec<_>>()
        .join(" or ")
}

/// The category a question's interrogative points at ("where did I park" → place).
fn asked_kind(query: &str) -> Option<&'static str> {
    let lower = query.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let has = |w: &str| words.contains(&w);
    if has("where") {
        Some("place")
    } else if has("when") || lower.contains("what day") || lower.contains("what date") {
        Some("date")
    } else if has("who") || has("whose") {
        Some("person")
    } else {
        None
    }
}

/// The user's live facts that answer `query` best, at most `limit` (1 to 50).
/// Forgotten and superseded facts are never returned, nor anyone else's.
pub async fn search(
    pool: &PgPool,
    user: UserId,
    query: &str,
    limit: i64,
) -> Result<Vec<MemoryHit>> {
    let words = any_of_words(query);
    if words.is_empty() {
        return Ok(Vec::new());
    }
    let question: String = words.split(" or ").collect::<Vec<_>>().join(" ");
    let mut tx = begin_as(pool, user).await?;
    sqlx::query("SELECT set_config('pg_trgm.word_similarity_threshold', $1, true)")
        .bind(TRIGRAM_THRESHOLD)
        .execute(&mut *tx)
        .await?;
    let hits = sqlx::query_as(
        "WITH q AS (
             SELECT websearch_to_tsquery('english', $2) AS query,
                    coalesce(tsvector_to_array(to_tsvector('english', $3)), '{}') AS stems,
                    coalesce((SELECT string_agg(token, ' ') FROM ts_debug('english', $3)
                               WHERE lexemes <> '{}'), '') AS words),
         candidates AS (
             SELECT m.id, m.thread_id, m.content_sealed, m.tags_sealed, m.category, m.importance,
                    m.created_at, m.recall_count,
                    greatest(m.created_at, coalesce(m.last_recalled_at, m.created_at)) AS touched_at,
                    CASE WHEN cardinality(q.stems) = 0 THEN 0.0::float8
                         ELSE cardinality(ARRAY(SELECT unnest(tsvector_to_array(m.tsv))
                                                INTERSECT SELECT unnest(q.stems)))::float8
                              / cardinality(q.stems) END AS coverage,
                    ts_rank_cd(m.tsv, q.query, 1 | 32)::float8 AS density,
                    CASE WHEN q.words = '' THEN 0.0::float8
                         ELSE word_similarity(q.words, m.search_text)::float8 END AS trigram
               FROM memory_items m, q
              WHERE m.user_id = $1 AND NOT m.forgotten AND m.superseded_by IS NULL
                AND (m.tsv @@ q.query OR (q.words <> '' AND q.words <% m.search_text)))
         SELECT id, thread_id, content_sealed, tags_sealed, category, importance, created_at,
                coverage AS matched,
                (0.45 * coverage
               + 0.10 * density
               + 0.20 * trigram
               + 0.05 * CASE WHEN category = $4::text THEN 1.0 ELSE 0.0 END
               + 0.08 * power(0.5::float8, greatest(extract(epoch FROM now() - touched_at)::float8, 0.0) / (90 * 86400))
               + 0.07 * (importance - 1)::float8 / 4.0
               + 0.05 * least(ln(1 + recall_count::float8) / ln(21::float8), 1.0))::float8 AS score
           FROM candidates
          ORDER BY score DESC, created_at DESC, id
          LIMIT $5",
    )
    .bind(user.as_uuid())
    .bind(&words)
    .bind(&question)
    .bind(asked_kind(query))
    .bind(limit.clamp(1, 50))
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(hits)
}

/// The user's live facts, newest first, one page (`page.after` is the last row
/// of the previous page).
pub async fn list(pool: &PgPool, user: UserId, page: &Page) -> Result<Vec<MemoryRow>> {
    let mut tx = begin_as(pool, user).await?;
    let rows = sqlx::query_as(memory_select!(
        "WHERE user_id = $1 AND NOT forgotten AND superseded_by IS NULL
           AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
         ORDER BY created_at DESC, id DESC
         LIMIT $4"
    ))
    .bind(user.as_uuid())
    .bind(page.after_at())
    .bind(page.after_id())
    .bind(page.limit())
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows)
}

/// One live fact of the caller's; `None` for an id that is not theirs, or was
/// forgotten or superseded.
pub async fn item(pool: &PgPool, user: UserId, id: MemoryId) -> Result<Option<MemoryRow>> {
    let mut tx = begin_as(pool, user).await?;
    let row = sqlx::query_as(memory_select!(
        "WHERE user_id = $1 AND id = $2 AND NOT forgotten AND superseded_by IS NULL"
    ))
    .bind(user.as_uuid())
    .bind(id.0)
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(row)
}

/// Every version of a fact ("was 4411 until March"), oldest first: the thread of
/// `thread`, which is the id of its first fact. Empty once forgotten.
pub async fn thread(pool: &PgPool, user: UserId, thread: MemoryId) -> Result<Vec<MemoryRow>> {
    let mut tx = begin_as(pool, user).await?;
    let rows = sqlx::query_as(memory_select!(
        "WHERE user_id = $1 AND thread_id = $2 AND NOT forgotten ORDER BY created_at, id"
    ))
    .bind(user.as_uuid())
    .bind(thread.0)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_become_any_of_their_words_without_syntax() {
        assert_eq!(
            any_of_words("what's my locker code?"),
            "what or s or my or locker or code"
        );
        assert_eq!(
            any_of_words("-locker \"code\" OR 4411"),
            "locker or code or 4411"
        );
        assert_eq!(any_of_words("?!"), "");
    }

    #[test]
    fn interrogatives_point_at_a_kind_of_fact() {
        assert_eq!(asked_kind("where did I park?"), Some("place"));
        assert_eq!(asked_kind("When is mom's birthday"), Some("date"));
        assert_eq!(asked_kind("who is my dentist"), Some("person"));
        assert_eq!(asked_kind("what's my locker code?"), None);
    }

    #[test]
    fn fingerprint_secrets_are_per_user() {
        let a = DataKey::generate(UserId::new());
        let b = DataKey::generate(UserId::new());
        assert_eq!(fingerprint_secret(&a), fingerprint_secret(&a));
        assert_ne!(fingerprint_secret(&a), fingerprint_secret(&b));
    }
}
