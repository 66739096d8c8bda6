//! `warden hook claude-code` end to end: recorded Claude Code hook payloads
//! (tests/fixtures/claude-code/) through the real binary with examples/claude-code.yaml.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::util::*;

fn policy() -> String {
    example("claude-code.yaml")
}

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/claude-code")
        .join(format!("{name}.json"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `warden hook claude-code ARGS` with `stdin`.
fn hook(args: &[&str], stdin: &[u8]) -> Output {
    hook_in(None, args, stdin, &[])
}

fn hook_in(dir: Option<&Path>, args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Output {
    let mut all = vec!["hook", "claude-code"];
    all.extend_from_slice(args);
    let out = warden_in(dir, &all, Some(stdin), env);
    use std::os::unix::process::ExitStatusExt;
    Output {
        status: std::process::ExitStatus::from_raw(out.code << 8),
        stdout: out.stdout.into_bytes(),
        stderr: out.stderr.into_bytes(),
    }
}

/// The hook's answer: exactly `{"hookSpecificOutput": {hookEventName, permissionDecision,
/// permissionDecisionReason}}`; returns (decision, reason).
fn answer(out: &Output) -> (String, String) {
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}): {text:?}"));
    let obj = v.as_object().unwrap();
    assert_eq!(obj.len(), 1, "{v}");
    let h = v["hookSpecificOutput"]
        .as_object()
        .expect("hookSpecificOutput");
    assert_eq!(h.len(), 3, "{v}");
    assert_eq!(h["hookEventName"], "PreToolUse");
    (
        h["permissionDecision"].as_str().unwrap().to_string(),
        h["permissionDecisionReason"].as_str().unwrap().to_string(),
    )
}

#[test]
fn recorded_payloads_get_the_expected_answers() {
    let policy = policy();
    for (name, expected, reason_has) in [
        ("bash-ls", "allow", "shell"),
        ("bash-rm-rf", "deny", "this command destroys data"),
        ("write-inside", "allow", "project-writes"),
        ("multiedit-relative", "allow", "project-writes"),
        ("edit-outside", "deny", "outside the project"),
        ("write-traversal", "deny", "holds secrets"),
        ("read", "allow", "reads"),
        ("webfetch-known", "allow", "known-hosts"),
        (
            "webfetch-unknown",
            "deny",
            "default of policy `claude-code` is deny",
        ),
        ("websearch", "allow", "web-search"),
        ("mcp-read", "allow", "mcp-read-tools"),
        ("mcp-write", "ask", "ask the user"),
        ("glob", "allow", "claude-tools"),
    ] {
        let out = hook(&["--policy", &policy], &fixture(name));
        assert_eq!(out.status.code(), Some(0), "{name}: {out:?}");
        let (decision, reason) = answer(&out);
        assert_eq!(decision, expected, "{name}: {reason}");
        assert!(
            reason.contains(reason_has),
            "{name}: {reason:?} lacks {reason_has:?}"
        );
        assert!(reason.starts_with("Warden: "), "{reason}");
    }
}

/// Every way the hook can fail blocks the call: a deny on stdout and exit code 2 (which
/// Claude Code treats as "block" even if it ignored stdout).
fn assert_blocked(out: &Output, stderr_has: &str) {
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let (decision, reason) = answer(out);
    assert_eq!(decision, "deny");
    assert!(
        reason.contains(stderr_has),
        "{reason:?} lacks {stderr_has:?}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(stderr_has),
        "{stderr:?} lacks {stderr_has:?}"
    );
}

#[test]
fn errors_block_the_call() {
    let policy = policy();
    assert_blocked(
        &hook(&["--policy", &policy], b"{not json"),
        "not valid Claude Code hook JSON",
    );
    assert_blocked(
        &hook(&["--policy", &policy], b""),
        "not valid Claude Code hook JSON",
    );
    assert_blocked(
        &hook(
            &["--policy", &policy],
            br#"{"tool_input": {"command": "ls"}}"#,
        ),
        "missing field `tool_name`",
    );
    assert_blocked(
        &hook(
            &["--policy", "/nonexistent/policy.yaml"],
            &fixture("bash-ls"),
        ),
        "cannot read policy",
    );
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.yaml");
    std::fs::write(
        &broken,
        "rules:\n  - action: shell.exec\n    efect: allow\n",
    )
    .unwrap();
    assert_blocked(
        &hook(&["--policy", broken.to_str().unwrap()], &fixture("bash-ls")),
        "broken.yaml:3:5",
    );
    let other_event =
        br#"{"hook_event_name": "UserPromptSubmit", "tool_name": "Bash", "prompt": "hi"}"#;
    assert_blocked(
        &hook(&["--policy", &policy], other_event),
        "UserPromptSubmit",
    );
    let db_dir = dir.path().join("no-such-dir/warden.db");
    assert_blocked(
        &hook(
            &["--policy", &policy, "--db", db_dir.to_str().unwrap()],
            &fixture("bash-ls"),
        ),
        "audit log",
    );
}

#[test]
fn decisions_and_results_are_recorded_with_db() {
    let policy = policy();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("warden.db");
    let db = db.to_str().unwrap();
    let out = hook(&["--policy", &policy, "--db", db], &fixture("bash-rm-rf"));
    assert_eq!(answer(&out).0, "deny");
    // PostToolUse: nothing on stdout, exit 0, the result recorded.
    let out = hook(&["--policy", &policy, "--db", db], &fixture("post-bash"));
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    // --event overrides the payload's event name.
    let out = hook(
        &["--policy", &policy, "--db", db, "--event", "post"],
        &fixture("bash-ls"),
    );
    assert_eq!(
        (out.status.code(), out.stdout.len()),
        (Some(0), 0),
        "{out:?}"
    );

    let records = warden_audit::query(db, &warden_audit::Filter::default()).unwrap();
    assert_eq!(records.len(), 3);
    assert_eq!(records[0].action, "shell.exec");
    assert_eq!(records[0].agent.as_deref(), Some("claude-code"));
    assert_eq!(records[0].verdict, warden_core::Verdict::Deny);
    let args = records[1].args.as_ref().unwrap();
    assert_eq!(args["command"], "cargo test");
    assert_eq!(
        args["tool_response"]["stdout"],
        "test result: ok. 12 passed; 0 failed"
    );
}

#[test]
fn post_without_db_does_nothing() {
    let out = hook(&["--policy", &policy()], &fixture("post-bash"));
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(out.stdout.is_empty() && out.stderr.is_empty(), "{out:?}");
}
