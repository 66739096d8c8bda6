//! Python objects to JSON and back.
//!
//! An action's `args` and `context` come from agents and frameworks: a model's tool call
//! decoded from JSON most of the time, but sometimes whatever a framework passes along
//! (tuples, sets, objects, a dict that contains itself). The policy judges JSON, so only what
//! has one obvious JSON reading is converted — `None`, `bool`, `int`, `float`, `str`, `dict`
//! with `str` keys, `list`, `tuple` — and anything else is an error naming where it is
//! (`args.items[3]: a set has no JSON form`). The caller turns that error into a deny: a
//! policy never judges a guess.
//!
//! Every input is bounded (see [`Limits`]): nesting depth, the number of values and the bytes
//! of text. A dict that contains itself reaches the depth limit and is an error, never a hang.

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::{Map, Number, Value};

/// The bounds on one action's `args` plus `context`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Deepest nesting of containers (the top-level object is depth 1).
    pub depth: usize,
    /// Most values (containers, keys' values and scalars) in one action.
    pub values: usize,
    /// Most bytes of text (strings and keys) in one action.
    pub bytes: usize,
}

/// The defaults, documented in docs/python.md: depth 64, 100,000 values, 16 MiB of text.
pub const LIMITS: Limits = Limits {
    depth: 64,
    values: 100_000,
    bytes: 16 << 20,
};

/// Converts one action's objects, counting against one budget.
pub struct ToJson {
    limits: Limits,
    values: usize,
    bytes: usize,
}

/// A conversion that failed: the message, and where, built up while unwinding (innermost
/// step first) so that a conversion that succeeds never spends anything on paths.
struct Fail {
    steps: Vec<Step>,
    message: String,
}

enum Step {
    Key(String),
    Index(usize),
}

impl Fail {
    fn new(message: String) -> Self {
        Fail {
            steps: Vec::new(),
            message,
        }
    }

    fn at(mut self, step: Step) -> Self {
        self.steps.push(step);
        self
    }

    fn render(self, root: &str) -> String {
        let mut path = root.to_string();
        for step in self.steps.iter().rev() {
            match step {
                Step::Key(k) => {
                    path.push('.');
                    path.push_str(k);
                }
                Step::Index(i) => path.push_str(&format!("[{i}]")),
            }
        }
        format!("{}: {}", shown(&path), self.message)
    }
}

impl ToJson {
    /// A converter with a fresh budget.
    pub fn new(limits: Limits) -> Self {
        ToJson {
            limits,
            values: 0,
            bytes: 0,
        }
    }

    /// `obj` as a JSON object (`None` is an empty one); `what` names it in errors.
    pub fn object(&mut self, obj: Option<&Bound<'_, PyAny>>, what: &str) -> Result<Value, String> {
        match obj {
            None => Ok(Value::Object(Map::new())),
            Some(o) if o.is_none() => Ok(Value::Object(Map::new())),
            Some(o) if o.is_instance_of::<PyDict>() => self.value(o, 1).map_err(|f| f.render(what)),
            Some(o) => Err(format!(
                "{what} must be a dict with str keys, not {}",
                type_name(o)
            )),
        }
    }

    fn text(&mut self, s: &Bound<'_, PyString>) -> Result<String, Fail> {
        let s = s
            .to_str()
            .map_err(|_| Fail::new("a str that is not valid Unicode (lone surrogate)".into()))?;
        self.bytes += s.len();
        if self.bytes > self.limits.bytes {
            return Err(Fail::new(format!(
                "more than {} bytes of text in one action",
                self.limits.bytes
            )));
        }
        Ok(s.to_owned())
    }

    fn too_many(&self) -> Fail {
        Fail::new(format!(
            "more than {} values in one action",
            self.limits.values
        ))
    }

    fn value(&mut self, o: &Bound<'_, PyAny>, depth: usize) -> Result<Value, Fail> {
        self.values += 1;
        if self.values > self.limits.values {
            return Err(self.too_many());
        }
        // The common kinds first; bool before int (`True` is an int in Python).
        if let Ok(s) = o.cast::<PyString>() {
            return self.text(s).map(Value::String);
        }
        if o.is_none() {
            return Ok(Value::Null);
        }
        if let Ok(b) = o.cast::<PyBool>() {
            return Ok(Value::Bool(b.is_true()));
        }
        if o.is_instance_of::<PyInt>() {
            if let Ok(i) = o.extract::<i64>() {
                return Ok(Value::from(i));
            }
            if let Ok(u) = o.extract::<u64>() {
                return Ok(Value::from(u));
            }
            return Err(Fail::new(
                "an int outside the 64-bit range has no exact JSON form".into(),
            ));
        }
        if let Ok(f) = o.cast::<PyFloat>() {
            let v = f.value();
            return Number::from_f64(v)
                .map(Value::Number)
                .ok_or_else(|| Fail::new(format!("{v} has no JSON form")));
        }
        let dict = o.cast::<PyDict>().ok();
        if dict.is_none() && !o.is_instance_of::<PyList>() && !o.is_instance_of::<PyTuple>() {
            return Err(Fail::new(format!("{} has no JSON form", type_name(o))));
        }
        if depth > self.limits.depth {
            return Err(Fail::new(format!(
                "nested deeper than {} levels (a container that contains itself?)",
                self.limits.depth
            )));
        }
        if let Some(d) = dict {
            // Sized once for the usual small dict; a huge one grows as it is read (and
            // stops at the values limit), so its claimed size never allocates up front.
            let mut map = Map::with_capacity(d.len().min(32));
            for (k, v) in d.iter() {
                let Ok(key) = k.cast::<PyString>() else {
                    return Err(Fail::new(format!(
                        "a key that is {} (JSON keys are str)",
                        type_name(&k)
                    )));
                };
                let key = self.text(key)?;
                match self.value(&v, depth + 1) {
                    Ok(v) => {
                        map.insert(key, v);
                    }
                    Err(f) => return Err(f.at(Step::Key(key))),
                }
            }
            return Ok(Value::Object(map));
        }
        // Index by index, never through `__iter__`: no Python code runs while a conversion
        // is under way, so nothing can change what is being read.
        let cap = self.limits.values + 1;
        let items: Vec<Bound<'_, PyAny>> = match o.cast::<PyList>() {
            Ok(l) => l.iter().take(cap).collect(),
            Err(_) => match o.cast::<PyTuple>() {
                Ok(t) => t.iter().take(cap).collect(),
                Err(_) => Vec::new(),
            },
        };
        if items.len() > self.limits.values {
            return Err(self.too_many());
        }
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            out.push(
                self.value(item, depth + 1)
                    .map_err(|f| f.at(Step::Index(i)))?,
            );
        }
        Ok(Value::Array(out))
    }
}

/// A path for a message: whole when short, else its start and end (a path through a
/// container that contains itself is as long as the depth limit allows).
fn shown(path: &str) -> String {
    const HEAD: usize = 40;
    const TAIL: usize = 40;
    if path.chars().count() <= HEAD + TAIL + 1 {
        return path.to_string();
    }
    let head: String = path.chars().take(HEAD).collect();
    let tail: Vec<char> = path.chars().rev().take(TAIL).collect();
    let tail: String = tail.into_iter().rev().collect();
    format!("{head}…{tail}")
}

/// The name of `o`'s type, with an article, for messages (`a set`, `an object of type Foo`).
pub fn type_name(o: &Bound<'_, PyAny>) -> String {
    let name = o
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".to_string());
    match name.as_str() {
        "set" | "frozenset" | "bytes" | "bytearray" | "complex" | "float" | "list" | "dict"
        | "tuple" => format!("a {name}"),
        "int" => "an int".to_string(),
        _ => format!("an object of type {name}"),
    }
}

/// A JSON value as Python objects (`dict`, `list`, `str`, `int`, `float`, `bool`, `None`).
pub fn to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
            }
        }
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (k, item) in map {
                dict.set_item(k, to_py(py, item)?)?;
            }
            dict.into_any()
        }
    })
}
