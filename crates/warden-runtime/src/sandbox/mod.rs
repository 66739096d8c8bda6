//! The box `warden exec` runs a program in: what a ring may touch, and how the kernel is
//! told.
//!
//! Why a box at all: a policy judges the *request* to run a program, but not what the program
//! then does. The box makes the ring's promise hold inside the program too — an `untrusted`
//! program reads only the system directories it needs to run, writes only its scratch
//! directory, opens no network socket and cannot gain privilege, however it was written.
//!
//! Why this shape (no `unsafe`, which the workspace forbids): the restrictions must be put on
//! the program's own process after `fork` and before `exec`, which in Rust means
//! `CommandExt::pre_exec` — an `unsafe` hook. Instead `warden exec` starts a small helper binary
//! installed beside it (`warden-sandbox SPEC`): a fresh, single-threaded process that joins
//! the box's cgroups, sets the resource limits, applies Landlock and a seccomp filter (both
//! set `no_new_privs`) and then replaces itself with the program ([`Confined::exec`]). What
//! a process has restricted itself to, every process it starts inherits, and nothing can
//! lift it.
//!
//! The parts, each failing closed (an unavailable protection refuses the run and names what is
//! missing, unless the caller accepts a weaker box, which is then named):
//! - [`scope`]: Landlock — which paths may be read, executed, written; TCP bind/connect; and
//!   (ABI 6) signals and abstract UNIX sockets outside the box;
//! - [`filter`]: seccomp — the syscalls that gain or use privilege are refused everywhere;
//!   `untrusted` may create only `AF_UNIX` sockets;
//! - [`cgroup`]: a process-count limit that holds for root (RLIMIT_NPROC does not) and a
//!   kill that reaches every process of the tree, however it forked or `setsid`ed;
//! - resource limits (`setrlimit`): CPU seconds, address space, file size, open files.

pub mod cgroup;
mod confine;
pub mod filter;
pub mod scope;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use warden_policy::runtime::Ring;

pub use cgroup::Cgroup;
pub use confine::{Confined, confine};

/// The prefix under which the helper receives the program's environment. The helper itself
/// runs with none of the program's variables, so nothing meant for the program (such as
/// `LD_PRELOAD` passed with `--env`) can act on the helper before the box is closed.
pub const ENV_PREFIX: &str = "WARDEN_BOX_ENV_";

/// What can go wrong setting up a box.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// A protection the box needs is not offered by this kernel (or not here).
    #[error("{what} is not available: {why}")]
    Unavailable {
        /// The protection (e.g. "Landlock ABI 6").
        what: String,
        /// Why (what the kernel said, which version it has).
        why: String,
    },
    /// A path the box names could not be used.
    #[error("cannot add `{path}` to the box: {why}")]
    Path {
        /// The path.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// Anything else the set-up could not do.
    #[error("{0}")]
    Setup(String),
}

/// Resource limits of one run. `0` never means "none": every limit is a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// CPU seconds (RLIMIT_CPU; SIGXCPU at the limit, SIGKILL a second later).
    pub cpu_secs: u64,
    /// Bytes of address space (RLIMIT_AS): an allocation beyond it fails in the program.
    pub memory_bytes: u64,
    /// The largest file the program may write (RLIMIT_FSIZE).
    pub file_bytes: u64,
    /// Open file descriptors (RLIMIT_NOFILE).
    pub open_files: u64,
    /// Processes and threads in the box at once (cgroup `pids.max`).
    pub max_procs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            cpu_secs: 300,
            memory_bytes: 4 << 30,
            file_bytes: 1 << 30,
            open_files: 1024,
            max_procs: 256,
        }
    }
}

/// Everything the helper needs to close the box and start the program (sent to it as JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spec {
    /// The ring the box is built for (shown in messages).
    pub ring: String,
    /// Apply Landlock (every ring but `kernel`).
    pub landlock: bool,
    /// Paths that may be read and executed (whole trees).
    pub read: Vec<PathBuf>,
    /// Paths that may also be written (whole trees).
    pub write: Vec<PathBuf>,
    /// Whether the program may use the network (false: only `AF_UNIX` sockets, and Landlock
    /// refuses TCP bind and connect).
    pub network: bool,
    /// Resource limits.
    pub limits: Limits,
    /// `cgroup.procs` files the helper writes its own id to before anything else.
    pub cgroups: Vec<PathBuf>,
    /// Accept a weaker box when a protection is not available (each one dropped is named).
    pub weaker: bool,
    /// Where the helper writes why it could not start the program (empty: it started).
    pub status: PathBuf,
    /// The program and its arguments.
    pub argv: Vec<String>,
}

/// The box of a ring, before the caller's additions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// Landlock applies.
    pub landlock: bool,
    /// Trees readable (and executable).
    pub read: Vec<PathBuf>,
    /// Trees writable.
    pub write: Vec<PathBuf>,
    /// The working directory is readable.
    pub read_cwd: bool,
    /// The working directory is writable.
    pub write_cwd: bool,
    /// Network sockets allowed.
    pub network: bool,
}

/// The system directories a program needs to be found, loaded and run.
const SYSTEM_READ: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
];

/// The files of `/etc` a program commonly needs (dynamic loader, users, time zone, locale,
/// certificates) — not all of `/etc`, which holds `shadow` and other secrets root can read.
const ETC_READ: &[&str] = &[
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/alternatives",
    "/etc/localtime",
    "/etc/timezone",
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
    "/etc/locale.alias",
    "/etc/mime.types",
    "/etc/python3",
    "/etc/python3.11",
    "/etc/ssl",
    "/etc/ca-certificates",
];

/// What a program on the network also needs to resolve names.
const ETC_NETWORK: &[&str] = &[
    "/etc/hosts",
    "/etc/resolv.conf",
    "/etc/gai.conf",
    "/etc/host.conf",
    "/etc/services",
    "/etc/protocols",
];

/// Devices every program may use (read and write: `/dev/null` is a sink).
const DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
];

fn paths(list: &[&str]) -> Vec<PathBuf> {
    list.iter().map(PathBuf::from).collect()
}

impl Profile {
    /// The box of `ring` (see docs/sandbox.md for the table).
    pub fn of(ring: Ring) -> Profile {
        let system = || {
            let mut read = paths(SYSTEM_READ);
            read.extend(paths(ETC_READ));
            read
        };
        match ring {
            Ring::Untrusted => Profile {
                landlock: true,
                read: system(),
                write: paths(DEVICES),
                read_cwd: true,
                write_cwd: false,
                network: false,
            },
            Ring::User => Profile {
                landlock: true,
                read: [system(), paths(ETC_NETWORK)].concat(),
                write: paths(DEVICES),
                read_cwd: true,
                write_cwd: true,
                network: true,
            },
            Ring::Supervisor => Profile {
                landlock: true,
                read: paths(&["/"]),
                write: [
                    paths(DEVICES),
                    paths(&["/tmp", "/var/tmp", "/dev/pts", "/dev/tty"]),
                ]
                .concat(),
                read_cwd: true,
                write_cwd: true,
                network: true,
            },
            Ring::Kernel => Profile {
                landlock: false,
                read: Vec::new(),
                write: Vec::new(),
                read_cwd: true,
                write_cwd: true,
                network: true,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn each_ring_gets_less_than_the_one_above() {
        let untrusted = Profile::of(Ring::Untrusted);
        assert!(untrusted.landlock && !untrusted.network && !untrusted.write_cwd);
        assert!(!untrusted.read.iter().any(|p| p == Path::new("/etc")));
        assert!(!untrusted.read.iter().any(|p| p == Path::new("/")));
        let user = Profile::of(Ring::User);
        assert!(user.landlock && user.network && user.write_cwd);
        let supervisor = Profile::of(Ring::Supervisor);
        assert!(supervisor.landlock && supervisor.read.iter().any(|p| p == Path::new("/")));
        assert!(!supervisor.write.iter().any(|p| p == Path::new("/")));
        assert!(!Profile::of(Ring::Kernel).landlock);
    }

    #[test]
    fn the_filters_compile_for_this_machine() {
        assert_eq!(filter::programs(false).unwrap().len(), 2);
        assert_eq!(filter::programs(true).unwrap().len(), 2);
        assert!(filter::refused_names().any(|n| n == "ptrace"));
        // The untrusted filter has the socket rule the networked one has not.
        assert!(
            filter::programs(false).unwrap()[0].len() > filter::programs(true).unwrap()[0].len()
        );
    }

    #[test]
    fn a_spec_round_trips_as_json() {
        let spec = Spec {
            ring: "untrusted".into(),
            landlock: true,
            read: vec!["/usr".into()],
            write: vec![],
            network: false,
            limits: Limits::default(),
            cgroups: vec![],
            weaker: false,
            status: "/tmp/s".into(),
            argv: vec!["true".into()],
        };
        let text = serde_json::to_string(&spec).unwrap();
        assert_eq!(serde_json::from_str::<Spec>(&text).unwrap(), spec);
    }
}
