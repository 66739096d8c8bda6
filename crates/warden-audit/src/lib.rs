#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod encoding;
mod error;
mod keys;
mod log;
mod read;
mod record;
mod schema;
mod timestamp;
mod verify;

pub use encoding::{CHECKPOINT_DOMAIN, GENESIS_HASH, RECORD_DOMAIN, args_digest, canonical_json};
pub use error::AuditError;
pub use keys::{
    SCHEME_ED25519, SigningKey, VerifyingKey, default_key_path, generate_key_file,
    generate_signing_key, key_id, load_signing_key, parse_verifying_key, public_key_hex,
    public_key_path,
};
pub use log::{AuditConfig, AuditLog, AuditStats, Gap, Mode, WhenFull};
pub use read::{Checkpoint, Filter, checkpoints, export_jsonl, export_jsonl_with_progress, query};
pub use record::{Entry, REDACT_OBLIGATION, Record, from_hex, to_hex};
pub use schema::{APPLICATION_ID, FORMAT_VERSION};
pub use timestamp::{Timestamp, TimestampError};
pub use verify::{Incident, TamperKind, Tampering, VerifyReport, VerifySummary, verify};
