//! [`TrustError`]: what can go wrong with trust settings, scores and handshakes.

use std::path::{Path, PathBuf};

use thiserror::Error;

/// Something about trust could not be done. On the decision path every one is a deny.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TrustError {
    /// The settings are invalid.
    #[error("invalid trust settings: {0}")]
    Config(String),
    /// The trust tables could not be read or written.
    #[error("{}: {detail}", path.display())]
    Store {
        /// The Warden database.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
}

impl TrustError {
    pub(crate) fn store(path: &Path, detail: impl Into<String>) -> Self {
        TrustError::Store {
            path: path.to_path_buf(),
            detail: detail.into(),
        }
    }
}
