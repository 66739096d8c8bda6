//! A minimal MCP client over stdio: start a server, initialize, list its tools, prompts and
//! resources, fetch the prompts that need no argument and read the resources, stop it.
//! Used by `warden mcp scan -- <command>` and by config scanning; it never calls a tool.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use thiserror::Error;

use crate::scan::ServerTools;

/// The protocol version the client offers.
pub const PROTOCOL_VERSION: &str = "2025-06-18";

/// Why a server's tools could not be listed.
#[derive(Debug, Error)]
pub enum ClientError {
    /// The command could not be started.
    #[error("cannot start `{command}`: {source}")]
    Spawn {
        /// The program.
        command: String,
        /// Why.
        source: std::io::Error,
    },
    /// The server did not answer in time.
    #[error("`{command}` did not answer `{method}` within {secs} s")]
    Timeout {
        /// The program.
        command: String,
        /// The request.
        method: String,
        /// The limit.
        secs: u64,
    },
    /// The server stopped or closed its output.
    #[error("`{command}` exited before answering `{method}`")]
    Exited {
        /// The program.
        command: String,
        /// The request.
        method: String,
    },
    /// The server answered with an error.
    #[error("`{command}` answered `{method}` with an error: {error}")]
    Rpc {
        /// The program.
        command: String,
        /// The request.
        method: String,
        /// The JSON-RPC error object.
        error: Value,
    },
    /// The command line is empty.
    #[error("no server command given")]
    Empty,
    /// A Streamable HTTP server could not be reached or answered badly.
    #[error("{url}: {why}")]
    Http {
        /// The URL.
        url: String,
        /// What went wrong.
        why: String,
    },
}

/// A running server we talk to as a client.
struct Session {
    command: String,
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    next_id: u64,
    timeout: Duration,
}

impl Session {
    fn start(
        argv: &[String],
        env: &[(String, String)],
        timeout: Duration,
    ) -> Result<Session, ClientError> {
        let (program, args) = argv.split_first().ok_or(ClientError::Empty)?;
        let command = argv.join(" ");
        let mut child = Command::new(program)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| ClientError::Spawn {
                command: command.clone(),
                source,
            })?;
        // INVARIANT: both pipes were requested above.
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Session {
            command,
            child,
            stdin,
            lines,
            next_id: 1,
            timeout,
        })
    }

    fn send(&mut self, msg: &Value) {
        // A write error means the server is gone; the read that follows reports it.
        let _ = writeln!(self.stdin, "{msg}");
        let _ = self.stdin.flush();
    }

    fn request(&mut self, method: &str, params: Value) -> Result<Value, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        let deadline = Instant::now() + self.timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match self.lines.recv_timeout(left) {
                Ok(line) => line,
                Err(RecvTimeoutError::Timeout) => {
                    return Err(ClientError::Timeout {
                        command: self.command.clone(),
                        method: method.into(),
                        secs: self.timeout.as_secs(),
                    });
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(ClientError::Exited {
                        command: self.command.clone(),
                        method: method.into(),
                    });
                }
            };
            let Ok(msg) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if msg.get("method").is_some() {
                // A request from the server (roots, sampling…): we offer no capabilities.
                if let Some(req_id) = msg.get("id") {
                    self.send(&crate::jsonrpc::error(
                        req_id,
                        -32601,
                        "method not found",
                        None,
                    ));
                }
                continue;
            }
            if msg.get("id") != Some(&json!(id)) {
                continue;
            }
            if let Some(error) = msg.get("error") {
                return Err(ClientError::Rpc {
                    command: self.command.clone(),
                    method: method.into(),
                    error: error.clone(),
                });
            }
            return Ok(msg.get("result").cloned().unwrap_or(Value::Null));
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `argv`, initialize, list every tool (following pagination) and stop the server.
/// The server is named `name` when given, else by its `serverInfo.name`.
pub fn list_tools(
    argv: &[String],
    env: &[(String, String)],
    name: Option<&str>,
    timeout: Duration,
) -> Result<ServerTools, ClientError> {
    let mut s = Session::start(argv, env, timeout)?;
    let init = s.request(
        "initialize",
        json!({"protocolVersion": PROTOCOL_VERSION, "capabilities": {},
               "clientInfo": {"name": "warden-mcp-scan", "version": env!("CARGO_PKG_VERSION")}}),
    )?;
    s.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    let server = name
        .map(String::from)
        .or_else(|| {
            init.pointer("/serverInfo/name")
                .and_then(Value::as_str)
                .map(String::from)
        })
        .unwrap_or_else(|| argv.join(" "));
    let mut pages = ToolPages::default();
    while let Some(params) = pages.next_params() {
        pages.add(&s.request("tools/list", params)?);
    }
    let mut found = pages.finish(&init, server);
    let deadline = Instant::now() + timeout;
    read_the_rest(&init, &mut found, deadline, &mut |method, params| {
        s.request(method, params)
    })?;
    Ok(found)
}

/// At most this many prompts are fetched with `prompts/get` and this many resources read
/// with `resources/read`; the rest are listed (and their descriptions scanned) but not read.
pub const MAX_READS: usize = 100;

/// A resource's text beyond this many bytes is not scanned (the scan says so).
pub const MAX_RESOURCE_BYTES: usize = 256 * 1024;

/// Everything else the model reads from a server besides its tools: the `prompts/list` and
/// `resources/list` (+ `resources/templates/list`) entries, the messages of each prompt that
/// needs no argument (`prompts/get`), and the text of each resource (`resources/read`).
///
/// Only what the server declares in its `initialize` capabilities is asked for. A listing
/// that fails is an error (the scan could not look); a single prompt or resource that cannot
/// be read, and whatever is left when the limits ([`MAX_READS`], [`MAX_RESOURCE_BYTES`], the
/// `deadline`) are reached, is recorded in `skipped` and reported.
pub(crate) fn read_the_rest(
    init: &Value,
    found: &mut ServerTools,
    deadline: Instant,
    call: &mut dyn FnMut(&str, Value) -> Result<Value, ClientError>,
) -> Result<(), ClientError> {
    let caps = init.get("capabilities");
    let has = |cap: &str| caps.and_then(|c| c.get(cap)).is_some_and(Value::is_object);
    if has("prompts") {
        found.prompts = list_all(call, "prompts/list", "prompts", deadline)?;
    }
    if has("resources") {
        found.resources = list_all(call, "resources/list", "resources", deadline)?;
        // Templates are optional in the protocol: a server without them may answer an error.
        if let Ok(templates) = list_all(
            call,
            "resources/templates/list",
            "resourceTemplates",
            deadline,
        ) {
            found.resources.extend(templates);
        }
    }
    let mut reads = 0;
    let prompts: Vec<String> = found
        .prompts
        .iter()
        .filter(|p| {
            !p.get("arguments")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|a| a.get("required") == Some(&Value::Bool(true)))
        })
        .filter_map(|p| p.get("name").and_then(Value::as_str).map(String::from))
        .collect();
    for name in prompts {
        let at = format!("prompt:{name}");
        if reads >= MAX_READS || Instant::now() >= deadline {
            found
                .skipped
                .push((at, "not fetched: the scan's limits were reached".into()));
            continue;
        }
        reads += 1;
        match call("prompts/get", json!({"name": name})) {
            Ok(result) => found.contents.push((at, result)),
            Err(e) => found
                .skipped
                .push((at, format!("could not be fetched: {e}"))),
        }
    }
    let uris: Vec<String> = found
        .resources
        .iter()
        .filter_map(|r| r.get("uri").and_then(Value::as_str).map(String::from))
        .collect();
    let mut reads = 0;
    for uri in uris {
        let at = format!("resource:{uri}");
        if reads >= MAX_READS || Instant::now() >= deadline {
            found
                .skipped
                .push((at, "not read: the scan's limits were reached".into()));
            continue;
        }
        reads += 1;
        match call("resources/read", json!({"uri": uri})) {
            Ok(mut result) => {
                if bound_contents(&mut result) {
                    found.skipped.push((
                        at.clone(),
                        format!(
                            "only the first {MAX_RESOURCE_BYTES} bytes of its text were scanned"
                        ),
                    ));
                }
                found.contents.push((at, result));
            }
            Err(e) => found.skipped.push((at, format!("could not be read: {e}"))),
        }
    }
    Ok(())
}

/// Cut every `text` of a `resources/read` result to [`MAX_RESOURCE_BYTES`] (at a character
/// boundary) and drop binary `blob`s, which the text rules cannot read; whether anything was cut.
fn bound_contents(result: &mut Value) -> bool {
    let mut cut = false;
    for item in result
        .get_mut("contents")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        if let Some(obj) = item.as_object_mut() {
            obj.remove("blob");
            if let Some(Value::String(text)) = obj.get_mut("text")
                && text.len() > MAX_RESOURCE_BYTES
            {
                let mut end = MAX_RESOURCE_BYTES;
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                text.truncate(end);
                cut = true;
            }
        }
    }
    cut
}

/// Every entry of a paginated listing (`key` of each page), bounded by [`MAX_PAGES`] and the
/// deadline.
fn list_all(
    call: &mut dyn FnMut(&str, Value) -> Result<Value, ClientError>,
    method: &str,
    key: &str,
    deadline: Instant,
) -> Result<Vec<Value>, ClientError> {
    let mut items = Vec::new();
    let mut cursor: Option<Value> = None;
    for _ in 0..MAX_PAGES {
        let params = match &cursor {
            Some(c) => json!({"cursor": c}),
            None => json!({}),
        };
        let page = call(method, params)?;
        if let Some(list) = page.get(key).and_then(Value::as_array) {
            items.extend(list.iter().cloned());
        }
        cursor = page.get("nextCursor").filter(|c| !c.is_null()).cloned();
        if cursor.is_none() || Instant::now() >= deadline || items.len() > 10 * MAX_READS {
            break;
        }
    }
    Ok(items)
}

/// A paginated `tools/list`, collected the same way over every transport: ask with the last
/// `nextCursor` until the server gives none.
#[derive(Default)]
pub(crate) struct ToolPages {
    tools: Vec<Value>,
    cursor: Option<Value>,
    pages: usize,
}

/// A server that pages forever is cut off; 1000 pages is far beyond any real server.
const MAX_PAGES: usize = 1000;

impl ToolPages {
    /// The params of the next `tools/list` request, or `None` when the listing is complete.
    pub(crate) fn next_params(&self) -> Option<Value> {
        match (&self.cursor, self.pages) {
            (_, n) if n >= MAX_PAGES => None,
            (None, 0) => Some(json!({})),
            (None, _) => None,
            (Some(c), _) => Some(json!({"cursor": c})),
        }
    }

    /// Take one page's tools and cursor.
    pub(crate) fn add(&mut self, page: &Value) {
        self.pages += 1;
        if let Some(list) = page.get("tools").and_then(Value::as_array) {
            self.tools.extend(list.iter().cloned());
        }
        self.cursor = page.get("nextCursor").filter(|c| !c.is_null()).cloned();
    }

    /// The server's tools, with the `instructions` from its `initialize` answer.
    pub(crate) fn finish(self, init: &Value, server: String) -> ServerTools {
        ServerTools {
            instructions: init
                .get("instructions")
                .and_then(Value::as_str)
                .map(String::from),
            server,
            tools: self.tools,
            ..ServerTools::default()
        }
    }
}
