//! The attacker is the program `warden exec` runs: it tries to read and write outside its
//! box, reach the network, gain privilege, exhaust memory, time and processes, flood the
//! output, and outlive a kill. Each test runs real programs (sh, cat, python3) in the real
//! box, and where a refusal is the point, the same attempt is shown to work when the box
//! allows it — so no test passes because the attempt was broken.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::util::*;

/// `builder` is in ring `supervisor` (so `execute_code` passes the ring gate), `bot` in
/// `untrusted` (so it does not).
const POLICY: &str = "rules:
  - action: \"*\"
    allow: true
rings:
  default: untrusted
  agents: {builder: supervisor, bot: untrusted}
";

/// A work directory to run in, and Warden's files kept elsewhere (so the work directory
/// holds none of them).
struct Boxed {
    work: tempfile::TempDir,
    warden: tempfile::TempDir,
}

impl Boxed {
    fn new() -> Boxed {
        let warden = tempfile::tempdir().unwrap();
        write(warden.path(), "policy.yaml", POLICY);
        Boxed {
            work: tempfile::tempdir().unwrap(),
            warden,
        }
    }

    fn policy(&self) -> String {
        self.warden.path().join("policy.yaml").display().to_string()
    }

    fn db(&self) -> String {
        self.warden.path().join("w.db").display().to_string()
    }

    /// The full command line of `warden exec` for `builder`.
    fn args(&self, flags: &[&str], command: &[&str]) -> Vec<String> {
        let mut all: Vec<String> = vec!["exec".into(), "-p".into(), self.policy()];
        all.extend(["--agent".into(), "builder".into()]);
        all.extend(flags.iter().map(|s| s.to_string()));
        all.push("--".into());
        all.extend(command.iter().map(|s| s.to_string()));
        all
    }

    /// `warden exec -p POLICY --agent builder FLAGS -- COMMAND` in the work directory.
    fn exec(&self, flags: &[&str], command: &[&str]) -> Out {
        self.exec_env(flags, command, &[])
    }

    fn exec_env(&self, flags: &[&str], command: &[&str], env: &[(&str, &str)]) -> Out {
        let args = self.args(flags, command);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        warden_in(Some(self.work.path()), &args, None, env)
    }
}

fn untrusted() -> Vec<&'static str> {
    vec!["--ring", "untrusted"]
}

fn text(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A directory outside every box's default scope (not under /tmp, which `supervisor` may
/// write).
fn elsewhere() -> tempfile::TempDir {
    // Outside every box's writable places, which include /tmp and /var/tmp for `supervisor`:
    // the target directory, unless the checkout itself lives under /tmp (a CI clone), then
    // the home directory.
    let writable_by_boxes = |p: &Path| p.starts_with("/tmp") || p.starts_with("/var/tmp");
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let base = if !writable_by_boxes(target) {
        target.to_path_buf()
    } else {
        home.filter(|h| h.is_dir() && !writable_by_boxes(h))
            .expect("a directory outside /tmp for the test's files (set HOME)")
    };
    tempfile::Builder::new()
        .prefix(".warden-outside-")
        .tempdir_in(base)
        .unwrap()
}

#[test]
fn a_hostile_program_cannot_read_outside_its_scope() {
    let b = Boxed::new();
    let outside = tempfile::tempdir().unwrap();
    let secret = write(outside.path(), "secret.txt", "the secret\n");
    let denied = b.exec(&untrusted(), &["cat", text(&secret)]);
    assert_ne!(denied.code, 0, "{denied:?}");
    assert!(!denied.stdout.contains("the secret"), "{denied:?}");
    assert!(denied.stderr.contains("Permission denied"), "{denied:?}");

    // Through a symlink planted in its own (readable) work directory: still refused.
    std::os::unix::fs::symlink(&secret, b.work.path().join("link")).unwrap();
    let via_link = b.exec(&untrusted(), &["cat", "link"]);
    assert_ne!(via_link.code, 0, "{via_link:?}");
    assert!(!via_link.stdout.contains("the secret"), "{via_link:?}");

    // Inside its scope (given with --allow-read, or its work directory): it reads.
    let mut flags = untrusted();
    flags.extend(["--allow-read", text(outside.path())]);
    let allowed = b.exec(&flags, &["cat", text(&secret)]);
    assert_eq!(allowed.code, 0, "{allowed:?}");
    assert_eq!(allowed.stdout, "the secret\n");
    write(b.work.path(), "mine.txt", "mine\n");
    let own = b.exec(&untrusted(), &["cat", "mine.txt"]);
    assert_eq!(own.stdout, "mine\n", "{own:?}");

    // Root's secrets in /etc are not part of the system files a program needs.
    let shadow = b.exec(&untrusted(), &["cat", "/etc/shadow"]);
    assert_ne!(shadow.code, 0, "{shadow:?}");
}

#[test]
fn a_hostile_program_cannot_write_outside_its_scratch_directory() {
    let b = Boxed::new();
    let target = b.work.path().join("planted");
    let script = format!("echo x > {}", text(&target));
    let denied = b.exec(&untrusted(), &["sh", "-c", &script]);
    assert_ne!(denied.code, 0, "{denied:?}");
    assert!(!target.exists());
    // Its TMPDIR is writable (and gone afterwards).
    let scratch = b.exec(
        &untrusted(),
        &[
            "sh",
            "-c",
            "echo x > \"$TMPDIR/f\" && cat \"$TMPDIR/f\" && echo \"$TMPDIR\"",
        ],
    );
    assert_eq!(scratch.code, 0, "{scratch:?}");
    let tmpdir = scratch.stdout.lines().nth(1).unwrap().to_string();
    assert!(
        !Path::new(&tmpdir).exists(),
        "the scratch directory was left behind"
    );
    // --allow-write opens exactly that tree.
    let mut flags = untrusted();
    let work = b.work.path().display().to_string();
    flags.extend(["--allow-write", &work]);
    let allowed = b.exec(&flags, &["sh", "-c", &script]);
    assert_eq!(allowed.code, 0, "{allowed:?}");
    assert!(target.exists());
}

#[test]
fn a_hostile_caller_cannot_make_the_root_or_wardens_files_writable() {
    let b = Boxed::new();
    let marker = b.work.path().join("ran");
    let touch = ["touch", text(&marker)];
    let trees = [
        "/".to_string(),
        b.warden.path().display().to_string(),
        "/sys/fs/cgroup".to_string(),
    ];
    for tree in trees {
        let out = b.exec(&["--allow-write", &tree], &touch);
        assert_eq!(out.code, 2, "{out:?}");
        assert!(out.stderr.contains("refused"), "{out:?}");
        assert!(!marker.exists(), "ran with --allow-write {tree}");
    }
    // A `user` box writes its work directory, but not when Warden's files are in it.
    let here = Boxed::new();
    let policy = write(here.work.path(), "policy.yaml", POLICY);
    // (Not naming the file: Warden's self-protection denies a command that does.)
    let script = "for f in *.yaml; do echo 'rules: []' > \"$f\"; done";
    let out = warden_in(
        Some(here.work.path()),
        &[
            "exec",
            "-p",
            text(&policy),
            "--agent",
            "builder",
            "--ring",
            "user",
            "--",
            "sh",
            "-c",
            script,
        ],
        None,
        &[],
    );
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("read-only in the box"), "{out:?}");
    assert_eq!(std::fs::read_to_string(&policy).unwrap(), POLICY);
}

const CONNECT: &str = "import socket, sys
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=5)
s.sendall(b'hello')
";

#[test]
fn a_hostile_program_cannot_open_a_network_socket() {
    let b = Boxed::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let out = b.exec(&untrusted(), &["python3", "-c", CONNECT, &port]);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("PermissionError"), "{out:?}");
    assert!(
        listener.accept().is_err(),
        "the listener received a connection from the boxed program"
    );
    // No other family either (a UDP socket, a raw netlink socket).
    let udp = "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM)";
    let out = b.exec(&untrusted(), &["python3", "-c", udp]);
    assert!(out.stderr.contains("PermissionError"), "{out:?}");
    // AF_UNIX stays usable (a local pipe pair is not the network).
    let unix = "import socket; a, b = socket.socketpair(); a.send(b'x'); print(b.recv(1))";
    let out = b.exec(&untrusted(), &["python3", "-c", unix]);
    assert_eq!(out.stdout.trim(), "b'x'", "{out:?}");

    // The same program in a `user` box reaches the listener: the refusal above is the box's.
    let out = b.exec(&["--ring", "user"], &["python3", "-c", CONNECT, &port]);
    assert_eq!(out.code, 0, "{out:?}");
    listener.set_nonblocking(false).unwrap();
    let (mut conn, _) = listener.accept().unwrap();
    let mut got = [0u8; 5];
    std::io::Read::read_exact(&mut conn, &mut got).unwrap();
    assert_eq!(&got, b"hello");
}

#[test]
fn a_hostile_program_cannot_gain_privilege_in_any_ring() {
    let b = Boxed::new();
    for ring in ["untrusted", "user", "supervisor", "kernel"] {
        let setuid = "import os; os.setuid(65534)";
        let out = b.exec(&["--ring", ring], &["python3", "-c", setuid]);
        assert!(out.stderr.contains("PermissionError"), "{ring}: {out:?}");
        let unshare = "import ctypes; libc = ctypes.CDLL(None); \
             print(libc.unshare(0x10000000), ctypes.get_errno())";
        let out = b.exec(&["--ring", ring], &["python3", "-c", unshare]);
        assert!(
            out.stdout.starts_with("-1"),
            "{ring}: unshare(CLONE_NEWUSER): {out:?}"
        );
    }
}

#[test]
fn a_flag_narrows_the_box_but_never_widens_it() {
    let b = Boxed::new();
    let outside = elsewhere();
    let target = outside.path().join("f");
    let script = format!("echo x > {}", text(&target));
    // `builder` is supervisor: asking for the kernel box still gets the supervisor box.
    let out = b.exec(&["--ring", "kernel"], &["sh", "-c", &script]);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(!target.exists(), "--ring widened the box");
    // An agent whose own ring may not run programs is denied before any box.
    let marker = b.work.path().join("ran");
    let out = warden_in(
        Some(b.work.path()),
        &[
            "exec",
            "-p",
            &b.policy(),
            "--agent",
            "bot",
            "--ring",
            "kernel",
            "--",
            "touch",
            text(&marker),
        ],
        None,
        &[],
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("ring"), "{out:?}");
    assert!(!marker.exists(), "a denied program ran");
}

#[test]
fn a_denied_program_never_starts() {
    let b = Boxed::new();
    let deny = write(
        b.warden.path(),
        "deny.yaml",
        "rules:\n  - action: execute_code\n    allow: false\n",
    );
    let marker = b.work.path().join("ran");
    let out = warden_in(
        Some(b.work.path()),
        &["exec", "-p", text(&deny), "--", "touch", text(&marker)],
        None,
        &[],
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("deny"), "{out:?}");
    assert!(!marker.exists(), "a denied program ran");
    // A policy sees what is asked: the words, the working directory, the variable names.
    let picky = write(
        b.warden.path(),
        "picky.yaml",
        "rules:\n  - action: execute_code\n    when: 'args.argv[0] == \"touch\"'\n    allow: false\n  - action: \"*\"\n    allow: true\n",
    );
    let out = warden_in(
        Some(b.work.path()),
        &["exec", "-p", text(&picky), "--", "touch", text(&marker)],
        None,
        &[],
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert!(!marker.exists(), "a denied program ran");
}

#[test]
fn a_hostile_program_is_killed_at_its_time_limit_with_its_children() {
    let b = Boxed::new();
    let script = "sleep 600 & echo $!; sleep 600";
    let out = b.exec(&["--timeout", "1"], &["sh", "-c", script]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("time limit"), "{out:?}");
    let child = out.stdout.trim().to_string();
    eventually("the background sleep is gone", || !alive(&child));
}

#[test]
fn a_hostile_program_fails_at_its_memory_limit() {
    let b = Boxed::new();
    let grab = "x = bytearray(1024 * 1024 * 1024); print('got it')";
    let out = b.exec(&["--memory", "256"], &["python3", "-c", grab]);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("MemoryError"), "{out:?}");
    assert!(!out.stdout.contains("got it"), "{out:?}");
    let fits = b.exec(&["--memory", "2048"], &["python3", "-c", grab]);
    assert_eq!(fits.stdout.trim(), "got it", "{fits:?}");
}

/// Whether process `pid` is running (a zombie waiting to be reaped counts as gone).
fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

const FORK_BOMB: &str = "import os, time
pids = []
for i in range(2000):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        time.sleep(120)
        os._exit(0)
    pids.append(pid)
print(len(pids))
print(' '.join(map(str, pids)))
";

#[test]
fn a_fork_bomb_is_held_at_the_process_limit_and_ended_with_the_program() {
    let b = Boxed::new();
    let out = b.exec(
        &["--max-procs", "16", "--timeout", "60"],
        &["python3", "-c", FORK_BOMB],
    );
    assert_eq!(out.code, 0, "{out:?}");
    let mut lines = out.stdout.lines();
    let forked: usize = lines.next().unwrap().parse().unwrap();
    assert!(
        forked < 16,
        "{forked} processes were started past a limit of 16"
    );
    assert!(out.stderr.contains("--max-procs"), "{out:?}");
    for pid in lines.next().unwrap_or("").split_whitespace() {
        eventually("the forked children are gone", || !alive(pid));
    }
    // And the machine still starts processes.
    assert!(Command::new("true").status().unwrap().success());
}

#[test]
fn the_environment_is_scrubbed_unless_a_variable_is_passed() {
    let b = Boxed::new();
    let env = [("WARDEN_TEST_SECRET", "hunter2")];
    let script = ["sh", "-c", "echo \"[$WARDEN_TEST_SECRET]\"; env"];
    let out = b.exec_env(&untrusted(), &script, &env);
    assert!(out.stdout.starts_with("[]"), "{out:?}");
    assert!(!out.stdout.contains("hunter2"), "{out:?}");
    assert!(!out.stdout.contains("WARDEN_BOX_ENV_"), "{out:?}");
    let mut flags = untrusted();
    flags.extend(["--env", "WARDEN_TEST_SECRET"]);
    let out = b.exec_env(&flags, &script, &env);
    assert!(out.stdout.starts_with("[hunter2]"), "{out:?}");
}

#[test]
fn a_flood_of_output_is_cut_at_the_cap() {
    let b = Boxed::new();
    let out = b.exec(&["--max-output", "100"], &["seq", "1", "100000"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout.len(), 100, "{out:?}");
    assert!(
        out.stderr.contains("stdout truncated at 100 bytes"),
        "{out:?}"
    );
    // A program that closes its stdout, or points it at stderr, changes nothing of that.
    let out = b.exec(
        &["--max-output", "100"],
        &["sh", "-c", "exec 1>&-; seq 1 100000 >&2; exit 5"],
    );
    assert_eq!(out.code, 5, "{out:?}");
    assert!(
        out.stderr.contains("stderr truncated at 100 bytes"),
        "{out:?}"
    );
}

#[test]
fn exit_codes_and_signals_pass_through() {
    let b = Boxed::new();
    assert_eq!(b.exec(&[], &["sh", "-c", "exit 7"]).code, 7);
    assert_eq!(b.exec(&[], &["true"]).code, 0);
    assert_eq!(b.exec(&[], &["sh", "-c", "kill -9 $$"]).code, 128 + 9);
    // A program that cannot be run is the box's error, not a program's exit code.
    let out = b.exec(&[], &["/no/such/program"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("was not run"), "{out:?}");
}

#[test]
fn the_kill_switch_ends_the_whole_boxed_tree() {
    let b = Boxed::new();
    let pids = elsewhere();
    // A grandchild that leaves the session and the process group, then a child that
    // ignores SIGTERM: neither may survive the kill.
    let script = format!(
        "import os, signal, subprocess, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
p = subprocess.Popen(['setsid', 'sh', '-c', 'sleep 600 & echo $! > {0}/grandchild; wait'])
while not os.path.exists('{0}/grandchild'): time.sleep(0.05)
open('{0}/ready', 'w').write('1')
time.sleep(600)
",
        text(pids.path())
    );
    let args = b.args(
        &[
            "--db",
            &b.db(),
            "--kill-grace",
            "1",
            "--allow-write",
            text(pids.path()),
        ],
        &["python3", "-c", &script],
    );
    let mut exec = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(&args)
        .current_dir(b.work.path())
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    eventually("the boxed tree is up", || {
        pids.path().join("ready").exists()
    });
    let grandchild = std::fs::read_to_string(pids.path().join("grandchild")).unwrap();
    let grandchild = grandchild.trim().to_string();
    assert!(alive(&grandchild));
    let kill = warden(
        &[
            "kill",
            "--db",
            &b.db(),
            "--agent",
            "builder",
            "--reason",
            "rogue",
            "--by",
            "t",
        ],
        None,
    );
    assert_eq!(kill.code, 0, "{kill:?}");
    let mut status = None;
    eventually("warden exec ends", || {
        status = exec.try_wait().unwrap();
        status.is_some()
    });
    let mut err = String::new();
    std::io::Read::read_to_string(&mut exec.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.unwrap().code(), Some(2), "{err}");
    assert!(err.contains("terminated") && err.contains("rogue"), "{err}");
    eventually("the grandchild is gone", || !alive(&grandchild));
}

#[test]
fn the_readme_step_is_refused_by_the_box() {
    // The done-when: the untrusted box refuses the socket inside python.
    let b = Boxed::new();
    let out = b.exec(
        &untrusted(),
        &[
            "python3",
            "-c",
            "import socket; socket.create_connection(('127.0.0.1', 9))",
        ],
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr
            .contains("PermissionError: [Errno 1] Operation not permitted"),
        "{out:?}"
    );
}

/// The `cgroup.procs` file of the group the test runs in, in the cgroup2 hierarchy: the
/// group Warden makes each box's group under, so writing a pid there leaves the box.
fn parent_cgroup_procs() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mount = mounts.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        right
            .starts_with("cgroup2 ")
            .then(|| left.split(' ').nth(4).map(str::to_string))?
    })?;
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let own = own.lines().find_map(|l| l.strip_prefix("0::"))?.to_string();
    Some(
        Path::new(&mount)
            .join(own.trim_start_matches('/'))
            .join("cgroup.procs"),
    )
}

#[test]
fn a_hostile_program_cannot_leave_its_cgroup() {
    let Some(procs) = parent_cgroup_procs() else {
        panic!("no cgroup2 hierarchy: the box would have refused to run");
    };
    let b = Boxed::new();
    let script = format!("echo $$ > {} && echo escaped", text(&procs));
    for ring in ["untrusted", "user", "supervisor"] {
        let out = b.exec(&["--ring", ring], &["sh", "-c", &script]);
        assert!(!out.stdout.contains("escaped"), "{ring}: {out:?}");
    }
    // The `kernel` box is limits only (documented): there the same write works, which is
    // what shows the refusals above are the box's.
    let kernel = Boxed::new();
    write(
        kernel.warden.path(),
        "policy.yaml",
        &POLICY.replace("builder: supervisor", "builder: kernel"),
    );
    let out = kernel.exec(&[], &["sh", "-c", &script]);
    assert!(out.stdout.contains("escaped"), "{out:?}");
}

#[test]
fn a_hostile_program_cannot_read_the_audit_logs_signing_key() {
    let b = Boxed::new();
    // The log and its key in the work directory (`--db w.db` makes `w.db.key` beside it).
    let mut flags = untrusted();
    flags.extend(["--db", "w.db"]);
    let out = b.exec(&flags, &["sh", "-c", "cat *.key"]);
    assert!(b.work.path().join("w.db.key").exists());
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("not readable in the box"), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    let work = b.work.path().display().to_string();
    flags.extend(["--allow-read", &work]);
    let out = b.exec(&flags, &["sh", "-c", "cat *.key"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("refused"), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
}

#[test]
fn without_its_helper_warden_exec_runs_nothing() {
    // A `warden` copied alone somewhere: no `warden-sandbox` beside it, so no box.
    let b = Boxed::new();
    let lonely = tempfile::tempdir().unwrap();
    let exe = lonely.path().join("warden");
    std::fs::copy(env!("CARGO_BIN_EXE_warden"), &exe).unwrap();
    let marker = b.work.path().join("ran");
    let args = b.args(&[], &["touch", text(&marker)]);
    let out = Command::new(&exe)
        .args(&args)
        .current_dir(b.work.path())
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("cannot find the box helper"), "{err}");
    assert!(!marker.exists(), "a program ran without its box");
}
