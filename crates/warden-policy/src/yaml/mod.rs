//! A YAML reader that keeps the position of every node.
//!
//! Policy errors must point at the exact key or value that is wrong, and `validate` must report
//! every problem in one pass, so we build our own small tree from the parser's events instead
//! of deserializing with serde (which stops at the first error and loses positions inside
//! enums). Scalars follow the YAML 1.2 core schema: `yes`/`no`/`on`/`off` are strings.

use std::collections::{HashMap, HashSet};

mod compile;

pub(crate) use compile::compile;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use crate::diagnostic::{Position, Problem, did_you_mean};
use crate::limits::Limits;
use crate::source::Source;

/// A YAML value with the place it was written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub value: Value,
    pub pos: Position,
}

/// The kinds of YAML value a policy can hold.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// What kind of value this is, for "expected X, found Y" messages.
    pub fn kind(&self) -> String {
        match &self.value {
            Value::Null => "nothing (null)".into(),
            Value::Bool(b) => format!("the boolean `{b}`"),
            Value::Int(i) => format!("the number `{i}`"),
            Value::Float(f) => format!("the number `{f}`"),
            Value::Str(s) => format!("the string \"{}\"", short(s)),
            Value::Seq(_) => "a list".into(),
            Value::Map(_) => "a mapping".into(),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Convert to JSON (for actions written inside YAML, e.g. in test files).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::Str(s) => J::String(s.clone()),
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|(k, v)| (key_text(k), v.to_json()))
                    .collect(),
            ),
        }
    }
}

fn key_text(k: &Node) -> String {
    match &k.value {
        Value::Str(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Null => "null".into(),
        Value::Seq(_) | Value::Map(_) => "<complex key>".into(),
    }
}

fn short(s: &str) -> String {
    if s.chars().count() > 40 {
        let cut: String = s.chars().take(37).collect();
        format!("{cut}...")
    } else {
        s.to_string()
    }
}

/// A collection being built: where it started, its anchor, how many nodes it holds so far
/// (itself included) and how deep it is.
struct Frame {
    start: Position,
    anchor: usize,
    size: usize,
    depth: usize,
    items: Items,
}

enum Items {
    Seq(Vec<Node>),
    Map {
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
        /// The keys so far, to find duplicates in O(1) each.
        keys: HashSet<KeyText>,
    },
}

/// A scalar key as comparable text: its kind and its text (`1` the number and `'1'` the
/// string are different keys).
type KeyText = (u8, String);

fn key_of(node: &Node) -> KeyText {
    let kind = match node.value {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Int(_) => 2,
        Value::Float(_) => 3,
        Value::Str(_) => 4,
        Value::Seq(_) | Value::Map(_) => 5,
    };
    (kind, key_text(node))
}

/// A completed node, with how many nodes it holds and how deep it is.
struct Built {
    node: Node,
    anchor: usize,
    size: usize,
    depth: usize,
}

/// Parse one YAML document. `Ok(None)` for a file with no document at all.
///
/// Aliases are copied into the tree, so a small file can stand for a huge one (a "billion
/// laughs"): every node is counted as the tree is built, an alias by the size of what it
/// copies, and the parse stops *before* copying past `limits.max_yaml_nodes`. Nesting
/// deeper than `limits.max_nesting_depth` is refused too, so that nothing that walks the
/// tree afterwards can run out of stack.
pub(crate) fn parse(source: &Source, limits: &Limits) -> Result<Option<Node>, Problem> {
    let text: &str = &source.text;
    let offsets = CharOffsets::new(text);
    let pos = |span: &Span| {
        let start = offsets.byte(span.start.index());
        let end = offsets.byte(span.end.index()).max(start);
        source.position_of(start, end - start)
    };
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, (Node, usize, usize)> = HashMap::new();
    let mut root: Option<Node> = None;
    let mut documents = 0;
    let mut total = 0usize;
    let too_many = |at: Position| {
        Problem::new(
            source,
            at,
            format!(
                "the document expands to more than {} YAML nodes",
                limits.max_yaml_nodes
            ),
        )
        .with_hint("aliases (`*name`) copy what their anchor holds; a policy needs few of them")
    };
    let too_deep = |at: Position| {
        Problem::new(
            source,
            at,
            format!(
                "lists and mappings nest deeper than {} levels",
                limits.max_nesting_depth
            ),
        )
    };

    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| {
            let m = e.marker();
            let at = offsets.byte(m.index());
            Problem::new(
                source,
                source.position_of(at, 0),
                format!("invalid YAML: {}", e.info()),
            )
        })?;
        let complete = match event {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(Problem::new(
                        source,
                        pos(&span),
                        "a policy file holds one YAML document; found a second one",
                    )
                    .with_hint("put each policy in its own file"));
                }
                None
            }
            Event::Scalar(text, style, anchor, tag) => {
                let p = pos(&span);
                total += 1;
                if total > limits.max_yaml_nodes {
                    return Err(too_many(p));
                }
                let tag = tag.map(|t| format!("{}{}", t.handle, t.suffix));
                let value =
                    scalar(&text, style, tag.as_deref()).map_err(|m| Problem::new(source, p, m))?;
                Some(Built {
                    node: Node { value, pos: p },
                    anchor,
                    size: 1,
                    depth: 0,
                })
            }
            Event::Alias(id) => match anchors.get(&id) {
                Some((node, size, depth)) => {
                    // Checked before the copy is made: the copy is what costs.
                    total = total.saturating_add(*size);
                    if total > limits.max_yaml_nodes {
                        return Err(too_many(pos(&span)));
                    }
                    if stack.len() + depth > limits.max_nesting_depth {
                        return Err(too_deep(pos(&span)));
                    }
                    Some(Built {
                        node: node.clone(),
                        anchor: 0,
                        size: *size,
                        depth: *depth,
                    })
                }
                None => {
                    return Err(Problem::new(
                        source,
                        pos(&span),
                        "alias to an unknown anchor",
                    ));
                }
            },
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if stack.len() >= limits.max_nesting_depth {
                    return Err(too_deep(pos(&span)));
                }
                let start = pos(&span);
                total += 1;
                if total > limits.max_yaml_nodes {
                    return Err(too_many(start));
                }
                let items = if matches!(event, Event::SequenceStart(..)) {
                    Items::Seq(Vec::new())
                } else {
                    Items::Map {
                        entries: Vec::new(),
                        key: None,
                        keys: HashSet::new(),
                    }
                };
                stack.push(Frame {
                    start,
                    anchor,
                    size: 1,
                    depth: 1,
                    items,
                });
                None
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let frame = stack.pop().expect("the parser balances collection events");
                let value = match frame.items {
                    Items::Seq(items) => Value::Seq(items),
                    Items::Map { entries, .. } => Value::Map(entries),
                };
                Some(Built {
                    node: Node {
                        value,
                        pos: frame.start,
                    },
                    anchor: frame.anchor,
                    size: frame.size,
                    depth: frame.depth,
                })
            }
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => None,
        };
        let Some(built) = complete else {
            continue;
        };
        let Built {
            node,
            anchor,
            size,
            depth,
        } = built;
        if anchor > 0 {
            anchors.insert(anchor, (node.clone(), size, depth));
        }
        match stack.last_mut() {
            None => root = Some(node),
            Some(frame) => {
                frame.size = frame.size.saturating_add(size);
                frame.depth = frame.depth.max(depth + 1);
                match &mut frame.items {
                    Items::Seq(items) => items.push(node),
                    Items::Map { entries, key, keys } => match key.take() {
                        None => {
                            if matches!(node.value, Value::Seq(_) | Value::Map(_)) {
                                return Err(Problem::new(
                                    source,
                                    node.pos,
                                    "a mapping key must be a plain value, not a list or mapping",
                                ));
                            }
                            if !keys.insert(key_of(&node)) {
                                let first = entries
                                    .iter()
                                    .find(|(k, _)| key_of(k) == key_of(&node))
                                    .map_or(node.pos.line, |(k, _)| k.pos.line);
                                return Err(Problem::new(
                                    source,
                                    node.pos,
                                    format!(
                                        "duplicate key `{}` (first written on line {first})",
                                        key_text(&node),
                                    ),
                                ));
                            }
                            *key = Some(node);
                        }
                        Some(k) => entries.push((k, node)),
                    },
                }
            }
        }
    }
    Ok(root)
}

/// Resolve a scalar by the YAML 1.2 core schema (plain scalars only; quoted ones are strings).
fn scalar(text: &str, style: ScalarStyle, tag: Option<&str>) -> Result<Value, String> {
    match tag {
        None => {}
        Some("!!str") => return Ok(Value::Str(text.to_string())),
        Some("!!int" | "!!bool" | "!!float" | "!!null") => {}
        Some(other) => return Err(format!("unsupported YAML tag `{other}`")),
    }
    if style != ScalarStyle::Plain {
        return Ok(Value::Str(text.to_string()));
    }
    Ok(match text {
        "" | "~" | "null" | "Null" | "NULL" => Value::Null,
        "true" | "True" | "TRUE" => Value::Bool(true),
        "false" | "False" | "FALSE" => Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => Value::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => Value::Float(f64::NAN),
        _ => {
            if let Some(i) = parse_int(text) {
                Value::Int(i)
            } else if looks_like_float(text) {
                text.parse::<f64>()
                    .map(Value::Float)
                    .unwrap_or_else(|_| Value::Str(text.to_string()))
            } else {
                Value::Str(text.to_string())
            }
        }
    })
}

fn parse_int(text: &str) -> Option<i64> {
    if let Some(hex) = text.strip_prefix("0x") {
        return i64::from_str_radix(hex, 16).ok();
    }
    if let Some(oct) = text.strip_prefix("0o") {
        return i64::from_str_radix(oct, 8).ok();
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok();
    }
    None
}

fn looks_like_float(text: &str) -> bool {
    let t = text.strip_prefix(['-', '+']).unwrap_or(text);
    !t.is_empty()
        && t.bytes().any(|b| b.is_ascii_digit())
        && t.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
}

/// Maps the parser's character indexes to byte offsets.
struct CharOffsets {
    /// Byte offset of each char index, when the text is not pure ASCII.
    bytes: Option<Vec<usize>>,
    len: usize,
}

impl CharOffsets {
    fn new(text: &str) -> Self {
        let bytes =
            (!text.is_ascii()).then(|| text.char_indices().map(|(b, _)| b).collect::<Vec<_>>());
        CharOffsets {
            bytes,
            len: text.len(),
        }
    }

    fn byte(&self, char_index: usize) -> usize {
        match &self.bytes {
            None => char_index.min(self.len),
            Some(v) => v.get(char_index).copied().unwrap_or(self.len),
        }
    }
}

/// The entries of the mapping `node` whose keys are `known`; every other key (and a node that
/// is not a mapping) is a problem, with a "did you mean" hint.
pub(crate) fn entries<'n>(
    source: &Source,
    node: &'n Node,
    what: &str,
    known: &[&str],
    problems: &mut Vec<Problem>,
) -> Vec<(&'n str, &'n Node, &'n Node)> {
    let Value::Map(map) = &node.value else {
        problems.push(Problem::new(
            source,
            node.pos,
            format!("{what} must be a mapping"),
        ));
        return Vec::new();
    };
    let mut out = Vec::new();
    for (k, v) in map {
        match k.as_str() {
            Some(name) if known.contains(&name) => out.push((name, k, v)),
            other => {
                let name = other.unwrap_or("?");
                let hint = did_you_mean(name, known).map_or_else(
                    || format!("expected one of {}", known.join(", ")),
                    |s| format!("did you mean `{s}`?"),
                );
                problems.push(
                    Problem::new(source, k.pos, format!("unknown field `{name}` in {what}"))
                        .with_hint(hint),
                );
            }
        }
    }
    out
}

/// A string or a list of strings.
pub(crate) fn strings(node: &Node) -> Option<Vec<String>> {
    match &node.value {
        Value::Str(s) => Some(vec![s.clone()]),
        Value::Seq(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_string))
            .collect(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Option<Node>, Problem> {
        parse(&Source::new("t.yaml", text), &Limits::default())
    }

    fn map(node: &Node) -> &[(Node, Node)] {
        match &node.value {
            Value::Map(m) => m,
            other => panic!("not a map: {other:?}"),
        }
    }

    #[test]
    fn core_schema_scalars() {
        let root = load("a: true\nb: no\nc: 12\nd: '12'\ne: ~\nf: 1.5\ng: x y\n")
            .unwrap()
            .unwrap();
        let values: Vec<_> = map(&root).iter().map(|(_, v)| v.value.clone()).collect();
        assert_eq!(
            values,
            vec![
                Value::Bool(true),
                Value::Str("no".into()),
                Value::Int(12),
                Value::Str("12".into()),
                Value::Null,
                Value::Float(1.5),
                Value::Str("x y".into()),
            ]
        );
    }

    #[test]
    fn positions_point_at_keys_and_values() {
        let root = load("rules:\n  - action: \"x\"\n    efect: deny\n")
            .unwrap()
            .unwrap();
        let (_, rules) = &map(&root)[0];
        let Value::Seq(items) = &rules.value else {
            panic!()
        };
        let (k, v) = &map(&items[0])[1];
        assert_eq!((k.pos.line, k.pos.column), (3, 5));
        assert_eq!((v.pos.line, v.pos.column), (3, 12));
        assert_eq!(k.pos.len, "efect".len());
        let (_, quoted) = &map(&items[0])[0];
        assert_eq!((quoted.pos.line, quoted.pos.column), (2, 13));
    }

    #[test]
    fn unicode_before_a_node_keeps_columns_in_characters() {
        let root = load("é: 1\nb: x\n").unwrap().unwrap();
        let (k, _) = &map(&root)[1];
        assert_eq!((k.pos.line, k.pos.column, k.pos.offset), (2, 1, 6));
    }

    #[test]
    fn anchors_and_aliases_resolve() {
        let root = load("a: &x [1, 2]\nb: *x\n").unwrap().unwrap();
        let m = map(&root);
        assert_eq!(m[0].1.value, m[1].1.value);
    }

    #[test]
    fn errors_have_positions() {
        let e = load("a: 1\na: 2\n").unwrap_err();
        assert_eq!(e.position().line, 2);
        assert!(e.message().contains("duplicate key `a`"), "{e}");
        let e = load("a: [1, 2\n").unwrap_err();
        assert!(e.message().starts_with("invalid YAML"), "{e}");
        let e = load("a: 1\n---\nb: 2\n").unwrap_err();
        assert!(e.message().contains("second"), "{e}");
        let e = load("a: !!binary abc\n").unwrap_err();
        assert!(e.message().contains("unsupported YAML tag"), "{e}");
        assert_eq!(load("").unwrap(), None);
    }
}
