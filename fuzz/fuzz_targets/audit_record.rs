//! Audit record decoding: the canonical encoding must read back exactly what was written
//! (decode(encode(x)) == x, and encode(decode(b)) == b for any bytes that decode), and
//! decoding arbitrary bytes or arbitrary SQLite column values (a hand-edited log file) must
//! never panic.
#![no_main]

use libfuzzer_sys::arbitrary::{Arbitrary, Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use warden_audit::Encoding;
use warden_audit::fuzzing::{Column, RECORD_WIDTH, RecordFields, decode_row};

fn opt<'a>(u: &mut Unstructured<'a>) -> Result<Option<&'a [u8]>> {
    Ok(if bool::arbitrary(u)? {
        Some(<&[u8]>::arbitrary(u)?)
    } else {
        None
    })
}

fn hash<'a>(u: &mut Unstructured<'a>) -> Result<&'a [u8; 32]> {
    let b = u.bytes(32)?;
    Ok(b.try_into().expect("32 bytes"))
}

/// Arbitrary fields, built field by field.
fn fields<'a>(u: &mut Unstructured<'a>) -> Result<RecordFields<'a>> {
    let encoding = if bool::arbitrary(u)? {
        Encoding::V2
    } else {
        Encoding::V1
    };
    Ok(RecordFields {
        encoding,
        seq: u64::arbitrary(u)?,
        ts_ns: i64::arbitrary(u)?,
        agent: opt(u)?,
        action: <&[u8]>::arbitrary(u)?,
        tool: opt(u)?,
        resource: opt(u)?,
        verdict: <&[u8]>::arbitrary(u)?,
        policy: opt(u)?,
        rule: opt(u)?,
        reason: <&[u8]>::arbitrary(u)?,
        args: opt(u)?,
        args_digest: hash(u)?,
        context: match encoding {
            Encoding::V1 => None,
            _ => opt(u)?,
        },
        latency_ns: u64::arbitrary(u)?,
        policy_version: Option::<u64>::arbitrary(u)?,
        prev_hash: hash(u)?,
    })
}

fn column<'a>(u: &mut Unstructured<'a>) -> Result<Column<'a>> {
    Ok(match u8::arbitrary(u)? % 5 {
        0 => Column::Null,
        1 => Column::Integer(i64::arbitrary(u)?),
        2 => Column::Real(f64::arbitrary(u)?),
        3 => Column::Text(<&[u8]>::arbitrary(u)?),
        _ => Column::Blob(<&[u8]>::arbitrary(u)?),
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        // Raw bytes: decoding never panics; what decodes re-encodes to the same bytes.
        0 => {
            if let Ok(f) = RecordFields::decode(rest) {
                let mut buf = Vec::new();
                f.encode(&mut buf);
                assert_eq!(buf, rest, "encode(decode(b)) != b");
            }
        }
        // Structured fields: decode(encode(x)) == x.
        1 => {
            let mut u = Unstructured::new(rest);
            if let Ok(f) = fields(&mut u) {
                let mut buf = Vec::new();
                f.encode(&mut buf);
                assert_eq!(RecordFields::decode(&buf), Ok(f), "decode(encode(x)) != x");
            }
        }
        // A row of arbitrary column values, as a hand-edited file could hold.
        _ => {
            let mut u = Unstructured::new(rest);
            let mut columns = [Column::Null; RECORD_WIDTH];
            for c in &mut columns {
                match column(&mut u) {
                    Ok(v) => *c = v,
                    Err(_) => break,
                }
            }
            // Make the common well-formed shapes likely: 32-byte blobs for the hashes.
            let _ = decode_row(&columns, Encoding::V2);
            let _ = decode_row(&columns, Encoding::V1);
        }
    }
});
