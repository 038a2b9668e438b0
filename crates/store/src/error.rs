use cqrs_es::AggregateError;

/// Errors of the store. When to expect which:
/// - [`StoreError::Unavailable`]: PostgreSQL could not be reached or timed out. Transient:
///   answer 503 / retry later; nothing was recorded.
/// - [`StoreError::Conflict`]: a concurrent writer won every retry. Transient: retry.
/// - [`StoreError::Rejected`]: the aggregate refused the command (a domain rule). Permanent.
/// - [`StoreError::Sealed`]: a sealed value could not be opened (key destroyed or tampered).
/// - [`StoreError::Corrupt`]: stored data does not decode. A bug or a broken migration.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("concurrent update conflict on {aggregate} {id} after {attempts} attempts")]
    Conflict {
        aggregate: &'static str,
        id: String,
        attempts: u32,
    },
    #[error("command rejected: {0}")]
    Rejected(String),
    #[error("sealed data could not be opened: {0}")]
    Sealed(#[from] sidekick_domain::SealError),
    #[error("no data key for user {0} (deleted account?)")]
    NoKey(sidekick_domain::UserId),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(sqlx::Error),
}

impl StoreError {
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::Conflict { .. })
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => Self::Unavailable(e.to_string()),
            sqlx::Error::Database(ref db)
                if db
                    .code()
                    .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")) =>
            {
                Self::Unavailable(e.to_string())
            }
            other => Self::Database(other),
        }
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        Self::Corrupt(e.to_string())
    }
}

pub(crate) fn from_aggregate<T: std::error::Error>(e: AggregateError<T>) -> StoreError {
    match e {
        AggregateError::UserError(e) => StoreError::Rejected(e.to_string()),
        AggregateError::AggregateConflict => StoreError::Conflict {
            aggregate: "?",
            id: String::new(),
            attempts: 1,
        },
        AggregateError::DatabaseConnectionError(e) => StoreError::Unavailable(e.to_string()),
        AggregateError::DeserializationError(e) => StoreError::Corrupt(e.to_string()),
        // postgres-es reports pool time-outs as unexpected errors: a database that is
        // down must read as unavailable, so callers answer 503 instead of 500.
        AggregateError::UnexpectedError(e) => {
            let text = e.to_string();
            if text.contains("pool timed out")
                || text.contains("onnection")
                || text.contains("closed")
            {
                StoreError::Unavailable(text)
            } else {
                StoreError::Corrupt(text)
            }
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
