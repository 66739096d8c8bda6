//! Proving a log intact, or naming the first place it is not.
//!
//! `verify` streams the records in sequence order through one prepared statement, recomputes
//! each hash from the stored bytes (no JSON parsing, no allocation per row), checks that each
//! record links to the one before, and compares the chain with the signed checkpoints. It
//! reads through a read-only connection inside one read transaction, so it sees one
//! consistent snapshot even while a writer keeps appending.

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use ed25519_dalek::{Signature, VerifyingKey};
use rusqlite::Row;
use rusqlite::types::ValueRef;
use serde::Serialize;

use crate::encoding::{GENESIS_HASH, RecordFields, SEQ_OFFSET, checkpoint_message};
use crate::error::AuditError;
use crate::keys::{SCHEME_ED25519, key_id};
use crate::log::Gap;
use crate::read::{Checkpoint, read_checkpoints};
use crate::record::to_hex;
use crate::schema::{self, RECORD_COLUMNS};
use crate::timestamp::Timestamp;

/// The outcome of [`verify`]: intact, tampered, or could not tell.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // built once per verification
pub enum VerifyReport {
    /// Every record hashes to its stored hash and links to the one before; every checkpoint
    /// signature is valid and matches the chain.
    Intact(VerifySummary),
    /// The log was changed after it was written.
    Tampered {
        /// What was checked before the first finding.
        summary: VerifySummary,
        /// The first finding, by sequence number.
        tampering: Tampering,
    },
    /// The log could not be read (not an audit log, corrupt file, I/O error).
    Error(AuditError),
}

impl VerifyReport {
    /// The CLI's exit code: 0 intact, 1 tampered, 2 error.
    pub fn exit_code(&self) -> i32 {
        match self {
            VerifyReport::Intact(_) => 0,
            VerifyReport::Tampered { .. } => 1,
            VerifyReport::Error(_) => 2,
        }
    }

    /// Whether the log verified.
    pub fn is_intact(&self) -> bool {
        matches!(self, VerifyReport::Intact(_))
    }

    /// The summary, unless the log could not be read at all.
    pub fn summary(&self) -> Option<&VerifySummary> {
        match self {
            VerifyReport::Intact(s) | VerifyReport::Tampered { summary: s, .. } => Some(s),
            VerifyReport::Error(_) => None,
        }
    }

    /// The finding, if the log was tampered with.
    pub fn tampering(&self) -> Option<&Tampering> {
        match self {
            VerifyReport::Tampered { tampering, .. } => Some(tampering),
            _ => None,
        }
    }
}

/// What a verification saw.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifySummary {
    /// Records checked (up to the first finding, if any).
    pub records: u64,
    /// The first record's sequence number.
    pub first_seq: Option<u64>,
    /// The last checked record's sequence number.
    pub last_seq: Option<u64>,
    /// The last checked record's hash, as hex: the chain head.
    pub head_hash: Option<String>,
    /// Checkpoints whose signature was valid and whose head matched the chain.
    pub checkpoints: u64,
    /// The sequence number of the last such checkpoint.
    pub last_checkpoint: Option<u64>,
    /// Records after the last checkpoint: intact as a chain, but not yet vouched for by a
    /// signature, so a truncation or a rewrite of them could not be detected.
    pub unanchored: u64,
    /// Key ids (see [`crate::key_id`]) that signed the checkpoints.
    pub keys: Vec<String>,
    /// Runs of sequence numbers never committed (buffered-mode crash, failed writes); the
    /// chain links across them, so they are not tampering. At most 1000 are listed.
    pub gaps: Vec<Gap>,
    /// The number of gaps, including those not listed.
    pub gap_count: u64,
    /// The writer's own explanations of gaps and failures, from the `incidents` table. Not
    /// covered by the chain: informative only.
    pub incidents: Vec<Incident>,
}

/// A writer's note about a gap or failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Incident {
    /// When it was written.
    pub at: Timestamp,
    /// `unclean_shutdown` or `write_failed`.
    pub kind: String,
    /// First affected sequence number.
    pub first_seq: u64,
    /// Last affected sequence number.
    pub last_seq: u64,
    /// What happened.
    pub detail: String,
}

/// The first thing found wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tampering {
    /// The first sequence number that can no longer be trusted.
    pub seq: u64,
    /// What kind of change it looks like.
    pub kind: TamperKind,
    /// A sentence for a person.
    pub detail: String,
}

/// What kind of change was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TamperKind {
    /// A record's contents no longer match its hash (or a record was changed and re-hashed,
    /// so the next one no longer links to it).
    Modified,
    /// Records are missing: the chain skips over them, or a checkpoint names one that is gone.
    Deleted,
    /// A record that was not written by the log sits in the chain.
    Inserted,
    /// A record sits at another position than the one it was written at.
    Reordered,
    /// The chain is consistent but differs from what a checkpoint signed: a stretch of
    /// records was rewritten and re-hashed. `seq` is the first record after the last
    /// checkpoint that still matched.
    Rewritten,
    /// A checkpoint's signature does not verify.
    BadSignature,
    /// A checkpoint was signed by another key than the pinned one.
    UntrustedKey,
}

impl TamperKind {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            TamperKind::Modified => "modified",
            TamperKind::Deleted => "deleted",
            TamperKind::Inserted => "inserted",
            TamperKind::Reordered => "reordered",
            TamperKind::Rewritten => "rewritten",
            TamperKind::BadSignature => "bad_signature",
            TamperKind::UntrustedKey => "untrusted_key",
        }
    }
}

impl fmt::Display for TamperKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Tampering {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "first bad record {} ({}): {}",
            self.seq, self.kind, self.detail
        )
    }
}

impl fmt::Display for VerifySummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.first_seq, self.last_seq) {
            (Some(a), Some(b)) => write!(f, "{} records (seq {a}..={b})", self.records)?,
            _ => write!(f, "no records")?,
        }
        match self.last_checkpoint {
            Some(cp) => write!(
                f,
                ", {} checkpoints up to seq {cp} signed by key {}",
                self.checkpoints,
                self.keys.join(", ")
            )?,
            None => write!(f, ", no signed checkpoints")?,
        }
        if self.unanchored > 0 {
            write!(
                f,
                "; {} records after the last checkpoint are unanchored",
                self.unanchored
            )?;
        }
        if self.gap_count > 0 {
            let missing: u64 = self.gaps.iter().map(Gap::count).sum();
            write!(
                f,
                "; {} gaps of never-committed sequence numbers ({missing} numbers listed)",
                self.gap_count
            )?;
        }
        Ok(())
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyReport::Intact(s) => write!(f, "intact: {s}"),
            VerifyReport::Tampered { summary, tampering } => {
                write!(f, "TAMPERED: {tampering}; checked before it: {summary}")
            }
            VerifyReport::Error(e) => write!(f, "error: {e}"),
        }
    }
}

/// Verify the log at `path`.
///
/// With `pinned_key`, every checkpoint must be signed by that key; without it, each
/// checkpoint is checked against the public key stored beside it (which proves only that
/// whoever wrote the checkpoint held *a* key — pin the node key to rule out a re-signed
/// rewrite). `progress(done, total)` is called now and then with records checked and an
/// estimate of the total.
pub fn verify(
    path: impl AsRef<Path>,
    pinned_key: Option<VerifyingKey>,
    mut progress: impl FnMut(u64, u64),
) -> VerifyReport {
    let path = path.as_ref();
    match run(path, pinned_key, &mut progress) {
        Ok((summary, None)) => VerifyReport::Intact(summary),
        Ok((summary, Some(tampering))) => VerifyReport::Tampered { summary, tampering },
        Err(e) => VerifyReport::Error(e),
    }
}

/// Check each checkpoint's signature on its own; return the verified ones (seq, head hash)
/// and the first signature finding.
fn check_signatures(
    checkpoints: &[Checkpoint],
    pinned: Option<&VerifyingKey>,
    keys: &mut Vec<String>,
) -> (Vec<(u64, [u8; 32])>, Option<Tampering>) {
    let mut good = Vec::with_capacity(checkpoints.len());
    // Decoding a public key costs more than a signature check; logs rarely change keys.
    let mut cached: Option<(Vec<u8>, VerifyingKey)> = None;
    for cp in checkpoints {
        let bad = |kind, detail: String| Tampering {
            seq: cp.seq,
            kind,
            detail,
        };
        if cp.scheme != SCHEME_ED25519 {
            return (
                good,
                Some(bad(
                    TamperKind::BadSignature,
                    format!(
                        "checkpoint {} uses unknown signature scheme `{}`",
                        cp.seq, cp.scheme
                    ),
                )),
            );
        }
        let key = match &cached {
            Some((bytes, key)) if *bytes == cp.public_key => *key,
            _ => {
                let parsed = <[u8; 32]>::try_from(cp.public_key.as_slice())
                    .ok()
                    .and_then(|b| VerifyingKey::from_bytes(&b).ok());
                let Some(key) = parsed else {
                    return (
                        good,
                        Some(bad(
                            TamperKind::BadSignature,
                            format!("checkpoint {} has a malformed public key", cp.seq),
                        )),
                    );
                };
                cached = Some((cp.public_key.clone(), key));
                key
            }
        };
        if let Some(pinned) = pinned
            && *pinned != key
        {
            return (
                good,
                Some(bad(
                    TamperKind::UntrustedKey,
                    format!(
                        "checkpoint {} is signed by key {}, not by the pinned key {}",
                        cp.seq,
                        key_id(&key),
                        key_id(pinned)
                    ),
                )),
            );
        }
        let head: Option<[u8; 32]> = cp.head_hash.as_slice().try_into().ok();
        let signature = Signature::from_slice(&cp.signature).ok();
        let valid = match (head, signature) {
            (Some(head), Some(sig)) => {
                let message =
                    checkpoint_message(&cp.scheme, cp.seq, &head, cp.signed_at.unix_nanos());
                key.verify_strict(&message, &sig).is_ok()
            }
            _ => false,
        };
        let Some(head) = head.filter(|_| valid) else {
            return (
                good,
                Some(bad(
                    TamperKind::BadSignature,
                    format!("the signature of checkpoint {} does not verify", cp.seq),
                )),
            );
        };
        let id = key_id(&key);
        if !keys.contains(&id) {
            keys.push(id);
        }
        good.push((cp.seq, head));
    }
    (good, None)
}

/// A record row, borrowed from SQLite, with every column type-checked.
pub(crate) struct RawRow<'a> {
    pub seq: u64,
    ts_ns: i64,
    agent: Option<&'a [u8]>,
    action: &'a [u8],
    tool: Option<&'a [u8]>,
    resource: Option<&'a [u8]>,
    verdict: &'a [u8],
    policy: Option<&'a [u8]>,
    rule: Option<&'a [u8]>,
    reason: &'a [u8],
    args: Option<&'a [u8]>,
    args_digest: &'a [u8; 32],
    latency_ns: i64,
    policy_version: Option<i64>,
    pub prev_hash: &'a [u8; 32],
    pub hash: &'a [u8; 32],
}

impl<'a> RawRow<'a> {
    /// Borrow the columns of a row selected with [`RECORD_COLUMNS`]. `Err(seq)` when a
    /// column has the wrong type or length (a hand edit the `STRICT` table let through).
    pub(crate) fn from_row(row: &'a Row<'_>) -> Result<RawRow<'a>, u64> {
        let seq = match row.get_ref(0) {
            Ok(ValueRef::Integer(s)) if s >= 0 => s.cast_unsigned(),
            _ => 0,
        };
        let get = |i: usize| row.get_ref(i).map_err(|_| seq);
        let int = |i: usize| match get(i)? {
            ValueRef::Integer(v) => Ok(v),
            _ => Err(seq),
        };
        let opt_int = |i: usize| match get(i)? {
            ValueRef::Integer(v) => Ok(Some(v)),
            ValueRef::Null => Ok(None),
            _ => Err(seq),
        };
        let text = |i: usize| match get(i)? {
            ValueRef::Text(t) => Ok(t),
            _ => Err(seq),
        };
        let opt_text = |i: usize| match get(i)? {
            ValueRef::Text(t) => Ok(Some(t)),
            ValueRef::Null => Ok(None),
            _ => Err(seq),
        };
        let hash = |i: usize| match get(i)? {
            ValueRef::Blob(b) => <&[u8; 32]>::try_from(b).map_err(|_| seq),
            _ => Err(seq),
        };
        Ok(RawRow {
            seq,
            ts_ns: int(1)?,
            agent: opt_text(2)?,
            action: text(3)?,
            tool: opt_text(4)?,
            resource: opt_text(5)?,
            verdict: text(6)?,
            policy: opt_text(7)?,
            rule: opt_text(8)?,
            reason: text(9)?,
            args: opt_text(10)?,
            args_digest: hash(11)?,
            latency_ns: int(12)?,
            policy_version: opt_int(13)?,
            prev_hash: hash(14)?,
            hash: hash(15)?,
        })
    }

    /// The hash this row would have if it were record number `seq`.
    pub(crate) fn recompute(&self, seq: u64, buf: &mut Vec<u8>) -> [u8; 32] {
        let mut fields = self.fields();
        fields.seq = seq;
        fields.hash(buf)
    }

    fn fields(&self) -> RecordFields<'a> {
        RecordFields {
            seq: self.seq,
            ts_ns: self.ts_ns,
            agent: self.agent,
            action: self.action,
            tool: self.tool,
            resource: self.resource,
            verdict: self.verdict,
            policy: self.policy,
            rule: self.rule,
            reason: self.reason,
            args: self.args,
            args_digest: self.args_digest,
            // Stored as SQLite's signed integers; the encoding uses the same 64 bits unsigned.
            latency_ns: self.latency_ns.cast_unsigned(),
            policy_version: self.policy_version.map(i64::cast_unsigned),
            prev_hash: self.prev_hash,
        }
    }
}

/// One record as the hashing thread sees it: its encoding lives in the batch's byte buffer.
struct EncodedRow {
    seq: u64,
    /// `None` when a column had the wrong type or length, so there is nothing to hash.
    span: Option<(usize, usize)>,
    prev_hash: [u8; 32],
    hash: [u8; 32],
}

/// Rows handed from the reading thread to the hashing thread, in sequence order.
#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    rows: Vec<EncodedRow>,
}

const BATCH_ROWS: usize = 2048;

impl Batch {
    fn push(&mut self, row: Result<RawRow<'_>, u64>) {
        match row {
            Ok(raw) => {
                let start = self.bytes.len();
                raw.fields().encode_append(&mut self.bytes);
                self.rows.push(EncodedRow {
                    seq: raw.seq,
                    span: Some((start, self.bytes.len())),
                    prev_hash: *raw.prev_hash,
                    hash: *raw.hash,
                });
            }
            Err(seq) => self.rows.push(EncodedRow {
                seq,
                span: None,
                prev_hash: [0; 32],
                hash: [0; 32],
            }),
        }
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.rows.clear();
    }
}

/// A link of the chain as last seen: enough to check the next record against.
#[derive(Clone, Copy)]
struct Link {
    seq: u64,
    hash: [u8; 32],
}

const GENESIS: Link = Link {
    seq: 0,
    hash: GENESIS_HASH,
};

const MAX_LISTED_GAPS: usize = 1000;
const PROGRESS_EVERY: u64 = 1 << 16;

type Outcome = (VerifySummary, Option<Tampering>);

fn run(
    path: &Path,
    pinned: Option<VerifyingKey>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Outcome, AuditError> {
    let conn = schema::open_read_only(path)?;
    let sql_err = |what| AuditError::sqlite(path, what);
    // One read transaction: records and checkpoints from the same snapshot.
    conn.execute_batch("BEGIN")
        .map_err(sql_err("cannot start a read transaction"))?;

    let mut summary = VerifySummary {
        incidents: read_incidents(&conn, path)?,
        ..VerifySummary::default()
    };

    let checkpoints = read_checkpoints(&conn, path)?;
    let (anchors, signature_finding) =
        check_signatures(&checkpoints, pinned.as_ref(), &mut summary.keys);
    // Findings are reported in sequence order: the scan may stop at a bad checkpoint.
    let stop_at = signature_finding.as_ref().map_or(u64::MAX, |t| t.seq);

    let (lo, hi): (Option<i64>, Option<i64>) = conn
        .query_row("SELECT min(seq), max(seq) FROM records", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .map_err(sql_err("cannot read the record range"))?;
    let total = match (lo, hi) {
        (Some(lo), Some(hi)) => (hi - lo + 1).max(0).cast_unsigned(),
        _ => 0,
    };
    progress(0, total);

    let mut stmt = conn
        .prepare(&format!(
            "SELECT {RECORD_COLUMNS} FROM records ORDER BY seq"
        ))
        .map_err(sql_err("cannot read records"))?;
    let mut rows = stmt.query([]).map_err(sql_err("cannot read records"))?;

    // Hashing is half the work, so it runs on a second thread: this one steps SQLite and
    // lays out the encodings; the other hashes them and walks the chain in order.
    let stop = AtomicBool::new(false);
    let (full_tx, full_rx) = mpsc::sync_channel::<Batch>(2);
    let (empty_tx, empty_rx) = mpsc::channel::<Batch>();
    let (read_result, scan, finding) = std::thread::scope(|s| {
        let stop = &stop;
        let anchors = &anchors;
        let walker = s.spawn(move || {
            let mut scan = Scan::new(anchors, summary);
            for batch in full_rx {
                for row in &batch.rows {
                    if let Some(t) = scan.step(row, &batch.bytes) {
                        stop.store(true, Ordering::Relaxed);
                        return (scan, Some(t));
                    }
                }
                let _ = empty_tx.send(batch);
            }
            let t = scan.resolve_suspect(None);
            (scan, t)
        });
        let read_result = (|| -> Result<(), AuditError> {
            let mut batch = Batch::default();
            let mut read = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let row = match rows.next() {
                    Ok(Some(row)) => row,
                    Ok(None) => break,
                    Err(e) => {
                        return Err(AuditError::Corrupt {
                            path: path.to_path_buf(),
                            detail: format!("cannot read the records after {read} rows: {e}"),
                        });
                    }
                };
                let raw = RawRow::from_row(row);
                let seq = raw.as_ref().map_or_else(|s| *s, |r| r.seq);
                if seq > stop_at {
                    break;
                }
                batch.push(raw);
                read += 1;
                if batch.rows.len() == BATCH_ROWS {
                    let next = empty_rx.try_recv().unwrap_or_default();
                    if full_tx.send(std::mem::replace(&mut batch, next)).is_err() {
                        break; // the walker stopped at a finding
                    }
                    batch.clear();
                }
                if read.is_multiple_of(PROGRESS_EVERY) {
                    progress(read, total);
                }
            }
            if !batch.rows.is_empty() {
                let _ = full_tx.send(batch);
            }
            Ok(())
        })();
        drop(full_tx);
        let (scan, finding) = match walker.join() {
            Ok(r) => r,
            Err(p) => std::panic::resume_unwind(p),
        };
        (read_result, scan, finding)
    });
    drop(rows);
    drop(stmt);
    read_result?;
    let mut finding = finding;
    if finding.is_none() {
        finding = scan.check_remaining_anchors();
    }
    // The earlier of a record finding and a checkpoint finding is the first bad place.
    let finding = match (finding, signature_finding) {
        (Some(a), Some(b)) => Some(if b.seq < a.seq { b } else { a }),
        (a, b) => a.or(b),
    };
    let _ = conn.execute_batch("COMMIT");
    let last_anchor = scan.last_anchor;
    let head = scan.prev;
    let mut summary = scan.summary;
    progress(summary.records, total.max(summary.records));
    summary.head_hash = (head.seq > 0).then(|| to_hex(&head.hash));
    summary.checkpoints = anchors
        .iter()
        .take_while(|(s, _)| *s <= last_anchor)
        .count() as u64;
    summary.last_checkpoint = (last_anchor > 0).then_some(last_anchor);
    Ok((summary, finding))
}

/// The chain walk's state.
struct Scan<'a> {
    prev: Link,
    prev_prev: Option<Link>,
    /// A record whose hash did not match, held back one row: if the next record links to
    /// the one *before* it, it was inserted rather than modified.
    suspect: Option<(Tampering, Link)>,
    anchors: &'a [(u64, [u8; 32])],
    next_anchor: usize,
    last_anchor: u64,
    buf: Vec<u8>,
    summary: VerifySummary,
}

impl<'a> Scan<'a> {
    fn new(anchors: &'a [(u64, [u8; 32])], summary: VerifySummary) -> Self {
        Scan {
            prev: GENESIS,
            prev_prev: None,
            suspect: None,
            anchors,
            next_anchor: 0,
            last_anchor: 0,
            buf: Vec::with_capacity(1024),
            summary,
        }
    }

    /// The hash of `r` as if written at position `seq`.
    fn rehash(&mut self, r: &EncodedRow, bytes: &[u8], seq: u64) -> Option<[u8; 32]> {
        let (start, end) = r.span?;
        let encoded = &bytes[start..end];
        if seq == r.seq {
            return Some(*blake3::hash(encoded).as_bytes());
        }
        self.buf.clear();
        self.buf.extend_from_slice(encoded);
        self.buf[SEQ_OFFSET..SEQ_OFFSET + 8].copy_from_slice(&seq.to_le_bytes());
        Some(*blake3::hash(&self.buf).as_bytes())
    }

    fn step(&mut self, r: &EncodedRow, bytes: &[u8]) -> Option<Tampering> {
        if let Some(t) = self.resolve_suspect(Some(r)) {
            return Some(t);
        }
        if r.span.is_none() {
            return Some(Tampering {
                seq: r.seq,
                kind: TamperKind::Modified,
                detail: format!("record {} has a column of the wrong type or length", r.seq),
            });
        }
        let content_ok = self.rehash(r, bytes, r.seq) == Some(r.hash);
        let link_ok = r.prev_hash == self.prev.hash;
        if self.prev.seq > 0 && r.hash == self.prev.hash {
            return Some(Tampering {
                seq: r.seq,
                kind: TamperKind::Inserted,
                detail: format!("record {} is a copy of record {}", r.seq, self.prev.seq),
            });
        }
        // An authentic record (as written, or renumbered by one to make room) that links to
        // the record two back means the one in between does not belong.
        if !link_ok
            && let Some(pp) = self.prev_prev
            && r.prev_hash == pp.hash
            && (content_ok || self.rehash(r, bytes, r.seq.wrapping_sub(1)) == Some(r.hash))
        {
            return Some(Tampering {
                seq: self.prev.seq,
                kind: TamperKind::Inserted,
                detail: format!(
                    "record {} is not part of the chain: record {} links to record {}",
                    self.prev.seq, r.seq, pp.seq
                ),
            });
        }
        if !content_ok {
            // Written at a neighbouring position and moved here?
            for other in [r.seq.wrapping_sub(1), r.seq + 1] {
                if self.rehash(r, bytes, other) == Some(r.hash) {
                    return Some(Tampering {
                        seq: r.seq,
                        kind: TamperKind::Reordered,
                        detail: format!("the record at {} was written as record {other}", r.seq),
                    });
                }
            }
            let t = Tampering {
                seq: r.seq,
                kind: TamperKind::Modified,
                detail: format!("record {} does not match its hash", r.seq),
            };
            let before = self.prev;
            self.advance(r);
            self.suspect = Some((t, before));
            return None;
        }
        if !link_ok {
            if r.seq > self.prev.seq + 1 {
                let first = self.prev.seq + 1;
                return Some(Tampering {
                    seq: first,
                    kind: TamperKind::Deleted,
                    detail: format!(
                        "records {first}..={} are missing: record {} does not link to record {}",
                        r.seq - 1,
                        r.seq,
                        self.prev.seq
                    ),
                });
            }
            let (seq, detail) = if self.prev.seq == 0 {
                (r.seq, format!("record {} does not start the chain", r.seq))
            } else {
                (
                    self.prev.seq,
                    format!(
                        "record {} was changed and re-hashed: record {} no longer links to it",
                        self.prev.seq, r.seq
                    ),
                )
            };
            return Some(Tampering {
                seq,
                kind: TamperKind::Modified,
                detail,
            });
        }
        if r.seq > self.prev.seq + 1 {
            self.summary.gap_count += 1;
            if self.summary.gaps.len() < MAX_LISTED_GAPS {
                self.summary.gaps.push(Gap {
                    first_seq: self.prev.seq + 1,
                    last_seq: r.seq - 1,
                });
            }
        }
        // Checkpoints at or before this record.
        while let Some(&(cp_seq, cp_hash)) = self.anchors.get(self.next_anchor) {
            if cp_seq > r.seq {
                break;
            }
            if cp_seq < r.seq {
                return Some(Tampering {
                    seq: cp_seq,
                    kind: TamperKind::Deleted,
                    detail: format!("checkpoint {cp_seq} names a record that is not in the log"),
                });
            }
            if cp_hash != r.hash {
                let first = self.last_anchor + 1;
                return Some(Tampering {
                    seq: first,
                    kind: TamperKind::Rewritten,
                    detail: format!(
                        "the chain does not match signed checkpoint {cp_seq}: records {first}..={cp_seq} were rewritten"
                    ),
                });
            }
            self.last_anchor = cp_seq;
            self.summary.unanchored = 0;
            self.next_anchor += 1;
        }
        self.advance(r);
        if self.last_anchor != r.seq {
            self.summary.unanchored += 1;
        }
        None
    }

    fn advance(&mut self, r: &EncodedRow) {
        self.prev_prev = Some(self.prev);
        self.prev = Link {
            seq: r.seq,
            hash: r.hash,
        };
        self.summary.records += 1;
        self.summary.first_seq.get_or_insert(r.seq);
        self.summary.last_seq = Some(r.seq);
    }

    /// Decide about a held-back record now that the next row (or the end) is known.
    fn resolve_suspect(&mut self, next: Option<&EncodedRow>) -> Option<Tampering> {
        let (mut t, before) = self.suspect.take()?;
        if let Some(n) = next
            && n.prev_hash == before.hash
        {
            t.kind = TamperKind::Inserted;
            t.detail = format!(
                "record {} is not part of the chain: record {} links to record {}",
                t.seq, n.seq, before.seq
            );
        }
        Some(t)
    }

    /// Checkpoints past the last record mean records were removed from the end.
    fn check_remaining_anchors(&self) -> Option<Tampering> {
        let &(cp_seq, _) = self.anchors.get(self.next_anchor)?;
        let first = self.prev.seq + 1;
        Some(Tampering {
            seq: first,
            kind: TamperKind::Deleted,
            detail: format!(
                "checkpoint {cp_seq} names a record past the end of the log: records from {first} on were removed"
            ),
        })
    }
}

fn read_incidents(conn: &rusqlite::Connection, path: &Path) -> Result<Vec<Incident>, AuditError> {
    conn.prepare("SELECT at_ns, kind, first_seq, last_seq, detail FROM incidents ORDER BY id")
        .and_then(|mut st| {
            st.query_map([], |r| {
                Ok(Incident {
                    at: Timestamp::from_unix_nanos(r.get(0)?),
                    kind: r.get(1)?,
                    first_seq: r.get::<_, i64>(2)?.max(0).cast_unsigned(),
                    last_seq: r.get::<_, i64>(3)?.max(0).cast_unsigned(),
                    detail: r.get(4)?,
                })
            })?
            .collect()
        })
        .map_err(AuditError::sqlite(path, "cannot read incidents"))
}
