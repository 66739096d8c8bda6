//! The approval webhook (`warden serve --approval-webhook URL`): each new approval request is
//! POSTed as JSON to a URL, so a bridge (a chat bot, a ticket system) can ask a person.
//!
//! It never slows a decision: the decision path hands the request to a bounded queue (in
//! requests and in bytes: the agent chooses how big its arguments are) and goes on; one background thread delivers, retrying with backoff (0.5 s, doubling, 5 attempts, a
//! 5 s timeout each). When the queue is full or a request cannot be delivered the request
//! stays in the database — `warden approvals list` and `GET /v1/approvals` still show it —
//! and the loss is logged and counted. Plain `http://` only: the bridge is expected on this
//! machine or a trusted network; a TLS endpoint is reached through a local relay.
//!
//! The body: `{"event": "approval.requested", "approval": {…the request…}}`.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::Duration;

use warden::Approval;

/// Requests waiting for delivery; past this, new ones are not sent (they stay listed).
pub const QUEUE: usize = 1024;
/// Attempts per request.
pub const ATTEMPTS: u32 = 5;
/// The most bytes of request bodies waiting in the queue at once. An agent chooses the
/// arguments of its actions (up to the body limit each): without a byte bound, 1,024 queued
/// requests with megabytes of arguments each, behind a slow or absent bridge, would hold
/// gigabytes.
pub const QUEUE_BYTES: usize = 64 * 1024 * 1024;
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const TIMEOUT: Duration = Duration::from_secs(5);

/// Why a webhook URL is not accepted.
#[derive(Debug, thiserror::Error)]
#[error("approval webhook `{url}`: {why}")]
pub struct WebhookError {
    url: String,
    why: String,
}

/// A parsed `http://host[:port]/path` target.
#[derive(Debug, Clone)]
struct Target {
    host: String,
    port: u16,
    path: String,
}

impl Target {
    fn parse(url: &str) -> Result<Target, WebhookError> {
        let bad = |why: &str| WebhookError {
            url: url.to_string(),
            why: why.to_string(),
        };
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| bad("only http:// URLs are supported (relay TLS locally)"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(bad("needs a host, and no user:password"));
        }
        if path.chars().any(|c| c.is_control() || c == ' ') {
            return Err(bad("the path holds spaces or control characters"));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => {
                let port = p.parse().map_err(|_| bad("the port is not a number"))?;
                (h, port)
            }
            _ => (authority, 80),
        };
        Ok(Target {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port,
            path: path.to_string(),
        })
    }

    fn host_header(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// The delivery thread's handle: give [`Webhook::listener`] to the Warden builder.
pub struct Webhook {
    queue: SyncSender<Queued>,
    dropped: Arc<AtomicU64>,
    queued_bytes: Arc<AtomicUsize>,
}

/// A request's id and its body, serialized when queued (a compact string, not a tree of
/// values many times its size).
struct Queued {
    id: String,
    body: String,
}

impl Webhook {
    /// Check `url` and start the delivery thread.
    pub fn start(url: &str) -> Result<Webhook, WebhookError> {
        let target = Target::parse(url)?;
        let (queue, work) = sync_channel::<Queued>(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let queued_bytes = Arc::new(AtomicUsize::new(0));
        let (lost, held) = (dropped.clone(), queued_bytes.clone());
        std::thread::Builder::new()
            .name("warden-approval-webhook".into())
            .spawn(move || deliver_all(&target, &work, &lost, &held))
            .map_err(|e| WebhookError {
                url: url.to_string(),
                why: format!("cannot start its thread: {e}"),
            })?;
        Ok(Webhook {
            queue,
            dropped,
            queued_bytes,
        })
    }

    /// What the Warden calls on each new approval request: queue it, never wait.
    pub fn listener(&self) -> Arc<dyn Fn(&Approval) + Send + Sync> {
        let queue = self.queue.clone();
        let dropped = self.dropped.clone();
        let queued_bytes = self.queued_bytes.clone();
        Arc::new(move |a: &Approval| {
            let body = serde_json::json!({"event": "approval.requested", "approval": a});
            let item = Queued {
                id: a.id.clone(),
                body: body.to_string(),
            };
            let size = item.body.len();
            let fits = queued_bytes
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                    held.checked_add(size).filter(|&t| t <= QUEUE_BYTES)
                })
                .is_ok();
            let refused = if fits {
                queue.try_send(item).err().map(|e| {
                    queued_bytes.fetch_sub(size, Ordering::AcqRel);
                    match e {
                        TrySendError::Full(q) | TrySendError::Disconnected(q) => q.id,
                    }
                })
            } else {
                Some(item.id)
            };
            if let Some(id) = refused {
                dropped.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    "approval webhook: request {id} not sent (queue full); it is still listed"
                );
            }
        })
    }

    /// Requests that were not delivered (queue full, or every attempt failed).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

fn deliver_all(
    target: &Target,
    work: &Receiver<Queued>,
    dropped: &AtomicU64,
    queued_bytes: &AtomicUsize,
) {
    for approval in work {
        let body = approval.body;
        queued_bytes.fetch_sub(body.len(), Ordering::AcqRel);
        let mut wait = FIRST_BACKOFF;
        let mut delivered = false;
        for attempt in 1..=ATTEMPTS {
            match post(target, &body) {
                Ok(status) if (200..300).contains(&status) => {
                    delivered = true;
                    break;
                }
                Ok(status) => tracing::warn!(
                    "approval webhook: attempt {attempt} for {} answered {status}",
                    approval.id
                ),
                Err(e) => tracing::warn!(
                    "approval webhook: attempt {attempt} for {} failed: {e}",
                    approval.id
                ),
            }
            if attempt < ATTEMPTS {
                std::thread::sleep(wait);
                wait *= 2;
            }
        }
        if !delivered {
            dropped.fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                "approval webhook: request {} not delivered after {ATTEMPTS} attempts; it is still listed",
                approval.id
            );
        }
    }
}

/// One POST; the status code of the answer.
fn post(target: &Target, body: &str) -> std::io::Result<u16> {
    let addr = (target.host.as_str(), target.port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::other("the host has no address"))?;
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    write!(
        stream,
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\nUser-Agent: warden\r\n\r\n{body}",
        target.path,
        target.host_header(),
        body.len()
    )?;
    stream.flush()?;
    // The status line is all we need; read a bounded amount.
    let mut head = [0u8; 64];
    let mut got = 0;
    while got < 12 {
        let n = stream.read(&mut head[got..])?;
        if n == 0 {
            break;
        }
        got += n;
    }
    let line = std::str::from_utf8(&head[..got]).unwrap_or("");
    line.strip_prefix("HTTP/1.")
        .and_then(|r| r.get(2..5))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {line:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Red team: an agent chooses its arguments (up to the body limit, 1 MiB over HTTP, 16 MiB
    /// through the MCP proxy). Behind a bridge that is down, the queue held 1,024 whole
    /// requests: gigabytes. Past [`QUEUE_BYTES`] new requests are dropped (and counted).
    #[test]
    fn the_queue_is_bounded_in_bytes_not_only_in_requests() {
        // A port nobody listens on: the first request is retried with backoff for seconds
        // while the others wait in the queue.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let hook = Webhook::start(&format!("http://127.0.0.1:{port}/hook")).unwrap();
        let listener = hook.listener();
        let big = Approval {
            id: "0".repeat(32),
            status: warden::ApprovalStatus::Pending,
            hash: String::new(),
            action: serde_json::json!({"action": "x", "args": {"blob": "a".repeat(1024 * 1024)}}),
            agent: Some("bot".into()),
            policy: None,
            rule: None,
            reason: "r".into(),
            created_ns: 0,
            expires_ns: 0,
            decided_by: None,
            decided_reason: None,
            decided_ns: None,
            used_ns: None,
        };
        let sent = 2 * QUEUE_BYTES / (1024 * 1024);
        for _ in 0..sent {
            listener(&big);
        }
        assert!(
            hook.dropped() as usize >= sent / 2 - 2,
            "{} of {sent} one-megabyte requests dropped: the queue holds more than {QUEUE_BYTES} bytes",
            hook.dropped()
        );
        assert!(hook.queued_bytes.load(Ordering::Acquire) <= QUEUE_BYTES);
    }

    #[test]
    fn only_plain_http_urls_with_a_host() {
        let t = Target::parse("http://127.0.0.1:9000/hook").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("127.0.0.1", 9000, "/hook")
        );
        let t = Target::parse("http://bridge.local").unwrap();
        assert_eq!((t.port, t.path.as_str()), (80, "/"));
        let t = Target::parse("http://[::1]:8080/x").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 8080));
        assert_eq!(t.host_header(), "[::1]:8080");
        for bad in [
            "https://x/",
            "ftp://x",
            "http://",
            "http://u:p@x/",
            "http://x:port/",
            "http://x/a b",
            "http://x/a\r\nX-Injected: 1",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }
}
