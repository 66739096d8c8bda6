//! The MCP proxy: sits between an MCP client and a server and puts what the client asks and
//! what the server answers through Warden.
//!
//! One [`Gateway`] per conversation holds every decision ([`gateway`]); two transports feed
//! it messages: newline-delimited JSON-RPC over the server's stdio ([`stdio::run`]) and
//! Streamable HTTP ([`http::run`]). A transport frames, forwards and answers; it never
//! decides. In short (the full table is in `docs/mcp.md`):
//!
//! - `tools/call`, `resources/read`, `prompts/get` are decided by policy before they reach
//!   the server; a refusal is answered by the proxy.
//! - `tools/list` answers are scanned; poisoned or drifted tools are withheld.
//! - Answers (results and errors) are scanned for injected instructions and secrets, and
//!   redacted or blocked by policy. A server's `sampling/createMessage` is decided too.
//! - Calls to the tools configured as memory writes are decided as `memory.write` too
//!   (quarantine, provenance); answers of memory reads keep only the items Warden can vouch
//!   for ([`memory`]).
//! - An answer reaches the client only if it answers a request the client sent and that is
//!   still waiting, by id value and type; anything else is dropped and logged.
//! - Variants of the methods above (`Tools/Call`, `"tools/call "`), `tools/call` as a
//!   notification, and malformed or oversized messages are refused and never forwarded.

mod argument_case;
mod gateway;
mod hold;
pub mod http;
mod listing;
mod memory;
mod method;
mod pending;
mod requests;
mod results;
pub mod stdio;

use std::net::SocketAddr;

use thiserror::Error;

use crate::lock::Lock;

pub use gateway::{Gateway, Inbound, Outbound, Wire};
pub use hold::Held;
pub use memory::{MAX_READ_TEXTS, MemoryTools, memory_detector, memory_model_detector};
pub use stdio::run;

/// The default largest message, in bytes: a stdio line, a POST body, an upstream JSON answer
/// or one SSE event (16 MiB).
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// The default [`ProxyConfig::model_listing_bytes`]: 512 KiB of entry JSON, almost three
/// times the largest real listing in the benign set (185 KB, 47 tools): ~2,000 model windows
/// (~35 s of one core) for a listing of English text, at most ~8,200 (~140 s: one token per
/// byte, as punctuation is) for the worst a server can send.
pub const DEFAULT_MODEL_LISTING_BYTES: usize = 512 * 1024;

/// How many requests may wait for their answer at once, in each direction, per conversation.
pub const MAX_PENDING: usize = 4096;

/// How the proxy is set up.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// The server command and its arguments (stdio).
    pub command: Vec<String>,
    /// Pins: tools that are new or changed since pinning are withheld.
    pub lock: Option<Lock>,
    /// The server's name in actions' `context.server` and in the lock; default: the
    /// `serverInfo.name` the server reports in its `initialize` answer.
    pub server_name: Option<String>,
    /// The agent every decided action is attributed to (`Action::agent`).
    pub agent: Option<String>,
    /// The credential or delegation chain (its JSON) every decided action carries as
    /// `context.credential`; Warden verifies it and judges the action as its DID. The
    /// client never supplies it: what a client sends lands in `args`, not `context`.
    pub credential: Option<serde_json::Value>,
    /// The largest message accepted from either side, in bytes: a longer one is refused
    /// (with an error answer where there is someone to answer) and never forwarded.
    pub max_message_bytes: usize,
    /// How long a client request whose action needs a person's approval is held, waiting
    /// for the answer to its approval request (Warden database only), before it is answered
    /// with the refusal; zero answers at once. An approved request is decided again (the
    /// approval is used) and forwarded.
    pub approval_wait: std::time::Duration,
    /// The server's tools that write memory (also decided as `memory.write`) and that read
    /// it back (answers filtered to texts with provenance, when the guard requires it).
    pub memory: MemoryTools,
    /// A local detection model, run on what the rules pass: tool results (and the other
    /// answers the rules read), and the entries of tool, prompt and resource listings. What
    /// it flags is a finding (`model.text`, `model.tool`) decided by policy like the rules'
    /// findings; a model error is the finding `model.error` (fail closed). `None`: rules
    /// only.
    pub classifier: Option<std::sync::Arc<dyn crate::TextClassifier>>,
    /// The most bytes of entry JSON the model reads in one tool, prompt or resource listing
    /// (entries the rules passed, in listing order); an entry past it gets the high finding
    /// `model.partial` and is withheld unless a rule allows it. Bounds the model time one
    /// listing can cost; default [`DEFAULT_MODEL_LISTING_BYTES`].
    pub model_listing_bytes: usize,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            command: Vec::new(),
            lock: None,
            server_name: None,
            agent: None,
            credential: None,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            approval_wait: std::time::Duration::ZERO,
            memory: MemoryTools::default(),
            classifier: None,
            model_listing_bytes: DEFAULT_MODEL_LISTING_BYTES,
        }
    }
}

/// The transport a conversation runs over (in every action's `context.transport`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Newline-delimited JSON-RPC over a server's stdin/stdout.
    Stdio,
    /// MCP Streamable HTTP.
    Http,
}

impl Transport {
    /// `stdio` or `http`.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Stdio => "stdio",
            Transport::Http => "http",
        }
    }
}

/// The proxy could not run.
#[derive(Debug, Error)]
pub enum ProxyError {
    /// The server command could not be started.
    #[error("cannot start the server `{command}`: {source}")]
    Spawn {
        /// The command.
        command: String,
        /// Why.
        source: std::io::Error,
    },
    /// No server command was given.
    #[error("no server command given")]
    NoCommand,
    /// The upstream URL of the HTTP proxy is not usable.
    #[error("upstream `{url}`: {why}")]
    Upstream {
        /// The URL.
        url: String,
        /// Why.
        why: String,
    },
    /// The HTTP proxy could not listen.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A non-loopback listen address without `insecure`.
    #[error(
        "refusing to listen on {0}: anyone who can reach it could use the upstream MCP server through this proxy; listen on a loopback address, or accept the risk explicitly"
    )]
    NotLoopback(SocketAddr),
    /// The message limit is zero.
    #[error("the message size limit must be at least 1 byte")]
    NoRoom,
    /// A thread that relays messages could not be started.
    #[error("cannot start a relay thread: {0}")]
    Thread(std::io::Error),
    /// The kill switch stopped the agent, and the server was terminated.
    #[error("the server was terminated: {0}")]
    Killed(String),
}

/// Stack for the threads that decide: policy engines recurse within the bounds their loaders
/// set, and get room beyond them (address space only).
const DECISION_STACK: usize = 16 << 20;
