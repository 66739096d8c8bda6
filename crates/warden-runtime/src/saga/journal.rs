//! The saga journal: every saga's spec, state and history in the one Warden database, written
//! *before* each thing it records is started, so a process that dies at any point leaves a
//! journal from which another process can finish the work.
//!
//! | table | holds |
//! |---|---|
//! | `sagas` | one row per saga: spec (JSON), directory, status, why it failed, the process that owns it |
//! | `saga_steps` | one row per step: status, attempts, compensation attempts, last detail |
//! | `saga_events` | the history, in order: each attempt, each compensation, each state change |
//!
//! A saga being worked on has an *owner*: the boot, process id and start time of the process
//! running it. `warden saga resume` takes over only sagas whose owner is gone (that process no
//! longer exists on this boot), and takes one over in a `BEGIN IMMEDIATE` transaction, so two
//! resumers never both run a saga's compensations.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::Serialize;

use warden_policy::saga::SagaSpec;

use super::owner;
use super::status::{SagaStatus, StepStatus, now_ns};
use crate::error::RuntimeError;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS sagas (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    agent      TEXT,
    spec       TEXT NOT NULL,
    cwd        TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN
                 ('running', 'compensating', 'completed', 'compensated', 'escalated')),
    reason     TEXT,
    owner      TEXT,
    created_ns INTEGER NOT NULL,
    updated_ns INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS saga_steps (
    saga          TEXT NOT NULL,
    idx           INTEGER NOT NULL,
    id            TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed',
                    'interrupted', 'compensating', 'compensated', 'compensation_failed')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    compensations INTEGER NOT NULL DEFAULT 0,
    detail        TEXT,
    updated_ns    INTEGER NOT NULL,
    PRIMARY KEY (saga, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS saga_events (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    saga   TEXT NOT NULL,
    at_ns  INTEGER NOT NULL,
    step   TEXT,
    event  TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS saga_events_by_saga ON saga_events (saga, seq);
";

/// The longest detail kept for a step or event (a command's error, a denial's reason).
const MAX_DETAIL: usize = 2048;

/// One saga as `warden saga list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SagaRow {
    /// The saga's id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// The agent its steps are judged for.
    pub agent: Option<String>,
    /// Where it stands.
    pub status: SagaStatus,
    /// Why it failed or escalated.
    pub reason: Option<String>,
    /// When it started (ns since the epoch).
    pub created_ns: u64,
    /// When it last changed.
    pub updated_ns: u64,
    /// Whether a live process is working on it.
    pub owned: bool,
}

/// One step as `warden saga show` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepRow {
    /// Position in the saga (0-based).
    pub index: usize,
    /// The step's id.
    pub id: String,
    /// Where it stands.
    pub status: StepStatus,
    /// Attempts started.
    pub attempts: u32,
    /// Compensation attempts started.
    pub compensations: u32,
    /// The last thing said about it (an error, a denial).
    pub detail: Option<String>,
}

/// One entry of a saga's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventRow {
    /// Order in the whole journal.
    pub seq: u64,
    /// When (ns since the epoch).
    pub at_ns: u64,
    /// The step, if the event is about one.
    pub step: Option<String>,
    /// What happened (`started`, `step.started`, `step.done`, `compensation.done`, …).
    pub event: String,
    /// Details.
    pub detail: Option<String>,
}

/// A saga with its steps and history (`warden saga show`).
#[derive(Debug, Clone, Serialize)]
pub struct SagaView {
    /// The saga.
    #[serde(flatten)]
    pub saga: SagaRow,
    /// The spec it runs.
    pub spec: SagaSpec,
    /// The directory its commands run in.
    pub cwd: PathBuf,
    /// Its steps, in order.
    pub steps: Vec<StepRow>,
    /// What happened, in order.
    pub events: Vec<EventRow>,
}

/// What changes with a step's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Count {
    /// Nothing else.
    None,
    /// One more attempt started.
    Attempt,
    /// One more compensation attempt started.
    Compensation,
}

/// The saga journal in a Warden database.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl Journal {
    /// Open (and, the first time, create) the journal in the Warden database at `path`.
    pub fn open(path: &Path) -> Result<Journal, RuntimeError> {
        let conn = warden_audit::open_state(path, Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)
            .map_err(RuntimeError::db(path, "cannot create the saga tables"))?;
        Ok(Journal {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn err(&self, what: &'static str) -> impl FnOnce(rusqlite::Error) -> RuntimeError {
        RuntimeError::db(&self.path, what)
    }

    /// Record a new saga, owned by `owner`, with every step pending.
    pub(crate) fn create(
        &self,
        id: &str,
        spec: &SagaSpec,
        agent: Option<&str>,
        cwd: &Path,
        owner: &str,
        now: u64,
    ) -> Result<(), RuntimeError> {
        let json = serde_json::to_string(spec)
            .map_err(|e| RuntimeError::Invalid(format!("cannot store the saga: {e}")))?;
        let cwd = cwd.to_str().ok_or_else(|| {
            RuntimeError::Invalid(format!(
                "the working directory {} is not UTF-8",
                cwd.display()
            ))
        })?;
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(self.err("cannot start a transaction"))?;
        tx.execute(
            "INSERT INTO sagas (id, name, agent, spec, cwd, status, owner, created_ns, updated_ns)
             VALUES (?1, ?2, ?3, ?4, ?5, 'running', ?6, ?7, ?7)",
            params![id, spec.name, agent, json, cwd, owner, now as i64],
        )
        .map_err(self.err("cannot record the saga"))?;
        for (i, step) in spec.steps.iter().enumerate() {
            tx.execute(
                "INSERT INTO saga_steps (saga, idx, id, status, updated_ns)
                 VALUES (?1, ?2, ?3, 'pending', ?4)",
                params![id, i as i64, step.id, now as i64],
            )
            .map_err(self.err("cannot record the saga's steps"))?;
        }
        event(&tx, id, now, None, "started", Some(&spec.name))
            .map_err(self.err("cannot record"))?;
        tx.commit().map_err(self.err("cannot commit the saga"))
    }

    /// Set a step's status (and count an attempt), with an event in the history.
    pub(crate) fn step(
        &self,
        saga: &str,
        index: usize,
        status: StepStatus,
        count: Count,
        event_name: &str,
        detail: Option<&str>,
    ) -> Result<(), RuntimeError> {
        let now = now_ns();
        let detail = detail.map(clip);
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(self.err("cannot start a transaction"))?;
        self.fence(&tx, saga)?;
        let (attempts, compensations) = match count {
            Count::None => (0, 0),
            Count::Attempt => (1, 0),
            Count::Compensation => (0, 1),
        };
        let step_id: String = tx
            .query_row(
                "UPDATE saga_steps SET status = ?3, detail = coalesce(?4, detail),
                     attempts = attempts + ?5, compensations = compensations + ?6, updated_ns = ?7
                 WHERE saga = ?1 AND idx = ?2 RETURNING id",
                params![
                    saga,
                    index as i64,
                    status.as_str(),
                    detail,
                    attempts,
                    compensations,
                    now as i64
                ],
                |r| r.get(0),
            )
            .map_err(self.err("cannot record the step"))?;
        tx.execute(
            "UPDATE sagas SET updated_ns = ?2 WHERE id = ?1",
            params![saga, now as i64],
        )
        .map_err(self.err("cannot record the step"))?;
        event(
            &tx,
            saga,
            now,
            Some(&step_id),
            event_name,
            detail.as_deref(),
        )
        .map_err(self.err("cannot record the step"))?;
        tx.commit().map_err(self.err("cannot commit the step"))
    }

    /// Set the saga's status (and, when it is finished, let go of it).
    pub(crate) fn saga(
        &self,
        saga: &str,
        status: SagaStatus,
        reason: Option<&str>,
        now: u64,
    ) -> Result<(), RuntimeError> {
        let reason = reason.map(clip);
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(self.err("cannot start a transaction"))?;
        self.fence(&tx, saga)?;
        let finished = status.is_finished();
        tx.execute(
            "UPDATE sagas SET status = ?2, reason = coalesce(?3, reason), updated_ns = ?4,
                 owner = CASE WHEN ?5 THEN NULL ELSE owner END
             WHERE id = ?1",
            params![saga, status.as_str(), reason, now as i64, finished],
        )
        .map_err(self.err("cannot record the saga's state"))?;
        event(&tx, saga, now, None, status.as_str(), reason.as_deref())
            .map_err(self.err("cannot record the saga's state"))?;
        tx.commit()
            .map_err(self.err("cannot commit the saga's state"))
    }

    /// Take over saga `id` for `owner` if nobody alive is working on it and it is unfinished
    /// (or escalated, when `escalated` is true: an operator retrying it). Returns the saga,
    /// or why it cannot be taken.
    pub(crate) fn claim(
        &self,
        id: &str,
        owner: &str,
        escalated: bool,
        now: u64,
    ) -> Result<Result<SagaView, String>, RuntimeError> {
        // A saga whose journal entry is corrupt is refused before it is taken over, so the
        // refusal changes nothing in the journal.
        self.show(id)?;
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(self.err("cannot start a transaction"))?;
        let row: Option<(String, Option<String>)> = tx
            .query_row(
                "SELECT status, owner FROM sagas WHERE id = ?1",
                params![id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(self.err("cannot read the saga"))?;
        let Some((status, current)) = row else {
            return Ok(Err(format!("no saga `{id}` in {}", self.path.display())));
        };
        let status = SagaStatus::parse(&status).ok_or_else(|| self.corrupt(&status))?;
        let resumable = match status {
            SagaStatus::Running | SagaStatus::Compensating => true,
            SagaStatus::Escalated => escalated,
            SagaStatus::Completed | SagaStatus::Compensated => false,
        };
        if !resumable {
            return Ok(Err(format!(
                "saga `{id}` is {}: nothing to resume",
                status.as_str()
            )));
        }
        if let Some(current) = current.as_deref()
            && owner::alive(current)
        {
            return Ok(Err(format!(
                "saga `{id}` is being run by a live process ({current})"
            )));
        }
        tx.execute(
            "UPDATE sagas SET owner = ?2, updated_ns = ?3 WHERE id = ?1",
            params![id, owner, now as i64],
        )
        .map_err(self.err("cannot take over the saga"))?;
        event(&tx, id, now, None, "resumed", Some(owner)).map_err(self.err("cannot record"))?;
        tx.commit()
            .map_err(self.err("cannot commit the take-over"))?;
        drop(conn);
        match self.show(id)? {
            Some(view) => Ok(Ok(view)),
            None => Ok(Err(format!("saga `{id}` vanished"))),
        }
    }

    /// Fail unless this process owns saga `id`: a runner that another process took over
    /// (having judged it dead) writes nothing more and starts nothing more, so two processes
    /// never both work on one saga even when liveness was judged wrong (another pid
    /// namespace sharing the file, say). Checked in the transaction of every write.
    fn fence(&self, tx: &rusqlite::Transaction<'_>, id: &str) -> Result<(), RuntimeError> {
        let owner: Option<Option<String>> = tx
            .query_row("SELECT owner FROM sagas WHERE id = ?1", params![id], |r| {
                r.get(0)
            })
            .optional()
            .map_err(self.err("cannot read the saga's owner"))?;
        match owner {
            Some(Some(o)) if o == owner::me() => Ok(()),
            Some(owner) => Err(RuntimeError::TakenOver {
                saga: id.to_string(),
                owner,
            }),
            None => Err(RuntimeError::Invalid(format!("saga `{id}` vanished"))),
        }
    }

    /// Let go of saga `id` if `owner` holds it (after an error: nothing of it runs), so
    /// that it can be resumed.
    pub(crate) fn release(&self, id: &str, owner: &str) -> Result<(), RuntimeError> {
        self.conn()
            .execute(
                "UPDATE sagas SET owner = NULL WHERE id = ?1 AND owner = ?2",
                params![id, owner],
            )
            .map_err(self.err("cannot let go of the saga"))?;
        Ok(())
    }

    fn corrupt(&self, what: &str) -> RuntimeError {
        RuntimeError::Corrupt {
            path: self.path.clone(),
            detail: format!("a saga has the unknown status `{what}`"),
        }
    }

    /// Every saga, newest first (at most `limit`).
    pub fn list(&self, limit: usize) -> Result<Vec<SagaRow>, RuntimeError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT id, name, agent, status, reason, created_ns, updated_ns, owner FROM sagas
                 ORDER BY created_ns DESC, id LIMIT ?1",
            )
            .map_err(self.err("cannot list the sagas"))?;
        let rows = stmt
            .query_map(params![i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, Option<String>>(7)?,
                ))
            })
            .map_err(self.err("cannot list the sagas"))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, name, agent, status, reason, created, updated, owner) =
                row.map_err(self.err("cannot list the sagas"))?;
            out.push(SagaRow {
                id,
                name,
                agent,
                status: SagaStatus::parse(&status).ok_or_else(|| self.corrupt(&status))?,
                reason,
                created_ns: created as u64,
                updated_ns: updated as u64,
                owned: owner.as_deref().is_some_and(owner::alive),
            });
        }
        Ok(out)
    }

    /// The ids of unfinished sagas whose owner is gone (what `warden saga resume` takes up).
    pub fn orphans(&self) -> Result<Vec<String>, RuntimeError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT id, owner FROM sagas WHERE status IN ('running', 'compensating')
                 ORDER BY created_ns, id",
            )
            .map_err(self.err("cannot list the sagas"))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
            })
            .map_err(self.err("cannot list the sagas"))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, owner) = row.map_err(self.err("cannot list the sagas"))?;
            if !owner.as_deref().is_some_and(owner::alive) {
                out.push(id);
            }
        }
        Ok(out)
    }

    /// One saga with its steps and history.
    pub fn show(&self, id: &str) -> Result<Option<SagaView>, RuntimeError> {
        let conn = self.conn();
        let row = conn
            .query_row(
                "SELECT id, name, agent, status, reason, created_ns, updated_ns, owner, spec, cwd
                 FROM sagas WHERE id = ?1",
                params![id],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Option<String>>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, Option<String>>(4)?,
                        r.get::<_, i64>(5)?,
                        r.get::<_, i64>(6)?,
                        r.get::<_, Option<String>>(7)?,
                        r.get::<_, String>(8)?,
                        r.get::<_, String>(9)?,
                    ))
                },
            )
            .optional()
            .map_err(self.err("cannot read the saga"))?;
        let Some((id, name, agent, status, reason, created, updated, owner, spec, cwd)) = row
        else {
            return Ok(None);
        };
        let corrupt = |detail: String| RuntimeError::Corrupt {
            path: self.path.clone(),
            detail,
        };
        let spec: SagaSpec = serde_json::from_str(&spec)
            .map_err(|e| corrupt(format!("saga `{id}` has an unreadable spec: {e}")))?;
        // Another process may have written the row: nothing of a spec the file could not
        // have said runs (an unbounded time limit, 4 billion retries, an empty command).
        spec.check().map_err(|e| {
            corrupt(format!(
                "saga `{id}` has a spec no saga file could give: {e}"
            ))
        })?;
        let mut stmt = conn
            .prepare(
                "SELECT idx, id, status, attempts, compensations, detail FROM saga_steps
                 WHERE saga = ?1 ORDER BY idx",
            )
            .map_err(self.err("cannot read the saga's steps"))?;
        let mut steps = Vec::new();
        let rows = stmt
            .query_map(params![id], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, Option<String>>(5)?,
                ))
            })
            .map_err(self.err("cannot read the saga's steps"))?;
        for row in rows {
            let (index, step, status, attempts, compensations, detail) =
                row.map_err(self.err("cannot read the saga's steps"))?;
            // Row i is step i of the spec, under its id, with counts a runner could reach.
            let expected = spec.steps.get(steps.len()).map(|s| s.id.as_str());
            let count = |n: i64| u32::try_from(n).ok();
            let (Some(attempts), Some(compensations)) = (count(attempts), count(compensations))
            else {
                return Err(corrupt(format!(
                    "saga `{id}` has a step row with a count out of range"
                )));
            };
            if usize::try_from(index).ok() != Some(steps.len()) || expected != Some(step.as_str()) {
                return Err(corrupt(format!(
                    "saga `{id}` has a step row ({index}, `{}`) that is not step {} of its spec",
                    step.escape_debug(),
                    steps.len()
                )));
            }
            steps.push(StepRow {
                index: steps.len(),
                id: step,
                status: StepStatus::parse(&status).ok_or_else(|| self.corrupt(&status))?,
                attempts,
                compensations,
                detail,
            });
        }
        if steps.len() != spec.steps.len() {
            return Err(corrupt(format!(
                "saga `{id}` has {} step rows for {} steps",
                steps.len(),
                spec.steps.len()
            )));
        }
        let mut stmt = conn
            .prepare(
                "SELECT seq, at_ns, step, event, detail FROM saga_events WHERE saga = ?1
                 ORDER BY seq",
            )
            .map_err(self.err("cannot read the saga's history"))?;
        let events = stmt
            .query_map(params![id], |r| {
                Ok(EventRow {
                    seq: r.get::<_, i64>(0)? as u64,
                    at_ns: r.get::<_, i64>(1)? as u64,
                    step: r.get(2)?,
                    event: r.get(3)?,
                    detail: r.get(4)?,
                })
            })
            .map_err(self.err("cannot read the saga's history"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.err("cannot read the saga's history"))?;
        let status = SagaStatus::parse(&status).ok_or_else(|| self.corrupt(&status))?;
        Ok(Some(SagaView {
            saga: SagaRow {
                id,
                name,
                agent,
                status,
                reason,
                created_ns: created as u64,
                updated_ns: updated as u64,
                owned: owner.as_deref().is_some_and(owner::alive),
            },
            spec,
            cwd: PathBuf::from(cwd),
            steps,
            events,
        }))
    }
}

fn event(
    tx: &rusqlite::Transaction<'_>,
    saga: &str,
    now: u64,
    step: Option<&str>,
    event: &str,
    detail: Option<&str>,
) -> rusqlite::Result<usize> {
    tx.execute(
        "INSERT INTO saga_events (saga, at_ns, step, event, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![saga, now as i64, step, event, detail],
    )
}

fn clip(s: &str) -> String {
    if s.len() <= MAX_DETAIL {
        return s.to_string();
    }
    let mut end = MAX_DETAIL;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}
