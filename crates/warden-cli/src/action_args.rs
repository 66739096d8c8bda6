//! The flags that describe an action, shared by `check` and `policy explain`.

use std::io::Read;

use clap::Args;
use serde_json::{Map, Value};
use warden_core::Action;

/// An action given as flags, or as JSON with `--input`.
#[derive(Args, Debug, Clone)]
pub struct ActionArgs {
    /// The action name, e.g. `http_request`.
    #[arg(long, short = 'a', value_name = "NAME", conflicts_with = "input")]
    pub action: Option<String>,
    /// The agent asking (a name or DID).
    #[arg(long, value_name = "NAME")]
    pub agent: Option<String>,
    /// The tool being called.
    #[arg(long, value_name = "NAME")]
    pub tool: Option<String>,
    /// The resource touched.
    #[arg(long, value_name = "NAME")]
    pub resource: Option<String>,
    /// An argument `key=value`; the value is read as JSON when it parses (`n=5`, `ok=true`),
    /// else as a string (`method=GET`). Repeatable.
    #[arg(long = "arg", value_name = "KEY=VALUE")]
    pub args: Vec<String>,
    /// A context entry `key=value`, read like `--arg`. Repeatable.
    #[arg(long = "context", value_name = "KEY=VALUE")]
    pub context: Vec<String>,
    /// The whole action as JSON, from a file or `-` for stdin.
    #[arg(long, value_name = "FILE|-")]
    pub input: Option<String>,
}

impl ActionArgs {
    /// Build the action; the error names the flag or input that was wrong.
    pub fn action(&self) -> Result<Action, String> {
        if let Some(input) = &self.input {
            if self.agent.is_some()
                || self.tool.is_some()
                || self.resource.is_some()
                || !self.args.is_empty()
                || !self.context.is_empty()
            {
                return Err(
                    "--input gives the whole action; do not combine it with --agent, --tool, --resource, --arg or --context".into(),
                );
            }
            let text = read_input(input)?;
            return Action::from_json(&text).map_err(|e| format!("{input}: {e}"));
        }
        let Some(name) = &self.action else {
            return Err(
                "give the action with --action NAME, or as JSON with --input FILE|-".into(),
            );
        };
        let mut action = Action::new(name.clone());
        action.agent.clone_from(&self.agent);
        action.tool.clone_from(&self.tool);
        action.resource.clone_from(&self.resource);
        action.args = Value::Object(pairs(&self.args, "--arg")?);
        action.context = Value::Object(pairs(&self.context, "--context")?);
        action.validate().map_err(|e| e.to_string())?;
        Ok(action)
    }
}

/// Read a file, or stdin for `-`.
pub fn read_input(input: &str) -> Result<String, String> {
    if input == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("cannot read stdin: {e}"))?;
        Ok(text)
    } else {
        std::fs::read_to_string(input).map_err(|e| format!("cannot read {input}: {e}"))
    }
}

fn pairs(items: &[String], flag: &str) -> Result<Map<String, Value>, String> {
    let mut map = Map::new();
    for item in items {
        let Some((key, value)) = item.split_once('=') else {
            return Err(format!("{flag} {item:?}: expected KEY=VALUE"));
        };
        if key.is_empty() {
            return Err(format!("{flag} {item:?}: the key is empty"));
        }
        let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.into()));
        map.insert(key.to_string(), value);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_json_when_they_parse() {
        let m = pairs(
            &["n=5".into(), "m=GET".into(), "s=\"5\"".into(), "e=".into()],
            "--arg",
        )
        .unwrap();
        assert_eq!(m["n"], Value::from(5));
        assert_eq!(m["m"], Value::from("GET"));
        assert_eq!(m["s"], Value::from("5"));
        assert_eq!(m["e"], Value::from(""));
        assert!(
            pairs(&["novalue".into()], "--arg")
                .unwrap_err()
                .contains("KEY=VALUE")
        );
        assert!(
            pairs(&["=x".into()], "--arg")
                .unwrap_err()
                .contains("key is empty")
        );
    }
}
