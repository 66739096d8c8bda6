//! Checking the end of the log before extending it.
//!
//! A writer must never vouch for records it cannot vouch for: every checkpoint it signs covers
//! the whole chain before it, so signing after records someone slipped in (or after a chain
//! someone cut back) would launder them. Every honest writer with a key therefore signs a
//! checkpoint over each batch in the same transaction as the batch (see `writer.rs`), and so
//! leaves no record unsigned behind it, even when it is killed (the batch and its checkpoint
//! commit together or not at all). That makes the end of an honest log easy to recognise: the
//! newest checkpoint covers exactly the last record and is signed by the log's key. Anything
//! else at the start of a transaction is refused ([`WriteError::TamperedTail`]):
//!
//! - the head marker in `meta` must name the last record (a plain cut or an emptied log);
//! - the record this writer itself last committed or checked must still be there with the
//!   same hash (a cut back to an earlier, consistent, signed state, made while it was open);
//! - the newest checkpoint must cover the last record, name its hash, and be signed by this
//!   writer's key (records after it were added without the key, or are a torn write of a
//!   writer that did not sign with every commit).
//!
//! Each is a few indexed lookups; the signature is checked only when the newest checkpoint is
//! not one this writer already signed or checked. At open, the last [`TAIL_RECORDS`] records
//! are also re-hashed (each matches its hash and links to the one before). Verifying the whole
//! log is `verify`'s job, not every short-lived process's.
//!
//! What no writer can see: a log cut back, before it opened, to an earlier end that was
//! itself consistent and signed (records, their checkpoints and the head marker all rewound
//! together). Only something kept outside the file catches that (a remembered head,
//! `VerifyOptions::expect_head`).

use ed25519_dalek::VerifyingKey;
use rusqlite::{Connection, params};

use crate::error::WriteError;
use crate::keys::key_id;
use crate::record::Checkpoint;
use crate::store::{
    self, Head, MetaHead, RawRow, newest_checkpoint, read_checkpoint_mac, read_head,
    read_meta_head, row_values, to_i64,
};

/// How many records at the end of the log an open re-hashes.
pub(super) const TAIL_RECORDS: u64 = 8;

fn problem(seq: u64, detail: String) -> WriteError {
    WriteError::TamperedTail { seq, detail }
}

/// Walk the records after `from` in order: each must be the next number, hash to its stored
/// hash and link to the one before. Returns the last record's head, or the first problem.
fn check_after(conn: &Connection, from: Head) -> Result<Head, WriteError> {
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

/// The stored hash of record `seq` (unverified), or `None` when there is no such record.
fn stored_head(conn: &Connection, seq: u64) -> Result<Option<Head>, WriteError> {
    if seq == 0 {
        return Ok(Some(Head::EMPTY));
    }
    let hash: Option<Vec<u8>> = conn
        .prepare_cached("SELECT hash FROM records WHERE seq = ?1")
        .and_then(|mut st| {
            st.query_row([to_i64(seq)], |r| r.get(0))
                .map(Some)
                .or_else(|e| match e {
                    rusqlite::Error::QueryReturnedNoRows => Ok(None),
                    e => Err(e),
                })
        })
        .map_err(|_| problem(seq, "the record cannot be read".into()))?;
    hash.map(|hash| {
        <[u8; 32]>::try_from(hash.as_slice())
            .map(|hash| Head { seq, hash })
            .map_err(|_| problem(seq, "the record's hash is not 32 bytes".into()))
    })
    .transpose()
}

/// The last record as the chain has it, checked against the head marker in `meta`: a log
/// emptied, or cut short, without rewriting the marker.
fn current_head(conn: &Connection) -> Result<Head, WriteError> {
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

/// The record this writer last committed (or found at the end when it checked) must still be
/// in the file, unchanged: otherwise the log was cut back or rewritten behind its back.
fn check_remembered(conn: &Connection, remembered: Head, head: Head) -> Result<(), WriteError> {
    if remembered.seq == 0 {
        return Ok(());
    }
    let found = if remembered.seq == head.seq {
        Some(head)
    } else if remembered.seq > head.seq {
        None
    } else {
        stored_head(conn, remembered.seq)?
    };
    match found {
        Some(found) if found == remembered => Ok(()),
        Some(_) => Err(problem(
            remembered.seq,
            format!(
                "record {} is no longer the record this writer committed or checked there (its hash changed): the log was rewritten",
                remembered.seq
            ),
        )),
        None => Err(problem(
            head.seq + 1,
            format!(
                "record {} that this writer committed or checked is gone and the log now ends at record {}: records {}..={} were removed (with their checkpoints)",
                remembered.seq,
                head.seq,
                head.seq + 1,
                remembered.seq
            ),
        )),
    }
}

/// The end of the log as a writer found it.
pub(super) struct End {
    /// The last record.
    pub head: Head,
    /// The newest checkpoint, which covers `head` exactly (`None`: the log is empty, or the
    /// writer has no key and the log was never signed). Its signature is checked separately
    /// ([`check_signer`]), because the key may not be loaded yet at open.
    pub anchor: Option<Checkpoint>,
    /// The MAC the writer that signed `anchor` stored beside it (`meta.checkpoint_mac`).
    pub mac: Option<[u8; 32]>,
}

/// Everything a writer checks at the start of a transaction except the checkpoint's
/// signature: the head marker, the remembered record, and that the newest checkpoint covers
/// exactly the last record. A writer without a key (`keyed = false`) must not extend a log
/// that has checkpoints: its records would be covered by none, and every writer with the key
/// would then refuse the log.
pub(super) fn check_end(
    conn: &Connection,
    keyed: bool,
    remembered: Head,
) -> Result<End, WriteError> {
    let head = current_head(conn)?;
    check_remembered(conn, remembered, head)?;
    let newest = newest_checkpoint(conn).map_err(WriteError::sqlite("cannot read checkpoints"))?;
    if !keyed {
        return match newest {
            None => Ok(End {
                head,
                anchor: None,
                mac: None,
            }),
            Some(cp) => Err(WriteError::KeyRequired {
                key_id: cp
                    .stored_key()
                    .map_or_else(|| cp.key_id.clone(), |k| key_id(&k)),
            }),
        };
    }
    let Some(cp) = newest else {
        if head.seq == 0 {
            return Ok(End {
                head,
                anchor: None,
                mac: None,
            });
        }
        return Err(problem(
            1,
            format!(
                "records 1..={} are covered by no checkpoint: no writer holding a signing key wrote them",
                head.seq
            ),
        ));
    };
    if cp.seq > head.seq {
        return Err(problem(
            head.seq + 1,
            format!(
                "checkpoint {} names a record past the last one ({}): records were removed from the end",
                cp.seq, head.seq
            ),
        ));
    }
    if cp.seq < head.seq {
        return Err(problem(
            cp.seq + 1,
            format!(
                "records {}..={} come after the newest checkpoint ({}), but every writer signs a checkpoint with each commit: they were added without the signing key (or left unsigned by an older Warden that signed on a schedule)",
                cp.seq + 1,
                head.seq,
                cp.seq
            ),
        ));
    }
    if cp.head_hash != head.hash {
        return Err(problem(
            cp.seq,
            format!(
                "record {} no longer has the hash checkpoint {} signed",
                cp.seq, cp.seq
            ),
        ));
    }
    let mac =
        read_checkpoint_mac(conn).map_err(WriteError::sqlite("cannot read the meta table"))?;
    Ok(End {
        head,
        anchor: Some(cp),
        mac,
    })
}

/// The newest checkpoint must be signed by this writer's key: a checkpoint anyone can write
/// (another key, a copied signature) vouches for nothing. `trusted` is the last checkpoint
/// this writer signed or checked; the same row again is not checked twice, and a newly checked
/// one replaces it. `mac_ok`: the MAC stored beside it, which only holders of the key can
/// compute, matches it (see `encoding::checkpoint_mac`), so the signature need not be
/// verified: another writer with the same key wrote it.
pub(super) fn check_signer(
    anchor: &Checkpoint,
    key: &VerifyingKey,
    mac_ok: bool,
    trusted: &mut Option<Checkpoint>,
) -> Result<(), WriteError> {
    if trusted.as_ref() == Some(anchor) {
        return Ok(());
    }
    if anchor.public_key != key.as_bytes() {
        let signer = anchor
            .stored_key()
            .map_or_else(|| "an invalid key".to_string(), |k| key_id(&k));
        return Err(problem(
            anchor.seq,
            format!(
                "checkpoint {} is signed by key {signer}, not by this writer's key {}: this writer cannot vouch for the records it covers",
                anchor.seq,
                key_id(key)
            ),
        ));
    }
    if !mac_ok && anchor.signed_head(key).is_none() {
        return Err(problem(
            anchor.seq,
            format!(
                "the signature of checkpoint {} does not verify with this writer's key",
                anchor.seq
            ),
        ));
    }
    *trusted = Some(anchor.clone());
    Ok(())
}

/// The open-time check: [`check_end`] (nothing remembered yet), and the last
/// [`TAIL_RECORDS`] records each hash right and link to the one before.
pub(super) fn check_tail(conn: &Connection, keyed: bool) -> Result<End, WriteError> {
    let end = check_end(conn, keyed, Head::EMPTY)?;
    let from_seq = end.head.seq.saturating_sub(TAIL_RECORDS);
    let from = stored_head(conn, from_seq)?
        .ok_or_else(|| problem(from_seq, "the record cannot be read".into()))?;
    let checked = check_after(conn, from)?;
    if checked != end.head {
        return Err(problem(
            end.head.seq,
            "the chain does not end at the last record".into(),
        ));
    }
    Ok(end)
}
