//! `warden audit …` and `--db` end to end: many `warden` processes on one log, verification
//! with a pinned key, the query/show/tail/export views, and hostile record contents.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{Server, example, warden};

/// A log made by real `warden check` runs: four actions that cover the TARGET kinds.
fn log(dir: &Path) -> PathBuf {
    let db = dir.join("warden.db");
    let db_s = db.to_str().unwrap();
    let p = example("brief.yaml");
    let runs: [&[&str]; 4] = [
        &[
            "-a",
            "http_request",
            "--arg",
            "url=https://api.github.com/repos",
            "--arg",
            "method=GET",
        ],
        &[
            "-a",
            "shell.exec",
            "--arg",
            "command=rm -rf /tmp/x",
            "--context",
            "session=s-9",
        ],
        &["-a", "file.write", "--arg", "path=/etc/hosts"],
        &[
            "-a",
            "mcp.tools/call",
            "--tool",
            "read_file",
            "--context",
            "server=filesystem",
        ],
    ];
    for extra in runs {
        let mut args = vec!["check", "-p", &p, "--db", db_s];
        args.extend_from_slice(extra);
        let out = warden(&args, None);
        assert!(out.code == 0 || out.code == 1, "{out:?}");
    }
    db
}

/// Edit the file by hand, as someone with `sqlite3` would (Python's sqlite3 module).
fn sql(db: &Path, statements: &str) {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.executescript(sys.argv[2]); c.commit()",
        ])
        .arg(db)
        .arg(statements)
        .output()
        .expect("python3 edits the test log");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn pub_key(db: &Path) -> String {
    format!("{}.key.pub", db.display())
}

#[test]
fn twelve_check_processes_at_once_on_a_fresh_log_all_decide() {
    // Reported: simultaneous processes on a fresh database failed ("cannot create key file:
    // File exists") and later ones denied ("another writer appended").
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("warden.db");
    let p = example("brief.yaml");
    let children: Vec<_> = (0..12)
        .map(|i| {
            Command::new(env!("CARGO_BIN_EXE_warden"))
                .args([
                    "check",
                    "-p",
                    &p,
                    "--db",
                    db.to_str().unwrap(),
                    "-a",
                    "execute_code",
                ])
                .args(["--arg", &format!("n={i}"), "--json"])
                .env("NO_COLOR", "1")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(1),
            "a policy deny, nothing else: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert!(v["reason"].as_str().unwrap().contains("rule"), "{v}");
        assert!(v["audit_seq"].as_u64().is_some(), "{v}");
    }
    let out = warden(
        &[
            "audit",
            "verify",
            db.to_str().unwrap(),
            "--verify-key",
            &pub_key(&db),
        ],
        None,
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("12 (seq 1..=12)"), "{}", out.stdout);
    let q = warden(&["audit", "query", db.to_str().unwrap(), "--json"], None);
    let mut ns: Vec<u64> = q
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["args"]["n"].as_u64().unwrap())
        .collect();
    ns.sort_unstable();
    assert_eq!(ns, (0..12).collect::<Vec<_>>());
}

#[test]
fn a_secret_key_is_named_for_what_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let db = log(dir.path());
    let secret = format!("{}.key", db.display());
    let out = warden(
        &[
            "audit",
            "verify",
            db.to_str().unwrap(),
            "--verify-key",
            &secret,
        ],
        None,
    );
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr
            .contains("this is a secret signing key; pass the public key")
            && out.stderr.contains("warden.db.key.pub"),
        "{}",
        out.stderr
    );
    assert!(!out.stdout.contains("TAMPERED"), "{}", out.stdout);
    // The old spelling still works, with the public key.
    let out = warden(
        &[
            "audit",
            "verify",
            db.to_str().unwrap(),
            "--key",
            &pub_key(&db),
        ],
        None,
    );
    assert_eq!(out.code, 0, "{out:?}");
}

#[test]
fn a_pinned_key_that_never_signed_the_log_fails_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = log(dir.path());
    let other = dir.path().join("other.key");
    warden_audit::generate_key_file(&other).unwrap();
    sql(&db, "DELETE FROM checkpoints");
    let out = warden(
        &[
            "audit",
            "verify",
            db.to_str().unwrap(),
            "--verify-key",
            &format!("{}.pub", other.display()),
        ],
        None,
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.contains("NOT ANCHORED"), "{}", out.stdout);
    assert!(out.stdout.contains("never signed"), "{}", out.stdout);
}

#[test]
fn query_shows_targets_filters_by_glob_tool_and_rule_and_says_when_cut() {
    let dir = tempfile::tempdir().unwrap();
    let db = log(dir.path());
    let db_s = db.to_str().unwrap();
    let out = warden(&["audit", "query", db_s], None);
    assert_eq!(out.code, 0, "{out:?}");
    for target in [
        "https://api.github.com/repos",
        "rm -rf /tmp/x",
        "/etc/hosts",
        "filesystem/read_file",
    ] {
        assert!(
            out.stdout.contains(target),
            "TARGET {target} missing:\n{}",
            out.stdout
        );
    }
    let mcp = warden(
        &["audit", "query", db_s, "--action", "mcp.*", "--json"],
        None,
    )
    .json();
    assert_eq!(mcp.as_array().unwrap().len(), 1);
    assert_eq!(mcp[0]["context"]["server"], "filesystem");
    let tool = warden(
        &["audit", "query", db_s, "--tool", "read_*", "--json"],
        None,
    )
    .json();
    assert_eq!(tool.as_array().unwrap().len(), 1);
    let rule = warden(
        &["audit", "query", db_s, "--rule", "rules[1]", "--json"],
        None,
    )
    .json();
    assert_eq!(rule.as_array().unwrap().len(), 1, "{rule}");
    assert_eq!(rule[0]["action"], "http_request");
    let cut = warden(&["audit", "query", db_s, "--limit", "2"], None);
    assert_eq!(cut.stdout.lines().count(), 3, "{}", cut.stdout);
    assert!(cut.stderr.contains("more match"), "{}", cut.stderr);
    let all = warden(&["audit", "query", db_s, "--limit", "4"], None);
    assert!(!all.stderr.contains("more match"), "{}", all.stderr);
}

#[test]
fn show_prints_one_record_in_full_and_its_checks() {
    let dir = tempfile::tempdir().unwrap();
    let db = log(dir.path());
    let db_s = db.to_str().unwrap();
    let out = warden(&["audit", "show", db_s, "2"], None);
    assert_eq!(out.code, 0, "{out:?}");
    for want in [
        "record 2",
        "shell.exec",
        "rm -rf /tmp/x",
        "\"session\": \"s-9\"",
        "hash check:     ok",
        "anchored:       by signed checkpoint",
    ] {
        assert!(out.stdout.contains(want), "{want} missing:\n{}", out.stdout);
    }
    sql(&db, "UPDATE records SET verdict = 'allow' WHERE seq = 2");
    let out = warden(&["audit", "show", db_s, "2"], None);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.contains("FAILED"), "{}", out.stdout);
    let out = warden(&["audit", "show", db_s, "99"], None);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("no record 99"), "{}", out.stderr);
}

#[test]
fn hidden_characters_in_records_are_shown_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("warden.db");
    let p = example("brief.yaml");
    let input =
        r#"{"action":"execute_code\u0000","agent":"bot\u202e","args":{"command":"ls\u200b"}}"#;
    let out = warden(
        &[
            "check",
            "-p",
            &p,
            "--db",
            db.to_str().unwrap(),
            "--input",
            "-",
        ],
        Some(input),
    );
    assert!(out.code == 1 || out.code == 2, "{out:?}");
    let q = warden(&["audit", "query", db.to_str().unwrap()], None);
    assert!(q.stdout.contains("execute_code\\u{0}"), "{}", q.stdout);
    assert!(q.stdout.contains("bot\\u{202e}"), "{}", q.stdout);
    for c in ['\0', '\u{202e}', '\u{200b}'] {
        assert!(!q.stdout.contains(c), "raw {c:?} printed:\n{}", q.stdout);
    }
    let show = warden(&["audit", "show", db.to_str().unwrap(), "1"], None);
    assert!(
        show.stdout.contains("execute_code\\u{0}"),
        "{}",
        show.stdout
    );
    assert!(
        !show.stdout.contains('\0') && !show.stdout.contains('\u{200b}'),
        "{}",
        show.stdout
    );
}

#[test]
fn tail_follows_new_records_from_other_processes_and_ends_on_a_closed_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let db = log(dir.path());
    let db_s = db.to_str().unwrap();
    let last2 = warden(&["audit", "tail", db_s, "-n", "2", "--json"], None);
    let seqs: Vec<u64> = last2
        .stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, [3, 4]);

    let mut child = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args([
            "audit",
            "tail",
            db_s,
            "-n",
            "0",
            "--follow",
            "--interval",
            "50",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let p = example("brief.yaml");
    let out = warden(
        &["check", "-p", &p, "--db", db_s, "-a", "execute_code"],
        None,
    );
    assert_eq!(out.code, 1, "{out:?}");
    let line = lines.next().unwrap().unwrap();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        (v["seq"].as_u64(), v["action"].as_str()),
        (Some(5), Some("execute_code"))
    );
    // Close the pipe: the next record it tries to print ends it, with exit 0.
    drop(lines);
    let out = warden(
        &["check", "-p", &p, "--db", db_s, "-a", "execute_code"],
        None,
    );
    assert_eq!(out.code, 1, "{out:?}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("tail --follow did not end after its reader went away");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
}

#[test]
fn export_verifies_first_unless_told_not_to() {
    let dir = tempfile::tempdir().unwrap();
    let db = log(dir.path());
    let db_s = db.to_str().unwrap();
    let good = warden(
        &["audit", "export", db_s, "--verify-key", &pub_key(&db)],
        None,
    );
    assert_eq!(good.code, 0, "{good:?}");
    assert_eq!(good.stdout.lines().count(), 4);
    sql(&db, "UPDATE records SET reason = 'fine' WHERE seq = 3");
    let bad = warden(&["audit", "export", db_s], None);
    assert_eq!(bad.code, 1, "{bad:?}");
    assert!(bad.stdout.is_empty(), "nothing exported: {}", bad.stdout);
    assert!(
        bad.stderr.contains("failed verification at record 3"),
        "{}",
        bad.stderr
    );
    let forced = warden(&["audit", "export", db_s, "--no-verify"], None);
    assert_eq!(forced.code, 0, "{forced:?}");
    assert_eq!(forced.stdout.lines().count(), 4);
}

#[test]
fn a_db_in_a_missing_directory_names_the_path_given() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("nonexistent").join("x.db");
    let p = example("brief.yaml");
    let out = warden(
        &["check", "-p", &p, "--db", db.to_str().unwrap(), "-a", "x"],
        None,
    );
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains(&db.display().to_string()),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("does not exist"), "{}", out.stderr);
    assert!(!out.stderr.contains("creating"), "{}", out.stderr);
}

#[test]
fn a_log_whose_end_was_cut_is_refused_for_appending() {
    let dir = tempfile::tempdir().unwrap();
    let db = log(dir.path());
    sql(&db, "DELETE FROM records WHERE seq = 4");
    let p = example("brief.yaml");
    let out = warden(
        &["check", "-p", &p, "--db", db.to_str().unwrap(), "-a", "x"],
        None,
    );
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("refusing to append"), "{}", out.stderr);
    assert!(
        out.stderr.contains("--allow-tampered-log"),
        "{}",
        out.stderr
    );
    let q = warden(&["audit", "query", db.to_str().unwrap(), "--json"], None);
    assert_eq!(
        q.json().as_array().unwrap().len(),
        3,
        "nothing was appended"
    );
    // Told to, it appends — after recording what it found.
    let db_s = db.to_str().unwrap();
    let out = warden(
        &[
            "check",
            "-p",
            &p,
            "--db",
            db_s,
            "--allow-tampered-log",
            "-a",
            "x",
        ],
        None,
    );
    assert_eq!(out.code, 1, "a decision (deny), not an error: {out:?}");
    let q = warden(&["audit", "query", db_s, "--json"], None);
    assert_eq!(q.json().as_array().unwrap().len(), 4);
    let v = warden(&["audit", "verify", db_s], None);
    assert!(v.stdout.contains("tampered_tail"), "{}", v.stdout);
}

#[test]
fn two_servers_and_a_check_share_one_log() {
    // Reported: a second `warden serve --db same.db` started and then denied everything.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("same.db");
    let db_s = db.to_str().unwrap();
    let p = example("brief.yaml");
    let a = Server::start(&["--policy", &p, "--db", db_s]);
    let b = Server::start(&["--policy", &p, "--db", db_s]);
    let body = r#"{"agent":"bot","action":"http_request","args":{"url":"https://api.github.com/","method":"GET"}}"#;
    let mut seqs = Vec::new();
    for i in 0..6 {
        let server = if i % 2 == 0 { &a } else { &b };
        let d = server.post("/v1/decide", body).json();
        assert_eq!(d["verdict"], "allow", "server {}: {d}", i % 2);
        seqs.push(d["audit_seq"].as_u64().unwrap());
        let out = warden(
            &["check", "-p", &p, "--db", db_s, "-a", "execute_code"],
            None,
        );
        assert_eq!(out.code, 1, "{out:?}");
    }
    let mut sorted = seqs.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), 6, "distinct numbers: {seqs:?}");
    drop((a, b));
    let out = warden(&["audit", "verify", db_s], None);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("12 (seq 1..=12)"), "{}", out.stdout);
}
