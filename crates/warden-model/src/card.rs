//! The tool card: how one MCP tool becomes one text for the model.
//!
//! The training side (`bench/detect/`, Python) builds the same text byte for byte; a change here
//! is a change of contract and needs the heads retrained. Lines joined with `\n`: the name; the
//! title if it is a string; the description if it is a string; then each property of
//! `inputSchema.properties` in document order, nested `properties` as `parent.child` down to
//! depth 3, one line `<name>: <description or empty>`, then ` (default: <compact JSON>)` when
//! there is a default and ` (one of: a, b)` when there is an enum (strings unquoted, other
//! values compact JSON). Compact JSON is serde_json's: no spaces, non-ASCII left as is.

use serde_json::Value;

/// Deepest nesting of properties listed.
const MAX_DEPTH: usize = 3;

/// The card of `tool` (an MCP tool object). Missing or non-string fields are left out.
pub fn tool_card(tool: &Value) -> String {
    let mut lines: Vec<String> = Vec::new();
    for key in ["name", "title", "description"] {
        if let Some(s) = tool.get(key).and_then(Value::as_str) {
            lines.push(s.to_owned());
        }
    }
    if let Some(props) = tool
        .get("inputSchema")
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object)
    {
        properties(props, "", 1, &mut lines);
    }
    lines.join("\n")
}

fn properties(
    props: &serde_json::Map<String, Value>,
    prefix: &str,
    depth: usize,
    lines: &mut Vec<String>,
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
        if depth < MAX_DEPTH
            && let Some(nested) = schema.get("properties").and_then(Value::as_object)
        {
            properties(nested, &full, depth + 1, lines);
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
                        "y": {"properties": {"z": {"description": "four deep, not listed"}}}
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
             zzz: ünïcode (default: {\"k\":1})"
        );
    }

    #[test]
    fn fields_that_are_not_strings_are_left_out() {
        let tool = json!({"name": "t", "title": 5, "description": null, "inputSchema": "x"});
        assert_eq!(tool_card(&tool), "t");
        assert_eq!(tool_card(&json!(null)), "");
    }
}
