//! [`MemoryError`]: what can go wrong with the memory guard's records (its own module, so
//! the guard and its tables both use it without using each other).

use thiserror::Error;

/// What went wrong with the guard's records.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum MemoryError {
    /// The database could not be read or written.
    #[error("the memory guard's tables: {0}")]
    Store(String),
    /// A table is at its bound.
    #[error("no room: {0}")]
    Full(String),
    /// A quarantined write was already released, used or dropped.
    #[error("quarantined write {id} is already {status}")]
    Settled {
        /// Its id.
        id: String,
        /// What it is now.
        status: &'static str,
    },
}
