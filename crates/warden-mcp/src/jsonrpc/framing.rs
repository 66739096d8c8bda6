//! Newline-delimited messages (MCP's stdio transport) read with a size limit.
//!
//! A peer decides how long its lines are, so a reader that collects a whole line before
//! looking at it lets that peer decide how much memory the proxy uses (a 50 MB line once
//! took the proxy to 270 MB). [`LineReader`] keeps at most the limit; past it the rest of the
//! line is read and thrown away while an [`IdSniffer`] picks the message's `id` out of the
//! passing bytes, so the request (or the answer) can still be refused by name: fail closed,
//! and nobody waits forever.

use std::io::{BufRead, ErrorKind};

use serde_json::Value;

/// One line from a [`LineReader`].
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// A whole line (without its `\n`), no longer than the limit.
    Line(Vec<u8>),
    /// A line longer than the limit: its bytes were discarded as they were read.
    TooLong(Oversize),
}

/// What is known of a line that was too long to keep.
#[derive(Debug, Clone, PartialEq)]
pub struct Oversize {
    /// Its length in bytes.
    pub len: usize,
    /// Its top-level `id`, when it had one a message may have (string, number or null).
    pub id: Option<Value>,
    /// Whether it had a top-level `method` (a request or notification, not an answer).
    pub has_method: bool,
}

/// Reads `\n`-terminated lines, none longer than `max` bytes in memory.
pub struct LineReader<R> {
    inner: R,
    max: usize,
}

impl<R: BufRead> LineReader<R> {
    /// A reader keeping lines up to `max` bytes.
    pub fn new(inner: R, max: usize) -> Self {
        LineReader { inner, max }
    }

    /// The next line; `None` at the end of the input. A last line without `\n` counts.
    pub fn next_frame(&mut self) -> Option<std::io::Result<Frame>> {
        let mut line = Vec::new();
        let mut sniffer: Option<IdSniffer> = None;
        let mut len = 0usize;
        loop {
            let buf = match self.inner.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Some(Err(e)),
            };
            if buf.is_empty() {
                if len == 0 {
                    return None;
                }
                break;
            }
            let newline = buf.iter().position(|&b| b == b'\n');
            let chunk = &buf[..newline.unwrap_or(buf.len())];
            len = len.saturating_add(chunk.len());
            match &mut sniffer {
                Some(s) => s.feed(chunk),
                None if line.len() + chunk.len() > self.max => {
                    let mut s = IdSniffer::default();
                    s.feed(&line);
                    s.feed(chunk);
                    line = Vec::new();
                    sniffer = Some(s);
                }
                None => line.extend_from_slice(chunk),
            }
            let used = chunk.len() + usize::from(newline.is_some());
            self.inner.consume(used);
            if newline.is_some() {
                break;
            }
        }
        Some(Ok(match sniffer {
            Some(s) => Frame::TooLong(s.finish(len)),
            None => Frame::Line(line),
        }))
    }
}

/// The most bytes of an object key or of an `id` value kept while sniffing: ids are short,
/// and a longer one is not worth naming.
const MAX_SNIFF: usize = 256;

/// Finds the top-level `id` and `method` of a JSON object from its bytes as they stream
/// past, in constant memory. Like `serde_json`, the last of duplicate keys wins; keys are
/// compared after unescaping (`"\u0069d"` is `id`).
#[derive(Debug, Default)]
pub struct IdSniffer {
    started: bool,
    done: bool,
    depth: u32,
    in_string: bool,
    escape: bool,
    expect_key: bool,
    /// The raw bytes of the key being read (quotes included), at depth 1.
    key: Option<Vec<u8>>,
    last_key: Option<String>,
    /// The raw bytes of the `id` value being read.
    value: Option<Vec<u8>>,
    id: Option<Value>,
    has_method: bool,
}

impl IdSniffer {
    /// Read more bytes.
    pub fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.done {
                return;
            }
            self.byte(b);
        }
    }

    /// What was found in the `len` bytes read.
    pub fn finish(mut self, len: usize) -> Oversize {
        if !self.done {
            // The object never closed: a value read so far is still its value.
            self.end_value();
        }
        Oversize {
            len,
            id: self.id,
            has_method: self.has_method,
        }
    }

    fn capture(buf: &mut Option<Vec<u8>>, b: u8) {
        if let Some(v) = buf {
            if v.len() < MAX_SNIFF {
                v.push(b);
            } else {
                // Too long to be an id worth naming (or a key worth comparing): forget it.
                *buf = Some(b"\x00".to_vec());
            }
        }
    }

    fn byte(&mut self, b: u8) {
        if self.in_string {
            Self::capture(&mut self.key, b);
            Self::capture(&mut self.value, b);
            if self.escape {
                self.escape = false;
            } else if b == b'\\' {
                self.escape = true;
            } else if b == b'"' {
                self.in_string = false;
                if let Some(k) = self.key.take() {
                    self.last_key = serde_json::from_slice::<String>(&k).ok();
                }
            }
            return;
        }
        if !self.started {
            match b {
                b'{' => {
                    self.started = true;
                    self.depth = 1;
                    self.expect_key = true;
                }
                b' ' | b'\t' | b'\r' | b'\n' => {}
                _ => self.done = true,
            }
            return;
        }
        match b {
            b'"' => {
                self.in_string = true;
                if self.depth == 1 && self.expect_key {
                    self.expect_key = false;
                    self.key = Some(vec![b'"']);
                } else if self.depth == 1 {
                    Self::capture(&mut self.value, b);
                }
            }
            b'{' | b'[' => {
                if self.depth == 1 && self.value.is_some() {
                    // An object or array is no id.
                    self.value = Some(b"\x00".to_vec());
                }
                self.depth += 1;
            }
            b'}' | b']' => {
                self.depth -= 1;
                if self.depth == 0 {
                    self.end_value();
                    self.done = true;
                }
            }
            b':' if self.depth == 1 => match self.last_key.as_deref() {
                Some("id") => self.value = Some(Vec::new()),
                Some("method") => self.has_method = true,
                _ => {}
            },
            b',' if self.depth == 1 => {
                self.end_value();
                self.expect_key = true;
                self.last_key = None;
            }
            _ if self.depth == 1 => Self::capture(&mut self.value, b),
            _ => {}
        }
    }

    fn end_value(&mut self) {
        if let Some(v) = self.value.take() {
            self.id = serde_json::from_slice::<Value>(&v)
                .ok()
                .filter(|id| id.is_string() || id.is_number() || id.is_null());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn frames(input: &[u8], max: usize) -> Vec<Frame> {
        let mut r = LineReader::new(std::io::BufReader::with_capacity(7, input), max);
        std::iter::from_fn(|| r.next_frame().map(Result::unwrap)).collect()
    }

    fn sniff(text: &str) -> Oversize {
        let mut s = IdSniffer::default();
        s.feed(text.as_bytes());
        s.finish(text.len())
    }

    #[test]
    fn lines_up_to_the_limit_are_kept_longer_ones_are_named_by_id() {
        let long = format!(
            r#"{{"jsonrpc":"2.0","method":"tools/call","params":{{"x":"{}"}},"id":42}}"#,
            "a".repeat(100)
        );
        let input = format!("{{\"a\":1}}\n{long}\n\nlast");
        let got = frames(input.as_bytes(), 40);
        assert_eq!(got[0], Frame::Line(b"{\"a\":1}".to_vec()));
        assert_eq!(
            got[1],
            Frame::TooLong(Oversize {
                len: long.len(),
                id: Some(json!(42)),
                has_method: true
            })
        );
        assert_eq!(got[2], Frame::Line(Vec::new()));
        assert_eq!(got[3], Frame::Line(b"last".to_vec()));
        assert_eq!(got.len(), 4);
        assert!(frames(b"", 10).is_empty());
    }

    #[test]
    fn the_sniffer_finds_the_top_level_id_wherever_it_is() {
        assert_eq!(sniff(r#"{"id":"a b","result":{}}"#).id, Some(json!("a b")));
        assert_eq!(
            sniff(r#" { "result" : {"id": 9, "x": [1, {"id": 8}]} , "id" : 7 } "#).id,
            Some(json!(7))
        );
        assert_eq!(sniff(r#"{"\u0069d": 3, "method": "x"}"#).id, Some(json!(3)));
        assert!(sniff(r#"{"\u0069d": 3, "method": "x"}"#).has_method);
        assert_eq!(sniff(r#"{"id": 1, "id": 2}"#).id, Some(json!(2)));
        assert_eq!(sniff(r#"{"id": {"x": 1}}"#).id, None);
        assert_eq!(
            sniff(r#"{"id": "quote \" inside"}"#).id,
            Some(json!("quote \" inside"))
        );
        assert_eq!(
            sniff(r#"{"x": "\"id\": 5", "id": null}"#).id,
            Some(json!(null))
        );
        assert_eq!(sniff(r#"[{"id": 1}]"#).id, None);
        assert_eq!(sniff(r#"{"result": "unterminated..."#).id, None);
        assert_eq!(sniff(r#"{"id": 12"#).id, Some(json!(12)));
        let long_id = format!(r#"{{"id": "{}"}}"#, "x".repeat(1000));
        assert_eq!(sniff(&long_id).id, None);
        assert!(!sniff(r#"{"params": {"method": 1}}"#).has_method);
    }
}
