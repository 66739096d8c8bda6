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
    Explain(Box<ExplainArgs>),
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
    /// An existing Warden database: the memory step then looks up quarantine releases and
    /// provenance records in it (read only: nothing is written, no release is spent).
    #[arg(long, value_name = "FILE")]
    db: Option<PathBuf>,
    /// The key that signs provenance records (default: `<db>.key`).
    #[arg(long, value_name = "FILE", requires = "db")]
    signing_key: Option<PathBuf>,
    /// Explain a `memory.read` as a reader that requires provenance sees it (as the MCP
    /// proxy's `--require-provenance`).
    #[arg(long)]
    require_provenance: bool,
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
    let mut warden = crate::model::with_model(builder, &args.model)?.build()?;
    // The memory guard explain consults (the one every door builds, with the model's second
    // reading when `--model` is on), plus the database's records when one is named (opened,
    // never created: explain writes nothing) and the reader's provenance requirement.
    let mut guard = warden
        .take_memory()
        .unwrap_or_else(|| warden::memory::MemoryGuard::new(warden_mcp::proxy::memory_detector()))
        .require_provenance(args.require_provenance);
    if let Some(db) = &args.db {
        let db = crate::args::DbArgs { db: db.clone() };
        let path = db.existing()?;
        let key = args
            .signing_key
            .clone()
            .unwrap_or_else(|| warden_audit::default_key_path(path));
        guard = guard.with_database_read_only(path, warden_audit::load_signing_key(&key)?);
    }
    warden = warden.with_memory(guard);
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
        if let Some(v) = &e.verification {
            print_verification(v);
        }
        if let Some(m) = &e.memory {
            print_memory(m);
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

/// The verifiers a `verify:` rule would ask: `verify: quorum 2 of 3` and one line each.
fn print_verification(v: &serde_json::Value) {
    let list = v["verifiers"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut head = format!(
        "verify: quorum {} of {}",
        v["quorum"].as_u64().unwrap_or(0),
        list.len()
    );
    if let Some(max) = v["max_drift"].as_f64() {
        head.push_str(&format!(" (local_model: max_drift {max:.3})"));
    }
    outln!("{head}");
    for one in list {
        let reason = one["reason"].as_str().unwrap_or("");
        outln!(
            "  {}: {} ({})",
            visible(one["verifier"].as_str().unwrap_or("?")),
            one["vote"].as_str().unwrap_or("?"),
            visible(reason)
        );
    }
}

/// What the memory guard would do: `memory: quarantine (warden.memory-quarantine): …`.
fn print_memory(m: &serde_json::Value) {
    let text = |k: &str| m[k].as_str().unwrap_or("").to_string();
    if m["action"] == "memory.read" {
        outln!(
            "memory: read, provenance {}: {}",
            if m["require_provenance"] == true {
                "required"
            } else {
                "not required"
            },
            visible(&text("checks"))
        );
        for t in m["texts"].as_array().map(Vec::as_slice).unwrap_or_default() {
            outln!(
                "  {}: {}",
                t["hash"].as_str().unwrap_or("?"),
                visible(t["why"].as_str().unwrap_or(""))
            );
        }
        return;
    }
    let mut line = format!("memory: {}", text("step"));
    if let Some(rule) = m["rule"].as_str() {
        line.push_str(&format!(" ({rule})"));
    }
    line.push_str(&format!(": {}", text("why")));
    outln!("{}", visible(&line));
    if m["scanned"] == true {
        let findings: Vec<&str> = m["findings"]
            .as_array()
            .map(|a| a.iter().filter_map(serde_json::Value::as_str).collect())
            .unwrap_or_default();
        outln!(
            "  scanned {} text{}: {}; source {}",
            m["texts"].as_u64().unwrap_or(0),
            if m["texts"] == 1 { "" } else { "s" },
            if findings.is_empty() {
                "no findings".to_string()
            } else {
                visible(&findings.join(", ")).to_string()
            },
            visible(&text("source"))
        );
    }
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
