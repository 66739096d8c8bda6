//! The WAL stays bounded under sustained appends.
//!
//! SQLite writes its WAL from the start again only when a write transaction begins with every
//! frame already copied back into the database file. With appenders that never pause, a
//! commit always lands while the checkpoint copies, so on its own the WAL grows by every
//! commit's pages until the disk is full (`warden serve --db` at 40k decisions/s: 2 GB in
//! 12 s). The writer restarts it once it holds more than `wal_restart_bytes` (`log/wal.rs`).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{config, entry, verify};
use warden_audit::AuditLog;

/// A WAL frame on this build's 4 KiB pages: a 24-byte header and a page.
const FRAME: u64 = 4096 + 24;

#[test]
fn sustained_appends_keep_the_wal_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.db");
    let mut c = config();
    c.wal_restart_bytes = 1 << 20;
    // (Few kept checkpoints: verifying hundreds of signatures in a debug build takes seconds.)
    c.keep_checkpoint_every = 100_000;
    let log = Arc::new(AuditLog::open(&path, c).unwrap());
    // Each commit writes at least three pages (a records leaf, the head marker, the
    // checkpoint): keep going until the commits alone would have put 48 MiB into a WAL that
    // was never started over.
    let target_commits = (48 << 20) / (3 * FRAME);
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4u64)
        .map(|t| {
            let (log, stop) = (log.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    log.append(entry(t * 10_000_000 + i)).unwrap();
                    i += 1;
                }
                i
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while log.stats().checkpoints < target_commits && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    let appended: u64 = writers.into_iter().map(|w| w.join().unwrap()).sum();
    let commits = log.stats().checkpoints;
    assert!(
        commits >= target_commits,
        "only {commits} commits of {target_commits} in a minute"
    );
    // The file keeps its largest size (SQLite truncates it only past 64 MiB), so this is
    // the most the WAL ever held: the threshold, plus what one checkpoint round (50 ms)
    // and one restart let in.
    let wal = std::fs::metadata(dir.path().join("log.db-wal"))
        .unwrap()
        .len();
    assert!(
        wal < 12 << 20,
        "the WAL grew to {wal} bytes over {commits} commits ({appended} records)"
    );
    Arc::into_inner(log).unwrap().close().unwrap();
    let report = verify(&path);
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.summary().unwrap().records, appended);
}

/// Frames in the WAL now (a passive checkpoint from another connection says so).
fn wal_frames(path: &std::path::Path) -> i64 {
    common::sql(path)
        .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))
        .unwrap()
}

/// A reader still on old frames keeps SQLite from starting the WAL over, but must not hold
/// the appends (a restart that waited for it would hold the writer): they go on and the WAL
/// grows meanwhile; once the reader lets go, a later restart starts it over.
#[test]
fn a_reader_on_old_frames_delays_the_restart_not_the_appends() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.db");
    let mut c = config();
    c.wal_restart_bytes = 256 << 10;
    c.keep_checkpoint_every = 100_000;
    let threshold = (256 << 10) / FRAME as i64;
    let log = AuditLog::open(&path, c).unwrap();
    log.append(entry(0)).unwrap();
    let reader = common::sql(&path);
    reader.execute_batch("BEGIN").unwrap();
    let _: i64 = reader
        .query_row("SELECT count(*) FROM records", [], |r| r.get(0))
        .unwrap();
    for i in 1..=1000 {
        log.append(entry(i)).unwrap();
    }
    let held = wal_frames(&path);
    assert!(
        held > 4 * threshold,
        "with a reader on old frames the WAL should have grown: {held} frames"
    );
    reader.execute_batch("COMMIT").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut i = 1001;
    let mut frames = held;
    while frames >= held && Instant::now() < deadline {
        for _ in 0..100 {
            log.append(entry(i)).unwrap();
            i += 1;
        }
        frames = wal_frames(&path);
    }
    assert!(
        frames < held,
        "the WAL was not started over after the reader let go: {frames} frames"
    );
    log.close().unwrap();
    let report = verify(&path);
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.summary().unwrap().records, i);
}
