//! Proving a log intact, or naming the first place it is not.
//!
//! `verify` reads one read-only snapshot (so it can run beside live writers), checks every
//! checkpoint's signature (`signatures.rs`), streams the records through the chain walk
//! (`pipeline.rs` feeding `chain.rs`), and then compares the end of the chain with what the
//! file says about its end (the head marker) and, with a pinned key, requires that key to
//! have signed a checkpoint covering the last record.

use std::path::Path;

use ed25519_dalek::VerifyingKey;

use crate::encoding::Encoding;
use crate::error::AuditError;
use crate::hex::to_hex;
use crate::keys::key_id;
use crate::record::Incident;
use crate::store::{self, Head, MetaHead};

mod chain;
mod pipeline;
mod report;
mod signatures;

pub use report::{TamperKind, Tampering, VerifyReport, VerifySummary};
pub(crate) use signatures::valid_with_stored_key;

/// Verify the log at `path`.
///
/// Without `pinned_key`, each checkpoint is checked against the public key stored beside it,
/// which proves only that whoever wrote it held *a* key. With `pinned_key`, every checkpoint
/// must be signed by that key **and** one of them must cover the last record: a log that key
/// never signed, or whose end it did not sign (records after the last checkpoint, or a log
/// cut back to before it and its checkpoints deleted), is not reported intact but
/// [`TamperKind::Unanchored`]. `progress(done, total)` is called now and then with records
/// checked and an estimate of the total.
pub fn verify(
    path: impl AsRef<Path>,
    pinned_key: Option<VerifyingKey>,
    mut progress: impl FnMut(u64, u64),
) -> VerifyReport {
    let path = path.as_ref();
    match run(path, pinned_key.as_ref(), &mut progress) {
        Ok((summary, None)) => VerifyReport::Intact(summary),
        Ok((summary, Some(tampering))) => VerifyReport::Tampered { summary, tampering },
        Err(e) => VerifyReport::Error(e),
    }
}

type Outcome = (VerifySummary, Option<Tampering>);

fn run(
    path: &Path,
    pinned: Option<&VerifyingKey>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Outcome, AuditError> {
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
                "records {}..={} come after the last checkpoint signed by the pinned key {}; they may have been added, or the log cut back, after it was signed (if a writer is running, verify again after its next checkpoint)",
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
