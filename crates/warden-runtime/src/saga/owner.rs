//! Who is running a saga: this boot, this process id, this process's start time.
//!
//! A process id alone is not enough to tell whether the runner is still alive: after a crash
//! the id can be given to an unrelated process, and after a reboot every id starts over. The
//! start time (in clock ticks since boot, from `/proc/<pid>/stat`) and the boot id
//! (`/proc/sys/kernel/random/boot_id`) make the triple unique. Where `/proc` cannot be read,
//! the owner is `unknown/<pid>/0` and is taken for alive while that id exists — a saga is
//! then not taken over while its id lives, which can delay a resume but never runs one twice.

use std::sync::OnceLock;

/// The boot id written by a runner that could not read its own.
const UNKNOWN: &str = "unknown";

/// This process, as written in the journal's `owner` column.
pub(crate) fn me() -> &'static str {
    static ME: OnceLock<String> = OnceLock::new();
    ME.get_or_init(|| {
        let pid = std::process::id();
        format!(
            "{}/{pid}/{}",
            boot_id().unwrap_or_else(|| UNKNOWN.into()),
            start_time(pid).unwrap_or(0)
        )
    })
}

/// Whether the process an owner string names is still running.
pub(crate) fn alive(owner: &str) -> bool {
    let mut parts = owner.splitn(3, '/');
    let (Some(boot), Some(pid), Some(start)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let (Ok(pid), Ok(start)) = (pid.parse::<u32>(), start.parse::<u64>()) else {
        return false;
    };
    if pid == std::process::id() {
        // This process: alive, unless the owner is an earlier life of our id.
        return owner == me();
    }
    // A runner that could not read its boot id wrote `unknown`: it cannot be told from a
    // process of this boot, so it is alive while its id is (never taken over twice).
    match boot_id() {
        Some(now) if now != boot && boot != UNKNOWN => return false,
        _ => {}
    }
    match start_time(pid) {
        Some(t) => start == 0 || t == start,
        None => false,
    }
}

fn boot_id() -> Option<String> {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let id = id.trim();
    (!id.is_empty() && !id.contains('/')).then(|| id.to_string())
}

/// Field 22 of `/proc/<pid>/stat` (after the command name, which may hold spaces and `)`).
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_dead_or_reused_id_is_not() {
        assert!(alive(me()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let boot = boot_id().unwrap();
        assert!(!alive(&format!("{boot}/{pid}/1")), "a reaped child");
        // Our parent lives, but not with this start time: the id was reused.
        let parent = std::os::unix::process::parent_id();
        let t = start_time(parent).unwrap();
        assert!(alive(&format!("{boot}/{parent}/{t}")));
        assert!(!alive(&format!("{boot}/{parent}/{}", t + 1)));
        assert!(!alive(&format!("another-boot/{parent}/{t}")));
        assert!(!alive("garbage"));
        // A runner that could not read /proc's boot id (a sandbox) wrote `unknown`: while its
        // process id lives it is alive, as the module says, and is not taken over.
        assert!(alive(&format!("unknown/{parent}/0")));
        assert!(alive(&format!("unknown/{parent}/{t}")));
        assert!(!alive(&format!("unknown/{parent}/{}", t + 1)));
        assert!(!alive("a/b/c"));
    }
}
