//! `warden hook claude-code`: Warden as a Claude Code hook.
//!
//! Claude Code runs the hook before each tool call (PreToolUse) with a JSON payload on stdin.
//! The payload becomes one or more [`Action`]s ([`claude`]), Warden decides, and the answer
//! goes to stdout in the hook's JSON form with exit code 0:
//! `{"hookSpecificOutput":{"hookEventName":"PreToolUse","permissionDecision":"allow"|"deny"|"ask",
//! "permissionDecisionReason":"…"}}` — or nothing at all when only a policy's `allow` default
//! applied (`--on-default abstain`): Claude Code then asks as it would without Warden. Warden
//! says `allow`, which skips Claude Code's own prompt, only when a rule explicitly allows.
//!
//! Fail closed. Claude Code blocks a PreToolUse call only on exit code 2 (or a `deny`
//! answer); any other failure lets the tool run. So the hook never decides in the process
//! that answers Claude Code: a supervisor ([`supervise`]) runs the decision in a child
//! process with memory, CPU and time limits, and maps *every* way that child can end — a
//! stack overflow in a recursive policy, running out of memory, a timeout, garbage on stdout
//! — to a `deny` on stdout and exit 2. The documented settings snippet also sets Claude
//! Code's `"onFailure": "block"`, so a hook that cannot even start blocks too.
//!
//! PostToolUse (`--event post`) cannot block anything. With `--db` it decides the same action,
//! with the tool's result in `args.tool_response`, so that the result is recorded in the audit
//! log; without `--db` it does nothing.

mod claude;
mod install;
mod supervise;

use std::io::Read;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;
use warden::{Decision, Verdict};

use crate::args::{AuditArgs, PolicyArgs, builder};
use crate::error::{Error, Result};
use crate::exit::Exit;

use claude::Payload;

/// The agents `warden hook` speaks for.
#[derive(Subcommand, Debug)]
pub enum HookCommand {
    /// Claude Code: read a PreToolUse/PostToolUse payload on stdin, answer on stdout.
    ClaudeCode(ClaudeCodeArgs),
}

/// Arguments of `warden hook claude-code`.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct ClaudeCodeArgs {
    #[command(subcommand)]
    install: Option<ClaudeCodeCommand>,
    #[command(flatten)]
    hook: HookArgs,
}

/// `warden hook claude-code install`.
#[derive(Subcommand, Debug)]
enum ClaudeCodeCommand {
    /// Add (or update) the Warden hook entries in Claude Code's settings, idempotently.
    Install(install::InstallArgs),
}

/// How the hook decides.
#[derive(Args, Debug, Clone)]
pub struct HookArgs {
    #[command(flatten)]
    policy: PolicyArgs,
    #[command(flatten)]
    audit: AuditArgs,
    /// Which hook event this is; by default the payload's `hook_event_name` says.
    #[arg(long, value_enum, value_name = "EVENT")]
    event: Option<Event>,
    /// What to answer when no rule applied and the policy's default is `allow`: `abstain`
    /// (say nothing: Claude Code asks as usual), `ask`, or `deny`. A default of `deny` or
    /// `require_approval` is always answered as written.
    #[arg(long, value_enum, value_name = "ANSWER", default_value_t = OnDefault::Abstain)]
    on_default: OnDefault,
    /// Seconds the decision may take before the call is blocked (keep it below the
    /// `timeout` in Claude Code's settings).
    #[arg(long, value_name = "SECS", default_value_t = 8)]
    timeout: u64,
    /// Memory the deciding process may use, in MiB, before the call is blocked.
    #[arg(long, value_name = "MIB", default_value_t = 4096)]
    max_memory: u64,
}

/// The hook events Warden answers.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Before the tool runs: allow, deny or ask.
    Pre,
    /// After the tool ran: record only.
    Post,
}

/// `--on-default` values.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDefault {
    /// No answer: Claude Code's own permission flow decides.
    Abstain,
    /// Ask the user.
    Ask,
    /// Deny.
    Deny,
}

/// The largest payload read from stdin (a `Write` carries the whole file).
const MAX_PAYLOAD: u64 = 64 * 1024 * 1024;

/// Run a hook.
pub fn run(command: &HookCommand) -> Result<Exit> {
    let HookCommand::ClaudeCode(args) = command;
    if let Some(ClaudeCodeCommand::Install(install)) = &args.install {
        return install::run(install);
    }
    let hook = &args.hook;
    if supervise::is_worker() {
        return Ok(supervise::in_worker(|| worker(hook)));
    }
    let mut input = Vec::new();
    if let Err(e) = std::io::stdin()
        .take(MAX_PAYLOAD + 1)
        .read_to_end(&mut input)
    {
        return Ok(block(&format!(
            "cannot read the hook payload on stdin: {e}"
        )));
    }
    if input.len() as u64 > MAX_PAYLOAD {
        return Ok(block(&format!(
            "the hook payload is larger than {} MiB",
            MAX_PAYLOAD >> 20
        )));
    }
    let limits = supervise::Limits {
        timeout: Duration::from_secs(hook.timeout.max(1)),
        memory_bytes: hook.max_memory.max(64) << 20,
    };
    Ok(supervise::decide_in_child(&input, &limits))
}

/// The child: read the payload, decide, print the answer. Any failure prints a deny and
/// exits 2 (the supervisor checks both).
fn worker(hook: &HookArgs) -> Exit {
    let mut input = String::new();
    if let Err(e) = std::io::stdin()
        .take(MAX_PAYLOAD + 1)
        .read_to_string(&mut input)
    {
        return block(&format!("cannot read the hook payload on stdin: {e}"));
    }
    match std::panic::catch_unwind(|| answer(hook, &input)) {
        Ok(Ok(Some(json))) => {
            outln!("{json}");
            Exit::Ok
        }
        Ok(Ok(None)) => Exit::Ok,
        Ok(Err(reason)) => block(&reason),
        Err(_) => block("warden failed internally (panic)"),
    }
}

/// Decide the payload; `Ok(None)` when there is nothing to say (PostToolUse, or an abstained
/// default).
fn answer(hook: &HookArgs, input: &str) -> Result<Option<String>, String> {
    let payload: Payload = serde_json::from_str(input)
        .map_err(|e| format!("the hook payload is not valid Claude Code hook JSON: {e}"))?;
    let event = match hook.event {
        Some(e) => e,
        None => match payload.hook_event_name.as_deref() {
            Some("PostToolUse") => Event::Post,
            Some("PreToolUse") | None => Event::Pre,
            Some(other) => {
                return Err(format!(
                    "hook event `{}` is not one Warden answers (PreToolUse, PostToolUse)",
                    other.escape_debug()
                ));
            }
        },
    };
    if event == Event::Post && hook.audit.db.is_none() {
        // Nothing to record and nothing to answer: PostToolUse cannot block.
        return Ok(None);
    }
    let mut actions = payload.actions()?;
    // Each hook call is its own process: its rate-limit buckets live in `--db`, shared by
    // every call with the same database (as `warden check` does).
    let mut b = builder(&hook.policy, &hook.audit)
        .shared_rate_limits(true)
        .protect_binary();
    for settings in install::settings_files(payload.cwd().as_deref()) {
        b = b.protect(settings);
    }
    let warden = b.build().map_err(|e| match Error::from(e) {
        Error::Policy(load) => {
            let problems: Vec<String> = load.problems().iter().map(|p| p.one_line()).collect();
            format!("the policy did not load: {}", problems.join("; "))
        }
        Error::Audit(e) => format!("cannot open the audit log: {e}"),
        other => other.to_string(),
    })?;
    if event == Event::Post {
        // The audit record keeps `args`, so the result goes there; `context` says which event.
        for action in &mut actions {
            if let Some(map) = action.context.as_object_mut() {
                map.insert("hook_event".into(), "PostToolUse".into());
            }
            if let (Some(response), Some(map)) =
                (&payload.tool_response, action.args.as_object_mut())
            {
                map.insert("tool_response".into(), response.clone());
            }
            let decision = warden.decide(action);
            if decision.audit_seq.is_none() {
                return Err(format!("the result was not recorded: {}", decision.reason));
            }
        }
        return Ok(None);
    }
    // Every action must pass; the strictest decision answers (the first of equals). An allow
    // counts as a rule's only if every action was allowed by a rule: one path that only a
    // default allowed must not hide behind another that a rule allowed.
    let mut strictest: Option<Decision> = None;
    let mut defaulted: Option<Decision> = None;
    for action in &actions {
        let d = warden.decide(action);
        if d.is_default() && defaulted.is_none() {
            defaulted = Some(d.clone());
        }
        if strictest.as_ref().is_none_or(|s| d.verdict > s.verdict) {
            strictest = Some(d);
        }
    }
    let mut decision = strictest.ok_or("no action to decide")?;
    if decision.verdict == Verdict::Allow
        && let Some(d) = defaulted
    {
        decision = d;
    }
    let permission = match (decision.verdict, decision.is_default(), hook.on_default) {
        (Verdict::Allow, true, OnDefault::Abstain) => return Ok(None),
        (Verdict::Allow, true, OnDefault::Ask) => "ask",
        (Verdict::Allow, true, OnDefault::Deny) => "deny",
        (Verdict::Allow, _, _) => "allow",
        (Verdict::Deny, _, _) => "deny",
        (Verdict::RequireApproval, _, _) => "ask",
    };
    let mut reason = format!("Warden: {}", decision.reason);
    if let Some(rule) = &decision.rule {
        reason.push_str(&format!(" (rule {rule})"));
    } else if decision.is_default() && decision.verdict == Verdict::Allow {
        reason.push_str(" (no rule applied; --on-default)");
    }
    Ok(Some(pre_tool_use(permission, &reason)))
}

/// The PreToolUse answer Claude Code reads.
fn pre_tool_use(permission: &str, reason: &str) -> String {
    json!({
        "hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": permission,
            "permissionDecisionReason": reason,
        }
    })
    .to_string()
}

/// Block: a deny on stdout, the reason on stderr, exit 2.
fn block(reason: &str) -> Exit {
    let reason = format!("Warden denied this because it could not decide: {reason}");
    outln!("{}", pre_tool_use("deny", &reason));
    errln!("{}", crate::report::visible(&reason));
    Exit::Error
}
