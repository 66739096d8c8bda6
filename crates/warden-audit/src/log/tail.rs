//! Checking the end of the chain before extending or signing it.
//!
//! A writer must not silently extend a log someone has edited: new records would link to a
//! broken chain and later checkpoints would vouch for it. Verifying the whole log on every
//! open would make each short-lived process (a hook call) pay for the log's whole history, so
//! a writer checks only what it builds on:
//!
//! - at open, the last [`TAIL_RECORDS`] records (each hashes right and links to the one
//!   before), the head marker in `meta`, and the newest checkpoint (it names a record that is
//!   there and still has the signed hash);
//! - before signing a checkpoint, every record since the previous checkpoint (at most
//!   [`MAX_CHECK_BEFORE_SIGNING`]), so a signature never anchors records nobody checked.

use rusqlite::{Connection, params};

use crate::error::WriteError;
use crate::store::{
    self, Head, MetaHead, RawRow, last_checkpoint, read_head, read_meta_head, row_values, to_i64,
};

/// How many records at the end of the log an open checks.
pub(super) const TAIL_RECORDS: u64 = 8;
/// The most records checked before signing a checkpoint; older unanchored records (a long
/// stretch written without a key) are covered by `warden audit verify` only.
pub(super) const MAX_CHECK_BEFORE_SIGNING: u64 = 100_000;

fn problem(seq: u64, detail: String) -> WriteError {
    WriteError::TamperedTail { seq, detail }
}

/// Walk the records after `from` in order: each must be the next number, hash to its stored
/// hash and link to the one before. Returns the last record's head, or the first problem.
pub(super) fn check_after(conn: &Connection, from: Head) -> Result<Head, WriteError> {
    let sql = format!(
        "SELECT {} FROM records WHERE seq > ?1 ORDER BY seq",
        store::record_select(crate::encoding::Encoding::V2)
    );
    let mut stmt = conn
        .prepare_cached(&sql)
        .map_err(WriteError::sqlite("cannot read the last records"))?;
    let mut rows = stmt
        .query(params![to_i64(from.seq)])
        .map_err(WriteError::sqlite("cannot read the last records"))?;
    let mut prev = from;
    let mut buf = Vec::with_capacity(1024);
    while let Some(row) = rows
        .next()
        .map_err(WriteError::sqlite("cannot read the last records"))?
    {
        let values = row_values(row);
        let raw = RawRow::from_values(&values, crate::encoding::Encoding::V2)
            .map_err(|seq| problem(seq, "a column has the wrong type or length".into()))?;
        let seq = raw.fields.seq;
        if seq != prev.seq + 1 {
            return Err(problem(
                prev.seq + 1,
                format!("records {}..={} are missing", prev.seq + 1, seq - 1),
            ));
        }
        if !raw.hash_ok(&mut buf) {
            return Err(problem(seq, "the record does not match its hash".into()));
        }
        if *raw.fields.prev_hash != prev.hash {
            return Err(problem(
                seq,
                format!("the record does not link to record {}", prev.seq),
            ));
        }
        prev = Head {
            seq,
            hash: *raw.hash,
        };
    }
    Ok(prev)
}

/// The stored head of record `seq` (unverified): a starting point for [`check_after`].
fn stored_head(conn: &Connection, seq: u64) -> Result<Head, WriteError> {
    if seq == 0 {
        return Ok(Head::EMPTY);
    }
    let hash: Vec<u8> = conn
        .query_row(
            "SELECT hash FROM records WHERE seq = ?1",
            [to_i64(seq)],
            |r| r.get(0),
        )
        .map_err(|_| problem(seq, "the record cannot be read".into()))?;
    let hash = <[u8; 32]>::try_from(hash.as_slice())
        .map_err(|_| problem(seq, "the record's hash is not 32 bytes".into()))?;
    Ok(Head { seq, hash })
}

/// The last record as the chain has it, checked against the head marker in `meta`. Run
/// inside every write transaction: cheap (two lookups), and it catches a log emptied or cut
/// short while this writer had it open.
pub(super) fn current_head(conn: &Connection) -> Result<Head, WriteError> {
    let head = read_head(conn)
        .map_err(WriteError::sqlite("cannot read the last record"))?
        .ok_or_else(|| problem(0, "the last record's number or hash is malformed".into()))?;
    match read_meta_head(conn).map_err(WriteError::sqlite("cannot read the head marker"))? {
        MetaHead::Valid(marked) if marked == head => Ok(head),
        MetaHead::Absent if head == Head::EMPTY => Ok(head),
        MetaHead::Valid(marked) => Err(problem(
            head.seq.max(marked.seq),
            format!(
                "the log's head marker names record {} but the last record is {}{}",
                marked.seq,
                head.seq,
                if marked.seq > head.seq {
                    " (records were removed from the end)"
                } else if marked.seq == head.seq {
                    " with another hash (it was replaced)"
                } else {
                    " (records were added without the writer)"
                }
            ),
        )),
        MetaHead::Absent => Err(problem(
            head.seq,
            "the log has records but no head marker".into(),
        )),
        MetaHead::Malformed(v) => Err(problem(
            head.seq,
            format!("the log's head marker is malformed ({v:?})"),
        )),
    }
}

/// The open-time check: the head marker, the last records, the newest checkpoint.
pub(super) fn check_tail(conn: &Connection) -> Result<Head, WriteError> {
    let head = current_head(conn)?;
    let from = stored_head(conn, head.seq.saturating_sub(TAIL_RECORDS))?;
    let checked = check_after(conn, from)?;
    if checked != head {
        return Err(problem(
            head.seq,
            "the chain does not end at the last record".into(),
        ));
    }
    check_newest_checkpoint(conn, head)?;
    Ok(head)
}

/// The newest checkpoint must name a record that is there, with the hash it signed.
fn check_newest_checkpoint(conn: &Connection, head: Head) -> Result<(), WriteError> {
    let Some((cp_seq, cp_hash, _)) =
        last_checkpoint(conn).map_err(WriteError::sqlite("cannot read checkpoints"))?
    else {
        return Ok(());
    };
    if cp_seq > head.seq {
        return Err(problem(
            head.seq + 1,
            format!(
                "checkpoint {cp_seq} names a record past the last one ({}): records were removed from the end",
                head.seq
            ),
        ));
    }
    let at = stored_head(conn, cp_seq)?;
    if cp_hash != at.hash {
        return Err(problem(
            cp_seq,
            format!("record {cp_seq} no longer has the hash checkpoint {cp_seq} signed"),
        ));
    }
    Ok(())
}

/// Check what a new checkpoint at `head` will vouch for: the records since the previous
/// checkpoint (or the last [`MAX_CHECK_BEFORE_SIGNING`] of them), skipping those this writer
/// already checked or wrote itself (`known`: the chain up to it is known good, if the file
/// still has it).
pub(super) fn check_before_signing(
    conn: &Connection,
    head: Head,
    last_checkpoint: Option<(u64, Vec<u8>)>,
    known: Option<Head>,
) -> Result<(), WriteError> {
    let floor = head.seq.saturating_sub(MAX_CHECK_BEFORE_SIGNING);
    let mut from = match last_checkpoint {
        Some((seq, hash)) if seq >= floor && seq <= head.seq => Head {
            seq,
            hash: <[u8; 32]>::try_from(hash.as_slice())
                .map_err(|_| problem(seq, "checkpoint hash is not 32 bytes".into()))?,
        },
        _ => stored_head(conn, floor)?,
    };
    if let Some(known) = known
        && known.seq > from.seq
        && known.seq <= head.seq
        && stored_head(conn, known.seq).is_ok_and(|stored| stored == known)
    {
        from = known;
    }
    let checked = check_after(conn, from)?;
    if checked != head {
        return Err(problem(
            head.seq,
            "the chain does not end at the last record".into(),
        ));
    }
    Ok(())
}
