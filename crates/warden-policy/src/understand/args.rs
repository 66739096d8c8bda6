//! Which arguments of an action are paths, and each path's two readings.
//!
//! Paths come from `args.path`, `args.file_path`, `args.paths[]` and the words of a parsed
//! shell line; they are read the way Warden's protected-file gate reads them
//! ([`crate::paths`]), against the action's `context.cwd`.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;
use warden_core::Action;

use super::shell::Line;
use crate::paths;

/// Most path arguments read from one action (shell words included).
pub const MAX_PATHS: usize = 256;

/// One path argument in its two readings (see [`crate::paths`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathArg {
    /// As written.
    pub raw: String,
    /// `~` expanded, made absolute against `context.cwd`, `.` and `..` removed by the text.
    pub lexical: PathBuf,
    /// Symlinks followed where they exist (the kernel's reading).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved: Option<PathBuf>,
    /// Whether the action writes it (a redirection target, `tee`, a copy's destination, a
    /// `file.write` action).
    pub written: bool,
}

pub(crate) fn cwd(action: &Action) -> Option<PathBuf> {
    action
        .context
        .get("cwd")
        .and_then(Value::as_str)
        .map(|c| paths::normalize(Path::new(&paths::expand_home(c))))
        .filter(|c| c.is_absolute())
}

/// Whether the action is one that writes the files it names.
fn writes(action: &Action) -> bool {
    let a = action.action.as_str();
    a.contains("write") || a.contains("edit") || a.contains("create")
}

/// Every path argument: `args.path`, `args.file_path`, `args.paths[]`, then the paths of the
/// parsed command.
pub(crate) fn path_args(
    action: &Action,
    line: Option<&Result<Line, String>>,
) -> Result<Vec<PathArg>, String> {
    let mut raw: Vec<(String, bool)> = Vec::new();
    let written = writes(action);
    for field in ["path", "file_path"] {
        match action.args.get(field) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => raw.push((s.clone(), written)),
            Some(_) => return Err(format!("`args.{field}` is not a string")),
        }
    }
    match action.args.get("paths") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for item in items {
                let s = item
                    .as_str()
                    .ok_or_else(|| "`args.paths` has an entry that is not a string".to_string())?;
                raw.push((s.to_string(), written));
            }
        }
        Some(_) => return Err("`args.paths` is not a list".into()),
    }
    if let Some(line) = line {
        let line = line.as_ref().map_err(Clone::clone)?;
        raw.extend(shell_paths(line));
    }
    if raw.len() > MAX_PATHS {
        return Err(format!(
            "the action names {} paths; the limit is {MAX_PATHS}",
            raw.len()
        ));
    }
    let cwd = cwd(action);
    let mut out: Vec<PathArg> = Vec::with_capacity(raw.len());
    for (text, written) in raw {
        let expanded = paths::expand_home(&text);
        let path = Path::new(&expanded);
        if paths::components_within_limits(path).is_none() {
            return Err(format!("the path `{text}` is too long to read"));
        }
        // Without a working directory a relative path stays relative: labels can still read
        // it (`.env`), `paths:` cannot place it and fails closed.
        let lexical = match (&cwd, path.is_absolute()) {
            (None, false) => paths::normalize(path),
            (cwd, _) => paths::absolute(path, cwd.as_deref()),
        };
        if let Some(same) = out.iter_mut().find(|p| p.lexical == lexical) {
            same.written |= written;
            continue;
        }
        out.push(PathArg {
            raw: text,
            lexical,
            resolved: None,
            written,
        });
    }
    Ok(out)
}

/// Programs whose operands are files (every operand, not only those that look like paths).
const FILE_COMMANDS: &[&str] = &[
    "rm", "rmdir", "cat", "cp", "mv", "touch", "mkdir", "ln", "tee", "head", "tail", "less",
    "more", "vi", "vim", "nvim", "nano", "emacs", "source", ".", "shred", "truncate", "stat",
    "unlink", "install", "base64", "xxd", "strings", "open",
];
/// Programs whose first operand is not a file (a mode, an owner, a pattern).
const FIRST_NOT_FILE: &[&str] = &[
    "chmod", "chown", "chgrp", "grep", "rg", "egrep", "fgrep", "sed", "awk",
];

/// The paths a parsed line names, each with whether it is written.
fn shell_paths(line: &Line) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    for c in &line.commands {
        for (t, w) in &c.redirects {
            if !t.starts_with("/dev/") && !t.contains('$') {
                out.push((t.clone(), *w));
            }
        }
        if c.wrapper || c.unknown {
            // A wrapper's operands are the wrapped command's words, read with that command.
            continue;
        }
        let n = c.name.as_str();
        let all_files = FILE_COMMANDS.contains(&n);
        let skip = usize::from(FIRST_NOT_FILE.contains(&n));
        let last = c.operands.len().saturating_sub(1);
        for (k, o) in c.operands.iter().enumerate().skip(skip) {
            if o.is_empty() || o.contains("$(") || o.contains("://") || o.starts_with('$') {
                continue;
            }
            if all_files || looks_like_path(o) {
                let written = n == "tee"
                    || matches!(n, "touch" | "mkdir" | "truncate" | "shred")
                    || (matches!(n, "cp" | "mv" | "ln" | "install" | "rsync")
                        && k == last
                        && k > 0)
                    || (n == "sed" && c.has(&['i'], &["in-place"]));
                out.push((o.clone(), written));
            }
        }
        if n == "dd" {
            for a in &c.args {
                if let Some(p) = a.strip_prefix("of=") {
                    out.push((p.to_string(), true));
                } else if let Some(p) = a.strip_prefix("if=") {
                    out.push((p.to_string(), false));
                }
            }
        }
        for a in c.args.iter().filter(|a| a.starts_with("--")) {
            if let Some((_, v)) = a.split_once('=')
                && looks_like_path(v)
                && !v.contains("://")
            {
                out.push((v.to_string(), false));
            }
        }
    }
    out.retain(|(p, _)| !p.starts_with("/dev/") || block_device(p));
    out
}

fn looks_like_path(s: &str) -> bool {
    s.starts_with('/')
        || s.starts_with("./")
        || s.starts_with("../")
        || s.starts_with('~')
        || s == "."
        || s == ".."
        || s.starts_with(".env")
        || (s.contains('/') && !s.contains(' ') && !s.contains(':'))
}

pub(crate) fn block_device(t: &str) -> bool {
    [
        "/dev/sd",
        "/dev/nvme",
        "/dev/hd",
        "/dev/vd",
        "/dev/xvd",
        "/dev/mmcblk",
        "/dev/disk",
    ]
    .iter()
    .any(|d| t.starts_with(d))
}
