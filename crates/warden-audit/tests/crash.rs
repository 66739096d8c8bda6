//! Crash tests: a child process (this test binary, re-executed to run only `crash_child`)
//! appends under load and prints every entry `append` acknowledged; the parent kills it
//! with SIGKILL mid-load, reopens the log and checks what survived.
//!
//! The child is started with libtest's own arguments (`crash_child --exact --nocapture
//! --ignored`), which both `cargo test` and `cargo nextest run` binaries accept.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{config, entry, key};
use warden_audit::{AuditLog, Filter, Mode, VerifyReport, query};

/// Set in the child's environment: `durable:<path>` or `buffered:<path>`.
const CHILD_ENV: &str = "WARDEN_AUDIT_CRASH_CHILD";
/// How many acknowledged appends the parent waits for before killing the child.
const KILL_AFTER: usize = 400;

fn child_config(mode: Mode) -> warden_audit::AuditConfig {
    let mut c = config();
    c.mode = mode;
    c.keep_checkpoint_every = 100;
    c.queue_capacity = 256;
    c.max_batch = 64;
    c
}

/// The child's body. Ignored in normal runs; without the environment variable it does
/// nothing, so `cargo test -- --ignored` stays harmless.
#[test]
#[ignore = "runs only as the child process of the crash tests"]
fn crash_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (mode, path) = spec.split_once(':').expect("mode:path");
    let mode = if mode == "buffered" {
        Mode::Buffered
    } else {
        Mode::Durable
    };
    let log = Arc::new(AuditLog::open(path, child_config(mode)).expect("child opens the log"));
    // Bounded in time in case the parent dies without killing us.
    let deadline = Instant::now() + Duration::from_secs(60);
    let workers: Vec<_> = (0..2u64)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut i = 0;
                while Instant::now() < deadline {
                    let n = t * 1_000_000 + i;
                    log.append(entry(n)).expect("append");
                    // One write per line: the line is only printed after `append` returned.
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "acked {n}").expect("stdout");
                    out.flush().expect("stdout");
                    i += 1;
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
}

/// Kills the child if the parent test fails early.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Run the child against `path`, SIGKILL it after `KILL_AFTER` acknowledgements, and return
/// every entry it reported acknowledged.
fn run_and_kill(mode: &str, path: &Path) -> BTreeSet<u64> {
    let exe = std::env::current_exe().unwrap();
    let child = Command::new(exe)
        .args([
            "crash_child",
            "--exact",
            "--nocapture",
            "--ignored",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, format!("{mode}:{}", path.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let stdout = child.0.stdout.take().unwrap();
    let mut acked = BTreeSet::new();
    let mut killed = false;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        // libtest may print its own text on the same line first; take what follows the tag.
        if let Some(seq) = line.split("acked ").nth(1) {
            acked.insert(seq.trim().parse::<u64>().unwrap());
        }
        if !killed && acked.len() >= KILL_AFTER {
            child.0.kill().unwrap(); // SIGKILL on Unix
            killed = true;
            // Keep reading: lines already in the pipe were acknowledged before the kill.
        }
    }
    child.0.wait().unwrap();
    assert!(
        killed,
        "the child exited before {KILL_AFTER} appends (see its stderr)"
    );
    acked
}

/// The entries (by their `n` argument) in the log.
fn committed(path: &Path) -> BTreeSet<u64> {
    query(path, &Filter::default())
        .unwrap()
        .iter()
        .map(|r| r.args.as_ref().unwrap()["n"].as_u64().unwrap())
        .collect()
}

#[test]
fn durable_appends_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("warden.db");
    let acked = run_and_kill("durable", &path);

    // Every batch committed with its checkpoint, so the log the killed writer left is
    // signed up to its end: nothing unanchored for a forger to hide behind, and nothing the
    // next writer must refuse.
    let pinned = warden_audit::verify(&path, Some(key().verifying_key()), |_, _| {});
    assert!(pinned.is_intact(), "{pinned}");
    assert_eq!(pinned.summary().unwrap().unanchored, 0);
    let in_log = committed(&path);
    let lost: Vec<_> = acked.difference(&in_log).collect();
    assert!(
        lost.is_empty(),
        "acknowledged durable appends lost: {lost:?}"
    );
    // Numbers are contiguous: nothing was handed out and skipped.
    let records = query(&path, &Filter::default()).unwrap();
    let max = records.last().unwrap().seq;
    assert_eq!(records.len() as u64, max);

    // Reopening reports nothing lost and continues the chain.
    let log = AuditLog::open(&path, child_config(Mode::Durable)).unwrap();
    assert!(log.incidents_at_open().is_empty());
    assert_eq!(log.append(entry(0)).unwrap(), Some(max + 1));
    log.close().unwrap();
    let report = warden_audit::verify(&path, Some(key().verifying_key()), |_, _| {});
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.summary().unwrap().unanchored, 0);
}

#[test]
fn buffered_crash_is_reported_as_an_incident_on_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("warden.db");
    let acked = run_and_kill("buffered", &path);

    // What was committed was signed with it: the log is anchored up to its end.
    let report = warden_audit::verify(&path, Some(key().verifying_key()), |_, _| {});
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.summary().unwrap().unanchored, 0);
    let in_log = committed(&path);
    let last = query(&path, &Filter::default())
        .unwrap()
        .last()
        .map_or(0, |r| r.seq);
    let lost = acked.difference(&in_log).count() as u64;

    let log = AuditLog::open(&path, child_config(Mode::Buffered)).unwrap();
    let found = log.incidents_at_open();
    assert_eq!(
        found.len(),
        1,
        "an unclean buffered shutdown is reported: {found:?}"
    );
    assert_eq!(found[0].kind, "unclean_shutdown");
    assert_eq!(found[0].after_seq, last);
    assert!(
        found[0].lost >= lost,
        "the bound {} covers the {lost} acknowledged records lost",
        found[0].lost
    );
    assert_eq!(log.append(entry(0)).unwrap(), None);
    log.close().unwrap();

    // Reported once: the next open finds nothing more.
    let log = AuditLog::open(&path, child_config(Mode::Durable)).unwrap();
    assert!(log.incidents_at_open().is_empty());
    log.close().unwrap();
    match warden_audit::verify(&path, Some(key().verifying_key()), |_, _| {}) {
        VerifyReport::Intact(s) => {
            assert!(s.gaps.is_empty());
            assert_eq!(s.incidents.len(), 1);
            assert_eq!(s.incidents[0].kind, "unclean_shutdown");
            assert_eq!(s.unanchored, 0);
        }
        other => panic!("expected intact, got {other}"),
    }
}
