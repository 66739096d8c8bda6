//! The small tables beside the records: the head marker in `meta`, checkpoints, incidents.
//!
//! The head marker (`meta.head` = `"<seq> <hash hex>"`) is rewritten in the same transaction
//! as every batch of records. It is not signed, but it makes the plain truncations visible: a
//! log emptied, or cut short, by someone who did not also rewrite `meta` disagrees with it.
//! What is signed is the newest checkpoint, written in that same transaction by a writer with
//! a key.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use super::schema::{CHECKPOINT_COLUMNS, to_i64, to_u64};
use crate::encoding::{Encoding, GENESIS_HASH};
use crate::error::AuditError;
use crate::hex::{from_hex, to_hex};
use crate::record::{Checkpoint, Incident};
use crate::timestamp::Timestamp;

/// The end of the chain: the last record's sequence number and hash (0 and zeros when empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head {
    pub seq: u64,
    pub hash: [u8; 32],
}

impl Head {
    pub const EMPTY: Head = Head {
        seq: 0,
        hash: GENESIS_HASH,
    };
}

impl std::fmt::Display for Head {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.seq, to_hex(&self.hash))
    }
}

/// The last record's sequence number and stored hash. `Ok(None)` for a hash that is not 32
/// bytes (a hand edit): the caller reports it.
pub(crate) fn read_head(conn: &Connection) -> rusqlite::Result<Option<Head>> {
    let row: Option<(i64, Vec<u8>)> = conn
        .prepare_cached("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .or_else(|e| match e {
            // A hash of the wrong type: report it as a malformed head, not an SQL failure.
            rusqlite::Error::InvalidColumnType(..) => Ok(Some((-1, Vec::new()))),
            e => Err(e),
        })?;
    Ok(match row {
        None => Some(Head::EMPTY),
        Some((seq, hash)) if seq >= 0 => {
            <[u8; 32]>::try_from(hash.as_slice()).ok().map(|hash| Head {
                seq: to_u64(seq),
                hash,
            })
        }
        Some(_) => None,
    })
}

/// What `meta.head` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MetaHead {
    /// No marker (a version 1 log).
    Absent,
    /// A well-formed marker.
    Valid(Head),
    /// Something that is not `"<seq> <64 hex>"`.
    Malformed(String),
}

pub(crate) fn read_meta_head(conn: &Connection) -> rusqlite::Result<MetaHead> {
    let value: Option<String> = read_meta(conn, "head")?;
    Ok(match value {
        None => MetaHead::Absent,
        Some(v) => {
            let parsed = v.split_once(' ').and_then(|(seq, hash)| {
                Some(Head {
                    seq: seq.parse().ok()?,
                    hash: from_hex::<32>(hash)?,
                })
            });
            match parsed {
                Some(head) => MetaHead::Valid(head),
                None => MetaHead::Malformed(v),
            }
        }
    })
}

pub(crate) fn set_meta_head(conn: &Connection, head: &Head) -> rusqlite::Result<()> {
    conn.prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES ('head', ?1)")?
        .execute([head.to_string()])
        .map(drop)
}

/// The writers' MAC of the newest checkpoint (see `encoding::checkpoint_mac`), if present
/// and well-formed.
pub(crate) fn read_checkpoint_mac(conn: &Connection) -> rusqlite::Result<Option<[u8; 32]>> {
    Ok(read_meta(conn, "checkpoint_mac")?.and_then(|v| from_hex::<32>(&v)))
}

pub(crate) fn set_checkpoint_mac(conn: &Connection, mac: &[u8; 32]) -> rusqlite::Result<()> {
    conn.prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES ('checkpoint_mac', ?1)")?
        .execute([to_hex(mac)])
        .map(drop)
}

pub(crate) fn read_meta(conn: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()
}

/// One `checkpoints` row, selected as [`CHECKPOINT_COLUMNS`].
fn checkpoint_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Checkpoint> {
    Ok(Checkpoint {
        seq: to_u64(r.get(0)?),
        head_hash: r.get(1)?,
        signed_at: Timestamp::from_unix_nanos(r.get(2)?),
        scheme: r.get(3)?,
        key_id: r.get(4)?,
        public_key: r.get(5)?,
        signature: r.get(6)?,
    })
}

/// The newest checkpoint, whole (its signature is checked by the caller).
pub(crate) fn newest_checkpoint(conn: &Connection) -> rusqlite::Result<Option<Checkpoint>> {
    conn.prepare_cached(&format!(
        "SELECT {CHECKPOINT_COLUMNS} FROM checkpoints ORDER BY seq DESC LIMIT 1"
    ))?
    .query_row([], checkpoint_row)
    .optional()
}

/// The sequence number of the newest checkpoint before record `seq` (0: none).
pub(crate) fn checkpoint_before(conn: &Connection, seq: u64) -> rusqlite::Result<u64> {
    conn.prepare_cached("SELECT seq FROM checkpoints WHERE seq < ?1 ORDER BY seq DESC LIMIT 1")?
        .query_row([to_i64(seq)], |r| r.get(0))
        .optional()
        .map(|s| s.map_or(0, to_u64))
}

/// Remove the checkpoint at `seq` (one a newer checkpoint by the same key replaces).
pub(crate) fn delete_checkpoint(conn: &Connection, seq: u64) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM checkpoints WHERE seq = ?1")?
        .execute([to_i64(seq)])
        .map(drop)
}

/// Every checkpoint, in sequence order.
pub(crate) fn read_checkpoints(
    conn: &Connection,
    path: &Path,
) -> Result<Vec<Checkpoint>, AuditError> {
    conn.prepare(&format!(
        "SELECT {CHECKPOINT_COLUMNS} FROM checkpoints ORDER BY seq"
    ))
    .and_then(|mut st| st.query_map([], checkpoint_row)?.collect())
    .map_err(AuditError::sqlite(path, "cannot read checkpoints"))
}

/// Write a note into `incidents`.
pub(crate) fn insert_incident(
    conn: &Connection,
    at_ns: i64,
    kind: &str,
    after_seq: u64,
    lost: u64,
    detail: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO incidents (at_ns, kind, after_seq, lost, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        at_ns,
        kind,
        to_i64(after_seq),
        to_i64(lost),
        detail
    ])
    .map(drop)
}

/// Every incident, oldest first. Version 1 logs noted ranges of sequence numbers; they are
/// read as "after the record before the range, this many lost".
pub(crate) fn read_incidents(
    conn: &Connection,
    path: &Path,
    encoding: Encoding,
) -> Result<Vec<Incident>, AuditError> {
    let sql = match encoding {
        Encoding::V1 => {
            "SELECT at_ns, kind, first_seq - 1, last_seq - first_seq + 1, detail \
             FROM incidents ORDER BY id"
        }
        Encoding::V2 => "SELECT at_ns, kind, after_seq, lost, detail FROM incidents ORDER BY id",
    };
    conn.prepare(sql)
        .and_then(|mut st| {
            st.query_map([], |r| {
                Ok(Incident {
                    at: Timestamp::from_unix_nanos(r.get(0)?),
                    kind: r.get(1)?,
                    after_seq: to_u64(r.get(2)?),
                    lost: to_u64(r.get(3)?),
                    detail: r.get(4)?,
                })
            })?
            .collect()
        })
        .map_err(AuditError::sqlite(path, "cannot read incidents"))
}
