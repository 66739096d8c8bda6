//! Logs of format version 1 (written before records kept the action's context): still
//! verified, queried and exported; refused, clearly, for appending.
//!
//! The version 1 file is built here by hand from its documented schema and encoding, as the
//! previous Warden wrote it.

mod common;

use std::path::Path;

use rusqlite::params;
use warden_audit::{
    AuditError, AuditLog, Encoding, Filter, Record, TamperKind, Timestamp, VerifyReport, query,
};
use warden_core::Verdict;

const V1_SCHEMA: &str = "
PRAGMA application_id = 1463899460;
PRAGMA user_version = 1;
CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) STRICT;
CREATE TABLE records (
    seq INTEGER PRIMARY KEY, ts_ns INTEGER NOT NULL, agent TEXT, action TEXT NOT NULL,
    tool TEXT, resource TEXT, verdict TEXT NOT NULL, policy TEXT, rule TEXT,
    reason TEXT NOT NULL, args TEXT, args_digest BLOB NOT NULL, latency_ns INTEGER NOT NULL,
    policy_version INTEGER, prev_hash BLOB NOT NULL, hash BLOB NOT NULL) STRICT;
CREATE TABLE checkpoints (
    seq INTEGER PRIMARY KEY, head_hash BLOB NOT NULL, signed_at_ns INTEGER NOT NULL,
    scheme TEXT NOT NULL, key_id TEXT NOT NULL, public_key BLOB NOT NULL,
    signature BLOB NOT NULL) STRICT;
CREATE TABLE incidents (
    id INTEGER PRIMARY KEY, at_ns INTEGER NOT NULL, kind TEXT NOT NULL,
    first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL, detail TEXT NOT NULL) STRICT;
INSERT INTO meta VALUES ('format', 'warden-audit'), ('state', 'closed');
";

/// A closed version 1 log with records 1..=n and `next_seq` = n + 1.
fn v1_log(path: &Path, n: u64) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(V1_SCHEMA).unwrap();
    let mut prev = [0u8; 32];
    for seq in 1..=n {
        let mut r = Record {
            seq,
            ts: Timestamp::from_unix_nanos(1_700_000_000_000_000_000 + seq as i64),
            agent: Some("agent".into()),
            action: "http_request".into(),
            tool: None,
            resource: None,
            verdict: Verdict::Deny,
            policy: None,
            rule: Some("rules[0]".into()),
            reason: "no".into(),
            args: Some(serde_json::json!({"n": seq})),
            args_digest: [1; 32],
            context: None,
            latency_ns: 5,
            policy_version: None,
            prev_hash: prev,
            hash: [0; 32],
        };
        r.hash = r.compute_hash_as(Encoding::V1);
        conn.execute(
            "INSERT INTO records VALUES (?1, ?2, ?3, ?4, NULL, NULL, 'deny', NULL, ?5, 'no', ?6, ?7, 5, NULL, ?8, ?9)",
            params![
                seq as i64,
                r.ts.unix_nanos(),
                r.agent,
                r.action,
                r.rule,
                warden_audit::canonical_json(r.args.as_ref().unwrap()),
                &r.args_digest[..],
                &r.prev_hash[..],
                &r.hash[..],
            ],
        )
        .unwrap();
        prev = r.hash;
    }
    conn.execute(
        "INSERT INTO meta VALUES ('next_seq', ?1)",
        [(n + 1).to_string()],
    )
    .unwrap();
}

#[test]
fn a_version_1_log_still_verifies_and_reads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    v1_log(&path, 6);
    let report = common::verify(&path);
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.summary().unwrap().records, 6);
    let records = query(&path, &Filter::default()).unwrap();
    assert_eq!(records.len(), 6);
    assert_eq!(records[5].context, None);
    assert_eq!(records[5].compute_hash_as(Encoding::V1), records[5].hash);
    // And an edit is still found with the version 1 encoding.
    common::sql(&path)
        .execute("UPDATE records SET reason = 'yes' WHERE seq = 4", [])
        .unwrap();
    match common::verify(&path) {
        VerifyReport::Tampered { tampering, .. } => {
            assert_eq!((tampering.seq, tampering.kind), (4, TamperKind::Modified));
        }
        other => panic!("expected tampering, got {other}"),
    }
}

#[test]
fn an_emptied_version_1_log_is_not_intact() {
    // Reported: emptied of all records and checkpoints, with `meta` saying next_seq = 7,
    // it verified as intact.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    v1_log(&path, 6);
    common::sql(&path)
        .execute_batch("DELETE FROM records; DELETE FROM checkpoints;")
        .unwrap();
    match common::verify(&path) {
        VerifyReport::Tampered { tampering, .. } => {
            assert_eq!((tampering.seq, tampering.kind), (1, TamperKind::Deleted));
        }
        other => panic!("expected tampering, got {other}"),
    }
}

#[test]
fn a_version_1_log_is_refused_for_appending_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    v1_log(&path, 3);
    let before = std::fs::read(&path).unwrap();
    let e = AuditLog::open(&path, common::config()).unwrap_err();
    assert!(matches!(e, AuditError::OldFormat { found: 1, .. }), "{e}");
    assert!(e.to_string().contains("old.db"), "{e}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
}
