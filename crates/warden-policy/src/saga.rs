//! Saga files: an ordered list of steps, each a command and the command that undoes it
//! (`warden saga run`; the runner is `warden_runtime::saga`).
//!
//! ```yaml
//! name: deploy
//! agent: release-bot            # optional: whom the steps are judged for
//! backoff: 500ms                # optional: first wait between retries (doubles, at most 30s)
//! steps:
//!   - id: build
//!     run: [make, build]        # argv, no shell
//!     compensate: [make, clean] # optional: a step without it has nothing to undo
//!     timeout: 30s              # optional, default 10m
//!     retries: 2                # optional, default 0 (compensations: 3)
//!     action: deploy.build      # optional: judged as this action (default execute_code)
//!     args: {env: prod}         # optional: more arguments for the policy to see
//! ```
//!
//! Read here, beside the policy documents, so a bad saga file gets the same errors as a bad
//! policy: every problem at once, each at its file:line:col. The spec is also what the
//! runner keeps in its journal (as JSON), so `warden saga resume` can finish a saga after the
//! process that started it is gone without the file.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::diagnostic::{LoadError, Problem};
use crate::limits::Limits;
use crate::runtime::parse_duration;
use crate::source::{Source, read};
use crate::yaml::{self, Node, Value, entries};

/// The most steps a saga may have.
pub const MAX_STEPS: usize = 256;
/// The most words in one command.
pub const MAX_ARGV: usize = 1024;
/// The longest id of a saga step (letters, digits, `-`, `_`, `.`).
pub const MAX_ID: usize = 64;
/// The most retries of one step or compensation.
pub const MAX_RETRIES: u32 = 20;
/// A step's time limit unless it says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// How often a failing compensation is retried unless the step says otherwise.
pub const DEFAULT_COMPENSATE_RETRIES: u32 = 3;
/// The first wait between retries unless the file says otherwise.
pub const DEFAULT_BACKOFF: Duration = Duration::from_millis(500);
/// The longest wait between two retries.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The action a step is judged as unless it names one.
pub const DEFAULT_ACTION: &str = "execute_code";

/// A saga: steps run in order; when one fails, the earlier ones are undone in reverse.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SagaSpec {
    /// The saga's name (shown by `warden saga list`, recorded with every step).
    pub name: String,
    /// The agent the steps are judged for, if the file names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// The first wait between retries, in milliseconds (it doubles up to [`MAX_BACKOFF`]).
    pub backoff_ms: u64,
    /// The steps, in order.
    pub steps: Vec<StepSpec>,
}

/// One step of a saga.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepSpec {
    /// Unique within the saga.
    pub id: String,
    /// The action the step (and its compensation) is judged as.
    pub action: String,
    /// More arguments for the policy, merged under the built-in ones.
    #[serde(default)]
    pub args: serde_json::Map<String, serde_json::Value>,
    /// The command (argv) that does the step.
    pub run: Vec<String>,
    /// The command that undoes it, if there is anything to undo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compensate: Option<Vec<String>>,
    /// Time limit of one attempt, in milliseconds (also for its compensation).
    pub timeout_ms: u64,
    /// Further attempts after a failed one.
    pub retries: u32,
    /// Further attempts after a failed compensation.
    pub compensate_retries: u32,
}

impl StepSpec {
    /// A step running `run`, with the defaults for everything else.
    pub fn new(id: impl Into<String>, run: Vec<String>) -> Self {
        StepSpec {
            id: id.into(),
            action: DEFAULT_ACTION.to_string(),
            args: serde_json::Map::new(),
            run,
            compensate: None,
            timeout_ms: millis(DEFAULT_TIMEOUT),
            retries: 0,
            compensate_retries: DEFAULT_COMPENSATE_RETRIES,
        }
    }

    /// The same step, undone by `compensate`.
    pub fn compensated_by(mut self, compensate: Vec<String>) -> Self {
        self.compensate = Some(compensate);
        self
    }

    /// The time limit of one attempt.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

impl SagaSpec {
    /// A saga called `name` of `steps`, with the default backoff.
    pub fn new(name: impl Into<String>, steps: Vec<StepSpec>) -> Self {
        SagaSpec {
            name: name.into(),
            agent: None,
            backoff_ms: millis(DEFAULT_BACKOFF),
            steps,
        }
    }

    /// The first wait between retries.
    pub fn backoff(&self) -> Duration {
        Duration::from_millis(self.backoff_ms)
    }

    /// Read and check a saga file; every problem is reported with its position.
    pub fn load(path: &Path) -> Result<SagaSpec, LoadError> {
        let limits = Limits::default();
        let source = read(path, &limits).map_err(|p| LoadError::new(vec![p]))?;
        let root = match yaml::parse(&source, &limits) {
            Ok(Some(root)) => root,
            Ok(None) => return Err(LoadError::file(path, "the saga file is empty")),
            Err(p) => return Err(LoadError::new(vec![p])),
        };
        let mut problems = Vec::new();
        let spec = saga(&source, &root, &mut problems);
        match spec {
            Some(spec) if problems.is_empty() => Ok(spec),
            _ => Err(LoadError::new(problems)),
        }
    }
}

impl SagaSpec {
    /// Whether the spec keeps every rule a saga file is held to (limits, ids, commands).
    /// A spec read back from a journal another process could have written is checked with
    /// this before anything of it runs: `Err` names the first rule broken.
    pub fn check(&self) -> Result<(), String> {
        let text_ok = |s: &str, max: usize| {
            !s.trim().is_empty() && s.len() <= max && !s.chars().any(char::is_control)
        };
        if !text_ok(&self.name, 256) {
            return Err("the saga's `name` is not a short line of text".into());
        }
        if self.agent.as_deref().is_some_and(|a| !text_ok(a, 1024)) {
            return Err("the saga's `agent` is not a short line of text".into());
        }
        if self.backoff() > MAX_BACKOFF {
            return Err(format!("`backoff_ms` is over the limit of {MAX_BACKOFF:?}"));
        }
        if self.steps.is_empty() || self.steps.len() > MAX_STEPS {
            return Err(format!(
                "a saga has 1 to {MAX_STEPS} steps ({} here)",
                self.steps.len()
            ));
        }
        for (i, step) in self.steps.iter().enumerate() {
            let bad = |why: String| Err(format!("steps[{i}]: {why}"));
            if !valid_id(&step.id) {
                return bad("`id` is not a valid step id".into());
            }
            if self.steps[..i].iter().any(|s| same_id(&s.id, &step.id)) {
                return bad(format!("step id `{}` is used twice", step.id));
            }
            for (field, words) in [
                ("run", Some(&step.run)),
                ("compensate", step.compensate.as_ref()),
            ] {
                if let Some(words) = words
                    && (words.is_empty()
                        || words.len() > MAX_ARGV
                        || words[0].is_empty()
                        || words.iter().any(|w| w.contains('\0')))
                {
                    return bad(format!(
                        "`{field}` is not a command of 1 to {MAX_ARGV} words"
                    ));
                }
            }
            if step.timeout_ms == 0 || step.timeout() > crate::runtime::MAX_DURATION {
                return bad("`timeout_ms` is not above 0 and within the limit of 30 days".into());
            }
            if step.retries > MAX_RETRIES {
                return bad(format!("`retries` is over the limit of {MAX_RETRIES}"));
            }
            if step.compensate_retries > MAX_RETRIES {
                return bad(format!(
                    "`compensate_retries` is over the limit of {MAX_RETRIES}"
                ));
            }
            if reserved(&step.action) {
                return bad(format!(
                    "the action `{}` is reserved for Warden",
                    step.action
                ));
            }
            if let Err(e) = warden_core::Action::new(step.action.as_str()).validate() {
                return bad(e.to_string());
            }
        }
        Ok(())
    }
}

/// Whether two step ids are the same to a case-insensitive file system or tool (the
/// idempotency key `SAGA:STEP:phase` is often used as a file name).
fn same_id(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// Action names Warden keeps for its own records (`warden.kill`, `warden.saga.start`, …).
fn reserved(action: &str) -> bool {
    action
        .get(..7)
        .is_some_and(|p| p.eq_ignore_ascii_case("warden."))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

const SAGA_FIELDS: &[&str] = &["name", "agent", "backoff", "steps"];
const STEP_FIELDS: &[&str] = &[
    "id",
    "run",
    "compensate",
    "timeout",
    "retries",
    "compensate_retries",
    "action",
    "args",
];

fn saga(source: &Source, root: &Node, problems: &mut Vec<Problem>) -> Option<SagaSpec> {
    let mut name = None;
    let mut agent = None;
    let mut backoff = DEFAULT_BACKOFF;
    let mut steps = Vec::new();
    let mut steps_node = None;
    for (key, _, v) in entries(source, root, "a saga file", SAGA_FIELDS, problems) {
        match key {
            "name" => name = text(source, v, "name", 256, problems),
            "agent" => agent = text(source, v, "agent", 1024, problems),
            "backoff" => match v.as_str().map(parse_duration) {
                Some(Ok(d)) if d <= MAX_BACKOFF => backoff = d,
                Some(Ok(_)) => problems.push(Problem::new(
                    source,
                    v.pos,
                    format!("`backoff` must be at most {}s", MAX_BACKOFF.as_secs()),
                )),
                Some(Err(e)) => problems.push(Problem::new(source, v.pos, e)),
                None => problems.push(Problem::new(
                    source,
                    v.pos,
                    "`backoff` must be a duration such as `500ms`",
                )),
            },
            "steps" => {
                steps_node = Some(v);
                match &v.value {
                    Value::Seq(items) if items.len() > MAX_STEPS => problems.push(Problem::new(
                        source,
                        v.pos,
                        format!(
                            "a saga has at most {MAX_STEPS} steps ({} here)",
                            items.len()
                        ),
                    )),
                    Value::Seq(items) => {
                        for (i, item) in items.iter().enumerate() {
                            if let Some(s) = step(source, item, i, problems) {
                                if let Some(first) =
                                    steps.iter().position(|x: &StepSpec| same_id(&x.id, &s.id))
                                {
                                    problems.push(Problem::new(
                                        source,
                                        item.pos,
                                        format!(
                                            "step id `{}` is used twice (steps[{first}] and steps[{i}])",
                                            s.id
                                        ),
                                    ));
                                }
                                steps.push(s);
                            }
                        }
                    }
                    _ => problems.push(Problem::new(source, v.pos, "`steps` must be a list")),
                }
            }
            _ => unreachable!("entries() filters unknown keys"),
        }
    }
    if !matches!(root.value, Value::Map(_)) {
        return None;
    }
    if name.is_none() {
        problems.push(Problem::new(source, root.pos, "a saga needs a `name`"));
    }
    match steps_node {
        None => problems.push(Problem::new(source, root.pos, "a saga needs `steps`")),
        Some(n)
            if steps.is_empty() && matches!(&n.value, Value::Seq(items) if items.is_empty()) =>
        {
            problems.push(Problem::new(
                source,
                n.pos,
                "a saga needs at least one step",
            ));
        }
        Some(_) => {}
    }
    Some(SagaSpec {
        name: name?,
        agent,
        backoff_ms: millis(backoff),
        steps,
    })
}

fn step(
    source: &Source,
    node: &Node,
    index: usize,
    problems: &mut Vec<Problem>,
) -> Option<StepSpec> {
    let before = problems.len();
    let what = format!("steps[{index}]");
    let mut spec = StepSpec::new(String::new(), Vec::new());
    let mut id = None;
    let mut run = None;
    for (key, _, v) in entries(source, node, "a saga step", STEP_FIELDS, problems) {
        match key {
            "id" => match v.as_str() {
                Some(s) if valid_id(s) => id = Some(s.to_string()),
                _ => problems.push(Problem::new(
                    source,
                    v.pos,
                    format!(
                        "`id` must be 1 to {MAX_ID} letters, digits, `-`, `_` or `.` (found {})",
                        v.kind()
                    ),
                )),
            },
            "run" => run = argv(source, v, "run", problems),
            "compensate" => spec.compensate = argv(source, v, "compensate", problems),
            "action" => match v.as_str() {
                Some(s) if reserved(s) => {
                    problems.push(Problem::new(
                        source,
                        v.pos,
                        format!("`{s}`: action names starting with `warden.` are reserved for Warden's own records"),
                    ));
                }
                Some(s) => match warden_core::Action::new(s).validate() {
                    Ok(()) => spec.action = s.to_string(),
                    Err(e) => problems.push(Problem::new(source, v.pos, e.to_string())),
                },
                None => problems.push(Problem::new(source, v.pos, "`action` must be a string")),
            },
            "args" => match v.to_json() {
                serde_json::Value::Object(map) => spec.args = map,
                _ => problems.push(Problem::new(source, v.pos, "`args` must be a mapping")),
            },
            "timeout" => match v.as_str().map(parse_duration) {
                Some(Ok(d)) => spec.timeout_ms = millis(d),
                Some(Err(e)) => problems.push(Problem::new(source, v.pos, e)),
                None => problems.push(Problem::new(
                    source,
                    v.pos,
                    "`timeout` must be a duration such as `30s`",
                )),
            },
            "retries" => {
                if let Some(n) = count(source, v, "retries", problems) {
                    spec.retries = n;
                }
            }
            "compensate_retries" => {
                if let Some(n) = count(source, v, "compensate_retries", problems) {
                    spec.compensate_retries = n;
                }
            }
            _ => unreachable!("entries() filters unknown keys"),
        }
    }
    if problems.len() == before {
        if id.is_none() {
            problems.push(Problem::new(
                source,
                node.pos,
                format!("{what} needs an `id`"),
            ));
        }
        if run.is_none() {
            problems.push(Problem::new(
                source,
                node.pos,
                format!("{what} needs `run`"),
            ));
        }
    }
    spec.id = id?;
    spec.run = run?;
    (problems.len() == before).then_some(spec)
}

fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_ID
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

fn text(
    source: &Source,
    v: &Node,
    field: &str,
    max: usize,
    problems: &mut Vec<Problem>,
) -> Option<String> {
    match v.as_str() {
        Some(s) if !s.trim().is_empty() && s.len() <= max && !s.chars().any(char::is_control) => {
            Some(s.to_string())
        }
        _ => {
            problems.push(Problem::new(
                source,
                v.pos,
                format!(
                    "`{field}` must be a non-empty string of at most {max} bytes without control characters (found {})",
                    v.kind()
                ),
            ));
            None
        }
    }
}

fn argv(
    source: &Source,
    v: &Node,
    field: &str,
    problems: &mut Vec<Problem>,
) -> Option<Vec<String>> {
    let bad = |problems: &mut Vec<Problem>, why: &str| {
        problems.push(Problem::new(
            source,
            v.pos,
            format!("`{field}` must be a command as a list of words, e.g. [make, build] ({why})"),
        ));
        None
    };
    let Value::Seq(items) = &v.value else {
        return bad(problems, &format!("found {}", v.kind()));
    };
    if items.is_empty() {
        return bad(problems, "the list is empty");
    }
    if items.len() > MAX_ARGV {
        return bad(problems, &format!("more than {MAX_ARGV} words"));
    }
    let mut words = Vec::with_capacity(items.len());
    for item in items {
        match &item.value {
            Value::Str(s) if !s.contains('\0') => words.push(s.clone()),
            Value::Str(_) => {
                problems.push(Problem::new(
                    source,
                    item.pos,
                    format!("a word of `{field}` holds a NUL byte, which no command can be given"),
                ));
                return None;
            }
            Value::Int(i) => words.push(i.to_string()),
            _ => {
                problems.push(Problem::new(
                    source,
                    item.pos,
                    format!(
                        "each word of `{field}` must be a string (found {})",
                        item.kind()
                    ),
                ));
                return None;
            }
        }
    }
    if words[0].is_empty() {
        return bad(problems, "the program name is empty");
    }
    Some(words)
}

fn count(source: &Source, v: &Node, field: &str, problems: &mut Vec<Problem>) -> Option<u32> {
    match v.value {
        Value::Int(n) if (0..=i64::from(MAX_RETRIES)).contains(&n) => u32::try_from(n).ok(),
        _ => {
            problems.push(Problem::new(
                source,
                v.pos,
                format!(
                    "`{field}` must be a whole number from 0 to {MAX_RETRIES} (found {})",
                    v.kind()
                ),
            ));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<SagaSpec, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("saga.yaml");
        std::fs::write(&path, text).unwrap();
        SagaSpec::load(&path).map_err(|e| {
            e.problems()
                .iter()
                .map(Problem::one_line)
                .collect::<Vec<_>>()
                .join("\n")
        })
    }

    #[test]
    fn a_full_file_reads_with_defaults_filled_in() {
        let s = load(
            "name: deploy\nagent: bot\nbackoff: 100ms\nsteps:\n  - id: build\n    run: [make, build]\n    compensate: [make, clean]\n    timeout: 30s\n    retries: 2\n  - id: push\n    run: [git, push]\n    action: deploy.push\n    args: {env: prod}\n",
        )
        .unwrap();
        assert_eq!(s.name, "deploy");
        assert_eq!(s.agent.as_deref(), Some("bot"));
        assert_eq!(s.backoff(), Duration::from_millis(100));
        assert_eq!(s.steps.len(), 2);
        let build = &s.steps[0];
        assert_eq!(build.run, ["make", "build"]);
        assert_eq!(
            build.compensate.as_deref(),
            Some(&["make".to_string(), "clean".to_string()][..])
        );
        assert_eq!(build.timeout(), Duration::from_secs(30));
        assert_eq!(build.retries, 2);
        assert_eq!(build.compensate_retries, DEFAULT_COMPENSATE_RETRIES);
        assert_eq!(build.action, DEFAULT_ACTION);
        let push = &s.steps[1];
        assert_eq!(push.action, "deploy.push");
        assert_eq!(push.args["env"], "prod");
        assert_eq!(push.compensate, None);
        assert_eq!(push.timeout(), DEFAULT_TIMEOUT);
        // What the journal keeps reads back as the same spec.
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<SagaSpec>(&json).unwrap(), s);
    }

    #[test]
    fn every_problem_is_reported_at_its_place() {
        let e = load(
            "name: x\nsteps:\n  - id: a\n    run: make\n  - id: a b\n    run: [ls]\n    retries: -1\n  - id: c\n    run: [ls]\n    timout: 3s\n  - id: d\n    run: [ls]\n  - id: d\n    run: [ls]\n",
        )
        .unwrap_err();
        assert!(
            e.contains(":4:10") && e.contains("`run` must be a command"),
            "{e}"
        );
        assert!(e.contains(":5:9") && e.contains("`id` must be"), "{e}");
        assert!(
            e.contains(":7:14") && e.contains("`retries` must be"),
            "{e}"
        );
        assert!(
            e.contains(":10:5") && e.contains("did you mean `timeout`"),
            "{e}"
        );
        assert!(e.contains(":13:5") && e.contains("used twice"), "{e}");
    }

    #[test]
    fn missing_and_empty_parts_are_errors() {
        assert!(
            load("steps: [{id: a, run: [ls]}]\n")
                .unwrap_err()
                .contains("needs a `name`")
        );
        assert!(load("name: x\n").unwrap_err().contains("needs `steps`"));
        assert!(
            load("name: x\nsteps: []\n")
                .unwrap_err()
                .contains("at least one step")
        );
        assert!(
            load("name: x\nsteps: [{id: a}]\n")
                .unwrap_err()
                .contains("needs `run`")
        );
        assert!(
            load("name: x\nsteps: [{run: [ls]}]\n")
                .unwrap_err()
                .contains("needs an `id`")
        );
        assert!(
            load("name: x\nsteps: [{id: a, run: []}]\n")
                .unwrap_err()
                .contains("empty")
        );
        assert!(
            load("name: x\nsteps: [{id: a, run: [ls], action: \"warden.kill\"}]\n")
                .unwrap_err()
                .contains("reserved")
        );
        assert!(load("").unwrap_err().contains("empty"));
        assert!(load("- a\n").unwrap_err().contains("must be a mapping"));
    }

    #[test]
    fn hostile_nul_in_a_command_is_named_as_such() {
        let e = load("name: x\nsteps:\n  - id: a\n    run: [\"a\\0b\"]\n").unwrap_err();
        assert!(e.contains(":4:11") && e.contains("NUL"), "{e}");
    }

    #[test]
    fn hostile_step_ids_that_differ_only_in_case_are_one_id() {
        // Their idempotency keys (`SAGA:A:run`, `SAGA:a:run`) name one file on a
        // case-insensitive file system: the undo of one would be taken as done for the other.
        let e = load("name: x\nsteps:\n  - {id: Build, run: [ls]}\n  - {id: build, run: [ls]}\n")
            .unwrap_err();
        assert!(e.contains(":4:5") && e.contains("used twice"), "{e}");
    }

    #[test]
    fn hostile_reserved_action_names_in_any_case_are_refused() {
        for name in [
            "warden.kill",
            "Warden.kill",
            "WARDEN.saga.start",
            "wArDeN.revive",
        ] {
            let e = load(&format!(
                "name: x\nsteps: [{{id: a, run: [ls], action: \"{name}\"}}]\n"
            ))
            .unwrap_err();
            assert!(e.contains("reserved"), "{name}: {e}");
        }
        // Whitespace or a control character around it is not a valid action at all.
        for name in [" warden.kill", "warden.kill ", "\\u0000warden.kill"] {
            assert!(
                load(&format!(
                    "name: x\nsteps: [{{id: a, run: [ls], action: \"{name}\"}}]\n"
                ))
                .is_err(),
                "{name:?}"
            );
        }
    }

    #[test]
    fn a_spec_is_checked_against_the_file_limits() {
        let good = load("name: x\nsteps: [{id: a, run: [ls], compensate: [rm, x]}]\n").unwrap();
        assert_eq!(good.check(), Ok(()));
        type Break = fn(&mut SagaSpec);
        let broken: Vec<(&str, Break)> = vec![
            ("no steps", |s| s.steps.clear()),
            ("long timeout", |s| s.steps[0].timeout_ms = u64::MAX),
            ("zero timeout", |s| s.steps[0].timeout_ms = 0),
            ("retries", |s| s.steps[0].retries = MAX_RETRIES + 1),
            ("undo retries", |s| s.steps[0].compensate_retries = u32::MAX),
            ("backoff", |s| s.backoff_ms = u64::MAX),
            ("empty undo", |s| s.steps[0].compensate = Some(Vec::new())),
            ("nul", |s| s.steps[0].run = vec!["a\0b".into()]),
            ("bad id", |s| s.steps[0].id = "a b".into()),
            ("reserved", |s| s.steps[0].action = "Warden.kill".into()),
            ("name", |s| s.name = "x\u{1b}[2J".into()),
            ("twice", |s| {
                let mut again = s.steps[0].clone();
                again.id = "A".into();
                s.steps.push(again);
            }),
        ];
        for (what, breaks) in broken {
            let mut s = good.clone();
            breaks(&mut s);
            assert!(s.check().is_err(), "{what}");
        }
    }

    #[test]
    fn sizes_are_bounded() {
        let many: String = (0..=MAX_STEPS)
            .map(|i| format!("  - {{id: s{i}, run: [ls]}}\n"))
            .collect();
        assert!(
            load(&format!("name: x\nsteps:\n{many}"))
                .unwrap_err()
                .contains("at most 256 steps")
        );
        assert!(
            load("name: x\nsteps: [{id: a, run: [ls], retries: 1000}]\n")
                .unwrap_err()
                .contains("from 0 to 20")
        );
        assert!(
            load("name: x\nbackoff: 1h\nsteps: [{id: a, run: [ls]}]\n")
                .unwrap_err()
                .contains("at most 30s")
        );
    }
}
