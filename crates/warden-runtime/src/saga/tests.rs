//! The runner against a real journal (a SQLite file), with closures for work and a gate
//! whose answers each test sets.

use std::collections::HashSet;
use std::sync::Mutex;

use super::*;

/// Records what ran; fails, times out or is stopped where told.
#[derive(Default)]
struct Script {
    log: Mutex<Vec<String>>,
    keys: Mutex<Vec<String>>,
    fail: HashSet<String>,
    time_out: HashSet<String>,
    /// Compensations that fail this many times before they work.
    flaky: Mutex<std::collections::HashMap<String, u32>>,
    no_compensation: HashSet<String>,
}

impl Script {
    fn failing(steps: &[&str]) -> Self {
        Script {
            fail: steps.iter().map(|s| s.to_string()).collect(),
            ..Script::default()
        }
    }

    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

impl Work for Script {
    fn perform(&self, ctx: &StepContext<'_>) -> Attempt {
        let name = format!("{}:{}", ctx.phase.as_str(), ctx.step.id);
        self.log.lock().unwrap().push(name.clone());
        self.keys.lock().unwrap().push(ctx.idempotency_key.clone());
        if let Some(left) = self.flaky.lock().unwrap().get_mut(&name)
            && *left > 0
        {
            *left -= 1;
            return Attempt::Failed("flaky".into());
        }
        if self.fail.contains(&name) {
            Attempt::Failed(format!("{name} failed"))
        } else if self.time_out.contains(&name) {
            Attempt::TimedOut(format!("{name} timed out"))
        } else {
            Attempt::Done
        }
    }

    fn has_compensation(&self, step: &StepSpec) -> bool {
        step.compensate.is_some() && !self.no_compensation.contains(&step.id)
    }
}

/// Allows everything but the steps (`run:ID`) and compensations (`compensate:ID`) it lists.
#[derive(Default)]
struct Gatekeeper {
    deny: HashSet<String>,
    /// Everything a step asks is denied (as under a kill switch); compensations are not.
    killed: bool,
    asked: Mutex<Vec<Action>>,
    /// For each question: whether it came through `decide_compensation`.
    routes: Mutex<Vec<bool>>,
}

impl Gatekeeper {
    fn answer(&self, action: &Action, compensation: bool) -> Decision {
        self.asked.lock().unwrap().push(action.clone());
        self.routes.lock().unwrap().push(compensation);
        let phase = action.context["phase"].as_str().unwrap();
        let step = action.context["step"].as_str().unwrap();
        // A step itself never passes the kill switch.
        assert!(!compensation || phase == "compensate");
        if self.deny.contains(&format!("{phase}:{step}")) || (self.killed && !compensation) {
            Decision::deny(format!("denied {phase}:{step}"))
        } else {
            let mut d = Decision::deny("ok");
            d.verdict = Verdict::Allow;
            d
        }
    }
}

impl Gate for Gatekeeper {
    fn decide(&self, action: &Action) -> Decision {
        self.answer(action, false)
    }
    fn decide_compensation(&self, action: &Action) -> Decision {
        self.answer(action, true)
    }
}

fn spec(n: usize) -> SagaSpec {
    let steps = (1..=n)
        .map(|i| {
            StepSpec::new(format!("s{i}"), vec!["true".into()])
                .compensated_by(vec!["undo".into(), format!("s{i}")])
        })
        .collect();
    let mut s = SagaSpec::new("test", steps);
    s.backoff_ms = 1;
    s
}

fn journal() -> (tempfile::TempDir, Journal) {
    let dir = tempfile::tempdir().unwrap();
    let j = Journal::open(&dir.path().join("w.db")).unwrap();
    (dir, j)
}

fn run(j: &Journal, gate: &Gatekeeper, work: &Script, spec: &SagaSpec) -> SagaReport {
    Saga::new(j, gate, work, None, "test")
        .run(spec, Some("bot"), Path::new("/"))
        .unwrap()
}

fn statuses(j: &Journal, id: &str) -> Vec<StepStatus> {
    j.show(id)
        .unwrap()
        .unwrap()
        .steps
        .iter()
        .map(|s| s.status)
        .collect()
}

#[test]
fn all_steps_succeed() {
    let (_d, j) = journal();
    let work = Script::default();
    let r = run(&j, &Gatekeeper::default(), &work, &spec(3));
    assert_eq!(r.status, SagaStatus::Completed);
    assert_eq!(work.log(), ["run:s1", "run:s2", "run:s3"]);
    assert_eq!(statuses(&j, &r.id), [StepStatus::Done; 3]);
    let view = j.show(&r.id).unwrap().unwrap();
    assert!(!view.saga.owned, "a finished saga has no owner");
}

#[test]
fn a_seven_step_saga_failing_at_step_three_compensates_two_then_one() {
    let (_d, j) = journal();
    let work = Script::failing(&["run:s3"]);
    let r = run(&j, &Gatekeeper::default(), &work, &spec(7));
    assert_eq!(r.status, SagaStatus::Compensated);
    assert_eq!(
        work.log(),
        [
            "run:s1",
            "run:s2",
            "run:s3",
            "compensate:s2",
            "compensate:s1"
        ]
    );
    use StepStatus::*;
    assert_eq!(
        statuses(&j, &r.id),
        [
            Compensated,
            Compensated,
            Failed,
            Pending,
            Pending,
            Pending,
            Pending
        ]
    );
    assert!(r.reason.unwrap().contains("step `s3` failed"));
    // The history says the same, in order.
    let events: Vec<String> = j
        .show(&r.id)
        .unwrap()
        .unwrap()
        .events
        .iter()
        .map(|e| format!("{}:{}", e.event, e.step.as_deref().unwrap_or("-")))
        .collect();
    let tail = &events[events.len() - 5..];
    assert_eq!(
        tail,
        [
            "compensation.started:s2",
            "compensation.done:s2",
            "compensation.started:s1",
            "compensation.done:s1",
            "compensated:-"
        ]
    );
}

#[test]
fn a_step_denied_by_policy_never_runs_and_the_earlier_ones_are_undone() {
    let (_d, j) = journal();
    let work = Script::default();
    let gate = Gatekeeper {
        deny: ["run:s2".to_string()].into(),
        ..Gatekeeper::default()
    };
    let r = run(&j, &gate, &work, &spec(3));
    assert_eq!(r.status, SagaStatus::Compensated);
    assert_eq!(work.log(), ["run:s1", "compensate:s1"]);
    assert!(r.reason.unwrap().contains("was not allowed: denied run:s2"));
    // Every compensation was judged, as a compensation, with the saga in its context.
    let asked = gate.asked.lock().unwrap();
    let last = asked.last().unwrap();
    assert_eq!(last.action, "execute_code");
    assert_eq!(last.agent.as_deref(), Some("bot"));
    assert_eq!(last.context["phase"], "compensate");
    assert_eq!(last.args["argv"], json!(["undo", "s1"]));
    assert_eq!(last.args["command"], "undo s1");
}

#[test]
fn under_a_kill_switch_the_next_step_is_refused_and_compensations_still_run() {
    let (_d, j) = journal();
    let work = Script::default();
    let gate = Gatekeeper {
        killed: true,
        ..Gatekeeper::default()
    };
    let r = run(&j, &gate, &work, &spec(2));
    // Nothing ran: the first step was refused, so there is nothing to undo.
    assert_eq!(r.status, SagaStatus::Compensated);
    assert!(work.log().is_empty());
}

#[test]
fn a_step_that_timed_out_may_have_taken_effect_and_is_undone_first() {
    let (_d, j) = journal();
    let work = Script {
        time_out: ["run:s3".to_string()].into(),
        ..Script::default()
    };
    let mut s = spec(4);
    s.steps[2].retries = 1;
    let r = run(&j, &Gatekeeper::default(), &work, &s);
    assert_eq!(r.status, SagaStatus::Compensated);
    assert_eq!(
        work.log(),
        [
            "run:s1",
            "run:s2",
            "run:s3",
            "run:s3",
            "compensate:s3",
            "compensate:s2",
            "compensate:s1"
        ]
    );
    // Every attempt of a phase carries the same idempotency key.
    let keys = work.keys.lock().unwrap();
    assert_eq!(keys[2], keys[3]);
    assert!(keys[2].ends_with(":s3:run"));
    assert!(keys[4].ends_with(":s3:compensate"));
}

#[test]
fn steps_without_compensation_are_passed_over() {
    let (_d, j) = journal();
    let work = Script {
        fail: ["run:s3".to_string()].into(),
        no_compensation: ["s2".to_string()].into(),
        ..Script::default()
    };
    let r = run(&j, &Gatekeeper::default(), &work, &spec(3));
    assert_eq!(r.status, SagaStatus::Compensated);
    assert_eq!(work.log(), ["run:s1", "run:s2", "run:s3", "compensate:s1"]);
}

#[test]
fn a_retried_step_that_then_works_lets_the_saga_finish() {
    let (_d, j) = journal();
    let work = Script::default();
    work.flaky.lock().unwrap().insert("run:s2".into(), 2);
    let mut s = spec(2);
    s.steps[1].retries = 2;
    let r = run(&j, &Gatekeeper::default(), &work, &s);
    assert_eq!(r.status, SagaStatus::Completed);
    assert_eq!(work.log(), ["run:s1", "run:s2", "run:s2", "run:s2"]);
    assert_eq!(j.show(&r.id).unwrap().unwrap().steps[1].attempts, 3);
}

#[test]
fn a_compensation_that_keeps_failing_escalates_and_can_be_retried_later() {
    let (_d, j) = journal();
    let work = Script::failing(&["run:s3"]);
    work.flaky.lock().unwrap().insert("compensate:s2".into(), 6);
    let mut s = spec(3);
    s.steps[1].compensate_retries = 2;
    let r = run(&j, &Gatekeeper::default(), &work, &s);
    assert_eq!(r.status, SagaStatus::Escalated);
    assert!(r.reason.unwrap().contains("failed 3 time(s)"));
    // Step 1 was left alone: its undo may need step 2's first.
    assert_eq!(
        work.log(),
        [
            "run:s1",
            "run:s2",
            "run:s3",
            "compensate:s2",
            "compensate:s2",
            "compensate:s2"
        ]
    );
    use StepStatus::*;
    assert_eq!(statuses(&j, &r.id), [Done, CompensationFailed, Failed]);
    let gate = Gatekeeper::default();
    let saga = Saga::new(&j, &gate, &work, None, "test");
    // Escalated sagas are not orphans: only an explicit retry takes them.
    assert!(saga.resume_orphans().unwrap().reports.is_empty());
    assert!(
        saga.resume(&r.id, false)
            .unwrap()
            .unwrap_err()
            .contains("escalated")
    );
    // Three more failures are left; a retry of three attempts escalates again, the next works.
    let again = saga.resume(&r.id, true).unwrap().unwrap();
    assert_eq!(again.status, SagaStatus::Escalated);
    let again = saga.resume(&r.id, true).unwrap().unwrap();
    assert_eq!(again.status, SagaStatus::Compensated);
    assert_eq!(statuses(&j, &r.id), [Compensated, Compensated, Failed]);
    assert_eq!(j.show(&r.id).unwrap().unwrap().steps[1].compensations, 7);
}

#[test]
fn a_denied_compensation_is_retried_then_escalates() {
    let (_d, j) = journal();
    let work = Script::failing(&["run:s2"]);
    let gate = Gatekeeper {
        deny: ["compensate:s1".to_string()].into(),
        ..Gatekeeper::default()
    };
    let r = run(&j, &gate, &work, &spec(2));
    assert_eq!(r.status, SagaStatus::Escalated);
    assert!(
        r.reason
            .unwrap()
            .contains("not allowed: denied compensate:s1")
    );
    assert_eq!(
        work.log(),
        ["run:s1", "run:s2"],
        "a denied compensation never runs"
    );
}

/// Set saga `id`'s owner, as a process that takes it over (or creates it) would.
fn set_owner(j: &Journal, id: &str, owner: &str) {
    rusqlite::Connection::open(j.path())
        .unwrap()
        .execute(
            "UPDATE sagas SET owner = ?2 WHERE id = ?1",
            rusqlite::params![id, owner],
        )
        .unwrap();
}

/// An owner that is gone (another boot).
const GONE: &str = "another-boot/1/1";

/// A saga left as a runner that died at `running` would leave it.
fn orphan(j: &Journal, spec: &SagaSpec, done: usize, running: bool) -> String {
    let id = new_id().unwrap();
    j.create(&id, spec, Some("bot"), Path::new("/"), owner::me(), 1)
        .unwrap();
    for i in 0..done {
        j.step(
            &id,
            i,
            StepStatus::Running,
            Count::Attempt,
            "step.started",
            None,
        )
        .unwrap();
        j.step(&id, i, StepStatus::Done, Count::None, "step.done", None)
            .unwrap();
    }
    if running {
        j.step(
            &id,
            done,
            StepStatus::Running,
            Count::Attempt,
            "step.started",
            None,
        )
        .unwrap();
    }
    set_owner(j, &id, GONE);
    id
}

#[test]
fn after_a_crash_resume_undoes_what_ran_once_and_only_once() {
    let (_d, j) = journal();
    let mut s = spec(7);
    // Step 4 (running when the runner died) has no compensation: 3, 2, 1 are undone.
    s.steps[3].compensate = None;
    let id = orphan(&j, &s, 3, true);
    assert_eq!(j.orphans().unwrap(), std::slice::from_ref(&id));
    let work = Script::default();
    let gate = Gatekeeper::default();
    let saga = Saga::new(&j, &gate, &work, None, "test");
    let reports = saga.resume_orphans().unwrap().reports;
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].status, SagaStatus::Compensated);
    assert_eq!(
        work.log(),
        ["compensate:s3", "compensate:s2", "compensate:s1"]
    );
    use StepStatus::*;
    assert_eq!(
        statuses(&j, &id),
        [
            Compensated,
            Compensated,
            Compensated,
            Interrupted,
            Pending,
            Pending,
            Pending
        ]
    );
    // Nothing is left to resume, and resuming again runs nothing.
    assert!(j.orphans().unwrap().is_empty());
    assert!(saga.resume_orphans().unwrap().reports.is_empty());
    assert!(
        saga.resume(&id, false)
            .unwrap()
            .unwrap_err()
            .contains("compensated")
    );
    assert_eq!(work.log().len(), 3);
}

#[test]
fn the_step_running_at_the_crash_is_undone_when_it_has_a_compensation() {
    let (_d, j) = journal();
    let id = orphan(&j, &spec(7), 3, true);
    let work = Script::default();
    let gate = Gatekeeper::default();
    let saga = Saga::new(&j, &gate, &work, None, "test");
    saga.resume(&id, false).unwrap().unwrap();
    assert_eq!(
        work.log(),
        [
            "compensate:s4",
            "compensate:s3",
            "compensate:s2",
            "compensate:s1"
        ]
    );
}

#[test]
fn a_compensation_cut_off_by_a_crash_runs_again_with_the_same_key_and_a_done_one_never_does() {
    let (_d, j) = journal();
    let id = orphan(&j, &spec(3), 3, false);
    set_owner(&j, &id, owner::me());
    j.saga(&id, SagaStatus::Compensating, Some("s4 failed"), 5)
        .unwrap();
    // s3 was undone; s2's undo was running when the runner died.
    j.step(
        &id,
        2,
        StepStatus::Compensating,
        Count::Compensation,
        "compensation.started",
        None,
    )
    .unwrap();
    j.step(
        &id,
        2,
        StepStatus::Compensated,
        Count::None,
        "compensation.done",
        None,
    )
    .unwrap();
    j.step(
        &id,
        1,
        StepStatus::Compensating,
        Count::Compensation,
        "compensation.started",
        None,
    )
    .unwrap();
    set_owner(&j, &id, GONE);
    let work = Script::default();
    let gate = Gatekeeper::default();
    let saga = Saga::new(&j, &gate, &work, None, "test");
    let r = saga.resume(&id, false).unwrap().unwrap();
    assert_eq!(r.status, SagaStatus::Compensated);
    assert_eq!(work.log(), ["compensate:s2", "compensate:s1"]);
    assert_eq!(work.keys.lock().unwrap()[0], format!("{id}:s2:compensate"));
    let steps = j.show(&id).unwrap().unwrap().steps;
    assert_eq!(
        steps[1].compensations, 2,
        "the count goes on across the crash"
    );
}

#[test]
fn a_saga_whose_runner_lives_is_not_taken_over() {
    let (_d, j) = journal();
    let s = spec(2);
    let id = new_id().unwrap();
    j.create(&id, &s, None, Path::new("/"), owner::me(), 1)
        .unwrap();
    assert!(j.orphans().unwrap().is_empty());
    let work = Script::default();
    let gate = Gatekeeper::default();
    let saga = Saga::new(&j, &gate, &work, None, "test");
    assert!(
        saga.resume(&id, false)
            .unwrap()
            .unwrap_err()
            .contains("live process")
    );
    assert!(
        saga.resume("nope", false)
            .unwrap()
            .unwrap_err()
            .contains("no saga")
    );
    assert!(work.log().is_empty());
    let rows = j.list(10).unwrap();
    assert_eq!(rows.len(), 1);
    assert!(rows[0].owned);
}

#[test]
fn backoff_doubles_up_to_the_cap() {
    let mut s = spec(1);
    s.backoff_ms = 100;
    assert_eq!(backoff(&s, 0), Duration::from_millis(100));
    assert_eq!(backoff(&s, 3), Duration::from_millis(800));
    assert_eq!(backoff(&s, 40), warden_policy::saga::MAX_BACKOFF);
}

#[test]
fn words_are_quoted_for_a_shell() {
    let w = |v: &[&str]| shell_line(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    assert_eq!(w(&["make", "build"]), "make build");
    assert_eq!(w(&["sh", "-c", "echo hi"]), "sh -c 'echo hi'");
    assert_eq!(w(&["it's"]), r"'it'\''s'");
    assert_eq!(w(&[""]), "''");
}

// --- The red team: a runner cut off mid-step, and a journal a hostile local process wrote. ---

/// Answers each attempt of a step from a list, in order (then `Done`).
struct Sequence {
    answers: Mutex<std::collections::HashMap<String, Vec<Attempt>>>,
    log: Mutex<Vec<String>>,
}

impl Sequence {
    fn new(answers: &[(&str, Vec<Attempt>)]) -> Self {
        Sequence {
            answers: Mutex::new(
                answers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.iter().rev().cloned().collect()))
                    .collect(),
            ),
            log: Mutex::new(Vec::new()),
        }
    }
}

impl Work for Sequence {
    fn perform(&self, ctx: &StepContext<'_>) -> Attempt {
        let name = format!("{}:{}", ctx.phase.as_str(), ctx.step.id);
        self.log.lock().unwrap().push(name.clone());
        self.answers
            .lock()
            .unwrap()
            .get_mut(&name)
            .and_then(Vec::pop)
            .unwrap_or(Attempt::Done)
    }
}

#[test]
fn a_step_cut_off_then_failing_on_its_retry_is_still_undone() {
    // Attempt 0 ran past its time limit (it may have done part of its work); attempt 1
    // exited non-zero. The first attempt's effect must still be undone.
    let (_d, j) = journal();
    let work = Sequence::new(&[(
        "run:s2",
        vec![
            Attempt::TimedOut("slow".into()),
            Attempt::Failed("exit 1".into()),
        ],
    )]);
    let mut s = spec(2);
    s.steps[1].retries = 1;
    let r = Saga::new(&j, &Gatekeeper::default(), &work, None, "test")
        .run(&s, Some("bot"), Path::new("/"))
        .unwrap();
    assert_eq!(r.status, SagaStatus::Compensated);
    assert_eq!(
        *work.log.lock().unwrap(),
        [
            "run:s1",
            "run:s2",
            "run:s2",
            "compensate:s2",
            "compensate:s1"
        ]
    );
}

/// Answers like [`Gatekeeper`], but denies the given attempts of steps (`run:ID:ATTEMPT`).
struct DenyAttempt(HashSet<String>);

impl Gate for DenyAttempt {
    fn decide(&self, action: &Action) -> Decision {
        let key = format!(
            "run:{}:{}",
            action.context["step"].as_str().unwrap(),
            action.context["attempt"]
        );
        let mut d = Decision::deny(format!("denied {key}"));
        if !self.0.contains(&key) {
            d.verdict = Verdict::Allow;
        }
        d
    }
    fn decide_compensation(&self, _: &Action) -> Decision {
        let mut d = Decision::deny("ok");
        d.verdict = Verdict::Allow;
        d
    }
}

#[test]
fn a_step_cut_off_then_denied_on_its_retry_is_still_undone() {
    // Attempt 0 timed out; attempt 1 was refused (a rate limit, the kill switch).
    let (_d, j) = journal();
    let work = Sequence::new(&[("run:s2", vec![Attempt::TimedOut("slow".into())])]);
    let mut s = spec(2);
    s.steps[1].retries = 1;
    let gate = DenyAttempt(["run:s2:1".to_string()].into());
    let r = Saga::new(&j, &gate, &work, None, "test")
        .run(&s, Some("bot"), Path::new("/"))
        .unwrap();
    assert_eq!(r.status, SagaStatus::Compensated);
    assert_eq!(
        *work.log.lock().unwrap(),
        ["run:s1", "run:s2", "compensate:s2", "compensate:s1"]
    );
}

/// Run raw SQL on the journal's database, as another local process could.
fn tamper(dir: &tempfile::TempDir, sql: &str) {
    let conn = rusqlite::Connection::open(dir.path().join("w.db")).unwrap();
    conn.execute_batch(sql).unwrap();
}

fn corrupt_error(j: &Journal, id: &str) -> String {
    let gate = Gatekeeper::default();
    let work = Script::default();
    let saga = Saga::new(j, &gate, &work, None, "test");
    let shown = j.show(id).map(|_| ()).unwrap_err().to_string();
    let resumed = saga.resume(id, true).map(|_| ()).unwrap_err().to_string();
    assert_eq!(
        work.log(),
        Vec::<String>::new(),
        "nothing runs from a bad journal"
    );
    assert_eq!(shown, resumed);
    shown
}

#[test]
fn hostile_step_rows_that_do_not_match_the_spec_are_refused_not_a_panic() {
    let (d, j) = journal();
    let id = orphan(&j, &spec(2), 1, false);
    // Same number of rows, but one points past the spec's steps.
    tamper(
        &d,
        &format!("UPDATE saga_steps SET idx = 99 WHERE saga = '{id}' AND idx = 1"),
    );
    let e = corrupt_error(&j, &id);
    assert!(e.contains("step"), "{e}");

    let (d, j) = journal();
    let id = orphan(&j, &spec(2), 1, false);
    tamper(
        &d,
        &format!("UPDATE saga_steps SET idx = -1 WHERE saga = '{id}' AND idx = 1"),
    );
    corrupt_error(&j, &id);

    // A row renamed to another step's id (the compensation would run for the wrong step).
    let (d, j) = journal();
    let id = orphan(&j, &spec(2), 1, false);
    tamper(
        &d,
        &format!("UPDATE saga_steps SET id = 'x' WHERE saga = '{id}' AND idx = 0"),
    );
    corrupt_error(&j, &id);

    // Negative counts would wrap to 4 billion attempts.
    let (d, j) = journal();
    let id = orphan(&j, &spec(2), 1, false);
    tamper(
        &d,
        &format!("UPDATE saga_steps SET compensations = -1 WHERE saga = '{id}'"),
    );
    corrupt_error(&j, &id);
}

#[test]
fn a_hostile_spec_in_the_journal_is_refused_before_anything_runs() {
    for (field, value) in [
        ("timeout_ms", "9223372036854775807"),
        ("retries", "4294967295"),
        ("compensate_retries", "4294967295"),
    ] {
        let (d, j) = journal();
        let id = orphan(&j, &spec(2), 1, false);
        tamper(
            &d,
            &format!(
                "UPDATE sagas SET spec = json_set(spec, '$.steps[0].{field}', {value}) WHERE id = '{id}'"
            ),
        );
        let e = corrupt_error(&j, &id);
        assert!(e.contains(field) || e.contains("limit"), "{field}: {e}");
    }
    // A step without a command, and an empty saga.
    let (d, j) = journal();
    let id = orphan(&j, &spec(2), 1, false);
    tamper(
        &d,
        &format!(
            "UPDATE sagas SET spec = json_set(spec, '$.steps[0].compensate', json('[]')) WHERE id = '{id}'"
        ),
    );
    corrupt_error(&j, &id);
    let (d, j) = journal();
    let id = orphan(&j, &spec(1), 0, false);
    tamper(
        &d,
        &format!(
            "UPDATE sagas SET spec = json_set(spec, '$.steps', json('[]')) WHERE id = '{id}';
             DELETE FROM saga_steps WHERE saga = '{id}';"
        ),
    );
    corrupt_error(&j, &id);
}

#[test]
fn one_corrupt_orphan_does_not_stop_the_others_from_being_undone() {
    let (d, j) = journal();
    // The oldest orphan is corrupt; the next one is a real crashed saga.
    let bad = orphan(&j, &spec(2), 1, false);
    tamper(
        &d,
        &format!("UPDATE sagas SET spec = '{{' WHERE id = '{bad}'"),
    );
    let good = orphan(&j, &spec(2), 1, true);
    tamper(
        &d,
        &format!("UPDATE sagas SET created_ns = 2 WHERE id = '{good}'"),
    );
    let work = Script::default();
    let gate = Gatekeeper::default();
    let saga = Saga::new(&j, &gate, &work, None, "test");
    let out = saga.resume_orphans().unwrap();
    assert_eq!(out.reports.len(), 1);
    assert_eq!(out.reports[0].id, good);
    assert_eq!(out.reports[0].status, SagaStatus::Compensated);
    assert_eq!(out.failed.len(), 1);
    assert_eq!(out.failed[0].0, bad);
    assert_eq!(work.log(), ["compensate:s2", "compensate:s1"]);
}

/// Does every step; at `run:s2` another process makes the journal refuse step updates (a
/// full disk, a lock held too long), so the runner's next journal write fails.
struct Sabotage {
    db: std::path::PathBuf,
    log: Mutex<Vec<String>>,
}

impl Work for Sabotage {
    fn perform(&self, ctx: &StepContext<'_>) -> Attempt {
        let name = format!("{}:{}", ctx.phase.as_str(), ctx.step.id);
        if name == "run:s2" {
            rusqlite::Connection::open(&self.db)
                .unwrap()
                .execute_batch(
                    "CREATE TRIGGER full BEFORE UPDATE ON saga_steps
                     BEGIN SELECT RAISE(ABORT, 'disk full'); END;",
                )
                .unwrap();
        }
        self.log.lock().unwrap().push(name);
        Attempt::Done
    }
}

#[test]
fn a_runner_that_cannot_write_its_journal_lets_go_of_the_saga_so_it_can_be_resumed() {
    // A long-lived process (`warden serve`, a library user) whose saga stopped on a journal
    // error lives on: a saga it still owned could never be resumed while it lives.
    let (d, j) = journal();
    let work = Sabotage {
        db: d.path().join("w.db"),
        log: Mutex::new(Vec::new()),
    };
    let gate = Gatekeeper::default();
    let saga = Saga::new(&j, &gate, &work, None, "test");
    let e = saga.run(&spec(3), Some("bot"), Path::new("/")).unwrap_err();
    assert!(e.to_string().contains("disk full"), "{e}");
    tamper(&d, "DROP TRIGGER full");
    let orphans = j.orphans().unwrap();
    assert_eq!(orphans.len(), 1, "the saga is left to resume");
    // Resumed (here, by the same process): s2 ran to its end unrecorded, so it is undone.
    let out = saga.resume_orphans().unwrap();
    assert_eq!(out.reports.len(), 1);
    assert_eq!(out.reports[0].status, SagaStatus::Compensated);
    assert_eq!(
        *work.log.lock().unwrap(),
        ["run:s1", "run:s2", "compensate:s2", "compensate:s1"]
    );
}

/// Does every step; at `run:s1` another process takes the saga over (it judged this runner
/// dead: another pid namespace sharing the database, say).
struct TakenOver {
    log: Mutex<Vec<String>>,
}

impl Work for TakenOver {
    fn perform(&self, ctx: &StepContext<'_>) -> Attempt {
        self.log
            .lock()
            .unwrap()
            .push(format!("{}:{}", ctx.phase.as_str(), ctx.step.id));
        Attempt::Done
    }
}

#[test]
fn a_runner_whose_saga_was_taken_over_starts_nothing_more_of_it() {
    let (_d, j) = journal();
    let work = TakenOver {
        log: Mutex::new(Vec::new()),
    };
    struct TakeOverAt<'a>(&'a Journal);
    impl Gate for TakeOverAt<'_> {
        fn decide(&self, action: &Action) -> Decision {
            // Just before step s2 is started, another process claims the saga.
            if action.context["step"] == "s2" {
                let id = action.context["saga_id"].as_str().unwrap();
                set_owner(self.0, id, "a-resumer/1/1");
            }
            let mut d = Decision::deny("ok");
            d.verdict = Verdict::Allow;
            d
        }
        fn decide_compensation(&self, action: &Action) -> Decision {
            self.decide(action)
        }
    }
    let gate = TakeOverAt(&j);
    let e = Saga::new(&j, &gate, &work, None, "test")
        .run(&spec(3), Some("bot"), Path::new("/"))
        .unwrap_err();
    assert!(matches!(e, RuntimeError::TakenOver { .. }), "{e}");
    assert_eq!(
        *work.log.lock().unwrap(),
        ["run:s1"],
        "s2 was never started"
    );
    // The new owner still holds it.
    let id = j.list(1).unwrap()[0].id.clone();
    let owner: String = rusqlite::Connection::open(j.path())
        .unwrap()
        .query_row("SELECT owner FROM sagas WHERE id = ?1", [&id], |r| r.get(0))
        .unwrap();
    assert_eq!(owner, "a-resumer/1/1");
}

#[test]
fn only_the_undos_of_the_run_itself_skip_the_kill_switch_never_a_resume() {
    let (_d, j) = journal();
    let work = Script::failing(&["run:s2"]);
    let gate = Gatekeeper::default();
    run(&j, &gate, &work, &spec(2));
    // s1 run, s2 run (full path); s1's undo in the run (all but the kill switch).
    assert_eq!(*gate.routes.lock().unwrap(), [false, false, true]);
    // A resume after a crash judges every undo by the whole path.
    let id = orphan(&j, &spec(3), 2, false);
    let gate = Gatekeeper::default();
    let saga = Saga::new(&j, &gate, &work, None, "test");
    saga.resume(&id, false).unwrap().unwrap();
    assert_eq!(*gate.routes.lock().unwrap(), [false, false]);
    // So a killed agent's crashed saga waits for its revival.
    let id = orphan(&j, &spec(2), 2, false);
    let gate = Gatekeeper {
        killed: true,
        ..Gatekeeper::default()
    };
    let saga = Saga::new(&j, &gate, &work, None, "test");
    let r = saga.resume(&id, false).unwrap().unwrap();
    assert_eq!(r.status, SagaStatus::Escalated);
}

#[test]
fn a_step_naming_an_action_is_also_judged_as_the_command_it_runs() {
    let (_d, j) = journal();
    let mut s = spec(1);
    s.steps[0].action = "web.search".into();
    let work = Script::default();
    let gate = Gatekeeper::default();
    run(&j, &gate, &work, &s);
    let asked = gate.asked.lock().unwrap();
    assert_eq!(asked[0].action, "execute_code");
    assert_eq!(asked[0].args["argv"], json!(["true"]));
    assert_eq!(asked[0].context["saga_action"], "web.search");
    assert_eq!(asked[1].action, "web.search");
    // Refused as code: the step never runs, whatever it calls itself.
    let (_d, j) = journal();
    let work = Script::default();
    let gate = Gatekeeper {
        deny: ["run:s1".to_string()].into(),
        ..Gatekeeper::default()
    };
    let r = run(&j, &gate, &work, &s);
    assert_eq!(r.status, SagaStatus::Compensated);
    assert!(work.log().is_empty());
    assert_eq!(
        gate.asked.lock().unwrap().len(),
        1,
        "the first refusal ends it"
    );
}
