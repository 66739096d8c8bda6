//! Server-Sent Events, read exactly as a client reads them (the WHATWG HTML standard's
//! "event stream interpretation"), and written back in one unambiguous form.
//!
//! The proxy filters SSE streams message by message, so it must see the same events the
//! client will: a filter that splits events differently from the client lets a server hide
//! a message from the filter. It did — a stream beginning with a byte-order mark delivered
//! its first event unfiltered, because `\u{feff}data: …` was not a `data` line to the filter
//! while the client strips the mark. The rules, all of them:
//!
//! - one UTF-8 byte-order mark is stripped at the start of the stream, nowhere else;
//! - lines end at CR, LF or CRLF (a CRLF split across two reads is still one line end);
//! - an empty line ends an event; a line starting with `:` is a comment;
//! - otherwise the field name runs to the first `:`, and one space after it is dropped (a
//!   line without `:` is a field with an empty value); fields other than `data`, `event`,
//!   `id` and `retry` are ignored (and not written back);
//! - `data` lines are joined with LF; an event without a `data` line dispatches nothing
//!   (but its `id` still counts); a last event not closed by an empty line is discarded.
//!
//! Every event is bounded: a line or an event longer than the limit is an error, and the
//! parser then refuses everything after it (fail closed: the stream stops).

use thiserror::Error;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// One line of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// `: text` — a comment (keep-alive).
    Comment(String),
    /// `data: …`
    Data(String),
    /// `event: …`
    Event(String),
    /// `id: …`
    Id(String),
    /// `retry: …`
    Retry(String),
}

/// The lines of one event, up to the empty line that ends it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Event {
    /// The lines, in order.
    pub fields: Vec<Field>,
}

impl Event {
    /// The event's data as a client dispatches it: its `data` lines joined with LF, or
    /// `None` when it has none (then nothing is dispatched).
    pub fn data(&self) -> Option<String> {
        let mut parts = self.fields.iter().filter_map(|f| match f {
            Field::Data(d) => Some(d.as_str()),
            _ => None,
        });
        let first = parts.next()?;
        let mut out = first.to_string();
        for p in parts {
            out.push('\n');
            out.push_str(p);
        }
        Some(out)
    }

    /// Write the event: one line per field, LF line ends, then the empty line.
    pub fn write(&self, out: &mut Vec<u8>) {
        for f in &self.fields {
            let (name, value) = match f {
                Field::Comment(c) => {
                    out.push(b':');
                    out.extend_from_slice(c.as_bytes());
                    out.push(b'\n');
                    continue;
                }
                Field::Data(v) => ("data", v),
                Field::Event(v) => ("event", v),
                Field::Id(v) => ("id", v),
                Field::Retry(v) => ("retry", v),
            };
            // The reader drops exactly one space after the colon, so a value that starts
            // with a space keeps it.
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.push(b'\n');
        }
        out.push(b'\n');
    }
}

/// A line or an event longer than the limit.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("an SSE event is larger than the limit of {limit} bytes")]
pub struct TooLarge {
    /// The limit, in bytes.
    pub limit: usize,
}

/// A streaming parser: feed it the bytes as they come.
#[derive(Debug)]
pub struct Parser {
    max: usize,
    /// Still at the start of the stream: the bytes that may be a byte-order mark.
    head: Option<Vec<u8>>,
    line: Vec<u8>,
    after_cr: bool,
    event: Event,
    event_bytes: usize,
    failed: bool,
}

impl Parser {
    /// A parser that refuses lines and events longer than `max_event_bytes`.
    pub fn new(max_event_bytes: usize) -> Self {
        Parser {
            max: max_event_bytes,
            head: Some(Vec::new()),
            line: Vec::new(),
            after_cr: false,
            event: Event::default(),
            event_bytes: 0,
            failed: false,
        }
    }

    /// The events completed by these bytes, in order. Blocks of only comments or fields
    /// count as events too (so a filter can pass keep-alives and `id`s on).
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<Event>, TooLarge> {
        if self.failed {
            return Err(TooLarge { limit: self.max });
        }
        let mut events = Vec::new();
        let mut chunk = chunk;
        if let Some(head) = &mut self.head {
            let take = (BOM.len() - head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..take]);
            chunk = &chunk[take..];
            if head.len() < BOM.len() && BOM.starts_with(head) {
                return Ok(events);
            }
            let head = self.head.take().unwrap_or_default();
            let rest = head.strip_prefix(BOM).unwrap_or(&head);
            self.bytes(rest, &mut events)?;
        }
        self.bytes(chunk, &mut events)?;
        Ok(events)
    }

    fn bytes(&mut self, mut bytes: &[u8], events: &mut Vec<Event>) -> Result<(), TooLarge> {
        while !bytes.is_empty() {
            if self.after_cr && bytes[0] == b'\n' {
                bytes = &bytes[1..];
                self.after_cr = false;
                continue;
            }
            self.after_cr = false;
            match bytes.iter().position(|&b| b == b'\n' || b == b'\r') {
                Some(end) => {
                    self.push(&bytes[..end])?;
                    self.after_cr = bytes[end] == b'\r';
                    bytes = &bytes[end + 1..];
                    self.end_line(events);
                }
                None => {
                    self.push(bytes)?;
                    bytes = &[];
                }
            }
        }
        Ok(())
    }

    fn push(&mut self, part: &[u8]) -> Result<(), TooLarge> {
        self.event_bytes = self.event_bytes.saturating_add(part.len());
        if self.event_bytes > self.max {
            self.failed = true;
            self.line = Vec::new();
            self.event = Event::default();
            return Err(TooLarge { limit: self.max });
        }
        self.line.extend_from_slice(part);
        Ok(())
    }

    fn end_line(&mut self, events: &mut Vec<Event>) {
        let line = std::mem::take(&mut self.line);
        if line.is_empty() {
            self.event_bytes = 0;
            let event = std::mem::take(&mut self.event);
            if !event.fields.is_empty() {
                events.push(event);
            }
            return;
        }
        // Each line break counts toward the event's size too.
        self.event_bytes = self.event_bytes.saturating_add(1);
        let text = String::from_utf8_lossy(&line);
        let field = match text.strip_prefix(':') {
            Some(comment) => Field::Comment(comment.to_string()),
            None => {
                let (name, value) = match text.split_once(':') {
                    Some((n, v)) => (n, v.strip_prefix(' ').unwrap_or(v)),
                    None => (&*text, ""),
                };
                let value = value.to_string();
                match name {
                    "data" => Field::Data(value),
                    "event" => Field::Event(value),
                    "id" => Field::Id(value),
                    "retry" => Field::Retry(value),
                    // Clients ignore other fields, so they are not kept: written back, a
                    // name such as `\u{feff}data` could read differently at the start of a
                    // stream than it did here.
                    _ => return,
                }
            }
        };
        self.event.fields.push(field);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Vec<Event> {
        Parser::new(1 << 20).feed(bytes).unwrap()
    }

    fn data(bytes: &[u8]) -> Vec<Option<String>> {
        parse(bytes).iter().map(Event::data).collect()
    }

    #[test]
    fn a_byte_order_mark_is_stripped_once_at_the_start() {
        assert_eq!(data(b"\xEF\xBB\xBFdata: a\n\n"), [Some("a".into())]);
        // Split across reads.
        let mut p = Parser::new(100);
        assert!(p.feed(b"\xEF").unwrap().is_empty());
        assert!(p.feed(b"\xBB").unwrap().is_empty());
        let e = p.feed(b"\xBFdata: a\n\n").unwrap();
        assert_eq!(e[0].data().as_deref(), Some("a"));
        // Only once: a second mark is part of the field name (an unknown field).
        assert!(parse(b"\xEF\xBB\xBF\xEF\xBB\xBFdata: a\n\n").is_empty());
        // Not at the start: part of the line.
        assert_eq!(
            data(b"data: a\n\n\xEF\xBB\xBFdata: b\n\n"),
            [Some("a".into())]
        );
    }

    #[test]
    fn cr_lf_and_crlf_all_end_lines() {
        for input in [
            &b"data: a\r\rdata: b\r\r"[..],
            b"data: a\n\ndata: b\n\n",
            b"data: a\r\n\r\ndata: b\r\n\r\n",
            b"data: a\r\n\ndata: b\n\r\n",
        ] {
            assert_eq!(
                data(input),
                [Some("a".into()), Some("b".into())],
                "{input:?}"
            );
        }
        // CRLF split between two reads is one line end, not two (which would end the event).
        let mut p = Parser::new(100);
        assert!(p.feed(b"data: a\r").unwrap().is_empty());
        assert!(p.feed(b"\ndata: b\r").unwrap().is_empty());
        let e = p.feed(b"\n\r\n").unwrap();
        assert_eq!(e[0].data().as_deref(), Some("a\nb"));
    }

    #[test]
    fn fields_as_the_standard_reads_them() {
        let e = parse(
            b": keep-alive\nid: 7\nevent: message\nretry: 100\ndata:x\ndata:  y\ndata\nother\n\n",
        );
        assert_eq!(
            e[0].fields,
            [
                Field::Comment(" keep-alive".into()),
                Field::Id("7".into()),
                Field::Event("message".into()),
                Field::Retry("100".into()),
                Field::Data("x".into()),
                Field::Data(" y".into()),
                Field::Data(String::new()),
            ]
        );
        assert_eq!(e[0].data().as_deref(), Some("x\n y\n"));
        // `data : x` is a field named `data `, not data (and ignored).
        assert!(parse(b"data : x\n\n").is_empty());
        // An event that never ends is never dispatched.
        assert!(parse(b"data: a\n").is_empty());
        // A block of unknown fields is nothing.
        assert!(parse(b"foo: 1\n\n").is_empty());
    }

    #[test]
    fn written_events_read_back_the_same() {
        let input = b"\xEF\xBB\xBF: c\r\nid: 1\rdata:  two spaces\ndata:\nid:x:y\n\n";
        let events = parse(input);
        let mut out = Vec::new();
        for e in &events {
            e.write(&mut out);
        }
        assert_eq!(parse(&out), events);
        // A field that only reads as `data` once a mark is stripped is not written back at
        // the start of the output, where the client would strip the mark.
        let events = parse(b"\xEF\xBB\xBF\xEF\xBB\xBFdata: sneaky\n\n");
        assert!(events.is_empty(), "{events:?}");
    }

    #[test]
    fn events_are_bounded() {
        let mut p = Parser::new(16);
        assert!(p.feed(b"data: 0123456789").is_ok());
        assert_eq!(p.feed(b"abcdef\n"), Err(TooLarge { limit: 16 }));
        assert!(p.feed(b"\n").is_err(), "a parser that failed stays failed");
        // Many short lines add up to one event.
        let mut p = Parser::new(16);
        assert!(p.feed(b"data: 12345\ndata: 12345\ndata: 1\n").is_err());
        // The limit is per event.
        let mut p = Parser::new(16);
        for _ in 0..10 {
            assert_eq!(p.feed(b"data: 12345\n\n").unwrap().len(), 1);
        }
    }
}
