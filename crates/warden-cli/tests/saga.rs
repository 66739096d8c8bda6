//! `warden saga`: real commands, a real database, a runner killed with SIGKILL, the kill switch
//! set from another process. Each of the reference toolkit's saga failures is a test here:
//! no automatic compensation, "compensated" while a step is still committed, a step cut off
//! mid-way left out of compensation, a crash that loses the saga.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::util::{Server, eventually, warden, warden_in, write};

const ALLOW_ALL: &str = "rules:\n  - action: \"*\"\n    allow: true\n";

/// A step that appends `run-ID` to `log`, undone by one that appends `undo-ID KEY`.
fn step(id: &str) -> String {
    format!(
        "  - id: {id}\n    run: [sh, -c, \"echo run-{id} >> log\"]\n    compensate: [sh, -c, \"echo undo-{id} $WARDEN_IDEMPOTENCY_KEY >> log\"]\n"
    )
}

fn log(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The log's lines without the idempotency keys.
fn events(dir: &Path) -> Vec<String> {
    log(dir)
        .iter()
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect()
}

fn run(dir: &Path, args: &[&str]) -> crate::util::Out {
    warden_in(Some(dir), args, None, &[])
}

#[test]
fn a_failing_last_step_undoes_the_two_before_it_in_reverse_and_says_so_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "allow.yaml", ALLOW_ALL);
    let saga = format!(
        "name: deploy\nsteps:\n{}{}  - id: release\n    run: [sh, -c, \"exit 3\"]\n    compensate: [sh, -c, \"echo never >> log\"]\n",
        step("build"),
        step("upload")
    );
    write(d, "saga.yaml", &saga);
    let out = run(
        d,
        &[
            "saga",
            "run",
            "-p",
            "allow.yaml",
            "--db",
            "w.db",
            "saga.yaml",
        ],
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stdout.contains("compensated — step `release` failed"),
        "{out:?}"
    );
    assert_eq!(
        events(d),
        ["run-build", "run-upload", "undo-upload", "undo-build"]
    );
    // `saga show` (the newest saga) and its history, in order.
    let show = run(d, &["saga", "show", "--db", "w.db"]);
    assert_eq!(show.code, 0, "{show:?}");
    let history: Vec<&str> = show
        .stdout
        .lines()
        .filter(|l| l.contains("compensation.done"))
        .collect();
    assert_eq!(history.len(), 2, "{}", show.stdout);
    assert!(history[0].contains("upload") && history[1].contains("build"));
    let json = run(d, &["saga", "show", "--db", "w.db", "--json"]).json();
    assert_eq!(json["status"], "compensated");
    let steps: Vec<(&str, &str)> = json["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["id"].as_str().unwrap(), s["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        steps,
        [
            ("build", "compensated"),
            ("upload", "compensated"),
            ("release", "failed")
        ]
    );
    // The audit log: every step and compensation judged, the compensations in reverse order.
    let q = run(d, &["audit", "query", "w.db", "--json"]);
    let rows: Vec<String> = q
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r["action"].as_str().unwrap(),
                r["resource"].as_str().unwrap_or("")
            )
        })
        .collect();
    let judged: Vec<&String> = rows
        .iter()
        .filter(|r| r.starts_with("execute_code"))
        .collect();
    assert_eq!(
        judged,
        [
            "execute_code deploy/build:run",
            "execute_code deploy/upload:run",
            "execute_code deploy/release:run",
            "execute_code deploy/upload:compensate",
            "execute_code deploy/build:compensate",
        ],
        "{rows:?}"
    );
    assert!(rows.iter().any(|r| r.starts_with("warden.saga.end")));
    // The log still verifies.
    assert_eq!(run(d, &["audit", "verify", "w.db"]).code, 0);
}

#[test]
fn a_saga_that_completes_exits_zero_and_undoes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "allow.yaml", ALLOW_ALL);
    write(
        d,
        "saga.yaml",
        &format!("name: ok\nsteps:\n{}{}", step("a"), step("b")),
    );
    let out = run(
        d,
        &[
            "saga",
            "run",
            "-p",
            "allow.yaml",
            "--db",
            "w.db",
            "saga.yaml",
            "--json",
        ],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()[0]["status"], "completed");
    assert_eq!(events(d), ["run-a", "run-b"]);
}

/// Start `warden saga run` of seven steps whose fourth hangs; SIGKILL the runner once the
/// fourth has started. Returns the pid of the step's own process (still running).
fn crash_during_step_four(d: &Path, compensate_four: bool) -> u32 {
    write(d, "allow.yaml", ALLOW_ALL);
    let four = if compensate_four {
        "  - id: s4\n    run: [sh, -c, \"echo run-s4 >> log; echo $$ > pid4; exec sleep 60\"]\n    compensate: [sh, -c, \"echo undo-s4 $WARDEN_IDEMPOTENCY_KEY >> log\"]\n"
    } else {
        "  - id: s4\n    run: [sh, -c, \"echo run-s4 >> log; echo $$ > pid4; exec sleep 60\"]\n"
    };
    let saga = format!(
        "name: seven\nsteps:\n{}{}{}{four}{}{}{}",
        step("s1"),
        step("s2"),
        step("s3"),
        step("s5"),
        step("s6"),
        step("s7")
    );
    write(d, "saga.yaml", &saga);
    let mut runner = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args([
            "saga",
            "run",
            "-p",
            "allow.yaml",
            "--db",
            "w.db",
            "saga.yaml",
        ])
        .current_dir(d)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    eventually("step four started", || {
        std::fs::read_to_string(d.join("pid4")).is_ok_and(|p| p.trim().parse::<u32>().is_ok())
    });
    runner.kill().unwrap();
    runner.wait().unwrap();
    std::fs::read_to_string(d.join("pid4"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn end(pid: u32) {
    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
}

#[test]
fn after_sigkill_during_step_four_resume_undoes_three_two_one_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let step_four = crash_during_step_four(d, false);
    end(step_four);
    assert_eq!(events(d), ["run-s1", "run-s2", "run-s3", "run-s4"]);
    // The journal still has it: running, with nobody alive behind it.
    let list = run(d, &["saga", "list", "--db", "w.db", "--json"]).json();
    assert_eq!(list[0]["status"], "running");
    assert_eq!(list[0]["owned"], false);
    let out = run(d, &["saga", "resume", "-p", "allow.yaml", "--db", "w.db"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(
        events(d),
        [
            "run-s1", "run-s2", "run-s3", "run-s4", "undo-s3", "undo-s2", "undo-s1"
        ]
    );
    // Each compensation was handed its own key.
    let keys: Vec<String> = log(d)[4..]
        .iter()
        .map(|l| l.split(' ').nth(1).unwrap().to_string())
        .collect();
    assert!(keys[0].ends_with(":s3:compensate") && keys[2].ends_with(":s1:compensate"));
    let show = run(d, &["saga", "show", "--db", "w.db", "--json"]).json();
    assert_eq!(show["status"], "compensated");
    assert_eq!(show["steps"][3]["status"], "interrupted");
    assert_eq!(show["steps"][4]["status"], "pending");
    // Resuming again finds nothing and runs nothing.
    let again = run(d, &["saga", "resume", "-p", "allow.yaml", "--db", "w.db"]);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(again.stdout.contains("no saga to resume"));
    assert_eq!(log(d).len(), 7);
}

#[test]
fn the_step_cut_off_by_the_crash_is_undone_too_when_it_can_be() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let step_four = crash_during_step_four(d, true);
    end(step_four);
    let out = run(d, &["saga", "resume", "-p", "allow.yaml", "--db", "w.db"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(events(d)[4..], ["undo-s4", "undo-s3", "undo-s2", "undo-s1"]);
}

#[test]
fn warden_serve_finishes_an_orphaned_saga_when_it_starts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let step_four = crash_during_step_four(d, false);
    end(step_four);
    let allow = d.join("allow.yaml");
    let db = d.join("w.db");
    let server = Server::start(&[
        "--policy",
        allow.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
    ]);
    eventually("the server undid the saga", || log(d).len() == 7);
    assert_eq!(events(d)[4..], ["undo-s3", "undo-s2", "undo-s1"]);
    eventually("the journal says so", || {
        run(d, &["saga", "list", "--db", "w.db", "--json"]).json()[0]["status"] == "compensated"
    });
    drop(server);
}

#[test]
fn a_step_denied_by_policy_never_runs_and_triggers_compensation() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "policy.yaml",
        "rules:\n  - action: \"*\"\n    allow: true\n  - action: deploy.push\n    allow: false\n    reason: pushes need a release manager\n",
    );
    let saga = format!(
        "name: push\nsteps:\n{}  - id: push\n    action: deploy.push\n    run: [touch, pushed]\n",
        step("build")
    );
    write(d, "saga.yaml", &saga);
    let out = run(
        d,
        &[
            "saga",
            "run",
            "-p",
            "policy.yaml",
            "--db",
            "w.db",
            "saga.yaml",
        ],
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.contains("release manager"), "{out:?}");
    assert!(!d.join("pushed").exists(), "a denied step never starts");
    assert_eq!(events(d), ["run-build", "undo-build"]);
}

#[test]
fn a_kill_switch_set_mid_saga_stops_the_running_step_and_everything_is_undone() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "allow.yaml", ALLOW_ALL);
    let saga = format!(
        "name: k\nagent: a1\nsteps:\n{}  - id: slow\n    run: [sh, -c, \"echo run-slow >> log; touch started; exec sleep 60\"]\n    compensate: [sh, -c, \"echo undo-slow >> log\"]\n{}",
        step("first"),
        step("never")
    );
    write(d, "saga.yaml", &saga);
    let runner = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args([
            "saga",
            "run",
            "-p",
            "allow.yaml",
            "--db",
            "w.db",
            "--kill-grace",
            "1",
            "saga.yaml",
        ])
        .current_dir(d)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    eventually("the slow step started", || d.join("started").exists());
    let kill = run(
        d,
        &[
            "kill", "--db", "w.db", "--agent", "a1", "--reason", "incident",
        ],
    );
    assert_eq!(kill.code, 0, "{kill:?}");
    let out = runner.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    // The step cut off by the kill is undone first (it may have done part of its work), then
    // the one before it — while the agent stays killed.
    assert_eq!(
        events(d),
        ["run-first", "run-slow", "undo-slow", "undo-first"]
    );
    let show = run(d, &["saga", "show", "--db", "w.db", "--json"]).json();
    assert_eq!(show["steps"][1]["status"], "compensated");
    assert!(
        show["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event"] == "step.stopped"
                && e["detail"].as_str().unwrap().contains("kill switch")),
        "{show}"
    );
    let check = run(
        d,
        &[
            "check",
            "-p",
            "allow.yaml",
            "--db",
            "w.db",
            "--agent",
            "a1",
            "-a",
            "file.read",
        ],
    );
    assert_eq!(check.code, 1, "still killed: {check:?}");
}

#[test]
fn a_compensation_that_keeps_failing_escalates_and_a_later_retry_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "allow.yaml", ALLOW_ALL);
    let saga = format!(
        "name: esc\nbackoff: 10ms\nsteps:\n{}  - id: db\n    run: [sh, -c, \"echo run-db >> log\"]\n    compensate: [sh, -c, \"test -e fixed && echo undo-db >> log\"]\n    compensate_retries: 1\n  - id: bad\n    run: [\"false\"]\n",
        step("first")
    );
    write(d, "saga.yaml", &saga);
    let out = run(
        d,
        &[
            "saga",
            "run",
            "-p",
            "allow.yaml",
            "--db",
            "w.db",
            "saga.yaml",
        ],
    );
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stdout.contains("escalated"), "{out:?}");
    assert_eq!(
        events(d),
        ["run-first", "run-db"],
        "the first step waits for the second's undo"
    );
    let list = run(d, &["saga", "list", "--db", "w.db", "--json"]).json();
    assert_eq!(list[0]["status"], "escalated");
    let id = list[0]["id"].as_str().unwrap().to_string();
    // Not an orphan: a plain resume leaves it for a person.
    let plain = run(d, &["saga", "resume", "-p", "allow.yaml", "--db", "w.db"]);
    assert_eq!(plain.code, 0, "{plain:?}");
    assert_eq!(log(d).len(), 2);
    // Fixed, and retried by name.
    write(d, "fixed", "");
    let retry = run(
        d,
        &["saga", "resume", "-p", "allow.yaml", "--db", "w.db", &id],
    );
    assert_eq!(retry.code, 1, "{retry:?}");
    assert_eq!(events(d), ["run-first", "run-db", "undo-db", "undo-first"]);
    let escalations = run(
        d,
        &[
            "audit",
            "query",
            "w.db",
            "--action",
            "warden.saga.escalate",
            "--json",
        ],
    );
    assert_eq!(
        escalations.json().as_array().unwrap().len(),
        1,
        "{escalations:?}"
    );
}

#[test]
fn a_bad_saga_file_is_refused_with_its_place_and_nothing_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "allow.yaml", ALLOW_ALL);
    write(
        d,
        "saga.yaml",
        "name: bad\nsteps:\n  - id: a\n    run: make build\n  - id: b\n    run: [ls]\n    retrys: 2\n",
    );
    let out = run(
        d,
        &[
            "saga",
            "run",
            "-p",
            "allow.yaml",
            "--db",
            "w.db",
            "saga.yaml",
        ],
    );
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("saga.yaml:4:10"), "{out:?}");
    assert!(
        out.stderr.contains("saga.yaml:7:5") && out.stderr.contains("retries"),
        "{out:?}"
    );
    assert!(!d.join("w.db").exists(), "nothing durable changed");
    // Without --db there is no journal, so no saga.
    write(d, "ok.yaml", &format!("name: ok\nsteps:\n{}", step("a")));
    let out = run(d, &["saga", "run", "-p", "allow.yaml", "ok.yaml"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("--db"), "{out:?}");
    assert!(log(d).is_empty());
    // A saga's records are durable: a buffered log could lose a step's record to a crash.
    let out = run(
        d,
        &[
            "saga",
            "run",
            "-p",
            "allow.yaml",
            "--db",
            "w.db",
            "--audit-mode",
            "buffered",
            "ok.yaml",
        ],
    );
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("durably"), "{out:?}");
    assert!(log(d).is_empty());
    // Unknown ids are errors, not empty answers.
    let out = warden(
        &[
            "saga",
            "show",
            "--db",
            d.join("w2.db").to_str().unwrap(),
            "nope",
        ],
        None,
    );
    assert_eq!(out.code, 2, "{out:?}");
}
