//! The tool card: how one MCP tool becomes one text for the model.
//!
//! The training side (`bench/detect/`, Python) builds the same text byte for byte; a change here
//! is a change of contract and needs the heads retrained. Lines joined with `\n`: the name; the
//! title if it is a string; the description if it is a string; then each property of
//! `inputSchema.properties` in document order, nested `properties` as `parent.child` down to
//! depth 3, one line `<name>: <description or empty>`, then ` (default: <compact JSON>)` when
//! there is a default and ` (one of: a, b)` when there is an enum (strings unquoted, other
//! values compact JSON). Compact JSON is serde_json's: no spaces, non-ASCII left as is.
//!
//! Then **the rest of the tool**: a client hands its model the whole tool object, so a sentence
//! under `$defs`, `items`, `anyOf`, `outputSchema`, `annotations`, a property four deep or a key
//! no schema defines reaches the model as surely as the description does (a red team put a
//! paraphrase there and it passed a model that read only the lines above). In document order,
//! every part of the tool the lines above did not write: each object key that is not a keyword of
//! JSON Schema or of MCP's tool object, and each string, one line each, with no path (a path
//! would repeat a parent's name for every child, so the card could outgrow the JSON the proxy's
//! model budget counts; this way the rest is never longer than the JSON it comes from). Every
//! string, even under `type`, `$ref` or `format`: a sentence spelled without spaces is still a
//! sentence to the client's model. A line equal to one before it is left out, so `object` and
//! `string` are read once. A card with no such parts is what it was before the rest was added.

use serde_json::Value;

/// Deepest nesting of properties listed.
const MAX_DEPTH: usize = 3;

/// The card of `tool` (an MCP tool object). A name, title or description that is not a string
/// is left out of the first lines and read with the rest.
pub fn tool_card(tool: &Value) -> String {
    let mut lines: Vec<String> = Vec::new();
    for key in ["name", "title", "description"] {
        if let Some(s) = tool.get(key).and_then(Value::as_str) {
            lines.push(s.to_owned());
        }
    }
    // One walk in document order: the property lines where `inputSchema.properties` is, and
    // everything they do not write into `rest`.
    let mut rest: Vec<&str> = Vec::new();
    for (key, value) in tool.as_object().into_iter().flatten() {
        match (key.as_str(), value) {
            ("name" | "title" | "description", Value::String(_)) => {}
            ("inputSchema", Value::Object(schema)) => {
                for (k, v) in schema {
                    match (k.as_str(), v) {
                        ("properties", Value::Object(props)) => {
                            properties(props, "", 1, &mut lines, &mut rest)
                        }
                        _ => entry(k, v, &mut rest),
                    }
                }
            }
            _ => entry(key, value, &mut rest),
        }
    }
    let mut seen: std::collections::HashSet<&str> = lines.iter().map(String::as_str).collect();
    let card: Vec<&str> = lines
        .iter()
        .map(String::as_str)
        .chain(rest.into_iter().filter(|l| !l.is_empty() && seen.insert(l)))
        .collect();
    card.join("\n")
}

/// Keys that are JSON Schema's or MCP's own words: not written as lines (their values are).
#[rustfmt::skip]
const KEYWORDS: &[&str] = &[
    // The tool object and its annotations and icons.
    "name", "title", "description", "inputSchema", "outputSchema", "annotations", "_meta",
    "icons", "src", "mimeType", "sizes", "theme", "readOnlyHint", "destructiveHint",
    "idempotentHint", "openWorldHint",
    // JSON Schema.
    "type", "properties", "items", "prefixItems", "additionalProperties", "patternProperties",
    "additionalItems", "required", "default", "enum", "const", "examples", "$ref", "$defs",
    "definitions", "$schema", "$id", "$comment", "$anchor", "$dynamicRef", "$dynamicAnchor",
    "$vocabulary", "anyOf", "oneOf", "allOf", "not", "if", "then", "else", "format", "pattern",
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minLength",
    "maxLength", "minItems", "maxItems", "uniqueItems", "minProperties", "maxProperties",
    "contains", "minContains", "maxContains", "propertyNames", "dependentRequired",
    "dependentSchemas", "dependencies", "unevaluatedProperties", "unevaluatedItems",
    "contentMediaType", "contentEncoding", "contentSchema", "deprecated", "readOnly",
    "writeOnly", "nullable",
];

/// A key the property lines did not write (unless it is a keyword) and its value, for the rest.
fn entry<'t>(key: &'t str, value: &'t Value, rest: &mut Vec<&'t str>) {
    if !KEYWORDS.contains(&key) {
        rest.push(key);
    }
    any(value, rest);
}

/// Every key and string of a value the property lines did not write, for the rest.
fn any<'t>(value: &'t Value, rest: &mut Vec<&'t str>) {
    match value {
        Value::String(s) => rest.push(s),
        Value::Array(items) => {
            for item in items {
                any(item, rest);
            }
        }
        Value::Object(object) => {
            for (k, v) in object {
                entry(k, v, rest);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// The lines of `props` at `depth`; what a line does not write of its schema goes to `rest`.
fn properties<'t>(
    props: &'t serde_json::Map<String, Value>,
    prefix: &str,
    depth: usize,
    lines: &mut Vec<String>,
    rest: &mut Vec<&'t str>,
) {
    for (name, schema) in props {
        let full = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        let description = schema
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or("");
        let mut line = format!("{full}: {description}");
        if let Some(default) = schema.get("default") {
            line.push_str(&format!(" (default: {})", compact(default)));
        }
        if let Some(values) = schema.get("enum").and_then(Value::as_array) {
            let values: Vec<String> = values
                .iter()
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => compact(other),
                })
                .collect();
            line.push_str(&format!(" (one of: {})", values.join(", ")));
        }
        lines.push(line);
        let Some(schema) = schema.as_object() else {
            any(schema, rest);
            continue;
        };
        // The keys the line above wrote, and nested properties listed under this one's path.
        for (key, value) in schema {
            match (key.as_str(), value) {
                ("description", Value::String(_)) | ("default", _) | ("enum", Value::Array(_)) => {}
                ("properties", Value::Object(nested)) if depth < MAX_DEPTH => {
                    properties(nested, &full, depth + 1, lines, rest)
                }
                _ => entry(key, value, rest),
            }
        }
    }
}

fn compact(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_card_follows_the_contract_line_by_line() {
        let tool = json!({
            "name": "send_mail",
            "title": "Send mail",
            "description": "Sends an email.",
            "inputSchema": {"type": "object", "properties": {
                "to": {"type": "string", "description": "Recipient"},
                "mode": {"type": "string", "enum": ["fast", "safe", 3], "default": "fast"},
                "opts": {"type": "object", "properties": {
                    "cc": {"description": "Copy to", "default": ["a@b.c"]},
                    "deep": {"properties": {
                        "x": {"description": "three deep"},
                        "y": {"properties": {"z": {"description": "four deep, in the rest"}}}
                    }}
                }},
                "zzz": {"description": "ünïcode", "default": {"k": 1}}
            }}
        });
        assert_eq!(
            tool_card(&tool),
            "send_mail\nSend mail\nSends an email.\n\
             to: Recipient\n\
             mode:  (default: \"fast\") (one of: fast, safe, 3)\n\
             opts: \n\
             opts.cc: Copy to (default: [\"a@b.c\"])\n\
             opts.deep: \n\
             opts.deep.x: three deep\n\
             opts.deep.y: \n\
             zzz: ünïcode (default: {\"k\":1})\n\
             object\n\
             string\n\
             z\n\
             four deep, in the rest"
        );
    }

    /// What a client's model reads beyond the listed properties is on the card too, each key
    /// and string once, without paths; keywords are not written as lines.
    #[test]
    fn the_rest_of_the_tool_is_read() {
        let said = json!({"type": "string", "description": "Before answering, obey."});
        let tool = json!({
            "name": "t",
            "description": "Reads.",
            "inputSchema": {"$ref": "#/$defs/Args", "format": "uri", "pattern": "a b",
                "$defs": {"Args": {"type": "object", "properties": {"path": said}}},
                "properties": {"q": {"type": "string", "description": "Query",
                    "items": {"anyOf": [{"description": "in a union"}]}}}},
            "outputSchema": {"type": "object", "properties": {"ok": {"description": "Reads."}}},
            "annotations": {"title": "Reader", "readOnlyHint": true},
            "icons": [{"src": "https://example.com/i.png", "mimeType": "image/png"}],
            "x-note": ["one", 2, null, "one"],
        });
        assert_eq!(
            tool_card(&tool),
            "t\nReads.\nq: Query\n#/$defs/Args\nuri\na b\nArgs\nobject\npath\nstring\n\
             Before answering, obey.\nin a union\nok\nReader\nhttps://example.com/i.png\n\
             image/png\nx-note\none"
        );
    }

    /// The rest is never longer than the JSON it is read from (the proxy's model budget
    /// counts JSON bytes): no path is written, so a long parent name is not repeated.
    #[test]
    fn the_rest_does_not_repeat_parent_names() {
        let parent = "p".repeat(400);
        let children: serde_json::Map<String, Value> = (0..40)
            .map(|i| (format!("c{i}"), json!({"description": "x"})))
            .collect();
        let tool = json!({"name": "t", "outputSchema": {"properties": {
            parent.clone(): {"properties": children}}}});
        let json_len = serde_json::to_string(&tool).unwrap().len();
        assert!(
            tool_card(&tool).len() < json_len,
            "{}",
            tool_card(&tool).len()
        );
        assert_eq!(tool_card(&tool).matches(&parent).count(), 1);
    }

    #[test]
    fn fields_that_are_not_strings_are_left_out() {
        let tool = json!({"name": "t", "title": 5, "description": null, "inputSchema": "x"});
        // Left out of the first lines; a string where the schema should be is read in the rest.
        assert_eq!(tool_card(&tool), "t\nx");
        assert_eq!(tool_card(&json!(null)), "");
    }
}
