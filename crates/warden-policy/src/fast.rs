//! A native evaluator for the common shapes of `when:` conditions.
//!
//! Running a CEL program costs little; handing it the action does not: `args` and `context`
//! must first be converted into CEL values (~0.5 µs for a small object). Most conditions
//! only compare a few fields with literals — `args.amount <= 100`,
//! `has(args.to) && args.to == 'x'`, `context.env in ['dev', 'test']` — so those are compiled
//! into this small tree and evaluated straight on the JSON. Anything else runs in the CEL
//! interpreter. A differential property test (in `condition.rs`) holds the two to the same
//! answers, errors included.

use cel::IdedExpr;
use cel::common::ast::{Expr, LiteralValue, operators};
use serde_json::{Map, Value as Json};

use warden_core::Action;

/// The strict forms of `==`, `!=` and `in` (the interpreter's rewrite of them; see `condition`).
pub(crate) const STRICT_EQ: &str = "__warden_strict_eq";
pub(crate) const STRICT_NE: &str = "__warden_strict_ne";
pub(crate) const STRICT_IN: &str = "__warden_strict_in";

/// A literal from the expression.
#[derive(Debug, Clone)]
pub(crate) enum Lit {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Double(f64),
    Str(Box<str>),
}

/// Where a path starts.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Root {
    Args,
    Context,
    Action,
    Agent,
    Tool,
    Resource,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Cmp {
    /// `==` with the literal `null` on one side: plain equality.
    Eq,
    Ne,
    /// `==` otherwise: different types are an error (see `condition.rs`).
    StrictEq,
    StrictNe,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum StrFn {
    StartsWith,
    EndsWith,
    Contains,
}

/// A compiled condition.
#[derive(Debug, Clone)]
pub(crate) enum Fast {
    Lit(Lit),
    Path(Root, Vec<Box<str>>),
    /// `has(root.a.b)`: every segment but the last must exist; is the last one there?
    Has(Root, Vec<Box<str>>),
    Not(Box<Fast>),
    And(Box<Fast>, Box<Fast>),
    Or(Box<Fast>, Box<Fast>),
    Cmp(Cmp, Box<Fast>, Box<Fast>),
    /// `x in [literals]`, strict: an error when no element has `x`'s type.
    In(Box<Fast>, Vec<Lit>),
    Str(StrFn, Box<Fast>, Box<str>),
}

/// A value seen during evaluation, borrowed from the action where possible.
#[derive(Debug, Clone, Copy)]
enum V<'a> {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Double(f64),
    Str(&'a str),
    List,
    Map(&'a Map<String, Json>),
}

type Eval<'a> = Result<V<'a>, String>;

/// Compile `e`, or `None` when it uses anything this evaluator does not cover.
pub(crate) fn compile(e: &IdedExpr) -> Option<Fast> {
    match &e.expr {
        Expr::Literal(l) => literal(l).map(Fast::Lit),
        Expr::Ident(_) | Expr::Select(_) => {
            let (root, path, test) = path(e)?;
            Some(if test {
                if path.is_empty() {
                    return None;
                }
                Fast::Has(root, path)
            } else {
                Fast::Path(root, path)
            })
        }
        Expr::Call(c) => {
            let arg = |i: usize| c.args.get(i).and_then(compile).map(Box::new);
            match (c.func_name.as_str(), &c.target, c.args.len()) {
                (operators::LOGICAL_AND, None, 2) => Some(Fast::And(arg(0)?, arg(1)?)),
                (operators::LOGICAL_OR, None, 2) => Some(Fast::Or(arg(0)?, arg(1)?)),
                (operators::LOGICAL_NOT, None, 1) => Some(Fast::Not(arg(0)?)),
                (op, None, 2) => {
                    let cmp = match op {
                        operators::EQUALS => Cmp::Eq,
                        operators::NOT_EQUALS => Cmp::Ne,
                        STRICT_EQ => Cmp::StrictEq,
                        STRICT_NE => Cmp::StrictNe,
                        operators::LESS => Cmp::Lt,
                        operators::LESS_EQUALS => Cmp::Le,
                        operators::GREATER => Cmp::Gt,
                        operators::GREATER_EQUALS => Cmp::Ge,
                        STRICT_IN => return in_list(&c.args[0], &c.args[1]),
                        _ => return None,
                    };
                    let (l, r) = (arg(0)?, arg(1)?);
                    // Keep to path-vs-literal (or literal-vs-literal): comparing two JSON
                    // subtrees (lists, maps) is left to CEL.
                    if matches!(*l, Fast::Lit(_)) || matches!(*r, Fast::Lit(_)) {
                        Some(Fast::Cmp(cmp, l, r))
                    } else {
                        None
                    }
                }
                (name @ ("startsWith" | "endsWith" | "contains"), Some(target), 1) => {
                    let f = match name {
                        "startsWith" => StrFn::StartsWith,
                        "endsWith" => StrFn::EndsWith,
                        _ => StrFn::Contains,
                    };
                    let Expr::Literal(LiteralValue::String(s)) = &c.args[0].expr else {
                        return None;
                    };
                    Some(Fast::Str(f, Box::new(compile(target)?), s.inner().into()))
                }
                _ => None,
            }
        }
        _ => None,
    }
}

fn literal(l: &LiteralValue) -> Option<Lit> {
    Some(match l {
        LiteralValue::Null => Lit::Null,
        LiteralValue::Boolean(b) => Lit::Bool(*b.inner()),
        LiteralValue::Int(i) => Lit::Int(*i.inner()),
        LiteralValue::UInt(u) => Lit::UInt(*u.inner()),
        LiteralValue::Double(d) => Lit::Double(*d.inner()),
        LiteralValue::String(s) => Lit::Str(s.inner().into()),
        LiteralValue::Bytes(_) => return None,
    })
}

/// `args.a.b` → (Args, [a, b], has-test?)
fn path(e: &IdedExpr) -> Option<(Root, Vec<Box<str>>, bool)> {
    match &e.expr {
        Expr::Ident(name) => {
            let root = match name.as_str() {
                "args" => Root::Args,
                "context" => Root::Context,
                "action" => Root::Action,
                "agent" => Root::Agent,
                "tool" => Root::Tool,
                "resource" => Root::Resource,
                _ => return None,
            };
            Some((root, Vec::new(), false))
        }
        Expr::Select(s) => {
            let (root, mut segments, inner_test) = path(&s.operand)?;
            if inner_test {
                return None;
            }
            segments.push(s.field.as_str().into());
            Some((root, segments, s.test))
        }
        _ => None,
    }
}

fn in_list(needle: &IdedExpr, list: &IdedExpr) -> Option<Fast> {
    let Expr::List(l) = &list.expr else {
        return None;
    };
    if !l.optional_indices.is_empty() {
        return None;
    }
    let items = l
        .elements
        .iter()
        .map(|e| match &e.expr {
            Expr::Literal(lit) => literal(lit),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Fast::In(Box::new(compile(needle)?), items))
}

impl Fast {
    /// Evaluate to a boolean, as the CEL program would.
    pub fn eval(&self, action: &Action) -> Result<bool, String> {
        match self.value(action) {
            Ok(V::Bool(b)) => Ok(b),
            Ok(other) => Err(format!(
                "condition produced {}, not a boolean",
                kind(&other)
            )),
            Err(e) => Err(format!("condition failed: {e}")),
        }
    }

    fn value<'a>(&'a self, action: &'a Action) -> Eval<'a> {
        match self {
            Fast::Lit(l) => Ok(lit(l)),
            Fast::Path(root, segments) => {
                let mut v = root_value(*root, action);
                for s in segments {
                    v = field(v, s)?;
                }
                Ok(v)
            }
            Fast::Has(root, segments) => {
                let mut v = root_value(*root, action);
                let (last, init) = segments
                    .split_last()
                    .expect("compile() keeps has() non-empty");
                for s in init {
                    v = field(v, s)?;
                }
                match v {
                    V::Map(m) => Ok(V::Bool(m.contains_key(&**last))),
                    other => Err(format!("has() on {}", kind(&other))),
                }
            }
            Fast::Not(x) => match x.value(action)? {
                V::Bool(b) => Ok(V::Bool(!b)),
                other => Err(format!("no such overload: !{}", kind(&other))),
            },
            // CEL's logical operators are commutative over errors: `false && error` and
            // `error && false` are both false.
            Fast::And(a, b) => logical(a.value(action), || b.value(action), false),
            Fast::Or(a, b) => logical(a.value(action), || b.value(action), true),
            Fast::Cmp(op, a, b) => compare(*op, a.value(action)?, b.value(action)?).map(V::Bool),
            Fast::In(x, items) => {
                let x = x.value(action)?;
                let want = family(x);
                if !items.is_empty() && !items.iter().any(|i| family(lit(i)) == want) {
                    return Err(format!(
                        "no element of the list has the type of {}",
                        kind(&x)
                    ));
                }
                Ok(V::Bool(items.iter().any(|i| equal(x, lit(i)))))
            }
            Fast::Str(f, x, arg) => match x.value(action)? {
                V::Str(s) => Ok(V::Bool(match f {
                    StrFn::StartsWith => s.starts_with(&**arg),
                    StrFn::EndsWith => s.ends_with(&**arg),
                    StrFn::Contains => s.contains(&**arg),
                })),
                other => Err(format!("no such overload: {}.{f:?}()", kind(&other))),
            },
        }
    }
}

fn logical<'a>(first: Eval<'a>, second: impl FnOnce() -> Eval<'a>, absorbing: bool) -> Eval<'a> {
    let as_bool = |v: Eval<'a>| match v {
        Ok(V::Bool(b)) => Ok(b),
        Ok(other) => Err(format!(
            "no such overload: logical operator on {}",
            kind(&other)
        )),
        Err(e) => Err(e),
    };
    let a = as_bool(first);
    if a == Ok(absorbing) {
        return Ok(V::Bool(absorbing));
    }
    let b = as_bool(second());
    match (a, b) {
        (_, Ok(x)) if x == absorbing => Ok(V::Bool(absorbing)),
        (Ok(_), Ok(_)) => Ok(V::Bool(!absorbing)),
        (Err(e), _) | (_, Err(e)) => Err(e),
    }
}

fn lit(l: &Lit) -> V<'_> {
    match l {
        Lit::Null => V::Null,
        Lit::Bool(b) => V::Bool(*b),
        Lit::Int(i) => V::Int(*i),
        Lit::UInt(u) => V::UInt(*u),
        Lit::Double(d) => V::Double(*d),
        Lit::Str(s) => V::Str(s),
    }
}

fn root_value(root: Root, action: &Action) -> V<'_> {
    fn opt(s: &Option<String>) -> V<'_> {
        s.as_deref().map_or(V::Null, V::Str)
    }
    match root {
        Root::Args => json(&action.args),
        Root::Context => json(&action.context),
        Root::Action => V::Str(&action.action),
        Root::Agent => opt(&action.agent),
        Root::Tool => opt(&action.tool),
        Root::Resource => opt(&action.resource),
    }
}

/// JSON → value the way the CEL binding converts it: non-negative integers are unsigned.
fn json(j: &Json) -> V<'_> {
    match j {
        Json::Null => V::Null,
        Json::Bool(b) => V::Bool(*b),
        Json::Number(n) => {
            if let Some(u) = n.as_u64() {
                V::UInt(u)
            } else if let Some(i) = n.as_i64() {
                V::Int(i)
            } else {
                V::Double(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Json::String(s) => V::Str(s),
        Json::Array(_) => V::List,
        Json::Object(m) => V::Map(m),
    }
}

fn field<'a>(v: V<'a>, name: &str) -> Eval<'a> {
    match v {
        V::Map(m) => m
            .get(name)
            .map(json)
            .ok_or_else(|| format!("no such key: {name}")),
        other => Err(format!("cannot select `{name}` from {}", kind(&other))),
    }
}

fn kind(v: &V<'_>) -> &'static str {
    match v {
        V::Null => "null",
        V::Bool(_) => "bool",
        V::Int(_) => "int",
        V::UInt(_) => "uint",
        V::Double(_) => "double",
        V::Str(_) => "string",
        V::List => "list",
        V::Map(_) => "map",
    }
}

/// A number as an exact integer when it is one, else a float.
enum Num {
    Int(i128),
    Float(f64),
}

fn num(v: V<'_>) -> Option<Num> {
    match v {
        V::Int(i) => Some(Num::Int(i128::from(i))),
        V::UInt(u) => Some(Num::Int(i128::from(u))),
        V::Double(d) => Some(Num::Float(d)),
        _ => None,
    }
}

fn num_cmp(a: Num, b: Num) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => Some(x.cmp(&y)),
        (Num::Int(x), Num::Float(y)) => (x as f64).partial_cmp(&y),
        (Num::Float(x), Num::Int(y)) => x.partial_cmp(&(y as f64)),
        (Num::Float(x), Num::Float(y)) => x.partial_cmp(&y),
    }
}

/// CEL equality: numbers by value across int/uint/double, otherwise same kind and value;
/// different kinds are simply unequal.
fn equal(a: V<'_>, b: V<'_>) -> bool {
    if let (Some(x), Some(y)) = (num(a), num(b)) {
        return num_cmp(x, y) == Some(std::cmp::Ordering::Equal);
    }
    match (a, b) {
        (V::Null, V::Null) => true,
        (V::Bool(x), V::Bool(y)) => x == y,
        (V::Str(x), V::Str(y)) => x == y,
        _ => false,
    }
}

/// The type of a value for strict comparison: every number is one family.
fn family(v: V<'_>) -> u8 {
    match v {
        V::Null => 0,
        V::Bool(_) => 1,
        V::Int(_) | V::UInt(_) | V::Double(_) => 2,
        V::Str(_) => 3,
        V::List => 4,
        V::Map(_) => 5,
    }
}

fn compare(op: Cmp, a: V<'_>, b: V<'_>) -> Result<bool, String> {
    use std::cmp::Ordering;
    let strict = matches!(op, Cmp::StrictEq | Cmp::StrictNe);
    if strict && family(a) != family(b) {
        return Err(format!("cannot compare {} with {}", kind(&a), kind(&b)));
    }
    match op {
        Cmp::Eq | Cmp::StrictEq => return Ok(equal(a, b)),
        Cmp::Ne | Cmp::StrictNe => return Ok(!equal(a, b)),
        _ => {}
    }
    let ord: Option<Ordering> = match (num(a), num(b)) {
        (Some(x), Some(y)) => num_cmp(x, y),
        _ => match (a, b) {
            (V::Str(x), V::Str(y)) => Some(x.cmp(y)),
            (V::Bool(x), V::Bool(y)) => Some(x.cmp(&y)),
            _ => {
                return Err(format!(
                    "no such overload: {} {op:?} {}",
                    kind(&a),
                    kind(&b)
                ));
            }
        },
    };
    // NaN compares false either way, as in CEL.
    Ok(match (op, ord) {
        (_, None) => false,
        (Cmp::Lt, Some(o)) => o == Ordering::Less,
        (Cmp::Le, Some(o)) => o != Ordering::Greater,
        (Cmp::Gt, Some(o)) => o == Ordering::Greater,
        (Cmp::Ge, Some(o)) => o != Ordering::Less,
        (Cmp::Eq | Cmp::Ne | Cmp::StrictEq | Cmp::StrictNe, _) => unreachable!("handled above"),
    })
}
