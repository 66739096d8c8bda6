//! The independent verifier that `docs/audit.md` documents (`scripts/verify_audit.py`, written
//! from the documentation alone) must agree with this crate on real logs: intact ones pass,
//! edited ones fail, a pinned key that did not sign fails. Run with its built-in BLAKE3 (and
//! with the `blake3` package when that is installed), on records larger than one BLAKE3
//! chunk so the hash tree is exercised.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{config, entry, key, other_key, sql};
use warden_audit::{AuditLog, Entry, public_key_hex};
use warden_core::{Action, Decision};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/verify_audit.py")
}

/// Run the script; returns (exit code, stdout + stderr).
fn run(args: &[&str], pure: bool) -> (i32, String) {
    let mut cmd = Command::new("python3");
    cmd.arg(script()).args(args);
    if pure {
        cmd.env("WARDEN_VERIFY_PURE_BLAKE3", "1");
    }
    let out = cmd
        .output()
        .expect("python3 is needed for this test (and the `cryptography` package)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn log(dir: &Path) -> PathBuf {
    let path = dir.join("warden.db");
    let log = AuditLog::open(&path, config()).unwrap();
    for i in 1..=23 {
        log.append(entry(i)).unwrap();
    }
    // Larger than one 1024-byte BLAKE3 chunk, with context, redacted and not.
    let big = Action::new("mcp.tools/call")
        .with_tool("write_file")
        .with_arg("content", "x".repeat(3000))
        .with_context("server", "filesystem")
        .with_context("cwd", "/home/u/\u{202e}proj");
    log.append(Entry::new(&big, &Decision::deny("too big")))
        .unwrap();
    let mut redacted = Decision::deny("secret");
    redacted.obligations = vec!["redact".into()];
    log.append(Entry::new(&big, &redacted).with_policy_version(9))
        .unwrap();
    log.close().unwrap();
    path
}

#[test]
fn the_documented_verifier_agrees_on_intact_and_tampered_logs() {
    let dir = tempfile::tempdir().unwrap();
    let path = log(dir.path());
    let db = path.to_str().unwrap();
    let pinned = public_key_hex(&key().verifying_key());
    let wrong = public_key_hex(&other_key().verifying_key());
    for pure in [true, false] {
        let (code, out) = run(&[db, &pinned], pure);
        assert_eq!(code, 0, "pure={pure}: {out}");
        assert!(out.contains("intact: 25 records (format 2)"), "{out}");
        let (code, out) = run(&[db, &wrong], pure);
        assert_eq!(code, 1, "{out}");
        assert!(out.contains("another key"), "{out}");
    }
    // The secret key where the public one belongs is named for what it is.
    let secret = dir.path().join("node.key");
    warden_audit::generate_key_file(&secret).unwrap();
    let (code, out) = run(&[db, secret.to_str().unwrap()], true);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("this is a secret signing key"), "{out}");

    // An edited context is caught by the hash, like every other field.
    sql(&path)
        .execute(
            "UPDATE records SET context = '{\"server\":\"other\"}' WHERE seq = 24",
            [],
        )
        .unwrap();
    let (code, out) = run(&[db], true);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("record 24: does not match its hash"), "{out}");
}

#[test]
fn the_documented_verifier_catches_truncation_and_unsigned_ends() {
    let dir = tempfile::tempdir().unwrap();
    let path = log(dir.path());
    let db = path.to_str().unwrap();
    let pinned = public_key_hex(&key().verifying_key());
    sql(&path)
        .execute_batch(
            "DELETE FROM records WHERE seq > 20; DELETE FROM checkpoints WHERE seq > 20;",
        )
        .unwrap();
    let (code, out) = run(&[db], true);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("head marker"), "{out}");
    // Head marker rewritten too, but the last checkpoint deleted: the pinned key did not
    // sign the end.
    let hash: Vec<u8> = sql(&path)
        .query_row("SELECT hash FROM records WHERE seq = 20", [], |r| r.get(0))
        .unwrap();
    sql(&path)
        .execute_batch(&format!(
            "UPDATE meta SET value = '20 {}' WHERE key = 'head'; DELETE FROM checkpoints WHERE seq = 20;",
            warden_audit::to_hex(&hash)
        ))
        .unwrap();
    let (code, out) = run(&[db], true);
    assert_eq!(code, 0, "unpinned, a consistent shorter chain: {out}");
    let (code, out) = run(&[db, &pinned], true);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("not covered by a checkpoint"), "{out}");
}

#[test]
fn the_documented_verifier_checks_a_remembered_head() {
    // A log cut back to an earlier signed end (records, checkpoints and head marker rewound
    // together) is consistent; only a head seen before shows it was longer.
    let dir = tempfile::tempdir().unwrap();
    let path = log(dir.path());
    let db = path.to_str().unwrap();
    let pinned = public_key_hex(&key().verifying_key());
    let hash = |seq: i64| -> Vec<u8> {
        sql(&path)
            .query_row("SELECT hash FROM records WHERE seq = ?1", [seq], |r| {
                r.get(0)
            })
            .unwrap()
    };
    let head = format!("25:{}", warden_audit::to_hex(&hash(25)));
    let (code, out) = run(&[db, &pinned, "--expect-head", &head], true);
    assert_eq!(code, 0, "{out}");
    sql(&path)
        .execute_batch(&format!(
            "DELETE FROM records WHERE seq > 20; DELETE FROM checkpoints WHERE seq > 20; \
             UPDATE meta SET value = '20 {}' WHERE key = 'head';",
            warden_audit::to_hex(&hash(20))
        ))
        .unwrap();
    let (code, out) = run(&[db, &pinned], true);
    assert_eq!(code, 0, "the file alone is consistent and signed: {out}");
    let (code, out) = run(&[db, &pinned, "--expect-head", &head], true);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("records were removed"), "{out}");
    let wrong = format!("20:{}", "00".repeat(32));
    let (code, out) = run(&[db, "--expect-head", &wrong], true);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("not the record seen before"), "{out}");
    let (code, out) = run(&[db, "--expect-head", "20:zz"], true);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("SEQ:HASH"), "{out}");
}
