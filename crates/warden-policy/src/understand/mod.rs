//! What an action does, read from its arguments: the commands of a shell line, the paths it
//! touches, the SQL statements it runs and the intent labels all three suggest.
//!
//! Rules used to see arguments as text, and text is easy to dress up (`/bin/rm -fr x` for
//! `rm -rf x`, `/srv/app/../../etc/passwd` for a file under `/srv/app`). Rules that say
//! `commands:`, `paths:`, `sql:` or `intents:` are judged on this reading instead. It is computed
//! lazily, once per action and policy document, and only when such a rule is reached: a policy
//! without them never pays for it.

pub mod args;
pub mod intent;
pub mod shell;
pub mod sql;

use std::cell::OnceCell;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;
use warden_core::Action;

use crate::paths;
pub use args::{MAX_PATHS, PathArg};
pub use intent::Intent;
pub use shell::{Command, Line};
pub use sql::Sql;

/// The reading of one action, for `explain` and the `understand` helper.
#[derive(Debug, Clone, Serialize)]
pub struct Understanding {
    /// The programs of `args.command`, in order (wrappers included); `None` when the action
    /// has no command.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commands: Option<Vec<String>>,
    /// Path arguments, lexical reading.
    pub paths: Vec<PathBuf>,
    /// The statements of `args.sql` (or a database action's `args.query`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sql: Option<Vec<sql::Statement>>,
    /// Intent labels with what suggested each.
    pub intents: Vec<Intent>,
    /// Why the action could not be read (a rule that needs the reading then fails closed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Read `action` as the `commands:`, `paths:` and `intents:` constraints do.
pub fn understand(action: &Action) -> Understanding {
    let facts = Facts::new(action);
    let mut u = Understanding {
        commands: None,
        paths: Vec::new(),
        sql: None,
        intents: Vec::new(),
        error: None,
    };
    match facts.line() {
        Some(Ok(line)) => {
            u.commands = Some(
                line.commands
                    .iter()
                    .filter(|c| !c.name.is_empty())
                    .map(|c| c.name.clone())
                    .collect(),
            );
        }
        Some(Err(e)) => u.error = Some(e.clone()),
        None => {}
    }
    match facts.lexical_paths() {
        Ok(p) => u.paths = p.iter().map(|p| p.lexical.clone()).collect(),
        Err(e) => u.error = u.error.or_else(|| Some(e.clone())),
    }
    match facts.sql() {
        Some(Ok(sql)) => u.sql = Some(sql.statements.clone()),
        Some(Err(e)) => u.error = u.error.or_else(|| Some(e.clone())),
        None => {}
    }
    if let Ok(i) = facts.intents() {
        u.intents = i.clone();
    }
    u
}

/// One action's reading, each part computed on first use.
pub(crate) struct Facts<'a> {
    action: &'a Action,
    line: OnceCell<Option<Result<Line, String>>>,
    lexical: OnceCell<Result<Vec<PathArg>, String>>,
    resolved: OnceCell<Result<Vec<PathArg>, String>>,
    sql: OnceCell<Option<Result<Sql, String>>>,
    intents: OnceCell<Result<Vec<Intent>, String>>,
}

impl<'a> Facts<'a> {
    pub fn new(action: &'a Action) -> Self {
        Facts {
            action,
            line: OnceCell::new(),
            lexical: OnceCell::new(),
            resolved: OnceCell::new(),
            sql: OnceCell::new(),
            intents: OnceCell::new(),
        }
    }

    pub fn action(&self) -> &'a Action {
        self.action
    }

    /// The parsed `args.command`; `None` when the action has none (or names a language other
    /// than a shell).
    pub fn line(&self) -> Option<&Result<Line, String>> {
        self.line
            .get_or_init(|| command_text(self.action).map(|t| t.and_then(|t| shell::parse(&t))))
            .as_ref()
    }

    /// Path arguments, lexical reading only (no file system access).
    pub fn lexical_paths(&self) -> &Result<Vec<PathArg>, String> {
        self.lexical
            .get_or_init(|| args::path_args(self.action, self.line()))
    }

    /// Path arguments with symlinks resolved too.
    pub fn paths(&self) -> &Result<Vec<PathArg>, String> {
        self.resolved.get_or_init(|| {
            let mut list = self.lexical_paths().clone()?;
            let cwd = args::cwd(self.action);
            for p in &mut list {
                if !p.lexical.is_absolute() {
                    return Err(format!(
                        "the path `{}` is relative and the action has no absolute `context.cwd`",
                        p.raw
                    ));
                }
                let joined = paths::joined(Path::new(&paths::expand_home(&p.raw)), cwd.as_deref());
                p.resolved = Some(paths::resolve(&joined).ok_or_else(|| {
                    format!(
                        "the path `{}` could not be resolved (a symlink loop or too long)",
                        p.raw
                    )
                })?);
            }
            Ok(list)
        })
    }

    /// The parsed SQL; `None` when the action has none (see [`sql_text`]).
    pub fn sql(&self) -> Option<&Result<Sql, String>> {
        self.sql
            .get_or_init(|| sql_text(self.action).map(|t| t.and_then(|t| sql::parse(&t))))
            .as_ref()
    }

    pub fn intents(&self) -> &Result<Vec<Intent>, String> {
        self.intents.get_or_init(|| {
            let line = match self.line() {
                Some(Err(e)) => return Err(e.clone()),
                Some(Ok(l)) => Some(l),
                None => None,
            };
            let sql = match self.sql() {
                Some(Err(e)) => return Err(e.clone()),
                Some(Ok(s)) => Some(s),
                None => None,
            };
            let paths = self.lexical_paths().as_deref().unwrap_or(&[]);
            Ok(intent::label(self.action, line, paths, sql))
        })
    }
}

/// The shell text of an action: `args.command` (a string, or a list of words quoted back into
/// one), unless `args.language` names something other than a shell.
fn command_text(action: &Action) -> Option<Result<String, String>> {
    let command = action.args.get("command")?;
    if let Some(lang) = action.arg_str("language")
        && !matches!(lang, "sh" | "bash" | "shell" | "zsh" | "dash")
    {
        return None;
    }
    Some(match command {
        Value::String(s) => Ok(s.clone()),
        Value::Array(words) => words
            .iter()
            .map(|w| {
                w.as_str()
                    .map(|s| format!("'{}'", s.replace('\'', "'\\''")))
                    .ok_or_else(|| "`args.command` has a word that is not a string".to_string())
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|w| w.join(" ")),
        _ => Err("`args.command` is not a string or a list of strings".into()),
    })
}

/// Words that mark an action (or its tool) as a database's, whose `args.query` is SQL.
const DATABASE_WORDS: &[&str] = &[
    "sql", "db", "database", "postgres", "mysql", "mariadb", "sqlite", "duckdb",
];

/// The SQL text of an action: `args.sql`, or `args.query` when the action or its tool is a
/// database's (its name contains one of [`DATABASE_WORDS`]): a web search's `query` is not
/// SQL, and reading it as SQL would fail closed on every search.
fn sql_text(action: &Action) -> Option<Result<String, String>> {
    let (field, value) = match action.args.get("sql") {
        Some(v) if !v.is_null() => ("sql", v),
        _ => {
            let v = action.args.get("query").filter(|v| !v.is_null())?;
            let names = [Some(action.action.as_str()), action.tool.as_deref()];
            let database = names.into_iter().flatten().any(|n| {
                let n = n.to_ascii_lowercase();
                DATABASE_WORDS.iter().any(|w| n.contains(w))
            });
            if !database {
                return None;
            }
            ("query", v)
        }
    };
    Some(match value {
        Value::String(s) => Ok(s.clone()),
        _ => Err(format!("`args.{field}` is not a string")),
    })
}

/// The name under which Cedar (`context.understood`) and Rego (`input.understood`) see the
/// reading.
pub(crate) const READING_KEY: &str = "understood";

/// Whether a Cedar or Rego policy text refers to the reading (it is then computed for every
/// request; otherwise never).
pub(crate) fn mentions_reading(text: &str) -> bool {
    text.contains(READING_KEY)
}

/// The reading as Cedar and Rego see it: `{commands, paths, sql, sql_tables, intents}`, each a
/// list of strings (empty when the action has none). `commands` are every program of
/// `args.command` (a program only known at run time keeps its text, `$cmd`, which is never a
/// real name); `paths` hold both readings of every path argument (so "every path inside" and
/// "any path inside" mean what they mean in YAML); `sql` the kind of every statement.
/// `Err` when the action cannot be read: the policy then fails closed (an error, which
/// denies), as a restricting YAML rule does.
pub(crate) fn reading(action: &Action) -> Result<Value, String> {
    let facts = Facts::new(action);
    let mut commands = Vec::new();
    if let Some(line) = facts.line() {
        let line = line.as_ref().map_err(Clone::clone)?;
        for c in line.commands.iter().filter(|c| !c.name.is_empty()) {
            if !commands.contains(&c.name) {
                commands.push(c.name.clone());
            }
        }
    }
    // Both readings of each path. A path that cannot be placed (relative with no absolute
    // `context.cwd`, a symlink loop) makes the reading an error, as it makes a restricting
    // `paths:` rule deny.
    let mut paths: Vec<String> = Vec::new();
    facts.lexical_paths().as_ref().map_err(Clone::clone)?;
    let list = facts.paths().as_ref().map_err(Clone::clone)?;
    for p in list {
        let readings = [Some(p.lexical.as_path()), p.resolved.as_deref()];
        for r in readings.into_iter().flatten() {
            let r = r.to_string_lossy().into_owned();
            if !paths.contains(&r) {
                paths.push(r);
            }
        }
    }
    let (mut kinds, mut tables) = (Vec::new(), Vec::new());
    if let Some(sql) = facts.sql() {
        let sql = sql.as_ref().map_err(Clone::clone)?;
        kinds = sql.kinds();
        for s in &sql.statements {
            for t in &s.tables {
                if !tables.contains(t) {
                    tables.push(t.clone());
                }
            }
        }
    }
    let intents: Vec<&str> = facts
        .intents()
        .as_ref()
        .map_err(Clone::clone)?
        .iter()
        .map(|i| i.label)
        .collect();
    Ok(serde_json::json!({
        "commands": commands,
        "paths": paths,
        "sql": kinds,
        "sql_tables": tables,
        "intents": intents,
    }))
}
