//! `warden exec`: run one program for an agent, if the policy allows it, under the kill switch.
//!
//! The program is judged first as a `shell.exec` action (`args.command`: the command line,
//! shell-quoted; `args.argv`: the words), exactly like a Bash call through the Claude Code
//! hook, so one policy governs both. While it runs, Warden watches the kill switch in the
//! database: a kill that stops the agent (or every agent) terminates it — SIGTERM, then
//! SIGKILL after `--kill-grace` — and `warden exec` exits 2 naming the kill. Otherwise the
//! program's own exit code is passed through (a death by signal N as 128+N, as a shell shows
//! it). Exit 1 when denied, 3 when a person must approve first; the program is not started.

use std::os::unix::process::ExitStatusExt;
use std::process::Command;

use clap::Args;
use serde_json::json;
use warden::{Action, Verdict};

use crate::args::{AuditArgs, PolicyArgs, RuntimeArgs, builder};
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::report::{self, visible};

/// Arguments of `warden exec`.
#[derive(Args, Debug)]
pub struct ExecArgs {
    #[command(flatten)]
    policy: PolicyArgs,
    #[command(flatten)]
    audit: AuditArgs,
    #[command(flatten)]
    runtime: RuntimeArgs,
    /// The agent the program runs for (the kill switch for it terminates the program).
    #[arg(long, value_name = "NAME")]
    agent: Option<String>,
    /// The program and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<String>,
}

/// A word as a POSIX shell would need it written: bare when it is plain, else single-quoted.
fn quoted(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// The action `warden exec` asks about.
fn action(agent: Option<&str>, command: &[String]) -> Action {
    let line: Vec<String> = command.iter().map(|w| quoted(w)).collect();
    let mut a = Action::new("shell.exec")
        .with_arg("command", line.join(" "))
        .with_arg("argv", json!(command))
        .with_context("door", "exec");
    // Relative paths in the command are read against the directory it will run in.
    if let Ok(cwd) = std::env::current_dir() {
        a = a.with_context("cwd", cwd.to_string_lossy().as_ref());
    }
    if let Some(agent) = agent {
        a = a.with_agent(agent);
    }
    a
}

/// `warden exec`.
pub fn run(args: &ExecArgs) -> Result<Exit> {
    let (program, rest) = args
        .command
        .split_first()
        .ok_or_else(|| Error::msg("put the program to run after `--`"))?;
    // One process, one decision: its buckets are shared through `--db` like `check`'s.
    let warden = args
        .runtime
        .apply(builder(&args.policy, &args.audit))
        .shared_rate_limits(true)
        .protect_binary()
        .build()?;
    let decision = warden.decide(&action(args.agent.as_deref(), &args.command));
    match decision.verdict {
        Verdict::Allow => {}
        Verdict::Deny | Verdict::RequireApproval => {
            errln!("{}", report::decision_text(&decision));
            return Ok(decision.verdict.into());
        }
    }
    let child = Command::new(program)
        .args(rest)
        .spawn()
        .map_err(|e| Error::msg(format!("cannot run `{}`: {e}", visible(program))))?;
    // From here the kill switch can end it; the Warden (and its watcher) lives until then.
    let child = warden.runtime().supervise(child, args.agent.as_deref());
    let status = child
        .wait()
        .map_err(|e| Error::msg(format!("cannot wait for `{}`: {e}", visible(program))))?;
    drop(warden);
    if let Some(why) = child.terminated_because() {
        return Err(Error::msg(format!(
            "`{}` was terminated: {}",
            visible(program),
            visible(&why)
        )));
    }
    let code = match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => 128 + signal,
        (None, None) => 2,
    };
    Ok(Exit::Child(u8::try_from(code).unwrap_or(2)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_for_a_shell() {
        assert_eq!(quoted("ls"), "ls");
        assert_eq!(quoted("/usr/bin/curl"), "/usr/bin/curl");
        assert_eq!(quoted("a b"), "'a b'");
        assert_eq!(quoted(""), "''");
        assert_eq!(quoted("it's"), r"'it'\''s'");
        assert_eq!(quoted("$(rm -rf /)"), "'$(rm -rf /)'");
        let a = action(Some("a1"), &["sh".into(), "-c".into(), "echo hi".into()]);
        assert_eq!(a.args["command"], "sh -c 'echo hi'");
        assert_eq!(a.args["argv"], json!(["sh", "-c", "echo hi"]));
    }
}
