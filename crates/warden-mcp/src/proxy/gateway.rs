//! [`Gateway`]: one client–server conversation's state and the routing of every message
//! through it. Both transports hand it whole messages and do what it says; the decisions
//! themselves are in [`super::requests`] (what the client or server asks),
//! [`super::listing`] (tool listings) and [`super::results`] (answers).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde_json::{Value, json};
use warden::{Action, Warden};

use super::hold::{Held, HoldTicket, Refused};
use super::method::{self, Class, Special};
use super::pending::{Pending, Refusal, Unmatched, Waiting};
use super::{MAX_PENDING, ProxyConfig, Transport};
use crate::jsonrpc::framing::Oversize;
use crate::jsonrpc::{self, Kind, Message, code};

/// What to do with a message from the client.
#[derive(Debug)]
pub enum Inbound {
    /// Send it on to the server (possibly rewritten: an answer gets the server's own id).
    Forward(Value),
    /// Do not send it on; answer the client's request with this response instead (a
    /// refusal, or a parameter error).
    Answer(Value),
    /// Not acceptable as sent (not JSON-RPC, a refused notification): this error, with the
    /// request's id when it had one, else null.
    Malformed(Value),
    /// An answer to nothing the server asked: dropped (logged), nobody to tell.
    Dropped(String),
    /// A request held for a person's approval: hand it to [`Gateway::settle`] off the
    /// reading thread, then do what that says.
    Held(Box<Held>),
}

/// What to do with a message from the server.
#[derive(Debug, Clone, PartialEq)]
pub enum Outbound {
    /// Send it on to the client (possibly filtered, or replaced by an error).
    Forward(Value),
    /// Do not send it on; answer the server's request with this response (a refusal).
    Answer(Value),
    /// Drop it (logged): malformed, a batch, or an answer to nothing the client asked.
    Drop,
}

/// How a line-based transport writes a message the gateway lets through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// The line as it came: it is plain (see [`crate::jsonrpc::plain`]: every reader makes of
    /// it what the gateway judged) and the gateway did not change the message.
    AsReceived,
    /// The message serialized from the value the gateway judged (and possibly changed).
    Canonical,
}

impl Wire {
    fn of(plain: bool) -> Wire {
        if plain {
            Wire::AsReceived
        } else {
            Wire::Canonical
        }
    }
}

/// One conversation's policy state and decision path, shared by both transports: the
/// stdio proxy feeds it lines, the Streamable HTTP proxy POST bodies and SSE events. Every
/// Warden decision the proxy makes goes through here.
pub struct Gateway {
    pub(super) state: Mutex<State>,
    pub(super) warden: Arc<Warden>,
    pub(super) config: Arc<ProxyConfig>,
    transport: Transport,
}

/// What the gateway remembers between messages.
pub(super) struct State {
    /// The client's requests waiting for the server's answer.
    pub(super) from_client: Pending,
    /// The server's requests waiting for the client's answer.
    pub(super) from_server: Pending,
    /// Tools withheld from the client, by exact name, with the reason.
    pub(super) withheld: HashMap<String, String>,
    /// Tools seen in a listing and not withheld.
    pub(super) verified: HashSet<String>,
    /// Every tool name seen in a listing, by its folded form (see [`method::fold`]).
    pub(super) known: HashMap<String, String>,
    /// The `inputSchema` of each tool the client may call, as last listed, with what it
    /// costs to keep: a call's argument keys are checked against it (see `argument_case`).
    pub(super) schemas: HashMap<String, (Arc<Value>, usize)>,
    /// What the tool names in `known` and the `schemas` cost to keep, bounded by
    /// `listing::MAX_KEPT` (a hostile server lists new names and big schemas again and again).
    pub(super) kept: usize,
    /// With a lock, only `verified` tools may be called: a tool the client calls without
    /// listing it first was never checked against its pin.
    pub(super) require_verified: bool,
    pub(super) server: String,
    pub(super) session: Option<String>,
}

/// The context key every action the proxy decides carries, with [`GATEWAY`] as its value:
/// the dashboard's MCP findings page shows only records so marked, and `warden serve`
/// refuses callers of its API that set it.
pub const GATEWAY_CONTEXT: &str = "gateway";
/// The value of [`GATEWAY_CONTEXT`].
pub const GATEWAY: &str = "warden-mcp";

pub(super) fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Gateway {
    /// A fresh conversation over `transport`.
    pub fn new(warden: Arc<Warden>, config: Arc<ProxyConfig>, transport: Transport) -> Gateway {
        Gateway {
            state: Mutex::new(State {
                from_client: Pending::new(MAX_PENDING),
                from_server: Pending::new(MAX_PENDING),
                withheld: HashMap::new(),
                verified: HashSet::new(),
                known: HashMap::new(),
                schemas: HashMap::new(),
                kept: 0,
                require_verified: config.lock.is_some(),
                server: config
                    .server_name
                    .clone()
                    .unwrap_or_else(|| "unknown".into()),
                session: None,
            }),
            warden,
            config,
            transport,
        }
    }

    /// Name the conversation's session (Streamable HTTP's `Mcp-Session-Id`), for the
    /// actions' `context.session`.
    pub fn set_session(&self, session: &str) {
        lock(&self.state).session = Some(session.to_string());
    }

    /// A new action with what every action of this conversation carries: the agent, and
    /// `context.gateway` (`warden-mcp`), `context.server`, `context.transport`, (when there is one) `context.session` and
    /// (when the proxy was given one) `context.credential`.
    pub(super) fn action(&self, name: &str) -> Action {
        let (server, session) = {
            let s = lock(&self.state);
            (s.server.clone(), s.session.clone())
        };
        let mut action = Action::new(name)
            .with_context(GATEWAY_CONTEXT, GATEWAY)
            .with_context("server", server)
            .with_context("transport", self.transport.as_str());
        if let Some(session) = session {
            action = action.with_context("session", session);
        }
        if let Some(agent) = &self.config.agent {
            action = action.with_agent(agent.clone());
        }
        if let Some(credential) = &self.config.credential {
            action = action.with_context("credential", credential.clone());
        }
        action
    }

    /// Decide one message (one line, one POST body) from the client.
    pub fn from_client(&self, raw: &[u8]) -> Inbound {
        self.from_client_line(raw).0
    }

    /// Decide one line from the client, and say whether a forwarded message may go on as
    /// the line itself ([`Wire::AsReceived`]) or must be re-serialized.
    pub fn from_client_line(&self, raw: &[u8]) -> (Inbound, Wire) {
        match self.route(Side::Client, raw) {
            Routed::Forward(v, wire) => (Inbound::Forward(v), wire),
            Routed::Refuse(answer) => (Inbound::Answer(answer), Wire::Canonical),
            Routed::Reject(error) => (Inbound::Malformed(error), Wire::Canonical),
            Routed::Drop(why) => (Inbound::Dropped(why), Wire::Canonical),
            Routed::Hold(held) => (Inbound::Held(held), Wire::Canonical),
        }
    }

    /// Filter one message from the server.
    pub fn from_server(&self, raw: &[u8]) -> Outbound {
        self.from_server_line(raw).0
    }

    /// Filter one line from the server, and say whether a forwarded message may go on as
    /// the line itself ([`Wire::AsReceived`]) or must be re-serialized.
    pub fn from_server_line(&self, raw: &[u8]) -> (Outbound, Wire) {
        match self.route(Side::Server, raw) {
            Routed::Forward(v, wire) => (Outbound::Forward(v), wire),
            Routed::Refuse(answer) => (Outbound::Answer(answer), Wire::Canonical),
            // Nothing to answer: the server is not waiting. The client never sees it.
            Routed::Reject(_) | Routed::Drop(_) => (Outbound::Drop, Wire::Canonical),
            // INVARIANT: only client requests are held (see `admit`).
            Routed::Hold(_) => (Outbound::Drop, Wire::Canonical),
        }
    }

    /// One message from `side`, on its way to the other side.
    fn route(&self, side: Side, raw: &[u8]) -> Routed {
        let (msg, plain) = match jsonrpc::parse_line(raw) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(
                    "a malformed message from the {}: {}",
                    side.name(),
                    e.message
                );
                if side == Side::Server
                    && let Some(error) = self.fail_folded_answer(raw, &e.message)
                {
                    return Routed::Forward(error, Wire::Canonical);
                }
                return Routed::Reject(jsonrpc::error(&e.id, e.code, &e.message, None));
            }
        };
        if let Some(refusal) = self.refuse_lookalike(&msg, side) {
            return match msg.kind {
                Kind::Request { .. } => Routed::Refuse(refusal),
                _ => Routed::Reject(refusal),
            };
        }
        match &msg.kind {
            Kind::Request { id, method } => {
                let special = match method::classify(method) {
                    Class::Exact(s) => Some(s),
                    _ => None,
                };
                match self.admit(side, id, method, special, &msg.value) {
                    Ok(()) => Routed::Forward(msg.value, Wire::of(plain)),
                    Err(Refused::Answer(refusal)) => Routed::Refuse(refusal),
                    Err(Refused::Hold(ticket)) => self.hold(id, method, special, ticket, msg.value),
                }
            }
            Kind::Notification { method } => {
                self.note_cancel(side, method, &msg.value);
                Routed::Forward(msg.value, Wire::of(plain))
            }
            Kind::Response { id } => {
                // An answer from one side answers a request of the other.
                let asker = side.other();
                let taken = asker.requests(&mut lock(&self.state)).take(id);
                match taken {
                    Ok(w) if side == Side::Server => {
                        let (value, unchanged) = self.filter_answer(&w, msg.value);
                        Routed::Forward(value, Wire::of(plain && unchanged))
                    }
                    Ok(w) => {
                        // The server reads its own id back, not the client's spelling of it.
                        let mut value = msg.value;
                        let unchanged = value.get("id") == Some(&w.id);
                        value["id"] = w.id;
                        Routed::Forward(value, Wire::of(plain && unchanged))
                    }
                    Err(e) => {
                        let why = format!(
                            "dropped the {}'s answer with id {id}: {}",
                            side.name(),
                            unmatched(&e, asker.name())
                        );
                        tracing::warn!("{why}");
                        Routed::Drop(why)
                    }
                }
            }
        }
    }

    /// Let a request `side` sent through: decided where the gateway decides it, then
    /// remembered until the other side answers. `Err` is the refusal to send back instead,
    /// or the ticket of a client request held for approval.
    fn admit(
        &self,
        side: Side,
        id: &Value,
        method: &str,
        special: Option<Special>,
        msg: &Value,
    ) -> Result<(), Refused> {
        side.requests(&mut lock(&self.state))
            .check(id)
            .map_err(|r| pending_refusal(id, r))?;
        let (target, provenance) = match side {
            Side::Client => self.decide_request(special, id, msg)?,
            Side::Server if special == Some(Special::CreateMessage) => {
                self.decide_sampling(id, msg)?;
                (None, None)
            }
            Side::Server => (None, None),
        };
        let permit = match (special, &target) {
            (Some(Special::ToolsCall), Some(tool)) => self.begin_call(id, tool)?,
            _ => None,
        };
        let waiting = Waiting {
            id: id.clone(),
            special,
            method: method.to_string(),
            target,
            _permit: permit,
            held: None,
            provenance,
        };
        side.requests(&mut lock(&self.state))
            .insert(waiting)
            .map_err(|r| pending_refusal(id, r).into())
    }

    /// Hold a client request for approval: it takes its id's place among the waiting
    /// requests now (a second request with that id is a duplicate, a cancel reaches it, and
    /// no answer can match it until it is let through).
    fn hold(
        &self,
        id: &Value,
        method: &str,
        special: Option<Special>,
        mut ticket: Box<HoldTicket>,
        msg: Value,
    ) -> Routed {
        let cancelled = Arc::new(AtomicBool::new(false));
        let waiting = Waiting {
            id: id.clone(),
            special,
            method: method.to_string(),
            target: Some(ticket.target.clone()),
            _permit: None,
            held: Some(cancelled.clone()),
            provenance: ticket.provenance.take(),
        };
        if let Err(r) = lock(&self.state).from_client.insert(waiting) {
            return Routed::Refuse(pending_refusal(id, r));
        }
        Routed::Hold(Box::new(Held {
            ticket,
            id: id.clone(),
            msg,
            special,
            cancelled,
        }))
    }

    /// A server answer refused for keys that differ only in case (a Go client would read
    /// the key the gateway did not judge): the error for the client's request it answers,
    /// rather than leaving that request waiting. `None` for anything else.
    fn fail_folded_answer(&self, raw: &[u8], why: &str) -> Option<Value> {
        let parsed = jsonrpc::plain::parse(raw).ok()?;
        jsonrpc::folded_key(&parsed)?;
        if parsed.value.get("method").is_some() {
            return None;
        }
        let id = parsed.value.get("id")?;
        self.fail_request(
            id,
            code::INVALID_REQUEST,
            &format!("the server's answer was refused: {why}"),
        )
    }

    /// `side` cancelled one of its requests: a late answer to it will be dropped.
    fn note_cancel(&self, side: Side, method: &str, msg: &Value) {
        if method == Special::Cancelled.name()
            && let Some(id) = msg.pointer("/params/requestId")
        {
            side.requests(&mut lock(&self.state)).cancel(id);
        }
    }

    /// A client message longer than the limit (read and discarded): the error answer for
    /// the client, or `None` when it was an answer (nobody to tell).
    pub fn client_too_large(&self, o: &Oversize) -> Option<Value> {
        tracing::warn!(
            "refused a {}-byte message from the client: larger than the limit of {} bytes",
            o.len,
            self.config.max_message_bytes
        );
        if !o.has_method && o.id.as_ref().is_some_and(|id| !id.is_null()) {
            return None;
        }
        let id =
            o.id.clone()
                .filter(jsonrpc::id::valid_request_id)
                .unwrap_or(Value::Null);
        Some(jsonrpc::error(
            &id,
            code::TOO_LARGE,
            &format!(
                "the message is {} bytes, larger than the proxy's limit of {} bytes; it was not forwarded",
                o.len, self.config.max_message_bytes
            ),
            None,
        ))
    }

    /// A server message longer than the limit (read and discarded): an error for the
    /// client's request it answered, or a refusal of the server's request.
    pub fn server_too_large(&self, o: &Oversize) -> Outbound {
        tracing::warn!(
            "dropped a {}-byte message from the server: larger than the limit of {} bytes",
            o.len,
            self.config.max_message_bytes
        );
        let limit = self.config.max_message_bytes;
        match (&o.id, o.has_method) {
            (Some(id), false) => self
                .fail_request(
                    id,
                    code::TOO_LARGE,
                    &format!(
                        "the server's answer was {} bytes, larger than the proxy's limit of {limit} bytes; it was not passed on",
                        o.len
                    ),
                )
                .map_or(Outbound::Drop, Outbound::Forward),
            (Some(id), true) if jsonrpc::id::valid_request_id(id) => {
                Outbound::Answer(jsonrpc::error(
                    id,
                    code::TOO_LARGE,
                    &format!(
                        "the request was {} bytes, larger than the proxy's limit of {limit} bytes; it was not passed on",
                        o.len
                    ),
                    None,
                ))
            }
            _ => Outbound::Drop,
        }
    }

    /// End a client request that will get no usable answer: `Some(error for the client)`
    /// when it was waiting (it no longer is), `None` otherwise.
    pub fn fail_request(&self, id: &Value, code: i64, message: &str) -> Option<Value> {
        let w = lock(&self.state).from_client.take(id).ok()?;
        Some(jsonrpc::error(&w.id, code, message, None))
    }

    /// Refuse a message whose method imitates one the gateway treats specially, or names
    /// one in the wrong shape (`tools/call` without an id). Recorded in the audit log.
    fn refuse_lookalike(&self, msg: &Message, side: Side) -> Option<Value> {
        let (method, id) = match &msg.kind {
            Kind::Request { id, method } => (method, Some(id)),
            Kind::Notification { method } => (method, None),
            Kind::Response { .. } => return None,
        };
        let (special, why, rule) = match method::classify(method) {
            Class::Other => return None,
            Class::Variant(s) => (
                s,
                format!(
                    "the method `{}` is not `{}`: method names are exact",
                    method.escape_debug(),
                    s.name()
                ),
                "warden-mcp.method-variant",
            ),
            Class::Exact(s) if s.is_notification() == id.is_none() => return None,
            Class::Exact(s) if s.is_notification() => (
                s,
                format!("`{}` is a notification; it cannot have an id", s.name()),
                "warden-mcp.not-a-notification",
            ),
            Class::Exact(s) => (
                s,
                format!(
                    "`{}` must be a request with an id; as a notification it would go undecided",
                    s.name()
                ),
                "warden-mcp.not-a-request",
            ),
        };
        let mut action = self.action(&special.action());
        action = action.with_context("method", method.as_str());
        if let Some(tool) = msg.value.pointer("/params/name").and_then(Value::as_str) {
            action = action.with_tool(tool);
        }
        if let Some(args) = msg
            .value
            .pointer("/params/arguments")
            .filter(|a| a.is_object())
        {
            action.args = args.clone();
        }
        tracing::warn!("refused a message from the {}: {why}", side.name());
        self.record_refusal(&action, &why, rule);
        Some(jsonrpc::error(
            id.unwrap_or(&Value::Null),
            code::INVALID_REQUEST,
            &format!("invalid request: {why}; refused by Warden"),
            Some(json!({"verdict": "deny", "reason": why, "rule": rule})),
        ))
    }
}

/// What becomes of one message, whichever side sent it.
enum Routed {
    /// On to the other side, as the line came or re-serialized.
    Forward(Value, Wire),
    /// Refused: this answer goes back to the sender's request.
    Refuse(Value),
    /// Not acceptable as sent: this error (id null when it had none).
    Reject(Value),
    /// Dropped, for this reason.
    Drop(String),
    /// A client request held for approval.
    Hold(Box<Held>),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Client,
    Server,
}

impl Side {
    fn other(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }

    /// The requests this side sent that wait for the other side's answer.
    fn requests(self, s: &mut State) -> &mut Pending {
        match self {
            Side::Client => &mut s.from_client,
            Side::Server => &mut s.from_server,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Server => "server",
        }
    }
}

fn pending_refusal(id: &Value, r: Refusal) -> Value {
    match r {
        Refusal::Duplicate => jsonrpc::error(
            id,
            code::INVALID_REQUEST,
            "invalid request: a request with this id (or one a client could take for it) is still waiting for its answer",
            None,
        ),
        Refusal::Full => jsonrpc::error(
            id,
            code::TOO_MANY_PENDING,
            &format!("too many requests are waiting for an answer (at most {MAX_PENDING})"),
            None,
        ),
    }
}

fn unmatched(e: &Unmatched, asker: &str) -> String {
    match e {
        Unmatched::Nothing => format!("the {asker} is not waiting for an answer with that id"),
        Unmatched::OtherType(asked) => format!(
            "the {asker} asked with id {asked}, which has another JSON type; an answer must carry the request's id"
        ),
    }
}
