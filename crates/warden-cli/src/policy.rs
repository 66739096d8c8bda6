//! `warden policy validate | explain | test`.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use warden_policy::{PolicySet, Status, testing::TestFile};

use crate::action_args::ActionArgs;
use crate::audit_args::AuditArgs;
use crate::check;
use crate::{exit, report};

/// Policy subcommands.
#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Check policy files and report every problem with file, line and column.
    Validate {
        /// Policy files or directories.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// Print a JSON summary (problems or documents).
        #[arg(long)]
        json: bool,
    },
    /// Decide an action and show every rule: matched or not, why, and which decided.
    Explain(ExplainArgs),
    /// Run a test file of actions with expected verdicts; exit 1 on any mismatch.
    Test {
        /// The test file (YAML with `policies:` and `cases:`).
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
    action: ActionArgs,
    /// Print the explanation as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: PolicyCommand) -> i32 {
    match cmd {
        PolicyCommand::Validate { paths, json } => validate(&paths, json),
        PolicyCommand::Explain(args) => explain(&args),
        PolicyCommand::Test {
            file,
            policies,
            json,
        } => test(&file, &policies, json),
    }
}

fn validate(paths: &[PathBuf], json: bool) -> i32 {
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
                        d.name(),
                        d.rule_count(),
                        if d.rule_count() == 1 { "" } else { "s" },
                        d.default_verdict()
                    );
                }
            }
            exit::OK
        }
        Err(e) => {
            if json {
                let problems: Vec<_> = e
                    .problems()
                    .iter()
                    .map(|p| {
                        serde_json::json!({
                            "file": p.file().display().to_string(),
                            "line": p.position().line,
                            "column": p.position().column,
                            "message": p.message(),
                            "hint": p.hint(),
                        })
                    })
                    .collect();
                outln!(
                    "{}",
                    report::json(&serde_json::json!({"valid": false, "problems": problems}))
                );
            } else {
                report::load_error(&e);
            }
            exit::ERROR
        }
    }
}

fn explain(args: &ExplainArgs) -> i32 {
    let (action, warden) = match check::action(&args.action).and_then(|a| {
        Ok((
            a,
            check::warden(&args.action.policies, &AuditArgs::default())?,
        ))
    }) {
        Ok(ready) => ready,
        Err(code) => return code,
    };
    let e = warden.explain(&action);
    if args.json {
        outln!("{}", report::json(&e));
    } else {
        outln!("action `{}`", action.action);
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
                t.policy,
                t.rule,
                t.verdict,
                t.detail
            );
        }
        if e.decision.rule.is_none() {
            outln!("=> {}", e.decision.reason);
        }
        outln!("{}", report::decision_text(&e.decision));
    }
    e.decision.verdict.exit_code()
}

fn test(file: &std::path::Path, overrides: &[PathBuf], json: bool) -> i32 {
    let tests = match TestFile::load(file) {
        Ok(t) => t,
        Err(e) => {
            report::load_error(&e);
            return exit::ERROR;
        }
    };
    let paths = if overrides.is_empty() {
        &tests.policies
    } else {
        &overrides.to_vec()
    };
    if paths.is_empty() {
        report::usage_error(&format!(
            "{}: no `policies:` in the test file and no --policy given",
            file.display()
        ));
        return exit::ERROR;
    }
    let set = match PolicySet::load(paths) {
        Ok(s) => s,
        Err(e) => {
            report::load_error(&e);
            return exit::ERROR;
        }
    };
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
                outln!("ok   {} => {}", r.case.name, r.decision.verdict);
            } else {
                outln!("FAIL {} ({}:{})", r.case.name, file.display(), r.case.line);
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
                outln!("    reason:   {}", r.decision.reason);
            }
        }
        outln!("{} passed, {failed} failed", results.len() - failed);
    }
    if failed == 0 { exit::OK } else { exit::DENY }
}
