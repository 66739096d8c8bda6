//! Reading records back: filtered queries and single records for people, new records as they
//! are committed (`tail`), and a streaming JSON Lines export for other systems. Everything
//! here opens the log read-only, so it is safe beside running writers.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use rusqlite::params;
use warden_core::Verdict;

use crate::encoding::Encoding;
use crate::error::AuditError;
use crate::record::{Checkpoint, Record};
use crate::store::{self, RawRow, Store, record_from_values, row_values, to_i64};
use crate::timestamp::Timestamp;

/// Which records [`query`] returns. Every field set must match; an empty filter matches all.
///
/// `agent`, `action`, `tool` and `rule` are patterns: `*` stands for any text and `?` for one
/// character, everything else for itself (case-sensitive; `[` too, so `rules[0]` matches the
/// rule id `rules[0]`). So `mcp.*` matches every MCP action, and a name without `*` or `?`
/// matches exactly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// The agent.
    pub agent: Option<String>,
    /// The action name.
    pub action: Option<String>,
    /// The tool.
    pub tool: Option<String>,
    /// The deciding rule's id.
    pub rule: Option<String>,
    /// This verdict.
    pub verdict: Option<Verdict>,
    /// Records at or after this time.
    pub since: Option<Timestamp>,
    /// Records strictly before this time.
    pub until: Option<Timestamp>,
    /// At most this many: the *last* matching records (like `tail`), still in sequence order.
    pub limit: Option<usize>,
}

/// A read-only view of a log, for several reads through one connection (`tail --follow`
/// polls through one). Each call sees everything committed before it.
pub struct LogReader {
    path: PathBuf,
    store: Store,
}

/// One record and what can be said about it on its own (see [`LogReader::inspect`]).
#[derive(Debug, Clone, serde::Serialize)]
pub struct RecordStatus {
    /// The record.
    pub record: Record,
    /// Its stored fields hash to its stored hash.
    pub hash_ok: bool,
    /// Its `prev_hash` is the stored hash of the record before it (or zeros for the first).
    pub links_to_previous: bool,
    /// The first checkpoint at or after it whose signature verifies (against the key stored
    /// with it), if any: whether the stretch in between is intact only a full `verify` says.
    pub covered_by_checkpoint: Option<u64>,
}

impl LogReader {
    /// Open the log at `path` for reading.
    pub fn open(path: impl AsRef<Path>) -> Result<LogReader, AuditError> {
        let path = path.as_ref().to_path_buf();
        let store = store::open_read_only(&path)?;
        Ok(LogReader { path, store })
    }

    fn sql_err(&self, what: &'static str) -> impl FnOnce(rusqlite::Error) -> AuditError {
        AuditError::sqlite(&self.path, what)
    }

    fn decode(&self, row: &rusqlite::Row<'_>) -> Result<Record, AuditError> {
        record_from_values(&row_values(row)).map_err(|(seq, what)| AuditError::Corrupt {
            path: self.path.clone(),
            detail: format!("record {seq}: {what} cannot be read (run `warden audit verify`)"),
        })
    }

    /// The records matching `filter`, in sequence order.
    ///
    /// Time filters scan the table (there is no time index: it would cost every append a
    /// second B-tree write, and records are already in time order by sequence number).
    pub fn query(&self, filter: &Filter) -> Result<Vec<Record>, AuditError> {
        let order = if filter.limit.is_some() {
            "DESC"
        } else {
            "ASC"
        };
        let sql = format!(
            "SELECT {} FROM records \
             WHERE (?1 IS NULL OR agent GLOB ?1) AND (?2 IS NULL OR action GLOB ?2) \
               AND (?3 IS NULL OR tool GLOB ?3) AND (?4 IS NULL OR rule GLOB ?4) \
               AND (?5 IS NULL OR verdict = ?5) AND (?6 IS NULL OR ts_ns >= ?6) \
               AND (?7 IS NULL OR ts_ns < ?7) \
             ORDER BY seq {order} LIMIT ?8",
            store::record_select(self.store.encoding)
        );
        let limit = filter
            .limit
            .map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
        let mut out = self.records(
            &sql,
            params![
                glob(filter.agent.as_deref()),
                glob(filter.action.as_deref()),
                glob(filter.tool.as_deref()),
                glob(filter.rule.as_deref()),
                filter.verdict.map(Verdict::as_str),
                filter.since.map(Timestamp::unix_nanos),
                filter.until.map(Timestamp::unix_nanos),
                limit,
            ],
        )?;
        if filter.limit.is_some() {
            out.reverse();
        }
        Ok(out)
    }

    /// Records after sequence number `after`, oldest first, at most `limit`.
    pub fn after(&self, after: u64, limit: usize) -> Result<Vec<Record>, AuditError> {
        let sql = format!(
            "SELECT {} FROM records WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            store::record_select(self.store.encoding)
        );
        self.records(
            &sql,
            params![to_i64(after), i64::try_from(limit).unwrap_or(i64::MAX)],
        )
    }

    /// Every record a statement selects.
    fn records(&self, sql: &str, params: impl rusqlite::Params) -> Result<Vec<Record>, AuditError> {
        let mut stmt = self
            .store
            .conn
            .prepare_cached(sql)
            .map_err(self.sql_err("cannot read records"))?;
        let mut rows = stmt
            .query(params)
            .map_err(self.sql_err("cannot read records"))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(self.sql_err("cannot read records"))? {
            out.push(self.decode(row)?);
        }
        Ok(out)
    }

    /// The agents named in the last `records` records, newest first. Names only: a view
    /// of who acted reads nothing else, whatever size of arguments callers sent.
    pub fn recent_agents(&self, records: usize) -> Result<Vec<String>, AuditError> {
        let mut stmt = self
            .store
            .conn
            .prepare_cached(
                "SELECT agent FROM (SELECT agent FROM records ORDER BY seq DESC LIMIT ?1)
                 WHERE agent IS NOT NULL",
            )
            .map_err(self.sql_err("cannot read records"))?;
        let names = stmt
            .query_map(params![store::to_i64(records as u64)], |r| r.get(0))
            .and_then(Iterator::collect)
            .map_err(self.sql_err("cannot read records"))?;
        Ok(names)
    }

    /// Among the last `within` records, the last `limit` whose context has `key` equal to
    /// `value`, newest first, with their arguments left out (`args` is `None`): for views
    /// that show what one door recorded (the MCP proxy marks its records) without reading
    /// what callers sent. A version 1 log (no context) has none.
    pub fn marked(
        &self,
        key: &str,
        value: &str,
        within: usize,
        limit: usize,
    ) -> Result<Vec<Record>, AuditError> {
        if self.store.encoding == crate::encoding::Encoding::V1 {
            return Ok(Vec::new());
        }
        let columns = store::record_select(self.store.encoding).replacen(" args,", " NULL,", 1);
        let sql = format!(
            "SELECT {columns} FROM (SELECT * FROM records ORDER BY seq DESC LIMIT ?1)
             WHERE json_extract(context, ?2) = ?3 ORDER BY seq DESC LIMIT ?4"
        );
        self.records(
            &sql,
            params![
                store::to_i64(within as u64),
                format!("$.\"{}\"", key.replace('"', "")),
                value,
                store::to_i64(limit as u64),
            ],
        )
    }

    /// The sequence number of the last record (0 when the log is empty).
    pub fn last_seq(&self) -> Result<u64, AuditError> {
        let seq: Option<i64> = self
            .store
            .conn
            .query_row("SELECT max(seq) FROM records", [], |r| r.get(0))
            .map_err(self.sql_err("cannot read the last record"))?;
        Ok(seq.map_or(0, store::to_u64))
    }

    /// Record `seq` with its hash checked, its link to the record before it checked, and the
    /// first validly signed checkpoint that covers it. `None` when there is no such record.
    pub fn inspect(&self, seq: u64) -> Result<Option<RecordStatus>, AuditError> {
        let conn = &self.store.conn;
        conn.execute_batch("BEGIN")
            .map_err(self.sql_err("cannot start a read transaction"))?;
        let result = self.inspect_in_snapshot(seq);
        let _ = conn.execute_batch("COMMIT");
        result
    }

    fn inspect_in_snapshot(&self, seq: u64) -> Result<Option<RecordStatus>, AuditError> {
        let conn = &self.store.conn;
        let sql = format!(
            "SELECT {} FROM records WHERE seq <= ?1 ORDER BY seq DESC LIMIT 2",
            store::record_select(self.store.encoding)
        );
        let mut stmt = conn
            .prepare(&sql)
            .map_err(self.sql_err("cannot read records"))?;
        let mut rows = stmt
            .query([to_i64(seq)])
            .map_err(self.sql_err("cannot read records"))?;
        let Some(row) = rows.next().map_err(self.sql_err("cannot read records"))? else {
            return Ok(None);
        };
        let record = self.decode(row)?;
        if record.seq != seq {
            return Ok(None);
        }
        let values = row_values(row);
        let raw = RawRow::from_values(&values, self.store.encoding).ok();
        let hash_ok = raw.as_ref().is_some_and(|r| r.hash_ok(&mut Vec::new()));
        let previous: Option<Vec<u8>> = rows
            .next()
            .map_err(self.sql_err("cannot read records"))?
            .map(|r| r.get::<_, Vec<u8>>(16).unwrap_or_default());
        let links_to_previous = match previous {
            Some(prev) => prev == record.prev_hash,
            None => record.prev_hash == crate::encoding::GENESIS_HASH,
        };
        drop(rows);
        drop(stmt);
        let covered_by_checkpoint = store::read_checkpoints(conn, &self.path)?
            .into_iter()
            .filter(|cp| cp.seq >= seq)
            .find(Checkpoint::valid_with_stored_key)
            .map(|cp| cp.seq);
        Ok(Some(RecordStatus {
            record,
            hash_ok,
            links_to_previous,
            covered_by_checkpoint,
        }))
    }

    /// Which encoding the log's records use (its format version).
    pub fn encoding(&self) -> Encoding {
        self.store.encoding
    }
}

/// A filter pattern as an SQLite `GLOB`: `*` and `?` stay wildcards, `[` is made literal.
fn glob(pattern: Option<&str>) -> Option<String> {
    pattern.map(|p| p.replace('[', "[[]"))
}

/// The records matching `filter`, in sequence order (see [`LogReader::query`]).
pub fn query(path: impl AsRef<Path>, filter: &Filter) -> Result<Vec<Record>, AuditError> {
    LogReader::open(path)?.query(filter)
}

/// Every checkpoint in the log, in sequence order. Signatures are not checked here; see
/// [`crate::verify`]. Writers keep one checkpoint every `keep_checkpoint_every` records and
/// the newest one.
pub fn checkpoints(path: impl AsRef<Path>) -> Result<Vec<Checkpoint>, AuditError> {
    let path = path.as_ref();
    let store = store::open_read_only(path)?;
    store::read_checkpoints(&store.conn, path)
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
    progress: impl FnMut(u64, u64),
) -> Result<u64, AuditError> {
    export_jsonl_through(path, writer, u64::MAX, progress)
}

/// [`export_jsonl_with_progress`] of the records up to `last_seq` only: after a `verify`,
/// export exactly what was verified even while writers keep appending.
pub fn export_jsonl_through(
    path: impl AsRef<Path>,
    writer: impl Write,
    last_seq: u64,
    mut progress: impl FnMut(u64, u64),
) -> Result<u64, AuditError> {
    let reader = LogReader::open(path)?;
    let conn = &reader.store.conn;
    // One read transaction: the export is a snapshot even while writers append.
    conn.execute_batch("BEGIN")
        .map_err(reader.sql_err("cannot start a read transaction"))?;
    let total: i64 = conn
        .query_row(
            "SELECT coalesce(max(seq) - min(seq) + 1, 0) FROM records",
            [],
            |r| r.get(0),
        )
        .map_err(reader.sql_err("cannot read the record range"))?;
    let total = store::to_u64(total);
    progress(0, total);
    let mut stmt = conn
        .prepare(&format!(
            "SELECT {} FROM records WHERE seq <= ?1 ORDER BY seq",
            store::record_select(reader.store.encoding)
        ))
        .map_err(reader.sql_err("cannot read records"))?;
    let mut rows = stmt
        .query([to_i64(last_seq)])
        .map_err(reader.sql_err("cannot read records"))?;
    let mut out = BufWriter::with_capacity(1 << 16, writer);
    let out_err = |e: std::io::Error| AuditError::Io {
        path: reader.path.clone(),
        what: "cannot write the export",
        source: e,
    };
    let mut n = 0u64;
    while let Some(row) = rows.next().map_err(reader.sql_err("cannot read records"))? {
        let record = reader.decode(row)?;
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
