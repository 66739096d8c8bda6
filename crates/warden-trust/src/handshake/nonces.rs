//! The seen-nonce store: a responder's challenge nonces that were answered, kept in the
//! Warden database until their challenge would have expired, so an answer cannot be played
//! twice — not even to another process serving the same database.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, params};

use crate::error::TrustError;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS handshake_nonces (
    nonce TEXT PRIMARY KEY NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS handshake_sessions (
    session TEXT PRIMARY KEY NOT NULL,
    initiator TEXT NOT NULL,
    responder TEXT NOT NULL,
    capabilities TEXT NOT NULL,
    ceiling INTEGER NOT NULL,
    issued_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
";

/// Answered challenge nonces, and the sessions granted.
pub struct NonceStore {
    path: PathBuf,
    conn: Mutex<Connection>,
    max_live: usize,
}

impl std::fmt::Debug for NonceStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NonceStore({})", self.path.display())
    }
}

impl NonceStore {
    /// Open the tables in the Warden database at `path`.
    pub fn open(path: &Path) -> Result<Self, TrustError> {
        let conn = warden_audit::open_state(path, Duration::from_secs(5))
            .map_err(|e| TrustError::store(path, e.to_string()))?;
        conn.execute_batch(SCHEMA).map_err(|e| {
            TrustError::store(path, format!("cannot create the handshake tables: {e}"))
        })?;
        Ok(NonceStore {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
            max_live: 100_000,
        })
    }

    /// At most this many unexpired nonces (default 100,000); beyond it, handshakes are
    /// refused until some expire.
    pub fn max_live(mut self, n: usize) -> Self {
        self.max_live = n;
        self
    }

    /// Record `nonce` as answered. `Ok(false)`: it was already (a replay).
    pub fn first_use(&self, nonce: &str, expires_at: u64, now: u64) -> Result<bool, TrustError> {
        let store = |e: rusqlite::Error| TrustError::store(&self.path, e.to_string());
        let mut conn = self
            .conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(store)?;
        tx.execute(
            "DELETE FROM handshake_nonces WHERE expires_at <= ?1",
            params![i64::try_from(now).unwrap_or(i64::MAX)],
        )
        .map_err(store)?;
        let live: i64 = tx
            .query_row("SELECT count(*) FROM handshake_nonces", [], |r| r.get(0))
            .map_err(store)?;
        if usize::try_from(live).unwrap_or(usize::MAX) >= self.max_live {
            return Err(TrustError::store(
                &self.path,
                format!(
                    "{live} handshakes are still within their expiry; refusing more until some expire"
                ),
            ));
        }
        let n = tx
            .execute(
                "INSERT OR IGNORE INTO handshake_nonces (nonce, expires_at) VALUES (?1, ?2)",
                params![nonce, i64::try_from(expires_at).unwrap_or(i64::MAX)],
            )
            .map_err(store)?;
        tx.commit().map_err(store)?;
        Ok(n == 1)
    }

    /// Unexpired nonces stored now (for tests and metrics).
    pub fn live(&self, now: u64) -> Result<u64, TrustError> {
        let conn = self
            .conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        conn.query_row(
            "SELECT count(*) FROM handshake_nonces WHERE expires_at > ?1",
            params![i64::try_from(now).unwrap_or(i64::MAX)],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| u64::try_from(n).unwrap_or(0))
        .map_err(|e| TrustError::store(&self.path, e.to_string()))
    }

    /// Keep a granted session.
    pub fn record_session(&self, g: &super::grant::Grant) -> Result<(), TrustError> {
        let conn = self
            .conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        conn.execute(
            "INSERT OR REPLACE INTO handshake_sessions
             (session, initiator, responder, capabilities, ceiling, issued_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                g.session,
                g.initiator,
                g.responder,
                g.capabilities.join(","),
                g.ceiling,
                i64::try_from(g.issued_at).unwrap_or(i64::MAX),
                i64::try_from(g.expires_at).unwrap_or(i64::MAX)
            ],
        )
        .map(drop)
        .map_err(|e| TrustError::store(&self.path, e.to_string()))
    }
}
