//! The kill switch's and ring overrides' state, as every decision sees it.
//!
//! Decisions read an immutable [`Snapshot`] through an [`ArcSwap`]: no lock, no query, a few
//! nanoseconds when nothing is killed. The snapshot changes three ways:
//!
//! - this process changes the state (an operator command, the anomaly detector): the change
//!   is committed, then the snapshot is reloaded before the call returns, so the very next
//!   decision sees it;
//! - another process changes it: a watcher thread reads the database's change counter every
//!   `poll` (100 ms by default) and reloads when it moved — so other processes see a kill
//!   within `poll` plus one read;
//! - the database cannot be read: the snapshot becomes a failure that denies every action
//!   (fail closed) until a read succeeds again.
//!
//! When a snapshot stops an agent, the processes Warden runs for it ([`Supervised`]) are
//! terminated.

use crate::hash::ConfigMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use arc_swap::ArcSwap;
use warden_core::Action;
use warden_policy::runtime::NamePattern;

use crate::error::RuntimeError;
use crate::kill::index_kills;
use crate::kill::{Kill, Scope};
use crate::process::{Supervised, SupervisedInner};
use crate::ring_override::{OverrideKind, RingOverride};
use crate::store::{Store, Stored};

/// The state at one moment, indexed for the hot path.
#[derive(Debug, Default)]
pub struct Snapshot {
    version: i64,
    all: Option<Arc<Kill>>,
    agents: ConfigMap<Box<str>, Arc<Kill>>,
    actions: Vec<(NamePattern, Arc<Kill>)>,
    elevations: ConfigMap<Box<str>, RingOverride>,
    demotions: ConfigMap<Box<str>, RingOverride>,
    /// Set when the state could not be read: every action is denied with this reason.
    failed: Option<Arc<str>>,
    /// No kill of any scope (the common case, checked first).
    no_kills: bool,
}

impl From<Stored> for Snapshot {
    fn from(s: Stored) -> Snapshot {
        Snapshot::new(s.version, s.kills, s.overrides)
    }
}

impl Snapshot {
    pub(crate) fn new(version: i64, kills: Vec<Kill>, overrides: Vec<RingOverride>) -> Snapshot {
        let no_kills = kills.is_empty();
        let (all, agents, actions) = index_kills(kills);
        let mut elevations = ConfigMap::default();
        let mut demotions = ConfigMap::default();
        for o in overrides {
            let map = match o.kind {
                OverrideKind::Elevation => &mut elevations,
                OverrideKind::Demotion => &mut demotions,
            };
            map.insert(Box::from(o.agent.as_str()), o);
        }
        Snapshot {
            version,
            all,
            agents,
            actions,
            elevations,
            demotions,
            failed: None,
            no_kills,
        }
    }

    fn failed(version: i64, why: String) -> Snapshot {
        Snapshot {
            version,
            failed: Some(Arc::from(why)),
            ..Snapshot::default()
        }
    }

    /// The reason `action` is stopped, if it is: a kill whose scope covers it, or a state
    /// that could not be read.
    #[inline]
    pub fn killed(&self, action: &Action) -> Option<String> {
        if self.no_kills && self.failed.is_none() {
            return None;
        }
        self.killed_slow(action)
    }

    fn killed_slow(&self, action: &Action) -> Option<String> {
        if let Some(why) = &self.failed {
            return Some(unreadable(why));
        }
        if let Some(k) = &self.all {
            return Some(k.deny_reason());
        }
        if let Some(agent) = &action.agent
            && let Some(k) = self.agents.get(agent.as_str())
        {
            return Some(k.deny_reason());
        }
        self.actions
            .iter()
            .find(|(p, _)| p.matches(&action.action))
            .map(|(_, k)| k.deny_reason())
    }

    /// The reason a kill set for `agent` by name (or one for every agent) stops it, if one
    /// does.
    pub fn killed_agent(&self, agent: &str) -> Option<String> {
        if self.no_kills && self.failed.is_none() {
            return None;
        }
        if let Some(why) = &self.failed {
            return Some(unreadable(why));
        }
        self.stopping(Some(agent)).map(|k| k.deny_reason())
    }

    /// The kill that stops everything `agent` does, if any (not capability kills).
    pub fn stopping(&self, agent: Option<&str>) -> Option<&Kill> {
        if let Some(k) = &self.all {
            return Some(k);
        }
        agent.and_then(|a| self.agents.get(a)).map(|k| &**k)
    }

    /// Every kill in force, fleet first, then agents and capabilities by name.
    pub fn kills(&self) -> Vec<Kill> {
        let mut out: Vec<Kill> = self.all.iter().map(|k| (**k).clone()).collect();
        let mut agents: Vec<&Arc<Kill>> = self.agents.values().collect();
        agents.sort_by(|a, b| a.scope.target().cmp(b.scope.target()));
        out.extend(agents.into_iter().map(|k| (**k).clone()));
        out.extend(self.actions.iter().map(|(_, k)| (**k).clone()));
        out
    }

    /// The agent's elevation, if one is recorded (in force or not).
    pub fn elevation(&self, agent: &str) -> Option<&RingOverride> {
        self.elevations.get(agent)
    }

    /// The agent's demotion, if any.
    pub fn demotion(&self, agent: &str) -> Option<&RingOverride> {
        self.demotions.get(agent)
    }

    /// Whether any elevation or demotion is recorded (checked before looking an agent up).
    pub fn has_overrides(&self) -> bool {
        !self.elevations.is_empty() || !self.demotions.is_empty()
    }

    /// Every override recorded.
    pub fn overrides(&self) -> Vec<RingOverride> {
        let mut out: Vec<RingOverride> = self
            .demotions
            .values()
            .chain(self.elevations.values())
            .cloned()
            .collect();
        out.sort_by(|a, b| (&a.agent, a.kind.as_str()).cmp(&(&b.agent, b.kind.as_str())));
        out
    }

    /// Why the state could not be read, when it could not.
    pub fn failure(&self) -> Option<&str> {
        self.failed.as_deref()
    }
}

/// What the state is kept in.
#[derive(Debug)]
enum Backing {
    /// The Warden database, shared with other processes.
    Db(Arc<Store>),
    /// This process only (library use without a database).
    Memory(Mutex<(i64, Vec<Kill>, Vec<RingOverride>)>),
}

#[derive(Debug)]
pub(crate) struct Inner {
    snapshot: ArcSwap<Snapshot>,
    backing: Backing,
    supervised: Mutex<Vec<Weak<SupervisedInner>>>,
}

/// The shared state and, with a database, its watcher.
#[derive(Debug)]
pub(crate) struct State {
    inner: Arc<Inner>,
    watcher: Option<(mpsc::Sender<()>, JoinHandle<()>)>,
}

impl Drop for State {
    fn drop(&mut self) {
        if let Some((stop, handle)) = self.watcher.take() {
            drop(stop);
            let _ = handle.join();
        }
    }
}

impl State {
    /// State in memory only.
    pub fn in_memory() -> State {
        State {
            inner: Arc::new(Inner {
                snapshot: ArcSwap::from_pointee(Snapshot::new(0, Vec::new(), Vec::new())),
                backing: Backing::Memory(Mutex::new((0, Vec::new(), Vec::new()))),
                supervised: Mutex::new(Vec::new()),
            }),
            watcher: None,
        }
    }

    /// State in the database `store`, read now, and watched every `poll` (none: never).
    pub fn open(store: Store, poll: Option<Duration>) -> Result<State, RuntimeError> {
        let store = Arc::new(store);
        let snapshot = Snapshot::from(store.load()?);
        let inner = Arc::new(Inner {
            snapshot: ArcSwap::from_pointee(snapshot),
            backing: Backing::Db(store),
            supervised: Mutex::new(Vec::new()),
        });
        let watcher = match poll {
            None => None,
            Some(poll) => {
                let (stop, stopped) = mpsc::channel::<()>();
                let weak = Arc::downgrade(&inner);
                let handle = std::thread::Builder::new()
                    .name("warden-kill-watch".into())
                    .spawn(move || watch(&weak, &stopped, poll))
                    .map_err(|e| {
                        RuntimeError::Invalid(format!("cannot start the kill switch watcher: {e}"))
                    })?;
                Some((stop, handle))
            }
        };
        Ok(State { inner, watcher })
    }

    /// The snapshot now.
    #[inline]
    pub fn snapshot(&self) -> arc_swap::Guard<Arc<Snapshot>> {
        self.inner.snapshot.load()
    }

    pub fn store(&self) -> Option<&Arc<Store>> {
        match &self.inner.backing {
            Backing::Db(s) => Some(s),
            Backing::Memory(_) => None,
        }
    }

    /// Read the state again now (after a change made here).
    pub fn reload(&self) -> Result<(), RuntimeError> {
        self.inner.reload()
    }

    /// Set a kill switch; `Ok(false)` when the same scope was already set.
    pub fn kill(&self, kill: Kill) -> Result<bool, RuntimeError> {
        let set = match &self.inner.backing {
            Backing::Db(store) => store.kill(&kill)?,
            Backing::Memory(m) => {
                let mut m = m.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if m.1.iter().any(|k| k.scope == kill.scope) {
                    false
                } else {
                    m.0 += 1;
                    m.1.push(kill);
                    true
                }
            }
        };
        self.reload()?;
        Ok(set)
    }

    /// Lift the kill switch of exactly `scope`; whether one was set.
    pub fn revive(&self, scope: &Scope) -> Result<bool, RuntimeError> {
        let lifted = match &self.inner.backing {
            Backing::Db(store) => store.revive(scope)?,
            Backing::Memory(m) => {
                let mut m = m.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let before = m.1.len();
                m.1.retain(|k| &k.scope != scope);
                m.0 += 1;
                m.1.len() != before
            }
        };
        self.reload()?;
        Ok(lifted)
    }

    /// Record an elevation or demotion (replacing the agent's previous one of that kind).
    pub fn set_override(&self, o: RingOverride) -> Result<(), RuntimeError> {
        match &self.inner.backing {
            Backing::Db(store) => store.set_override(&o)?,
            Backing::Memory(m) => {
                let mut m = m.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                m.2.retain(|x| !(x.agent == o.agent && x.kind == o.kind));
                m.2.push(o);
                m.0 += 1;
            }
        }
        self.reload()
    }

    /// Remove an agent's overrides of `kind` (both when `None`); how many there were.
    pub fn remove_overrides(
        &self,
        agent: &str,
        kind: Option<OverrideKind>,
    ) -> Result<usize, RuntimeError> {
        let n = match &self.inner.backing {
            Backing::Db(store) => store.remove_overrides(agent, kind)?,
            Backing::Memory(m) => {
                let mut m = m.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let before = m.2.len();
                m.2.retain(|x| !(x.agent == agent && kind.is_none_or(|k| k == x.kind)));
                m.0 += 1;
                before - m.2.len()
            }
        };
        self.reload()?;
        Ok(n)
    }

    /// Terminate `process` when a kill stops its agent (now, if one already does).
    pub fn supervise(&self, process: &Supervised) {
        let mut list = self
            .inner
            .supervised
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        list.retain(|w| w.strong_count() > 0);
        list.push(Arc::downgrade(process.inner()));
        drop(list);
        self.inner.enforce(&self.inner.snapshot.load());
    }
}

impl Inner {
    fn reload(&self) -> Result<(), RuntimeError> {
        let snapshot = match &self.backing {
            Backing::Db(store) => Snapshot::from(store.load()?),
            Backing::Memory(m) => {
                let m = m.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                Snapshot::new(m.0, m.1.clone(), m.2.clone())
            }
        };
        self.install(snapshot);
        Ok(())
    }

    fn install(&self, snapshot: Snapshot) {
        let snapshot = Arc::new(snapshot);
        self.snapshot.store(snapshot.clone());
        self.enforce(&snapshot);
    }

    /// Terminate the supervised processes whose agent the snapshot stops.
    fn enforce(&self, snapshot: &Snapshot) {
        if snapshot.no_kills && snapshot.failed.is_none() {
            return;
        }
        let list = self
            .supervised
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for p in list.iter().filter_map(Weak::upgrade) {
            let why = match (&snapshot.failed, snapshot.stopping(p.agent())) {
                (Some(f), _) => Some(format!("the kill switch state cannot be read: {f}")),
                (None, Some(k)) => Some(k.deny_reason()),
                (None, None) => None,
            };
            if let Some(why) = why {
                SupervisedInner::terminate(&p, why);
            }
        }
    }

    /// One round of the watcher: reload when the change counter moved.
    fn poll(&self) {
        let Backing::Db(store) = &self.backing else {
            return;
        };
        let current = self.snapshot.load().version;
        let failed = self.snapshot.load().failed.is_some();
        match store.version() {
            Ok(v) if v == current && !failed => {}
            Ok(v) => match store.load().map(Snapshot::from) {
                Ok(s) => self.install(s),
                Err(e) => self.install(Snapshot::failed(v, e.to_string())),
            },
            Err(e) => {
                tracing::error!("the kill switch state cannot be read: {e}");
                self.install(Snapshot::failed(current, e.to_string()));
            }
        }
    }
}

fn watch(inner: &Weak<Inner>, stopped: &mpsc::Receiver<()>, poll: Duration) {
    loop {
        match stopped.recv_timeout(poll) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        let Some(inner) = inner.upgrade() else {
            return;
        };
        if catch_unwind(AssertUnwindSafe(|| inner.poll())).is_err() {
            inner.install(Snapshot::failed(
                inner.snapshot.load().version,
                "the kill switch watcher failed internally (panic)".into(),
            ));
        }
    }
}

/// The deny reason while the kill switch state cannot be read.
fn unreadable(why: &str) -> String {
    format!("denied: the kill switch state cannot be read, so nothing is allowed: {why}")
}
