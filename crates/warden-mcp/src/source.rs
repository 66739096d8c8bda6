//! Where tool lists come from: saved `tools/list` results, MCP client configs
//! (`mcpServers` of Claude Desktop / Cursor, `servers` of VS Code), and server commands.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use thiserror::Error;

use crate::client::{self, ClientError};
use crate::scan::ServerTools;

/// A target that could not be read.
#[derive(Debug, Error)]
pub enum SourceError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not JSON.
    #[error("{path}: not JSON: {source}")]
    Json {
        /// The file.
        path: String,
        /// Why.
        source: serde_json::Error,
    },
    /// JSON, but neither a tool list nor a client config.
    #[error(
        "{path}: neither a tools/list result (`tools`) nor an MCP client config (`mcpServers` or `servers`)"
    )]
    Shape {
        /// The file.
        path: String,
    },
    /// The tool list has entries that are not tools.
    #[error("{what}: malformed tool list: {why}")]
    Malformed {
        /// The file or server.
        what: String,
        /// Which entry, and what is wrong with it.
        why: String,
    },
    /// A config entry or URL we cannot scan.
    #[error("{what}: {why}")]
    Unsupported {
        /// The entry.
        what: String,
        /// Why.
        why: String,
    },
    /// Talking to a server failed.
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// Load one target: a JSON file (tool list or client config) or a Streamable HTTP URL.
/// A config yields one entry per server in it, in the config's order. `https://` servers
/// (by URL or in a config) are verified against the OS trust store plus `ca_cert` (PEM).
/// A tool list with entries that are not tools is an error, whatever its source.
pub fn load_target(
    target: &str,
    timeout: Duration,
    ca_cert: Option<&Path>,
) -> Vec<Result<ServerTools, SourceError>> {
    load_unchecked(target, timeout, ca_cert)
        .into_iter()
        .map(|r| r.and_then(|s| checked(s, target)))
        .collect()
}

/// Refuse a tool list with entries that are not tools.
fn checked(s: ServerTools, what: &str) -> Result<ServerTools, SourceError> {
    match s.check_tools() {
        Ok(()) => Ok(s),
        Err(why) => Err(SourceError::Malformed {
            what: if what == s.server || s.named_after_file {
                what.to_string()
            } else {
                format!("{what} (server `{}`)", s.server)
            },
            why,
        }),
    }
}

fn load_unchecked(
    target: &str,
    timeout: Duration,
    ca_cert: Option<&Path>,
) -> Vec<Result<ServerTools, SourceError>> {
    if target.starts_with("http://") || target.starts_with("https://") {
        return vec![from_url(target, timeout, ca_cert)];
    }
    let path = Path::new(target);
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(source) => {
            return vec![Err(SourceError::Io {
                path: target.into(),
                source,
            })];
        }
    };
    let value: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(source) => {
            return vec![Err(SourceError::Json {
                path: target.into(),
                source,
            })];
        }
    };
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or(target);
    if let Some(servers) = value
        .get("mcpServers")
        .or_else(|| value.get("servers"))
        .and_then(Value::as_object)
    {
        return servers
            .iter()
            .map(|(name, entry)| from_config_entry(name, entry, timeout, ca_cert))
            .collect();
    }
    // A file's name is only a label; a name saved inside it is the server's own.
    let named = ServerTools::name_in(&value);
    match ServerTools::from_json(named.unwrap_or(stem), &value) {
        Some(mut s) => {
            s.named_after_file = named.is_none();
            vec![Ok(s)]
        }
        None => vec![Err(SourceError::Shape {
            path: target.into(),
        })],
    }
}

/// Start the server a config entry describes and list its tools (named by the config key).
fn from_config_entry(
    name: &str,
    entry: &Value,
    timeout: Duration,
    ca_cert: Option<&Path>,
) -> Result<ServerTools, SourceError> {
    let Some(command) = entry.get("command").and_then(Value::as_str) else {
        if let Some(url) = entry.get("url").and_then(Value::as_str) {
            let mut s = from_url(url, timeout, ca_cert)?;
            s.server = name.to_string();
            return Ok(s);
        }
        let why = "the entry has neither a `command` nor a `url`";
        return Err(SourceError::Unsupported {
            what: format!("server `{name}`"),
            why: why.into(),
        });
    };
    let mut argv = vec![command.to_string()];
    argv.extend(
        entry
            .get("args")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(String::from),
    );
    let env: Vec<(String, String)> = entry
        .get("env")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
        .collect();
    Ok(client::list_tools(&argv, &env, Some(name), timeout)?)
}

/// List the tools of a Streamable HTTP server.
#[cfg(feature = "http")]
fn from_url(
    url: &str,
    timeout: Duration,
    ca_cert: Option<&Path>,
) -> Result<ServerTools, SourceError> {
    Ok(crate::http::list_tools(url, timeout, ca_cert)?)
}

/// Without the `http` feature there is no HTTP client.
#[cfg(not(feature = "http"))]
fn from_url(
    url: &str,
    _timeout: Duration,
    _ca_cert: Option<&Path>,
) -> Result<ServerTools, SourceError> {
    Err(SourceError::Unsupported {
        what: url.into(),
        why: "built without the `http` feature".into(),
    })
}

/// Start a server command and list its tools (named by its `serverInfo.name`).
pub fn load_command(argv: &[String], timeout: Duration) -> Result<ServerTools, SourceError> {
    checked(
        client::list_tools(argv, &[], None, timeout)?,
        &argv.join(" "),
    )
}
