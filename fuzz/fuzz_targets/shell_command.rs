//! Shell lines as `commands:`/`paths:`/`intents:` read them: any text must parse or fail
//! cleanly (never panic, never run away); the plain-line fast path must read a line exactly as
//! the bash grammar does; and a line handed to `sh -c` must read as `sh` followed by exactly
//! the commands of the line itself — otherwise quoting could hide a command from a rule.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_core::Action;
use warden_policy::understand::{shell, understand};

fn names(line: &shell::Line) -> Vec<(String, bool)> {
    line.commands
        .iter()
        .map(|c| (c.name.clone(), c.unknown))
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let action = Action::new("shell.exec")
        .with_arg("command", text)
        .with_context("cwd", "/srv/app");
    let _ = understand(&action);
    let parsed = shell::parse(text);
    if text.len() <= 2000 {
        assert_eq!(parsed, shell::parse_with_grammar_only(text), "{text:?}");
    }
    let Ok(line) = parsed else {
        return;
    };
    let deep = line.commands.iter().map(|c| c.depth).max().unwrap_or(0);
    // A NUL cannot be passed in an argument; a line this large or deep would hit the bounds.
    if text.contains('\0')
        || text.len() > 2000
        || deep + 2 >= shell::MAX_DEPTH
        || line.commands.len() > 200
    {
        return;
    }
    let wrapped = format!("sh -c '{}'", text.replace('\'', r"'\''"));
    let outer = match shell::parse(&wrapped) {
        Ok(outer) => outer,
        // The guard against the parser's here-document loop reads every `<<` as an operator,
        // also one inside the quotes `sh -c '…'` adds, and so refuses some wrapped lines
        // whose inner line reads: an over-refusal (a deny), never a misread.
        Err(e) if e.contains("here-document") && text.contains("<<") => return,
        Err(e) => panic!("{text:?} parses but not inside sh -c: {e}"),
    };
    let mut want = vec![("sh".to_string(), false)];
    want.extend(names(&line));
    assert_eq!(names(&outer), want, "{text:?}");
});
