//! JSON-RPC framing and id matching, from arbitrary bytes: `jsonrpc::parse` never panics;
//! the id sniffer (used on lines too long to keep) finds the same top-level `id` and
//! `method` that a full parse finds; the line reader accounts for every byte and never keeps
//! a line over its limit; and ids that match by value always share a key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use warden_mcp::jsonrpc::framing::{Frame, IdSniffer, LineReader};
use warden_mcp::jsonrpc::{self, id};

fuzz_target!(|data: &[u8]| {
    let _ = jsonrpc::parse(data);

    // The sniffer agrees with serde_json on whole objects.
    let mut sniffer = IdSniffer::default();
    sniffer.feed(data);
    let found = sniffer.finish(data.len());
    if let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(data) {
        assert_eq!(found.has_method, obj.contains_key("method"), "method");
        match obj.get("id") {
            Some(v @ (Value::String(_) | Value::Number(_) | Value::Null)) => {
                if let Some(got) = &found.id {
                    assert_eq!(got, v, "sniffed a different id");
                } else {
                    assert!(v.to_string().len() >= 40, "missed the id {v}");
                }
            }
            _ => assert!(
                found.id.is_none(),
                "sniffed an id that is not one: {:?}",
                found.id
            ),
        }
    }

    // The line reader: every byte accounted for, no kept line over the limit.
    let max = usize::from(data.first().copied().unwrap_or(0)) + 1;
    let mut reader = LineReader::new(std::io::BufReader::with_capacity(13, data), max);
    let mut total = 0;
    while let Some(frame) = reader.next_frame() {
        match frame.unwrap() {
            Frame::Line(l) => {
                assert!(l.len() <= max && !l.contains(&b'\n'));
                total += l.len();
            }
            Frame::TooLong(o) => {
                assert!(o.len > max);
                total += o.len;
            }
        }
    }
    let newlines = data.iter().filter(|&&b| b == b'\n').count();
    assert_eq!(total + newlines, data.len());

    // Ids: matching by value implies one key, and matching is symmetric.
    if let Some(split) = data.iter().position(|&b| b == b'|') {
        let (a, b) = (&data[..split], &data[split + 1..]);
        if let (Ok(a), Ok(b)) = (
            serde_json::from_slice::<Value>(a),
            serde_json::from_slice::<Value>(b),
        ) {
            if id::same_id(&a, &b) {
                assert!(id::same_id(&b, &a));
                assert!(
                    id::key(&a).is_some() && id::key(&a) == id::key(&b),
                    "{a} {b}"
                );
            }
        }
    }
});
