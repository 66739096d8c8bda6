//! The memory guard's two tables in the Warden database: `memory_provenance` (one signed
//! record per stored text) and `quarantine` (writes that were held back). Everything that
//! knows SQL for the guard is here.
//!
//! | table | holds |
//! |---|---|
//! | `memory_writes` | per write: blake3 of the whole write (the key), the hashes of its texts, source, agent, session, time, key id, Ed25519 signature over all of these (one signature per write, not per text: signing is the costly part) |
//! | `memory_provenance` | per text: blake3 of its content (hex, the key) → the write it came in |
//! | `quarantine` | per held write: id, agent, session, source, tool, hash of the whole write, content (bounded), findings, time, status (`quarantined` → `released` → `used`, or `dropped`), who released or dropped it and why |
//!
//! Both are bounded ([`MAX_PROVENANCE_ROWS`], [`MAX_QUARANTINED`],
//! [`MAX_QUARANTINED_PER_AGENT`]): past a bound, a write is refused rather than the table
//! growing, and the refusal says which bound.

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::Serialize;

use super::error::MemoryError;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS memory_writes (
    write_hash  TEXT PRIMARY KEY,
    items       TEXT NOT NULL,
    source      TEXT NOT NULL,
    agent       TEXT,
    session     TEXT,
    created_ns  INTEGER NOT NULL,
    key_id      TEXT NOT NULL,
    signature   TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS memory_provenance (
    hash        TEXT PRIMARY KEY,
    write_hash  TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS quarantine (
    id          TEXT PRIMARY KEY,
    agent       TEXT,
    session     TEXT,
    source      TEXT NOT NULL,
    tool        TEXT,
    write_hash  TEXT NOT NULL,
    content     TEXT NOT NULL,
    truncated   INTEGER NOT NULL,
    findings    TEXT NOT NULL,
    created_ns  INTEGER NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('quarantined', 'released', 'used', 'dropped')),
    decided_by  TEXT,
    decided_why TEXT,
    decided_ns  INTEGER
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS memory_counts (
    name        TEXT PRIMARY KEY,
    n           INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS quarantine_by_hash ON quarantine (write_hash, status);
CREATE INDEX IF NOT EXISTS quarantine_by_agent ON quarantine (status, agent);
";

/// The most provenance records the database keeps; past it, writes are refused.
pub const MAX_PROVENANCE_ROWS: u64 = 1_000_000;
/// The most writes held in quarantine at once (status `quarantined`); past it, a flagged
/// write is still refused, but not kept.
pub const MAX_QUARANTINED: u64 = 10_000;
/// The most writes one agent may have in quarantine at once.
pub const MAX_QUARANTINED_PER_AGENT: u64 = 1_000;
/// The most bytes of a quarantined write's content kept (the rest is cut at a character
/// boundary, and the row says so).
pub const MAX_QUARANTINE_CONTENT: usize = 64 * 1024;

/// One text's provenance: the signed record of the write it came in.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Provenance {
    /// blake3 of the text (hex).
    pub hash: String,
    /// blake3 of the whole write it came in (hex).
    pub write_hash: String,
    /// The hashes of every text of that write (the signature covers them).
    pub items: Vec<String>,
    /// Who or what produced it.
    pub source: String,
    /// The agent that wrote it.
    pub agent: Option<String>,
    /// The session it was written in.
    pub session: Option<String>,
    /// When, in nanoseconds since the epoch.
    pub created_ns: u64,
    /// The signing key's id.
    pub key_id: String,
    /// Ed25519 signature over [`Provenance::message`] (hex).
    pub signature: String,
}

impl Provenance {
    /// The bytes the signature covers: the write's fields (not `hash`, which must be one
    /// of `items`), as canonical JSON.
    pub fn message(&self) -> Vec<u8> {
        let value = serde_json::json!({
            "domain": "warden-memory-write-v1",
            "write_hash": self.write_hash,
            "items": self.items,
            "source": self.source,
            "agent": self.agent,
            "session": self.session,
            "created_ns": self.created_ns,
            "key_id": self.key_id,
        });
        warden_audit::canonical_json(&value).into_bytes()
    }
}

/// Where a quarantined write stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum QuarantineStatus {
    /// Held back; an operator may release or drop it.
    Quarantined,
    /// Released: the same write (same agent, same content) passes once.
    Released,
    /// Released and since let through.
    Used,
    /// Dropped by an operator: kept for the record, never let through.
    Dropped,
}

impl QuarantineStatus {
    /// The word stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            QuarantineStatus::Quarantined => "quarantined",
            QuarantineStatus::Released => "released",
            QuarantineStatus::Used => "used",
            QuarantineStatus::Dropped => "dropped",
        }
    }

    fn parse(s: &str) -> QuarantineStatus {
        match s {
            "released" => QuarantineStatus::Released,
            "used" => QuarantineStatus::Used,
            "dropped" => QuarantineStatus::Dropped,
            _ => QuarantineStatus::Quarantined,
        }
    }
}

/// One quarantined write.
#[derive(Debug, Clone, Serialize)]
pub struct Quarantined {
    /// Its id (`q-` and 16 hex digits).
    pub id: String,
    /// The agent that tried to write it.
    pub agent: Option<String>,
    /// The session.
    pub session: Option<String>,
    /// The source it named.
    pub source: String,
    /// The tool it was written through (the proxy's), when there was one.
    pub tool: Option<String>,
    /// blake3 of the whole write (hex): a release lets exactly this write through.
    pub write_hash: String,
    /// The content, as canonical JSON, cut to [`MAX_QUARANTINE_CONTENT`] bytes.
    pub content: String,
    /// Whether `content` was cut.
    pub truncated: bool,
    /// The detector's rule ids.
    pub findings: Vec<String>,
    /// When, in nanoseconds since the epoch.
    pub created_ns: u64,
    /// Where it stands.
    pub status: QuarantineStatus,
    /// Who released or dropped it.
    pub decided_by: Option<String>,
    /// Why.
    pub decided_why: Option<String>,
    /// When.
    pub decided_ns: Option<u64>,
}

/// The guard's tables, on one connection.
pub struct Store {
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("memory::Store")
    }
}

fn sql(e: rusqlite::Error) -> MemoryError {
    MemoryError::Store(e.to_string())
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Store {
    /// Open the guard's tables in the existing Warden database at `path` for reading only:
    /// nothing is created or written (a write fails). A database that has never kept memory
    /// records reads as empty tables (held in memory, not in the file).
    pub fn open_read_only(path: &Path) -> Result<Store, MemoryError> {
        let conn = warden_audit::open_state_read_only(path)
            .map_err(|e| MemoryError::Store(e.to_string()))?;
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN \
                 ('memory_writes', 'memory_provenance', 'quarantine', 'memory_counts')",
                [],
                |r| r.get(0),
            )
            .map_err(sql)?;
        let conn = if tables == 4 {
            conn
        } else {
            drop(conn);
            let empty = Connection::open_in_memory().map_err(sql)?;
            empty.execute_batch(SCHEMA).map_err(sql)?;
            empty.execute_batch("PRAGMA query_only = 1;").map_err(sql)?;
            empty
        };
        Ok(Store {
            conn: Mutex::new(conn),
        })
    }

    /// Open (and create, if missing) the tables in the Warden database at `path`.
    pub fn open(path: &Path) -> Result<Store, MemoryError> {
        let conn = warden_audit::open_state(path, Duration::from_secs(10))
            .map_err(|e| MemoryError::Store(e.to_string()))?;
        conn.execute_batch(SCHEMA).map_err(sql)?;
        // Committed records survive a crash of the process; a power loss may take the last
        // ones, and a record lost withholds its text on a later read (fails closed) rather
        // than vouching for anything. Saves an fsync per write.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sql)?;
        Ok(Store {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Record one write (`record.hash` is ignored: every one of `record.items` gets a
    /// provenance row; an item already recorded keeps its first write). One transaction.
    /// Refused when the table would pass [`MAX_PROVENANCE_ROWS`].
    pub fn add_provenance(&self, record: &Provenance) -> Result<(), MemoryError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql)?;
        // A counter, not count(*): counting a million rows on every write would cost more
        // than the write. It only grows (rows deleted by hand are still counted: fail closed).
        let rows: i64 = tx
            .query_row(
                "SELECT n FROM memory_counts WHERE name = 'provenance'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql)?
            .unwrap_or(0);
        if u64::try_from(rows).unwrap_or(u64::MAX) + record.items.len() as u64 > MAX_PROVENANCE_ROWS
        {
            return Err(MemoryError::Full(format!(
                "the provenance table holds {rows} records, the most it keeps is {MAX_PROVENANCE_ROWS}"
            )));
        }
        tx.execute(
            "INSERT OR IGNORE INTO memory_writes
             (write_hash, items, source, agent, session, created_ns, key_id, signature)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                record.write_hash,
                serde_json::to_string(&record.items).unwrap_or_else(|_| "[]".into()),
                record.source,
                record.agent,
                record.session,
                to_i64(record.created_ns),
                record.key_id,
                record.signature
            ],
        )
        .map_err(sql)?;
        let mut added = 0i64;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO memory_provenance (hash, write_hash) VALUES (?1, ?2)",
                )
                .map_err(sql)?;
            for item in &record.items {
                added += insert
                    .execute(params![item, record.write_hash])
                    .map_err(sql)? as i64;
            }
        }
        tx.execute(
            "INSERT INTO memory_counts (name, n) VALUES ('provenance', ?1)
             ON CONFLICT (name) DO UPDATE SET n = n + ?1",
            [added],
        )
        .map_err(sql)?;
        tx.commit().map_err(sql)
    }

    /// The provenance of the text whose content hashes to `hash`: the record of the write
    /// its row names (not yet verified).
    pub fn provenance(&self, hash: &str) -> Result<Option<Provenance>, MemoryError> {
        self.conn()
            .prepare_cached(
                "SELECT p.hash, w.write_hash, w.items, w.source, w.agent, w.session,
                        w.created_ns, w.key_id, w.signature
                 FROM memory_provenance p JOIN memory_writes w ON w.write_hash = p.write_hash
                 WHERE p.hash = ?1",
            )
            .map_err(sql)?
            .query_row([hash], |r| {
                let items: String = r.get(2)?;
                Ok(Provenance {
                    hash: r.get(0)?,
                    write_hash: r.get(1)?,
                    items: serde_json::from_str(&items).unwrap_or_default(),
                    source: r.get(3)?,
                    agent: r.get(4)?,
                    session: r.get(5)?,
                    created_ns: u64::try_from(r.get::<_, i64>(6)?).unwrap_or(0),
                    key_id: r.get(7)?,
                    signature: r.get(8)?,
                })
            })
            .optional()
            .map_err(sql)
    }

    /// Keep a flagged write. `Ok(None)` when quarantine is full (the write is still refused).
    pub fn quarantine(&self, q: &Quarantined) -> Result<Option<String>, MemoryError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql)?;
        let all: i64 = tx
            .query_row(
                "SELECT count(*) FROM quarantine WHERE status = 'quarantined'",
                [],
                |r| r.get(0),
            )
            .map_err(sql)?;
        let mine: i64 = tx
            .query_row(
                "SELECT count(*) FROM quarantine WHERE status = 'quarantined' AND agent IS ?1",
                [&q.agent],
                |r| r.get(0),
            )
            .map_err(sql)?;
        if all >= to_i64(MAX_QUARANTINED) || mine >= to_i64(MAX_QUARANTINED_PER_AGENT) {
            return Ok(None);
        }
        // The same write quarantined again while the first is still held: one row.
        let same: Option<String> = tx
            .query_row(
                "SELECT id FROM quarantine WHERE write_hash = ?1 AND agent IS ?2 AND status = 'quarantined'",
                params![q.write_hash, q.agent],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql)?;
        if let Some(id) = same {
            return Ok(Some(id));
        }
        tx.execute(
            "INSERT INTO quarantine (id, agent, session, source, tool, write_hash, content,
                 truncated, findings, created_ns, status)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'quarantined')",
            params![
                q.id,
                q.agent,
                q.session,
                q.source,
                q.tool,
                q.write_hash,
                q.content,
                q.truncated,
                serde_json::to_string(&q.findings).unwrap_or_else(|_| "[]".into()),
                to_i64(q.created_ns),
            ],
        )
        .map_err(sql)?;
        tx.commit().map_err(sql)?;
        Ok(Some(q.id.clone()))
    }

    /// A release of this exact write by this agent, if there is one: used up (`take`:
    /// `Some(id)` once) or only looked at.
    pub fn find_release(
        &self,
        write_hash: &str,
        agent: Option<&str>,
        take: bool,
    ) -> Result<Option<String>, MemoryError> {
        let mut conn = self.conn();
        // Only looking: a read transaction, which a read-only connection can begin.
        let behavior = if take {
            TransactionBehavior::Immediate
        } else {
            TransactionBehavior::Deferred
        };
        let tx = conn.transaction_with_behavior(behavior).map_err(sql)?;
        let id: Option<String> = tx
            .query_row(
                "SELECT id FROM quarantine WHERE write_hash = ?1 AND agent IS ?2 AND status = 'released'
                 ORDER BY created_ns LIMIT 1",
                params![write_hash, agent],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql)?;
        if let Some(id) = id.as_ref().filter(|_| take) {
            // When it was used is in the audit record of the write it let through.
            tx.execute("UPDATE quarantine SET status = 'used' WHERE id = ?1", [id])
                .map_err(sql)?;
        }
        tx.commit().map_err(sql)?;
        Ok(id)
    }

    /// Release (`release = true`) or drop a write still in quarantine. `Ok(None)`: no such id;
    /// `Err(Settled)`: it is no longer quarantined.
    pub fn settle(
        &self,
        id: &str,
        release: bool,
        by: &str,
        why: &str,
        now_ns: u64,
    ) -> Result<Option<Quarantined>, MemoryError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql)?;
        let Some(q) = get(&tx, id)? else {
            return Ok(None);
        };
        if q.status != QuarantineStatus::Quarantined {
            return Err(MemoryError::Settled {
                id: id.to_string(),
                status: q.status.as_str(),
            });
        }
        let status = if release {
            QuarantineStatus::Released
        } else {
            QuarantineStatus::Dropped
        };
        tx.execute(
            "UPDATE quarantine SET status = ?2, decided_by = ?3, decided_why = ?4, decided_ns = ?5
             WHERE id = ?1",
            params![id, status.as_str(), by, why, to_i64(now_ns)],
        )
        .map_err(sql)?;
        let q = get(&tx, id)?;
        tx.commit().map_err(sql)?;
        Ok(q)
    }

    /// One quarantined write.
    pub fn get(&self, id: &str) -> Result<Option<Quarantined>, MemoryError> {
        get(&self.conn(), id)
    }

    /// Quarantined writes, newest first: only those still held unless `all`.
    pub fn list(&self, all: bool, limit: usize) -> Result<Vec<Quarantined>, MemoryError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM quarantine {} ORDER BY created_ns DESC LIMIT ?1",
                if all {
                    ""
                } else {
                    "WHERE status = 'quarantined'"
                }
            ))
            .map_err(sql)?;
        let rows = stmt
            .query_map([to_i64(limit as u64)], row)
            .map_err(sql)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(sql)?;
        Ok(rows)
    }
}

const COLUMNS: &str = "id, agent, session, source, tool, write_hash, content, truncated, findings, created_ns, status, decided_by, decided_why, decided_ns";

fn get(conn: &Connection, id: &str) -> Result<Option<Quarantined>, MemoryError> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM quarantine WHERE id = ?1"),
        [id],
        row,
    )
    .optional()
    .map_err(sql)
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Quarantined> {
    let findings: String = r.get(8)?;
    let status: String = r.get(10)?;
    Ok(Quarantined {
        id: r.get(0)?,
        agent: r.get(1)?,
        session: r.get(2)?,
        source: r.get(3)?,
        tool: r.get(4)?,
        write_hash: r.get(5)?,
        content: r.get(6)?,
        truncated: r.get(7)?,
        findings: serde_json::from_str(&findings).unwrap_or_default(),
        created_ns: u64::try_from(r.get::<_, i64>(9)?).unwrap_or(0),
        status: QuarantineStatus::parse(&status),
        decided_by: r.get(11)?,
        decided_why: r.get(12)?,
        decided_ns: r
            .get::<_, Option<i64>>(13)?
            .map(|n| u64::try_from(n).unwrap_or(0)),
    })
}
