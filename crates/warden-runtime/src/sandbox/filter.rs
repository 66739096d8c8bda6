//! seccomp: the system calls a boxed program is refused (with `EPERM`, so it fails the way a
//! refused permission fails, not with a crash).
//!
//! Why a deny-list and not an allow-list: the box must run arbitrary programs (interpreters,
//! compilers, shells), whose needs are the whole ordinary syscall table. What no boxed program
//! needs is the part of the table that gains or uses privilege, or reaches other processes'
//! memory, or opens kernel attack surface far beyond the file/socket model: that part is
//! refused in every ring (`kernel` included). `untrusted` also may create only `AF_UNIX`
//! sockets (no IP, netlink, packet or any other family).
//!
//! Built with `seccompiler` (pure Rust BPF generation; `apply_filter` is a safe call that also
//! sets `no_new_privs`). The filter checks the architecture first and kills a process that
//! calls in with another one (the 32-bit x86 entry point cannot dodge it). On x86-64 the x32
//! numbers of each refused call (bit 30 set) are refused too.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use super::SandboxError;

/// The calls refused in every ring, with why.
const REFUSED: &[(i64, &str)] = &[
    // Reaching into other processes.
    (libc::SYS_ptrace, "ptrace"),
    (libc::SYS_process_vm_readv, "process_vm_readv"),
    (libc::SYS_process_vm_writev, "process_vm_writev"),
    (libc::SYS_pidfd_getfd, "pidfd_getfd"),
    (libc::SYS_kcmp, "kcmp"),
    // Changing identity or capabilities (no privilege gain; `no_new_privs` covers exec).
    (libc::SYS_setuid, "setuid"),
    (libc::SYS_setgid, "setgid"),
    (libc::SYS_setreuid, "setreuid"),
    (libc::SYS_setregid, "setregid"),
    (libc::SYS_setresuid, "setresuid"),
    (libc::SYS_setresgid, "setresgid"),
    (libc::SYS_setfsuid, "setfsuid"),
    (libc::SYS_setfsgid, "setfsgid"),
    (libc::SYS_setgroups, "setgroups"),
    (libc::SYS_capset, "capset"),
    // Mounts and namespaces (a new mount or user namespace is a way around the scope).
    (libc::SYS_mount, "mount"),
    (libc::SYS_umount2, "umount2"),
    (libc::SYS_pivot_root, "pivot_root"),
    (libc::SYS_chroot, "chroot"),
    (libc::SYS_move_mount, "move_mount"),
    (libc::SYS_open_tree, "open_tree"),
    (libc::SYS_fsopen, "fsopen"),
    (libc::SYS_fsconfig, "fsconfig"),
    (libc::SYS_fsmount, "fsmount"),
    (libc::SYS_fspick, "fspick"),
    (libc::SYS_mount_setattr, "mount_setattr"),
    (libc::SYS_unshare, "unshare"),
    (libc::SYS_setns, "setns"),
    (libc::SYS_open_by_handle_at, "open_by_handle_at"),
    (libc::SYS_name_to_handle_at, "name_to_handle_at"),
    // Kernel attack surface: io_uring (also a way around per-call filtering), keys, BPF,
    // perf, userfaultfd.
    (libc::SYS_io_uring_setup, "io_uring_setup"),
    (libc::SYS_io_uring_enter, "io_uring_enter"),
    (libc::SYS_io_uring_register, "io_uring_register"),
    (libc::SYS_keyctl, "keyctl"),
    (libc::SYS_add_key, "add_key"),
    (libc::SYS_request_key, "request_key"),
    (libc::SYS_bpf, "bpf"),
    (libc::SYS_perf_event_open, "perf_event_open"),
    (libc::SYS_userfaultfd, "userfaultfd"),
    // The machine's own state.
    (libc::SYS_kexec_load, "kexec_load"),
    (libc::SYS_kexec_file_load, "kexec_file_load"),
    (libc::SYS_init_module, "init_module"),
    (libc::SYS_finit_module, "finit_module"),
    (libc::SYS_delete_module, "delete_module"),
    (libc::SYS_reboot, "reboot"),
    (libc::SYS_swapon, "swapon"),
    (libc::SYS_swapoff, "swapoff"),
    (libc::SYS_acct, "acct"),
    (libc::SYS_quotactl, "quotactl"),
    (libc::SYS_syslog, "syslog"),
    (libc::SYS_settimeofday, "settimeofday"),
    (libc::SYS_clock_settime, "clock_settime"),
    (libc::SYS_clock_adjtime, "clock_adjtime"),
    (libc::SYS_adjtimex, "adjtimex"),
    (libc::SYS_sethostname, "sethostname"),
    (libc::SYS_setdomainname, "setdomainname"),
    (libc::SYS_vhangup, "vhangup"),
    (libc::SYS_personality, "personality"),
    #[cfg(target_arch = "x86_64")]
    (libc::SYS_iopl, "iopl"),
    #[cfg(target_arch = "x86_64")]
    (libc::SYS_ioperm, "ioperm"),
];

/// The x32 ABI's own numbers for calls above whose x86-64 number differs (x86-64 only).
#[cfg(target_arch = "x86_64")]
const X32_ONLY: &[i64] = &[
    512 + 9,  // ptrace
    512 + 27, // process_vm_readv
    512 + 28, // process_vm_writev
];

/// The x32 ABI bit of a syscall number on x86-64.
#[cfg(target_arch = "x86_64")]
const X32: i64 = 0x4000_0000;

/// `clone` flags that make a new namespace.
const NEW_NAMESPACE: &[u64] = &[
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
    libc::CLONE_NEWCGROUP as u64,
];

fn build(e: impl std::fmt::Display) -> SandboxError {
    SandboxError::Setup(format!("seccomp filter: {e}"))
}

fn arg_is(index: u8, op: SeccompCmpOp, value: u64) -> Result<SeccompCondition, SandboxError> {
    SeccompCondition::new(index, SeccompCmpArgLen::Dword, op, value).map_err(build)
}

/// Each of `conditions` alone matches.
fn any_of(conditions: Vec<SeccompCondition>) -> Result<Vec<SeccompRule>, SandboxError> {
    conditions
        .into_iter()
        .map(|c| SeccompRule::new(vec![c]).map_err(build))
        .collect()
}

/// The rules refusing with `EPERM`: syscall number → conditions (empty: always).
fn refused(network: bool) -> Result<BTreeMap<i64, Vec<SeccompRule>>, SandboxError> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for &(nr, _) in REFUSED {
        rules.insert(nr, Vec::new());
    }
    // A new namespace through `clone` (the flags are its first argument on every arch here).
    let namespaces = NEW_NAMESPACE
        .iter()
        .map(|&f| arg_is(0, SeccompCmpOp::MaskedEq(f), f))
        .collect::<Result<Vec<_>, _>>()?;
    rules.insert(libc::SYS_clone, any_of(namespaces)?);
    // Typing into the terminal Warden was started from (TIOCSTI), or the console (TIOCLINUX).
    let tty = vec![
        arg_is(1, SeccompCmpOp::Eq, libc::TIOCSTI)?,
        arg_is(1, SeccompCmpOp::Eq, libc::TIOCLINUX)?,
    ];
    rules.insert(libc::SYS_ioctl, any_of(tty)?);
    if !network {
        // Only AF_UNIX: every other family (IP, netlink, packet, vsock…) is refused.
        let family = arg_is(0, SeccompCmpOp::Ne, libc::AF_UNIX as u64)?;
        rules.insert(libc::SYS_socket, any_of(vec![family])?);
    }
    #[cfg(target_arch = "x86_64")]
    {
        let plain: Vec<(i64, Vec<SeccompRule>)> =
            rules.iter().map(|(nr, r)| (*nr, r.clone())).collect();
        for (nr, r) in plain {
            rules.insert(nr | X32, r);
        }
        for nr in X32_ONLY {
            rules.insert(nr | X32, Vec::new());
        }
    }
    Ok(rules)
}

/// The filters of a box: refusals (`EPERM`), then `clone3` answered "not implemented" so that
/// the C library falls back to `clone`, whose flags the first filter can see (`clone3` passes
/// them in memory a filter cannot read).
pub fn programs(network: bool) -> Result<Vec<BpfProgram>, SandboxError> {
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(build)?;
    let deny = SeccompFilter::new(
        refused(network)?,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .map_err(build)?;
    let mut clone3 = BTreeMap::new();
    clone3.insert(libc::SYS_clone3, Vec::new());
    let clone3 = SeccompFilter::new(
        clone3,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch,
    )
    .map_err(build)?;
    Ok(vec![
        deny.try_into().map_err(build)?,
        clone3.try_into().map_err(build)?,
    ])
}

/// Install the box's filters on this thread (the helper has only one) and everything it
/// starts. seccomp is not optional: a kernel without it refuses the run.
pub fn apply(network: bool) -> Result<(), SandboxError> {
    for program in programs(network)? {
        seccompiler::apply_filter(&program).map_err(|e| SandboxError::Unavailable {
            what: "seccomp filtering (Linux 3.5, CONFIG_SECCOMP_FILTER)".into(),
            why: e.to_string(),
        })?;
    }
    Ok(())
}

/// The names of the calls refused in every ring (for docs and messages).
pub fn refused_names() -> impl Iterator<Item = &'static str> {
    REFUSED.iter().map(|(_, name)| *name)
}
