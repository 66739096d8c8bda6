//! `AuditLog::submit`: the append an async caller awaits instead of parking a thread. Same
//! promises as `append`: a durable record's future completes only after its commit, with its
//! number; a record that cannot be committed completes with an error; nothing is lost.

mod common;

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use common::{assert_each_entry_once, block_on, config, entry, sql, verify};
use warden_audit::{AuditConfig, AuditError, AuditLog, Mode, VerifyReport, WhenFull};

#[test]
fn durable_submits_complete_after_their_commit_with_their_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let log = AuditLog::open(&db, config()).unwrap();
    // All queued before any is awaited: they share commits, and each learns its number.
    let pending: Vec<_> = (1..=50).map(|i| log.submit(entry(i))).collect();
    assert!(pending.iter().all(|p| !p.must_block()));
    let seqs: Vec<u64> = pending
        .into_iter()
        .map(|p| block_on(p).unwrap().unwrap())
        .collect();
    assert_eq!(seqs, (1..=50).collect::<Vec<_>>());
    // Completed means committed: another connection sees every record now.
    let n: i64 = sql(&db)
        .query_row("SELECT count(*) FROM records", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 50);
    // And `wait` on a thread gives the same answer as awaiting.
    assert_eq!(log.submit(entry(51)).wait().unwrap(), Some(51));
    log.close().unwrap();
    assert!(matches!(verify(&db), VerifyReport::Intact(_)));
    assert_each_entry_once(&db, 1..=51);
}

#[test]
fn buffered_submits_complete_once_queued() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let mut c = config();
    c.mode = Mode::Buffered;
    let log = AuditLog::open(&db, c).unwrap();
    for i in 1..=20 {
        assert_eq!(block_on(log.submit(entry(i))).unwrap(), None);
    }
    log.close().unwrap();
    assert_each_entry_once(&db, 1..=20);
    assert!(matches!(verify(&db), VerifyReport::Intact(_)));
}

#[test]
fn a_submit_that_cannot_be_committed_completes_with_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let mut c = config();
    c.busy_timeout = Duration::from_millis(50);
    let log = AuditLog::open(&db, c).unwrap();
    assert_eq!(block_on(log.submit(entry(1))).unwrap(), Some(1));
    // Someone else holds the write lock: the commit fails, and so does the future.
    let other = sql(&db);
    other.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let e = block_on(log.submit(entry(2))).unwrap_err();
    assert!(matches!(e, AuditError::WriteFailed { .. }), "{e}");
    other.execute_batch("ROLLBACK").unwrap();
    assert_eq!(block_on(log.submit(entry(3))).unwrap(), Some(2));
    log.close().unwrap();
    assert_each_entry_once(&db, [1, 3]);
}

/// A writer stuck on a lock someone else holds, with a queue of one: submits soon find the
/// queue full.
fn stuck_log(db: &std::path::Path, when_full: WhenFull) -> (AuditLog, rusqlite::Connection) {
    let mut c: AuditConfig = config();
    c.queue_capacity = 1;
    c.max_batch = 1;
    c.when_full = when_full;
    c.busy_timeout = Duration::from_secs(30);
    let log = AuditLog::open(db, c).unwrap();
    let other = sql(db);
    other.execute_batch("BEGIN EXCLUSIVE").unwrap();
    (log, other)
}

#[test]
fn a_full_queue_that_waits_for_room_is_left_to_a_thread_that_may_block() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let (log, other) = stuck_log(&db, WhenFull::Block);
    // The writer takes at most one record into its stuck commit and one more waits in the
    // queue: by the third submit, one cannot be queued without blocking.
    let mut pending = Vec::new();
    for i in 1..=3 {
        pending.push(log.submit(entry(i)));
        if pending.last().unwrap().must_block() {
            break;
        }
    }
    let blocked = pending.pop().unwrap();
    assert!(blocked.must_block(), "{blocked:?}");
    assert!(pending.iter().all(|p| !p.must_block()));
    let n = pending.len() as u64 + 1;
    let waiter = std::thread::spawn(move || blocked.wait());
    std::thread::sleep(Duration::from_millis(50));
    other.execute_batch("ROLLBACK").unwrap();
    // Nothing was lost: every one is committed, the blocked one once there was room.
    let mut seqs: Vec<u64> = pending
        .into_iter()
        .map(|p| block_on(p).unwrap().unwrap())
        .collect();
    seqs.push(waiter.join().unwrap().unwrap().unwrap());
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=n).collect::<Vec<_>>());
    log.close().unwrap();
    assert_each_entry_once(&db, 1..=n);
    assert!(matches!(verify(&db), VerifyReport::Intact(_)));
}

#[test]
fn a_full_queue_that_denies_completes_with_queue_full() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let (log, other) = stuck_log(&db, WhenFull::Deny);
    let mut results = Vec::new();
    let mut full = None;
    for i in 1..=3 {
        let p = log.submit(entry(i));
        assert!(!p.must_block());
        results.push((i, p));
        // A refused one is complete at once (poll it on this thread).
        let (_, last) = results.last_mut().unwrap();
        let waker = Waker::noop();
        if let Poll::Ready(r) = std::pin::Pin::new(last).poll(&mut Context::from_waker(waker)) {
            full = Some((i, r));
            results.pop();
            break;
        }
    }
    let (refused, r) = full.expect("a full queue refuses at once");
    assert!(matches!(r, Err(AuditError::QueueFull { .. })), "{r:?}");
    other.execute_batch("ROLLBACK").unwrap();
    let committed: Vec<u64> = results
        .into_iter()
        .map(|(i, p)| {
            block_on(p).unwrap();
            i
        })
        .collect();
    log.close().unwrap();
    assert!(!committed.contains(&refused));
    assert_each_entry_once(&db, committed);
}

#[test]
fn closing_the_log_completes_what_was_submitted() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let log = AuditLog::open(&db, config()).unwrap();
    let pending: Vec<_> = (1..=10).map(|i| log.submit(entry(i))).collect();
    // Close commits what is queued; the futures then hold its results.
    log.close().unwrap();
    for (i, p) in (1..=10).zip(pending) {
        assert_eq!(block_on(p).unwrap(), Some(i));
    }
    assert_each_entry_once(&db, 1..=10);
}

/// Poll every future in turn, like a runtime running the tasks that are ready, until all
/// are complete; returns their results in order. (Bounded: a lost wake-up or a record
/// nobody commits shows as the "did not complete" panic.)
fn run_together<F: Future + Unpin>(mut futures: Vec<F>) -> Vec<F::Output> {
    let waker = Waker::noop();
    let mut cx = Context::from_waker(waker);
    let mut results: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while results.iter().any(Option::is_none) {
        for (f, r) in futures.iter_mut().zip(results.iter_mut()) {
            if r.is_none()
                && let Poll::Ready(v) = std::pin::Pin::new(f).poll(&mut cx)
            {
                *r = Some(v);
            }
        }
        assert!(Instant::now() < deadline, "the futures did not complete");
        std::thread::sleep(Duration::from_millis(1));
    }
    results.into_iter().map(Option::unwrap).collect()
}

#[test]
fn concurrent_submits_are_committed_in_one_group_by_one_of_their_pollers() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let log = AuditLog::open(&db, config()).unwrap();
    // (Give the new writer thread time to go to sleep: awake, it would take what it finds.)
    std::thread::sleep(Duration::from_millis(300));
    // Eight requests queued their records before any is polled a second time: the first
    // poller commits all eight in one transaction (one checkpoint), and each learns its own
    // number.
    let pending: Vec<_> = (1..=8).map(|i| log.submit(entry(i))).collect();
    let seqs: Vec<u64> = run_together(pending)
        .into_iter()
        .map(|r| r.unwrap().unwrap())
        .collect();
    assert_eq!(seqs, (1..=8).collect::<Vec<_>>());
    let stats = log.stats();
    assert_eq!((stats.committed, stats.checkpoints), (8, 1), "{stats:?}");
    log.close().unwrap();
    assert!(matches!(verify(&db), VerifyReport::Intact(_)));
    assert_each_entry_once(&db, 1..=8);
}

#[test]
fn a_commit_that_fails_while_grouped_fails_every_record_of_the_group() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let log = AuditLog::open(&db, config()).unwrap();
    assert_eq!(block_on(log.submit(entry(1))).unwrap(), Some(1));
    // Every insert now fails inside the transaction (not a lock: the grouped commit itself
    // fails on the polling thread).
    let other = sql(&db);
    other
        .execute_batch(
            "CREATE TRIGGER refuse BEFORE INSERT ON records BEGIN SELECT RAISE(ABORT, 'refused'); END;",
        )
        .unwrap();
    let pending: Vec<_> = (2..=6).map(|i| log.submit(entry(i))).collect();
    let results = run_together(pending);
    for r in &results {
        assert!(matches!(r, Err(AuditError::WriteFailed { .. })), "{r:?}");
    }
    assert_eq!(log.stats().failed, 5);
    other.execute_batch("DROP TRIGGER refuse").unwrap();
    // Writes work again: the next group is committed after record 1, nothing in between.
    let pending: Vec<_> = (7..=9).map(|i| log.submit(entry(i))).collect();
    let seqs: Vec<u64> = run_together(pending)
        .into_iter()
        .map(|r| r.unwrap().unwrap())
        .collect();
    assert_eq!(seqs, vec![2, 3, 4]);
    log.close().unwrap();
    assert!(matches!(verify(&db), VerifyReport::Intact(_)));
    assert_each_entry_once(&db, [1, 7, 8, 9]);
}

#[test]
fn a_group_that_finds_the_file_locked_is_committed_by_the_writer_thread_once_it_is_free() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let mut c = config();
    c.busy_timeout = Duration::from_secs(30);
    let log = AuditLog::open(&db, c).unwrap();
    // Another process holds the write lock: the poller does not wait for it (it would stall
    // its runtime) but hands the group to the writer thread, which waits up to
    // busy_timeout.
    let other = sql(&db);
    other.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let pending: Vec<_> = (1..=4).map(|i| log.submit(entry(i))).collect();
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        other.execute_batch("ROLLBACK").unwrap();
    });
    let seqs: Vec<u64> = run_together(pending)
        .into_iter()
        .map(|r| r.unwrap().unwrap())
        .collect();
    release.join().unwrap();
    assert_eq!(seqs, (1..=4).collect::<Vec<_>>());
    log.close().unwrap();
    assert!(matches!(verify(&db), VerifyReport::Intact(_)));
    assert_each_entry_once(&db, 1..=4);
}

#[test]
fn a_submit_dropped_before_its_commit_is_still_committed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let log = AuditLog::open(&db, config()).unwrap();
    // The caller went away (a client hung up) after the record was queued and before any
    // poll committed it: the writer thread commits it, without a flush or a close.
    drop(log.submit(entry(1)));
    let mut polled_once = log.submit(entry(2));
    let waker = Waker::noop();
    assert!(
        std::pin::Pin::new(&mut polled_once)
            .poll(&mut Context::from_waker(waker))
            .is_pending()
    );
    drop(polled_once);
    let deadline = Instant::now() + Duration::from_secs(30);
    while log.stats().committed < 2 {
        assert!(
            Instant::now() < deadline,
            "the dropped submits were not committed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    log.close().unwrap();
    assert_each_entry_once(&db, [1, 2]);
}

#[test]
fn many_threads_submitting_and_awaiting_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let log = Arc::new(AuditLog::open(&db, config()).unwrap());
    // Async pollers on several threads and blocking appenders at once: grouped commits by
    // whichever caller gets the writer first, the writer thread for the rest.
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut seqs = Vec::new();
                for round in 0..50u64 {
                    let base = 1 + t * 1000 + round * 10;
                    if t == 3 {
                        seqs.push(log.append(entry(base)).unwrap().unwrap());
                        continue;
                    }
                    let pending: Vec<_> = (base..base + 4).map(|i| log.submit(entry(i))).collect();
                    seqs.extend(
                        run_together(pending)
                            .into_iter()
                            .map(|r| r.unwrap().unwrap()),
                    );
                }
                seqs
            })
        })
        .collect();
    let mut seqs: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    seqs.sort_unstable();
    let n = seqs.len() as u64;
    assert_eq!(n, 3 * 50 * 4 + 50);
    assert_eq!(seqs, (1..=n).collect::<Vec<_>>(), "every number once");
    Arc::try_unwrap(log).unwrap().close().unwrap();
    assert!(matches!(verify(&db), VerifyReport::Intact(_)));
    let expected = (0..4u64).flat_map(|t| {
        (0..50u64).flat_map(move |round| {
            let base = 1 + t * 1000 + round * 10;
            let k = if t == 3 { 1 } else { 4 };
            base..base + k
        })
    });
    assert_each_entry_once(&db, expected);
}
