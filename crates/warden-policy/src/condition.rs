//! `when:` conditions: CEL expressions compiled once at load, run per decision.
//!
//! A condition sees `action` (the action name), `args`, `context` (JSON objects), and `agent`,
//! `tool`, `resource` (strings, or null when absent). It must produce a boolean. Any error at
//! run time — a missing key, a type mismatch, a non-boolean result — is returned to the engine,
//! which fails closed (see `rule.rs`).
//!
//! CEL itself says `null == 'prod'` and `[1] == 'prod'` are simply false, so a deny rule
//! `context.env == 'prod'` would not apply when an agent sends `env: null` or a list. Warden's
//! environment makes `==`, `!=` and `in` (on lists) errors when the two sides are of different
//! types (all numbers are one type here), unless one side of `==`/`!=` is the literal `null`,
//! which is how a condition asks whether a value is absent. A parse-time macro rewrites those
//! operators into the strict functions below; the native evaluator (`fast.rs`) agrees.

use std::sync::{Arc, OnceLock};

use cel::common::ast::{CallExpr, EntryExpr, Expr, LiteralValue, MapExpr, StructExpr, operators};
use cel::common::types::{CelBool, DYN_TYPE, Kind};
use cel::common::value::{CowVal, Val};
use cel::parser::Macro;
use cel::{Context, Env, ExecutionError, IdedExpr, Program, Value};
use serde_json::Value as Json;

use warden_core::Action;

use crate::diagnostic::did_you_mean;
use crate::fast::{Fast, STRICT_EQ, STRICT_IN, STRICT_NE};

/// The variables a condition may use.
pub(crate) const VARIABLES: &[&str] = &["action", "args", "context", "agent", "tool", "resource"];

/// A compiled CEL condition.
pub(crate) struct Condition {
    program: Program,
    /// The same condition compiled natively, when its shape allows (see `fast.rs`).
    fast: Option<Fast>,
    /// Which of the optional variables the program reads, so only those are bound.
    uses: Uses,
}

#[derive(Default, Clone, Copy)]
struct Uses {
    action: bool,
    args: bool,
    context: bool,
    agent: bool,
    tool: bool,
    resource: bool,
}

impl Condition {
    /// Whether the condition reads `context` (so a value Warden computes there matters).
    pub(crate) fn reads_context(&self) -> bool {
        self.uses.context
    }
}

impl std::fmt::Debug for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Condition")
    }
}

fn env() -> &'static Arc<Env> {
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Env::stdlib();
        for (op, strict) in [
            (operators::EQUALS, STRICT_EQ),
            (operators::NOT_EQUALS, STRICT_NE),
            (operators::IN, STRICT_IN),
        ] {
            let rewrite = Macro::global(op, 2, move |helper, _, args| {
                let is_null = |e: &IdedExpr| matches!(e.expr, Expr::Literal(LiteralValue::Null));
                if strict != STRICT_IN && args.iter().any(is_null) {
                    return Ok(None);
                }
                Ok(Some(helper.next_expr(Expr::Call(CallExpr {
                    func_name: strict.to_string(),
                    target: None,
                    args: std::mem::take(args),
                }))))
            });
            env.add_macro(rewrite)
                .expect("Warden's operator macros are added once");
        }
        let dyn2 = || vec![DYN_TYPE, DYN_TYPE];
        env.add_overload(STRICT_EQ, STRICT_EQ, dyn2(), strict_eq)
            .expect("added once");
        env.add_overload(STRICT_NE, STRICT_NE, dyn2(), strict_ne)
            .expect("added once");
        env.add_overload(STRICT_IN, STRICT_IN, dyn2(), strict_in)
            .expect("added once");
        Arc::new(env)
    })
}

/// The type of a value for strict comparison: every number is one kind.
fn family(v: &dyn Val) -> Kind {
    match v.get_type().kind() {
        Kind::Int | Kind::UInt | Kind::Double => Kind::Double,
        k => k,
    }
}

fn mismatch(op: &str, a: &dyn Val, b: &dyn Val) -> ExecutionError {
    ExecutionError::function_error(
        op,
        format!(
            "cannot compare {} with {}",
            a.get_type().name(),
            b.get_type().name()
        ),
    )
}

fn strict_equal<'b, 'v>(op: &str, args: &[CowVal<'b, 'v>]) -> Result<bool, ExecutionError> {
    let [a, b] = args else {
        return Err(ExecutionError::invalid_argument_count(2, args.len()));
    };
    if family(a.as_ref()) != family(b.as_ref()) {
        return Err(mismatch(op, a.as_ref(), b.as_ref()));
    }
    Ok(a == b)
}

fn boolean<'b, 'v>(b: bool) -> CowVal<'b, 'v> {
    CowVal::owned(CelBool::from(b))
}

fn strict_eq<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    strict_equal("==", &args).map(boolean)
}

fn strict_ne<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    strict_equal("!=", &args).map(|e| boolean(!e))
}

/// `x in list`: an error when no element has `x`'s type (so `null in ['prod']` is not
/// quietly false); `key in map` is CEL's own.
fn strict_in<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let [x, coll] = args.as_slice() else {
        return Err(ExecutionError::invalid_argument_count(2, args.len()));
    };
    if coll.get_type().kind() == Kind::List
        && let Some(items) = coll.as_iterable()
    {
        let want = family(x.as_ref());
        let mut iter = items.iter();
        let (mut comparable, mut found, mut empty) = (false, false, true);
        while let Some(item) = iter.next() {
            empty = false;
            if family(item) == want {
                comparable = true;
                found |= CowVal::Borrowed(item) == *x;
            }
        }
        return match (empty, comparable) {
            (true, _) => Ok(boolean(false)),
            (false, true) => Ok(boolean(found)),
            (false, false) => Err(ExecutionError::function_error(
                "in",
                format!(
                    "no element of the list has the type of {}",
                    x.get_type().name()
                ),
            )),
        };
    }
    match coll.as_container() {
        Some(c) => c.contains(x.as_ref()).map(boolean),
        None => Err(ExecutionError::function_error(
            "in",
            format!("cannot look for a value in {}", coll.get_type().name()),
        )),
    }
}

/// A compile error: the message, and the 0-based character column within the expression.
pub(crate) struct CompileError {
    pub message: String,
    pub column: Option<usize>,
    pub hint: Option<String>,
}

impl Condition {
    pub fn compile(source: &str) -> Result<Condition, CompileError> {
        let program = env().compile(source).map_err(|errors| {
            let first = errors.errors.first();
            CompileError {
                message: first.map_or_else(
                    || "invalid CEL expression".to_string(),
                    |e| format!("invalid CEL expression: {}", e.msg),
                ),
                column: first.and_then(|e| usize::try_from(e.pos.1).ok()),
                hint: None,
            }
        })?;
        let mut free = Vec::new();
        free_variables(program.expression(), &mut Vec::new(), &mut free);
        let mut uses = Uses::default();
        for var in free {
            match var {
                "action" => uses.action = true,
                "args" => uses.args = true,
                "context" => uses.context = true,
                "agent" => uses.agent = true,
                "tool" => uses.tool = true,
                "resource" => uses.resource = true,
                unknown => {
                    return Err(CompileError {
                        message: format!("unknown variable `{unknown}` in CEL expression"),
                        column: source.find(unknown).map(|b| source[..b].chars().count()),
                        hint: Some(match did_you_mean(unknown, VARIABLES) {
                            Some(k) => format!("did you mean `{k}`?"),
                            None => format!("a condition can use {}", VARIABLES.join(", ")),
                        }),
                    });
                }
            }
        }
        let fast = crate::fast::compile(program.expression());
        Ok(Condition {
            program,
            fast,
            uses,
        })
    }

    /// Run the condition. `Err` carries a message for the decision's reason.
    pub fn eval(&self, action: &Action) -> Result<bool, String> {
        match &self.fast {
            Some(fast) => fast.eval(action),
            None => self.interpret(action),
        }
    }

    /// Run the condition in the CEL interpreter.
    fn interpret(&self, action: &Action) -> Result<bool, String> {
        let mut ctx = Context::with_env(env().clone());
        let u = self.uses;
        if u.action {
            ctx.add_variable_from_value("action", action.action.as_str());
        }
        if u.args {
            bind_json(&mut ctx, "args", &action.args)?;
        }
        if u.context {
            bind_json(&mut ctx, "context", &action.context)?;
        }
        if u.agent {
            ctx.add_variable_from_value("agent", opt(action.agent.as_deref()));
        }
        if u.tool {
            ctx.add_variable_from_value("tool", opt(action.tool.as_deref()));
        }
        if u.resource {
            ctx.add_variable_from_value("resource", opt(action.resource.as_deref()));
        }
        match self.program.execute(&ctx) {
            Ok(Value::Bool(b)) => Ok(b),
            Ok(other) => Err(format!(
                "condition produced {:?}, not a boolean",
                other.type_of()
            )),
            Err(e) => Err(format!("condition failed: {e}")),
        }
    }
}

/// Identifiers the expression reads from outside, i.e. not bound by a macro such as
/// `all(x, …)`. Those must be among [`VARIABLES`].
fn free_variables<'e>(e: &'e IdedExpr, bound: &mut Vec<&'e str>, out: &mut Vec<&'e str>) {
    match &e.expr {
        Expr::Ident(name) => {
            if !bound.contains(&name.as_str()) && !out.contains(&name.as_str()) {
                out.push(name);
            }
        }
        Expr::Select(s) => free_variables(&s.operand, bound, out),
        Expr::Call(c) => {
            if let Some(t) = &c.target {
                free_variables(t, bound, out);
            }
            c.args.iter().for_each(|a| free_variables(a, bound, out));
        }
        Expr::List(l) => l
            .elements
            .iter()
            .for_each(|x| free_variables(x, bound, out)),
        Expr::Map(MapExpr { entries }) | Expr::Struct(StructExpr { entries, .. }) => {
            for entry in entries {
                match &entry.expr {
                    EntryExpr::MapEntry(m) => {
                        free_variables(&m.key, bound, out);
                        free_variables(&m.value, bound, out);
                    }
                    EntryExpr::StructField(f) => free_variables(&f.value, bound, out),
                }
            }
        }
        Expr::Comprehension(c) => {
            free_variables(&c.iter_range, bound, out);
            free_variables(&c.accu_init, bound, out);
            let depth = bound.len();
            bound.push(&c.iter_var);
            bound.extend(c.iter_var2.as_deref());
            bound.push(&c.accu_var);
            for part in [&c.loop_cond, &c.loop_step, &c.result] {
                free_variables(part, bound, out);
            }
            bound.truncate(depth);
        }
        Expr::Literal(_) | Expr::Unspecified => {}
    }
}

fn opt(s: Option<&str>) -> Value {
    s.map_or(Value::Null, Value::from)
}

fn bind_json(ctx: &mut Context<'_, '_>, name: &str, value: &Json) -> Result<(), String> {
    ctx.add_variable(name, value)
        .map_err(|e| format!("cannot pass `{name}` to the condition: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn run(expr: &str, action: &Action) -> Result<bool, String> {
        Condition::compile(expr)
            .map_err(|e| e.message)?
            .eval(action)
    }

    #[test]
    fn sees_every_variable() {
        let a = Action::new("db.query")
            .with_agent("bot")
            .with_arg("rows", 50)
            .with_arg("table", "users")
            .with_context("env", "prod");
        assert_eq!(run("action == 'db.query'", &a), Ok(true));
        assert_eq!(run("args.rows > 10 && args.table == 'users'", &a), Ok(true));
        assert_eq!(run("context.env == 'prod'", &a), Ok(true));
        assert_eq!(run("agent == 'bot' && tool == null", &a), Ok(true));
        assert_eq!(run("has(args.missing)", &a), Ok(false));
        assert_eq!(run("args.table.startsWith('us')", &a), Ok(true));
        let list = Action::new("x").with_arg("ids", serde_json::json!([1, 2, 3]));
        assert_eq!(
            run(
                "args.ids.all(i, i > 0) && args.ids.exists(n, n == 2)",
                &list
            ),
            Ok(true)
        );
    }

    #[test]
    fn runtime_errors_are_errors_not_false() {
        let a = Action::new("x");
        assert!(
            run("args.missing == 1", &a)
                .unwrap_err()
                .contains("condition failed")
        );
        assert!(run("'text'", &a).unwrap_err().contains("not a boolean"));
    }

    #[test]
    fn common_shapes_run_natively() {
        for (expr, native) in [
            ("args.amount <= 100", true),
            ("has(args.to) && args.to == 'x'", true),
            ("context.env in ['dev', 'test']", true),
            ("!(agent == null) || tool.startsWith('read_')", true),
            ("size(args.s) > 2", false),
            ("args.ids.all(i, i > 0)", false),
            ("args.a == args.b", false),
        ] {
            let c = Condition::compile(expr).map_err(|e| e.message).unwrap();
            assert_eq!(c.fast.is_some(), native, "{expr}");
        }
    }

    fn atom() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "args.n",
            "args.neg",
            "args.f",
            "args.s",
            "args.b",
            "args.z",
            "args.missing",
            "args.o.k",
            "args.o.missing",
            "args.s.x",
            "args.l",
            "args.o",
            "context.env",
            "action",
            "agent",
            "tool",
            "0",
            "5",
            "-3",
            "5u",
            "2.5",
            "'abc'",
            "'b'",
            "''",
            "true",
            "false",
            "null",
        ])
        .prop_map(str::to_string)
    }

    fn expr() -> impl Strategy<Value = String> {
        let ops = prop::sample::select(vec!["==", "!=", "<", "<=", ">", ">="]);
        let leaf = prop_oneof![
            (atom(), ops, atom()).prop_map(|(a, op, b)| format!("{a} {op} {b}")),
            prop::sample::select(vec![
                "args.n",
                "args.o.k",
                "args.missing",
                "args.o",
                "args.s.x",
                "context.env"
            ])
            .prop_map(|p| format!("has({p})")),
            (
                atom(),
                prop::sample::select(vec!["startsWith", "endsWith", "contains"])
            )
                .prop_map(|(a, f)| format!("{a}.{f}('a')")),
            atom().prop_map(|a| format!("{a} in ['abc', 5, 2.5, true, null]")),
            atom(),
        ];
        leaf.prop_recursive(3, 16, 2, |inner| {
            prop_oneof![
                inner.clone().prop_map(|e| format!("!({e})")),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) && ({b})")),
                (inner.clone(), inner).prop_map(|(a, b)| format!("({a}) || ({b})")),
            ]
        })
    }

    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        prop::sample::select(vec![
            serde_json::json!(5),
            serde_json::json!(-3),
            serde_json::json!(0),
            serde_json::json!(2.5),
            serde_json::json!("abc"),
            serde_json::json!("b"),
            serde_json::json!(""),
            serde_json::json!(true),
            serde_json::json!(false),
            serde_json::json!(null),
            serde_json::json!([1, 2]),
            serde_json::json!({"k": 5}),
            serde_json::json!({"x": "abc"}),
        ])
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]

        /// The native evaluator and the CEL interpreter give the same answer — the same
        /// boolean, or an error in both — on every expression it takes over.
        #[test]
        fn native_and_interpreted_agree(
            e in expr(),
            values in prop::collection::vec(json_value(), 8),
            present in prop::collection::vec(any::<bool>(), 8),
            agent in prop::option::of(prop::sample::select(vec!["bot", "abc"])),
        ) {
            let Ok(c) = Condition::compile(&e) else { return Ok(()); };
            let Some(fast) = &c.fast else { return Ok(()); };
            let mut action = Action::new("abc");
            for (i, key) in ["n", "neg", "f", "s", "b", "z", "l", "o"].iter().enumerate() {
                if present[i] {
                    action = action.with_arg(*key, values[i].clone());
                }
            }
            action = action.with_context("env", values[3].clone());
            if let Some(a) = agent {
                action = action.with_agent(a);
            }
            let native = fast.eval(&action);
            let interpreted = c.interpret(&action);
            prop_assert_eq!(native.is_ok(), interpreted.is_ok(), "{}: native {:?}, interpreted {:?}", e, native, interpreted);
            if let (Ok(a), Ok(b)) = (&native, &interpreted) {
                prop_assert_eq!(a, b, "{}", e);
            }
        }
    }

    #[test]
    fn compile_errors_name_the_problem() {
        let e = Condition::compile("args.x ==").err().unwrap();
        assert!(
            e.message.starts_with("invalid CEL expression"),
            "{}",
            e.message
        );
        let e = Condition::compile("arg.x == 1").err().unwrap();
        assert!(e.message.contains("unknown variable `arg`"));
        assert_eq!(e.hint.as_deref(), Some("did you mean `args`?"));
        assert_eq!(e.column, Some(0));
    }
}
