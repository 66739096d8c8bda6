//! The stdio transport: start the server command, then relay newline-delimited JSON-RPC
//! between the client (our stdin/stdout) and the server (its stdin/stdout), every message
//! through the [`Gateway`]. Lines longer than the message limit are never held in memory
//! (see [`crate::jsonrpc::framing`]); the sender gets an error answer where one can be
//! addressed.
//!
//! A message the gateway lets through unchanged goes on as the line it came as, when that
//! line is plain ([`crate::jsonrpc::plain`]: no reader can make of it anything but what the
//! gateway judged); any other message is serialized from the value the gateway judged. Each
//! message leaves in one `write` call: a pipe reader woken per fragment costs more than the
//! copy.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use serde_json::Value;
use warden::Warden;

use super::{Gateway, Held, Inbound, Outbound, ProxyConfig, ProxyError, Transport, Wire};
use crate::jsonrpc::framing::{Frame, LineReader};

type Out = Arc<Mutex<Box<dyn Write + Send>>>;

/// How long the server may take to finish after the client has gone. Generous because the
/// server may still be starting (a client that pipes its requests in and closes at once):
/// a node server took more than 5 s to start on a loaded 2-core machine, and its answers
/// were lost. A server that never exits is killed after this.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Write one message, serialized from `msg`.
fn send(out: &Out, msg: &Value) {
    // INVARIANT: serializing a `Value` into a `Vec` cannot fail (string keys, finite numbers).
    let mut line = serde_json::to_vec(msg).unwrap_or_default();
    write_line(out, &mut line);
}

/// Write one message the gateway let through: the `line` it came as (without its `\n`), or
/// serialized from `msg`.
fn forward(out: &Out, mut line: Vec<u8>, msg: &Value, wire: Wire) {
    match wire {
        Wire::AsReceived => write_line(out, &mut line),
        Wire::Canonical => send(out, msg),
    }
}

/// `line` and its `\n` in one write.
fn write_line(out: &Out, line: &mut Vec<u8>) {
    line.push(b'\n');
    let mut w = out
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // A closed peer shows up as EOF on its other pipe; the loops end there.
    let _ = w.write_all(line);
    let _ = w.flush();
}

/// Run the proxy until the client closes its input or the server exits. Returns the
/// server's exit code (or 0).
pub fn run(
    config: ProxyConfig,
    warden: Arc<Warden>,
    client_in: impl BufRead + Send + 'static,
    client_out: Box<dyn Write + Send>,
) -> Result<i32, ProxyError> {
    if config.max_message_bytes == 0 {
        return Err(ProxyError::NoRoom);
    }
    let (program, args) = config.command.split_first().ok_or(ProxyError::NoCommand)?;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|source| ProxyError::Spawn {
            command: config.command.join(" "),
            source,
        })?;
    // INVARIANT: both pipes were requested above.
    let server_in: Out = Arc::new(Mutex::new(Box::new(
        child.stdin.take().expect("piped stdin"),
    )));
    let server_out = BufReader::new(child.stdout.take().expect("piped stdout"));
    // The kill switch terminates the server when it stops this agent (or every agent): with
    // a credential, the agent is its verified DID, as every decision names it.
    let agent = match &config.credential {
        Some(credential) => warden.verified_agent(credential),
        None => config.agent.clone(),
    };
    let child = warden.runtime().supervise(child, agent.as_deref());
    let client_out: Out = Arc::new(Mutex::new(client_out));
    let max = config.max_message_bytes;
    let gateway = Arc::new(Gateway::new(warden, Arc::new(config), Transport::Stdio));
    let (done, finished) = mpsc::channel::<&'static str>();

    let inputs: [(&'static str, Box<dyn BufRead + Send>); 2] = [
        ("client", Box::new(client_in)),
        ("server", Box::new(server_out)),
    ];
    for (side, input) in inputs {
        let (gateway, client_out, server_in, done) = (
            gateway.clone(),
            client_out.clone(),
            server_in.clone(),
            done.clone(),
        );
        // These threads decide (through the gateway): give them the room a policy engine's
        // bounded recursion may use (the default spawned stack is 2 MiB).
        let relay = std::thread::Builder::new()
            .name(format!("warden-mcp-{side}"))
            .stack_size(super::DECISION_STACK)
            .spawn(move || {
                let input = LineReader::new(input, max);
                if side == "client" {
                    from_client(input, &gateway, &client_out, &server_in);
                } else {
                    from_server(input, &gateway, &client_out, &server_in);
                }
                let _ = done.send(side);
            });
        if let Err(e) = relay {
            return Err(ProxyError::Thread(e));
        }
    }
    let first = finished.recv().unwrap_or("server");
    if first == "client" {
        // Closing the server's stdin is the stdio transport's shutdown signal. The server
        // answers what it was already asked and closes its output; wait for those answers to
        // reach the client (bounded), then stop it.
        drop(server_in.lock().map(|mut w| *w = Box::new(std::io::sink())));
        if finished.recv_timeout(SHUTDOWN_GRACE).is_err() {
            child.kill();
        }
    }
    let status = child.wait();
    if let Some(why) = child.terminated_because() {
        return Err(ProxyError::Killed(why));
    }
    Ok(status.ok().and_then(|s| s.code()).unwrap_or(0))
}

fn from_client(
    mut input: LineReader<impl BufRead>,
    gateway: &Arc<Gateway>,
    client: &Out,
    server: &Out,
) {
    while let Some(Ok(frame)) = input.next_frame() {
        match frame {
            Frame::Line(line) if line.iter().all(u8::is_ascii_whitespace) => {}
            Frame::Line(line) => match gateway.from_client_line(&line) {
                (Inbound::Forward(msg), wire) => forward(server, line, &msg, wire),
                (inbound, _) => deliver(inbound, gateway, client, server),
            },
            Frame::TooLong(o) => {
                if let Some(answer) = gateway.client_too_large(&o) {
                    send(client, &answer);
                }
            }
        }
    }
}

/// Do what the gateway said with a client message. A request held for approval waits on
/// its own thread (at most [`super::hold::MAX_HELD`] at once), so the client's other
/// messages — a cancel of the held request among them — go on meanwhile.
fn deliver(inbound: Inbound, gateway: &Arc<Gateway>, client: &Out, server: &Out) {
    match inbound {
        Inbound::Forward(msg) => send(server, &msg),
        Inbound::Answer(answer) | Inbound::Malformed(answer) => send(client, &answer),
        Inbound::Dropped(_) => {}
        Inbound::Held(held) => {
            // The held request waits in a shared slot, so it is still here if no thread
            // can be started: then it is settled on this thread (the conversation waits,
            // but the request gets its answer).
            let slot = Arc::new(Mutex::new(Some(held)));
            let (g, c, s, mine) = (
                gateway.clone(),
                client.clone(),
                server.clone(),
                slot.clone(),
            );
            let spawned = std::thread::Builder::new()
                .name("warden-mcp-held".into())
                // Deciding again after the approval needs the decision stack.
                .stack_size(super::DECISION_STACK)
                .spawn(move || {
                    if let Some(held) = take(&mine) {
                        settle(*held, &g, &c, &s);
                    }
                });
            if let Err(e) = spawned {
                tracing::error!("could not start a thread to hold a request: {e}; holding it here");
                if let Some(held) = take(&slot) {
                    settle(*held, gateway, client, server);
                }
            }
        }
    }
}

fn take(slot: &Mutex<Option<Box<Held>>>) -> Option<Box<Held>> {
    slot.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take()
}

/// Wait for a held request's approval (progress notifications go to the client), then
/// deliver what the gateway decides.
fn settle(held: Held, gateway: &Arc<Gateway>, client: &Out, server: &Out) {
    let notify = |note: &Value| send(client, note);
    let settled = gateway.settle(held, &notify);
    deliver(settled, gateway, client, server);
}

fn from_server(mut input: LineReader<impl BufRead>, gateway: &Gateway, client: &Out, server: &Out) {
    while let Some(Ok(frame)) = input.next_frame() {
        let (out, line) = match frame {
            Frame::Line(line) if line.iter().all(u8::is_ascii_whitespace) => continue,
            Frame::Line(line) => (gateway.from_server_line(&line), line),
            Frame::TooLong(o) => ((gateway.server_too_large(&o), Wire::Canonical), Vec::new()),
        };
        match out {
            (Outbound::Forward(msg), wire) => forward(client, line, &msg, wire),
            (Outbound::Answer(answer), _) => send(server, &answer),
            (Outbound::Drop, _) => {}
        }
    }
}
