//! Give hyper's own error answers the deny shape.
//!
//! A request hyper cannot parse (a `Content-Length` beyond `u64`, two different lengths,
//! headers too large, a broken request line) never reaches a handler: hyper answers it itself
//! with an empty `400` (or `431`, `505`) and closes the connection. A client that reads only
//! `verdict` would find no JSON at all. This wrapper around the connection's socket rewrites
//! exactly those answers — a `4xx`/`5xx` head with `content-length: 0`, which no handler here
//! ever writes (every handler answer carries a JSON body) — into `{"error", "verdict":"deny"}`.
//! Everything else passes through untouched; the check is a prefix comparison per write.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A socket whose canned error answers are rewritten (see the module docs).
#[derive(Debug)]
pub(crate) struct DenyShaped<T> {
    inner: T,
    /// A rewritten answer being written: the bytes, how many are out, and the length of the
    /// original buffer to report once all are out.
    pending: Option<(Vec<u8>, usize, usize)>,
}

impl<T> DenyShaped<T> {
    pub(crate) fn new(inner: T) -> Self {
        DenyShaped {
            inner,
            pending: None,
        }
    }
}

/// The rewritten answer for a canned head, or `None` when `buf` is not one.
fn rewrite(buf: &[u8]) -> Option<Vec<u8>> {
    if !(buf.starts_with(b"HTTP/1.1 4") || buf.starts_with(b"HTTP/1.1 5")) {
        return None;
    }
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    if end != buf.len() {
        // A head followed by a body: a handler's answer.
        return None;
    }
    let head = std::str::from_utf8(&buf[..end]).ok()?;
    let marker = "\r\ncontent-length: 0\r\n";
    let at = head.to_ascii_lowercase().find(marker)?;
    let status: u16 = head.get(9..12)?.parse().ok()?;
    let error = match status {
        431 => "the request headers are too large",
        505 => "this HTTP version is not supported (use HTTP/1.1)",
        414 => "the request line is too long",
        _ => "malformed HTTP request (request line, headers or Content-Length)",
    };
    let body = serde_json::json!({"error": error, "verdict": "deny"}).to_string();
    let mut out = String::with_capacity(end + body.len() + 48);
    out.push_str(&head[..at]);
    out.push_str(&format!(
        "\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
        body.len()
    ));
    out.push_str(&head[at + marker.len()..]);
    out.push_str(&body);
    Some(out.into_bytes())
}

impl<T: AsyncWrite + Unpin> AsyncWrite for DenyShaped<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.pending.is_none() {
            match rewrite(buf) {
                Some(out) => this.pending = Some((out, 0, buf.len())),
                None => return Pin::new(&mut this.inner).poll_write(cx, buf),
            }
        }
        // INVARIANT: `pending` is Some here.
        let Some((out, written, reported)) = this.pending.as_mut() else {
            return Poll::Ready(Ok(0));
        };
        while *written < out.len() {
            match Pin::new(&mut this.inner).poll_write(cx, &out[*written..]) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => *written += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        let reported = *reported;
        this.pending = None;
        Poll::Ready(Ok(reported))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // A canned answer is one head and nothing else; a head with a body (every handler's
        // answer) goes out vectored as hyper wrote it.
        let mut parts = bufs.iter().filter(|b| !b.is_empty());
        match (parts.next(), parts.next()) {
            (Some(only), None) => self.poll_write(cx, only),
            _ if self.pending.is_some() => self.poll_write(cx, &[]),
            _ => Pin::new(&mut self.inner).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for DenyShaped<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_empty_error_heads_are_rewritten() {
        let canned = b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let out = String::from_utf8(rewrite(canned).unwrap()).unwrap();
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{head}");
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
        assert!(
            head.contains("connection: close\r\n") && head.contains("date: x"),
            "{head}"
        );
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["verdict"], "deny");
        // A handler's answer (with a body), a success, a partial head: untouched.
        assert!(rewrite(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\n{}").is_none());
        assert!(rewrite(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(rewrite(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n").is_none());
        assert!(rewrite(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n{}").is_none());
    }
}
