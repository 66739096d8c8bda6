//! `warden hook claude-code`: Warden as a Claude Code hook.
//!
//! Claude Code runs the hook before each tool call (PreToolUse) with a JSON payload on stdin.
//! The payload becomes an [`Action`] (mapping in `docs/claude-code.md`), Warden decides, and the
//! answer goes to stdout in the hook's JSON form with exit code 0:
//! `{"hookSpecificOutput":{"hookEventName":"PreToolUse","permissionDecision":"allow"|"deny"|"ask",
//! "permissionDecisionReason":"…"}}`.
//!
//! Fail closed. When anything goes wrong (unreadable stdin, bad JSON, a policy that does not
//! load) the hook prints a deny in that form *and* exits 2 with the reason on stderr: Claude
//! Code blocks a PreToolUse call on exit code 2 without reading stdout, so the call is blocked
//! even if the JSON were not understood. A panic is caught and handled the same way, because
//! any other non-zero exit would let the tool run.
//!
//! PostToolUse (`--event post`) cannot block anything. With `--db` it decides the same action,
//! with the tool's result in `args.tool_response`, so that the result is recorded in the audit
//! log; without `--db` it does nothing.

use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use warden::{Action, AuditConfig, AuditLog, Verdict, Warden};

use crate::exit;

/// The agents `warden hook` speaks for.
#[derive(Subcommand, Debug)]
pub enum HookCommand {
    /// Claude Code: read a PreToolUse/PostToolUse payload on stdin, answer on stdout.
    ClaudeCode(ClaudeCodeArgs),
}

/// Arguments of `warden hook claude-code`.
#[derive(Args, Debug)]
pub struct ClaudeCodeArgs {
    /// Policy files or directories (repeatable).
    #[arg(long = "policy", short = 'p', value_name = "PATH", required = true)]
    policies: Vec<PathBuf>,
    /// Record every decision (and, for PostToolUse, the tool's result) in this audit log.
    #[arg(long, value_name = "FILE")]
    db: Option<PathBuf>,
    /// Which hook event this is; by default the payload's `hook_event_name` says.
    #[arg(long, value_enum)]
    event: Option<Event>,
}

/// The hook events Warden answers.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Before the tool runs: allow, deny or ask.
    Pre,
    /// After the tool ran: record only.
    Post,
}

/// The part of Claude Code's hook payload Warden reads. Other fields are ignored, so that new
/// fields in later Claude Code versions do not break the hook.
#[derive(Debug, Deserialize)]
struct Payload {
    #[serde(default)]
    session_id: Option<String>,
    #[serde(default)]
    cwd: Option<String>,
    #[serde(default)]
    hook_event_name: Option<String>,
    tool_name: String,
    #[serde(default)]
    tool_input: Value,
    #[serde(default)]
    tool_response: Option<Value>,
    #[serde(default)]
    permission_mode: Option<String>,
}

/// Run a hook; returns the exit code Claude Code acts on.
pub fn run(command: &HookCommand) -> i32 {
    match command {
        HookCommand::ClaudeCode(args) => claude_code(args),
    }
}

fn claude_code(args: &ClaudeCodeArgs) -> i32 {
    let mut input = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut input) {
        return fail(&format!("cannot read the hook payload on stdin: {e}"));
    }
    let answer = std::panic::catch_unwind(|| answer(args, &input));
    match answer {
        Ok(Ok(Some(json))) => {
            let mut out = std::io::stdout().lock();
            if writeln!(out, "{json}").and_then(|()| out.flush()).is_err() {
                // Nobody heard the answer; the exit code must still block.
                return exit::ERROR;
            }
            exit::OK
        }
        Ok(Ok(None)) => exit::OK,
        Ok(Err(reason)) => fail(&reason),
        Err(_) => fail("warden failed internally (panic)"),
    }
}

/// Decide the payload; `Ok(None)` for PostToolUse (nothing to answer).
fn answer(args: &ClaudeCodeArgs, input: &str) -> Result<Option<String>, String> {
    let payload: Payload = serde_json::from_str(input)
        .map_err(|e| format!("the hook payload is not valid Claude Code hook JSON: {e}"))?;
    let event = match args.event {
        Some(e) => e,
        None => match payload.hook_event_name.as_deref() {
            Some("PostToolUse") => Event::Post,
            Some("PreToolUse") | None => Event::Pre,
            Some(other) => {
                return Err(format!(
                    "hook event `{other}` is not one Warden answers (PreToolUse, PostToolUse)"
                ));
            }
        },
    };
    if event == Event::Post && args.db.is_none() {
        // Nothing to record and nothing to answer: PostToolUse cannot block.
        return Ok(None);
    }
    let mut warden = Warden::from_paths(&args.policies).map_err(|e| {
        let problems: Vec<String> = e.problems().iter().map(ToString::to_string).collect();
        format!("the policy did not load: {}", problems.join("; "))
    })?;
    if let Some(db) = &args.db {
        let log = AuditLog::open_signed(db, AuditConfig::default(), None)
            .map_err(|e| format!("cannot open the audit log: {e}"))?;
        warden = warden.with_audit(log);
    }
    let mut action = to_action(&payload);
    if event == Event::Post {
        // The audit record keeps `args`, so the result goes there; `context` says which event.
        insert(&mut action.context, "hook_event", "PostToolUse".into());
        if let Some(response) = &payload.tool_response {
            insert(&mut action.args, "tool_response", response.clone());
        }
        let decision = warden.decide(&action);
        if decision.audit_seq.is_none() {
            return Err(format!("the result was not recorded: {}", decision.reason));
        }
        return Ok(None);
    }
    let decision = warden.decide(&action);
    let permission = match decision.verdict {
        Verdict::Allow => "allow",
        Verdict::Deny => "deny",
        Verdict::RequireApproval => "ask",
    };
    let mut reason = format!("Warden: {}", decision.reason);
    if let Some(rule) = &decision.rule {
        reason.push_str(&format!(" (rule {rule})"));
    }
    Ok(Some(pre_tool_use(permission, &reason)))
}

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
fn fail(reason: &str) -> i32 {
    let reason = format!("Warden denied this because it could not decide: {reason}");
    // Write errors are ignored: the exit code alone blocks the call.
    let _ = writeln!(std::io::stdout(), "{}", pre_tool_use("deny", &reason));
    eprintln!("{reason}");
    exit::ERROR
}

/// Map a hook payload to the action Warden judges (documented in docs/claude-code.md).
fn to_action(p: &Payload) -> Action {
    let input = match &p.tool_input {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    let cwd = p.cwd.as_deref().map(|c| normalize(Path::new(c)));
    let mut action = Action::new(String::new()).with_agent("claude-code");
    let mut args = input.clone();
    let name = p.tool_name.as_str();
    match name {
        "Bash" => action.action = "shell.exec".into(),
        "Write" | "Edit" | "MultiEdit" | "NotebookEdit" | "Read" => {
            action.action = if name == "Read" {
                "file.read"
            } else {
                "file.write"
            }
            .into();
            let raw = input
                .get("file_path")
                .or_else(|| input.get("notebook_path"))
                .and_then(Value::as_str)
                .unwrap_or("");
            let (path, inside) = resolve(raw, cwd.as_deref());
            args.insert("path".into(), path.into());
            insert(&mut action.context, "inside_project", inside.into());
        }
        "WebFetch" => {
            action.action = "http_request".into();
            args.insert("method".into(), "GET".into());
        }
        "WebSearch" => action.action = "web.search".into(),
        _ => {
            if let Some((server, tool)) = name
                .strip_prefix("mcp__")
                .and_then(|rest| rest.split_once("__"))
            {
                action.action = "mcp.tools/call".into();
                action.tool = Some(tool.to_string());
                insert(&mut action.context, "server", server.into());
            } else {
                action.action = format!("claude.{name}");
            }
        }
    }
    if action.tool.is_none() {
        action.tool = Some(name.to_string());
    }
    action.args = Value::Object(args);
    insert(&mut action.context, "claude_tool", name.into());
    if let Some(session) = &p.session_id {
        insert(&mut action.context, "session", session.as_str().into());
    }
    if let Some(cwd) = &cwd {
        insert(
            &mut action.context,
            "cwd",
            cwd.to_string_lossy().as_ref().into(),
        );
    }
    if let Some(mode) = &p.permission_mode {
        insert(&mut action.context, "permission_mode", mode.as_str().into());
    }
    action
}

fn insert(target: &mut Value, key: &str, value: Value) {
    if let Value::Object(map) = target {
        map.insert(key.to_string(), value);
    }
}

/// The absolute, normalised form of `raw` (relative paths are taken from `cwd`), and whether
/// it lies inside `cwd`. Without a cwd nothing is inside the project.
fn resolve(raw: &str, cwd: Option<&Path>) -> (String, bool) {
    let path = Path::new(raw);
    let absolute = match cwd {
        Some(cwd) if !path.is_absolute() => cwd.join(path),
        _ => path.to_path_buf(),
    };
    let normal = normalize(&absolute);
    let inside = !raw.is_empty()
        && normal.is_absolute()
        && cwd.is_some_and(|c| c.is_absolute() && normal.starts_with(c));
    (normal.to_string_lossy().into_owned(), inside)
}

/// Remove `.` and resolve `..` by the text alone (the file may not exist yet). `..` never
/// climbs above the root, so `/project/../../etc` is `/etc`.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() && !path.is_absolute() {
                    out.push("..");
                }
                if out.as_os_str().is_empty() && path.is_absolute() {
                    out.push("/");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(tool: &str, input: Value) -> Payload {
        Payload {
            session_id: Some("s1".into()),
            cwd: Some("/home/u/proj".into()),
            hook_event_name: Some("PreToolUse".into()),
            tool_name: tool.into(),
            tool_input: input,
            tool_response: None,
            permission_mode: None,
        }
    }

    #[test]
    fn paths_are_normalised_and_placed() {
        let cwd = Some(Path::new("/home/u/proj"));
        assert_eq!(
            resolve("/home/u/proj/src/a.rs", cwd),
            ("/home/u/proj/src/a.rs".into(), true)
        );
        assert_eq!(
            resolve("src/./b.rs", cwd),
            ("/home/u/proj/src/b.rs".into(), true)
        );
        assert_eq!(
            resolve("/home/u/proj/../other/x", cwd),
            ("/home/u/other/x".into(), false)
        );
        assert_eq!(
            resolve("/home/u/project-evil/x", cwd),
            ("/home/u/project-evil/x".into(), false)
        );
        assert_eq!(
            resolve("/../../etc/passwd", cwd),
            ("/etc/passwd".into(), false)
        );
        assert_eq!(resolve("a", None), ("a".into(), false));
        assert!(!resolve("", cwd).1);
    }

    #[test]
    fn tools_map_to_actions() {
        let a = to_action(&payload("Bash", json!({"command": "ls"})));
        assert_eq!(
            (a.action.as_str(), a.arg_str("command")),
            ("shell.exec", Some("ls"))
        );
        assert_eq!(a.agent.as_deref(), Some("claude-code"));
        assert_eq!(a.context["session"], "s1");
        let a = to_action(&payload("Edit", json!({"file_path": "/etc/hosts"})));
        assert_eq!(
            (a.action.as_str(), a.arg_str("path")),
            ("file.write", Some("/etc/hosts"))
        );
        assert_eq!(a.context["inside_project"], false);
        let a = to_action(&payload("WebFetch", json!({"url": "https://x.dev/"})));
        assert_eq!(
            (a.action.as_str(), a.arg_str("method")),
            ("http_request", Some("GET"))
        );
        let a = to_action(&payload("mcp__git_hub__create_issue", json!({})));
        assert_eq!(a.action, "mcp.tools/call");
        assert_eq!(a.tool.as_deref(), Some("create_issue"));
        assert_eq!(a.context["server"], "git_hub");
        let a = to_action(&payload("Glob", json!({"pattern": "*"})));
        assert_eq!(a.action, "claude.Glob");
        let a = to_action(&payload("Bash", json!("not an object")));
        assert_eq!(a.args, json!({}));
    }
}
