//! The helper's side: close the box around this very process, then become the program.
//!
//! Order matters. The cgroup is joined first (a file write the box would refuse later); the
//! resource limits next; then Landlock (which needs `open` of the allowed paths); then the
//! seccomp filter last, so nothing the set-up itself needs is refused. Each step that fails
//! stops the run: the program is never started in a box that is not the one asked for.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::Command;

use rlimit::Resource;

use super::{ENV_PREFIX, SandboxError, Spec, filter, scope};

/// A process inside its box, ready to become the program.
#[derive(Debug)]
pub struct Confined {
    argv: Vec<String>,
    env: Vec<(OsString, OsString)>,
    /// The protections this kernel could not give and the caller accepted to go without.
    pub dropped: Vec<String>,
}

fn limit(resource: Resource, name: &str, value: u64) -> Result<(), SandboxError> {
    // INVARIANT: the hard limit equals the soft one, so the program cannot raise it again.
    rlimit::setrlimit(resource, value, value)
        .map_err(|e| SandboxError::Setup(format!("cannot set {name} to {value}: {e}")))
}

/// Close the box described by `spec` around the calling process (which must be
/// single-threaded: Landlock and seccomp bind the calling thread and what it starts).
pub fn confine(spec: &Spec) -> Result<Confined, SandboxError> {
    if spec.argv.is_empty() {
        return Err(SandboxError::Setup("no program to run".into()));
    }
    // The program's environment comes under a prefix, so none of it acted on this helper.
    let env: Vec<(OsString, OsString)> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let name = k.to_str()?.strip_prefix(ENV_PREFIX)?;
            Some((OsString::from(name), v))
        })
        .collect();
    // Should `warden exec` die, its program dies with it (its tree, with the cgroup).
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
        .map_err(|e| SandboxError::Setup(format!("cannot set the parent-death signal: {e}")))?;
    for procs in &spec.cgroups {
        std::fs::write(procs, "0").map_err(|e| {
            SandboxError::Setup(format!("cannot join cgroup {}: {e}", procs.display()))
        })?;
    }
    let l = &spec.limits;
    // CPU: SIGXCPU at the soft limit; the hard one a second later is SIGKILL.
    rlimit::setrlimit(Resource::CPU, l.cpu_secs, l.cpu_secs.saturating_add(1)).map_err(|e| {
        SandboxError::Setup(format!("cannot set RLIMIT_CPU to {}: {e}", l.cpu_secs))
    })?;
    limit(Resource::AS, "RLIMIT_AS", l.memory_bytes)?;
    limit(Resource::FSIZE, "RLIMIT_FSIZE", l.file_bytes)?;
    limit(Resource::NOFILE, "RLIMIT_NOFILE", l.open_files)?;
    // Holds only for a user without CAP_SYS_RESOURCE; the cgroup's pids.max holds for all.
    limit(Resource::NPROC, "RLIMIT_NPROC", l.max_procs)?;
    limit(Resource::CORE, "RLIMIT_CORE", 0)?;
    let mut dropped = Vec::new();
    if spec.landlock
        && let Some(gap) = scope::restrict(spec)?
    {
        dropped.push(gap);
    }
    filter::apply(spec.network)?;
    Ok(Confined {
        argv: spec.argv.clone(),
        env,
        dropped,
    })
}

impl Confined {
    /// Become the program (only returns if that fails).
    pub fn exec(self) -> SandboxError {
        let e = Command::new(&self.argv[0])
            .args(&self.argv[1..])
            .env_clear()
            .envs(self.env)
            .exec();
        SandboxError::Setup(format!("cannot run `{}`: {e}", self.argv[0]))
    }
}
