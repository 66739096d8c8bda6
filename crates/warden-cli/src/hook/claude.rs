//! Claude Code's hook payload, and the actions Warden judges for it (the mapping is
//! documented in `docs/claude-code.md`).
//!
//! The payload's bytes come from Claude Code, but its `tool_input` was written by the model:
//! every field is hostile. So a path is judged as the file that will really be touched (`~`
//! expanded, relative to `cwd`, `..` resolved), *every* path field is judged (a payload with
//! both `notebook_path` and `file_path` is judged on both, strictest verdict wins), and an MCP
//! tool name that can be split more than one way is an error, not a guess.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};
use warden::Action;
use warden::protect::{absolute, expand_home, normalize, resolve as follow_links};
use warden_core::json_kind;

/// The part of Claude Code's hook payload Warden reads. Other fields are ignored, so that new
/// fields in later Claude Code versions do not break the hook.
#[derive(Debug, Deserialize)]
pub struct Payload {
    #[serde(default)]
    pub session_id: Option<String>,
    #[serde(default)]
    pub cwd: Option<String>,
    #[serde(default)]
    pub hook_event_name: Option<String>,
    pub tool_name: String,
    #[serde(default)]
    pub tool_input: Value,
    #[serde(default)]
    pub tool_response: Option<Value>,
    #[serde(default)]
    pub permission_mode: Option<String>,
}

/// The `tool_input` fields that name the file a tool touches.
const PATH_FIELDS: &[&str] = &["file_path", "notebook_path", "path"];

impl Payload {
    /// The project directory: `cwd`, normalised (relative to the hook's own directory if
    /// Claude Code ever sent a relative one).
    pub fn cwd(&self) -> Option<PathBuf> {
        self.cwd
            .as_deref()
            .filter(|c| !c.is_empty())
            .map(|c| absolute(Path::new(&expand_home(c)), None))
    }

    /// The actions to judge: one, or one per distinct path when the input names several.
    pub fn actions(&self) -> Result<Vec<Action>, String> {
        let input = match &self.tool_input {
            Value::Object(map) => map.clone(),
            Value::Null => Map::new(),
            other => {
                return Err(format!(
                    "tool_input must be a JSON object, not {}",
                    json_kind(other)
                ));
            }
        };
        let cwd = self.cwd();
        let mut base = Action::new(String::new()).with_agent("claude-code");
        let name = self.tool_name.as_str();
        let file_tool = matches!(
            name,
            "Write" | "Edit" | "MultiEdit" | "NotebookEdit" | "Read" | "Glob" | "Grep" | "LS"
        );
        match name {
            "Bash" => base.action = "shell.exec".into(),
            "Write" | "Edit" | "MultiEdit" | "NotebookEdit" => base.action = "file.write".into(),
            "Read" => base.action = "file.read".into(),
            "WebFetch" => base.action = "http_request".into(),
            "WebSearch" => base.action = "web.search".into(),
            _ => match mcp_name(name)? {
                Some((server, tool)) => {
                    base.action = "mcp.tools/call".into();
                    base.tool = Some(tool.to_string());
                    insert(&mut base.context, "server", server.into());
                }
                None => base.action = format!("claude.{name}"),
            },
        }
        if base.tool.is_none() {
            base.tool = Some(name.to_string());
        }
        insert(&mut base.context, "claude_tool", name.into());
        if let Some(session) = &self.session_id {
            insert(&mut base.context, "session", session.as_str().into());
        }
        if let Some(cwd) = &cwd {
            insert(
                &mut base.context,
                "cwd",
                cwd.to_string_lossy().as_ref().into(),
            );
        }
        if let Some(mode) = &self.permission_mode {
            insert(&mut base.context, "permission_mode", mode.as_str().into());
        }
        let mut args = input.clone();
        if name == "WebFetch" {
            args.insert("method".into(), "GET".into());
        }
        base.args = Value::Object(args);
        if !file_tool {
            return Ok(vec![base]);
        }
        // Every path field, each judged; the same file named twice is judged once.
        let mut paths: Vec<(String, bool)> = Vec::new();
        for field in PATH_FIELDS {
            match input.get(*field) {
                None | Some(Value::Null) => {}
                Some(Value::String(raw)) => {
                    let resolved = resolve(raw, cwd.as_deref());
                    if !paths.contains(&resolved) {
                        paths.push(resolved);
                    }
                }
                Some(other) => {
                    return Err(format!(
                        "tool_input.{field} must be a string, not {}",
                        json_kind(other)
                    ));
                }
            }
        }
        if paths.is_empty() {
            // A write tool without a path: judged on an empty one (never inside the project).
            paths.push((String::new(), false));
        }
        Ok(paths
            .into_iter()
            .map(|(path, inside)| {
                let mut a = base.clone();
                insert(&mut a.args, "path", path.into());
                insert(&mut a.context, "inside_project", inside.into());
                a
            })
            .collect())
    }
}

/// `mcp__<server>__<tool>` split into (server, tool); `None` for a name that is not an MCP
/// tool. A name with more than one `__` after the prefix could be split several ways
/// (`mcp__fs__read__write_file`: server `fs`, tool `read__write_file`, or server `fs__read`,
/// tool `write_file`), and a guess would let `read_*` rules judge a write: an error.
fn mcp_name(name: &str) -> Result<Option<(&str, &str)>, String> {
    let Some(rest) = name.strip_prefix("mcp__") else {
        return Ok(None);
    };
    let parts: Vec<&str> = rest.split("__").collect();
    match parts.as_slice() {
        [server, tool] if !server.is_empty() && !tool.is_empty() => Ok(Some((server, tool))),
        _ => Err(format!(
            "the MCP tool name `{}` cannot be split into one server and one tool \
             (expected mcp__<server>__<tool> with no `__` inside either)",
            name.escape_debug()
        )),
    }
}

/// The file `raw` names (`~` expanded, relative paths taken from `cwd`, `..` resolved as the
/// tool does, then symlinks followed as the operating system will), and whether that file lies
/// inside `cwd` — by where it really is, so a link in the project that points out of it leads
/// out of it. Without a cwd nothing is inside the project.
pub fn resolve(raw: &str, cwd: Option<&Path>) -> (String, bool) {
    let expanded = expand_home(raw);
    let path = Path::new(&expanded);
    let normal = match cwd {
        Some(c) => absolute(path, Some(c)),
        None if path.is_absolute() => absolute(path, None),
        None => return (normalize(path).to_string_lossy().into_owned(), false),
    };
    // The tool tidies `..` first; the kernel then follows links. A chain that loops is
    // outside (it will not be written anyway).
    let real = follow_links(&normal);
    let root = cwd.map(|c| follow_links(c).unwrap_or_else(|| c.to_path_buf()));
    let inside = !raw.is_empty()
        && real.as_ref().is_some_and(|r| {
            root.as_ref()
                .is_some_and(|c| c.is_absolute() && r.starts_with(c))
        });
    let shown = real.unwrap_or(normal);
    (shown.to_string_lossy().into_owned(), inside)
}

fn insert(target: &mut Value, key: &str, value: Value) {
    if let Value::Object(map) = target {
        map.insert(key.to_string(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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

    fn one(tool: &str, input: Value) -> Action {
        let mut v = payload(tool, input).actions().unwrap();
        assert_eq!(v.len(), 1);
        v.remove(0)
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
    fn a_link_in_the_project_that_leads_out_is_outside() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let proj = root.join("proj");
        std::fs::create_dir_all(proj.join("src")).unwrap();
        std::fs::create_dir_all(root.join("home/.aws")).unwrap();
        std::os::unix::fs::symlink(root.join("home"), proj.join("homelink")).unwrap();
        let (path, inside) = resolve("homelink/.bashrc", Some(&proj));
        assert_eq!(path, root.join("home/.bashrc").display().to_string());
        assert!(!inside);
        let (path, inside) = resolve("src/main.rs", Some(&proj));
        assert_eq!(path, proj.join("src/main.rs").display().to_string());
        assert!(inside);
    }

    #[test]
    fn home_is_the_home_directory_not_a_folder_in_the_project() {
        let home = std::env::var("HOME").unwrap();
        let (path, inside) = resolve("~/.ssh/authorized_keys", Some(Path::new("/home/u/proj")));
        assert_eq!(path, format!("{home}/.ssh/authorized_keys"));
        assert!(!inside || home.starts_with("/home/u/proj"));
    }

    #[test]
    fn tools_map_to_actions() {
        let a = one("Bash", json!({"command": "ls"}));
        assert_eq!(
            (a.action.as_str(), a.arg_str("command")),
            ("shell.exec", Some("ls"))
        );
        assert_eq!(a.agent.as_deref(), Some("claude-code"));
        assert_eq!(a.context["session"], "s1");
        let a = one("Edit", json!({"file_path": "/etc/hosts"}));
        assert_eq!(
            (a.action.as_str(), a.arg_str("path")),
            ("file.write", Some("/etc/hosts"))
        );
        assert_eq!(a.context["inside_project"], false);
        let a = one("WebFetch", json!({"url": "https://x.dev/"}));
        assert_eq!(
            (a.action.as_str(), a.arg_str("method")),
            ("http_request", Some("GET"))
        );
        let a = one("mcp__git_hub__create_issue", json!({}));
        assert_eq!(a.action, "mcp.tools/call");
        assert_eq!(a.tool.as_deref(), Some("create_issue"));
        assert_eq!(a.context["server"], "git_hub");
        let a = one("Glob", json!({"pattern": "*"}));
        assert_eq!(a.action, "claude.Glob");
    }

    #[test]
    fn every_path_field_is_judged() {
        let v = payload(
            "NotebookEdit",
            json!({"notebook_path": "nb.ipynb", "file_path": "/etc/cron.d/x"}),
        )
        .actions()
        .unwrap();
        let paths: Vec<_> = v.iter().map(|a| a.arg_str("path").unwrap()).collect();
        assert_eq!(paths, ["/etc/cron.d/x", "/home/u/proj/nb.ipynb"]);
        let same = payload(
            "Edit",
            json!({"file_path": "a.rs", "path": "/home/u/proj/a.rs"}),
        );
        assert_eq!(same.actions().unwrap().len(), 1);
    }

    #[test]
    fn ambiguous_or_malformed_input_is_an_error() {
        assert!(
            payload("mcp__fs__read__write_file", json!({}))
                .actions()
                .is_err()
        );
        assert!(payload("mcp____x", json!({})).actions().is_err());
        assert!(payload("Bash", json!("not an object")).actions().is_err());
        assert!(
            payload("Write", json!({"file_path": ["a", "b"]}))
                .actions()
                .is_err()
        );
    }
}
