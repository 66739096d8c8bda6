//! The file's vocabulary: format version, schema, table and column names, the statements
//! that write rows, and how integers are stored. Everything else in `store` (and the writer)
//! uses these names, so they are spelled once.

use crate::encoding::Encoding;

/// `PRAGMA application_id` of every Warden audit log: "WAUD" in ASCII.
pub const APPLICATION_ID: u32 = 0x5741_5544;
/// `PRAGMA user_version`: the format version this build writes and the newest it reads.
/// Version 1 logs (without the action's context) are still read and verified.
pub const FORMAT_VERSION: i64 = 2;

/// The columns of `records` in a version 2 log, in table order.
pub(super) const RECORD_COLUMNS_V2: &str = "seq, ts_ns, agent, action, tool, resource, verdict, \
    policy, rule, reason, args, args_digest, context, latency_ns, policy_version, prev_hash, hash";
/// The columns of `records` in a version 1 log.
pub(super) const RECORD_COLUMNS_V1: &str = "seq, ts_ns, agent, action, tool, resource, verdict, \
    policy, rule, reason, args, args_digest, latency_ns, policy_version, prev_hash, hash";
/// What readers select from a version 1 log: the same positions as version 2, with no
/// context, so one row decoder serves both.
pub(super) const SELECT_RECORD_V1: &str = "seq, ts_ns, agent, action, tool, resource, verdict, \
    policy, rule, reason, args, args_digest, NULL, latency_ns, policy_version, prev_hash, hash";
/// How many columns a record row has as selected.
pub(crate) const RECORD_WIDTH: usize = 17;

pub(super) const CHECKPOINT_COLUMNS: &str =
    "seq, head_hash, signed_at_ns, scheme, key_id, public_key, signature";
pub(super) const INCIDENT_COLUMNS_V1: &str = "id, at_ns, kind, first_seq, last_seq, detail";
pub(super) const INCIDENT_COLUMNS_V2: &str = "id, at_ns, kind, after_seq, lost, detail";

/// The record columns to select, in the order [`RawRow`] decodes them.
pub(crate) fn record_select(encoding: Encoding) -> &'static str {
    match encoding {
        Encoding::V1 => SELECT_RECORD_V1,
        Encoding::V2 => RECORD_COLUMNS_V2,
    }
}

/// The schema. `STRICT` tables make SQLite itself refuse a value of the wrong type, so a hand
/// edit cannot smuggle text into an integer column. `seq` is the rowid, so reading in `seq`
/// order is a sequential scan.
pub(super) const SCHEMA: &str = "
CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) STRICT;
CREATE TABLE records (
    seq            INTEGER PRIMARY KEY,
    ts_ns          INTEGER NOT NULL,
    agent          TEXT,
    action         TEXT NOT NULL,
    tool           TEXT,
    resource       TEXT,
    verdict        TEXT NOT NULL,
    policy         TEXT,
    rule           TEXT,
    reason         TEXT NOT NULL,
    args           TEXT,
    args_digest    BLOB NOT NULL,
    context        TEXT,
    latency_ns     INTEGER NOT NULL,
    policy_version INTEGER,
    prev_hash      BLOB NOT NULL,
    hash           BLOB NOT NULL
) STRICT;
CREATE TABLE checkpoints (
    seq          INTEGER PRIMARY KEY,
    head_hash    BLOB NOT NULL,
    signed_at_ns INTEGER NOT NULL,
    scheme       TEXT NOT NULL,
    key_id       TEXT NOT NULL,
    public_key   BLOB NOT NULL,
    signature    BLOB NOT NULL
) STRICT;
CREATE TABLE incidents (
    id        INTEGER PRIMARY KEY,
    at_ns     INTEGER NOT NULL,
    kind      TEXT NOT NULL,
    after_seq INTEGER NOT NULL,
    lost      INTEGER NOT NULL,
    detail    TEXT NOT NULL
) STRICT;
";

/// The statement that appends one record (version 2 logs only).
pub(crate) const INSERT_RECORD: &str = "INSERT INTO records (seq, ts_ns, agent, action, tool, \
    resource, verdict, policy, rule, reason, args, args_digest, context, latency_ns, \
    policy_version, prev_hash, hash) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)";

/// The statement that stores one signed checkpoint.
pub(crate) const INSERT_CHECKPOINT: &str = "INSERT OR REPLACE INTO checkpoints \
    (seq, head_hash, signed_at_ns, scheme, key_id, public_key, signature) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

/// SQLite stores integers signed; sequence numbers, latencies and versions never reach 2^63.
pub(crate) fn to_i64(v: u64) -> i64 {
    // INVARIANT: sequence numbers count up from 1 and never reach 2^63; latencies are
    // clamped below it in `Entry::new`, policy versions checked in `append`.
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A stored integer read back as the unsigned value it was written from (negatives: 0).
pub(crate) fn to_u64(v: i64) -> u64 {
    v.max(0).cast_unsigned()
}
