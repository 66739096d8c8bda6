//! Call arguments a server would read as a parameter the policy never judged.
//!
//! A policy judges `args.path`; Go's `encoding/json` (mark3labs/mcp-go, the official go-sdk)
//! matches object keys to struct fields without regard to case, so `{"Path": "/etc/shadow"}`
//! reaches a Go tool as its `path` while the policy saw no path at all. A call's arguments are
//! checked against the tool's listed `inputSchema`: a key that is no property of the schema
//! describing its object, but equals one when folded ([`plain::fold`]), is refused.
//!
//! The schema is followed every way Go generators and hand-written schemas describe a
//! parameter, because a parameter the check cannot see is one it cannot protect: `properties`;
//! local `$ref`s (`#/$defs/…`, `#/definitions/…`: invopop/jsonschema's default puts the whole
//! argument struct behind one); `allOf`/`anyOf`/`oneOf` (a key is a parameter if any branch
//! lists it: which branch the server takes is not ours to guess); `additionalProperties` (a
//! `map[string]Struct`); `items`, `prefixItems` and `items` as a tuple. Not followed:
//! `patternProperties` (no Go generator writes them, and a regular expression from the server
//! per call is a cost of its own), `$ref`s to other documents, and `if`/`then`/`else`.
//!
//! Both sides choose the sizes: the server the schema, the client the arguments. So each
//! `properties` object is folded at most once per call (cached by address), each key once,
//! and every step counts against [`MAX_STEPS`]; past it the call is refused, not passed
//! unchecked.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use crate::jsonrpc::plain;

/// Deepest nesting of arguments checked against the schema; an object or array deeper
/// that the schema still describes is refused.
const MAX_DEPTH: usize = 32;
/// The most steps one call's check takes: schemas reached through `$ref`s and branches, keys
/// looked up in more than one `properties`, keys and property names folded. What is only
/// the arguments' size (a key looked up in one schema, an array's items) is not counted:
/// a call of 200,000 rows that spell their keys as listed passes. A real call takes a few
/// dozen.
pub(super) const MAX_STEPS: usize = 1_000_000;

/// Why a call's arguments are refused.
pub(super) enum CaseVariant {
    /// A key (its path) given for a property (its path) spelled in another case.
    Key(String, String),
    /// More to check than [`MAX_STEPS`].
    TooMuch,
}

impl CaseVariant {
    /// The same finding one object further out, under `key`.
    fn under(self, key: &str) -> CaseVariant {
        match self {
            CaseVariant::Key(given, param) => {
                CaseVariant::Key(format!("{key}.{given}"), format!("{key}.{param}"))
            }
            too_much => too_much,
        }
    }
}

/// The first key of `args` that is not a property of `schema` where it stands but equals one
/// when folded (see the module docs).
pub(super) fn case_variant(args: &Value, schema: &Value) -> Option<CaseVariant> {
    let mut check = Check {
        root: schema,
        steps: MAX_STEPS,
        folded: HashMap::new(),
    };
    check.value(args, &[schema], 0).err()
}

/// One call's check.
struct Check<'a> {
    /// The whole `inputSchema`, which local `$ref`s point into.
    root: &'a Value,
    /// Steps left.
    steps: usize,
    /// Each `properties` object folded so far (by address): folded name → name.
    folded: HashMap<*const Map<String, Value>, HashMap<String, &'a str>>,
}

impl<'a> Check<'a> {
    fn step(&mut self, n: usize) -> Result<(), CaseVariant> {
        self.steps = self.steps.checked_sub(n).ok_or(CaseVariant::TooMuch)?;
        Ok(())
    }

    fn value(
        &mut self,
        value: &Value,
        schemas: &[&'a Value],
        depth: usize,
    ) -> Result<(), CaseVariant> {
        if schemas.is_empty() {
            return Ok(());
        }
        if depth > MAX_DEPTH {
            // Deeper than checked, where the schema still describes it (a recursive `$ref`):
            // refused, not passed unchecked.
            return match value {
                Value::Object(_) | Value::Array(_) => Err(CaseVariant::TooMuch),
                _ => Ok(()),
            };
        }
        match value {
            Value::Object(map) => self.object(map, schemas, depth),
            Value::Array(items) => {
                let expanded = self.expand(schemas)?;
                for (i, item) in items.iter().enumerate() {
                    let subs: Vec<&'a Value> =
                        expanded.iter().filter_map(|m| item_schema(m, i)).collect();
                    self.value(item, &subs, depth + 1)?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn object(
        &mut self,
        map: &Map<String, Value>,
        schemas: &[&'a Value],
        depth: usize,
    ) -> Result<(), CaseVariant> {
        let expanded = self.expand(schemas)?;
        let props: Vec<&'a Map<String, Value>> = expanded
            .iter()
            .filter_map(|m| m.get("properties").and_then(Value::as_object))
            .collect();
        let extra: Vec<&'a Value> = expanded
            .iter()
            .filter_map(|m| m.get("additionalProperties"))
            .filter(|s| s.is_object())
            .collect();
        for (key, inner) in map {
            // Looking a key up is the arguments' size; in more than one schema, the server's.
            self.step(props.len().saturating_sub(1))?;
            let subs: Vec<&'a Value> = props.iter().filter_map(|p| p.get(key)).collect();
            if !subs.is_empty() {
                self.value(inner, &subs, depth + 1)
                    .map_err(|e| e.under(key))?;
                continue;
            }
            self.step(1)?;
            let folded = plain::fold(key);
            for p in &props {
                if let Some(param) = self.folded(p)?.get(&folded) {
                    return Err(CaseVariant::Key(key.clone(), (*param).to_owned()));
                }
            }
            // Not a property in any case: the value of a map entry is still checked.
            self.value(inner, &extra, depth + 1)
                .map_err(|e| e.under(key))?;
        }
        Ok(())
    }

    /// The object schemas `schemas` stand for: each, what its local `$ref` points at, and
    /// its `allOf`/`anyOf`/`oneOf` branches, each once.
    fn expand(
        &mut self,
        schemas: &[&'a Value],
    ) -> Result<Vec<&'a Map<String, Value>>, CaseVariant> {
        let mut out = Vec::new();
        let mut seen: HashSet<*const Map<String, Value>> = HashSet::new();
        let mut todo: Vec<&'a Value> = schemas.to_vec();
        // The schemas given are the arguments' size; those a `$ref` or a branch adds, the
        // server's.
        let mut free = todo.len();
        while let Some(schema) = todo.pop() {
            match free.checked_sub(1) {
                Some(left) => free = left,
                None => self.step(1)?,
            }
            let Value::Object(map) = schema else {
                continue;
            };
            if !seen.insert(std::ptr::from_ref(map)) {
                continue;
            }
            out.push(map);
            if let Some(target) = map
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix('#'))
                .and_then(|pointer| self.root.pointer(pointer))
            {
                todo.push(target);
            }
            for key in ["allOf", "anyOf", "oneOf"] {
                if let Some(Value::Array(branches)) = map.get(key) {
                    todo.extend(branches);
                }
            }
        }
        Ok(out)
    }

    /// A `properties` object's names by their folded form, folded once per call.
    fn folded(
        &mut self,
        props: &'a Map<String, Value>,
    ) -> Result<&HashMap<String, &'a str>, CaseVariant> {
        let id: *const Map<String, Value> = props;
        if !self.folded.contains_key(&id) {
            self.step(props.len())?;
        }
        Ok(self
            .folded
            .entry(id)
            .or_insert_with(|| props.keys().map(|p| (plain::fold(p), p.as_str())).collect()))
    }
}

/// The schema of item `i` of an array described by `schema`: `prefixItems[i]`, or
/// `items[i]` (a tuple, draft 4–2019), or `additionalItems` past such a tuple, or `items`.
fn item_schema(schema: &Map<String, Value>, i: usize) -> Option<&Value> {
    if let Some(prefix) = schema.get("prefixItems").and_then(Value::as_array)
        && let Some(s) = prefix.get(i)
    {
        return Some(s);
    }
    match schema.get("items") {
        Some(Value::Array(tuple)) => tuple.get(i).or_else(|| schema.get("additionalItems")),
        other => other,
    }
}
