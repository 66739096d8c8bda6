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
//! Why buffered events are noted where they happen: handing every decision to the writer
//! (two strings, a shared pointer and a channel send on the deciding thread; a job to unpack
//! and replay on the writer) cost about 2 µs of CPU per decision at 100k decisions/s. In
//! buffered mode the deciding thread now notes the event beside the agent's state in memory
//! (an equal event in a row, the common case, is one more count on the last one) and rings
//! the writer only when the agent had nothing noted. The writer takes everything noted at
//! once, at most every few milliseconds ([`LINGER`]; at once for a `flush`), and replays it
//! on the stored row exactly as before: the same rows, the same counts, the same chain.
//! Noted events are bounded per agent ([`MAX_NOTED`]): past that, `observe` waits for the
//! writer, as a full queue made it wait before.
//!
//! Commits are `synchronous = NORMAL` (WAL), as the audit log's are by default: a commit
//! survives a crash of the process; only a power loss can take the newest ones.
//!
//! Tables: `trust_scores(agent PRIMARY KEY, score, last_event, window_start, window_gain,
//! events, updated_at)` and `trust_events(id, agent, at, outcome, from_score, to_score,
//! ceiling, action, reason, times)`.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

// foldhash, not std's SipHash: two lookups per verified decision each hashed the ~57-byte DID
// twice (~1,000 instructions, callgrind). Only verified agents are kept, so no one can fill a
// shard with chosen colliding names; the seed is still random per process.
use foldhash::quality::RandomState;

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
/// Most different events one agent may have noted for the writer (buffered mode) before
/// `observe` waits for the writer to take them.
const MAX_NOTED: usize = 4096;
/// How long the writer lets buffered events gather after it was rung, before it takes them
/// (a `flush`, or closing the store, does not wait). One transaction per agent per
/// few milliseconds, instead of one per handful of decisions competing with the audit log
/// for the file.
const LINGER: Duration = Duration::from_millis(5);

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

struct Cached {
    /// The agent's name (the map's key too), for ringing the writer without allocating.
    name: Arc<str>,
    /// The state with every event this process observed applied (committed or noted).
    state: State,
    /// When `state` was last read from the database or moved here.
    loaded: Instant,
    /// Buffered mode: events applied to `state` that the writer has not taken yet, oldest
    /// first, equal ones in a row counted on one. While there are any, `state` is this
    /// process's truth for the agent (the database does not hold them yet).
    noted: Vec<Noted>,
}

/// An observed event for the writer: `times` equal ones in a row.
#[derive(Debug, Clone)]
struct Noted {
    outcome: Outcome,
    ceiling: u16,
    at: u64,
    action: Arc<str>,
    reason: Arc<str>,
    times: u64,
}

impl Noted {
    fn is(&self, outcome: Outcome, ceiling: u16, at: u64, action: &str, reason: &str) -> bool {
        (self.outcome, self.ceiling, self.at) == (outcome, ceiling, at)
            && *self.action == *action
            && *self.reason == *reason
    }
}

/// `state` after `noted`, in order.
fn replay(mut state: State, noted: &[Noted], c: &TrustConfig) -> State {
    for n in noted {
        for _ in 0..n.times {
            state = state.apply(n.outcome, n.ceiling, n.at, c).0;
        }
    }
    state
}

type Shard = Mutex<HashMap<Arc<str>, Cached, RandomState>>;

enum Job {
    /// Durable mode: one event, whose commit the caller waits for.
    Observe {
        agent: Arc<str>,
        event: Noted,
        done: SyncSender<Result<Change, String>>,
    },
    /// Buffered mode: this agent has events noted (see [`Cached::noted`]); take them.
    Collect(Arc<str>),
    /// Take every noted event, commit, then answer.
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
            // Copying the WAL back into the file is the audit log's checkpoint thread's
            // work (every 50 ms; a Warden always opens the audit log on the file its trust
            // store uses), or the last connection's when it closes. With SQLite's default
            // (every 1,000 pages), this connection's small commits ran that copy and its
            // fsync inside the write transaction, behind the in-process write gate the audit
            // writer waits on: at 100k+ audited decisions/s, every few commits, for
            // milliseconds (and with any fixed bound, once the audit log's WAL passes it,
            // on every commit).
            c.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 0;")
                .map_err(|e| store(format!("cannot set synchronous mode: {e}")))?;
            Ok(c)
        };
        let read = open()?;
        let write = open()?;
        let shared = Arc::new(Shared {
            path: path.to_path_buf(),
            config,
            shards: (0..SHARDS)
                .map(|_| Mutex::new(HashMap::default()))
                .collect(),
            hasher: RandomState::default(),
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
        shard_of(&self.shared, agent)
    }

    /// How many agents this process holds in memory (for tests of its bound).
    #[doc(hidden)]
    pub fn agents_in_memory(&self) -> usize {
        self.shared.shards.iter().map(|s| lock(s).len()).sum()
    }

    /// How many different events this process has noted for the writer and not handed to
    /// it yet (for tests of their bound).
    #[doc(hidden)]
    pub fn noted_in_memory(&self) -> usize {
        self.shared
            .shards
            .iter()
            .map(|s| lock(s).values().map(|c| c.noted.len()).sum::<usize>())
            .sum()
    }

    /// The state of `agent`, from memory when fresh, else from the database.
    fn state(&self, agent: &str) -> Result<State, TrustError> {
        {
            let map = lock(self.shard(agent));
            if let Some(c) = map.get(agent)
                && self.usable(c)
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
        let mut map = lock(self.shard(agent));
        match map.get_mut(agent) {
            // Another thread noted events meanwhile: its state is ahead of the file's.
            Some(c) if !c.noted.is_empty() => return Ok(c.state),
            Some(c) => {
                c.state = state;
                c.loaded = Instant::now();
            }
            None => {
                let name: Arc<str> = Arc::from(agent);
                map.insert(
                    name.clone(),
                    Cached {
                        name,
                        state,
                        loaded: Instant::now(),
                        noted: Vec::new(),
                    },
                );
            }
        }
        Ok(state)
    }

    /// Whether a state in memory can be used without reading the file: it is fresh, or it
    /// holds events the file does not have yet.
    fn usable(&self, c: &Cached) -> bool {
        !c.noted.is_empty() || c.loaded.elapsed() < self.shared.refresh
    }

    /// Drop what memory holds about `agent` so the next read comes from the file, unless
    /// it has noted events (then the file's state is `state` plus those).
    fn forget(&self, agent: &str, stored: Option<State>) {
        let mut map = lock(self.shard(agent));
        let keep = map.get_mut(agent).is_some_and(|c| {
            if c.noted.is_empty() {
                return false;
            }
            if let Some(s) = stored {
                c.state = replay(s, &c.noted, &self.shared.config);
                c.loaded = Instant::now();
            }
            true
        });
        if !keep {
            map.remove(agent);
        }
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
        if !self.durable {
            return self.note(agent, outcome, ceiling, action, reason).map(Some);
        }
        let now = self.now();
        let state = self.state(agent)?;
        let (next, _, _) = state.apply(outcome, ceiling, now, &self.shared.config);
        let key = {
            let mut map = lock(self.shard(agent));
            match map.get_mut(agent) {
                Some(c) => {
                    c.state = next;
                    c.loaded = Instant::now();
                    c.name.clone()
                }
                None => {
                    let name: Arc<str> = Arc::from(agent);
                    map.insert(
                        name.clone(),
                        Cached {
                            name: name.clone(),
                            state: next,
                            loaded: Instant::now(),
                            noted: Vec::new(),
                        },
                    );
                    name
                }
            }
        };
        let (done, wait) = sync_channel(1);
        let job = Job::Observe {
            agent: key,
            event: Noted {
                outcome,
                ceiling,
                at: now,
                action: Arc::from(action),
                reason: Arc::from(reason),
                times: 1,
            },
            done,
        };
        self.send(job)?;
        match wait.recv() {
            Ok(Ok(change)) => Ok(Some(change)),
            Ok(Err(e)) => Err(TrustError::store(&self.shared.path, e)),
            Err(_) => Err(TrustError::store(
                &self.shared.path,
                "the trust writer stopped before committing".to_string(),
            )),
        }
    }

    /// Buffered mode: apply the event in memory and note it for the writer (see the module
    /// docs), ringing the writer when the agent had nothing noted.
    fn note(
        &self,
        agent: &str,
        outcome: Outcome,
        ceiling: u16,
        action: &str,
        reason: &str,
    ) -> Result<Change, TrustError> {
        let now = self.now();
        let c = &self.shared.config;
        // One clock read for both the freshness check and the new state's time.
        let instant = Instant::now();
        let fresh = |e: &Cached| {
            !e.noted.is_empty() || instant.saturating_duration_since(e.loaded) < self.shared.refresh
        };
        let apply = |entry: &mut Cached| -> (Change, Option<Arc<str>>, bool) {
            let (next, from, to) = entry.state.apply(outcome, ceiling, now, c);
            entry.state = next;
            entry.loaded = instant;
            let ring = entry.noted.is_empty();
            match entry.noted.last_mut() {
                Some(last) if last.is(outcome, ceiling, now, action, reason) => last.times += 1,
                last => {
                    // The previous event's strings, when equal, are shared, not copied.
                    let (action, reason) = match last {
                        Some(l) => (
                            if *l.action == *action {
                                l.action.clone()
                            } else {
                                Arc::from(action)
                            },
                            if *l.reason == *reason {
                                l.reason.clone()
                            } else {
                                Arc::from(reason)
                            },
                        ),
                        None => (Arc::from(action), Arc::from(reason)),
                    };
                    entry.noted.push(Noted {
                        outcome,
                        ceiling,
                        at: now,
                        action,
                        reason,
                        times: 1,
                    });
                }
            }
            let full = entry.noted.len() >= MAX_NOTED;
            let name = ring.then(|| entry.name.clone());
            (Change { outcome, from, to }, name, full)
        };
        let mut map = lock(self.shard(agent));
        // One lookup when the agent is in memory and fresh (every decision but the first
        // of each second); otherwise read it from the file and look again.
        let (change, name, full) = if let Some(entry) = map.get_mut(agent)
            && fresh(entry)
        {
            apply(entry)
        } else {
            // Read from the file without holding the shard (`state` caches an agent that
            // has a stored score; one observed for the first time is cached here).
            drop(map);
            let state = self.state(agent)?;
            map = lock(self.shard(agent));
            let name: Arc<str> = Arc::from(agent);
            let entry = map.entry(name.clone()).or_insert_with(|| Cached {
                name,
                state,
                loaded: Instant::now(),
                noted: Vec::new(),
            });
            apply(entry)
        };
        drop(map);
        if let Some(name) = name {
            self.send(Job::Collect(name))?;
        }
        if full {
            // The writer is behind: wait for it, as a full queue made `observe` wait.
            self.wait_writer()?;
        }
        Ok(change)
    }

    fn send(&self, job: Job) -> Result<(), TrustError> {
        let stopped = || {
            TrustError::store(
                &self.shared.path,
                "the trust writer has stopped".to_string(),
            )
        };
        self.queue
            .as_ref()
            .ok_or_else(stopped)?
            .send(job)
            .map_err(|_| stopped())
    }

    /// Wait until the writer has committed (or failed to commit) everything noted so far.
    fn wait_writer(&self) -> Result<(), TrustError> {
        let (tx, rx) = sync_channel(1);
        self.send(Job::Flush(tx))?;
        rx.recv().map_err(|_| {
            TrustError::store(
                &self.shared.path,
                "the trust writer has stopped".to_string(),
            )
        })
    }

    /// Wait until every change queued so far is committed.
    pub fn flush(&self) -> Result<(), TrustError> {
        if self.queue.is_none() {
            return Ok(());
        }
        self.wait_writer()?;
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
        // Events noted since the flush apply after the restore.
        self.forget(agent, Some(next));
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
            self.forget(&n, None);
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

/// One event (or `times` equal ones) to write for an agent.
type Item = (Arc<str>, Noted);

/// Who waits for a batch's commit.
enum Answer {
    /// A durable `observe`: the change its item (by index) made.
    Observe(usize, SyncSender<Result<Change, String>>),
    /// A `flush`.
    Flush(SyncSender<()>),
}

fn write_loop(shared: &Shared, mut conn: Connection, rx: &Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        // Buffered events gather for a few milliseconds; a durable event or a flush is
        // committed at once.
        let linger = Instant::now() + LINGER;
        while jobs.len() < BATCH {
            let next = if jobs.iter().all(|j| matches!(j, Job::Collect(_))) {
                rx.recv_timeout(linger.saturating_duration_since(Instant::now()))
                    .ok()
            } else {
                rx.try_recv().ok()
            };
            match next {
                Some(j) => jobs.push(j),
                None => break,
            }
        }
        // What to write, in the order it happened per agent.
        let mut items: Vec<Item> = Vec::new();
        let mut answers = Vec::new();
        for job in jobs {
            match job {
                Job::Observe { agent, event, done } => {
                    answers.push(Answer::Observe(items.len(), done));
                    items.push((agent, event));
                }
                Job::Collect(agent) => take(shared, &agent, &mut items),
                Job::Flush(done) => {
                    take_all(shared, &mut items);
                    answers.push(Answer::Flush(done));
                }
            }
        }
        write(shared, &mut conn, &items, answers);
    }
    // Closed: commit whatever is still noted, then stop.
    let mut items = Vec::new();
    take_all(shared, &mut items);
    write(shared, &mut conn, &items, Vec::new());
}

/// The shard holding `agent`: chosen by its last 16 bytes only (a DID's last characters
/// are its key's, as random as the rest), since the shard's map hashes the whole name
/// again; a crafted name can only crowd one shard's lock, not slow its map.
fn shard_of<'a>(shared: &'a Shared, agent: &str) -> &'a Shard {
    let tail = &agent.as_bytes()[agent.len().saturating_sub(16)..];
    &shared.shards[(shared.hasher.hash_one(tail) as usize) % SHARDS]
}

/// Move `agent`'s noted events into `items`.
fn take(shared: &Shared, agent: &Arc<str>, items: &mut Vec<Item>) {
    let noted = lock(shard_of(shared, agent))
        .get_mut(&**agent)
        .map(|c| std::mem::take(&mut c.noted))
        .unwrap_or_default();
    items.extend(noted.into_iter().map(|n| (agent.clone(), n)));
}

/// Move every agent's noted events into `items`.
fn take_all(shared: &Shared, items: &mut Vec<Item>) {
    for shard in &shared.shards {
        for c in lock(shard).values_mut() {
            let noted = std::mem::take(&mut c.noted);
            items.extend(noted.into_iter().map(|n| (c.name.clone(), n)));
        }
    }
}

/// Commit `items`, bring memory up to the file, and answer whoever waits.
fn write(shared: &Shared, conn: &mut Connection, items: &[Item], answers: Vec<Answer>) {
    let result = if items.is_empty() {
        Ok(Committed::default())
    } else {
        let _turn = shared.gate.enter();
        commit(shared, conn, items)
    };
    match &result {
        Ok(done) => {
            for (agent, state) in &done.states {
                let mut map = lock(shard_of(shared, agent));
                match map.get_mut(&**agent) {
                    Some(c) => {
                        // Events noted since they were taken apply on top of the file's
                        // state (which may hold other processes' events too).
                        c.state = replay(*state, &c.noted, &shared.config);
                        c.loaded = Instant::now();
                    }
                    None => {
                        map.insert(
                            agent.clone(),
                            Cached {
                                name: agent.clone(),
                                state: *state,
                                loaded: Instant::now(),
                                noted: Vec::new(),
                            },
                        );
                    }
                }
            }
        }
        Err(e) => {
            let lost: u64 = items.iter().map(|(_, n)| n.times).sum();
            shared.failed.fetch_add(lost, Ordering::Relaxed);
            tracing::error!("{lost} trust changes not committed: {e}");
        }
    }
    for answer in answers {
        match answer {
            Answer::Flush(done) => {
                let _ = done.send(());
            }
            Answer::Observe(i, done) => {
                let change = match &result {
                    Ok(c) => c
                        .changes
                        .get(i)
                        .copied()
                        .ok_or_else(|| "the trust writer lost a change".to_string()),
                    Err(e) => Err(e.clone()),
                };
                let _ = done.send(change);
            }
        }
    }
}

/// What a committed batch did: each item's last change, each agent's final state.
#[derive(Default)]
struct Committed {
    changes: Vec<Change>,
    states: Vec<(Arc<str>, State)>,
}

/// Apply a batch in one transaction. Each agent's row is read once and written once;
/// events equal to the agent's previous one in this batch are counted on its row (see the
/// module docs).
fn commit(shared: &Shared, conn: &mut Connection, items: &[Item]) -> Result<Committed, String> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(|e| format!("cannot start a transaction: {e}"))?;
    let c = &shared.config;
    let mut changes = Vec::with_capacity(items.len());
    // Per agent: its state, the time of its last event, its last event row in `events`.
    let mut states: HashMap<&Arc<str>, (State, u64, Option<usize>)> = HashMap::new();
    let mut events: Vec<Folded<'_>> = Vec::new();
    for (agent, n) in items {
        let (mut state, mut last) = match states.get(agent) {
            Some((s, _, last)) => (*s, *last),
            None => (load(&tx, agent)?.unwrap_or_else(|| State::new(c)), None),
        };
        let mut change = Change {
            outcome: n.outcome,
            from: state.score,
            to: state.score,
        };
        for _ in 0..n.times.max(1) {
            let (next, from, to) = state.apply(n.outcome, n.ceiling, n.at, c);
            let event = Folded {
                agent,
                at: n.at,
                outcome: n.outcome.as_str(),
                from,
                to,
                ceiling: n.ceiling,
                action: Some(&n.action),
                reason: &n.reason,
                times: 1,
            };
            last = Some(match last.and_then(|i| events.get_mut(i).map(|e| (i, e))) {
                Some((i, e)) if e.same(&event) => {
                    e.times += 1;
                    i
                }
                _ => {
                    events.push(event);
                    events.len() - 1
                }
            });
            state = next;
            change = Change {
                outcome: n.outcome,
                from,
                to,
            };
        }
        states.insert(agent, (state, n.at, last));
        changes.push(change);
    }
    for e in &events {
        insert_event(&tx, e)?;
    }
    for (agent, (state, at, _)) in &states {
        save(&tx, agent, state, *at)?;
    }
    tx.commit().map_err(|e| format!("cannot commit: {e}"))?;
    Ok(Committed {
        changes,
        states: states
            .into_iter()
            .map(|(a, (s, _, _))| (a.clone(), s))
            .collect(),
    })
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
