//! The WAL stays bounded under sustained appends.
//!
//! SQLite writes its WAL from the start again only when a write transaction begins with every
//! frame already copied back into the database file. With appenders that never pause, a
//! commit always lands while the checkpoint copies, so on its own the WAL grows by every
//! commit's pages until the disk is full (`warden serve --db` at 40k decisions/s: 2 GB in
//! 12 s). The log's checkpoint thread starts it over once it holds more than
//! `wal_restart_bytes` (`log/wal.rs`), taking the writer's lock from the writer thread and
//! from async appenders committing their own groups (`writer::combine`).

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{block_on, config, entry, verify};
use warden_audit::AuditLog;

/// A WAL frame on this build's 4 KiB pages: a 24-byte header and a page.
const FRAME: u64 = 4096 + 24;

/// Four appenders that never pause until `stop`: two append on their threads (committed by
/// the writer thread), two submit and await (each commits the queued group itself). Each
/// returns how many records it appended.
fn appenders(log: &Arc<AuditLog>, stop: &Arc<AtomicBool>) -> Vec<JoinHandle<u64>> {
    (0..4u64)
        .map(|t| {
            let (log, stop) = (log.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let e = entry(t * 10_000_000 + i);
                    if t < 2 {
                        log.append(e).unwrap();
                    } else {
                        block_on(log.submit(e)).unwrap();
                    }
                    i += 1;
                }
                i
            })
        })
        .collect()
}

fn open(dir: &Path, restart_bytes: u64) -> (PathBuf, Arc<AuditLog>) {
    let path = dir.join("log.db");
    let mut c = config();
    c.wal_restart_bytes = restart_bytes;
    // (Few kept checkpoints: verifying hundreds of signatures in a debug build takes seconds.)
    c.keep_checkpoint_every = 1_000_000;
    (path.clone(), Arc::new(AuditLog::open(&path, c).unwrap()))
}

/// Close the log and check every record is there once, chained and signed.
fn close_and_verify(path: &Path, log: Arc<AuditLog>, appended: u64) {
    Arc::into_inner(log).unwrap().close().unwrap();
    let report = verify(path);
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.summary().unwrap().records, appended);
}

#[test]
fn sustained_appends_keep_the_wal_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let (path, log) = open(dir.path(), 1 << 20);
    // Each commit writes at least three pages (a records leaf, the head marker, the
    // checkpoint): keep going until the commits alone would have put 384 MiB into a WAL that
    // was never started over. (A long run: what one slow checkpoint round lets arrive is a
    // small part of it. With 96 MiB, one round that a loaded disk held for a second took
    // 42 MB of a 101 MB run on CI.)
    let target_commits = (384 << 20) / (3 * FRAME);
    let stop = Arc::new(AtomicBool::new(false));
    let writers = appenders(&log, &stop);
    let deadline = Instant::now() + Duration::from_secs(120);
    while log.stats().checkpoints < target_commits && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    let appended: u64 = writers.into_iter().map(|w| w.join().unwrap()).sum();
    let commits = log.stats().checkpoints;
    assert!(log.stats().wal_restarts > 0, "{:?}", log.stats());
    assert!(
        commits >= target_commits,
        "only {commits} commits of {target_commits} in two minutes"
    );
    // The file keeps its largest size (SQLite truncates it only past 64 MiB), so this is the
    // most the WAL ever held. Without the restarts it holds every commit's pages (76 MB after
    // 4,100 commits); with them, the threshold plus what arrives during one checkpoint round
    // and its copies (3–10 MB in a debug build here), whatever the run's length.
    let wal = std::fs::metadata(dir.path().join("log.db-wal"))
        .unwrap()
        .len();
    let unbounded = commits * 3 * FRAME;
    assert!(
        wal < unbounded / 4,
        "the WAL grew to {wal} bytes over {commits} commits ({appended} records)"
    );
    close_and_verify(&path, log, appended);
}

/// Frames in the WAL now, from another connection, copying nothing (`NOOP`). SQLite answers
/// -1 while the WAL index is busy; then ask again.
fn wal_frames(path: &Path) -> i64 {
    let conn = common::sql(path);
    for _ in 0..1000 {
        let frames: i64 = conn
            .query_row("PRAGMA wal_checkpoint(NOOP)", [], |r| r.get(1))
            .unwrap();
        if frames >= 0 {
            return frames;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!("the WAL's frame count stayed unknown");
}

/// A reader still on old frames keeps SQLite from starting the WAL over, so the WAL grows
/// while it reads; the appends go on meanwhile (the restart never waits for the reader, which
/// would hold the writer). Once the reader lets go, a restart starts the WAL over although
/// the appenders never pause, which SQLite alone would not do.
#[test]
fn a_reader_on_old_frames_delays_the_restart_not_the_appends() {
    let dir = tempfile::tempdir().unwrap();
    let (path, log) = open(dir.path(), 256 << 10);
    let threshold = i64::try_from((256 << 10) / FRAME).unwrap();
    log.append(entry(u64::MAX / 2)).unwrap();
    let reader = common::sql(&path);
    reader.execute_batch("BEGIN").unwrap();
    let _: i64 = reader
        .query_row("SELECT count(*) FROM records", [], |r| r.get(0))
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writers = appenders(&log, &stop);
    let deadline = Instant::now() + Duration::from_secs(60);
    while wal_frames(&path) < 8 * threshold {
        assert!(
            Instant::now() < deadline,
            "the appends stalled while a reader held old frames"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    reader.execute_batch("COMMIT").unwrap();
    // Started over: the frame count falls below where it stood, with the appenders running.
    let held = wal_frames(&path);
    // (Without restarts the WAL grows ~100 MB/s here: a short deadline bounds the file.)
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut frames = held;
    while frames >= held / 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
        frames = wal_frames(&path);
    }
    stop.store(true, Ordering::Relaxed);
    let appended: u64 = writers.into_iter().map(|w| w.join().unwrap()).sum();
    assert!(
        frames < held / 2,
        "the WAL was not started over after the reader let go: {held} frames, then {frames}"
    );
    close_and_verify(&path, log, appended + 1);
}
