//! [`WardenBuilder`]: the one way every door (CLI, HTTP server, Claude Code hook, MCP proxy,
//! Python) turns its settings into a [`Warden`].
//!
//! Why one builder: each door used to load policies and open the audit log its own way, so a
//! capability added to one (a signing key, an audit mode, self-protection) was missing from
//! the others. Now a door says *what* it wants — these policies, this log, these extra files
//! to protect — and gets the same `Warden` every other door would.

use std::path::{Path, PathBuf};

use thiserror::Error;
use warden_audit::{AuditConfig, AuditError, AuditLog};
use warden_policy::{LoadError, PolicySet};
use warden_runtime::{Runtime, RuntimeError, RuntimeOptions};

use crate::Warden;
use crate::protect::{Kind, Protection};

/// Settings for a [`Warden`]; [`build`](WardenBuilder::build) loads and opens everything.
#[derive(Debug)]
pub struct WardenBuilder {
    policy_paths: Vec<PathBuf>,
    policy_set: Option<PolicySet>,
    audit: Option<AuditTarget>,
    extra: Vec<(PathBuf, Kind)>,
    self_protection: bool,
    zero_trust: Option<warden_trust::Config>,
    runtime: Option<RuntimeOptions>,
    shared_buckets: bool,
    approval_ttl: std::time::Duration,
    approval_listener: Option<Listener>,
    memory: Option<MemorySettings>,
    drift: Option<Embedder>,
}

/// The memory guard's settings, shown without the detector.
#[derive(Clone)]
struct MemorySettings {
    detector: crate::memory::Detector,
    whole: Option<crate::memory::Detector>,
    require_provenance: bool,
}

impl std::fmt::Debug for MemorySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemorySettings")
            .field("require_provenance", &self.require_provenance)
            .finish()
    }
}

/// A goal-drift embedder, shown by name only.
#[derive(Clone)]
struct Embedder(std::sync::Arc<dyn crate::drift::Embedder>);

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Embedder")
    }
}

/// An approval listener, shown by name only.
#[derive(Clone)]
struct Listener(crate::ApprovalListener);

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApprovalListener")
    }
}

#[derive(Debug, Clone)]
struct AuditTarget {
    path: PathBuf,
    config: AuditConfig,
    signing_key: Option<PathBuf>,
}

/// Why a [`Warden`] could not be built. Nothing is decided without one.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum BuildError {
    /// No policy file, directory or set was given.
    #[error("no policy given: Warden needs at least one policy file or directory")]
    NoPolicies,
    /// The policies did not load (every problem is inside).
    #[error(transparent)]
    Policy(#[from] LoadError),
    /// The audit log could not be opened (decisions must be recorded, so nothing is decided).
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// The identity and trust settings cannot work, or their tables could not be opened.
    #[error("identity and trust: {0}")]
    ZeroTrust(String),
    /// The kill switch state could not be read (nothing is decided without knowing it).
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

impl Default for WardenBuilder {
    fn default() -> Self {
        WardenBuilder::new()
    }
}

impl WardenBuilder {
    /// No policies yet, no audit log, self-protection on.
    pub fn new() -> Self {
        WardenBuilder {
            policy_paths: Vec::new(),
            policy_set: None,
            audit: None,
            extra: Vec::new(),
            self_protection: true,
            zero_trust: None,
            runtime: None,
            shared_buckets: false,
            approval_ttl: warden_runtime::approval::DEFAULT_TTL,
            approval_listener: None,
            memory: None,
            drift: None,
        }
    }

    /// Measure goal drift with `embedder` (the local model): actions that declare their
    /// task in `context.task` are judged with `context.drift` (see [`crate::drift`]).
    pub fn drift(mut self, embedder: std::sync::Arc<dyn crate::drift::Embedder>) -> Self {
        self.drift = Some(Embedder(embedder));
        self
    }

    /// Judge with the policy file or directory at `path` (repeatable; all are combined).
    pub fn policy(mut self, path: impl Into<PathBuf>) -> Self {
        self.policy_paths.push(path.into());
        self
    }

    /// Judge with every policy file or directory in `paths`.
    pub fn policies<P: Into<PathBuf>>(mut self, paths: impl IntoIterator<Item = P>) -> Self {
        self.policy_paths.extend(paths.into_iter().map(Into::into));
        self
    }

    /// Judge with an already compiled set (no files: [`Warden::reload`] then has nothing to
    /// read and keeps the set).
    pub fn policy_set(mut self, set: PolicySet) -> Self {
        self.policy_set = Some(set);
        self
    }

    /// Record every decision in the audit log at `path` (created if missing), written as
    /// `config` says. Its checkpoints are signed with the node key (see
    /// [`signing_key`](WardenBuilder::signing_key)).
    pub fn audit_log(mut self, path: impl Into<PathBuf>, config: AuditConfig) -> Self {
        let signing_key = self.audit.take().and_then(|a| a.signing_key);
        self.audit = Some(AuditTarget {
            path: path.into(),
            config,
            signing_key,
        });
        self
    }

    /// The secret key that signs the audit log's checkpoints (created, mode 0600, if
    /// missing). Default: `<log>.key`. Ignored without an audit log.
    pub fn signing_key(mut self, path: impl Into<PathBuf>) -> Self {
        if let Some(a) = &mut self.audit {
            a.signing_key = Some(path.into());
        }
        self
    }

    /// Also protect `path` from writes: the settings that make a host call Warden (a hook
    /// configuration), for example.
    pub fn protect(mut self, path: impl Into<PathBuf>) -> Self {
        self.extra.push((path.into(), Kind::HostSettings));
        self
    }

    /// Also protect the running executable from writes (doors that answer agents do).
    pub fn protect_binary(mut self) -> Self {
        if let Ok(exe) = std::env::current_exe() {
            self.extra.push((exe, Kind::Binary));
        }
        self
    }

    /// Turn self-protection off (on by default). Only for embedding Warden where no agent
    /// can reach the files — every door Warden ships keeps it on.
    pub fn self_protection(mut self, on: bool) -> Self {
        self.self_protection = on;
        self
    }

    /// Also protect a secret key (a server's identity key): no action may read or change it.
    pub fn protect_secret(mut self, path: impl Into<PathBuf>) -> Self {
        self.extra.push((path.into(), Kind::SecretKey));
        self
    }

    /// Verify identities and keep trust scores as `config` says (trusted roots, whether an
    /// identity is required, scoring weights). Revocations and scores live in the audit log's
    /// database, so they are kept only with an audit log.
    pub fn zero_trust(mut self, config: warden_trust::Config) -> Self {
        self.zero_trust = Some(config);
        self
    }

    // ---- The runtime (warden-runtime): kill switch, rings, rate limits, breakers. ----
    //
    // By default the kill switch and ring overrides live in the audit log's database when
    // there is one (so every process sharing it obeys the same kills), and in memory
    // otherwise; other processes' changes are read every 100 ms.

    /// How the runtime keeps its state (its `db`, when left empty, is the audit log's).
    pub fn runtime(mut self, options: RuntimeOptions) -> Self {
        self.runtime = Some(options);
        self
    }

    /// Keep rate-limit buckets in the database, shared by every process (for commands that
    /// each make one decision, such as `warden check`), instead of in this process. Needs
    /// an audit log (its database); without one, buckets stay in the process.
    pub fn shared_rate_limits(mut self, on: bool) -> Self {
        self.shared_buckets = on;
        self
    }

    /// How long an approval request waits for a person (default 15 minutes). Requests live in
    /// the Warden database; without one, `require_approval` stays a verdict with no request.
    pub fn approval_ttl(mut self, ttl: std::time::Duration) -> Self {
        self.approval_ttl = ttl;
        self
    }

    /// Call `listener` with each new approval request, from the decision path: it must not
    /// block (queue the request and return; see `warden_server::webhook`).
    pub fn on_approval_request(mut self, listener: crate::ApprovalListener) -> Self {
        self.approval_listener = Some(Listener(listener));
        self
    }

    /// Guard `memory.write` actions (see [`crate::memory`]): `detector` flags content to
    /// quarantine; with an audit log, quarantine and signed provenance records live in its
    /// database, signed with its key. `require_provenance` tells readers (the MCP proxy) to
    /// withhold texts without valid provenance.
    pub fn memory_guard(
        mut self,
        detector: crate::memory::Detector,
        require_provenance: bool,
    ) -> Self {
        self.memory = Some(MemorySettings {
            detector,
            whole: None,
            require_provenance,
        });
        self
    }

    /// A second detector for the memory guard set by [`WardenBuilder::memory_guard`] (call
    /// this after it; without a guard it does nothing): run once per write, on all its texts
    /// joined with newlines — for a detector too costly, or too unsure of fragments, to run
    /// on each text (the local model). See [`crate::memory::MemoryGuard::with_whole`].
    pub fn memory_model(mut self, whole: crate::memory::Detector) -> Self {
        if let Some(m) = &mut self.memory {
            m.whole = Some(whole);
        }
        self
    }

    fn open_runtime(
        options: Option<RuntimeOptions>,
        shared_buckets: bool,
        audit_db: Option<&Path>,
    ) -> Result<Runtime, BuildError> {
        let mut options = options.unwrap_or_default();
        if options.db.is_none() {
            options.db = audit_db.map(Path::to_path_buf);
        }
        options.shared_buckets |= shared_buckets;
        Ok(Runtime::open(options)?)
    }

    // ---- end of the runtime options. ----

    /// Load the policies, open the audit log, fix the protected files.
    pub fn build(self) -> Result<Warden, BuildError> {
        let set = match self.policy_set {
            Some(set) => set,
            None if self.policy_paths.is_empty() => return Err(BuildError::NoPolicies),
            None => PolicySet::load(&self.policy_paths)?,
        };
        let mut protection = Protection::new();
        if self.self_protection {
            for p in &self.policy_paths {
                protection.add(p, Kind::Policy);
            }
            // Every file the policies read or looked for: a Cedar document's schema and
            // entities change what it allows as much as the document itself does.
            for w in set.watched() {
                protection.add(w.path(), Kind::Policy);
            }
            for (p, kind) in &self.extra {
                protection.add(p, *kind);
            }
        }
        let db = self.audit.as_ref().map(|a| (a.path.clone(), a.config.mode));
        let mut memory_key = None;
        let audit = match self.audit {
            None => None,
            Some(a) => {
                let key = a
                    .signing_key
                    .clone()
                    .unwrap_or_else(|| warden_audit::default_key_path(&a.path));
                let log = AuditLog::open_signed(&a.path, a.config, Some(&key))?;
                // After opening: the files exist now, so their inodes are known too.
                if self.self_protection {
                    protect_log(&mut protection, &a.path, &key);
                }
                if self.memory.is_some() {
                    memory_key = Some(warden_audit::load_signing_key(&key)?);
                }
                Some(log)
            }
        };
        let shares_buckets =
            self.shared_buckets || self.runtime.as_ref().is_some_and(|o| o.shared_buckets);
        let runtime = WardenBuilder::open_runtime(
            self.runtime,
            self.shared_buckets,
            audit.as_ref().map(AuditLog::path),
        )?;
        let approvals = match runtime.db_path() {
            Some(db) => Some(warden_runtime::approval::Approvals::open(
                db,
                self.approval_ttl,
            )?),
            None => None,
        };
        let memory = match (self.memory, &audit, memory_key) {
            (None, _, _) => None,
            (Some(m), Some(log), Some(key)) => Some(
                crate::memory::MemoryGuard::new(m.detector)
                    .with_whole(m.whole)
                    .with_database(log.path(), key)
                    .require_provenance(m.require_provenance),
            ),
            (Some(m), _, _) => Some(
                crate::memory::MemoryGuard::new(m.detector)
                    .with_whole(m.whole)
                    .require_provenance(m.require_provenance),
            ),
        };
        let mut warden = Warden::new(set).with_runtime(runtime);
        warden.memory = memory;
        warden.approvals = approvals;
        warden.approval_listener = self.approval_listener.map(|l| l.0);
        warden.policy_paths = self.policy_paths;
        warden.protection = protection;
        warden.audit = audit;
        warden.drift = self.drift.map(|e| crate::drift::Drift::new(e.0));
        warden.shared_buckets = shares_buckets && warden.runtime.db_path().is_some();
        if let Some(config) = self.zero_trust {
            let durable = db
                .as_ref()
                .is_none_or(|(_, mode)| *mode == warden_audit::Mode::Durable);
            warden.zero_trust =
                crate::zero_trust::build(config, db.as_ref().map(|(p, _)| p.as_path()), durable)
                    .map_err(BuildError::ZeroTrust)?;
        }
        Ok(warden)
    }
}

/// The log, SQLite's side files, the secret key and its public half.
fn protect_log(protection: &mut Protection, db: &Path, key: &Path) {
    protection.add(db, Kind::AuditLog);
    // SQLite's side files, and the lock buffered writers hold while they live.
    for suffix in ["-wal", "-shm", "-journal", ".writers.lock"] {
        let mut side = db.as_os_str().to_owned();
        side.push(suffix);
        protection.add(Path::new(&side), Kind::AuditLog);
    }
    protection.add(key, Kind::SecretKey);
    protection.add(&warden_audit::public_key_path(key), Kind::PublicKey);
}
