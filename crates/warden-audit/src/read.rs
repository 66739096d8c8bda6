//! Reading records back: filtered queries for people, and a streaming JSON Lines export for
//! other systems. Both open the log read-only, so they are safe beside a running writer.

use std::io::{BufWriter, Write};
use std::path::Path;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, Row};
use serde::Serialize;
use warden_core::Verdict;

use crate::error::AuditError;
use crate::record::{Record, to_hex};
use crate::schema::{self, RECORD_COLUMNS};
use crate::timestamp::Timestamp;

/// Which records [`query`] returns. Every field set must match; an empty filter matches all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Exactly this agent.
    pub agent: Option<String>,
    /// Exactly this action name.
    pub action: Option<String>,
    /// This verdict.
    pub verdict: Option<Verdict>,
    /// Records at or after this time.
    pub since: Option<Timestamp>,
    /// Records strictly before this time.
    pub until: Option<Timestamp>,
    /// At most this many: the *last* matching records (like `tail`), still in sequence order.
    pub limit: Option<usize>,
}

/// The records matching `filter`, in sequence order.
///
/// Time filters scan the table (there is no time index: it would cost every append a second
/// B-tree write, and records are already in time order by sequence number).
pub fn query(path: impl AsRef<Path>, filter: &Filter) -> Result<Vec<Record>, AuditError> {
    let path = path.as_ref();
    let conn = schema::open_read_only(path)?;
    let order = if filter.limit.is_some() {
        "DESC"
    } else {
        "ASC"
    };
    let sql = format!(
        "SELECT {RECORD_COLUMNS} FROM records \
         WHERE (?1 IS NULL OR agent = ?1) AND (?2 IS NULL OR action = ?2) \
           AND (?3 IS NULL OR verdict = ?3) AND (?4 IS NULL OR ts_ns >= ?4) \
           AND (?5 IS NULL OR ts_ns < ?5) \
         ORDER BY seq {order} LIMIT ?6"
    );
    let limit = filter
        .limit
        .map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
    let mut stmt = conn
        .prepare(&sql)
        .map_err(AuditError::sqlite(path, "cannot query records"))?;
    let mut rows = stmt
        .query(rusqlite::params![
            filter.agent,
            filter.action,
            filter.verdict.map(Verdict::as_str),
            filter.since.map(Timestamp::unix_nanos),
            filter.until.map(Timestamp::unix_nanos),
            limit,
        ])
        .map_err(AuditError::sqlite(path, "cannot query records"))?;
    let mut out = Vec::new();
    while let Some(row) = rows
        .next()
        .map_err(AuditError::sqlite(path, "cannot query records"))?
    {
        out.push(record_from_row(row, path)?);
    }
    if filter.limit.is_some() {
        out.reverse();
    }
    Ok(out)
}

/// A signed checkpoint: the node's signature over a sequence number and the chain head there.
///
/// Copying checkpoints somewhere the log's host cannot write (a ticket, another machine)
/// anchors the log: a rewrite or truncation before them is then detectable even by someone
/// holding the node key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Checkpoint {
    /// The last record covered.
    pub seq: u64,
    /// That record's hash.
    #[serde(serialize_with = "hex_bytes")]
    pub head_hash: Vec<u8>,
    /// When it was signed.
    pub signed_at: Timestamp,
    /// The signature scheme (`ed25519`).
    pub scheme: String,
    /// Short id of the signing key (see [`crate::key_id`]).
    pub key_id: String,
    /// The signing public key.
    #[serde(serialize_with = "hex_bytes")]
    pub public_key: Vec<u8>,
    /// The signature over the checkpoint message (see `docs/audit.md`).
    #[serde(serialize_with = "hex_bytes")]
    pub signature: Vec<u8>,
}

fn hex_bytes<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&to_hex(bytes))
}

/// Every checkpoint in the log, in sequence order. Signatures are not checked here; see
/// [`crate::verify`].
pub fn checkpoints(path: impl AsRef<Path>) -> Result<Vec<Checkpoint>, AuditError> {
    let path = path.as_ref();
    let conn = schema::open_read_only(path)?;
    read_checkpoints(&conn, path)
}

pub(crate) fn read_checkpoints(
    conn: &Connection,
    path: &Path,
) -> Result<Vec<Checkpoint>, AuditError> {
    conn.prepare(
        "SELECT seq, head_hash, signed_at_ns, scheme, key_id, public_key, signature FROM checkpoints ORDER BY seq",
    )
    .and_then(|mut st| {
        st.query_map([], |r| {
            Ok(Checkpoint {
                seq: r.get::<_, i64>(0)?.max(0).cast_unsigned(),
                head_hash: r.get(1)?,
                signed_at: Timestamp::from_unix_nanos(r.get(2)?),
                scheme: r.get(3)?,
                key_id: r.get(4)?,
                public_key: r.get(5)?,
                signature: r.get(6)?,
            })
        })?
        .collect()
    })
    .map_err(AuditError::sqlite(path, "cannot read checkpoints"))
}

/// Write every record as one JSON object per line, in sequence order. Streams: memory use
/// does not grow with the log. Returns the number of records written.
pub fn export_jsonl(path: impl AsRef<Path>, writer: impl Write) -> Result<u64, AuditError> {
    export_jsonl_with_progress(path, writer, |_, _| {})
}

/// [`export_jsonl`], calling `progress(done, total)` now and then (total is an estimate).
pub fn export_jsonl_with_progress(
    path: impl AsRef<Path>,
    writer: impl Write,
    mut progress: impl FnMut(u64, u64),
) -> Result<u64, AuditError> {
    let path = path.as_ref();
    let conn = schema::open_read_only(path)?;
    // One read transaction: the export is a snapshot even while a writer appends.
    conn.execute_batch("BEGIN")
        .map_err(AuditError::sqlite(path, "cannot start a read transaction"))?;
    let total: i64 = conn
        .query_row(
            "SELECT coalesce(max(seq) - min(seq) + 1, 0) FROM records",
            [],
            |r| r.get(0),
        )
        .map_err(AuditError::sqlite(path, "cannot read the record range"))?;
    let total = total.max(0).cast_unsigned();
    progress(0, total);
    let mut stmt = conn
        .prepare(&format!(
            "SELECT {RECORD_COLUMNS} FROM records ORDER BY seq"
        ))
        .map_err(AuditError::sqlite(path, "cannot read records"))?;
    let mut rows = stmt
        .query([])
        .map_err(AuditError::sqlite(path, "cannot read records"))?;
    let mut out = BufWriter::with_capacity(1 << 16, writer);
    let out_err = |e: std::io::Error| AuditError::Io {
        path: path.to_path_buf(),
        what: "cannot write the export",
        source: e,
    };
    let mut n = 0u64;
    while let Some(row) = rows
        .next()
        .map_err(AuditError::sqlite(path, "cannot read records"))?
    {
        let record = record_from_row(row, path)?;
        serde_json::to_writer(&mut out, &record).map_err(|e| out_err(e.into()))?;
        out.write_all(b"\n").map_err(out_err)?;
        n += 1;
        if n.is_multiple_of(1 << 16) {
            progress(n, total);
        }
    }
    out.flush().map_err(out_err)?;
    progress(n, total.max(n));
    Ok(n)
}

/// Decode a row selected with [`RECORD_COLUMNS`]. A value that does not decode (a hand edit
/// that broke a field) is an error naming the record; `verify` says more.
fn record_from_row(row: &Row<'_>, path: &Path) -> Result<Record, AuditError> {
    let seq = match row.get_ref(0) {
        Ok(ValueRef::Integer(s)) => s.max(0).cast_unsigned(),
        _ => 0,
    };
    let bad = |what: &str| AuditError::Corrupt {
        path: path.to_path_buf(),
        detail: format!("record {seq}: {what} cannot be read (run `warden audit verify`)"),
    };
    let hash = |i: usize, what: &str| -> Result<[u8; 32], AuditError> {
        let bytes: Vec<u8> = row.get(i).map_err(|_| bad(what))?;
        <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| bad(what))
    };
    let verdict: String = row.get(6).map_err(|_| bad("verdict"))?;
    let args: Option<String> = row.get(10).map_err(|_| bad("args"))?;
    Ok(Record {
        seq,
        ts: Timestamp::from_unix_nanos(row.get(1).map_err(|_| bad("timestamp"))?),
        agent: row.get(2).map_err(|_| bad("agent"))?,
        action: row.get(3).map_err(|_| bad("action"))?,
        tool: row.get(4).map_err(|_| bad("tool"))?,
        resource: row.get(5).map_err(|_| bad("resource"))?,
        verdict: verdict.parse().map_err(|_| bad("verdict"))?,
        policy: row.get(7).map_err(|_| bad("policy"))?,
        rule: row.get(8).map_err(|_| bad("rule"))?,
        reason: row.get(9).map_err(|_| bad("reason"))?,
        args: args
            .map(|a| serde_json::from_str(&a))
            .transpose()
            .map_err(|_| bad("args"))?,
        args_digest: hash(11, "args digest")?,
        latency_ns: row
            .get::<_, i64>(12)
            .map_err(|_| bad("latency"))?
            .cast_unsigned(),
        policy_version: row
            .get::<_, Option<i64>>(13)
            .map_err(|_| bad("policy version"))?
            .map(i64::cast_unsigned),
        prev_hash: hash(14, "previous hash")?,
        hash: hash(15, "hash")?,
    })
}
