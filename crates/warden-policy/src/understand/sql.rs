//! SQL statements read from `args.sql` or `args.query` (a `db.query` action, a database MCP
//! tool), for `sql:` and the intent labels.
//!
//! Text matching on SQL is as easy to dress up as it is on shell lines: `drop table`, a `DROP`
//! after a comment, a `DELETE` inside a `WITH` clause, a statement stacked after a harmless
//! `SELECT`. So the text is parsed (`sqlparser`) and every statement of a stacked query,
//! nested data-changing statements included, is reported with its kind and tables.
//!
//! Warden does not know which database will run the text, and dialects disagree on what is a
//! comment or a string (`'\'` ends a string in PostgreSQL and not in MySQL; `/*! … */` runs in
//! MySQL and is a comment elsewhere). The text is therefore read by several dialects (generic,
//! PostgreSQL, MySQL, SQLite) and the reading is the union of what each one that parses it
//! sees: a statement any of them finds counts. MySQL's executable comments are refused
//! outright, and text no dialect parses fails closed, as an unparseable shell line does.
//!
//! Bounds: [`MAX_SQL_BYTES`] of text, [`MAX_TOKENS`] tokens (this also bounds how deep a chain
//! like `1+1+1…` nests, which the parser builds without recursion but which is dropped and
//! walked recursively), [`RECURSION_LIMIT`] levels of parser recursion and [`MAX_STATEMENTS`]
//! statements.

use std::ops::ControlFlow;

use serde::Serialize;
use sqlparser::ast::{self, Expr, ObjectName, Statement as Ast};
use sqlparser::dialect::{Dialect, GenericDialect, MySqlDialect, PostgreSqlDialect, SQLiteDialect};
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer, Whitespace};

/// Longest SQL text read, in bytes.
pub const MAX_SQL_BYTES: usize = 64 * 1024;
/// Most tokens (whitespace and comments excluded) in one SQL text.
pub const MAX_TOKENS: usize = 4 * 1024;
/// Most statements (nested ones included) in one SQL text.
pub const MAX_STATEMENTS: usize = 64;
/// Deepest parser recursion (nested expressions and subqueries).
pub const RECURSION_LIMIT: usize = 50;

/// The statement kinds a rule's `sql:` may name.
pub const KINDS: &[&str] = &[
    "select",
    "insert",
    "update",
    "delete",
    "merge",
    "create",
    "alter",
    "drop",
    "truncate",
    "grant",
    "revoke",
    "set",
    "show",
    "explain",
    "transaction",
    "use",
    "pragma",
    "attach",
    "copy",
    "call",
    "execute",
    "prepare",
    "analyze",
    "vacuum",
    "lock",
    "load",
    "other",
];

/// One statement as read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Statement {
    /// One of [`KINDS`]: the statement's leading keyword (`with … select` is `select`).
    pub kind: &'static str,
    /// Tables and other objects it names, as written (lower-cased).
    pub tables: Vec<String>,
    /// A `DELETE` or `UPDATE` with no `WHERE`, or one whose `WHERE` is true whatever the
    /// row (`WHERE 1=1`, `WHERE x = 1 OR true`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub every_row: bool,
}

/// The statements of one SQL text and the labels they suggest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sql {
    /// Every statement any dialect read, nested ones included, without repeats.
    pub statements: Vec<Statement>,
    /// Labels suggested by what was read: (label, why).
    #[serde(skip)]
    pub hints: Vec<(&'static str, String)>,
}

impl Sql {
    /// Every kind, each once, in order of first appearance.
    pub fn kinds(&self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = Vec::new();
        for s in &self.statements {
            if !out.contains(&s.kind) {
                out.push(s.kind);
            }
        }
        out
    }

    fn hint(&mut self, label: &'static str, why: impl FnOnce() -> String) {
        if !self.hints.iter().any(|(l, _)| *l == label) {
            self.hints.push((label, why()));
        }
    }
}

/// Read `text` as SQL. `Err` says why it could not be read (the caller fails closed).
pub fn parse(text: &str) -> Result<Sql, String> {
    if text.len() > MAX_SQL_BYTES {
        return Err(format!(
            "the SQL is {} bytes; the limit is {MAX_SQL_BYTES}",
            text.len()
        ));
    }
    if text.contains("/*!") {
        return Err(
            "the SQL has a MySQL executable comment (`/*!`), which some databases run and others ignore"
                .into(),
        );
    }
    let dialects: [(&str, &dyn Dialect); 4] = [
        ("generic", &GenericDialect {}),
        ("postgresql", &PostgreSqlDialect {}),
        ("mysql", &MySqlDialect {}),
        ("sqlite", &SQLiteDialect {}),
    ];
    let mut sql = Sql {
        statements: Vec::new(),
        hints: Vec::new(),
    };
    let mut first_error: Option<String> = None;
    let mut parsed_any = false;
    for (name, dialect) in dialects {
        match parse_with(dialect, text) {
            Ok(statements) => {
                parsed_any = true;
                for s in &statements {
                    read_statement(s, &mut sql)?;
                }
            }
            Err(e) => {
                first_error.get_or_insert_with(|| format!("{e} (read as {name} SQL)"));
            }
        }
    }
    if !parsed_any {
        return Err(format!(
            "the SQL could not be parsed: {}",
            first_error.unwrap_or_default()
        ));
    }
    if sql.statements.is_empty() {
        return Err("the SQL has no statement".into());
    }
    for s in sql.statements.clone() {
        match s.kind {
            "drop" | "truncate" => sql.hint("destructive", || {
                format!("SQL `{}` of {}", s.kind.to_uppercase(), names(&s.tables))
            }),
            "delete" | "update" if s.every_row => sql.hint("destructive", || {
                format!(
                    "SQL `{}` of every row of {}",
                    s.kind.to_uppercase(),
                    names(&s.tables)
                )
            }),
            "grant" => sql.hint("privilege_escalation", || "SQL `GRANT`".into()),
            _ => {}
        }
    }
    Ok(sql)
}

fn names(tables: &[String]) -> String {
    if tables.is_empty() {
        return "an unnamed object".into();
    }
    tables
        .iter()
        .map(|t| format!("`{t}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn parse_with(dialect: &dyn Dialect, text: &str) -> Result<Vec<Ast>, String> {
    let tokens = Tokenizer::new(dialect, text)
        .tokenize()
        .map_err(|e| e.to_string())?;
    // An unterminated `/*` runs to the end of the text, where this tokenizer accepts it; a
    // database rejects it. Accepted, it would hide whatever follows (the sql_statement fuzz
    // target's first finding), so it is an error here too.
    if let Some(Token::Whitespace(Whitespace::MultiLineComment(c))) = tokens.last()
        && !text.ends_with(&format!("{c}*/"))
    {
        return Err("an unterminated `/*` comment".into());
    }
    let counted = tokens
        .iter()
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .count();
    if counted > MAX_TOKENS {
        return Err(format!(
            "the SQL has {counted} tokens; the limit is {MAX_TOKENS}"
        ));
    }
    Parser::new(dialect)
        .with_recursion_limit(RECURSION_LIMIT)
        .with_tokens(tokens)
        .parse_statements()
        .map_err(|e| e.to_string())
}

/// Add `stmt` and every statement nested in it to `sql`.
fn read_statement(stmt: &Ast, sql: &mut Sql) -> Result<(), String> {
    let mut error = None;
    let _ = ast::visit_statements(stmt, |s| {
        let mut tables = Vec::new();
        let _ = ast::visit_relations(s, |r: &ObjectName| {
            push_name(&mut tables, r);
            ControlFlow::<()>::Continue(())
        });
        let (kind, every_row) = kind_of(s, &mut tables);
        flag(s, sql);
        let entry = Statement {
            kind,
            tables,
            every_row,
        };
        if !sql.statements.contains(&entry) {
            if sql.statements.len() == MAX_STATEMENTS {
                error = Some(format!("the SQL has more than {MAX_STATEMENTS} statements"));
                return ControlFlow::Break(());
            }
            sql.statements.push(entry);
        }
        ControlFlow::Continue(())
    });
    error.map_or(Ok(()), Err)
}

fn push_name(tables: &mut Vec<String>, name: &ObjectName) {
    let text = name.to_string().to_lowercase();
    if !tables.contains(&text) {
        tables.push(text);
    }
}

/// The kind of one statement, and whether it changes every row. Objects the relation visitor
/// does not see (dropped and truncated names) are added to `tables`.
fn kind_of(s: &Ast, tables: &mut Vec<String>) -> (&'static str, bool) {
    match s {
        Ast::Query(_) => ("select", false),
        Ast::Insert(_) => ("insert", false),
        Ast::Update(u) => ("update", every_row(u.selection.as_ref())),
        Ast::Delete(d) => ("delete", every_row(d.selection.as_ref())),
        Ast::Merge(_) => ("merge", false),
        Ast::Drop { names, .. } => {
            for n in names {
                push_name(tables, n);
            }
            ("drop", false)
        }
        Ast::Truncate(t) => {
            for n in &t.table_names {
                push_name(tables, &n.name);
            }
            ("truncate", false)
        }
        Ast::Grant(_) | Ast::GrantRole(_) | Ast::AlterDefaultPrivileges(_) => ("grant", false),
        Ast::Revoke(_) | Ast::RevokeRole(_) | Ast::Deny(_) => ("revoke", false),
        Ast::Explain { .. } | Ast::ExplainTable { .. } => ("explain", false),
        Ast::StartTransaction { .. }
        | Ast::Commit { .. }
        | Ast::Rollback { .. }
        | Ast::Savepoint { .. }
        | Ast::ReleaseSavepoint { .. } => ("transaction", false),
        Ast::Copy { .. } | Ast::CopyIntoSnowflake { .. } => ("copy", false),
        Ast::Call(_) => ("call", false),
        Ast::Execute { .. } => ("execute", false),
        Ast::Prepare { .. } | Ast::Deallocate { .. } => ("prepare", false),
        other => (leading_kind(other), false),
    }
}

/// The kind of the remaining statements, from their leading keyword as printed.
fn leading_kind(s: &Ast) -> &'static str {
    let text = s.to_string();
    let first = text
        .split(|c: char| !c.is_ascii_alphabetic())
        .find(|w| !w.is_empty())
        .unwrap_or("")
        .to_ascii_lowercase();
    match first.as_str() {
        "select" | "with" | "values" | "table" => "select",
        "begin" | "start" | "commit" | "rollback" | "end" => "transaction",
        "describe" | "desc" => "explain",
        "detach" => "attach",
        "exec" => "execute",
        "replace" => "insert",
        "install" => "load",
        "optimize" => "vacuum",
        w => KINDS.iter().find(|k| **k == w).copied().unwrap_or("other"),
    }
}

/// Whether a `WHERE` (or its absence) selects every row: none, or one with a top-level `OR`
/// branch (or the whole condition) that names no column.
fn every_row(selection: Option<&Expr>) -> bool {
    let Some(e) = selection else { return true };
    let mut branches = vec![e];
    let mut i = 0;
    while i < branches.len() {
        match branches[i] {
            Expr::BinaryOp {
                left,
                op: ast::BinaryOperator::Or,
                right,
            } => {
                branches.swap_remove(i);
                branches.push(left);
                branches.push(right);
            }
            Expr::Nested(inner) => branches[i] = inner,
            _ => i += 1,
        }
    }
    branches.into_iter().any(|b| !names_a_column(b))
}

/// Whether a column is named anywhere in `e` (subqueries and function arguments included):
/// `EXISTS (SELECT 1)` and `random() < 2` name none. A condition that names a column can still
/// hold for every row (`id = id`, an uncorrelated `EXISTS`): that is not seen.
fn names_a_column(e: &Expr) -> bool {
    ast::visit_expressions(e, |x| match x {
        Expr::Identifier(_) | Expr::CompoundIdentifier(_) => ControlFlow::Break(()),
        _ => ControlFlow::Continue(()),
    })
    .is_break()
}

/// Functions that read files or run programs on the database server.
const SERVER_FILE_READERS: &[&str] = &[
    "pg_read_file",
    "pg_read_binary_file",
    "pg_ls_dir",
    "lo_import",
    "load_file",
];
const SERVER_RUNNERS: &[&str] = &["xp_cmdshell", "load_extension", "sys_exec", "sys_eval"];
/// Tables that hold database credentials.
const CREDENTIAL_TABLES: &[&str] = &[
    "pg_shadow",
    "pg_authid",
    "pg_catalog.pg_shadow",
    "pg_catalog.pg_authid",
    "mysql.user",
    "sys.sql_logins",
];

/// Labels one statement suggests beyond its kind.
fn flag(s: &Ast, sql: &mut Sql) {
    match s {
        Ast::Copy {
            target: ast::CopyTarget::Program { .. },
            ..
        } => sql.hint("remote_code", || {
            "SQL `COPY … PROGRAM` runs a program on the database server".into()
        }),
        Ast::Execute { name: Some(n), .. } if function_in(n, SERVER_RUNNERS) => {
            sql.hint("remote_code", || {
                format!("SQL `EXECUTE {n}` runs a program on the database server")
            });
        }
        Ast::CreateRole(_) | Ast::AlterRole { .. } => sql.hint("privilege_escalation", || {
            "SQL creating or altering a role".into()
        }),
        _ => {}
    }
    let _ = ast::visit_relations(s, |r| {
        let name = r.to_string().to_lowercase();
        if CREDENTIAL_TABLES.contains(&name.as_str()) {
            sql.hint("credential_access", || {
                format!("SQL reading `{name}`, which holds password hashes")
            });
        }
        ControlFlow::<()>::Continue(())
    });
    let _ = ast::visit_expressions(s, |e| {
        if let Expr::Function(f) = e {
            if function_in(&f.name, SERVER_RUNNERS) {
                sql.hint("remote_code", || {
                    format!(
                        "SQL calling `{}`, which runs code on the database server",
                        f.name
                    )
                });
            } else if function_in(&f.name, SERVER_FILE_READERS) {
                sql.hint("credential_access", || {
                    format!("SQL calling `{}`, which reads server files", f.name)
                });
            }
        }
        ControlFlow::<()>::Continue(())
    });
}

fn function_in(name: &ObjectName, list: &[&str]) -> bool {
    let text = name.to_string().to_lowercase();
    let last = text.rsplit('.').next().unwrap_or(&text);
    list.contains(&last.trim_matches(|c| c == '"' || c == '`' || c == '[' || c == ']'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<&'static str> {
        parse(text).unwrap().kinds()
    }

    #[test]
    fn stacked_statements_are_all_read() {
        assert_eq!(kinds("SELECT 1; DROP TABLE users"), ["select", "drop"]);
        let sql = parse("select * from a join b on a.id = b.id").unwrap();
        assert_eq!(sql.statements[0].tables, ["a", "b"]);
    }

    #[test]
    fn where_decides_every_row() {
        assert!(parse("DELETE FROM t").unwrap().statements[0].every_row);
        assert!(parse("DELETE FROM t WHERE 1=1").unwrap().statements[0].every_row);
        assert!(
            parse("DELETE FROM t WHERE id = 3 OR (true)")
                .unwrap()
                .statements[0]
                .every_row
        );
        assert!(!parse("DELETE FROM t WHERE id = 3").unwrap().statements[0].every_row);
        assert!(parse("UPDATE t SET a = 1").unwrap().statements[0].every_row);
        assert!(
            !parse("UPDATE t SET a = 1 WHERE id IN (SELECT id FROM u)")
                .unwrap()
                .statements[0]
                .every_row
        );
    }

    #[test]
    fn unreadable_sql_fails() {
        assert!(parse("SELEC * FORM t").is_err());
        assert!(parse("").is_err());
        assert!(parse("/*! DROP TABLE t */ SELECT 1").is_err());
    }
}
