//! `warden policy validate | explain | test`.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use warden_policy::{PolicySet, Status, testing::TestFile};

use crate::action_args::ActionArgs;
use crate::args::{AuditArgs, PolicyArgs};
use crate::check;
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::report::{self, visible};

/// Policy subcommands.
#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Check policy files and report every problem with file, line and column.
    Validate {
        /// Policy files or directories.
        #[arg(value_name = "PATH", required_unless_present = "policies")]
        paths: Vec<PathBuf>,
        /// Policy file or directory, as every other command takes it (repeatable).
        #[arg(long = "policy", short = 'p', value_name = "PATH")]
        policies: Vec<PathBuf>,
        /// Print a JSON summary (problems or documents).
        #[arg(long)]
        json: bool,
    },
    /// Decide an action and show every rule: matched or not, why, and which decided.
    Explain(ExplainArgs),
    /// Run a test file of actions with expected verdicts; exit 1 on any mismatch.
    Test {
        /// The test file (YAML with `policies:` and `cases:`).
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Policies to test instead of the file's own `policies:`.
        #[arg(long = "policy", short = 'p', value_name = "PATH")]
        policies: Vec<PathBuf>,
        /// Print results as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Arguments of `warden policy explain`.
#[derive(Args, Debug)]
pub struct ExplainArgs {
    #[command(flatten)]
    policy: PolicyArgs,
    #[command(flatten)]
    action: ActionArgs,
    #[command(flatten)]
    model: crate::model::ModelArgs,
    /// Print the explanation (or the error) as JSON.
    #[arg(long)]
    pub json: bool,
}

impl PolicyCommand {
    /// Whether the command was asked for JSON output.
    pub fn json(&self) -> bool {
        match self {
            PolicyCommand::Validate { json, .. } | PolicyCommand::Test { json, .. } => *json,
            PolicyCommand::Explain(a) => a.json,
        }
    }
}

pub fn run(cmd: PolicyCommand) -> Result<Exit> {
    match cmd {
        PolicyCommand::Validate {
            mut paths,
            policies,
            json,
        } => {
            paths.extend(policies);
            validate(&paths, json)
        }
        PolicyCommand::Explain(args) => explain(&args),
        PolicyCommand::Test {
            file,
            policies,
            json,
        } => test(&file, &policies, json),
    }
}

fn validate(paths: &[PathBuf], json: bool) -> Result<Exit> {
    match PolicySet::load(paths) {
        Ok(set) => {
            if json {
                let docs: Vec<_> = set
                    .documents()
                    .iter()
                    .map(|d| serde_json::json!({"name": &**d.name(), "rules": d.rule_count(), "default": d.default_verdict()}))
                    .collect();
                outln!(
                    "{}",
                    report::json(&serde_json::json!({"valid": true, "documents": docs}))
                );
            } else {
                for d in set.documents() {
                    outln!(
                        "ok: policy `{}`: {} rule{}, default {}",
                        visible(d.name()),
                        d.rule_count(),
                        if d.rule_count() == 1 { "" } else { "s" },
                        d.default_verdict()
                    );
                }
            }
            Ok(Exit::Ok)
        }
        Err(e) => {
            if json {
                // The documented shape of an invalid set: `valid: false` and every problem.
                outln!(
                    "{}",
                    report::json(
                        &serde_json::json!({"valid": false, "problems": report::problems_json(&e)})
                    )
                );
                report::load_error(&e);
                Ok(Exit::Error)
            } else {
                Err(Error::Policy(e))
            }
        }
    }
}

fn explain(args: &ExplainArgs) -> Result<Exit> {
    let action = check::action(&args.action)?;
    let builder = crate::args::builder(&args.policy, &AuditArgs::default());
    let warden = crate::model::with_model(builder, &args.model)?.build()?;
    let e = warden.explain(&action);
    if args.json {
        outln!("{}", report::json(&e));
    } else {
        outln!("action `{}`", visible(&action.action));
        if let Some(drift) = e.drift {
            outln!(
                "drift: {drift:.3} (1 − similarity of the action to context.task; 0 on task, ~1 unrelated)"
            );
        }
        if let Some(u) = &e.understood {
            if let Some(commands) = &u.commands {
                outln!("commands: {}", visible(&commands.join(", ")));
            }
            if !u.paths.is_empty() {
                let paths: Vec<String> = u.paths.iter().map(|p| p.display().to_string()).collect();
                outln!("paths: {}", visible(&paths.join(", ")));
            }
            if let Some(sql) = &u.sql {
                let statements: Vec<String> = sql
                    .iter()
                    .map(|s| {
                        let every = if s.every_row { ", every row" } else { "" };
                        if s.tables.is_empty() {
                            format!("{}{every}", s.kind)
                        } else {
                            format!("{} ({}{every})", s.kind, s.tables.join(" "))
                        }
                    })
                    .collect();
                outln!("sql: {}", visible(&statements.join(", ")));
            }
            if !u.intents.is_empty() {
                let labels: Vec<String> = u
                    .intents
                    .iter()
                    .map(|i| format!("{} ({})", i.label, i.why))
                    .collect();
                outln!("intents: {}", visible(&labels.join(", ")));
            }
            if let Some(err) = &u.error {
                outln!("unreadable: {}", visible(err));
            }
        }
        for t in &e.rules {
            let mark = match (t.decided, t.status) {
                (true, _) => "=>",
                (false, Status::Matched) => "+ ",
                (false, Status::Error) => "! ",
                (false, Status::NotMatched) => "- ",
            };
            let status = match t.status {
                Status::Matched => "matched",
                Status::NotMatched => "not matched",
                Status::Error => "error",
            };
            outln!(
                "{mark} {}/{} [{}] {status}: {}",
                visible(&t.policy),
                visible(&t.rule),
                t.verdict,
                visible(&t.detail)
            );
        }
        if e.decision.rule.is_none() {
            outln!("=> {}", visible(&e.decision.reason));
        }
        outln!("{}", report::decision_text(&e.decision));
    }
    Ok(e.decision.verdict.into())
}

fn test(file: &std::path::Path, overrides: &[PathBuf], json: bool) -> Result<Exit> {
    let tests = TestFile::load(file)?;
    let paths = if overrides.is_empty() {
        &tests.policies
    } else {
        &overrides.to_vec()
    };
    if paths.is_empty() {
        return Err(Error::msg(format!(
            "{}: no `policies:` in the test file and no --policy given",
            file.display()
        )));
    }
    let set = PolicySet::load(paths)?;
    let results = tests.run(&set);
    let failed = results.iter().filter(|r| !r.passed()).count();
    if json {
        let cases: Vec<_> = results
            .iter()
            .map(|r| {
                serde_json::json!({
                    "name": r.case.name,
                    "line": r.case.line,
                    "passed": r.passed(),
                    "expected": r.case.expect,
                    "expected_rule": r.case.rule,
                    "decision": r.decision,
                })
            })
            .collect();
        outln!(
            "{}",
            report::json(
                &serde_json::json!({"passed": results.len() - failed, "failed": failed, "cases": cases})
            )
        );
    } else {
        for r in &results {
            if r.passed() {
                outln!("ok   {} => {}", visible(&r.case.name), r.decision.verdict);
            } else {
                outln!(
                    "FAIL {} ({}:{})",
                    visible(&r.case.name),
                    file.display(),
                    r.case.line
                );
                let want_rule = r
                    .case
                    .rule
                    .as_deref()
                    .map(|x| format!(" by rule `{x}`"))
                    .unwrap_or_default();
                let got_rule = r
                    .decision
                    .rule
                    .as_deref()
                    .map(|x| format!(" by rule `{x}`"))
                    .unwrap_or_default();
                outln!("  - expected: {}{want_rule}", r.case.expect);
                outln!("  + actual:   {}{got_rule}", r.decision.verdict);
                outln!("    reason:   {}", visible(&r.decision.reason));
            }
        }
        outln!("{} passed, {failed} failed", results.len() - failed);
    }
    Ok(if failed == 0 { Exit::Ok } else { Exit::Failed })
}
