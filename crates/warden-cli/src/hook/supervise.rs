//! The hook's supervisor: decide in a child process, so that nothing a policy or a payload
//! does to the deciding process can end in "no answer".
//!
//! A stack overflow (a recursive Rego function), running out of memory or an abort kills a
//! process outright; no `catch_unwind` sees it, and Claude Code treats the resulting exit code
//! (134, 139, …) as a non-blocking error and runs the tool. So the process that answers Claude
//! Code only supervises: it starts itself again as a worker with the same arguments, hands it
//! the payload, and waits — with a deadline — for one well-formed answer. The worker runs
//! under an address-space limit and a CPU-time limit. Anything else — a signal, an unexpected
//! exit code, a timeout, output that is not a hook answer — is answered with a deny and exit 2.

use std::io::{Read, Write};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::exit::Exit;

/// Set in the worker's environment (with the limits), never by a user.
const WORKER: &str = "WARDEN_HOOK_WORKER";
const MEMORY: &str = "WARDEN_HOOK_MEMORY_BYTES";
const CPU: &str = "WARDEN_HOOK_CPU_SECS";

/// The most a worker may print: an answer is a few hundred bytes.
const MAX_ANSWER: u64 = 1024 * 1024;

/// How much the worker may use.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Wall-clock time before the worker is killed and the call blocked.
    pub timeout: Duration,
    /// Address space (RLIMIT_AS) of the worker.
    pub memory_bytes: u64,
}

/// Whether this process is the worker.
pub fn is_worker() -> bool {
    std::env::var_os(WORKER).is_some_and(|v| v == "1")
}

/// Run the worker's job under the limits its supervisor set, on a thread with a large stack
/// (deep but finite recursion then completes instead of overflowing).
pub fn in_worker(job: impl FnOnce() -> Exit + Send) -> Exit {
    let env_u64 = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    if let Some(bytes) = env_u64(MEMORY) {
        // The supervisor blocks the call if the worker dies of it; failing to set the limit
        // only loses this line of defence, so it is reported, not fatal.
        if let Err(e) = rlimit::Resource::AS.set(bytes, bytes) {
            tracing::warn!("cannot limit the hook worker's memory: {e}");
        }
    }
    if let Some(secs) = env_u64(CPU)
        && let Err(e) = rlimit::Resource::CPU.set(secs, secs + 1)
    {
        tracing::warn!("cannot limit the hook worker's CPU time: {e}");
    }
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("warden-hook".into())
            .stack_size(64 << 20)
            .spawn_scoped(s, job)
            .map(|h| h.join().unwrap_or(Exit::Error))
            .unwrap_or(Exit::Error)
    })
}

/// Decide `payload` in a worker and answer Claude Code from what it printed.
pub fn decide_in_child(payload: &[u8], limits: &Limits) -> Exit {
    match run_child(payload, limits) {
        Ok((status, stdout)) => judge(status, &stdout),
        Err(why) => super::block(&why),
    }
}

fn run_child(payload: &[u8], limits: &Limits) -> Result<(ExitStatus, Vec<u8>), String> {
    let exe = std::env::current_exe()
        .map_err(|e| format!("cannot find the warden executable to decide in: {e}"))?;
    let mut child = Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(WORKER, "1")
        .env(MEMORY, limits.memory_bytes.to_string())
        .env(CPU, limits.timeout.as_secs().max(1).to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start the deciding process: {e}"))?;
    let mut stdin = child
        .stdin
        .take()
        .ok_or("no pipe to the deciding process")?;
    let mut stdout = child
        .stdout
        .take()
        .ok_or("no pipe from the deciding process")?;
    let payload = payload.to_vec();
    // Both pipes on their own threads: a worker that never reads, or prints forever, must
    // not wedge the supervisor past its deadline.
    let writer = std::thread::spawn(move || {
        // A worker that exits without reading closes the pipe; its exit status says why.
        let _ = stdin.write_all(&payload);
    });
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = (&mut stdout).take(MAX_ANSWER + 1).read_to_end(&mut out);
        out
    });
    let deadline = Instant::now() + limits.timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "the decision took longer than {} s",
                    limits.timeout.as_secs_f64()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            Err(e) => {
                let _ = child.kill();
                return Err(format!("cannot wait for the deciding process: {e}"));
            }
        }
    };
    let _ = writer.join();
    let stdout = reader.join().unwrap_or_default();
    Ok((status, stdout))
}

/// The answer Claude Code gets for what the worker did.
fn judge(status: ExitStatus, stdout: &[u8]) -> Exit {
    let text = String::from_utf8_lossy(stdout);
    let text = text.trim();
    let answer = if stdout.len() as u64 > MAX_ANSWER {
        None
    } else {
        permission(text)
    };
    match (status.code(), answer) {
        // Nothing to say (an abstained default, or PostToolUse).
        (Some(0), None) if text.is_empty() => Exit::Ok,
        (Some(0), Some(_)) => {
            outln!("{text}");
            Exit::Ok
        }
        (Some(2), Some("deny")) => {
            outln!("{text}");
            Exit::Error
        }
        (Some(2), _) => super::block("the deciding process failed without an answer"),
        _ => super::block(&format!(
            "the deciding process {} ({})",
            describe(status),
            if text.is_empty() {
                "no answer"
            } else {
                "no well-formed answer"
            }
        )),
    }
}

/// The `permissionDecision` of a well-formed PreToolUse answer.
fn permission(text: &str) -> Option<&'static str> {
    let v: Value = serde_json::from_str(text).ok()?;
    let h = v.get("hookSpecificOutput")?;
    if h.get("hookEventName")? != "PreToolUse" {
        return None;
    }
    match h.get("permissionDecision")?.as_str()? {
        "allow" => Some("allow"),
        "deny" => Some("deny"),
        "ask" => Some("ask"),
        _ => None,
    }
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (_, Some(sig)) => format!(
            "was killed by signal {sig}{}",
            match sig {
                6 => " (abort: out of memory or a stack overflow)",
                9 => " (killed)",
                11 => " (segmentation fault: a stack overflow)",
                24 => " (CPU time limit)",
                _ => "",
            }
        ),
        (Some(code), None) => format!("exited with code {code}"),
        (None, None) => "ended without a status".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    fn status(raw: i32) -> ExitStatus {
        ExitStatus::from_raw(raw)
    }

    #[test]
    fn only_well_formed_answers_pass() {
        let allow = r#"{"hookSpecificOutput":{"hookEventName":"PreToolUse","permissionDecision":"allow","permissionDecisionReason":"x"}}"#;
        assert_eq!(permission(allow), Some("allow"));
        assert_eq!(
            permission(
                r#"{"hookSpecificOutput":{"hookEventName":"PreToolUse","permissionDecision":"yes"}}"#
            ),
            None
        );
        assert_eq!(permission("allow"), None);
        assert_eq!(judge(status(0), allow.as_bytes()), Exit::Ok);
        assert_eq!(judge(status(0), b""), Exit::Ok);
        // Exit 0 with garbage, an exit code of 1 or 134, a signal: all block.
        assert_eq!(
            judge(status(0), b"{\"permissionDecision\":\"allow\"}"),
            Exit::Error
        );
        assert_eq!(judge(status(1 << 8), allow.as_bytes()), Exit::Error);
        assert_eq!(judge(status(134 << 8), b""), Exit::Error);
        assert_eq!(judge(status(6), b""), Exit::Error);
        assert_eq!(judge(status(11), allow.as_bytes()), Exit::Error);
    }
}
