//! The Rego backend: policies written for OPA, evaluated in-process by `regorus`.
//!
//! A `.rego` file must declare `package warden`. Warden reads `data.warden.decision` (an
//! object with optional booleans `allow`, `deny`, `require_approval` and a string `reason`)
//! when the policy defines it, and otherwise the booleans `data.warden.deny`,
//! `data.warden.require_approval` and `data.warden.allow` (strongest first). `input` is the
//! action as JSON. An undefined rule is not an allow; any evaluation error, and any
//! non-boolean where a boolean is expected, is an error, which the set turns into a deny.
//!
//! The policy is parsed, checked and prepared once at load. Evaluation needs `&mut Engine`,
//! so each thread keeps its own clone of the prepared engine (cloning is cheap, ~0.2 µs, and
//! happens once per thread per document), which keeps locks off the hot path.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use regorus::{Engine, Value};
use warden_core::{Action, Match, Policy, PolicyError, Verdict};

use crate::diagnostic::{Position, Problem, Source};
use crate::explain::{RuleTrace, Status};

/// The rules Warden reads, strongest first (`decision` is handled separately).
const BOOLEAN_RULES: [(&str, Verdict); 3] = [
    ("deny", Verdict::Deny),
    ("require_approval", Verdict::RequireApproval),
    ("allow", Verdict::Allow),
];

/// Keys allowed in the `decision` object; anything else is probably a typo, so it is an error.
const DECISION_KEYS: &[&str] = &["allow", "deny", "require_approval", "reason"];

/// Words that may stand before `(` without being a function call.
const KEYWORDS: &[&str] = &[
    "not", "if", "in", "some", "every", "with", "contains", "else", "as", "default", "import",
    "package", "print",
];

/// Distinguishes documents in the per-thread engine cache.
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// Which of Warden's rules the policy declares.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// `data.warden.decision`, an object.
    Decision,
    /// Some of `deny`, `require_approval`, `allow` (indexes into [`BOOLEAN_RULES`]).
    Booleans([bool; 3]),
}

/// The engine after load: parsed, checked and prepared. Never evaluated directly; threads
/// evaluate clones.
#[derive(Debug)]
struct Prepared {
    id: u64,
    engine: Engine,
}

/// A compiled Rego policy document.
#[derive(Debug)]
pub struct RegoPolicy {
    name: Arc<str>,
    prepared: Arc<Prepared>,
    shape: Shape,
    /// Whether `data.warden.reason` is declared (a string used as the reason).
    has_reason: bool,
}

thread_local! {
    /// This thread's clones of prepared engines, by document id. `Weak` so that a dropped
    /// policy (after a reload) is not kept alive; dead entries are pruned on insert.
    static ENGINES: RefCell<Vec<(u64, Weak<Prepared>, Engine)>> = const { RefCell::new(Vec::new()) };
}

impl RegoPolicy {
    /// Parse, check and prepare a `.rego` source. Every problem found is returned.
    pub(crate) fn compile(source: &Source) -> Result<RegoPolicy, Vec<Problem>> {
        let path = source.path.display().to_string();
        let name = crate::cedar::stem_name(source);
        let mut engine = Engine::new();
        engine.set_strict_builtin_errors(true);
        let package = engine
            .add_policy(path.clone(), source.text.to_string())
            .map_err(|e| vec![regorus_problem(source, &e.to_string())])?;
        if package != "data.warden" {
            let at = package_position(source);
            return Err(vec![
                Problem::new(
                    source,
                    at,
                    format!(
                        "Warden reads `data.warden`, but this file declares `package {}`",
                        package.trim_start_matches("data.")
                    ),
                )
                .with_hint("write `package warden`"),
            ]);
        }
        let mut problems = unknown_functions(source);
        let declared = |rule: &str| {
            engine
                .has_declared_rule_rooted_at(&path, rule)
                .unwrap_or(false)
        };
        let shape = if declared("decision") {
            Shape::Decision
        } else {
            Shape::Booleans(BOOLEAN_RULES.map(|(rule, _)| declared(rule)))
        };
        let has_reason = declared("reason");
        if let Shape::Booleans(b) = shape
            && !b.iter().any(|d| *d)
        {
            problems.push(
                Problem::new(
                    source,
                    package_position(source),
                    "this policy defines none of the rules Warden reads",
                )
                .with_hint("define `decision` (an object) or `deny`, `require_approval`, `allow`"),
            );
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        // Prepare once (analysis, scheduling) so that every clone starts ready to evaluate.
        // The result is ignored: with an empty input a rule may legitimately fail.
        engine.set_input(Value::new_object());
        let _ = engine.eval_rule(format!("data.warden.{}", first_rule(shape)));
        Ok(RegoPolicy {
            name,
            prepared: Arc::new(Prepared {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                engine,
            }),
            shape,
            has_reason,
        })
    }

    /// The document's name (the file stem).
    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// Rego policies deny what they do not allow.
    pub fn default_verdict(&self) -> Verdict {
        Verdict::Deny
    }

    /// Number of Warden rules the document declares (`decision` counts as one).
    pub fn rule_count(&self) -> usize {
        match self.shape {
            Shape::Decision => 1,
            Shape::Booleans(b) => b.iter().filter(|d| **d).count(),
        }
    }

    /// Run `f` with this thread's engine for this document, input already set.
    fn with_engine<T>(&self, action: &Action, f: impl FnOnce(&mut Engine) -> T) -> T {
        ENGINES.with(|cell| {
            let mut engines = cell.borrow_mut();
            let i = match engines
                .iter()
                .position(|(id, _, _)| *id == self.prepared.id)
            {
                Some(i) => i,
                None => {
                    engines.retain(|(_, weak, _)| weak.strong_count() > 0);
                    engines.push((
                        self.prepared.id,
                        Arc::downgrade(&self.prepared),
                        self.prepared.engine.clone(),
                    ));
                    engines.len() - 1
                }
            };
            let engine = &mut engines[i].2;
            engine.set_input(input(action));
            f(engine)
        })
    }

    fn error(&self, rule: &str, e: impl std::fmt::Display) -> PolicyError {
        PolicyError::new(
            &*self.name,
            rule,
            format!("Rego evaluation failed: {}", one_line(&e.to_string())),
        )
    }

    fn boolean(&self, engine: &mut Engine, rule: &str) -> Result<bool, PolicyError> {
        match engine.eval_rule(format!("data.warden.{rule}")) {
            Ok(Value::Bool(b)) => Ok(b),
            Ok(Value::Undefined) => Ok(false),
            Ok(other) => Err(self.error(
                rule,
                format!("`{rule}` must be a boolean, found {}", describe(&other)),
            )),
            Err(e) => Err(self.error(rule, e)),
        }
    }

    fn reason(
        &self,
        engine: &mut Engine,
        rule: &str,
        verdict: Verdict,
    ) -> Result<Arc<str>, PolicyError> {
        if self.has_reason {
            match engine.eval_rule("data.warden.reason".to_string()) {
                Ok(Value::String(s)) => return Ok(Arc::from(&*s)),
                Ok(Value::Undefined) => {}
                Ok(other) => {
                    return Err(self.error(
                        "reason",
                        format!("`reason` must be a string, found {}", describe(&other)),
                    ));
                }
                Err(e) => return Err(self.error("reason", e)),
            }
        }
        Ok(default_reason(verdict, rule, &self.name))
    }

    fn matched(&self, verdict: Verdict, rule: &str, reason: Arc<str>) -> Match {
        Match {
            verdict,
            policy: self.name.clone(),
            rule: Arc::from(rule),
            reason,
            obligations: Arc::from([]),
        }
    }

    fn decision(&self, engine: &mut Engine) -> Result<Option<Match>, PolicyError> {
        let value = match engine.eval_rule("data.warden.decision".to_string()) {
            Ok(Value::Undefined) => return Ok(None),
            Ok(v) => v,
            Err(e) => return Err(self.error("decision", e)),
        };
        let Value::Object(fields) = &value else {
            return Err(self.error(
                "decision",
                format!("`decision` must be an object, found {}", describe(&value)),
            ));
        };
        let mut flags = [false; 3];
        let mut reason = None;
        for (k, v) in fields.iter() {
            let key = match k {
                Value::String(s) if DECISION_KEYS.contains(&&**s) => &**s,
                other => {
                    return Err(self.error(
                        "decision",
                        format!(
                            "unknown key {} in `decision` (expected allow, deny, require_approval, reason)",
                            describe(other)
                        ),
                    ));
                }
            };
            if key == "reason" {
                match v {
                    Value::String(s) => reason = Some(Arc::from(&**s)),
                    other => {
                        return Err(self.error(
                            "decision",
                            format!(
                                "`decision.reason` must be a string, found {}",
                                describe(other)
                            ),
                        ));
                    }
                }
                continue;
            }
            let Value::Bool(b) = v else {
                return Err(self.error(
                    "decision",
                    format!("`decision.{key}` must be a boolean, found {}", describe(v)),
                ));
            };
            if let Some(i) = BOOLEAN_RULES.iter().position(|(r, _)| *r == key) {
                flags[i] = *b;
            }
        }
        Ok(BOOLEAN_RULES
            .iter()
            .zip(flags)
            .find(|(_, on)| *on)
            .map(|((_, verdict), _)| {
                let reason =
                    reason.unwrap_or_else(|| default_reason(*verdict, "decision", &self.name));
                self.matched(*verdict, "decision", reason)
            }))
    }

    /// Every Warden rule's verdict on `action`, for `explain`.
    pub(crate) fn trace(&self, action: &Action) -> Vec<RuleTrace> {
        let trace = |rule: &str, verdict: Verdict, result: Result<bool, PolicyError>| RuleTrace {
            policy: self.name.clone(),
            rule: Arc::from(rule),
            verdict,
            status: match result {
                Ok(true) => Status::Matched,
                Ok(false) => Status::NotMatched,
                Err(_) => Status::Error,
            },
            detail: match &result {
                Ok(true) => format!("`data.warden.{rule}` is true"),
                Ok(false) => format!("`data.warden.{rule}` is false or undefined"),
                Err(e) => e.message().to_string(),
            },
            decided: false,
        };
        self.with_engine(action, |engine| match self.shape {
            Shape::Decision => {
                let result = self.decision(engine);
                // The verdict `decision` produced; when it produced none, deny (the default).
                let (verdict, reason) = match &result {
                    Ok(Some(m)) => (m.verdict, Some(m.reason.to_string())),
                    _ => (Verdict::Deny, None),
                };
                let mut t = trace("decision", verdict, result.map(|m| m.is_some()));
                if let Some(reason) = reason {
                    t.detail = reason;
                }
                vec![t]
            }
            Shape::Booleans(declared) => BOOLEAN_RULES
                .iter()
                .zip(declared)
                .filter(|(_, d)| *d)
                .map(|((rule, verdict), _)| trace(rule, *verdict, self.boolean(engine, rule)))
                .collect(),
        })
    }
}

impl Policy for RegoPolicy {
    fn evaluate(&self, action: &Action) -> Result<Option<Match>, PolicyError> {
        self.with_engine(action, |engine| match self.shape {
            Shape::Decision => self.decision(engine),
            Shape::Booleans(declared) => {
                for ((rule, verdict), _) in BOOLEAN_RULES.iter().zip(declared).filter(|(_, d)| *d) {
                    if self.boolean(engine, rule)? {
                        let reason = self.reason(engine, rule, *verdict)?;
                        return Ok(Some(self.matched(*verdict, rule, reason)));
                    }
                }
                Ok(None)
            }
        })
    }
}

fn first_rule(shape: Shape) -> &'static str {
    match shape {
        Shape::Decision => "decision",
        Shape::Booleans(d) => BOOLEAN_RULES
            .iter()
            .zip(d)
            .find(|(_, on)| *on)
            .map_or("deny", |((r, _), _)| r),
    }
}

fn default_reason(verdict: Verdict, rule: &str, doc: &str) -> Arc<str> {
    let what = match verdict {
        Verdict::Allow => "allowed",
        Verdict::Deny => "denied",
        Verdict::RequireApproval => "needs approval",
    };
    Arc::from(format!("{what} by Rego rule `{rule}` of `{doc}`"))
}

/// The action as Rego `input`: `{"agent","action","tool","args","resource","context"}`
/// (absent optional fields are absent, so they are `undefined` in Rego).
fn input(action: &Action) -> Value {
    let mut map = BTreeMap::new();
    map.insert(Value::from("action"), Value::from(action.action.as_str()));
    if let Some(agent) = &action.agent {
        map.insert(Value::from("agent"), Value::from(agent.as_str()));
    }
    if let Some(tool) = &action.tool {
        map.insert(Value::from("tool"), Value::from(tool.as_str()));
    }
    if let Some(resource) = &action.resource {
        map.insert(Value::from("resource"), Value::from(resource.as_str()));
    }
    map.insert(Value::from("args"), Value::from(action.args.clone()));
    map.insert(Value::from("context"), Value::from(action.context.clone()));
    Value::from(map)
}

fn describe(v: &Value) -> String {
    let kind = match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Set(_) => "a set",
        Value::Object(_) => "an object",
        Value::Undefined => "undefined",
    };
    match v {
        Value::String(s) => format!("{kind} `{s}`"),
        Value::Bool(b) => format!("{kind} `{b}`"),
        _ => kind.to_string(),
    }
}

/// regorus messages carry a multi-line source snippet; keep the location and the message.
fn one_line(message: &str) -> String {
    match (
        location(message),
        message.lines().rev().find(|l| !l.trim().is_empty()),
    ) {
        (Some((file, line, col)), Some(last)) => format!("{file}:{line}:{col}: {}", last.trim()),
        (_, Some(last)) => last.trim().to_string(),
        _ => message.to_string(),
    }
}

/// The `file:line:col` of a regorus error (`--> file:line:col` in its message).
fn location(message: &str) -> Option<(&str, usize, usize)> {
    let at = message.find("--> ")? + 4;
    let loc = message[at..].lines().next()?;
    let (rest, col) = loc.rsplit_once(':')?;
    let (file, line) = rest.rsplit_once(':')?;
    Some((file, line.trim().parse().ok()?, col.trim().parse().ok()?))
}

/// Byte offset of a 1-based line and (character) column.
fn offset_of(text: &str, line: usize, col: usize) -> usize {
    let start: usize = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    let rest = &text[start.min(text.len())..];
    start
        + rest
            .char_indices()
            .nth(col.saturating_sub(1))
            .map_or(rest.len(), |(i, _)| i)
}

/// A load problem from a regorus error message, positioned where regorus says.
fn regorus_problem(source: &Source, message: &str) -> Problem {
    let last = message
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(message)
        .trim();
    let last = last.strip_prefix("error: ").unwrap_or(last);
    let at = match location(message) {
        Some((_, line, col)) => source.position_of(offset_of(&source.text, line, col), 0),
        None => source.position_of(0, 0),
    };
    Problem::new(source, at, format!("Rego: {last}"))
}

fn package_position(source: &Source) -> Position {
    let offset = source.text.find("package").unwrap_or(0);
    source.position_of(offset, "package".len())
}

/// Calls to functions that are neither builtins available in this build nor defined in the
/// file. regorus reports those only when the call is evaluated, which could be the first
/// time a rare action arrives; finding them at load keeps that failure out of production.
fn unknown_functions(source: &Source) -> Vec<Problem> {
    use regorus::unstable::{BUILTINS, Lexer, Source as RegoSource, TokenKind};
    let Ok(src) =
        RegoSource::from_contents(source.path.display().to_string(), source.text.to_string())
    else {
        return Vec::new();
    };
    let mut lexer = Lexer::new(&src);
    let mut tokens = Vec::new();
    while let Ok(t) = lexer.next_token() {
        if matches!(t.0, TokenKind::Eof) {
            break;
        }
        tokens.push(t);
    }
    // Dotted names followed by `(`: (name, line, col, starts a line).
    let mut calls: Vec<(String, usize, usize, bool)> = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if !matches!(tokens[i].0, TokenKind::Ident) {
            i += 1;
            continue;
        }
        let first = &tokens[i].1;
        // A name after `.` is a field of something else, not the start of a call name.
        let after_dot =
            i > 0 && tokens[i - 1].1.text() == "." && matches!(tokens[i - 1].0, TokenKind::Symbol);
        let mut name = first.text().to_string();
        let mut j = i + 1;
        while j + 1 < tokens.len()
            && tokens[j].1.text() == "."
            && matches!(tokens[j + 1].0, TokenKind::Ident)
        {
            name.push('.');
            name.push_str(tokens[j + 1].1.text());
            j += 2;
        }
        if !after_dot && j < tokens.len() && tokens[j].1.text() == "(" {
            calls.push((
                name,
                first.line as usize,
                first.col as usize,
                first.col == 1,
            ));
        }
        i = j;
    }
    let defined: Vec<&str> = calls.iter().filter(|c| c.3).map(|c| c.0.as_str()).collect();
    calls
        .iter()
        .filter(|(name, ..)| {
            !KEYWORDS.contains(&name.as_str())
                && !name.starts_with("data.")
                && !BUILTINS.contains_key(name.as_str())
                && !defined.contains(&name.as_str())
        })
        .map(|(name, line, col, _)| {
            let at = source.position_of(offset_of(&source.text, *line, *col), name.len());
            Problem::new(source, at, format!("unknown function `{name}`"))
                .with_hint("it is neither a builtin available in this build of Warden nor defined in this file")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<RegoPolicy, Vec<Problem>> {
        RegoPolicy::compile(&Source::new("p/warden.rego", text))
    }

    #[test]
    fn reads_boolean_rules_strongest_first() {
        let p = load("package warden\nallow if input.action == \"a\"\ndeny if input.args.x == 1\n")
            .unwrap();
        let m = p.evaluate(&Action::new("a")).unwrap().unwrap();
        assert_eq!((m.verdict, &*m.rule), (Verdict::Allow, "allow"));
        let m = p
            .evaluate(&Action::new("a").with_arg("x", 1))
            .unwrap()
            .unwrap();
        assert_eq!(m.verdict, Verdict::Deny);
        assert!(p.evaluate(&Action::new("b")).unwrap().is_none());
    }

    #[test]
    fn errors_are_errors() {
        let p = load("package warden\ndeny if to_number(input.args.n) > 5\n").unwrap();
        let e = p
            .evaluate(&Action::new("a").with_arg("n", "abc"))
            .unwrap_err();
        assert_eq!(e.rule(), "deny");
        let p = load("package warden\nallow := \"yes\"\n").unwrap();
        let e = p.evaluate(&Action::new("a")).unwrap_err();
        assert!(e.message().contains("must be a boolean"), "{e}");
    }

    #[test]
    fn load_problems_have_positions() {
        let e = load("package warden\n\nallow if {\n  input.x ==\n}\n").unwrap_err();
        assert_eq!(e[0].position().line, 5, "{}", e[0]);
        let e = load("package other\nallow := true\n").unwrap_err();
        assert!(e[0].message().contains("package other"), "{}", e[0]);
        let e = load("package warden\nallow if no_such.fn(input.x)\n").unwrap_err();
        assert_eq!(
            (e[0].position().line, e[0].position().column),
            (2, 10),
            "{}",
            e[0]
        );
        let e = load("package warden\nfoo := true\n").unwrap_err();
        assert!(e[0].message().contains("none of the rules"), "{}", e[0]);
        // Helper functions defined in the file and builtins are fine.
        load("package warden\nf(x) := x\nallow if { f(1) == count([1]); regex.match(\"a\", \"a\") }\n").unwrap();
    }

    #[test]
    fn decision_object() {
        let p = load(
            "package warden\ndecision := {\"require_approval\": true, \"reason\": \"ask\"} if input.action == \"a\"\n",
        )
        .unwrap();
        let m = p.evaluate(&Action::new("a")).unwrap().unwrap();
        assert_eq!((m.verdict, &*m.reason), (Verdict::RequireApproval, "ask"));
        assert!(p.evaluate(&Action::new("b")).unwrap().is_none());
        let p = load("package warden\ndecision := {\"dney\": true}\n").unwrap();
        assert!(p.evaluate(&Action::new("a")).is_err());
    }
}
