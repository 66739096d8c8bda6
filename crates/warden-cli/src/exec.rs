//! `warden exec`: run one program for an agent, if the policy allows it, in a box matched to
//! the agent's ring, under the kill switch.
//!
//! The program is judged first as an `execute_code` action (`args.argv`: the words;
//! `args.command`: the line, shell-quoted; `args.cwd`; `args.env`: the *names* of the
//! variables it will get; `context.door`: `exec`), so the kill switch, the ring gate, rate
//! limits and the policy all apply. Denied → exit 1, approval needed → 3: the program is not
//! started.
//!
//! Allowed, it runs in a box (see [`warden_runtime::sandbox`] and docs/sandbox.md) built for
//! the less privileged of the agent's computed ring and `--ring` — a flag narrows the box,
//! never widens it, and never changes the decision (which judged the agent's own ring). The
//! box is Landlock (paths, TCP), seccomp (privilege and, for `untrusted`, every socket but
//! `AF_UNIX`), resource limits, a cgroup (process count; one kill for the whole tree), a
//! wall-clock limit, a scrubbed environment and capped output. A protection this kernel lacks
//! refuses the run, naming it, unless `--weaker-box` accepts going without (then named too).
//!
//! Why a second process: the box is closed by the program's own process before it `exec`s,
//! which would need an `unsafe` `pre_exec` hook; instead `warden exec` runs the helper
//! `warden-sandbox SPEC` (installed beside `warden`, `src/sandbox_main.rs`), which confines
//! itself and becomes the program.
//!
//! While it runs, a kill for the agent (or every agent) sends SIGTERM to every process in the
//! box and, after `--kill-grace`, kills the tree; `warden exec` exits 2 naming the kill. The
//! time limit kills the tree too (exit 2, saying so). When the program ends, anything it left
//! running in the box is killed. Otherwise its exit code is passed through (death by signal N
//! as 128+N, as a shell shows it).

mod relay;

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::json;
use warden::{Action, Verdict};
use warden_policy::runtime::Ring;
use warden_runtime::sandbox::{self, Cgroup, Limits, Profile, Spec};

use crate::args::{AuditArgs, PolicyArgs, RuntimeArgs, builder};
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::report::{self, visible};

/// The variables a boxed program gets from Warden's environment without asking.
pub const PASSED_ENV: &[&str] = &[
    "PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TERM", "TZ", "USER", "LOGNAME",
];

/// Arguments of `warden exec`.
#[derive(Args, Debug)]
pub struct ExecArgs {
    #[command(flatten)]
    policy: PolicyArgs,
    #[command(flatten)]
    audit: AuditArgs,
    #[command(flatten)]
    runtime: RuntimeArgs,
    /// The agent the program runs for (its ring chooses the box; the kill switch for it
    /// terminates the program).
    #[arg(long, value_name = "NAME")]
    agent: Option<String>,
    /// Run in the box of this ring if it is less privileged than the agent's own (kernel,
    /// supervisor, user, untrusted): narrows the box, never widens it.
    #[arg(long, value_name = "RING", value_parser = parse_ring)]
    ring: Option<Ring>,
    /// Let the program read (and execute) this tree too (repeatable).
    #[arg(long = "allow-read", value_name = "PATH")]
    allow_read: Vec<PathBuf>,
    /// Let the program write this tree too (repeatable). Not `/`, and not a tree holding
    /// Warden's own files (its database, key, policies or binary).
    #[arg(long = "allow-write", value_name = "PATH")]
    allow_write: Vec<PathBuf>,
    /// Pass this environment variable too (repeatable); all others but PATH, HOME, LANG,
    /// LC_ALL, LC_CTYPE, TERM, TZ, USER, LOGNAME are removed.
    #[arg(long = "env", value_name = "NAME")]
    env: Vec<String>,
    /// Wall-clock limit in seconds: the whole tree is killed at it.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    timeout: u64,
    /// Memory limit in MiB (address space of each process).
    #[arg(long, value_name = "MIB", default_value_t = 4096)]
    memory: u64,
    /// CPU limit in seconds (of each process).
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    cpu: u64,
    /// The most processes and threads in the box at once.
    #[arg(long, value_name = "N", default_value_t = 256)]
    max_procs: u64,
    /// Bytes of stdout, and of stderr, passed on; the rest is dropped (and counted).
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20)]
    max_output: u64,
    /// Run even when this kernel cannot give every protection of the box; each one missing
    /// is named on stderr. Without it such a run is refused.
    #[arg(long)]
    weaker_box: bool,
    /// The program and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<String>,
}

fn parse_ring(s: &str) -> std::result::Result<Ring, String> {
    s.parse()
}

/// The helper's file name, beside the `warden` binary (see `src/sandbox_main.rs`).
const HELPER: &str = "warden-sandbox";

/// A word as a POSIX shell would need it written: bare when it is plain, else single-quoted.
fn quoted(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// The action `warden exec` asks about.
fn action(agent: Option<&str>, command: &[String], cwd: &Path, env: &[String]) -> Action {
    let line: Vec<String> = command.iter().map(|w| quoted(w)).collect();
    let mut a = Action::new("execute_code")
        .with_arg("command", line.join(" "))
        .with_arg("argv", json!(command))
        .with_arg("cwd", cwd.display().to_string())
        .with_arg("env", json!(env))
        .with_context("door", "exec");
    // Relative paths in the command are read against the directory it will run in.
    if let Ok(cwd) = std::env::current_dir() {
        a = a.with_context("cwd", cwd.to_string_lossy().as_ref());
    }
    if let Some(agent) = agent {
        a = a.with_agent(agent);
    }
    a
}

/// The names of the variables the program gets (those of Warden's that are set).
fn env_names(extra: &[String]) -> Result<Vec<String>> {
    let mut names: Vec<String> = Vec::new();
    for name in PASSED_ENV
        .iter()
        .map(|s| s.to_string())
        .chain(extra.iter().cloned())
    {
        if name.is_empty() || name.contains('=') || name.contains('\0') {
            return Err(Error::msg(format!(
                "--env {}: not a variable name",
                visible(&name)
            )));
        }
        if std::env::var_os(&name).is_some() && !names.contains(&name) {
            names.push(name);
        }
    }
    Ok(names)
}

static NEXT: AtomicU64 = AtomicU64::new(0);

/// A private directory for one run: `scratch/` (the program's TMPDIR, writable in every
/// box) and `status` (where the helper says why it could not start the program), removed
/// when the run ends.
struct RunDir(PathBuf);

impl RunDir {
    fn new() -> Result<RunDir> {
        let dir = std::env::temp_dir().join(format!(
            "warden-exec-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| Error::msg(format!("cannot create {}: {e}", dir.display())))?;
        let run = RunDir(dir);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(run.scratch())
            .map_err(|e| Error::msg(format!("cannot create the scratch directory: {e}")))?;
        std::fs::write(run.status(), "")
            .map_err(|e| Error::msg(format!("cannot create the status file: {e}")))?;
        let _ = std::fs::set_permissions(run.status(), std::fs::Permissions::from_mode(0o600));
        Ok(run)
    }
    fn scratch(&self) -> PathBuf {
        self.0.join("scratch")
    }
    fn status(&self) -> PathBuf {
        self.0.join("status")
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The signing key of the audit log (`--signing-key`, default `<db>.key`), if there is one.
fn signing_key(args: &ExecArgs) -> Option<PathBuf> {
    let db = args.audit.db.as_ref()?;
    Some(
        args.audit
            .signing_key
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("{}.key", db.display()))),
    )
}

/// `files` as absolute paths without symlinks (a file not there yet, such as a new
/// database, by its directory).
fn resolved(files: &[PathBuf]) -> Vec<PathBuf> {
    files
        .iter()
        .filter_map(|f| {
            f.canonicalize().ok().or_else(|| {
                let parent = f.parent().filter(|p| !p.as_os_str().is_empty());
                let parent = parent.unwrap_or(Path::new("."));
                Some(parent.canonicalize().ok()?.join(f.file_name()?))
            })
        })
        .collect()
}

/// Warden's own files: a tree holding one of them is never made writable for a program.
fn own_files(args: &ExecArgs) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = args.policy.policies.clone();
    if let Some(db) = &args.audit.db {
        files.push(db.clone());
    }
    files.extend(signing_key(args));
    if let Ok(exe) = std::env::current_exe() {
        files.push(exe);
    }
    resolved(&files)
}

/// Why `tree` must not be readable, if it must not: it holds the log's signing key.
fn unreadable(tree: &Path, secrets: &[PathBuf]) -> Option<String> {
    secrets
        .iter()
        .find(|f| f.starts_with(tree))
        .map(|f| format!("it holds Warden's signing key {}", f.display()))
}

/// Why `tree` must not be writable, if it must not.
fn unwritable(tree: &Path, own: &[PathBuf]) -> Option<String> {
    if tree == Path::new("/") {
        return Some("the whole file system".into());
    }
    // The kernel's control files: through cgroup.procs a program could leave its cgroup.
    let control = [Path::new("/proc"), Path::new("/sys")];
    if control
        .iter()
        .any(|c| tree.starts_with(c) || c.starts_with(tree))
    {
        return Some("it holds the kernel's control files (/proc, /sys)".into());
    }
    own.iter()
        .find(|f| f.starts_with(tree))
        .map(|f| format!("it holds Warden's own file {}", f.display()))
}

fn canonical(flag: &str, path: &Path) -> Result<PathBuf> {
    path.canonicalize()
        .map_err(|e| Error::msg(format!("{flag} {}: {e}", path.display())))
}

/// The box for this run: the ring's profile plus the flags.
fn spec(
    args: &ExecArgs,
    ring: Ring,
    cwd: &Path,
    run: &RunDir,
    notes: &mut Vec<String>,
) -> Result<Spec> {
    let profile = Profile::of(ring);
    let own = own_files(args);
    let secrets = resolved(&signing_key(args).into_iter().collect::<Vec<_>>());
    let mut read = profile.read;
    let mut write = profile.write;
    write.push(run.scratch());
    // (`supervisor` reads the whole file system, key included: see docs/sandbox.md.)
    let cwd_secret = unreadable(cwd, &secrets).filter(|_| profile.landlock);
    if let Some(why) = &cwd_secret {
        if profile.read_cwd && !read.iter().any(|r| cwd.starts_with(r)) {
            notes.push(format!(
                "the working directory {} is not readable in the box: {why}",
                cwd.display()
            ));
        }
    } else if profile.read_cwd {
        read.push(cwd.to_path_buf());
    }
    if profile.write_cwd && profile.landlock && cwd_secret.is_none() {
        match unwritable(cwd, &own) {
            None => write.push(cwd.to_path_buf()),
            Some(why) => notes.push(format!(
                "the working directory {} is read-only in the box: {why}",
                cwd.display()
            )),
        }
    }
    for path in &args.allow_read {
        let tree = canonical("--allow-read", path)?;
        if let Some(why) = unreadable(&tree, &secrets) {
            return Err(Error::msg(format!(
                "--allow-read {}: refused: {why}",
                path.display()
            )));
        }
        read.push(tree);
    }
    for path in &args.allow_write {
        let tree = canonical("--allow-write", path)?;
        if let Some(why) = unwritable(&tree, &own).or_else(|| unreadable(&tree, &secrets)) {
            return Err(Error::msg(format!(
                "--allow-write {}: refused: {why}",
                path.display()
            )));
        }
        write.push(tree);
    }
    let mib = 1024 * 1024;
    Ok(Spec {
        ring: ring.as_str().to_string(),
        landlock: profile.landlock,
        read,
        write,
        network: profile.network,
        limits: Limits {
            cpu_secs: args.cpu.max(1),
            memory_bytes: args.memory.max(1).saturating_mul(mib),
            max_procs: args.max_procs.max(1),
            ..Limits::default()
        },
        cgroups: Vec::new(),
        weaker: args.weaker_box,
        status: run.status(),
        argv: args.command.clone(),
    })
}

/// A channel that hears when process `pid` (our child) has exited, without reaping it.
fn exit_signal(pid: u32) -> std::sync::mpsc::Receiver<()> {
    let (tx, rx) = std::sync::mpsc::channel();
    let pid = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw);
    if let Some(pid) = pid {
        let _ = std::thread::Builder::new()
            .name("warden-exec-wait".into())
            .spawn(move || {
                use rustix::process::{WaitId, WaitIdOptions, waitid};
                // INVARIANT: NOWAIT leaves the child unreaped — only `Supervised` reaps it —
                // so the id stays ours while anything may signal it.
                let options = WaitIdOptions::EXITED | WaitIdOptions::NOWAIT;
                while let Err(rustix::io::Errno::INTR) = waitid(WaitId::Pid(pid), options) {}
                let _ = tx.send(());
            });
    }
    rx
}

/// How the run ended, beyond the exit status.
#[derive(Debug, PartialEq, Eq)]
enum Ending {
    Exited,
    TimedOut,
}

/// `warden exec`.
pub fn run(args: &ExecArgs) -> Result<Exit> {
    let program = args
        .command
        .first()
        .ok_or_else(|| Error::msg("put the program to run after `--`"))?;
    let cwd = std::env::current_dir()
        .and_then(|d| d.canonicalize())
        .map_err(|e| Error::msg(format!("cannot read the working directory: {e}")))?;
    let env = env_names(&args.env)?;
    // One process, one decision: its buckets are shared through `--db` like `check`'s.
    let warden = args
        .runtime
        .apply(builder(&args.policy, &args.audit))
        .shared_rate_limits(true)
        .protect_binary()
        .build()?;
    let decision = warden.decide(&action(args.agent.as_deref(), &args.command, &cwd, &env));
    match decision.verdict {
        Verdict::Allow => {}
        Verdict::Deny | Verdict::RequireApproval => {
            errln!("{}", report::decision_text(&decision));
            return Ok(decision.verdict.into());
        }
    }
    // The agent's ring as the ring gate computed it (no `rings:`: the default, untrusted).
    let computed = warden
        .with_policies(|set| {
            warden
                .runtime()
                .ring_for(set, warden.policy_version(), args.agent.as_deref(), None)
        })
        .map_or(Ring::Untrusted, |(ring, _)| ring);
    let ring = match args.ring {
        Some(flag) => computed.least_privileged(flag),
        None => computed,
    };

    let run_dir = RunDir::new()?;
    let mut notes = Vec::new();
    let mut spec = spec(args, ring, &cwd, &run_dir, &mut notes)?;
    let (cgroup, dropped) =
        Cgroup::create(spec.limits.max_procs, args.weaker_box).map_err(|e| {
            Error::msg(format!(
                "the box cannot be built: {e} (--weaker-box runs without it)"
            ))
        })?;
    spec.cgroups = cgroup.procs_files();
    for d in &dropped {
        errln!("warden: weaker box: without {d}");
    }
    for n in &notes {
        errln!("warden: {n}");
    }

    let exe = std::env::current_exe()
        .map_err(|e| Error::msg(format!("cannot find the warden executable: {e}")))?
        .with_file_name(HELPER);
    if !exe.is_file() {
        return Err(Error::msg(format!(
            "cannot find the box helper {} (it is installed beside `warden`)",
            exe.display()
        )));
    }
    let mut command = Command::new(exe);
    command
        .arg(serde_json::to_string(&spec).map_err(|e| Error::msg(e.to_string()))?)
        .env_clear()
        .current_dir(&cwd)
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for name in &env {
        if let Some(value) = std::env::var_os(name) {
            command.env(format!("{}{name}", sandbox::ENV_PREFIX), value);
        }
    }
    command.env(format!("{}TMPDIR", sandbox::ENV_PREFIX), run_dir.scratch());
    let mut child = command
        .spawn()
        .map_err(|e| Error::msg(format!("cannot run `{}`: {e}", visible(program))))?;
    let out = relay::Relay::start(
        "stdout",
        child.stdout.take().expect("piped"),
        std::io::stdout(),
        args.max_output,
    );
    let err = relay::Relay::start(
        "stderr",
        child.stderr.take().expect("piped"),
        std::io::stderr(),
        args.max_output,
    );
    // From here the kill switch can end it; the Warden (and its watcher) lives until then.
    let child = warden.runtime().supervise(child, args.agent.as_deref());
    let exited = exit_signal(child.pid());
    let deadline = Instant::now() + Duration::from_secs(args.timeout.max(1));
    let grace = Duration::from_secs(args.runtime.kill_grace);
    let mut killed_at: Option<Instant> = None;
    let mut ending = Ending::Exited;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => {
                cgroup.kill();
                return Err(Error::msg(format!(
                    "cannot wait for `{}`: {e}",
                    visible(program)
                )));
            }
        }
        let now = Instant::now();
        if now >= deadline && ending == Ending::Exited {
            ending = Ending::TimedOut;
            cgroup.kill();
            child.kill();
        }
        // The kill switch signalled the program: the rest of the tree gets the same, and
        // the whole of it is killed after the grace.
        if child.terminated_because().is_some() {
            match killed_at {
                None => {
                    cgroup.signal_all(rustix::process::Signal::TERM);
                    killed_at = Some(now);
                }
                Some(t) if now >= t + grace => cgroup.kill(),
                Some(_) => {}
            }
        }
        // Woken at once when the program exits; else every 10 ms for the clock and the kill.
        let _ = exited.recv_timeout(Duration::from_millis(10));
    };
    // Nothing the program started outlives it.
    cgroup.kill();
    let wait = Duration::from_secs(2);
    let relayed = (out.finish(wait), err.finish(wait));
    let refused = cgroup.forks_refused();
    drop(cgroup);
    drop(warden);
    // The helper exits 127 after writing why; a program that ran cannot pass for that
    // unless it also exits 127 (a `supervisor` program can write the file: it is in /tmp).
    let why_not_started = std::fs::read_to_string(run_dir.status()).unwrap_or_default();
    if status.code() == Some(127) && !why_not_started.trim().is_empty() {
        return Err(Error::msg(format!(
            "the box could not be built, `{}` was not run: {}",
            visible(program),
            visible(why_not_started.trim())
        )));
    }
    for (name, r) in [("stdout", relayed.0), ("stderr", relayed.1)] {
        match r {
            Some(r) if r.dropped > 0 => errln!(
                "warden: {name} truncated at {} bytes (--max-output): {} more bytes dropped",
                r.kept,
                r.dropped
            ),
            Some(_) => {}
            None => errln!("warden: {name} was still held open by a process outside the box"),
        }
    }
    if refused > 0 {
        errln!(
            "warden: the box refused {refused} new process(es) at its limit of {} (--max-procs)",
            spec.limits.max_procs
        );
    }
    if let Some(why) = child.terminated_because() {
        return Err(Error::msg(format!(
            "`{}` was terminated: {}",
            visible(program),
            visible(&why)
        )));
    }
    if ending == Ending::TimedOut {
        return Err(Error::msg(format!(
            "`{}` was killed at its time limit of {} s (--timeout), with every process it started",
            visible(program),
            args.timeout.max(1)
        )));
    }
    if status.signal() == Some(rustix::process::Signal::XCPU.as_raw()) {
        errln!(
            "warden: `{}` was killed at its CPU limit of {} s (--cpu)",
            visible(program),
            spec.limits.cpu_secs
        );
    }
    let code = match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => 128 + signal,
        (None, None) => 2,
    };
    Ok(Exit::Child(u8::try_from(code).unwrap_or(2)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_for_a_shell() {
        assert_eq!(quoted("ls"), "ls");
        assert_eq!(quoted("/usr/bin/curl"), "/usr/bin/curl");
        assert_eq!(quoted("a b"), "'a b'");
        assert_eq!(quoted(""), "''");
        assert_eq!(quoted("it's"), r"'it'\''s'");
        assert_eq!(quoted("$(rm -rf /)"), "'$(rm -rf /)'");
        let a = action(
            Some("a1"),
            &["sh".into(), "-c".into(), "echo hi".into()],
            Path::new("/work"),
            &["PATH".into()],
        );
        assert_eq!(a.action, "execute_code");
        assert_eq!(a.args["command"], "sh -c 'echo hi'");
        assert_eq!(a.args["argv"], json!(["sh", "-c", "echo hi"]));
        assert_eq!(a.args["cwd"], "/work");
        assert_eq!(a.args["env"], json!(["PATH"]));
    }

    #[test]
    fn warden_files_and_the_root_are_never_writable() {
        let own = vec![PathBuf::from("/srv/w/w.db")];
        assert!(unwritable(Path::new("/"), &own).is_some());
        assert!(unwritable(Path::new("/srv"), &own).is_some());
        assert!(unwritable(Path::new("/srv/w"), &own).is_some());
        assert!(unwritable(Path::new("/srv/other"), &own).is_none());
        assert!(unwritable(Path::new("/sys/fs/cgroup"), &own).is_some());
        assert!(unwritable(Path::new("/proc/self"), &own).is_some());
    }
}
