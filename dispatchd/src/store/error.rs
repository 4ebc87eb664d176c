//! `StoreError`: what a store call can fail with, classified so callers
//! know whether to retry (503, back off) or give up (409, 500).

/// Why a store call failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database cannot be reached or timed out: retry later (503).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A row with this key already exists (409).
    #[error("conflict: {0}")]
    Conflict(String),
    /// Subscriptions changed since the caller's snapshot: route again.
    #[error("subscriptions changed during ingest")]
    StaleSubscriptions,
    /// A deadlock or serialization failure: the same call may succeed if
    /// retried.
    #[error("database contention: {0}")]
    Contention(String),
    /// A stored value this version cannot read (an unknown state, broken
    /// JSON): the message names the table, the row and the column. Never
    /// papered over with a default, since a skipped plugin chain could send
    /// what a redaction plugin was meant to remove.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// Anything else: a bug or a schema mismatch (500, logged).
    #[error("database error: {0}")]
    Other(String),
}

/// A store call's result.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    /// Whether the same call may succeed later: the database is away or
    /// two transactions collided.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::Contention(_))
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e.to_string()),
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict(db.message().to_string())
            }
            sqlx::Error::Database(db) => {
                let code = db.code().unwrap_or_default();
                if code == "40P01" || code == "40001" {
                    return StoreError::Contention(e.to_string());
                }
                // Postgres shutting down, too many connections, read-only
                // failover: all transient. SQLite busy/locked likewise.
                if code.starts_with("57P")
                    || code.starts_with("08")
                    || code == "53300"
                    || code == "25006"
                    || code == "5"
                    || code == "6"
                    || code == "517"
                {
                    StoreError::Unavailable(e.to_string())
                } else {
                    StoreError::Other(e.to_string())
                }
            }
            _ => StoreError::Other(e.to_string()),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Other(format!("migration failed: {e}"))
    }
}
