//! The box's control group: a process-count limit that holds for root, and one kill for the
//! whole tree.
//!
//! Why a cgroup: `RLIMIT_NPROC` does not apply to root (CAP_SYS_RESOURCE/CAP_SYS_ADMIN) and
//! counts every process of the user, so it contains no fork bomb where Warden usually runs. A
//! cgroup's `pids.max` counts exactly the box's processes and threads, root or not. And a
//! process cannot leave its cgroup by forking, `setsid` or double-forking, so killing the group
//! (`cgroup.kill`, Linux 5.14) ends everything the program started — what the kill switch and
//! the time limit need.
//!
//! Where: a fresh group `warden-box-<pid>-<n>` under the cgroup Warden itself is in, in the
//! unified (v2) hierarchy for `cgroup.kill`, and for `pids.max` in the v2 group when the `pids`
//! controller is enabled there, else in the v1 `pids` hierarchy (hybrid systems, like this
//! one). Without `cgroup.kill` the group is ended by signalling every id it lists until it is
//! empty. The group is removed when the run ends ([`Drop`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::SandboxError;

/// One mounted cgroup hierarchy and the group this process is in there.
#[derive(Debug)]
struct Hierarchy {
    /// Where Warden's own group is (mount point + own path).
    own: PathBuf,
}

/// Read `/proc/self/mountinfo` and `/proc/self/cgroup`: this process's group in the v2
/// hierarchy, and in the v1 hierarchy that carries `controller`.
fn hierarchy(v2: bool, controller: &str) -> Option<Hierarchy> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let groups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    own_group(&mounts, &groups, v2, controller).map(|own| Hierarchy { own })
}

/// Where this process's group is, from the text of `mountinfo` and `/proc/self/cgroup`.
fn own_group(mounts: &str, groups: &str, v2: bool, controller: &str) -> Option<PathBuf> {
    for line in mounts.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let left: Vec<&str> = left.split(' ').collect();
        let right: Vec<&str> = right.split(' ').collect();
        let (Some(root), Some(point), Some(fstype), Some(options)) =
            (left.get(3), left.get(4), right.first(), right.get(2))
        else {
            continue;
        };
        let wanted = if v2 {
            *fstype == "cgroup2"
        } else {
            *fstype == "cgroup" && options.split(',').any(|o| o == controller)
        };
        if !wanted {
            continue;
        }
        // `0::/path` for v2; `N:a,b:/path` for v1.
        let own = groups.lines().find_map(|g| {
            let mut parts = g.splitn(3, ':');
            let (_, names, path) = (parts.next()?, parts.next()?, parts.next()?);
            let matches = if v2 {
                names.is_empty()
            } else {
                names.split(',').any(|n| n == controller)
            };
            matches.then(|| path.to_string())
        })?;
        // A mount of a sub-tree (a container's view) shows paths relative to its root.
        let relative = own
            .strip_prefix(root)
            .unwrap_or(&own)
            .trim_start_matches('/');
        return Some(Path::new(point).join(relative));
    }
    None
}

/// A control group made for one run.
#[derive(Debug)]
pub struct Cgroup {
    /// The v2 group (for `cgroup.kill`, and `pids.max` when the controller is there).
    unified: Option<PathBuf>,
    /// The group whose `pids.max` limits the box (v2 or v1).
    pids: Option<PathBuf>,
    /// Groups made here, removed on drop (deepest first).
    made: Vec<PathBuf>,
}

static NEXT: AtomicU64 = AtomicU64::new(0);

fn write(path: &Path, value: &str) -> std::io::Result<()> {
    std::fs::write(path, value)
}

fn make(parent: &Path, name: &str) -> std::io::Result<PathBuf> {
    let dir = parent.join(name);
    std::fs::create_dir(&dir)?;
    Ok(dir)
}

impl Cgroup {
    /// Make the group for a run of at most `max_procs` processes. What cannot be had is an
    /// error, or — with `weaker` — named in the returned list and left out.
    pub fn create(max_procs: u64, weaker: bool) -> Result<(Cgroup, Vec<String>), SandboxError> {
        let name = format!(
            "warden-box-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut group = Cgroup {
            unified: None,
            pids: None,
            made: Vec::new(),
        };
        let mut problems: Vec<(String, String)> = Vec::new();
        match hierarchy(true, "") {
            Some(h) => match make(&h.own, &name) {
                Ok(dir) => {
                    group.made.push(dir.clone());
                    if !dir.join("cgroup.kill").exists() {
                        problems.push((
                            "cgroup.kill (Linux 5.14)".into(),
                            format!("{} has no cgroup.kill", dir.display()),
                        ));
                    }
                    let has_pids = std::fs::read_to_string(dir.join("cgroup.controllers"))
                        .is_ok_and(|c| c.split_whitespace().any(|c| c == "pids"));
                    if has_pids && write(&dir.join("pids.max"), &max_procs.to_string()).is_ok() {
                        group.pids = Some(dir.clone());
                    }
                    group.unified = Some(dir);
                }
                Err(e) => problems.push((
                    "a cgroup v2 group".into(),
                    format!("cannot create one under {}: {e}", h.own.display()),
                )),
            },
            None => problems.push((
                "a cgroup v2 group".into(),
                "no cgroup2 file system is mounted".into(),
            )),
        }
        if group.pids.is_none() {
            match hierarchy(false, "pids") {
                Some(h) => match make(&h.own, &name) {
                    Ok(dir) => {
                        group.made.push(dir.clone());
                        match write(&dir.join("pids.max"), &max_procs.to_string()) {
                            Ok(()) => group.pids = Some(dir),
                            Err(e) => problems.push((
                                "a process-count limit (cgroup pids.max)".into(),
                                format!("cannot write {}: {e}", dir.join("pids.max").display()),
                            )),
                        }
                    }
                    Err(e) => problems.push((
                        "a process-count limit (cgroup pids.max)".into(),
                        format!("cannot create a group under {}: {e}", h.own.display()),
                    )),
                },
                None => problems.push((
                    "a process-count limit (cgroup pids.max)".into(),
                    "the pids controller is neither enabled in this process's cgroup v2 group \
                     nor mounted as a cgroup v1 hierarchy"
                        .into(),
                )),
            }
        }
        // The process limit is what must hold; its group also ends the tree (by
        // `cgroup.kill`, or by signalling what it lists), so the rest is not needed then.
        if group.pids.is_some() {
            return Ok((group, Vec::new()));
        }
        let why = problems
            .iter()
            .map(|(what, why)| format!("{what}: {why}"))
            .collect::<Vec<_>>()
            .join("; ");
        if weaker {
            return Ok((
                group,
                vec![format!(
                    "a process-count limit (cgroup pids.max), so no fork-bomb containment: {why}"
                )],
            ));
        }
        Err(SandboxError::Unavailable {
            what: "a process-count limit (cgroup pids.max)".into(),
            why,
        })
    }

    /// The `cgroup.procs` files the program's process joins (before it is confined).
    pub fn procs_files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = self.made.iter().map(|d| d.join("cgroup.procs")).collect();
        files.dedup();
        files
    }

    /// Whether this group can end the whole tree (a group exists to kill).
    pub fn holds_the_tree(&self) -> bool {
        !self.made.is_empty()
    }

    /// Kill every process in the group, at once.
    pub fn kill(&self) {
        if let Some(dir) = &self.unified
            && write(&dir.join("cgroup.kill"), "1").is_ok()
        {
            return;
        }
        // No cgroup.kill: signal every listed id until none is left (bounded). The pids
        // limit keeps a fork bomb from outrunning this.
        for dir in &self.made {
            let deadline = Instant::now() + Duration::from_secs(2);
            while Instant::now() < deadline {
                let ids = list(dir);
                if ids.is_empty() {
                    break;
                }
                for id in ids {
                    if let Some(pid) = rustix::process::Pid::from_raw(id) {
                        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                    }
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }

    /// Send `signal` to every process in the group (the kill switch's first, polite step).
    pub fn signal_all(&self, signal: rustix::process::Signal) {
        for dir in &self.made {
            for id in list(dir) {
                if let Some(pid) = rustix::process::Pid::from_raw(id) {
                    let _ = rustix::process::kill_process(pid, signal);
                }
            }
        }
    }

    /// How many times a fork was refused at the process limit (`pids.events`: `max N`).
    pub fn forks_refused(&self) -> u64 {
        let Some(dir) = &self.pids else { return 0 };
        std::fs::read_to_string(dir.join("pids.events"))
            .ok()
            .and_then(|e| {
                e.lines()
                    .find_map(|l| l.strip_prefix("max ").map(|n| n.trim().parse().ok()))
                    .flatten()
            })
            .unwrap_or(0)
    }

    /// Whether no process is left in the group.
    pub fn is_empty(&self) -> bool {
        self.made.iter().all(|d| list(d).is_empty())
    }
}

fn list(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        self.kill();
        for dir in self.made.iter().rev() {
            // The group is removable once its last process is gone (reaped), which can take
            // a moment after the kill.
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                match std::fs::remove_dir(dir) {
                    Ok(()) => break,
                    Err(e) if Instant::now() >= deadline => {
                        tracing::warn!("cannot remove cgroup {}: {e}", dir.display());
                        break;
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
35 25 0:30 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755
41 35 0:36 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
45 35 0:40 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
47 35 0:42 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
";

    #[test]
    fn the_own_group_is_found_on_hybrid_and_pure_v2_systems() {
        let groups = "8:pids:/\n4:memory:/job/7\n0::/\n";
        assert_eq!(
            own_group(HYBRID, groups, true, ""),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        assert_eq!(
            own_group(HYBRID, groups, false, "pids"),
            Some(PathBuf::from("/sys/fs/cgroup/pids"))
        );
        assert_eq!(
            own_group(HYBRID, groups, false, "memory"),
            Some(PathBuf::from("/sys/fs/cgroup/memory/job/7"))
        );
        // Pure v2 (systemd): one hierarchy, the process deep in it; no v1 pids at all.
        let pure = "30 22 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n";
        let session = "0::/user.slice/user-0.slice/session-3.scope\n";
        assert_eq!(
            own_group(pure, session, true, ""),
            Some(PathBuf::from(
                "/sys/fs/cgroup/user.slice/user-0.slice/session-3.scope"
            ))
        );
        assert_eq!(own_group(pure, session, false, "pids"), None);
        // A container that sees only its sub-tree: paths are relative to the mount's root.
        let container = "30 22 0:26 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        assert_eq!(
            own_group(container, "0::/docker/abc/app\n", true, ""),
            Some(PathBuf::from("/sys/fs/cgroup/app"))
        );
        // Nothing mounted, or garbage: no group (the box then refuses to run).
        assert_eq!(own_group("", groups, true, ""), None);
        assert_eq!(own_group("garbage\n", "junk", true, ""), None);
    }
}
