//! Appending: sequence numbers, concurrency, modes, a full queue, failing writes, reopening,
//! and reading records back (query, export, independent re-verification of the encoding).

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{config, entry, key, sql, verify, write_log};
use warden_audit::{
    AuditError, AuditLog, Entry, Filter, Mode, Record, Timestamp, WhenFull, export_jsonl, query,
};
use warden_core::{Action, Decision, Verdict};

fn temp() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("warden.db");
    (dir, path)
}

/// Hold SQLite's write lock from another connection, as a stuck `sqlite3` session would.
fn hold_write_lock(path: &Path) -> rusqlite::Connection {
    let conn = sql(path);
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    conn
}

/// Wait (bounded) until `cond` holds; a real condition, not a timing assertion.
#[track_caller]
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("timed out waiting until {what}");
}

#[test]
fn appends_number_from_one_and_read_back_exactly() {
    let (_dir, path) = temp();
    let log = AuditLog::open(&path, config()).unwrap();
    let action = Action::new("http_request")
        .with_agent("agent-1")
        .with_tool("fetch")
        .with_resource("https://api.github.com/")
        .with_arg("method", "GET")
        .with_arg("headers", serde_json::json!({"b": 1, "a": [true, null]}));
    let mut decision = Decision::deny("domain not allowed");
    decision.policy = Some("net.yaml".into());
    decision.rule = Some("rules[0]".into());
    decision.elapsed_ns = 4321;
    let action = action
        .with_context("session", "s-1")
        .with_context("cwd", "/work");
    assert_eq!(
        log.append(Entry::new(&action, &decision).with_policy_version(7))
            .unwrap(),
        Some(1)
    );
    assert_eq!(log.append(common::entry(2)).unwrap(), Some(2));
    let stats = log.stats();
    assert_eq!((stats.appended, stats.committed, stats.failed), (2, 2, 0));
    log.close().unwrap();

    let records = query(&path, &Filter::default()).unwrap();
    assert_eq!(records.len(), 2);
    let r = &records[0];
    assert_eq!(r.seq, 1);
    assert_eq!(r.agent.as_deref(), Some("agent-1"));
    assert_eq!(r.action, "http_request");
    assert_eq!(r.tool.as_deref(), Some("fetch"));
    assert_eq!(r.resource.as_deref(), Some("https://api.github.com/"));
    assert_eq!(r.verdict, Verdict::Deny);
    assert_eq!(r.policy.as_deref(), Some("net.yaml"));
    assert_eq!(r.rule.as_deref(), Some("rules[0]"));
    assert_eq!(r.reason, "domain not allowed");
    assert_eq!(r.args, Some(action.args.clone()));
    assert_eq!(r.latency_ns, 4321);
    assert_eq!(r.policy_version, Some(7));
    assert_eq!(r.context, Some(action.context.clone()));
    assert_eq!(r.prev_hash, [0u8; 32]);
    assert_eq!(r.compute_hash(), r.hash);
    assert_eq!(records[1].prev_hash, r.hash);
    assert!(verify(&path).is_intact());
}

/// `Decision::elapsed_ns` is the caller's to set; past 2^63 - 1 the row could not hold it and
/// the record failed its own verification (found by a test entry with a huge number).
#[test]
fn an_elapsed_time_past_what_a_row_holds_is_clamped_and_verifies() {
    let (_dir, path) = temp();
    let log = AuditLog::open(&path, config()).unwrap();
    for elapsed in [i64::MAX as u64, i64::MAX as u64 + 1, u64::MAX] {
        let mut decision = Decision::deny("no");
        decision.elapsed_ns = elapsed;
        log.append(Entry::new(&Action::new("read_file"), &decision))
            .unwrap();
    }
    log.close().unwrap();
    assert!(verify(&path).is_intact(), "{:?}", verify(&path));
    let records = query(&path, &Filter::default()).unwrap();
    assert!(records.iter().all(|r| r.latency_ns == i64::MAX as u64));
}

#[test]
fn redact_obligation_keeps_only_the_digest() {
    let (_dir, path) = temp();
    let log = AuditLog::open(&path, config()).unwrap();
    let action = Action::new("http_request").with_arg("token", "s3cret");
    let mut decision = Decision::deny("no");
    decision.obligations = vec!["redact".into()];
    log.append(Entry::new(&action, &decision)).unwrap();
    log.close().unwrap();
    let r = &query(&path, &Filter::default()).unwrap()[0];
    assert_eq!(r.args, None);
    let canonical = warden_audit::canonical_json(&action.args);
    assert_eq!(r.args_digest, warden_audit::args_digest(&canonical));
    let raw = std::fs::read(&path).unwrap();
    assert!(
        !raw.windows(6).any(|w| w == b"s3cret"),
        "secret reached the file"
    );
    assert!(verify(&path).is_intact());
}

#[test]
fn concurrent_durable_appends_get_unique_contiguous_numbers() {
    concurrent(Mode::Durable);
}

#[test]
fn concurrent_buffered_appends_get_unique_contiguous_numbers() {
    concurrent(Mode::Buffered);
}

fn concurrent(mode: Mode) {
    let (_dir, path) = temp();
    let mut c = config();
    c.mode = mode;
    c.keep_checkpoint_every = 100;
    let log = Arc::new(AuditLog::open(&path, c).unwrap());
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                (0..500u64)
                    .map(|i| log.append(entry(t * 1000 + i)).unwrap())
                    .collect::<Vec<Option<u64>>>()
            })
        })
        .collect();
    let returned: Vec<Option<u64>> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    if mode == Mode::Durable {
        let mut seqs: Vec<u64> = returned.iter().map(|s| s.unwrap()).collect();
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=2000).collect::<Vec<_>>());
    } else {
        assert!(
            returned.iter().all(Option::is_none),
            "buffered: numbered at commit"
        );
    }
    log.flush().unwrap();
    assert_eq!(log.stats().committed, 2000);
    Arc::try_unwrap(log).unwrap().close().unwrap();
    let report = verify(&path);
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.summary().unwrap().records, 2000);
    assert_eq!(report.summary().unwrap().unanchored, 0);
    common::assert_each_entry_once(
        &path,
        (0..4).flat_map(|t| (0..500).map(move |i| t * 1000 + i)),
    );
}

#[test]
fn reopening_continues_the_chain() {
    let (_dir, path) = temp();
    write_log(&path, 15);
    let log = AuditLog::open(&path, config()).unwrap();
    assert!(log.incidents_at_open().is_empty());
    assert_eq!(log.append(entry(16)).unwrap(), Some(16));
    log.close().unwrap();
    let report = verify(&path);
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.summary().unwrap().records, 16);
    assert_eq!(report.summary().unwrap().gap_count, 0);
}

#[test]
fn every_commit_is_anchored_while_the_log_is_open() {
    // Reported: records waited up to 5 s for a scheduled checkpoint, and whoever signed next
    // vouched for whatever had been appended meanwhile. Now each commit signs its own end.
    let (_dir, path) = temp();
    let log = AuditLog::open(&path, config()).unwrap();
    let pinned = || warden_audit::verify(&path, Some(key().verifying_key()), |_, _| {});
    for i in 1..=25 {
        assert_eq!(log.append(entry(i)).unwrap(), Some(i));
        // Beside the open writer, right after the append returned: signed up to the end.
        let report = pinned();
        assert!(report.is_intact(), "after append {i}: {report}");
        let s = report.summary().unwrap();
        assert_eq!((s.last_checkpoint, s.unanchored), (Some(i), 0));
    }
    assert_eq!(log.stats().checkpoints, 25, "one per commit");
    log.close().unwrap();
    // The kept checkpoints: one every 10 records, and the newest.
    let kept: Vec<u64> = warden_audit::checkpoints(&path)
        .unwrap()
        .iter()
        .map(|c| c.seq)
        .collect();
    assert_eq!(kept, [10, 20, 25]);
}

#[test]
fn buffered_batches_are_anchored_when_they_commit() {
    let (_dir, path) = temp();
    let mut c = config();
    c.mode = Mode::Buffered;
    let log = AuditLog::open(&path, c).unwrap();
    for i in 1..=300 {
        log.append(entry(i)).unwrap();
    }
    log.flush().unwrap();
    let report = warden_audit::verify(&path, Some(key().verifying_key()), |_, _| {});
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.summary().unwrap().records, 300);
    drop(log);
}

#[test]
fn without_a_key_everything_is_unanchored() {
    let (_dir, path) = temp();
    let mut c = config();
    c.signing_key = None;
    let log = AuditLog::open(&path, c).unwrap();
    for i in 1..=5 {
        log.append(entry(i)).unwrap();
    }
    log.close().unwrap();
    let report = verify(&path);
    assert!(report.is_intact());
    assert_eq!(report.summary().unwrap().unanchored, 5);
    assert_eq!(report.summary().unwrap().last_checkpoint, None);
}

#[test]
fn full_queue_with_deny_refuses_appends() {
    let (_dir, path) = temp();
    let mut c = config();
    c.mode = Mode::Buffered;
    c.queue_capacity = 2;
    c.max_batch = 1;
    c.when_full = WhenFull::Deny;
    c.busy_timeout = Duration::from_secs(30);
    let log = AuditLog::open(&path, c).unwrap();
    // Another connection holds the write lock, so the writer is stuck inside one commit
    // holding at most one record; the queue holds two more. The fourth append must fail.
    let blocker = hold_write_lock(&path);
    let mut accepted = Vec::new();
    let mut refused = None;
    for i in 1..=4 {
        match log.append(entry(i)) {
            Ok(_) => accepted.push(i),
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    let e = refused.expect("a full queue must refuse");
    assert!(
        matches!(e, AuditError::QueueFull { capacity: 2, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("warden.db"), "{e}");
    assert_eq!(log.stats().rejected_full, 1);
    blocker.execute_batch("ROLLBACK").unwrap();
    log.flush().unwrap();
    log.close().unwrap();
    let report = verify(&path);
    assert!(report.is_intact(), "{report}");
    let committed: Vec<u64> = query(&path, &Filter::default())
        .unwrap()
        .iter()
        .map(|r| r.args.as_ref().unwrap()["n"].as_u64().unwrap())
        .collect();
    assert_eq!(
        committed, accepted,
        "every accepted append is committed, nothing else"
    );
}

#[test]
fn full_queue_with_block_waits_for_room() {
    let (_dir, path) = temp();
    let mut c = config();
    c.mode = Mode::Buffered;
    c.queue_capacity = 2;
    c.max_batch = 1;
    c.busy_timeout = Duration::from_secs(30);
    let log = Arc::new(AuditLog::open(&path, c).unwrap());
    let blocker = hold_write_lock(&path);
    let finished = Arc::new(AtomicBool::new(false));
    let appender = {
        let (log, finished) = (log.clone(), finished.clone());
        std::thread::spawn(move || {
            for i in 1..=6 {
                assert_eq!(log.append(entry(i)).unwrap(), None);
            }
            finished.store(true, Ordering::SeqCst);
        })
    };
    wait_until("an append blocks", || log.stats().blocked >= 1);
    assert!(
        !finished.load(Ordering::SeqCst),
        "appends returned while the queue was full"
    );
    assert_eq!(log.stats().rejected_full, 0);
    blocker.execute_batch("ROLLBACK").unwrap();
    appender.join().unwrap();
    log.flush().unwrap();
    Arc::try_unwrap(log).unwrap().close().unwrap();
    assert_eq!(verify(&path).summary().unwrap().records, 6);
}

#[test]
fn failed_writes_fail_appends_and_take_no_number() {
    let (_dir, path) = temp();
    let mut c = config();
    c.busy_timeout = Duration::from_millis(50);
    let log = AuditLog::open(&path, c).unwrap();
    assert_eq!(log.append(entry(1)).unwrap(), Some(1));
    let blocker = hold_write_lock(&path);
    let e = log.append(entry(2)).unwrap_err();
    assert!(matches!(e, AuditError::WriteFailed { .. }), "{e}");
    assert!(e.to_string().contains("warden.db"), "{e}");
    let stats = log.stats();
    assert!(stats.failing);
    assert_eq!(stats.failed, 1);
    assert!(stats.last_error.is_some());
    blocker.execute_batch("ROLLBACK").unwrap();
    drop(blocker);
    // Writes work again. Numbers are assigned under the write lock, at commit, so the
    // failed record took none: the log stays contiguous, and its caller was told (denied).
    assert_eq!(log.append(entry(3)).unwrap(), Some(2));
    assert!(!log.stats().failing);
    log.close().unwrap();
    let report = verify(&path);
    assert!(report.is_intact(), "{report}");
    let s = report.summary().unwrap();
    assert_eq!((s.records, s.gap_count), (2, 0));
    assert!(s.incidents.is_empty(), "a durable failure loses nothing");
}

#[test]
fn buffered_appends_are_refused_while_writes_fail_and_accepted_again_after() {
    let (_dir, path) = temp();
    let mut c = config();
    c.mode = Mode::Buffered;
    c.busy_timeout = Duration::from_millis(50);
    let log = AuditLog::open(&path, c).unwrap();
    assert_eq!(log.append(entry(1)).unwrap(), None);
    log.flush().unwrap();
    let blocker = hold_write_lock(&path);
    assert!(
        log.append(entry(2)).is_ok(),
        "queued before the failure is known"
    );
    let e = log.flush().unwrap_err();
    assert!(matches!(e, AuditError::WriteFailed { .. }), "{e}");
    assert!(log.stats().failing);
    // Fail closed: nothing more is acknowledged that could not be written.
    let e = log.append(entry(3)).unwrap_err();
    assert!(matches!(e, AuditError::WriteFailed { .. }), "{e}");
    blocker.execute_batch("ROLLBACK").unwrap();
    drop(blocker);
    wait_until("the writer finds the log writable again", || {
        !log.stats().failing
    });
    log.append(entry(4)).unwrap();
    log.flush().unwrap();
    log.close().unwrap();
    let report = verify(&path);
    assert!(report.is_intact(), "{report}");
    let s = report.summary().unwrap();
    assert_eq!(s.records, 2);
    // The acknowledged but lost record is written down, after the record before it.
    assert_eq!(s.incidents.len(), 1, "{:?}", s.incidents);
    assert_eq!(s.incidents[0].kind, "write_failed");
    assert_eq!((s.incidents[0].after_seq, s.incidents[0].lost), (1, 1));
    let ns: Vec<u64> = query(&path, &Filter::default())
        .unwrap()
        .iter()
        .map(|r| r.args.as_ref().unwrap()["n"].as_u64().unwrap())
        .collect();
    assert_eq!(ns, [1, 4]);
}

#[test]
fn query_filters_and_limits() {
    let (_dir, path) = temp();
    write_log(&path, 30);
    let all = query(&path, &Filter::default()).unwrap();
    assert_eq!(all.len(), 30);
    let by = |f: Filter| -> Vec<u64> { query(&path, &f).unwrap().iter().map(|r| r.seq).collect() };
    let agent = by(Filter {
        agent: Some("agent-1".into()),
        ..Filter::default()
    });
    assert_eq!(agent, (1..=30).filter(|i| i % 4 == 1).collect::<Vec<_>>());
    let denied_exec = by(Filter {
        action: Some("execute_code".into()),
        verdict: Some(Verdict::Deny),
        ..Filter::default()
    });
    assert_eq!(
        denied_exec,
        (1..=30).filter(|i| i % 3 == 1).collect::<Vec<_>>()
    );
    // Patterns: `*` and `?` are wildcards, `[` is itself (rule ids look like `rules[1]`).
    let exec_glob = by(Filter {
        action: Some("execute_*".into()),
        verdict: Some(Verdict::Deny),
        ..Filter::default()
    });
    assert_eq!(exec_glob, denied_exec);
    let rule1 = by(Filter {
        rule: Some("rules[1]".into()),
        ..Filter::default()
    });
    assert_eq!(rule1, (1..=30).filter(|i| i % 5 == 1).collect::<Vec<_>>());
    assert!(
        by(Filter {
            tool: Some("fetc?".into()),
            ..Filter::default()
        })
        .len()
            == 30
    );
    assert!(
        by(Filter {
            tool: Some("fetch*x".into()),
            ..Filter::default()
        })
        .is_empty()
    );
    let last3 = by(Filter {
        limit: Some(3),
        ..Filter::default()
    });
    assert_eq!(last3, vec![28, 29, 30]);
    let (t10, t20) = (all[9].ts, all[19].ts);
    let window = by(Filter {
        since: Some(t10),
        until: Some(t20),
        ..Filter::default()
    });
    assert!(
        window.first() == Some(&10) && !window.contains(&20),
        "{window:?}"
    );
    let none = by(Filter {
        since: Some(Timestamp::parse_rfc3339("2200-01-01").unwrap()),
        ..Filter::default()
    });
    assert!(none.is_empty());
}

#[test]
fn export_streams_json_lines_that_rehash() {
    let (_dir, path) = temp();
    write_log(&path, 12);
    let mut out = Vec::new();
    assert_eq!(export_jsonl(&path, &mut out).unwrap(), 12);
    let text = String::from_utf8(out).unwrap();
    let records: Vec<Record> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 12);
    let mut prev = [0u8; 32];
    for r in &records {
        // Someone holding only the export can re-verify the chain.
        assert_eq!(r.prev_hash, prev);
        assert_eq!(r.compute_hash(), r.hash, "record {}", r.seq);
        prev = r.hash;
    }
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["verdict"], "deny");
    assert!(first["ts"].as_str().unwrap().ends_with('Z'));
    assert_eq!(first["hash"].as_str().unwrap().len(), 64);
}

/// Re-verify a log from raw SQL columns following `docs/audit.md` alone, without using the
/// crate's encoder: the documentation is the contract.
#[test]
fn documented_encoding_reproduces_every_hash() {
    let (_dir, path) = temp();
    let log = AuditLog::open(&path, config()).unwrap();
    for i in 1..=20 {
        log.append(entry(i)).unwrap();
    }
    let mut d = Decision::deny("r");
    d.obligations = vec!["redact".into()];
    log.append(Entry::new(&Action::new("x"), &d).with_policy_version(3))
        .unwrap();
    log.close().unwrap();

    fn text(out: &mut Vec<u8>, b: &[u8]) {
        out.extend_from_slice(&(b.len() as u64).to_le_bytes());
        out.extend_from_slice(b);
    }
    fn opt(out: &mut Vec<u8>, b: Option<Vec<u8>>) {
        match b {
            None => out.push(0),
            Some(b) => {
                out.push(1);
                text(out, &b);
            }
        }
    }
    let conn = sql(&path);
    let mut stmt = conn
        .prepare(
            "SELECT seq, ts_ns, agent, action, tool, resource, verdict, policy, rule, reason, args, \
             args_digest, context, latency_ns, policy_version, prev_hash, hash FROM records ORDER BY seq",
        )
        .unwrap();
    let mut rows = stmt.query([]).unwrap();
    let mut prev = vec![0u8; 32];
    let mut n = 0;
    let mut with_context = 0;
    while let Some(r) = rows.next().unwrap() {
        let s = |i| {
            r.get::<_, Option<String>>(i)
                .unwrap()
                .map(String::into_bytes)
        };
        let mut m = b"warden-audit/record/v2\0".to_vec();
        m.extend_from_slice(&(r.get::<_, i64>(0).unwrap() as u64).to_le_bytes());
        m.extend_from_slice(&r.get::<_, i64>(1).unwrap().to_le_bytes());
        opt(&mut m, s(2));
        text(&mut m, &s(3).unwrap());
        opt(&mut m, s(4));
        opt(&mut m, s(5));
        text(&mut m, &s(6).unwrap());
        opt(&mut m, s(7));
        opt(&mut m, s(8));
        text(&mut m, &s(9).unwrap());
        opt(&mut m, s(10));
        m.extend_from_slice(&r.get::<_, Vec<u8>>(11).unwrap());
        opt(&mut m, s(12));
        m.extend_from_slice(&(r.get::<_, i64>(13).unwrap() as u64).to_le_bytes());
        match r.get::<_, Option<i64>>(14).unwrap() {
            None => m.push(0),
            Some(v) => {
                m.push(1);
                m.extend_from_slice(&(v as u64).to_le_bytes());
            }
        }
        let stored_prev: Vec<u8> = r.get(15).unwrap();
        assert_eq!(stored_prev, prev);
        m.extend_from_slice(&stored_prev);
        let hash: Vec<u8> = r.get(16).unwrap();
        assert_eq!(blake3::hash(&m).as_bytes().as_slice(), hash.as_slice());
        if let Some(args) = s(10) {
            // The digest is BLAKE3 of the stored canonical JSON.
            let digest: Vec<u8> = r.get(11).unwrap();
            assert_eq!(blake3::hash(&args).as_bytes().as_slice(), digest.as_slice());
        }
        prev = hash;
        n += 1;
        with_context += usize::from(s(12).is_some());
    }
    assert_eq!(n, 21);
    assert_eq!(
        with_context, 20,
        "the context of every entry that had one is hashed"
    );
}

#[test]
fn key_is_used_for_checkpoints() {
    let (_dir, path) = temp();
    write_log(&path, 10);
    let cps = warden_audit::checkpoints(&path).unwrap();
    assert_eq!(cps.len(), 1);
    assert_eq!(cps[0].seq, 10);
    assert_eq!(cps[0].scheme, "ed25519");
    assert_eq!(cps[0].public_key, key().verifying_key().as_bytes().to_vec());
}
