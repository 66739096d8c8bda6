//! Every command's exit codes and output, on the repository's own examples.

use proptest::prelude::*;

use crate::util::*;

/// A scratch directory (for logs and broken files) and the README's brief policy.
fn brief() -> (tempfile::TempDir, String) {
    (tempfile::tempdir().unwrap(), example("brief.yaml"))
}

#[test]
fn check_exit_codes_follow_the_verdict() {
    let (_d, p) = brief();
    let deny = warden(&["check", "-p", &p, "--action", "execute_code"], None);
    assert_eq!(deny.code, 1, "{}", deny.stderr);
    assert!(deny.stdout.starts_with("deny: "), "{}", deny.stdout);

    let get = [
        "check",
        "-p",
        &p,
        "-a",
        "http_request",
        "--arg",
        "url=https://api.github.com/repos",
        "--arg",
        "method=GET",
    ];
    let allow = warden(&get, None);
    assert_eq!(allow.code, 0, "{}", allow.stderr);
    assert!(allow.stdout.starts_with("allow: "));

    let post = [
        "check",
        "-p",
        &p,
        "-a",
        "http_request",
        "--arg",
        "url=https://api.github.com/repos",
        "--arg",
        "method=POST",
    ];
    assert_eq!(warden(&post, None).code, 1);

    let dir = tempfile::tempdir().unwrap();
    let approval = write(
        dir.path(),
        "a.yaml",
        "rules:\n  - {action: pay, effect: require_approval}\n",
    );
    let out = warden(
        &["check", "-p", approval.to_str().unwrap(), "-a", "pay"],
        None,
    );
    assert_eq!(out.code, 3);
    assert!(out.stdout.starts_with("require_approval: "));
}

#[test]
fn check_json_and_stdin_input() {
    let (_d, p) = brief();
    let input = r#"{"action":"http_request","agent":"a1","args":{"url":"https://api.github.com/","method":"GET"}}"#;
    let out = warden(&["check", "-p", &p, "--input", "-", "--json"], Some(input));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["verdict"], "allow");
    assert_eq!(v["rule"], "rules[1]");
    assert_eq!(v["policy"], "brief");
    assert!(v["elapsed_ns"].as_u64().is_some());
}

#[test]
fn errors_exit_2_and_never_0() {
    let (d, p) = brief();
    let bad = write(
        d.path(),
        "bad.yaml",
        "rules:\n  - action: x\n    efect: deny\n",
    );
    let bad = bad.to_str().unwrap();
    let cases: Vec<(Vec<&str>, Option<&str>, &str)> = vec![
        (
            vec!["check", "-p", bad, "-a", "x"],
            None,
            "bad.yaml:3:5: unknown field `efect`",
        ),
        (
            vec!["check", "-p", "/nonexistent/p.yaml", "-a", "x"],
            None,
            "cannot read policy",
        ),
        (vec!["check", "-a", "x"], None, "--policy"),
        (
            vec!["check", "-p", &p],
            None,
            "give the action with --action",
        ),
        (
            vec!["check", "-p", &p, "-a", "x", "--arg", "novalue"],
            None,
            "expected KEY=VALUE",
        ),
        (
            vec!["check", "-p", &p, "--input", "-"],
            Some("{not json"),
            "invalid action",
        ),
        (
            vec!["check", "-p", &p, "--input", "-"],
            Some(r#"{"action":"x","argz":{}}"#),
            "unknown field `argz`",
        ),
        (
            vec!["check", "-p", &p, "--input", "-"],
            Some(r#"{"action":""}"#),
            "non-empty",
        ),
        (
            vec!["check", "-p", &p, "--input", "/nonexistent.json"],
            None,
            "cannot read",
        ),
        (
            vec!["check", "-p", &p, "-a", "x", "--frobnicate"],
            None,
            "unexpected argument",
        ),
        (vec!["frobnicate"], None, "unrecognized subcommand"),
    ];
    for (args, stdin, needle) in cases {
        let out = warden(&args, stdin);
        assert_eq!(out.code, 2, "{args:?}: {}{}", out.stdout, out.stderr);
        assert!(
            out.stderr.contains(needle),
            "{args:?}: want {needle:?} in {}",
            out.stderr
        );
        assert!(
            out.stdout.is_empty(),
            "{args:?}: nothing decided, nothing printed: {}",
            out.stdout
        );
    }
}

#[test]
fn validate_reports_every_problem_with_positions() {
    let dir = tempfile::tempdir().unwrap();
    let ok = write(dir.path(), "ok.yaml", &example_text("brief.yaml"));
    let out = warden(&["policy", "validate", ok.to_str().unwrap()], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .contains("ok: policy `ok`: 2 rules, default deny")
    );

    let bad = write(
        dir.path(),
        "bad.yaml",
        "rules:\n  - action: \"[x\"\n    allow: maybe\n    when: \"args.n >\"\n",
    );
    let out = warden(&["policy", "validate", bad.to_str().unwrap()], None);
    assert_eq!(out.code, 2);
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(lines.len(), 3, "{}", out.stderr);
    assert!(
        lines[0].contains("bad.yaml:2:13: `action`: invalid glob"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains("bad.yaml:3:12: `allow` must be true or false"),
        "{}",
        lines[1]
    );
    assert!(lines[2].contains("bad.yaml:4:"), "{}", lines[2]);
    assert!(out.stderr.contains("3 problems found"));

    let out = warden(
        &["policy", "validate", "--json", bad.to_str().unwrap()],
        None,
    );
    assert_eq!(out.code, 2);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["problems"][1]["line"], 3);
    assert_eq!(v["problems"][1]["column"], 12);
}

#[test]
fn explain_shows_every_rule_and_the_decider() {
    let (_d, p) = brief();
    let out = warden(&["policy", "explain", "-p", &p, "-a", "execute_code"], None);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout.contains("=> brief/rules[0] [deny] matched"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("-  brief/rules[1] [allow] not matched: action `execute_code` is not one this rule names"), "{}", out.stdout);

    let out = warden(
        &[
            "policy",
            "explain",
            "-p",
            &p,
            "-a",
            "http_request",
            "--arg",
            "url=https://api.github.com.evil.com/",
            "--arg",
            "method=GET",
            "--json",
        ],
        None,
    );
    assert_eq!(out.code, 1);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    // The runtime steps come first (the kill switch is checked before any policy), then the
    // policy's rules; rules are found by name, not position.
    assert_eq!(v["rules"][0]["rule"], "kill-switch", "{v}");
    let rule = |id: &str| {
        v["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["policy"] == "brief" && r["rule"] == id)
            .unwrap_or_else(|| panic!("no brief/{id} in {v}"))
            .clone()
    };
    assert_eq!(
        rule("rules[1]")["detail"],
        "host `api.github.com.evil.com` is not in `domains`"
    );
    assert_eq!(v["decision"]["verdict"], "deny");
}

#[test]
fn policy_test_passes_fails_with_a_diff_and_rejects_bad_files() {
    let (d, p) = brief();
    let good = write(
        d.path(),
        "good.test.yaml",
        &format!(
            "policies: [{p}]\ncases:\n  - name: no code\n    action: {{action: execute_code}}\n    expect: deny\n    rule: rules[0]\n"
        ),
    );
    let out = warden(&["policy", "test", good.to_str().unwrap()], None);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("1 passed, 0 failed"));

    let failing = write(
        d.path(),
        "fail.test.yaml",
        &format!(
            "policies: {p}\ncases:\n  - name: post allowed?\n    action: {{action: http_request, args: {{url: 'https://api.github.com/', method: POST}}}}\n    expect: allow\n"
        ),
    );
    let out = warden(&["policy", "test", failing.to_str().unwrap()], None);
    assert_eq!(out.code, 1);
    assert!(out.stdout.contains("FAIL post allowed?"), "{}", out.stdout);
    assert!(out.stdout.contains("- expected: allow"));
    assert!(out.stdout.contains("+ actual:   deny"));
    assert!(out.stdout.contains("0 passed, 1 failed"));

    let broken = write(
        d.path(),
        "broken.test.yaml",
        "policies: brief.yaml\ncases:\n  - action: {action: x}\n    expcet: deny\n",
    );
    let out = warden(&["policy", "test", broken.to_str().unwrap()], None);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("broken.test.yaml:4:5: unknown field `expcet`"),
        "{}",
        out.stderr
    );
}

#[test]
fn bench_reports_percentiles_and_throughput() {
    let (_d, p) = brief();
    let out = warden(
        &[
            "bench",
            "-p",
            &p,
            "--iterations",
            "20000",
            "--threads",
            "2",
            "--json",
        ],
        None,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["decisions"], 20000);
    assert_eq!(v["threads"], 2);
    let (p50, p99, max) = (
        v["p50_ns"].as_u64().unwrap(),
        v["p99_ns"].as_u64().unwrap(),
        v["max_ns"].as_u64().unwrap(),
    );
    assert!(p50 > 0 && p50 <= p99 && p99 <= max, "{v}");
    assert!(v["decisions_per_sec"].as_f64().unwrap() > 0.0);
    assert_eq!(warden(&["bench", "-p", &p, "--threads", "0"], None).code, 2);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Random bytes as a policy file: exit 2 with an error, never a panic, never an allow.
    #[test]
    fn random_policy_bytes_exit_2(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("random.yaml");
        std::fs::write(&p, &bytes).unwrap();
        let out = warden(&["check", "-p", p.to_str().unwrap(), "-a", "anything"], None);
        prop_assert_eq!(out.code, 2, "{}", out.stderr);
        prop_assert!(out.stderr.contains("error: "));
        prop_assert!(!out.stderr.contains("panicked"));
    }
}

#[test]
fn check_with_db_records_signs_and_refuses_foreign_files() {
    let (d, p) = brief();
    let db = d.path().join("warden.db");
    let db_s = db.to_str().unwrap();
    let out = warden(
        &[
            "check",
            "-p",
            &p,
            "-a",
            "execute_code",
            "--db",
            db_s,
            "--json",
        ],
        None,
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["audit_seq"], 1);
    assert!(d.path().join("warden.db.key").exists());
    let pubkey = d.path().join("warden.db.key.pub");
    let verify = warden(
        &["audit", "verify", db_s, "--key", pubkey.to_str().unwrap()],
        None,
    );
    assert_eq!(verify.code, 0, "{}{}", verify.stdout, verify.stderr);
    assert!(verify.stdout.contains("1 valid"), "{}", verify.stdout);

    // A file that is not a Warden log: exit 2, the file unchanged, no key left behind.
    let foreign = write(d.path(), "notes.db", "just some text, not SQLite");
    let before = std::fs::read(&foreign).unwrap();
    let out = warden(
        &[
            "check",
            "-p",
            &p,
            "-a",
            "execute_code",
            "--db",
            foreign.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("notes.db"), "{}", out.stderr);
    assert!(out.stdout.is_empty());
    assert_eq!(std::fs::read(&foreign).unwrap(), before);
    assert!(!d.path().join("notes.db.key").exists());
}

/// `warden check -p broken.yaml -a x 2>&1 | head -1` exited 101 (a panic writing to a closed
/// pipe). Whatever the reader does, the exit code is the documented one.
#[test]
fn closed_pipes_never_turn_into_a_panic() {
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let broken = write(
        dir.path(),
        "broken.yaml",
        "rules:\n  - action: x\n    efect: deny\n    bogus: 1\n",
    );
    let brief = example("brief.yaml");
    for (args, code) in [
        (vec!["check", "-p", broken.to_str().unwrap(), "-a", "x"], 2),
        (vec!["check", "-p", &brief, "-a", "execute_code"], 1),
        (vec!["policy", "validate", broken.to_str().unwrap()], 2),
        (
            vec!["policy", "explain", "-p", &brief, "-a", "execute_code"],
            1,
        ),
        (vec!["--help"], 0),
    ] {
        // Both ends closed before the process writes a byte: every write fails (EPIPE).
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let status = Command::new(env!("CARGO_BIN_EXE_warden"))
            .args(&args)
            .stdin(Stdio::null())
            .stdout(writer.try_clone().unwrap())
            .stderr(writer)
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(code), "{args:?}");
    }
}

/// `--json` on failure prints a JSON error object (with `verdict: deny` where the answer is
/// a decision), not nothing.
#[test]
fn json_errors_are_json() {
    let dir = tempfile::tempdir().unwrap();
    let broken = write(
        dir.path(),
        "broken.yaml",
        "rules:\n  - action: x\n    efect: deny\n",
    );
    let out = warden(
        &["check", "-p", broken.to_str().unwrap(), "-a", "x", "--json"],
        None,
    );
    assert_eq!(out.code, 2);
    let v = out.json();
    assert_eq!(v["verdict"], "deny");
    assert_eq!(v["problems"][0]["line"], 3, "{v}");
    assert!(
        v["problems"][0]["file"]
            .as_str()
            .unwrap()
            .ends_with("broken.yaml")
    );
    // A flag clap itself refuses: still JSON when JSON was asked for.
    let out = warden(
        &[
            "check",
            "-p",
            &example("brief.yaml"),
            "-a",
            "x",
            "--json",
            "--bogus",
        ],
        None,
    );
    assert_eq!(out.code, 2);
    assert!(
        out.json()["error"].as_str().unwrap().contains("--bogus"),
        "{out:?}"
    );
    assert_eq!(out.json()["verdict"], "deny");
    let out = warden(&["check", "-p", &example("brief.yaml"), "--json"], None);
    assert_eq!(out.code, 2);
    assert!(out.json()["error"].as_str().unwrap().contains("--action"));
    let out = warden(
        &[
            "bench",
            "-p",
            &example("brief.yaml"),
            "--threads",
            "0",
            "--json",
        ],
        None,
    );
    assert_eq!(out.code, 2);
    assert!(out.json()["error"].as_str().unwrap().contains("at least 1"));
    assert!(
        out.json().get("verdict").is_none(),
        "a benchmark is not a decision"
    );
}

/// Reasons and names are shown with invisible characters escaped, so `execute_code\0`
/// never reads as `execute_code`.
#[test]
fn hidden_characters_are_shown_escaped() {
    // An action name with a hidden character is not an action (it would print like
    // `execute_code` and slip past rules and kill switches written for that name): exit 2,
    // naming the character, printed escaped.
    for name in [
        r"execute_code\u0000",
        r"execute_code\u200b",
        r" execute_code",
    ] {
        let out = warden(
            &["check", "-p", &example("brief.yaml"), "--input", "-"],
            Some(&format!(r#"{{"action":"{name}"}}"#)),
        );
        assert_eq!(out.code, 2, "{out:?}");
        assert!(out.stderr.contains("invalid action"), "{out:?}");
        assert!(!out.stderr.contains('\0') && !out.stderr.contains('\u{200b}'));
    }
    // Hidden characters elsewhere are decided as sent and printed escaped.
    let out = warden(
        &[
            "check",
            "-p",
            &example("brief.yaml"),
            "--input",
            "-",
            "--json",
        ],
        Some(r#"{"action":"execute_code","agent":"bot\u202e","args":{"command":"ls\u0000"}}"#),
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert!(!out.stdout.contains('\0') && !out.stdout.contains('\u{202e}'));
}
