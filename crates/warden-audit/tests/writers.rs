//! Many writers on one log: the normal case (every `warden hook` call and every `warden check
//! --db` is its own process, and a server may run beside them).
//!
//! The multi-process tests re-execute this test binary as the writers (`writer_child`, with
//! libtest's own arguments, which `cargo test` and `cargo nextest run` binaries both accept).
//! Every child starts on a fresh path at the same moment, so they also race to create the
//! database and the node key.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{assert_each_entry_once, config, entry};
use warden_audit::{AuditConfig, AuditLog, Mode, parse_verifying_key, public_key_path};

/// `<db path>|<child index>|<appends>|<durable or buffered>|<go file>` in the child's
/// environment.
const CHILD_ENV: &str = "WARDEN_AUDIT_WRITER_CHILD";

/// One writer process: wait for the go signal, open the log the way Warden's doors do
/// (`open_signed`, key beside the log), append, close. Any error is printed and fails it.
#[test]
#[ignore = "runs only as a child process of the multi-writer tests"]
fn writer_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let parts: Vec<&str> = spec.split('|').collect();
    let [db, index, appends, mode, go] = parts[..] else {
        panic!("bad spec {spec}");
    };
    let index: u64 = index.parse().unwrap();
    let appends: u64 = appends.parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !Path::new(go).exists() {
        assert!(Instant::now() < deadline, "no go signal");
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut c = AuditConfig::default();
    c.mode = if mode == "buffered" {
        Mode::Buffered
    } else {
        Mode::Durable
    };
    c.keep_checkpoint_every = 25;
    c.busy_timeout = Duration::from_secs(30);
    let log = AuditLog::open_signed(db, c, None).expect("open");
    for i in 0..appends {
        log.append(entry(index * 100_000 + i)).expect("append");
    }
    log.close().expect("close");
}

/// Start `processes` writers at once on a fresh log; each appends `appends` records.
fn run_writers(dir: &Path, processes: u64, appends: u64, mode: &str) -> PathBuf {
    let db = dir.join("shared.db");
    let go = dir.join("go");
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..processes)
        .map(|i| {
            Command::new(&exe)
                .args([
                    "writer_child",
                    "--exact",
                    "--nocapture",
                    "--ignored",
                    "--test-threads=1",
                ])
                .env(
                    CHILD_ENV,
                    format!("{}|{i}|{appends}|{mode}|{}", db.display(), go.display()),
                )
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    std::fs::write(&go, b"").unwrap();
    for (i, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "writer {i} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    db
}

fn check_shared_log(db: &Path, processes: u64, appends: u64) {
    assert_each_entry_once(
        db,
        (0..processes).flat_map(|p| (0..appends).map(move |i| p * 100_000 + i)),
    );
    // Everyone signed with the one key that won the race to create it, so the log verifies
    // against it pinned, and the last close anchored the end.
    let key_path = warden_audit::default_key_path(db);
    let public = parse_verifying_key(public_key_path(&key_path).to_str().unwrap()).unwrap();
    let report = warden_audit::verify(db, Some(public), |_, _| {});
    assert!(report.is_intact(), "{report}");
    let s = report.summary().unwrap();
    assert_eq!(s.records, processes * appends);
    assert_eq!(
        (s.first_seq, s.last_seq),
        (Some(1), Some(processes * appends))
    );
    assert_eq!(s.keys.len(), 1, "one key signed: {:?}", s.keys);
    assert_eq!(s.unanchored, 0);
    assert!(s.incidents.is_empty(), "{:?}", s.incidents);
}

#[test]
fn sixteen_processes_on_a_fresh_log_lose_nothing_and_deny_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = run_writers(dir.path(), 16, 40, "durable");
    check_shared_log(&db, 16, 40);
    // The key files: one secret (private) and its public key, no temporary leftovers.
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    names.sort();
    assert!(names.is_empty(), "temporary files left behind: {names:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let key = warden_audit::default_key_path(&db);
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}

#[test]
fn twelve_buffered_processes_share_a_log() {
    let dir = tempfile::tempdir().unwrap();
    let db = run_writers(dir.path(), 12, 60, "buffered");
    check_shared_log(&db, 12, 60);
}

#[test]
fn two_logs_in_one_process_interleave_on_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("warden.db");
    let mut buffered = config();
    buffered.mode = Mode::Buffered;
    // One durable and one buffered writer, as a server and a CLI check in one process.
    let logs = [
        Arc::new(AuditLog::open(&path, config()).unwrap()),
        Arc::new(AuditLog::open(&path, buffered).unwrap()),
    ];
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let log = logs[(t % 2) as usize].clone();
            std::thread::spawn(move || {
                for i in 0..300 {
                    log.append(entry(t * 100_000 + i)).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    for log in logs {
        log.flush().unwrap();
        Arc::try_unwrap(log).unwrap().close().unwrap();
    }
    assert_each_entry_once(
        &path,
        (0..4u64).flat_map(|t| (0..300).map(move |i| t * 100_000 + i)),
    );
    let report = warden_audit::verify(&path, Some(common::key().verifying_key()), |_, _| {});
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.summary().unwrap().records, 1200);
}

#[test]
fn a_second_writer_continues_where_the_first_left_off() {
    // Reported: a second `warden serve --db same.db` started and then denied everything.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("warden.db");
    let first = AuditLog::open(&path, config()).unwrap();
    let second = AuditLog::open(&path, config()).unwrap();
    assert_eq!(first.append(entry(1)).unwrap(), Some(1));
    assert_eq!(second.append(entry(2)).unwrap(), Some(2));
    assert_eq!(first.append(entry(3)).unwrap(), Some(3));
    assert_eq!(second.append(entry(4)).unwrap(), Some(4));
    first.close().unwrap();
    second.close().unwrap();
    let report = common::verify(&path);
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.summary().unwrap().records, 4);
}

/// How many records another process sees in the log at `path` (python3's own SQLite).
fn records_seen_elsewhere(path: &Path) -> i64 {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); print(c.execute('SELECT count(*) FROM records').fetchone()[0]); c.close()",
        ])
        .arg(path)
        .output()
        .expect("python3 reads the log");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// A reader (or the runtime's state connection) opened in the process that is writing the
/// log reads the file's header first. Closing the descriptor it read through used to drop
/// every POSIX lock the process held on the file, SQLite's included: the next process to
/// close its connection then took itself for the last one, deleted the `-wal` and `-shm`
/// files under the writer, and every later commit went to an unlinked WAL no other process
/// could see — "committed" records invisible to verifiers until the writer exited.
#[test]
fn a_reader_beside_the_writer_leaves_its_commits_visible_to_other_processes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db");
    let log = AuditLog::open(&path, config()).unwrap();
    assert_eq!(log.append(entry(1)).unwrap(), Some(1));
    // In this process, beside the open writer: the header is probed again.
    assert_eq!(
        warden_audit::query(&path, &warden_audit::Filter::default())
            .unwrap()
            .len(),
        1
    );
    // Another process opens and closes a connection (as `warden audit verify` does). It must
    // not take itself for the last connection: the writer's WAL stays where it is.
    assert_eq!(records_seen_elsewhere(&path), 1);
    let wal = dir.path().join("a.db-wal");
    assert!(wal.exists(), "the WAL was deleted under the open writer");
    assert_eq!(log.append(entry(2)).unwrap(), Some(2));
    // Committed (durable mode) before `append` returned, so visible everywhere now.
    assert_eq!(records_seen_elsewhere(&path), 2);
    log.close().unwrap();
}
