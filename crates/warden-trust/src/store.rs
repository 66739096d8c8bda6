//! [`TrustStore`]: trust scores and their history, kept in the Warden database beside the
//! audit log, read and moved on the decision path.
//!
//! Why a writer thread: every decision by a verified agent moves its score, and a database
//! write per decision would cost more than the decision. So each process keeps the states it
//! uses in memory (sharded, no global lock), applies a change there at once, and hands it to
//! one writer thread that applies the *same* change to the database inside a write
//! transaction — from the row as the file holds it then, so several processes moving one
//! agent's score compose — and refreshes memory from the result. In `durable` mode (the CLI,
//! one decision per process) `observe` waits for that commit; in `buffered` mode (a server)
//! it returns at once. States read from the database are refreshed after one second, so a
//! change made by another process is seen within that time.
//!
//! Why events are folded: a busy verified agent moves its score on every decision, most of
//! them the same event (an allowed call whose gain the window already used up: `520 -> 520`).
//! One row per decision made the trust writer the slowest part of a governed server (a row
//! and an index entry each, on the audit log's file). So within one batch, an event equal in
//! every field (same second, outcome, scores, ceiling, action and reason) to the agent's
//! previous event in that batch is counted on that row (`times`) instead of written again:
//! every event is still accounted for, in order per agent, and the events still chain.
//!
//! Commits are `synchronous = NORMAL` (WAL), as the audit log's are by default: a commit
//! survives a crash of the process; only a power loss can take the newest ones.
//!
//! Tables: `trust_scores(agent PRIMARY KEY, score, last_event, window_start, window_gain,
//! events, updated_at)` and `trust_events(id, agent, at, outcome, from_score, to_score,
//! ceiling, action, reason, times)`.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use warden_identity::{RevocationCheck, Revocations};

use crate::config::TrustConfig;
use crate::error::TrustError;
use crate::score::{Outcome, State};
use crate::tier::Tier;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS trust_scores (
    agent TEXT PRIMARY KEY NOT NULL,
    score INTEGER NOT NULL,
    last_event INTEGER NOT NULL,
    window_start INTEGER NOT NULL,
    window_gain INTEGER NOT NULL,
    events INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS trust_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    agent TEXT NOT NULL,
    at INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    from_score INTEGER NOT NULL,
    to_score INTEGER NOT NULL,
    ceiling INTEGER NOT NULL,
    action TEXT,
    reason TEXT,
    times INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS trust_events_by_agent ON trust_events (agent, id);
";

const SHARDS: usize = 16;
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Changes waiting for the writer; a full queue makes `observe` wait.
const QUEUE: usize = 4096;
/// Most changes in one transaction.
const BATCH: usize = 512;
/// Longest agent name stored.
const MAX_AGENT: usize = 512;

/// Where time comes from: the system clock, or a hand-moved one in tests.
pub trait Clock: Send + Sync {
    /// Unix seconds, now.
    fn now(&self) -> u64;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        warden_identity::unix_now()
    }
}

/// A clock that only moves when told (deterministic decay in tests).
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// A clock showing `now`.
    pub fn new(now: u64) -> Self {
        ManualClock(AtomicU64::new(now))
    }
    /// Move forward.
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_secs(), Ordering::Relaxed);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// An agent's trust as read now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Score {
    /// The score, 0–1000: decayed, capped by the ceiling, 0 when revoked.
    pub value: u16,
    /// Its tier.
    pub tier: Tier,
    /// The ceiling it was read under.
    pub ceiling: u16,
    /// Revoked (terminal until an operator restores).
    pub revoked: bool,
    /// Events recorded.
    pub events: u64,
    /// Unix seconds of the last event (0 = never).
    pub last_event: u64,
}

/// One recorded change (or `times` equal ones in a row).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// Unix seconds.
    pub at: u64,
    /// What happened (`allowed`, `violation`, …, or `restored` by an operator).
    pub outcome: String,
    /// Score before.
    pub from: u16,
    /// Score after.
    pub to: u16,
    /// The ceiling it moved under.
    pub ceiling: u16,
    /// The action that caused it.
    pub action: Option<String>,
    /// The decision's reason.
    pub reason: Option<String>,
    /// How many times this event happened in a row (equal in every field above, within one
    /// second): 1 for most; a busy agent's repeated no-change events share a row.
    pub times: u64,
}

/// A change just applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Change {
    /// What happened.
    pub outcome: Outcome,
    /// Score before.
    pub from: u16,
    /// Score after.
    pub to: u16,
}

#[derive(Clone, Copy)]
struct Cached {
    state: State,
    loaded: Instant,
}

type Shard = Mutex<HashMap<Arc<str>, Cached>>;

enum Job {
    Observe {
        agent: Arc<str>,
        outcome: Outcome,
        ceiling: u16,
        at: u64,
        action: String,
        reason: String,
        done: Option<SyncSender<Result<Change, String>>>,
    },
    Flush(SyncSender<()>),
}

struct Shared {
    path: PathBuf,
    config: TrustConfig,
    shards: Box<[Shard]>,
    hasher: RandomState,
    refresh: Duration,
    failed: AtomicU64,
    /// This process's turn to write the file (shared with the audit log's writer): see
    /// [`warden_audit::WriteGate`].
    gate: warden_audit::WriteGate,
}

/// Trust scores of one Warden database.
pub struct TrustStore {
    shared: Arc<Shared>,
    read: Mutex<Connection>,
    queue: Option<SyncSender<Job>>,
    writer: Option<JoinHandle<()>>,
    revocations: Option<Arc<Revocations>>,
    clock: Arc<dyn Clock>,
    durable: bool,
}

impl std::fmt::Debug for TrustStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TrustStore({})", self.shared.path.display())
    }
}

impl TrustStore {
    /// Open the trust tables of the Warden database at `path` (created if needed), scoring
    /// with `config`. Durable by default: `observe` returns once the change is committed.
    pub fn open(path: &Path, config: TrustConfig) -> Result<Self, TrustError> {
        config.validate().map_err(TrustError::Config)?;
        let store = |d: String| TrustError::store(path, d);
        let open = || -> Result<Connection, TrustError> {
            let c =
                warden_audit::open_state(path, BUSY_TIMEOUT).map_err(|e| store(e.to_string()))?;
            c.execute_batch(SCHEMA)
                .map_err(|e| store(format!("cannot create the trust tables: {e}")))?;
            add_times_column(&c)
                .map_err(|e| store(format!("cannot add trust_events.times: {e}")))?;
            c.execute_batch("PRAGMA synchronous = NORMAL")
                .map_err(|e| store(format!("cannot set synchronous mode: {e}")))?;
            Ok(c)
        };
        let read = open()?;
        let write = open()?;
        let shared = Arc::new(Shared {
            path: path.to_path_buf(),
            config,
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            refresh: Duration::from_secs(1),
            failed: AtomicU64::new(0),
            gate: warden_audit::WriteGate::of(path),
        });
        let (tx, rx) = sync_channel(QUEUE);
        let writer_shared = shared.clone();
        let writer = std::thread::Builder::new()
            .name("warden-trust-writer".into())
            .spawn(move || write_loop(&writer_shared, write, &rx))
            .map_err(|e| store(format!("cannot start the trust writer: {e}")))?;
        Ok(TrustStore {
            shared,
            read: Mutex::new(read),
            queue: Some(tx),
            writer: Some(writer),
            revocations: None,
            clock: Arc::new(SystemClock),
            durable: true,
        })
    }

    /// Read revocations from this list: a revoked agent's score is 0 and does not move.
    pub fn with_revocations(mut self, revocations: Arc<Revocations>) -> Self {
        self.revocations = Some(revocations);
        self
    }

    /// Use this clock (tests).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// `true`: `observe` waits for the commit (default). `false`: it returns once queued.
    pub fn durable(mut self, on: bool) -> Self {
        self.durable = on;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &TrustConfig {
        &self.shared.config
    }

    /// The clock's time.
    pub fn now(&self) -> u64 {
        self.clock.now()
    }

    fn revoked(&self, agent: &str) -> Result<bool, TrustError> {
        match &self.revocations {
            None => Ok(false),
            Some(r) => r
                .revoked(agent)
                .map(|r| r.is_some())
                .map_err(|e| TrustError::store(&self.shared.path, e)),
        }
    }

    fn shard(&self, agent: &str) -> &Shard {
        &self.shared.shards[(self.shared.hasher.hash_one(agent) as usize) % SHARDS]
    }

    /// How many agents this process holds in memory (for tests of its bound).
    #[doc(hidden)]
    pub fn agents_in_memory(&self) -> usize {
        self.shared.shards.iter().map(|s| lock(s).len()).sum()
    }

    /// The state of `agent`, from memory when fresh, else from the database.
    fn state(&self, agent: &str) -> Result<State, TrustError> {
        {
            let map = lock(self.shard(agent));
            if let Some(c) = map.get(agent)
                && c.loaded.elapsed() < self.shared.refresh
            {
                return Ok(c.state);
            }
        }
        if agent.len() > MAX_AGENT {
            return Err(TrustError::store(
                &self.shared.path,
                format!("agent name longer than {MAX_AGENT} bytes"),
            ));
        }
        let stored = {
            let conn = lock(&self.read);
            load(&conn, agent).map_err(|e| TrustError::store(&self.shared.path, e))?
        };
        // An agent with no score yet is not cached: asking about any number of names
        // (`GET /v1/trust?agent=…`) must not grow this process. Its first observed
        // decision stores it (and caches it).
        let Some(state) = stored else {
            return Ok(State::new(&self.shared.config));
        };
        lock(self.shard(agent)).insert(
            Arc::from(agent),
            Cached {
                state,
                loaded: Instant::now(),
            },
        );
        Ok(state)
    }

    /// `agent`'s trust now, under `ceiling`.
    pub fn score(&self, agent: &str, ceiling: u16) -> Result<Score, TrustError> {
        let revoked = self.revoked(agent)?;
        let state = self.state(agent)?;
        let value = if revoked {
            0
        } else {
            state.current(self.now(), ceiling, &self.shared.config)
        };
        Ok(Score {
            value,
            tier: Tier::of(value),
            ceiling,
            revoked,
            events: state.events,
            last_event: state.last_event,
        })
    }

    /// Move `agent`'s score on what Warden observed. `None` when nothing moves (a revoked
    /// agent, an approval request). The change is applied in memory at once and committed
    /// by the writer (waited for in durable mode).
    pub fn observe(
        &self,
        agent: &str,
        outcome: Outcome,
        ceiling: u16,
        action: &str,
        reason: &str,
    ) -> Result<Option<Change>, TrustError> {
        if outcome == Outcome::ApprovalRequired || self.revoked(agent)? {
            return Ok(None);
        }
        if agent.len() > MAX_AGENT {
            return Err(TrustError::store(
                &self.shared.path,
                format!("agent name longer than {MAX_AGENT} bytes"),
            ));
        }
        let now = self.now();
        let state = self.state(agent)?;
        let (next, from, to) = state.apply(outcome, ceiling, now, &self.shared.config);
        let key: Arc<str> = Arc::from(agent);
        lock(self.shard(agent)).insert(
            key.clone(),
            Cached {
                state: next,
                loaded: Instant::now(),
            },
        );
        let (done, wait) = if self.durable {
            let (tx, rx) = sync_channel(1);
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let job = Job::Observe {
            agent: key,
            outcome,
            ceiling,
            at: now,
            action: action.to_string(),
            reason: reason.to_string(),
            done,
        };
        let queue = self.queue.as_ref().ok_or_else(|| {
            TrustError::store(
                &self.shared.path,
                "the trust writer has stopped".to_string(),
            )
        })?;
        queue.send(job).map_err(|_| {
            TrustError::store(
                &self.shared.path,
                "the trust writer has stopped".to_string(),
            )
        })?;
        match wait {
            None => Ok(Some(Change { outcome, from, to })),
            Some(rx) => match rx.recv() {
                Ok(Ok(change)) => Ok(Some(change)),
                Ok(Err(e)) => Err(TrustError::store(&self.shared.path, e)),
                Err(_) => Err(TrustError::store(
                    &self.shared.path,
                    "the trust writer stopped before committing".to_string(),
                )),
            },
        }
    }

    /// Wait until every change queued so far is committed.
    pub fn flush(&self) -> Result<(), TrustError> {
        let Some(queue) = &self.queue else {
            return Ok(());
        };
        let (tx, rx) = sync_channel(1);
        if queue.send(Job::Flush(tx)).is_err() || rx.recv().is_err() {
            return Err(TrustError::store(
                &self.shared.path,
                "the trust writer has stopped".to_string(),
            ));
        }
        match self.shared.failed.load(Ordering::Relaxed) {
            0 => Ok(()),
            n => Err(TrustError::store(
                &self.shared.path,
                format!("{n} trust changes could not be committed"),
            )),
        }
    }

    /// Start `agent` again at the initial score (an operator's decision, after a restore);
    /// recorded as a `restored` event.
    pub fn restore(&self, agent: &str, reason: &str) -> Result<Change, TrustError> {
        self.flush()?;
        let c = &self.shared.config;
        let now = self.now();
        let mut conn = lock(&self.read);
        let _turn = self.shared.gate.enter();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| TrustError::store(&self.shared.path, e.to_string()))?;
        let old = load(&tx, agent)
            .map_err(|e| TrustError::store(&self.shared.path, e))?
            .unwrap_or_else(|| State::new(c));
        let from = old.current(now, 1000, c);
        let next = State {
            last_event: now.max(1),
            events: old.events + 1,
            ..State::new(c)
        };
        save(&tx, agent, &next, now).map_err(|e| TrustError::store(&self.shared.path, e))?;
        insert_event(
            &tx,
            &Folded {
                agent,
                at: now,
                outcome: "restored",
                from,
                to: next.score,
                ceiling: 1000,
                action: None,
                reason,
                times: 1,
            },
        )
        .map_err(|e| TrustError::store(&self.shared.path, e))?;
        tx.commit()
            .map_err(|e| TrustError::store(&self.shared.path, e.to_string()))?;
        lock(self.shard(agent)).remove(agent);
        Ok(Change {
            outcome: Outcome::Allowed,
            from,
            to: next.score,
        })
    }

    /// Every agent with a stored score, and its score now (ceiling 1000), highest first.
    pub fn agents(&self, limit: usize) -> Result<Vec<(String, Score)>, TrustError> {
        self.flush()?;
        let names: Vec<String> = {
            let conn = lock(&self.read);
            let mut stmt = conn
                .prepare("SELECT agent FROM trust_scores ORDER BY agent LIMIT ?1")
                .map_err(|e| TrustError::store(&self.shared.path, e.to_string()))?;
            stmt.query_map(params![i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
                r.get(0)
            })
            .and_then(Iterator::collect)
            .map_err(|e| TrustError::store(&self.shared.path, e.to_string()))?
        };
        let mut out = Vec::with_capacity(names.len());
        for n in names {
            lock(self.shard(&n)).remove(n.as_str());
            let s = self.score(&n, 1000)?;
            out.push((n, s));
        }
        out.sort_by(|a, b| b.1.value.cmp(&a.1.value).then(a.0.cmp(&b.0)));
        Ok(out)
    }

    /// `agent`'s most recent events, oldest first: at most `limit` rows (a row may stand for
    /// several equal events in a row: see [`Event::times`]).
    pub fn events(&self, agent: &str, limit: usize) -> Result<Vec<Event>, TrustError> {
        self.flush()?;
        let conn = lock(&self.read);
        let mut stmt = conn
            .prepare(
                "SELECT at, outcome, from_score, to_score, ceiling, action, reason, times FROM (
                   SELECT * FROM trust_events WHERE agent = ?1 ORDER BY id DESC LIMIT ?2
                 ) ORDER BY id",
            )
            .map_err(|e| TrustError::store(&self.shared.path, e.to_string()))?;
        let rows = stmt
            .query_map(
                params![agent, i64::try_from(limit).unwrap_or(i64::MAX)],
                |r| {
                    Ok(Event {
                        at: r.get::<_, i64>(0)?.try_into().unwrap_or(0),
                        outcome: r.get(1)?,
                        from: r.get(2)?,
                        to: r.get(3)?,
                        ceiling: r.get(4)?,
                        action: r.get(5)?,
                        reason: r.get(6)?,
                        times: r.get::<_, i64>(7)?.try_into().unwrap_or(1),
                    })
                },
            )
            .and_then(Iterator::collect)
            .map_err(|e| TrustError::store(&self.shared.path, e.to_string()))?;
        Ok(rows)
    }
}

impl Drop for TrustStore {
    fn drop(&mut self) {
        // Closing the queue lets the writer commit what is left, then stop.
        self.queue.take();
        if let Some(w) = self.writer.take()
            && w.join().is_err()
        {
            tracing::error!("the trust writer panicked; queued trust changes may be lost");
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write_loop(shared: &Shared, mut conn: Connection, rx: &Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while jobs.len() < BATCH {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let results = commit(shared, &mut conn, &jobs);
        for (job, result) in jobs.into_iter().zip(results) {
            match job {
                Job::Flush(done) => {
                    let _ = done.send(());
                }
                Job::Observe { agent, done, .. } => {
                    match &result {
                        Ok((state, _)) => {
                            lock(
                                &shared.shards[(shared.hasher.hash_one(&*agent) as usize) % SHARDS],
                            )
                            .insert(
                                agent,
                                Cached {
                                    state: *state,
                                    loaded: Instant::now(),
                                },
                            );
                        }
                        Err(e) => {
                            shared.failed.fetch_add(1, Ordering::Relaxed);
                            tracing::error!("trust change for {agent} not committed: {e}");
                        }
                    }
                    if let Some(done) = done {
                        let _ = done.send(result.map(|(_, c)| c));
                    }
                }
            }
        }
    }
}

/// One job's result: the committed state and the change, or why it failed.
type Committed = Result<(State, Change), String>;

/// Apply a batch in one transaction; one result per job (flushes get an `Err("")` that
/// nobody reads).
fn commit(shared: &Shared, conn: &mut Connection, jobs: &[Job]) -> Vec<Committed> {
    let run = |conn: &mut Connection| -> Result<Vec<Committed>, String> {
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| format!("cannot start a transaction: {e}"))?;
        let mut out = Vec::with_capacity(jobs.len());
        // Each agent's row is read once and written once per batch; events equal to the
        // agent's previous one in this batch are counted on its row (see the module docs).
        let mut states: HashMap<&str, (State, u64, Option<usize>)> = HashMap::new();
        let mut events: Vec<Folded<'_>> = Vec::new();
        for job in jobs {
            let Job::Observe {
                agent,
                outcome,
                ceiling,
                at,
                action,
                reason,
                ..
            } = job
            else {
                out.push(Err(String::new()));
                continue;
            };
            let c = &shared.config;
            let (state, last) = match states.get(&**agent) {
                Some((s, _, last)) => (*s, *last),
                None => (load(&tx, agent)?.unwrap_or_else(|| State::new(c)), None),
            };
            let (next, from, to) = state.apply(*outcome, *ceiling, *at, c);
            let event = Folded {
                agent,
                at: *at,
                outcome: outcome.as_str(),
                from,
                to,
                ceiling: *ceiling,
                action: Some(action),
                reason,
                times: 1,
            };
            let last = match last.and_then(|i| events.get_mut(i).map(|e| (i, e))) {
                Some((i, e)) if e.same(&event) => {
                    e.times += 1;
                    i
                }
                _ => {
                    events.push(event);
                    events.len() - 1
                }
            };
            states.insert(agent, (next, *at, Some(last)));
            out.push(Ok((
                next,
                Change {
                    outcome: *outcome,
                    from,
                    to,
                },
            )));
        }
        for e in &events {
            insert_event(&tx, e)?;
        }
        for (agent, (state, at, _)) in &states {
            save(&tx, agent, state, *at)?;
        }
        tx.commit().map_err(|e| format!("cannot commit: {e}"))?;
        Ok(out)
    };
    let result = {
        let _turn = shared.gate.enter();
        run(conn)
    };
    match result {
        Ok(r) => r,
        Err(e) => jobs.iter().map(|_| Err(e.clone())).collect(),
    }
}

fn load(conn: &Connection, agent: &str) -> Result<Option<State>, String> {
    conn.prepare_cached(
        "SELECT score, last_event, window_start, window_gain, events FROM trust_scores
         WHERE agent = ?1",
    )
    .and_then(|mut stmt| {
        stmt.query_row(params![agent], |r| {
            Ok(State {
                score: r.get::<_, u16>(0)?.min(1000),
                last_event: r.get::<_, i64>(1)?.try_into().unwrap_or(0),
                window_start: r.get::<_, i64>(2)?.try_into().unwrap_or(0),
                window_gain: r.get(3)?,
                events: r.get::<_, i64>(4)?.try_into().unwrap_or(0),
            })
        })
    })
    .optional()
    .map_err(|e| format!("cannot read the trust score of {agent}: {e}"))
}

fn i64s(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn save(conn: &Connection, agent: &str, s: &State, now: u64) -> Result<(), String> {
    conn.prepare_cached(
        "INSERT INTO trust_scores (agent, score, last_event, window_start, window_gain, events, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT(agent) DO UPDATE SET score = ?2, last_event = ?3, window_start = ?4,
           window_gain = ?5, events = ?6, updated_at = ?7",
    )
    .and_then(|mut stmt| stmt.execute(params![
            agent,
            s.score,
            i64s(s.last_event),
            i64s(s.window_start),
            s.window_gain,
            i64s(s.events),
            i64s(now)
        ]))
    .map(drop)
    .map_err(|e| format!("cannot store the trust score of {agent}: {e}"))
}

/// An event to write: one, or `times` equal ones in a row.
struct Folded<'a> {
    agent: &'a str,
    at: u64,
    outcome: &'static str,
    from: u16,
    to: u16,
    ceiling: u16,
    /// `None` for an operator's restore.
    action: Option<&'a str>,
    reason: &'a str,
    times: u64,
}

impl Folded<'_> {
    /// The same event again (the agent is the same by construction).
    fn same(&self, other: &Folded<'_>) -> bool {
        (self.at, self.outcome, self.from, self.to, self.ceiling)
            == (other.at, other.outcome, other.from, other.to, other.ceiling)
            && self.action == other.action
            && self.reason == other.reason
    }
}

fn insert_event(conn: &Connection, e: &Folded<'_>) -> Result<(), String> {
    conn.prepare_cached(
        "INSERT INTO trust_events (agent, at, outcome, from_score, to_score, ceiling, action, reason, times)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            e.agent,
            i64s(e.at),
            e.outcome,
            e.from,
            e.to,
            e.ceiling,
            e.action,
            e.reason,
            i64s(e.times)
        ])
    })
    .map(drop)
    .map_err(|err| format!("cannot record the trust event of {}: {err}", e.agent))
}

/// Logs made before `times` existed get the column (every old row counts once). Two
/// processes may race to add it: the loser finds it there.
fn add_times_column(c: &Connection) -> rusqlite::Result<()> {
    let has = |c: &Connection| -> rusqlite::Result<bool> {
        let mut stmt =
            c.prepare("SELECT 1 FROM pragma_table_info('trust_events') WHERE name = 'times'")?;
        stmt.exists([])
    };
    if has(c)? {
        return Ok(());
    }
    match c.execute_batch("ALTER TABLE trust_events ADD COLUMN times INTEGER NOT NULL DEFAULT 1") {
        Ok(()) => Ok(()),
        Err(_) if has(c)? => Ok(()),
        Err(e) => Err(e),
    }
}
