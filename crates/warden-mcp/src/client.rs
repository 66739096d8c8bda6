//! A minimal MCP client over stdio: start a server, initialize, list its tools, stop it.
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
    Ok(pages.finish(&init, server))
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
            named_after_file: false,
        }
    }
}
