//! SQL as `sql:` and the intent labels read it: any text must parse or fail cleanly (never
//! panic, never overflow the stack, never run away); every kind read is one a rule can name;
//! and a statement stacked after text that parses is never hidden by that text (a string,
//! comment or dollar quote left open would swallow it).
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_core::Action;
use warden_policy::understand::{sql, understand};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = understand(&Action::new("db.query").with_arg("sql", text));
    let Ok(read) = sql::parse(text) else {
        return;
    };
    assert!(read.statements.len() <= sql::MAX_STATEMENTS);
    for s in &read.statements {
        assert!(sql::KINDS.contains(&s.kind), "{text:?}: {s:?}");
    }
    let stacked = format!("{text}\n;DROP TABLE fuzz_stacked");
    if let Ok(more) = sql::parse(&stacked) {
        assert!(
            more.statements
                .iter()
                .any(|s| s.kind == "drop" && s.tables.iter().any(|t| t == "fuzz_stacked")),
            "{text:?}: {more:?}"
        );
    }
});
