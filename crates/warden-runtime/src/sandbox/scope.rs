//! Landlock: the paths a boxed program may read, execute and write, whether it may bind or
//! connect TCP, and whether it may signal or reach (abstract UNIX sockets) anything outside.
//!
//! Why Landlock: it is the one kernel mechanism an unprivileged process can apply to itself
//! without `unsafe`, namespaces or a setuid helper, it holds for root too, and it checks the
//! path a file really resolves to — a symlink inside an allowed tree that points outside it
//! leads to a refusal, not to the target.
//!
//! The box asks for [`TARGET`] (ABI 6, Linux 6.12): file access with `refer`, `truncate` and
//! device `ioctl` (ABI 1–5), TCP bind/connect (ABI 4), signal and abstract-socket scoping
//! (ABI 6). A kernel offering less refuses the run unless a weaker box was accepted; then
//! what the kernel could not enforce is named.

use std::path::Path;

use landlock::{
    ABI, Access, AccessFs, AccessNet, PathBeneath, PathFd, Ruleset, RulesetAttr,
    RulesetCreatedAttr, RulesetStatus, Scope,
};

use super::{SandboxError, Spec};

/// The Landlock ABI the box is built for.
pub const TARGET: ABI = ABI::V6;

fn setup(e: impl std::fmt::Display) -> SandboxError {
    SandboxError::Setup(format!("Landlock: {e}"))
}

/// Add one tree (or file) with `access` (masked to what a file can have, for a file).
fn allow(
    ruleset: landlock::RulesetCreated,
    path: &Path,
    access: landlock::BitFlags<AccessFs>,
) -> Result<landlock::RulesetCreated, SandboxError> {
    // A default path this system lacks (`/lib32`) is skipped; the caller checked its own.
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(ruleset);
    };
    let access = if meta.is_dir() {
        access
    } else {
        access & AccessFs::from_file(TARGET)
    };
    let fd = PathFd::new(path).map_err(|e| SandboxError::Path {
        path: path.to_path_buf(),
        why: e.to_string(),
    })?;
    ruleset
        .add_rule(PathBeneath::new(fd, access))
        .map_err(|e| SandboxError::Path {
            path: path.to_path_buf(),
            why: e.to_string(),
        })
}

/// Restrict this process (and everything it will start) to `spec`'s paths. Returns what the
/// kernel could not enforce when `spec.weaker` accepted that; otherwise such a gap is an error.
pub fn restrict(spec: &Spec) -> Result<Option<String>, SandboxError> {
    let read = AccessFs::from_read(TARGET);
    let all = AccessFs::from_all(TARGET);
    let mut ruleset = Ruleset::default().handle_access(all).map_err(setup)?;
    if !spec.network {
        ruleset = ruleset
            .handle_access(AccessNet::from_all(TARGET))
            .map_err(setup)?;
    }
    let mut created = ruleset
        .scope(Scope::from_all(TARGET))
        .map_err(setup)?
        .create()
        .map_err(setup)?;
    for path in &spec.read {
        created = allow(created, path, read)?;
    }
    for path in &spec.write {
        created = allow(created, path, all)?;
    }
    let status = created.restrict_self().map_err(setup)?;
    match status.ruleset {
        RulesetStatus::FullyEnforced => Ok(None),
        other => {
            let what = format!("Landlock ABI {} (Linux 6.12)", TARGET as i32);
            let why = format!(
                "this kernel's Landlock is {:?}, so the box would be {}",
                status.landlock,
                if other == RulesetStatus::NotEnforced {
                    "without any file or network scope"
                } else {
                    "partly enforced"
                }
            );
            if spec.weaker {
                Ok(Some(format!("{what}: {why}")))
            } else {
                Err(SandboxError::Unavailable { what, why })
            }
        }
    }
}
