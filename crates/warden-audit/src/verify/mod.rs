//! Proving a log intact, or naming the first place it is not.
//!
//! `verify` reads one read-only snapshot (so it can run beside live writers), checks every
//! checkpoint's signature (`signatures.rs`), streams the records through the chain walk
//! (`pipeline.rs` feeding `chain.rs`), and then compares the end of the chain with what the
//! file says about its end (the head marker), with a remembered head requires the log to
//! still hold that record, and with a pinned key requires that key to have signed a
//! checkpoint covering the last record.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use ed25519_dalek::VerifyingKey;

use crate::encoding::Encoding;
use crate::error::AuditError;
use crate::hex::{from_hex, to_hex};
use crate::keys::key_id;
use crate::record::Incident;
use crate::store::{self, Head, MetaHead};

mod chain;
mod pipeline;
mod report;
mod signatures;

pub use report::{TamperKind, Tampering, VerifyReport, VerifySummary};

/// A record seen in the log before, as `SEQ:HASH` (the hash as 64 hex digits): the end a
/// previous `verify` reported, or a checkpoint copied elsewhere. A log cut back to an earlier
/// end, with its later checkpoints and head marker rewound too, is consistent and signed
/// up to its (new) end; only a record remembered outside the file shows it was longer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownHead {
    /// The record's sequence number.
    pub seq: u64,
    /// Its hash.
    pub hash: [u8; 32],
}

/// Why a `SEQ:HASH` string is not a [`KnownHead`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KnownHeadError(String);

impl FromStr for KnownHead {
    type Err = KnownHeadError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |what: &str| {
            KnownHeadError(format!(
                "{what}: expected SEQ:HASH (a record number, a colon, its hash as 64 hex digits), got {s:?}"
            ))
        };
        let (seq, hash) = s.trim().split_once(':').ok_or_else(|| bad("no colon"))?;
        let seq: u64 = seq.parse().map_err(|_| bad("not a record number"))?;
        if seq == 0 {
            return Err(bad("records are numbered from 1"));
        }
        let hash = from_hex::<32>(hash).ok_or_else(|| bad("not 64 hex digits"))?;
        Ok(KnownHead { seq, hash })
    }
}

impl fmt::Display for KnownHead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.seq, to_hex(&self.hash))
    }
}

/// What [`verify_with`] checks beyond the file itself. Build it from `default()`.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct VerifyOptions {
    /// The node's public key: every checkpoint must be signed by it, and one must cover the
    /// last record (see [`verify`]).
    pub pinned_key: Option<VerifyingKey>,
    /// A record the log must still hold, unchanged: otherwise it is reported as
    /// [`TamperKind::Deleted`] (the log now ends before it) or [`TamperKind::Rewritten`]
    /// (the record there has another hash).
    pub expect_head: Option<KnownHead>,
}

/// Verify the log at `path`.
///
/// Without `pinned_key`, each checkpoint is checked against the public key stored beside it,
/// which proves only that whoever wrote it held *a* key. With `pinned_key`, every checkpoint
/// must be signed by that key **and** one of them must cover the last record: a log that key
/// never signed, or whose end it did not sign (records after the last checkpoint, or a log
/// cut back to before it and its checkpoints deleted), is not reported intact but
/// [`TamperKind::Unanchored`]. `progress(done, total)` is called now and then with records
/// checked and an estimate of the total. [`verify_with`] also takes a remembered head.
pub fn verify(
    path: impl AsRef<Path>,
    pinned_key: Option<VerifyingKey>,
    progress: impl FnMut(u64, u64),
) -> VerifyReport {
    let options = VerifyOptions {
        pinned_key,
        expect_head: None,
    };
    verify_with(path, &options, progress)
}

/// [`verify`] with [`VerifyOptions`]: a pinned key, and a record the log must still hold.
pub fn verify_with(
    path: impl AsRef<Path>,
    options: &VerifyOptions,
    mut progress: impl FnMut(u64, u64),
) -> VerifyReport {
    let path = path.as_ref();
    match run(path, options, &mut progress) {
        Ok((summary, None)) => VerifyReport::Intact(summary),
        Ok((summary, Some(tampering))) => VerifyReport::Tampered { summary, tampering },
        Err(e) => VerifyReport::Error(e),
    }
}

type Outcome = (VerifySummary, Option<Tampering>);

fn run(
    path: &Path,
    options: &VerifyOptions,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Outcome, AuditError> {
    let pinned = options.pinned_key.as_ref();
    let store = store::open_read_only(path)?;
    let conn = &store.conn;
    let sql_err = |what| AuditError::sqlite(path, what);
    // One read transaction: records, checkpoints and the head marker from one snapshot.
    conn.execute_batch("BEGIN")
        .map_err(sql_err("cannot start a read transaction"))?;

    let mut summary = VerifySummary {
        incidents: store::read_incidents(conn, path, store.encoding)?,
        ..VerifySummary::default()
    };
    let checkpoints = store::read_checkpoints(conn, path)?;
    let (anchors, signature_finding) =
        signatures::check_signatures(&checkpoints, pinned, &mut summary.keys);
    let (lo, hi): (Option<i64>, Option<i64>) = conn
        .query_row("SELECT min(seq), max(seq) FROM records", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .map_err(sql_err("cannot read the record range"))?;
    let total = match (lo, hi) {
        (Some(lo), Some(hi)) => store::to_u64(hi - lo + 1),
        _ => 0,
    };
    progress(0, total);

    let mut stmt = conn
        .prepare(&format!(
            "SELECT {} FROM records ORDER BY seq",
            store::record_select(store.encoding)
        ))
        .map_err(sql_err("cannot read records"))?;
    let mut rows = stmt.query([]).map_err(sql_err("cannot read records"))?;
    let walk = pipeline::Walk {
        path,
        encoding: store.encoding,
        anchors: &anchors,
        // Findings are reported in sequence order: the scan may stop at a bad checkpoint.
        stop_at: signature_finding.as_ref().map_or(u64::MAX, |t| t.seq),
        total,
    };
    let (scan, finding) = pipeline::walk(&walk, &mut rows, summary, progress)?;
    drop(rows);
    drop(stmt);
    let mut finding = finding.or_else(|| scan.check_remaining_anchors());
    // The earlier of a record finding and a checkpoint finding is the first bad place.
    finding = match (finding, signature_finding) {
        (Some(a), Some(b)) => Some(if b.seq < a.seq { b } else { a }),
        (a, b) => a.or(b),
    };
    let end = Head {
        seq: scan.prev.seq,
        hash: scan.prev.hash,
    };
    let last_anchor = scan.last_anchor;
    let mut summary = scan.summary;
    if finding.is_none() {
        finding = match store.encoding {
            Encoding::V2 => check_head_marker(conn, end, path)?,
            Encoding::V1 => check_v1_next_seq(conn, end, &summary.incidents, path)?,
        };
    }
    if finding.is_none()
        && let Some(known) = options.expect_head
    {
        finding = check_known_head(conn, end, known, path)?;
    }
    let _ = conn.execute_batch("COMMIT");
    progress(summary.records, total.max(summary.records));
    summary.head_hash = (end.seq > 0).then(|| to_hex(&end.hash));
    summary.checkpoints = anchors
        .iter()
        .take_while(|(s, _)| *s <= last_anchor)
        .count() as u64;
    summary.last_checkpoint = (last_anchor > 0).then_some(last_anchor);
    if finding.is_none()
        && let Some(pinned) = pinned
    {
        finding = unanchored(&summary, end, pinned);
    }
    Ok((summary, finding))
}

/// The head marker, rewritten with every commit, must name the last record.
fn check_head_marker(
    conn: &rusqlite::Connection,
    end: Head,
    path: &Path,
) -> Result<Option<Tampering>, AuditError> {
    let marker = store::read_meta_head(conn)
        .map_err(AuditError::sqlite(path, "cannot read the head marker"))?;
    let t = |seq, kind, detail| Some(Tampering { seq, kind, detail });
    Ok(match marker {
        MetaHead::Valid(m) if m == end => None,
        MetaHead::Absent if end.seq == 0 => None,
        MetaHead::Valid(m) if m.seq > end.seq => t(
            end.seq + 1,
            TamperKind::Deleted,
            format!(
                "the log's head marker says it ends at record {}, but the last record is {}: records from {} on were removed",
                m.seq,
                end.seq,
                end.seq + 1
            ),
        ),
        MetaHead::Valid(m) if m.seq < end.seq => t(
            m.seq + 1,
            TamperKind::Inserted,
            format!(
                "the log's head marker says it ends at record {}, but records up to {} follow: they were added without a writer",
                m.seq, end.seq
            ),
        ),
        MetaHead::Valid(_) => t(
            end.seq,
            TamperKind::Modified,
            format!(
                "record {} is not the record the log's head marker names (its hash differs)",
                end.seq
            ),
        ),
        MetaHead::Absent => t(
            end.seq,
            TamperKind::Modified,
            "the log has records but its head marker is missing".to_string(),
        ),
        MetaHead::Malformed(v) => t(
            end.seq,
            TamperKind::Modified,
            format!("the log's head marker is malformed ({v:?})"),
        ),
    })
}

/// The log must still hold the remembered record, with its hash.
fn check_known_head(
    conn: &rusqlite::Connection,
    end: Head,
    known: KnownHead,
    path: &Path,
) -> Result<Option<Tampering>, AuditError> {
    if known.seq > end.seq {
        return Ok(Some(Tampering {
            seq: end.seq + 1,
            kind: TamperKind::Deleted,
            detail: format!(
                "the log ends at record {}, but record {} was seen in it before: records {}..={} were removed (cut back with their checkpoints)",
                end.seq,
                known.seq,
                end.seq + 1,
                known.seq
            ),
        }));
    }
    let hash: Option<Vec<u8>> = conn
        .query_row(
            "SELECT hash FROM records WHERE seq = ?1",
            [store::to_i64(known.seq)],
            |r| r.get(0),
        )
        .map(Some)
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            e => Err(e),
        })
        .map_err(AuditError::sqlite(path, "cannot read a record"))?;
    Ok(match hash {
        Some(h) if h == known.hash => None,
        Some(h) => Some(Tampering {
            seq: known.seq,
            kind: TamperKind::Rewritten,
            detail: format!(
                "record {} has hash {}, not the {} seen before: the log was rewritten at or before it",
                known.seq,
                to_hex(&h),
                to_hex(&known.hash)
            ),
        }),
        None => Some(Tampering {
            seq: known.seq,
            kind: TamperKind::Deleted,
            detail: format!(
                "record {} was seen in the log before and is gone",
                known.seq
            ),
        }),
    })
}

/// Version 1 logs note, at a clean close, where numbering resumes. Numbers missing at the
/// end that no incident explains were removed.
fn check_v1_next_seq(
    conn: &rusqlite::Connection,
    end: Head,
    incidents: &[Incident],
    path: &Path,
) -> Result<Option<Tampering>, AuditError> {
    let next: Option<u64> = store::read_meta(conn, "next_seq")
        .map_err(AuditError::sqlite(path, "cannot read the meta table"))?
        .and_then(|v| v.parse().ok());
    let Some(next) = next.filter(|&n| n > end.seq + 1) else {
        return Ok(None);
    };
    let last_missing = next - 1;
    let explained = incidents
        .iter()
        .any(|i| i.after_seq <= end.seq && i.after_seq + i.lost >= last_missing);
    Ok((!explained).then(|| Tampering {
        seq: end.seq + 1,
        kind: TamperKind::Deleted,
        detail: format!(
            "the log was closed after record {last_missing}, but the last record is {}: records from {} on were removed",
            end.seq,
            end.seq + 1
        ),
    }))
}

/// With a pinned key, the last record must be covered by a checkpoint that key signed.
fn unanchored(summary: &VerifySummary, end: Head, pinned: &VerifyingKey) -> Option<Tampering> {
    let anchored = summary.last_checkpoint.unwrap_or(0);
    if end.seq > 0 && anchored == end.seq {
        return None;
    }
    let (seq, detail) = if end.seq == 0 {
        (
            1,
            format!(
                "the log has no records, so the pinned key {} vouches for nothing in it",
                key_id(pinned)
            ),
        )
    } else if anchored == 0 {
        (
            summary.first_seq.unwrap_or(1),
            format!(
                "no checkpoint signed by the pinned key {} covers records {}..={}: this key never signed this log",
                key_id(pinned),
                summary.first_seq.unwrap_or(1),
                end.seq
            ),
        )
    } else {
        (
            anchored + 1,
            format!(
                "records {}..={} come after the last checkpoint signed by the pinned key {}: writers sign a checkpoint with every commit, so they were added without the key, or the log was cut back and its later checkpoints removed (or an older Warden that signed on a schedule stopped without signing them)",
                anchored + 1,
                end.seq,
                key_id(pinned)
            ),
        )
    };
    Some(Tampering {
        seq,
        kind: TamperKind::Unanchored,
        detail,
    })
}
