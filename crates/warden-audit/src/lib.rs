#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod encoding;
mod error;
mod hex;
mod keys;
mod log;
mod read;
mod record;
mod store;
mod timestamp;
mod verify;

pub use encoding::{
    CHECKPOINT_DOMAIN, Encoding, GENESIS_HASH, RECORD_DOMAIN, RECORD_DOMAIN_V1, args_digest,
    canonical_json,
};
pub use error::{AuditError, WriteError};
pub use hex::{from_hex, to_hex};
pub use keys::{
    SCHEME_ED25519, SigningKey, VerifyingKey, default_key_path, generate_key_file,
    generate_signing_key, key_id, load_or_create_key_file, load_signing_key, parse_verifying_key,
    public_key_hex, public_key_path,
};
pub use log::{Appended, AuditConfig, AuditLog, AuditStats, Mode, WhenFull};
pub use read::{
    Filter, LogReader, RecordStatus, checkpoints, export_jsonl, export_jsonl_through,
    export_jsonl_with_progress, query,
};
pub use record::{Checkpoint, Entry, Gap, Incident, REDACT_OBLIGATION, Record};
pub use store::{APPLICATION_ID, FORMAT_VERSION, WriteGate, open_state, open_state_read_only};
pub use timestamp::{Timestamp, TimestampError};
pub use verify::{
    KnownHead, KnownHeadError, TamperKind, Tampering, VerifyOptions, VerifyReport, VerifySummary,
    verify, verify_with,
};

/// Entry points for the fuzz targets (`fuzz/fuzz_targets/audit_record.rs`): decoding hostile
/// bytes and column values. Not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::encoding::{DecodeError, RecordFields};
    use rusqlite::types::ValueRef;

    /// The number of columns a record row has.
    pub const RECORD_WIDTH: usize = crate::store::RECORD_WIDTH;

    /// One SQLite column value, as a hand-edited file may hold it.
    #[derive(Debug, Clone, Copy)]
    pub enum Column<'a> {
        /// NULL.
        Null,
        /// An integer.
        Integer(i64),
        /// A float.
        Real(f64),
        /// Text (not necessarily UTF-8).
        Text(&'a [u8]),
        /// A blob.
        Blob(&'a [u8]),
    }

    /// Decode a row's column values both ways (raw for hashing, owned for people) with the
    /// given encoding; returns whether each decoded. Must never panic.
    pub fn decode_row(
        columns: &[Column<'_>; RECORD_WIDTH],
        encoding: crate::Encoding,
    ) -> (bool, bool) {
        let values: [ValueRef<'_>; RECORD_WIDTH] = std::array::from_fn(|i| match columns[i] {
            Column::Null => ValueRef::Null,
            Column::Integer(v) => ValueRef::Integer(v),
            Column::Real(v) => ValueRef::Real(v),
            Column::Text(t) => ValueRef::Text(t),
            Column::Blob(b) => ValueRef::Blob(b),
        });
        let raw = crate::store::RawRow::from_values(&values, encoding);
        if let Ok(raw) = &raw {
            // Hashing what decoded must not panic either, and its encoding must read back.
            let _ = raw.hash_ok(&mut Vec::new());
            let mut buf = Vec::new();
            raw.fields.encode(&mut buf);
            assert_eq!(RecordFields::decode(&buf).as_ref(), Ok(&raw.fields));
        }
        let record = crate::store::record_from_values(&values);
        if let Ok(r) = &record {
            let _ = r.compute_hash();
            let json = serde_json::to_string(r).expect("a decoded record serializes");
            let back: crate::Record = serde_json::from_str(&json).expect("and reads back");
            assert_eq!(back.seq, r.seq);
        }
        (raw.is_ok(), record.is_ok())
    }
}
