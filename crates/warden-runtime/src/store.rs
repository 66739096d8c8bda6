//! The runtime's tables in the one Warden database (the audit log's SQLite file, opened with
//! [`warden_audit::open_state`]): kill switches, ring overrides, shared rate buckets, and a
//! version number every change bumps, so other processes notice a change by reading one row.
//!
//! | table | holds |
//! |---|---|
//! | `kill_switches` | one row per active kill: scope (`all`/`agent`/`action`), target, reason, by, when |
//! | `kill_version` | one row: a counter bumped by every change to `kill_switches` or `ring_overrides` |
//! | `ring_overrides` | elevations (with an expiry) and demotions, per agent |
//! | `rate_buckets` | token buckets shared by CLI processes: limit id, key, state |
//!
//! Every change is one `BEGIN IMMEDIATE` transaction, so two processes changing the state at
//! once each see the other's change, and the counter never misses one.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use warden_policy::runtime::Ring;

use crate::error::RuntimeError;
use crate::kill::{Kill, Scope};
use crate::rate::{Bucket, KeyRef, Limited, Tat};
use crate::ring_override::{OverrideKind, RingOverride};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS kill_switches (
    scope  TEXT NOT NULL CHECK (scope IN ('all', 'agent', 'action')),
    target TEXT NOT NULL,
    reason TEXT NOT NULL,
    by     TEXT NOT NULL,
    at_ns  INTEGER NOT NULL,
    PRIMARY KEY (scope, target)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS kill_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT OR IGNORE INTO kill_version (id, version) VALUES (1, 0);
CREATE TABLE IF NOT EXISTS ring_overrides (
    agent      TEXT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('elevation', 'demotion')),
    ring       TEXT NOT NULL,
    reason     TEXT NOT NULL,
    by         TEXT NOT NULL,
    at_ns      INTEGER NOT NULL,
    expires_ns INTEGER,
    PRIMARY KEY (agent, kind)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rate_buckets (
    limit_id TEXT NOT NULL,
    key      TEXT NOT NULL,
    tat      TEXT NOT NULL,
    scale    INTEGER NOT NULL,
    full_ns  INTEGER NOT NULL,
    PRIMARY KEY (limit_id, key)
) WITHOUT ROWID;
";

/// The most rows `rate_buckets` keeps before full buckets are pruned.
const MAX_SHARED_BUCKETS: i64 = 100_000;

/// What [`Store::load`] read: the state's version, its kills and ring overrides.
#[derive(Debug)]
pub(crate) struct Stored {
    pub version: i64,
    pub kills: Vec<Kill>,
    pub overrides: Vec<RingOverride>,
}

/// The runtime's connection to the Warden database.
#[derive(Debug)]
pub(crate) struct Store {
    path: PathBuf,
    conn: Mutex<Connection>,
}

fn i64_of(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn u64_of(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl Store {
    /// Open (creating the tables if needed).
    pub fn open(path: &Path, busy_timeout: Duration) -> Result<Store, RuntimeError> {
        let conn = warden_audit::open_state(path, busy_timeout)?;
        conn.execute_batch(SCHEMA)
            .map_err(RuntimeError::db(path, "cannot create the runtime tables"))?;
        Ok(Store {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The change counter.
    pub fn version(&self) -> Result<i64, RuntimeError> {
        self.conn()
            .query_row("SELECT version FROM kill_version WHERE id = 1", [], |r| {
                r.get(0)
            })
            .map_err(RuntimeError::db(
                &self.path,
                "cannot read the kill switch state",
            ))
    }

    /// Everything the hot path needs, read in one transaction.
    pub fn load(&self) -> Result<Stored, RuntimeError> {
        let mut conn = self.conn();
        let err = |what| RuntimeError::db(&self.path, what);
        let tx = conn
            .transaction()
            .map_err(err("cannot read the kill switch state"))?;
        let version: i64 = tx
            .query_row("SELECT version FROM kill_version WHERE id = 1", [], |r| {
                r.get(0)
            })
            .map_err(err("cannot read the kill switch state"))?;
        let mut kills = Vec::new();
        {
            let mut stmt = tx
                .prepare("SELECT scope, target, reason, by, at_ns FROM kill_switches")
                .map_err(err("cannot read the kill switches"))?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, i64>(4)?,
                    ))
                })
                .map_err(err("cannot read the kill switches"))?;
            for row in rows {
                let (scope, target, reason, by, at) =
                    row.map_err(err("cannot read the kill switches"))?;
                let scope =
                    Scope::from_parts(&scope, &target).map_err(|detail| RuntimeError::Corrupt {
                        path: self.path.clone(),
                        detail,
                    })?;
                kills.push(Kill {
                    scope,
                    reason,
                    by,
                    at_ns: u64_of(at),
                });
            }
        }
        let mut overrides = Vec::new();
        {
            let mut stmt = tx
                .prepare(
                    "SELECT agent, kind, ring, reason, by, at_ns, expires_ns FROM ring_overrides",
                )
                .map_err(err("cannot read the ring overrides"))?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, i64>(5)?,
                        r.get::<_, Option<i64>>(6)?,
                    ))
                })
                .map_err(err("cannot read the ring overrides"))?;
            for row in rows {
                let (agent, kind, ring, reason, by, at, expires) =
                    row.map_err(err("cannot read the ring overrides"))?;
                let corrupt = |detail: String| RuntimeError::Corrupt {
                    path: self.path.clone(),
                    detail,
                };
                let kind = OverrideKind::parse(&kind).map_err(corrupt)?;
                let ring = ring.parse::<Ring>().map_err(corrupt)?;
                overrides.push(RingOverride {
                    agent,
                    kind,
                    ring,
                    reason,
                    by,
                    at_ns: u64_of(at),
                    expires_ns: expires.map(u64_of),
                });
            }
        }
        drop(tx);
        Ok(Stored {
            version,
            kills,
            overrides,
        })
    }

    /// Run `f` in one write transaction and bump the version.
    fn change<T>(
        &self,
        what: &'static str,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, RuntimeError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(RuntimeError::db(&self.path, what))?;
        let out = f(&tx).map_err(RuntimeError::db(&self.path, what))?;
        tx.execute(
            "UPDATE kill_version SET version = version + 1 WHERE id = 1",
            [],
        )
        .map_err(RuntimeError::db(&self.path, what))?;
        tx.commit().map_err(RuntimeError::db(&self.path, what))?;
        Ok(out)
    }

    /// Set a kill switch. `Ok(false)`: one with this scope was already set (kept as it was).
    pub fn kill(&self, kill: &Kill) -> Result<bool, RuntimeError> {
        self.change("cannot set the kill switch", |tx| {
            let n = tx.execute(
                "INSERT OR IGNORE INTO kill_switches (scope, target, reason, by, at_ns) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![kill.scope.kind(), kill.scope.target(), kill.reason, kill.by, i64_of(kill.at_ns)],
            )?;
            Ok(n == 1)
        })
    }

    /// Lift the kill switch of exactly this scope; returns whether one was set.
    pub fn revive(&self, scope: &Scope) -> Result<bool, RuntimeError> {
        self.change("cannot lift the kill switch", |tx| {
            let n = tx.execute(
                "DELETE FROM kill_switches WHERE scope = ?1 AND target = ?2",
                params![scope.kind(), scope.target()],
            )?;
            Ok(n == 1)
        })
    }

    /// Set (replace) an agent's elevation or demotion.
    pub fn set_override(&self, o: &RingOverride) -> Result<(), RuntimeError> {
        self.change("cannot change the agent's ring", |tx| {
            tx.execute(
                "INSERT OR REPLACE INTO ring_overrides (agent, kind, ring, reason, by, at_ns, expires_ns) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![o.agent, o.kind.as_str(), o.ring.as_str(), o.reason, o.by, i64_of(o.at_ns), o.expires_ns.map(i64_of)],
            )?;
            Ok(())
        })
    }

    /// Remove an agent's overrides of `kind` (both kinds when `None`); returns how many.
    pub fn remove_overrides(
        &self,
        agent: &str,
        kind: Option<OverrideKind>,
    ) -> Result<usize, RuntimeError> {
        self.change("cannot change the agent's ring", |tx| match kind {
            Some(k) => tx.execute(
                "DELETE FROM ring_overrides WHERE agent = ?1 AND kind = ?2",
                params![agent, k.as_str()],
            ),
            None => tx.execute(
                "DELETE FROM ring_overrides WHERE agent = ?1",
                params![agent],
            ),
        })
    }

    /// Take one token from a bucket kept in the database (shared by every process).
    pub fn take_shared(
        &self,
        key: KeyRef<'_>,
        bucket: &Bucket,
        now_ns: u64,
    ) -> Result<Result<(), Limited>, RuntimeError> {
        let mut conn = self.conn();
        let what = "cannot update a rate limit bucket";
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(RuntimeError::db(&self.path, what))?;
        let encoded = key.encode();
        let row: Option<(String, i64)> = tx
            .query_row(
                "SELECT tat, scale FROM rate_buckets WHERE limit_id = ?1 AND key = ?2",
                params![key.limit, encoded],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(RuntimeError::db(&self.path, what))?;
        let tat = match row {
            None => Tat::default(),
            Some((text, scale)) => Tat {
                scaled: text.parse().map_err(|_| RuntimeError::Corrupt {
                    path: self.path.clone(),
                    detail: format!("rate bucket state `{text}` is not a number"),
                })?,
                count: u64_of(scale),
            },
        };
        let out = bucket.take(tat, now_ns);
        if let Ok(new) = out {
            let full_ns = new.scaled / u128::from(new.count.max(1));
            tx.execute(
                "INSERT OR REPLACE INTO rate_buckets (limit_id, key, tat, scale, full_ns) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![key.limit, encoded, new.scaled.to_string(), i64_of(new.count), i64::try_from(full_ns).unwrap_or(i64::MAX)],
            )
            .map_err(RuntimeError::db(&self.path, what))?;
            let rows: i64 = tx
                .query_row("SELECT count(*) FROM rate_buckets", [], |r| r.get(0))
                .map_err(RuntimeError::db(&self.path, what))?;
            if rows > MAX_SHARED_BUCKETS {
                tx.execute(
                    "DELETE FROM rate_buckets WHERE full_ns <= ?1",
                    params![i64_of(now_ns)],
                )
                .map_err(RuntimeError::db(&self.path, what))?;
            }
        }
        tx.commit().map_err(RuntimeError::db(&self.path, what))?;
        Ok(out.map(|_| ()))
    }
}
