//! Tampering with a real log file by hand (plain SQL, as with `sqlite3`) and checking that
//! `verify` names the exact first bad sequence number and the kind of change.

mod common;

use common::{key, other_key, sql, verify, write_log};
use ed25519_dalek::Signer;
use rusqlite::params;
use warden_audit::{
    AuditError, AuditLog, CHECKPOINT_DOMAIN, Filter, Record, TamperKind, VerifyReport, key_id,
    query,
};

const N: u64 = 30;

fn log() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("warden.db");
    write_log(&path, N);
    (dir, path)
}

#[track_caller]
fn expect_tampered(report: VerifyReport, seq: u64, kind: TamperKind) {
    match report {
        VerifyReport::Tampered { tampering, .. } => {
            assert_eq!((tampering.seq, tampering.kind), (seq, kind), "{tampering}");
        }
        other => panic!("expected tampering at {seq} ({kind}), got {other}"),
    }
}

fn record(path: &std::path::Path, seq: u64) -> Record {
    query(path, &Filter::default())
        .unwrap()
        .into_iter()
        .find(|r| r.seq == seq)
        .unwrap()
}

/// Write a record's fields back, as an attacker who read `docs/audit.md` would.
fn put(conn: &rusqlite::Connection, r: &Record) {
    let args = r.args.as_ref().map(warden_audit::canonical_json);
    conn.execute(
        "INSERT OR REPLACE INTO records VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
        params![
            r.seq as i64,
            r.ts.unix_nanos(),
            r.agent,
            r.action,
            r.tool,
            r.resource,
            r.verdict.as_str(),
            r.policy,
            r.rule,
            r.reason,
            args,
            &r.args_digest[..],
            r.context.as_ref().map(warden_audit::canonical_json),
            r.latency_ns as i64,
            r.policy_version.map(|v| v as i64),
            &r.prev_hash[..],
            &r.hash[..],
        ],
    )
    .unwrap();
}

/// Point the head marker at record `seq`, as an attacker who read `docs/audit.md` would.
fn set_head_marker(conn: &rusqlite::Connection, seq: u64, hash: &[u8; 32]) {
    conn.execute(
        "UPDATE meta SET value = ?1 WHERE key = 'head'",
        [format!("{seq} {}", warden_audit::to_hex(hash))],
    )
    .unwrap();
}

/// Shift records `from..` up by one to make room, as an insertion in the middle needs.
fn make_room(conn: &rusqlite::Connection, from: u64) {
    let from = from as i64;
    conn.execute(
        "UPDATE records SET seq = -(seq + 1) WHERE seq >= ?1",
        [from],
    )
    .unwrap();
    conn.execute("UPDATE records SET seq = -seq WHERE seq < 0", [])
        .unwrap();
}

#[test]
fn untouched_log_is_intact() {
    let (_dir, path) = log();
    let report = verify(&path);
    let summary = report.summary().unwrap();
    assert!(report.is_intact(), "{report}");
    assert_eq!(summary.records, N);
    assert_eq!(summary.last_checkpoint, Some(N));
    assert_eq!(summary.checkpoints, 3);
    assert_eq!(summary.unanchored, 0);
    assert_eq!(summary.keys, vec![key_id(&key().verifying_key())]);
    assert_eq!(report.exit_code(), 0);
}

#[test]
fn edited_field_names_the_record() {
    let (_dir, path) = log();
    sql(&path)
        .execute(
            "UPDATE records SET reason = 'nothing to see' WHERE seq = 17",
            [],
        )
        .unwrap();
    let report = verify(&path);
    assert_eq!(report.exit_code(), 1);
    expect_tampered(report, 17, TamperKind::Modified);
}

#[test]
fn edited_verdict_and_redacted_args_are_detected() {
    let (_dir, path) = log();
    let conn = sql(&path);
    conn.execute("UPDATE records SET verdict = 'allow' WHERE seq = 5", [])
        .unwrap();
    expect_tampered(verify(&path), 5, TamperKind::Modified);
    let (_dir2, path2) = log();
    sql(&path2)
        .execute("UPDATE records SET args = NULL WHERE seq = 3", [])
        .unwrap();
    expect_tampered(verify(&path2), 3, TamperKind::Modified);
}

#[test]
fn edited_and_rehashed_record_is_named_by_the_broken_link() {
    let (_dir, path) = log();
    let mut r = record(&path, 17);
    r.reason = "nothing to see".into();
    r.hash = r.compute_hash();
    put(&sql(&path), &r);
    expect_tampered(verify(&path), 17, TamperKind::Modified);
}

#[test]
fn rewritten_chain_is_caught_by_the_next_checkpoint() {
    let (_dir, path) = log();
    let conn = sql(&path);
    // Edit 17 and re-hash everything after it: a consistent chain, but not the signed one.
    let mut prev = record(&path, 16).hash;
    for seq in 17..=N {
        let mut r = record(&path, seq);
        if seq == 17 {
            r.verdict = warden_core::Verdict::Allow;
        }
        r.prev_hash = prev;
        r.hash = r.compute_hash();
        prev = r.hash;
        put(&conn, &r);
    }
    // Checkpoint 10 still matches, checkpoint 20 does not: 11..=20 cannot be vouched for.
    expect_tampered(verify(&path), 11, TamperKind::Rewritten);
}

#[test]
fn deleted_record_is_named() {
    let (_dir, path) = log();
    sql(&path)
        .execute("DELETE FROM records WHERE seq = 17", [])
        .unwrap();
    let report = verify(&path);
    assert_eq!(report.summary().unwrap().last_seq, Some(16));
    expect_tampered(report, 17, TamperKind::Deleted);
}

#[test]
fn deleted_range_names_its_first_record() {
    let (_dir, path) = log();
    sql(&path)
        .execute("DELETE FROM records WHERE seq BETWEEN 12 AND 19", [])
        .unwrap();
    expect_tampered(verify(&path), 12, TamperKind::Deleted);
}

#[test]
fn deleted_first_record_is_named() {
    let (_dir, path) = log();
    sql(&path)
        .execute("DELETE FROM records WHERE seq = 1", [])
        .unwrap();
    expect_tampered(verify(&path), 1, TamperKind::Deleted);
}

#[test]
fn truncated_tail_is_caught_by_a_checkpoint() {
    let (_dir, path) = log();
    sql(&path)
        .execute("DELETE FROM records WHERE seq > 25", [])
        .unwrap();
    expect_tampered(verify(&path), 26, TamperKind::Deleted);
}

#[test]
fn truncation_to_a_checkpoint_with_its_checkpoint_is_caught_by_the_head_marker() {
    let (_dir, path) = log();
    let conn = sql(&path);
    conn.execute("DELETE FROM records WHERE seq > 20", [])
        .unwrap();
    conn.execute("DELETE FROM checkpoints WHERE seq > 20", [])
        .unwrap();
    expect_tampered(verify(&path), 21, TamperKind::Deleted);
}

#[test]
fn truncation_with_the_head_marker_rewritten_needs_external_anchors() {
    // The documented limit: cutting the tail back to a checkpoint, deleting the later
    // checkpoints *and* rewriting the head marker leaves a shorter, consistent log that the
    // pinned key did sign up to its end. Only checkpoints copied elsewhere reveal it.
    let (_dir, path) = log();
    let conn = sql(&path);
    conn.execute("DELETE FROM records WHERE seq > 20", [])
        .unwrap();
    conn.execute("DELETE FROM checkpoints WHERE seq > 20", [])
        .unwrap();
    set_head_marker(&conn, 20, &record(&path, 20).hash);
    let report = warden_audit::verify(&path, Some(key().verifying_key()), |_, _| {});
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.summary().unwrap().last_seq, Some(20));
}

#[test]
fn emptied_log_is_not_intact() {
    // Reported: a log emptied of all records and checkpoints was "intact".
    let (_dir, path) = log();
    let conn = sql(&path);
    conn.execute_batch("DELETE FROM records; DELETE FROM checkpoints;")
        .unwrap();
    expect_tampered(verify(&path), 1, TamperKind::Deleted);
    // With the head marker removed too, a pinned key still vouches for nothing.
    conn.execute("DELETE FROM meta WHERE key = 'head'", [])
        .unwrap();
    let pinned = warden_audit::verify(&path, Some(key().verifying_key()), |_, _| {});
    expect_tampered(pinned, 1, TamperKind::Unanchored);
}

#[test]
fn pinned_key_rejects_a_log_it_never_signed() {
    // Reported: a log made with another key, its checkpoints deleted, passed `--key K`.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("warden.db");
    let log = AuditLog::open(&path, {
        let mut c = common::config();
        c.signing_key = Some(other_key());
        c
    })
    .unwrap();
    for i in 1..=5 {
        log.append(common::entry(i)).unwrap();
    }
    log.close().unwrap();
    sql(&path).execute("DELETE FROM checkpoints", []).unwrap();
    assert!(verify(&path).is_intact(), "unpinned: a consistent chain");
    let pinned = warden_audit::verify(&path, Some(key().verifying_key()), |_, _| {});
    expect_tampered(pinned, 1, TamperKind::Unanchored);
    assert!(
        pinned_detail(&path).contains("never signed"),
        "{}",
        pinned_detail(&path)
    );
}

fn pinned_detail(path: &std::path::Path) -> String {
    warden_audit::verify(path, Some(key().verifying_key()), |_, _| {})
        .tampering()
        .map(|t| t.detail.clone())
        .unwrap_or_default()
}

#[test]
fn pinned_key_rejects_records_after_its_last_checkpoint() {
    let (_dir, path) = log();
    // Remove the final checkpoint: records 21..=30 are no longer vouched for by the key.
    sql(&path)
        .execute("DELETE FROM checkpoints WHERE seq = 30", [])
        .unwrap();
    assert!(verify(&path).is_intact(), "unpinned: intact, 10 unanchored");
    let pinned = warden_audit::verify(&path, Some(key().verifying_key()), |_, _| {});
    expect_tampered(pinned, 21, TamperKind::Unanchored);
}

#[test]
fn forged_insertion_in_the_middle_is_named() {
    let (_dir, path) = log();
    let conn = sql(&path);
    let before = record(&path, 16);
    make_room(&conn, 17);
    // A well-formed record with a correct hash, linked to 16: only its successor gives it away.
    let mut forged = before.clone();
    forged.seq = 17;
    forged.reason = "approved by admin".into();
    forged.prev_hash = before.hash;
    forged.hash = forged.compute_hash();
    put(&conn, &forged);
    expect_tampered(verify(&path), 17, TamperKind::Inserted);
}

#[test]
fn naive_insertion_in_the_middle_is_named() {
    let (_dir, path) = log();
    let conn = sql(&path);
    let mut junk = record(&path, 16);
    make_room(&conn, 17);
    junk.seq = 17;
    junk.reason = "approved by admin".into();
    put(&conn, &junk); // stale hash and link copied from 16
    expect_tampered(verify(&path), 17, TamperKind::Inserted);
}

#[test]
fn swapped_records_are_named() {
    let (_dir, path) = log();
    let conn = sql(&path);
    conn.execute("UPDATE records SET seq = -1 WHERE seq = 17", [])
        .unwrap();
    conn.execute("UPDATE records SET seq = 17 WHERE seq = 18", [])
        .unwrap();
    conn.execute("UPDATE records SET seq = 18 WHERE seq = -1", [])
        .unwrap();
    expect_tampered(verify(&path), 17, TamperKind::Reordered);
}

#[test]
fn tampered_checkpoint_signature_is_named() {
    let (_dir, path) = log();
    let conn = sql(&path);
    let mut sig: Vec<u8> = conn
        .query_row(
            "SELECT signature FROM checkpoints WHERE seq = 20",
            [],
            |r| r.get(0),
        )
        .unwrap();
    sig[5] ^= 1;
    conn.execute(
        "UPDATE checkpoints SET signature = ?1 WHERE seq = 20",
        [&sig],
    )
    .unwrap();
    expect_tampered(verify(&path), 20, TamperKind::BadSignature);
}

#[test]
fn moved_checkpoint_head_is_a_bad_signature() {
    let (_dir, path) = log();
    let conn = sql(&path);
    // Point checkpoint 20 at the hash of a rewritten record: the signature no longer fits.
    conn.execute(
        "UPDATE checkpoints SET head_hash = (SELECT hash FROM records WHERE seq = 19) WHERE seq = 20",
        [],
    )
    .unwrap();
    expect_tampered(verify(&path), 20, TamperKind::BadSignature);
}

#[test]
fn pinned_key_must_have_signed_every_checkpoint() {
    let (_dir, path) = log();
    let right = warden_audit::verify(&path, Some(key().verifying_key()), |_, _| {});
    assert!(right.is_intact(), "{right}");
    let wrong = warden_audit::verify(&path, Some(other_key().verifying_key()), |_, _| {});
    expect_tampered(wrong, 10, TamperKind::UntrustedKey);
}

#[test]
fn re_signed_rewrite_passes_only_without_a_pinned_key() {
    let (_dir, path) = log();
    let conn = sql(&path);
    let attacker = other_key();
    let mut prev = record(&path, 4).hash;
    for seq in 5..=N {
        let mut r = record(&path, seq);
        if seq == 5 {
            r.verdict = warden_core::Verdict::Allow;
        }
        r.prev_hash = prev;
        r.hash = r.compute_hash();
        prev = r.hash;
        put(&conn, &r);
    }
    // Re-sign every checkpoint with the attacker's key, following docs/audit.md.
    let cps: Vec<(i64, i64)> = conn
        .prepare("SELECT seq, signed_at_ns FROM checkpoints")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (seq, signed_at) in cps {
        let head = record(&path, seq as u64).hash;
        let mut msg = CHECKPOINT_DOMAIN.to_vec();
        msg.extend_from_slice(&7u64.to_le_bytes());
        msg.extend_from_slice(b"ed25519");
        msg.extend_from_slice(&(seq as u64).to_le_bytes());
        msg.extend_from_slice(&head);
        msg.extend_from_slice(&signed_at.to_le_bytes());
        let sig = attacker.sign(&msg);
        conn.execute(
            "UPDATE checkpoints SET head_hash = ?1, public_key = ?2, key_id = ?3, signature = ?4 WHERE seq = ?5",
            params![
                &head[..],
                &attacker.verifying_key().as_bytes()[..],
                key_id(&attacker.verifying_key()),
                &sig.to_bytes()[..],
                seq
            ],
        )
        .unwrap();
    }
    set_head_marker(&conn, N, &record(&path, N).hash);
    let unpinned = verify(&path);
    assert!(unpinned.is_intact(), "{unpinned}");
    assert_eq!(
        unpinned.summary().unwrap().keys,
        vec![key_id(&attacker.verifying_key())],
        "the report shows which key signed"
    );
    let pinned = warden_audit::verify(&path, Some(key().verifying_key()), |_, _| {});
    expect_tampered(pinned, 10, TamperKind::UntrustedKey);
}

#[test]
fn first_finding_wins_across_records_and_checkpoints() {
    let (_dir, path) = log();
    let conn = sql(&path);
    conn.execute("UPDATE records SET reason = 'x' WHERE seq = 25", [])
        .unwrap();
    conn.execute(
        "UPDATE checkpoints SET signature = zeroblob(64) WHERE seq = 10",
        [],
    )
    .unwrap();
    expect_tampered(verify(&path), 10, TamperKind::BadSignature);
}

#[test]
fn wrong_length_hash_is_a_modification() {
    let (_dir, path) = log();
    sql(&path)
        .execute("UPDATE records SET hash = x'00' WHERE seq = 9", [])
        .unwrap();
    expect_tampered(verify(&path), 9, TamperKind::Modified);
}

#[test]
fn progress_reaches_the_total() {
    let (_dir, path) = log();
    let mut last = (0, 0);
    let report = warden_audit::verify(&path, None, |done, total| last = (done, total));
    assert!(report.is_intact());
    assert_eq!(last, (N, N));
}

// ---- A tampered log is not silently extended (open checks the end of the chain). ----

#[track_caller]
fn open_refused(path: &std::path::Path, seq: u64, needle: &str) {
    match AuditLog::open(path, common::config()) {
        Err(AuditError::TamperedTail {
            seq: found, detail, ..
        }) => {
            assert_eq!(found, seq, "{detail}");
            assert!(detail.contains(needle), "{detail}");
        }
        Err(e) => panic!("expected TamperedTail at {seq}, got {e}"),
        Ok(_) => panic!("a log with a damaged end was opened for appending"),
    }
}

#[test]
fn open_refuses_an_edited_last_record() {
    let (_dir, path) = log();
    sql(&path)
        .execute("UPDATE records SET reason = 'fine' WHERE seq = 30", [])
        .unwrap();
    open_refused(&path, 30, "does not match its hash");
}

#[test]
fn open_refuses_a_rehashed_last_record_that_breaks_the_link() {
    let (_dir, path) = log();
    let conn = sql(&path);
    let mut r = record(&path, 29);
    r.reason = "fine".into();
    r.hash = r.compute_hash();
    put(&conn, &r);
    // Record 29 re-hashed consistently; 30 no longer links to it.
    open_refused(&path, 30, "does not link");
}

#[test]
fn open_refuses_a_log_cut_short_or_emptied() {
    let (_dir, path) = log();
    sql(&path)
        .execute("DELETE FROM records WHERE seq > 27", [])
        .unwrap();
    open_refused(&path, 30, "head marker");
    let (_dir, path) = log();
    sql(&path)
        .execute_batch("DELETE FROM records; DELETE FROM checkpoints;")
        .unwrap();
    open_refused(&path, 30, "removed from the end");
}

#[test]
fn open_refuses_a_checkpoint_past_the_end() {
    let (_dir, path) = log();
    let conn = sql(&path);
    conn.execute("DELETE FROM records WHERE seq > 25", [])
        .unwrap();
    set_head_marker(&conn, 25, &record(&path, 25).hash);
    open_refused(&path, 26, "checkpoint 30");
}

#[test]
fn a_writer_refuses_to_continue_after_its_log_was_cut_while_open() {
    let (_dir, path) = log();
    let log = AuditLog::open(&path, common::config()).unwrap();
    sql(&path)
        .execute("DELETE FROM records WHERE seq > 28", [])
        .unwrap();
    let e = log.append(common::entry(31)).unwrap_err();
    assert!(matches!(e, AuditError::TamperedTail { .. }), "{e}");
    drop(log);
}

#[test]
fn opting_in_continues_after_a_damaged_end_and_says_so() {
    let (_dir, path) = log();
    sql(&path)
        .execute("UPDATE records SET reason = 'fine' WHERE seq = 30", [])
        .unwrap();
    let mut c = common::config();
    c.allow_tampered_tail = true;
    let log = AuditLog::open(&path, c).unwrap();
    assert_eq!(log.incidents_at_open().len(), 1);
    assert_eq!(log.incidents_at_open()[0].kind, "tampered_tail");
    assert_eq!(log.append(common::entry(31)).unwrap(), Some(31));
    log.close().unwrap();
    // The damage is still reported by verify; the note is in the incidents.
    match verify(&path) {
        VerifyReport::Tampered { tampering, summary } => {
            assert_eq!(tampering.seq, 30);
            assert!(summary.incidents.iter().any(|i| i.kind == "tampered_tail"));
        }
        other => panic!("expected tampering, got {other}"),
    }
}
