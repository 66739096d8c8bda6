//! `warden hook claude-code install`: write the hook entries into Claude Code's settings, and
//! know where those settings live (so the hook can protect them from the agent).
//!
//! Idempotent: an entry whose command runs `warden … hook claude-code` is replaced in place,
//! any other hooks and settings are kept as they are, and the file is replaced atomically
//! (a crash never leaves half a settings file). The command names the binary and the policy
//! by absolute path, so the hook does not depend on `PATH` or the directory Claude Code was
//! started in.

use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::exit::Exit;

/// Arguments of `warden hook claude-code install`.
#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("scope").args(["project", "user"])))]
pub struct InstallArgs {
    /// Install for the project in DIR (`DIR/.claude/settings.json`; the default, with the
    /// current directory).
    #[arg(long, value_name = "DIR", num_args = 0..=1, default_missing_value = ".")]
    project: Option<PathBuf>,
    /// Install for every project of this user (`~/.claude/settings.json`).
    #[arg(long)]
    user: bool,
    /// The policy the hook judges with.
    #[arg(long = "policy", short = 'p', value_name = "PATH", required = true)]
    policies: Vec<PathBuf>,
    /// Record decisions (and, with a PostToolUse entry, tool results) in this audit log.
    #[arg(long, value_name = "FILE")]
    db: Option<PathBuf>,
    /// Seconds Claude Code waits for the hook (Warden's own deadline is 2 s shorter).
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    timeout: u64,
    /// Print the settings that would be written instead of writing them.
    #[arg(long)]
    dry_run: bool,
}

/// The settings files that make Claude Code run hooks for a project in `cwd`: the project's
/// shared and local settings, and the user's. An agent that could edit any of them could
/// remove Warden's hook or disable hooks altogether.
pub fn settings_files(cwd: Option<&Path>) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut projects: Vec<PathBuf> = cwd.map(Path::to_path_buf).into_iter().collect();
    if let Some(dir) = std::env::var_os("CLAUDE_PROJECT_DIR").filter(|d| !d.is_empty()) {
        projects.push(PathBuf::from(dir));
    }
    for p in projects {
        files.push(p.join(".claude/settings.json"));
        files.push(p.join(".claude/settings.local.json"));
    }
    // The user's settings: `$CLAUDE_CONFIG_DIR` when set, and `~/.claude` either way.
    let mut user_dirs: Vec<PathBuf> = Vec::new();
    if let Some(dir) = std::env::var_os("CLAUDE_CONFIG_DIR").filter(|d| !d.is_empty()) {
        user_dirs.push(PathBuf::from(dir));
    }
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        user_dirs.push(PathBuf::from(home).join(".claude"));
    }
    for dir in user_dirs {
        files.push(dir.join("settings.json"));
        files.push(dir.join("settings.local.json"));
    }
    files
}

pub fn run(args: &InstallArgs) -> Result<Exit> {
    // `shown` is the path as the user gave it, for messages; `file` is where it is written.
    let (file, shown) = if args.user {
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .ok_or_else(|| Error::msg("--user: HOME is not set"))?;
        let file = PathBuf::from(home).join(".claude/settings.json");
        (file, PathBuf::from("~/.claude/settings.json"))
    } else {
        let dir = args.project.clone().unwrap_or_else(|| PathBuf::from("."));
        (
            absolute(&dir)?.join(".claude/settings.json"),
            dir.join(".claude/settings.json"),
        )
    };
    let exe = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .map_err(|e| Error::msg(format!("cannot find the warden executable: {e}")))?;
    let mut command = vec![quote(&exe), "hook".into(), "claude-code".into()];
    for p in &args.policies {
        if !p.exists() {
            return Err(Error::msg(format!(
                "{}: no such file or directory (the hook would block every call)",
                p.display()
            )));
        }
        command.push("--policy".into());
        command.push(quote(&absolute(p)?));
    }
    if let Some(db) = &args.db {
        command.push("--db".into());
        command.push(quote(&absolute(db)?));
    }
    let timeout = args.timeout.max(3);
    command.push("--timeout".into());
    command.push((timeout - 2).to_string());
    let pre = command.join(" ");
    let post = args.db.as_ref().map(|_| format!("{pre} --event post"));

    let existing = match std::fs::read_to_string(&file) {
        Ok(text) if text.trim().is_empty() => Value::Object(Map::new()),
        Ok(text) => serde_json::from_str(&text).map_err(|e| {
            Error::msg(format!(
                "{}: not valid JSON ({e}); fix or move it, nothing was changed",
                file.display()
            ))
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Value::Object(Map::new()),
        Err(e) => return Err(Error::msg(format!("cannot read {}: {e}", file.display()))),
    };
    let mut settings = existing.clone();
    set_hook(&mut settings, "PreToolUse", Some(&pre), timeout, &file)?;
    set_hook(
        &mut settings,
        "PostToolUse",
        post.as_deref(),
        timeout,
        &file,
    )?;
    let text = serde_json::to_string_pretty(&settings).map_err(|e| Error::msg(e.to_string()))?;
    if args.dry_run {
        outln!("{text}");
        return Ok(Exit::Ok);
    }
    if settings == existing {
        outln!("{}: the Warden hook is already installed", shown.display());
        return Ok(Exit::Ok);
    }
    write_atomically(&file, &(text + "\n"))?;
    outln!(
        "{}: Warden hook installed (PreToolUse{})",
        shown.display(),
        if post.is_some() {
            " and PostToolUse"
        } else {
            ""
        }
    );
    Ok(Exit::Ok)
}

/// Put Warden's entry for `event` in `settings.hooks` (or remove it when `command` is
/// `None`), replacing an earlier Warden entry and leaving every other entry alone.
fn set_hook(
    settings: &mut Value,
    event: &str,
    command: Option<&str>,
    timeout: u64,
    file: &Path,
) -> Result<()> {
    let shape = |what: &str| {
        Error::msg(format!(
            "{}: `{what}` is not what Claude Code expects; nothing was changed",
            file.display()
        ))
    };
    let root = settings
        .as_object_mut()
        .ok_or_else(|| shape("the top level"))?;
    let hooks = root
        .entry("hooks")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or_else(|| shape("hooks"))?;
    let entries = hooks
        .entry(event)
        .or_insert_with(|| Value::Array(Vec::new()))
        .as_array_mut()
        .ok_or_else(|| shape(&format!("hooks.{event}")))?;
    let ours = |entry: &Value| {
        entry["hooks"].as_array().is_some_and(|hs| {
            hs.iter().any(|h| {
                h["command"]
                    .as_str()
                    .is_some_and(|c| c.contains(" hook claude-code"))
            })
        })
    };
    let entry = command.map(|c| {
        json!({
            "matcher": "*",
            "hooks": [{
                "type": "command",
                "command": c,
                "timeout": timeout,
                // Claude Code ≥ 2.1.295: a hook that cannot start or times out blocks.
                "onFailure": "block",
            }]
        })
    });
    match (entries.iter().position(ours), entry) {
        (Some(i), Some(e)) => entries[i] = e,
        (Some(i), None) => {
            entries.remove(i);
        }
        (None, Some(e)) => entries.push(e),
        (None, None) => {}
    }
    if entries.is_empty() {
        hooks.remove(event);
    }
    Ok(())
}

fn absolute(p: &Path) -> Result<PathBuf> {
    std::path::absolute(p)
        .map(|a| warden::protect::normalize(&a))
        .map_err(|e| Error::msg(format!("{}: {e}", p.display())))
}

/// A path as one shell word (Claude Code runs the command through a shell).
fn quote(p: &Path) -> String {
    let s = p.to_string_lossy();
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+=:@".contains(c))
    {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn write_atomically(file: &Path, text: &str) -> Result<()> {
    let dir = file.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::msg(format!("cannot create {}: {e}", dir.display())))?;
    let tmp = dir.join(format!(
        ".{}.warden-{}",
        file.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("settings"),
        std::process::id()
    ));
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, file))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Error::msg(format!("cannot write {}: {e}", file.display()))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_replaced_not_duplicated_and_others_kept() {
        let file = Path::new("s.json");
        let mut s = json!({"model": "x", "hooks": {"PreToolUse": [
            {"matcher": "Bash", "hooks": [{"type": "command", "command": "other-guard"}]},
            {"matcher": "*", "hooks": [{"type": "command", "command": "/old/warden hook claude-code --policy a"}]}
        ]}});
        set_hook(
            &mut s,
            "PreToolUse",
            Some("/new/warden hook claude-code --policy b"),
            10,
            file,
        )
        .unwrap();
        set_hook(
            &mut s,
            "PreToolUse",
            Some("/new/warden hook claude-code --policy b"),
            10,
            file,
        )
        .unwrap();
        let pre = s["hooks"]["PreToolUse"].as_array().unwrap();
        assert_eq!(pre.len(), 2);
        assert_eq!(pre[0]["hooks"][0]["command"], "other-guard");
        assert_eq!(
            pre[1]["hooks"][0]["command"],
            "/new/warden hook claude-code --policy b"
        );
        assert_eq!(pre[1]["hooks"][0]["onFailure"], "block");
        assert_eq!(s["model"], "x");
        set_hook(&mut s, "PostToolUse", None, 10, file).unwrap();
        assert!(s["hooks"].get("PostToolUse").is_none());
        assert!(set_hook(&mut json!([]), "PreToolUse", Some("x"), 10, file).is_err());
    }

    #[test]
    fn paths_are_one_shell_word() {
        assert_eq!(quote(Path::new("/usr/bin/warden")), "/usr/bin/warden");
        assert_eq!(quote(Path::new("/a b/it's")), r"'/a b/it'\''s'");
    }
}
