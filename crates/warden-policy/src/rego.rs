//! The Rego backend: policies written for OPA, evaluated in-process by `regorus`.
//!
//! A `.rego` file must declare `package warden`. Warden reads `data.warden.decision` (an
//! object with optional booleans `allow`, `deny`, `require_approval` and a string `reason`)
//! when the policy defines it, and otherwise the booleans `data.warden.deny`,
//! `data.warden.require_approval` and `data.warden.allow` (strongest first). `input` is the
//! action as JSON, plus `input.understood` (the parsed commands, paths, SQL kinds and intent
//! labels, see [`crate::understand::reading`]) when the file mentions `understood` anywhere;
//! an action that cannot be read is then an error, which denies (a Rego rule over an
//! undefined field would silently not fire). An undefined rule is not an allow; any evaluation error, and any
//! non-boolean where a boolean is expected, is an error, which the set turns into a deny.
//!
//! The policy is parsed, checked and prepared once at load. Evaluation needs `&mut Engine`,
//! so each thread keeps its own clone of the prepared engine (cloning is cheap, ~0.2 µs, and
//! happens once per thread per document), which keeps locks off the hot path.
//!
//! The request is the agent's, so one evaluation must not be able to take the process down:
//! recursion (which regorus does not detect for functions, and which overflows the stack) is
//! rejected at load; evaluation has a time limit (regorus checks it cooperatively as it
//! works); and the builtins that can allocate without bound in one step from small input
//! (`numbers.range`, `numbers.range_step`, `replace`, `strings.replace_n`, `bits.lsh`) are
//! replaced by versions that refuse results over the limits first. Brackets nested deeper than
//! the limit are refused before the parser sees them.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use regorus::unstable::{Lexer, Source as RegoSource, Token, TokenKind};
use regorus::utils::limits::ExecutionTimerConfig;
use regorus::{Engine, Value};
use warden_core::{Action, Match, Policy, PolicyError, Verdict};

use crate::backend::Backend;
use crate::diagnostic::{Position, Problem};
use crate::explain::{RuleTrace, Status};
use crate::limits::Limits;
use crate::source::{self, Source, Watched};

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

/// Builtins of this build that Warden refuses at load: they read numbers from strings with
/// arbitrary precision (`units.parse("1e99999999")` never finishes), and a string can come
/// from the agent.
const REFUSED: &[&str] = &[
    "units.parse",
    "units.parse_bytes",
    "json.filter",
    "json.remove",
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
    sources: [Watched; 1],
    /// The file mentions `understood`: `input` carries the action's reading.
    reads: bool,
    /// The file mentions `drift`: an action without a measured `context.drift` is an error
    /// (an undefined field would silently make a rule over it not fire).
    drifts: bool,
}

thread_local! {
    /// This thread's clones of prepared engines, by document id. `Weak` so that a dropped
    /// policy (after a reload) is not kept alive; dead entries are pruned on insert.
    static ENGINES: RefCell<Vec<(u64, Weak<Prepared>, Engine)>> = const { RefCell::new(Vec::new()) };
}

impl RegoPolicy {
    /// Parse, check and prepare a `.rego` source. Every problem found is returned.
    pub(crate) fn compile(source: &Source, limits: &Limits) -> Result<RegoPolicy, Vec<Problem>> {
        let path = source.path.display().to_string();
        let name = source.stem();
        if let Some(at) = source::nesting_too_deep(&source.text, "#", limits.max_nesting_depth) {
            return Err(vec![source::too_deep(source, at, limits)]);
        }
        let literals = limits.rego_max_literal_nesting;
        if let Some(at) = source::brackets_too_deep(&source.text, "#", b"[{", literals) {
            return Err(vec![Problem::new(
                source,
                source.position_of(at, 1),
                format!("`[` and `{{` nest deeper than {literals} levels"),
            )
            .with_hint("regorus takes time exponential in this nesting to parse; name the inner values with rules")]);
        }
        let mut engine = Engine::new();
        engine.set_strict_builtin_errors(true);
        engine.set_execution_timer_config(ExecutionTimerConfig {
            limit: limits.rego_time_limit,
            // A clock read every 32 units of work keeps the overhead small and the overrun short.
            check_interval: NonZeroU32::new(32).expect("not zero"),
        });
        bounded_builtins(&mut engine, limits);
        // regorus' parser recurses once per unary minus: `- - - … 1` must stop here.
        let tokens = tokens(source);
        if let Some(at) = minus_run(&tokens, limits.max_nesting_depth) {
            return Err(vec![Problem::new(
                source,
                source.position_of(source.offset_of(at.line as usize, at.col as usize), 1),
                format!("more than {} unary `-` in a row", limits.max_nesting_depth),
            )]);
        }
        if let Some(t) = tokens.iter().find(|t| huge_exponent(&t.0, t.1.text())) {
            return Err(vec![Problem::new(
                source,
                source.position_of(
                    source.offset_of(t.1.line as usize, t.1.col as usize),
                    t.1.text().len(),
                ),
                format!("the number `{}` has an exponent beyond ±1000", t.1.text()),
            )]);
        }
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
        let mut problems = unknown_functions(source, &tokens);
        problems.extend(structure(source, &tokens, &mut engine, limits));
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
        let prepare = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = engine.eval_rule(format!("data.warden.{}", first_rule(shape)));
        }));
        if let Err(panic) = prepare {
            return Err(vec![Problem::new(
                source,
                source.position_of(0, 0),
                format!(
                    "regorus panicked preparing this policy: {}",
                    panic_message(panic.as_ref())
                ),
            )]);
        }
        Ok(RegoPolicy {
            name,
            prepared: Arc::new(Prepared {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                engine,
            }),
            shape,
            has_reason,
            sources: [Watched::File(source.path.to_path_buf())],
            reads: crate::understand::mentions_reading(&source.text),
            drifts: source.text.contains(crate::DRIFT_CONTEXT),
        })
    }

    /// Run `f` with this thread's engine for this document, input already set.
    ///
    /// A panic inside regorus (it has some: an error message about a number too large to
    /// print panics) is caught here: the thread's engine, possibly left half-way, is thrown
    /// away, and the panic's message is returned, which denies.
    fn with_engine<T>(&self, input: Value, f: impl FnOnce(&mut Engine) -> T) -> Result<T, String> {
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
            engine.set_input(input);
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(engine))) {
                Ok(t) => Ok(t),
                Err(panic) => {
                    engines.swap_remove(i);
                    Err(panic_message(panic.as_ref()))
                }
            }
        })
    }

    /// The action as `input`, with its reading when the policy uses it.
    fn input(&self, action: &Action) -> Result<Value, PolicyError> {
        if self.drifts {
            crate::require_drift(action)
                .map_err(|why| PolicyError::new(&*self.name, crate::DRIFT_CONTEXT, why))?;
        }
        let mut input = input(action);
        if self.reads {
            let reading = crate::understand::reading(action).map_err(|why| {
                self.error("understood", format!("the action could not be read: {why}"))
            })?;
            if let Ok(map) = input.as_object_mut() {
                map.insert(
                    Value::from(crate::understand::READING_KEY),
                    Value::from(reading),
                );
            }
        }
        Ok(input)
    }

    fn panicked(&self, message: &str) -> PolicyError {
        self.error("evaluation", format!("regorus panicked: {message}"))
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
}

impl Backend for RegoPolicy {
    fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// Number of Warden rules the document declares (`decision` counts as one).
    fn rule_count(&self) -> usize {
        match self.shape {
            Shape::Decision => 1,
            Shape::Booleans(b) => b.iter().filter(|d| **d).count(),
        }
    }

    fn sources(&self) -> &[Watched] {
        &self.sources
    }

    /// Every Warden rule's verdict on `action`.
    fn trace(&self, action: &Action) -> Vec<RuleTrace> {
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
        let input = match self.input(action) {
            Ok(input) => input,
            Err(e) => {
                let rule = e.rule().to_owned();
                return vec![trace(&rule, Verdict::Deny, Err(e))];
            }
        };
        self.with_engine(input, |engine| match self.shape {
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
        .unwrap_or_else(|m| vec![trace("evaluation", Verdict::Deny, Err(self.panicked(&m)))])
    }
}

impl Policy for RegoPolicy {
    fn evaluate(&self, action: &Action) -> Result<Option<Match>, PolicyError> {
        let input = self.input(action)?;
        self.with_engine(input, |engine| match self.shape {
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
        .unwrap_or_else(|m| Err(self.panicked(&m)))
    }
}

/// The text of a panic's payload, when it has one.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_string())
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
        Some((_, line, col)) => source.position_of(source.offset_of(line, col), 0),
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
fn unknown_functions(source: &Source, tokens: &[Token]) -> Vec<Problem> {
    use regorus::unstable::BUILTINS;
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
                && (!BUILTINS.contains_key(name.as_str()) || REFUSED.contains(&name.as_str()))
                && !defined.contains(&name.as_str())
        })
        .map(|(name, line, col, _)| {
            let at = source.position_of(source.offset_of(*line, *col), name.len());
            Problem::new(source, at, format!("unknown function `{name}`"))
                .with_hint("it is neither a builtin available in this build of Warden nor defined in this file")
        })
        .collect()
}

/// The file's tokens (regorus' own lexer; it stops at the first token it cannot read, which
/// the parser has then already reported).
fn tokens(source: &Source) -> Vec<Token> {
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
    tokens
}

/// A number literal such as `0e88888888`: regorus computes it exactly, which never ends.
fn huge_exponent(kind: &TokenKind, text: &str) -> bool {
    let exponent = |exp: &str| exp.trim_start_matches(['+', '-']).parse::<u32>().ok();
    matches!(kind, TokenKind::Number)
        && text
            .split_once(['e', 'E'])
            .is_some_and(|(_, exp)| exponent(exp).is_none_or(|e| e > 1000))
}

/// Where a run of more than `max` consecutive `-` tokens starts, if there is one.
fn minus_run(tokens: &[Token], max: usize) -> Option<&regorus::unstable::Span> {
    let mut run = 0;
    for (i, t) in tokens.iter().enumerate() {
        run = if is_symbol(t, "-") { run + 1 } else { 0 };
        if run > max {
            return Some(&tokens[i + 1 - run].1);
        }
    }
    None
}

fn is_symbol(t: &Token, text: &str) -> bool {
    matches!(t.0, TokenKind::Symbol) && t.1.text() == text
}

/// Checks on the parsed module that keep evaluation bounded: the rule limit, no imports of
/// `data` (every reference to the policy's own rules must be visible to the recursion check),
/// no recursion, and literal `sprintf` formats (a format from the input could ask for a
/// padding width of billions).
fn structure(
    source: &Source,
    tokens: &[Token],
    engine: &mut Engine,
    limits: &Limits,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    let at_span = |line: u32, col: u32, len: usize| {
        source.position_of(source.offset_of(line as usize, col as usize), len)
    };
    // (name, head token start, rule start, rule end) for every rule and function.
    let mut rules: Vec<(String, u32, u32, u32)> = Vec::new();
    for module in engine.get_modules() {
        for import in &module.imports {
            let text = import.refr.span().text();
            if text == "data" || text.starts_with("data.") || text.starts_with("data[") {
                problems.push(
                    Problem::new(
                        source,
                        at_span(import.span.line, import.span.col, import.span.text().len()),
                        format!("`import {text}`: Warden's Rego policies cannot import `data`"),
                    )
                    .with_hint("refer to the rules of this file by name"),
                );
            }
        }
        for rule in &module.policy {
            let (span, head) = match rule.as_ref() {
                regorus::unstable::Rule::Spec { span, head, .. } => {
                    let refr = match head {
                        regorus::unstable::RuleHead::Compr { refr, .. }
                        | regorus::unstable::RuleHead::Set { refr, .. }
                        | regorus::unstable::RuleHead::Func { refr, .. } => refr,
                    };
                    (span, refr.span())
                }
                regorus::unstable::Rule::Default { span, refr, .. } => (span, refr.span()),
            };
            let name = head
                .text()
                .split(['.', '['])
                .next()
                .unwrap_or_default()
                .to_string();
            rules.push((name, head.start, span.start, span.end));
        }
    }
    if rules.len() > limits.max_rules_per_document {
        problems.push(
            Problem::new(
                source,
                source.position_of(0, 0),
                format!(
                    "the file defines {} rules and functions; the limit is {}",
                    rules.len(),
                    limits.max_rules_per_document
                ),
            )
            .with_hint("split it into several files"),
        );
        return problems;
    }
    for (i, t) in tokens.iter().enumerate() {
        if matches!(t.0, TokenKind::Ident)
            && t.1.text() == "sprintf"
            && tokens.get(i + 1).is_some_and(|n| is_symbol(n, "("))
            && !tokens
                .get(i + 2)
                .is_some_and(|n| matches!(n.0, TokenKind::String | TokenKind::RawString))
        {
            problems.push(
                Problem::new(
                    source,
                    at_span(t.1.line, t.1.col, "sprintf".len()),
                    "the format of `sprintf` must be a string literal",
                )
                .with_hint("a format taken from the input could ask for an enormous padding width"),
            );
        }
    }
    problems.extend(recursion(source, tokens, &rules, limits.max_nesting_depth));
    problems
}

/// Every reference from one rule to another, by name, and a problem for each cycle. Any
/// identifier naming a rule counts (`with f as g` included), and `data.warden` without a rule
/// name counts as a reference to every rule.
fn recursion(
    source: &Source,
    tokens: &[Token],
    rules: &[(String, u32, u32, u32)],
    max_depth: usize,
) -> Vec<Problem> {
    let names: HashSet<&str> = rules.iter().map(|r| r.0.as_str()).collect();
    let mut edges: HashMap<&str, HashSet<&str>> = HashMap::new();
    for (name, head, start, end) in rules {
        let out = edges.entry(name.as_str()).or_default();
        let body = tokens
            .iter()
            .enumerate()
            .filter(|(_, t)| t.1.start >= *start && t.1.start < *end && t.1.start != *head);
        for (i, t) in body {
            if !matches!(t.0, TokenKind::Ident) || (i > 0 && is_symbol(&tokens[i - 1], ".")) {
                continue;
            }
            let text = t.1.text();
            if text == "data" {
                let warden = tokens.get(i + 1).is_some_and(|n| is_symbol(n, "."))
                    && tokens.get(i + 2).is_some_and(|n| n.1.text() == "warden");
                if !warden {
                    continue;
                }
                let named = tokens.get(i + 3).is_some_and(|n| is_symbol(n, "."))
                    && tokens
                        .get(i + 4)
                        .is_some_and(|n| matches!(n.0, TokenKind::Ident));
                match named {
                    true => {
                        if let Some(target) = names.get(tokens[i + 4].1.text()) {
                            out.insert(target);
                        }
                    }
                    false => out.extend(names.iter().copied()),
                }
            } else if let Some(target) = names.get(text) {
                out.insert(target);
            }
        }
    }
    // Depth-first search for a cycle; one problem per rule found on a cycle. Finished rules
    // also get their depth (the longest chain of rules below them): regorus evaluates a chain
    // recursively, so a long acyclic chain overflows the stack as surely as a cycle.
    let mut depth: HashMap<&str, usize> = HashMap::new();
    let mut too_deep = false;
    let head_of = |n: &str| rules.iter().find(|r| r.0 == n).map_or(0, |r| r.1);
    let mut problems = Vec::new();
    let mut done: HashSet<&str> = HashSet::new();
    let mut reported: HashSet<&str> = HashSet::new();
    let mut ordered: Vec<&str> = rules.iter().map(|r| r.0.as_str()).collect();
    ordered.dedup();
    for start in ordered {
        if done.contains(start) {
            continue;
        }
        // An explicit stack: (node, its successors not yet visited); `path` is the current chain.
        let mut path: Vec<&str> = vec![start];
        let mut stack: Vec<Vec<&str>> = vec![
            edges
                .get(start)
                .map(|e| e.iter().copied().collect())
                .unwrap_or_default(),
        ];
        while let Some(next) = stack.last_mut() {
            match next.pop() {
                None => {
                    let n = path.pop().unwrap_or_default();
                    let below = edges
                        .get(n)
                        .into_iter()
                        .flatten()
                        .filter_map(|m| depth.get(m))
                        .max()
                        .copied()
                        .unwrap_or(0);
                    depth.insert(n, below + 1);
                    // One such problem says it all: every rule above it is deeper still.
                    if below + 1 > max_depth && !too_deep && reported.insert(n) {
                        too_deep = true;
                        problems.push(
                            Problem::new(
                                source,
                                source.position_of(head_of(n) as usize, n.len()),
                                format!("`{n}` depends on a chain of more than {max_depth} rules"),
                            )
                            .with_hint("regorus evaluates such chains recursively; flatten them"),
                        );
                    }
                    done.insert(n);
                    stack.pop();
                }
                Some(n) if done.contains(n) => {}
                Some(n) => {
                    if let Some(at) = path.iter().position(|p| *p == n) {
                        let cycle = &path[at..];
                        if reported.insert(n) {
                            let head = head_of(n);
                            let chain: Vec<&str> = cycle.iter().copied().chain([n]).collect();
                            problems.push(
                                Problem::new(
                                    source,
                                    source.position_of(head as usize, n.len()),
                                    format!("`{n}` is recursive ({})", chain.join(" → ")),
                                )
                                .with_hint("Rego forbids recursion, and Warden refuses it at load rather than at the first request that reaches it"),
                            );
                        }
                        continue;
                    }
                    path.push(n);
                    stack.push(
                        edges
                            .get(n)
                            .map(|e| e.iter().copied().collect())
                            .unwrap_or_default(),
                    );
                }
            }
        }
    }
    problems
}

/// Replace the builtins that can allocate without bound in one step with versions that
/// compute the size of their result first and refuse it over the limits. (regorus consults
/// extensions before builtins.)
fn bounded_builtins(engine: &mut Engine, limits: &Limits) {
    let max_range = limits.rego_max_range;
    let max_string = limits.rego_max_string_bytes;
    let add = |engine: &mut Engine, name: &str, nargs: u8, f: Box<dyn regorus::Extension>| {
        // Cannot fail: each name is added once, to a fresh engine.
        let _ = engine.add_extension(name.to_string(), nargs, f);
    };
    add(
        engine,
        "numbers.range",
        2,
        Box::new(move |args: Vec<Value>| {
            let [from, to] = integers(&args, "numbers.range")?;
            let step = if to >= from { 1 } else { -1 };
            range(from, to, step, max_range, "numbers.range")
        }),
    );
    add(
        engine,
        "numbers.range_step",
        3,
        Box::new(move |args: Vec<Value>| {
            let name = "numbers.range_step";
            let [from, to, step] = integers(&args, name)?;
            if step <= 0 {
                anyhow::bail!("{name}: step must be a positive integer");
            }
            range(
                from,
                to,
                if to >= from { step } else { -step },
                max_range,
                name,
            )
        }),
    );
    add(
        engine,
        "replace",
        3,
        Box::new(move |args: Vec<Value>| {
            let (s, old, new) = (
                string(&args[0], "replace")?,
                string(&args[1], "replace")?,
                string(&args[2], "replace")?,
            );
            Ok(Value::from(bounded_replace(
                s, old, new, max_string, "replace",
            )?))
        }),
    );
    add(
        engine,
        "strings.replace_n",
        2,
        Box::new(move |args: Vec<Value>| {
            let name = "strings.replace_n";
            let Value::Object(patterns) = &args[0] else {
                anyhow::bail!("{name}: the first argument must be an object");
            };
            let mut s = string(&args[1], name)?.to_string();
            for (k, v) in patterns.iter() {
                let (Value::String(old), Value::String(new)) = (k, v) else {
                    anyhow::bail!("{name} expects string keys and values in the pattern object");
                };
                s = bounded_replace(&s, old, new, max_string, name)?;
            }
            Ok(Value::from(s))
        }),
    );
    // regorus reads numbers in strings with arbitrary precision: `1e99999999` becomes a
    // 300-million-bit integer, which takes longer than any time limit (a builtin is not
    // interrupted). These read JSON numbers as serde_json does instead (64-bit).
    add(
        engine,
        "to_number",
        1,
        Box::new(|args: Vec<Value>| match &args[0] {
            Value::Null => Ok(Value::from(0u64)),
            Value::Bool(b) => Ok(Value::from(u64::from(*b))),
            Value::Number(_) => Ok(args[0].clone()),
            Value::String(s) => match serde_json::from_str::<serde_json::Value>(s) {
                Ok(n @ serde_json::Value::Number(_)) => Ok(Value::from(n)),
                _ => anyhow::bail!("to_number: could not parse string as number"),
            },
            other => anyhow::bail!(
                "to_number: expected bool/number/string/null, found {}",
                describe(other)
            ),
        }),
    );
    add(
        engine,
        "json.unmarshal",
        1,
        Box::new(|args: Vec<Value>| {
            let text = string(&args[0], "json.unmarshal")?;
            match serde_json::from_str::<serde_json::Value>(text) {
                Ok(v) => Ok(Value::from(v)),
                Err(e) => anyhow::bail!("json.unmarshal: could not deserialize json: {e}"),
            }
        }),
    );
    add(
        engine,
        "json.is_valid",
        1,
        Box::new(|args: Vec<Value>| {
            let text = string(&args[0], "json.is_valid")?;
            Ok(Value::from(
                serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok(),
            ))
        }),
    );
    add(
        engine,
        "bits.lsh",
        2,
        Box::new(move |args: Vec<Value>| {
            let [x, shift] = integers(&args, "bits.lsh")?;
            let shifted = u32::try_from(shift)
                .ok()
                .and_then(|s| i128::from(x).checked_shl(s))
                .filter(|v| v >> shift.clamp(0, 127) == i128::from(x));
            match shifted {
                Some(v) => Ok(Value::from(v)),
                None => anyhow::bail!("bits.lsh: the result does not fit in 128 bits"),
            }
        }),
    );
}

/// The first `N` arguments as integers (regorus checks the count before calling).
fn integers<const N: usize>(args: &[Value], name: &str) -> anyhow::Result<[i64; N]> {
    let mut out = [0; N];
    for (slot, v) in out.iter_mut().zip(args) {
        *slot = integer(v, name)?;
    }
    Ok(out)
}

fn integer(v: &Value, name: &str) -> anyhow::Result<i64> {
    match v {
        Value::Number(n) if n.is_integer() => match n.as_i64() {
            Some(i) => Ok(i),
            None => anyhow::bail!("{name}: operand is too large"),
        },
        Value::Number(_) => anyhow::bail!("{name}: operand must be integer"),
        other => anyhow::bail!("{name}: expected a number, found {}", describe(other)),
    }
}

fn string<'v>(v: &'v Value, name: &str) -> anyhow::Result<&'v str> {
    match v {
        Value::String(s) => Ok(s),
        other => anyhow::bail!("{name}: expected a string, found {}", describe(other)),
    }
}

/// `from`, `from + step`, … up to and including `to` when a step lands on it.
fn range(from: i64, to: i64, step: i64, max: usize, name: &str) -> anyhow::Result<Value> {
    let span = (i128::from(to) - i128::from(from)).unsigned_abs();
    let count = span / step.unsigned_abs() as u128 + 1;
    if count > max as u128 {
        anyhow::bail!("{name} would produce {count} numbers; the limit is {max}");
    }
    let values: Vec<Value> = (0..count as i128)
        .map(|i| Value::from(i128::from(from) + i * i128::from(step)))
        .collect();
    Ok(Value::from(values))
}

/// `s` with every `old` replaced by `new` (as Go's `strings.ReplaceAll`: an empty `old`
/// matches before every character and at the end), refused when longer than `max` bytes.
fn bounded_replace(
    s: &str,
    old: &str,
    new: &str,
    max: usize,
    name: &str,
) -> anyhow::Result<String> {
    let matches = if old.is_empty() {
        s.chars().count() + 1
    } else {
        s.matches(old).count()
    };
    let len =
        (s.len() as u128 - (matches * old.len()) as u128) + matches as u128 * new.len() as u128;
    if len > max as u128 {
        anyhow::bail!("{name} would produce a string of {len} bytes; the limit is {max}");
    }
    Ok(s.replace(old, new))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<RegoPolicy, Vec<Problem>> {
        RegoPolicy::compile(&Source::new("p/warden.rego", text), &Limits::default())
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
