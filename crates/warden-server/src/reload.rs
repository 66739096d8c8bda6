//! Hot reload: notice that policy files changed (or that SIGHUP asked), compile the new set off
//! the request threads, and swap it in atomically. A set that does not compile is rejected
//! with its problems on stderr and the last good set keeps serving; there is never a moment
//! without a set.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::Mutex;
use warden::Warden;
use warden_policy::{LoadError, Watched, is_policy_file};

use crate::metrics::Metrics;

/// What the policy files looked like on disk: each watched path, its length and modification
/// time. Two equal fingerprints mean "nothing to reload".
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Fingerprint(Vec<(PathBuf, Option<(u64, SystemTime)>)>);

impl Fingerprint {
    /// Stamp the paths the set was loaded from and every file it read (a Cedar document's
    /// schema and entities included, and those it looked for and did not find), and list
    /// each policy directory: an added policy file, a subdirectory or a dangling link there
    /// changes what a load would do.
    fn take(paths: &[PathBuf], watched: &[Watched]) -> Self {
        let mut entries: Vec<(PathBuf, Option<(u64, SystemTime)>)> =
            paths.iter().map(|p| (p.clone(), stamp(p))).collect();
        for w in watched {
            match w {
                Watched::File(p) | Watched::Absent(p) => entries.push((p.clone(), stamp(p))),
                Watched::Directory(dir) => {
                    entries.push((dir.clone(), stamp(dir)));
                    if let Ok(list) = std::fs::read_dir(dir) {
                        let mut files: Vec<PathBuf> = list
                            .filter_map(Result::ok)
                            .map(|e| e.path())
                            .filter(|p| is_policy_file(p) || p.is_dir() || !p.exists())
                            .collect();
                        files.sort();
                        entries.extend(files.into_iter().map(|f| {
                            let s = stamp(&f);
                            (f, s)
                        }));
                    }
                }
            }
        }
        entries.sort();
        entries.dedup();
        Fingerprint(entries)
    }
}

/// Everything the serving set read or looked for.
fn watched(warden: &Warden) -> Vec<Watched> {
    warden.with_policies(|set| set.watched().cloned().collect())
}

fn stamp(path: &Path) -> Option<(u64, SystemTime)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.len(), meta.modified().ok()?))
}

/// Why a reload did not take effect.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The new policies did not compile; the last good set keeps serving.
    #[error("{0}")]
    Rejected(#[from] LoadError),
    /// The compiling task died (it panicked); the last good set keeps serving.
    #[error("the policy compiler task failed: {0}")]
    Compiler(String),
}

/// Watches the policy paths and swaps new sets into a [`Warden`].
pub struct Reloader {
    warden: Arc<Warden>,
    paths: Vec<PathBuf>,
    metrics: Arc<Metrics>,
    /// The fingerprint of the files last compiled (successfully or not). Also serializes
    /// reloads, so a poll and a SIGHUP never compile at the same time.
    seen: Mutex<Fingerprint>,
    /// The last reload's outcome, for the dashboard.
    last: std::sync::Mutex<Option<ReloadOutcome>>,
}

/// What the last reload did (see [`Reloader::last_outcome`]).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReloadOutcome {
    /// When it finished (RFC 3339).
    pub at: String,
    /// What triggered it (`SIGHUP`, `policy files changed`).
    pub trigger: String,
    /// Whether the new set took effect.
    pub ok: bool,
    /// The policy version serving afterwards.
    pub version: u64,
    /// Why it was rejected, when it was.
    pub error: Option<String>,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader")
            .field("paths", &self.paths)
            .field("policy_version", &self.warden.policy_version())
            .finish_non_exhaustive()
    }
}

/// How long the files must stay unchanged before a poll compiles them, so that a file
/// caught half-written is not loaded.
const SETTLE: Duration = Duration::from_millis(50);

impl Reloader {
    /// A reloader for `warden`, watching the policy paths it was built from.
    pub fn new(warden: Arc<Warden>, metrics: Arc<Metrics>) -> Self {
        let paths = warden.policy_paths().to_vec();
        let seen = Fingerprint::take(&paths, &watched(&warden));
        Reloader {
            warden,
            paths,
            metrics,
            seen: Mutex::new(seen),
            last: std::sync::Mutex::new(None),
        }
    }

    /// Compile the policy paths now and swap the result in; returns the new version.
    /// `why` names the trigger in the log line.
    pub async fn reload(&self, why: &str) -> Result<u64, ReloadError> {
        let mut seen = self.seen.lock().await;
        let before = self.fingerprint().await;
        let result = self.compile_and_swap(why).await;
        *seen = before;
        result
    }

    /// Reload if the files changed since the last compile and have stopped changing.
    /// Returns `None` when there was nothing to do.
    pub async fn reload_if_changed(&self) -> Option<Result<u64, ReloadError>> {
        let mut seen = self.seen.lock().await;
        let now = self.fingerprint().await;
        if now == *seen {
            return None;
        }
        tokio::time::sleep(SETTLE).await;
        if self.fingerprint().await != now {
            // Still being written: look again on the next tick.
            return None;
        }
        let result = self.compile_and_swap("policy files changed").await;
        // Record what was compiled even when it was rejected, so a broken file is reported
        // once, not on every tick; the next edit is a new fingerprint.
        *seen = now;
        Some(result)
    }

    /// Poll for changes every `interval`, forever.
    pub async fn watch(self: Arc<Self>, interval: Duration) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let _ = self.reload_if_changed().await;
        }
    }

    /// The files as they are now, watched as the serving set needs. (When a reload changes
    /// what is watched — a Cedar entities file that appeared — the next poll sees a new
    /// fingerprint and compiles once more: one spare reload, never a missed change.)
    async fn fingerprint(&self) -> Fingerprint {
        let paths = self.paths.clone();
        let watched = watched(&self.warden);
        // stat() can block on a slow filesystem; keep it off the request threads.
        tokio::task::spawn_blocking(move || Fingerprint::take(&paths, &watched))
            .await
            .unwrap_or_default()
    }

    /// The outcome of the last reload since start, if any.
    pub fn last_outcome(&self) -> Option<ReloadOutcome> {
        self.last.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    async fn compile_and_swap(&self, why: &str) -> Result<u64, ReloadError> {
        let result = self.compile(why).await;
        let outcome = ReloadOutcome {
            at: warden_audit::Timestamp::now().to_string(),
            trigger: why.to_string(),
            ok: result.is_ok(),
            version: self.warden.policy_version(),
            error: result.as_ref().err().map(ToString::to_string),
        };
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(outcome);
        result
    }

    async fn compile(&self, why: &str) -> Result<u64, ReloadError> {
        let warden = self.warden.clone();
        let serving = warden.policy_version();
        // Compiling (CEL, Cedar, Rego) takes milliseconds; never on a request thread.
        let compiled = tokio::task::spawn_blocking(move || warden.reload()).await;
        match compiled {
            Ok(Ok(version)) => {
                let rules = self
                    .warden
                    .with_policies(warden_policy::PolicySet::rule_count);
                self.metrics.record_reload();
                tracing::info!("{why}: policies reloaded, now version {version} ({rules} rules)");
                Ok(version)
            }
            Ok(Err(e)) => {
                self.metrics.record_reload_failure();
                tracing::warn!("{why}: reload rejected, still serving policy version {serving}:");
                for problem in e.problems() {
                    tracing::warn!("  {problem}");
                }
                Err(ReloadError::Rejected(e))
            }
            Err(join) => {
                self.metrics.record_reload_failure();
                tracing::error!(
                    "{why}: reload failed ({join}), still serving policy version {serving}"
                );
                Err(ReloadError::Compiler(join.to_string()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DENY: &str = "rules:\n  - action: execute_code\n    allow: false\n";
    const ALLOW: &str = "rules:\n  - action: execute_code\n    allow: true\n";

    fn setup(text: &str) -> (tempfile::TempDir, PathBuf, Arc<Warden>, Reloader) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.yaml");
        std::fs::write(&file, text).unwrap();
        let warden = Arc::new(Warden::from_paths(&[&file]).unwrap());
        let r = Reloader::new(warden.clone(), Arc::new(Metrics::default()));
        (dir, file, warden, r)
    }

    fn rewrite(file: &Path, text: &str) {
        // Make sure the modification time moves even on coarse-grained filesystems.
        let old = std::fs::metadata(file).unwrap().modified().unwrap();
        std::fs::write(file, text).unwrap();
        let f = std::fs::File::options().write(true).open(file).unwrap();
        f.set_modified(old + Duration::from_secs(1)).unwrap();
    }

    #[tokio::test]
    async fn a_change_is_picked_up_once() {
        let (_d, file, warden, r) = setup(DENY);
        assert!(r.reload_if_changed().await.is_none());
        rewrite(&file, ALLOW);
        assert!(r.last_outcome().is_none());
        assert_eq!(r.reload_if_changed().await.unwrap().unwrap(), 2);
        assert!(r.reload_if_changed().await.is_none());
        assert_eq!(warden.policy_version(), 2);
        assert_eq!(r.metrics.reloads(), 1);
        let last = r.last_outcome().unwrap();
        assert!(
            last.ok && last.version == 2 && last.error.is_none(),
            "{last:?}"
        );
    }

    #[tokio::test]
    async fn a_broken_file_keeps_the_last_good_set() {
        let (_d, file, warden, r) = setup(DENY);
        rewrite(&file, "rules:\n  - action: execute_code\n    efect: deny\n");
        let err = r.reload_if_changed().await.unwrap().unwrap_err();
        assert!(err.to_string().contains("p.yaml:3:5"), "{err}");
        assert_eq!(warden.policy_version(), 1);
        assert_eq!(r.metrics.reload_failures(), 1);
        let last = r.last_outcome().unwrap();
        assert!(!last.ok && last.version == 1, "{last:?}");
        assert!(last.error.unwrap().contains("p.yaml:3:5"));
        // Reported once, not on every tick.
        assert!(r.reload_if_changed().await.is_none());
        let d = warden.decide(&warden::Action::new("execute_code"));
        assert_eq!(d.verdict, warden::Verdict::Deny);
    }

    #[tokio::test]
    async fn a_new_file_in_a_policy_directory_is_picked_up() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), DENY).unwrap();
        let warden = Arc::new(Warden::from_paths(&[dir.path()]).unwrap());
        let r = Reloader::new(warden.clone(), Arc::new(Metrics::default()));
        assert!(r.reload_if_changed().await.is_none());
        std::fs::write(
            dir.path().join("b.yaml"),
            "rules:\n  - action: http_request\n    allow: true\n",
        )
        .unwrap();
        assert_eq!(r.reload_if_changed().await.unwrap().unwrap(), 2);
        let d = warden.decide(&warden::Action::new("http_request"));
        assert_eq!(d.verdict, warden::Verdict::Allow);
    }

    /// A single-file Cedar policy was not reloaded when its entities changed: a revoked group
    /// membership kept allowing until SIGHUP.
    #[tokio::test]
    async fn a_cedar_documents_entities_are_watched() {
        let dir = tempfile::tempdir().unwrap();
        let cedar = dir.path().join("ops.cedar");
        std::fs::write(
            &cedar,
            "@id(\"ops-deploy\")\npermit(principal in Group::\"ops\", action == Action::\"deploy\", resource);\n",
        )
        .unwrap();
        let entities = dir.path().join("ops.entities.json");
        let member = r#"[{"uid":{"type":"Agent","id":"bot"},"attrs":{},"parents":[{"type":"Group","id":"ops"}]},{"uid":{"type":"Group","id":"ops"},"attrs":{},"parents":[]}]"#;
        std::fs::write(&entities, member).unwrap();
        let warden = Arc::new(Warden::from_paths(&[&cedar]).unwrap());
        let r = Reloader::new(warden.clone(), Arc::new(Metrics::default()));
        let deploy = warden::Action::new("deploy").with_agent("bot");
        assert_eq!(warden.decide(&deploy).verdict, warden::Verdict::Allow);
        let revoked = r#"[{"uid":{"type":"Agent","id":"bot"},"attrs":{},"parents":[]},{"uid":{"type":"Group","id":"ops"},"attrs":{},"parents":[]}]"#;
        rewrite(&entities, revoked);
        assert_eq!(r.reload_if_changed().await.unwrap().unwrap(), 2);
        assert_eq!(warden.decide(&deploy).verdict, warden::Verdict::Deny);
    }

    #[tokio::test]
    async fn an_explicit_reload_always_compiles() {
        let (_d, _file, warden, r) = setup(DENY);
        assert_eq!(r.reload("SIGHUP").await.unwrap(), 2);
        assert_eq!(warden.policy_version(), 2);
    }
}
