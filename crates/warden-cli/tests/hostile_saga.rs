//! `warden saga` against the agent that writes the saga file and a local process that writes
//! the Warden database: what the policy sees is what runs, a killed agent gets nothing new
//! through the compensation path, and nobody's text reaches a terminal raw.

use std::path::Path;

use crate::util::{warden_in, write};

fn run(dir: &Path, args: &[&str]) -> crate::util::Out {
    warden_in(Some(dir), args, None, &[])
}

fn saga_run(dir: &Path, policy: &str, file: &str) -> crate::util::Out {
    run(
        dir,
        &["saga", "run", "-p", policy, "--db", "w.db", "--json", file],
    )
}

/// The red team's open finding: the saga file names the action its command is judged as, so
/// an agent can have `sh -c …` judged as `web.search` (or anything the policy allows) while
/// `warden exec` of the same command is judged as `shell.exec` and denied. The fix belongs to
/// the lead (see the report): a command step must be judged as the command it runs.
#[test]
fn a_step_labelled_as_a_harmless_action_is_still_judged_as_the_command_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "policy.yaml",
        "rules:\n  - action: execute_code\n    allow: false\n  - action: shell.exec\n    allow: false\n  - action: web.search\n    allow: true\n",
    );
    // `warden exec` of the command is refused…
    let exec = run(
        d,
        &["exec", "-p", "policy.yaml", "--", "sh", "-c", "touch pwned"],
    );
    assert_ne!(exec.code, 0, "{exec:?}");
    assert!(!d.join("pwned").exists());
    // …and so must the same command be, whatever the saga file calls it.
    write(
        d,
        "saga.yaml",
        "name: innocent\nsteps:\n  - id: search\n    action: web.search\n    run: [sh, -c, \"touch pwned\"]\n",
    );
    let out = saga_run(d, "policy.yaml", "saga.yaml");
    assert!(!d.join("pwned").exists(), "the command ran: {out:?}");
    assert_ne!(out.code, 0, "{out:?}");
}

#[test]
fn args_in_the_file_cannot_replace_the_command_the_policy_sees() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "policy.yaml",
        "rules:\n  - effect: deny\n    action: execute_code\n    when: \"args.command.matches('touch') || args.argv.exists(w, w.matches('touch'))\"\n  - effect: allow\n    action: \"*\"\n",
    );
    write(
        d,
        "saga.yaml",
        "name: x\nsteps:\n  - id: a\n    run: [sh, -c, \"touch pwned\"]\n    args: {command: ls, argv: [ls]}\n",
    );
    let out = saga_run(d, "policy.yaml", "saga.yaml");
    assert_eq!(out.code, 1, "{out:?}");
    assert!(!d.join("pwned").exists(), "{out:?}");
    let json = out.json();
    assert_eq!(json[0]["steps"][0]["status"], "failed");
    assert!(
        json[0]["steps"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("rules[0]"),
        "{json}"
    );
}

#[test]
fn a_saga_started_after_its_agent_was_killed_runs_nothing_not_even_an_undo() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "all.yaml",
        "rules:\n  - action: \"*\"\n    allow: true\n",
    );
    let kill = run(
        d,
        &[
            "kill", "--db", "w.db", "--agent", "bot", "--reason", "incident",
        ],
    );
    assert_eq!(kill.code, 0, "{kill:?}");
    write(
        d,
        "saga.yaml",
        "name: x\nagent: bot\nsteps:\n  - id: a\n    run: [sh, -c, \"touch ran-a\"]\n    compensate: [sh, -c, \"touch undo-a\"]\n    retries: 2\n",
    );
    let out = saga_run(d, "all.yaml", "saga.yaml");
    assert_eq!(out.code, 1, "{out:?}");
    assert!(!d.join("ran-a").exists() && !d.join("undo-a").exists());
    // Resuming it (as the agent could) runs nothing either: it is finished.
    let id = out.json()[0]["id"].as_str().unwrap().to_string();
    let resume = run(
        d,
        &["saga", "resume", "-p", "all.yaml", "--db", "w.db", &id],
    );
    assert_eq!(resume.code, 2, "{resume:?}");
    assert!(!d.join("undo-a").exists());
}

#[test]
fn text_a_hostile_process_wrote_into_the_journal_is_shown_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "all.yaml",
        "rules:\n  - action: \"*\"\n    allow: true\n",
    );
    write(
        d,
        "saga.yaml",
        "name: x\nsteps:\n  - id: a\n    run: [\"true\"]\n",
    );
    let out = saga_run(d, "all.yaml", "saga.yaml");
    assert_eq!(out.code, 0, "{out:?}");
    let id = out.json()[0]["id"].as_str().unwrap().to_string();
    let esc = "\u{1b}]0;owned\u{7}\u{1b}[2J";
    let conn = rusqlite::Connection::open(d.join("w.db")).unwrap();
    conn.execute(
        "UPDATE saga_events SET event = ?1, detail = ?1, step = ?1",
        [esc],
    )
    .unwrap();
    conn.execute("UPDATE sagas SET name = ?1, reason = ?1, agent = ?1", [esc])
        .unwrap();
    conn.execute("UPDATE saga_steps SET detail = ?1", [esc])
        .unwrap();
    // The id too: every table that names the saga.
    let evil = format!("{id}{esc}");
    for table in [
        "sagas SET id",
        "saga_steps SET saga",
        "saga_events SET saga",
    ] {
        conn.execute(&format!("UPDATE {table} = ?1"), [&evil])
            .unwrap();
    }
    drop(conn);
    for args in [
        &["saga", "show", "--db", "w.db"][..],
        &["saga", "list", "--db", "w.db"][..],
    ] {
        let out = run(d, args);
        assert_eq!(out.code, 0, "{out:?}");
        assert!(
            !out.stdout.contains('\u{1b}') && !out.stderr.contains('\u{1b}'),
            "{args:?} printed an escape sequence raw: {:?}",
            out.stdout
        );
        assert!(out.stdout.contains("\\u{1b}"), "{out:?}");
    }
}

/// The red team's open finding: an escalated saga can be resumed any number of times, by
/// anyone, after its agent was killed, and each resume runs the agent's own compensation
/// again past the kill switch. An agent that declares an undo which always fails keeps a
/// command it can have run on demand after the kill. (The automatic undos of a saga the kill
/// cut off are meant to pass; a resume after the kill is not what the kill switch allows.)
#[test]
fn a_killed_agents_escalated_saga_does_not_rerun_its_undo_past_the_kill_on_demand() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "all.yaml",
        "rules:\n  - action: \"*\"\n    allow: true\n",
    );
    write(
        d,
        "saga.yaml",
        "name: x\nagent: bot\nbackoff: 1ms\nsteps:\n  - id: a\n    run: [\"true\"]\n    compensate: [sh, -c, \"echo payload >> log; exit 1\"]\n    compensate_retries: 0\n  - id: b\n    run: [\"false\"]\n",
    );
    let out = saga_run(d, "all.yaml", "saga.yaml");
    assert_eq!(out.code, 2, "escalated: {out:?}");
    let id = out.json()[0]["id"].as_str().unwrap().to_string();
    let kill = run(
        d,
        &[
            "kill", "--db", "w.db", "--agent", "bot", "--reason", "incident",
        ],
    );
    assert_eq!(kill.code, 0, "{kill:?}");
    let payloads = || {
        std::fs::read_to_string(d.join("log"))
            .unwrap_or_default()
            .lines()
            .count()
    };
    assert_eq!(payloads(), 1);
    for _ in 0..3 {
        run(
            d,
            &["saga", "resume", "-p", "all.yaml", "--db", "w.db", &id],
        );
    }
    assert_eq!(
        payloads(),
        1,
        "the killed agent's command ran again after the kill"
    );
}

/// The red team's open finding: `saga resume` (and `warden serve` at its start) runs the
/// commands a journal row names, in the directory it names, as whoever resumes. A process
/// that can write the database but not run commands as the resumer's user (an agent with
/// write access to a shared Warden database, serve running as another user) gets its
/// commands run. Nothing ties a journal row to a saga Warden started (its audited
/// `warden.saga.start` record, whose chain is signed).
#[test]
fn a_saga_forged_in_the_journal_is_not_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "all.yaml",
        "rules:\n  - action: \"*\"\n    allow: true\n",
    );
    write(
        d,
        "saga.yaml",
        "name: x\nsteps:\n  - id: a\n    run: [\"true\"]\n",
    );
    // A real saga first, so the tables exist (and as the template of the forgery).
    let out = saga_run(d, "all.yaml", "saga.yaml");
    assert_eq!(out.code, 0, "{out:?}");
    let conn = rusqlite::Connection::open(d.join("w.db")).unwrap();
    let spec = r#"{"name":"forged","backoff_ms":1,"steps":[{"id":"a","action":"execute_code","args":{},"run":["true"],"compensate":["sh","-c","touch pwned"],"timeout_ms":10000,"retries":0,"compensate_retries":0}]}"#;
    conn.execute_batch(&format!(
        "INSERT INTO sagas (id, name, spec, cwd, status, owner, created_ns, updated_ns)
           VALUES ('f0f0f0f0f0f0f0f0', 'forged', '{spec}', '{}', 'running', 'gone/1/1', 1, 1);
         INSERT INTO saga_steps (saga, idx, id, status, updated_ns)
           VALUES ('f0f0f0f0f0f0f0f0', 0, 'a', 'done', 1);",
        d.display()
    ))
    .unwrap();
    drop(conn);
    let resume = run(d, &["saga", "resume", "-p", "all.yaml", "--db", "w.db"]);
    assert!(
        !d.join("pwned").exists(),
        "a forged saga's undo ran: {resume:?}"
    );
    assert_ne!(resume.code, 0, "{resume:?}");
}
