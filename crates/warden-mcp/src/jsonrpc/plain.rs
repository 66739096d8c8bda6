//! One parse of a line for two readers: the gateway, which judges the parsed value, and the
//! peer, which parses the bytes it is sent.
//!
//! Re-serializing every message costs the proxy as much as parsing it, so a line the gateway
//! passes unchanged is written on as it came. That is only safe when every reasonable JSON
//! reader makes of the line exactly what the gateway judged; where readers are known to
//! disagree, the message goes on in serde_json's canonical form instead (as every message did
//! before), so the peer reads what was judged. A line is **plain** — forwardable as it came —
//! when all of these hold:
//!
//! - **No duplicate keys** at any depth. serde_json keeps the last; RapidJSON's `FindMember`,
//!   gjson and hand-rolled first-match readers keep the first, so `{"name":"add","name":…}`
//!   could be judged as one tool and run as another.
//! - **No `\r`.** It can only be white space between tokens (JSON forbids it raw inside
//!   strings), but readers that split lines with universal newlines — Python's `TextIOWrapper`
//!   (the Python SDK's stdio server), Node's `readline` — end the line there, and what follows
//!   could be a second message the gateway never saw as one.
//! - **No `\u` escapes.** Every conforming reader decodes them alike, but they are how names
//!   are disguised (`tools\u002fcall`, surrogates, `\u0000`); the canonical form spells the
//!   decoded characters out.
//! - **Only integers that serde_json holds exactly** (`i64`/`u64`): a fraction, an exponent,
//!   `-0` or an integer beyond 64 bits is read as a double here, while Python keeps big
//!   integers exact and `1e0` and `1.0` are different texts for the same id.
//! - **An object from the first byte to the last** (no byte-order mark, no white space
//!   around it, no other top level). Anything else is refused or re-serialized anyway.
//!
//! Apart from plain or not, a line is **folded** when one of its objects has two keys that
//! are the same once case is ignored (`method` and `Method`, `params` and `paramſ`): Go's
//! `encoding/json` matches keys to struct fields that way, the last match winning
//! (mark3labs/mcp-go; the official go-sdk before CVE-2026-27896), and no canonical form
//! helps — both keys are kept. The gateway refuses such a message (see
//! [`super::parse_line`]).
//!
//! Everything else (invalid UTF-8, lone surrogates, comments, `NaN`, trailing text, nesting
//! deeper than serde_json's limit) does not parse here, and is refused as before.
//!
//! The value is built by this module's own visitor, not serde_json's: with the `raw_value`
//! feature on (the workspace enables it), serde_json's `Value` reads an object whose only key
//! is `$serde_json::private::RawValue` as the JSON text of its string value — the gateway
//! would judge an object the peer never sees. Here that key is a key like any other.

use std::cell::Cell;
use std::collections::HashSet;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// A line parsed, and whether it may be written on as it came.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// The value the gateway judges.
    pub value: Value,
    /// The line is plain (see the module docs): a peer reads exactly `value` from it.
    pub plain: bool,
    /// An object of the line has two keys that differ only in case (see the module docs).
    pub folded: bool,
}

/// What [`Seed`] learns of a line as it reads it.
struct Flags {
    plain: Cell<bool>,
    folded: Cell<bool>,
}

/// A key as a reader that ignores case sees it: Go's `encoding/json` folds with Unicode
/// simple case folding (`ſ` is `s`, the Kelvin sign is `k`, `ẞ` is `ß`); upper then lower
/// case covers those (and folds a few more together, which only refuses more) once done
/// twice: once, `ß` became `ss` (its upper case is `SS`) but `ẞ` became `ß`, and the two
/// Go reads as one key stayed apart.
pub fn fold(key: &str) -> String {
    key.to_uppercase()
        .to_lowercase()
        .to_uppercase()
        .to_lowercase()
}

/// Parse one line (without its `\n`).
pub fn parse(line: &[u8]) -> serde_json::Result<Parsed> {
    let flags = Flags {
        plain: Cell::new(plain_bytes(line)),
        folded: Cell::new(false),
    };
    let mut de = serde_json::Deserializer::from_slice(line);
    let value = Seed(&flags).deserialize(&mut de)?;
    de.end()?;
    Ok(Parsed {
        value,
        plain: flags.plain.get(),
        folded: flags.folded.get(),
    })
}

/// The byte-level conditions: one object with nothing around it, no `\r`, no `\u`.
fn plain_bytes(line: &[u8]) -> bool {
    line.first() == Some(&b'{')
        && line.last() == Some(&b'}')
        && !line.contains(&b'\r')
        // After a backslash comes an escape letter (or, for `\\`, another backslash — a
        // `\\u` counts too: not plain, which is only slower).
        && !line
            .split(|&b| b == b'\\')
            .skip(1)
            .any(|after| after.first() == Some(&b'u'))
}

/// Builds a [`Value`] like serde_json's own visitor, and clears the flag on what is not plain.
#[derive(Clone, Copy)]
struct Seed<'a>(&'a Flags);

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        self.0.plain.set(false);
        // The parser never yields a non-finite double; serde_json maps one to null too.
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        let mut folds = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(self)?;
            if !folds.insert(fold(&key)) && !object.contains_key(&key) {
                self.0.folded.set(true);
            }
            // serde_json's rule (the last value, at the first key's place), so the value is
            // the one serde_json would have made; the line is no longer plain.
            if object.insert(key, value).is_some() {
                self.0.plain.set(false);
            }
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn plain(line: &str) -> bool {
        parse(line.as_bytes()).unwrap().plain
    }

    #[test]
    fn ordinary_messages_are_plain() {
        for line in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"ping"}}}"#,
            r#"{"jsonrpc": "2.0", "id": "a-1", "method": "tools/list"}"#,
            r#"{"jsonrpc":"2.0","id":-7,"result":{"content":[{"type":"text","text":"line\none \"quoted\" \\ \/ é 日本"}],"isError":false}}"#,
            r#"{"jsonrpc":"2.0","id":18446744073709551615,"result":{}}"#,
            "{\"a\":[1,2,{\"b\":null}],\t\"c\":true}",
        ] {
            assert!(plain(line), "{line}");
        }
    }

    #[test]
    fn ambiguous_lines_are_not_plain_and_parse_as_serde_json_does() {
        for line in [
            // Duplicate keys, at the top and deeper, also spelled differently.
            r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"x"}"#,
            r#"{"params":{"name":"add","name":"write_file"}}"#,
            r#"{"a":[{"t":1,"t":1}]}"#,
            r#"{"id":1,"\u0069d":2}"#,
            // White space a line reader may end the line at.
            "{\"a\":1,\r\"b\":2}",
            "{\"a\":1}\r",
            // Escapes.
            r#"{"method":"tools\u002fcall"}"#,
            r#"{"a":"\u00e9"}"#,
            r#"{"a":"\\u"}"#,
            // Numbers that are not exact 64-bit integers.
            r#"{"id":1.0}"#,
            r#"{"id":1e0}"#,
            r#"{"id":10e-1}"#,
            r#"{"id":-0}"#,
            r#"{"id":18446744073709551616}"#,
            r#"{"a":[0.5]}"#,
            // Not one object from the first byte to the last.
            " {\"a\":1}",
            "{\"a\":1} ",
            "{\"a\":1}\t",
            "[{\"a\":1}]",
            "\"x\"",
            "1",
        ] {
            let got = parse(line.as_bytes()).unwrap();
            assert!(!got.plain, "{line}");
            let serde: Value = serde_json::from_str(line).unwrap();
            assert_eq!(got.value, serde, "{line}");
        }
    }

    #[test]
    fn what_serde_json_refuses_is_refused() {
        for line in [
            &b"\xef\xbb\xbf{\"a\":1}"[..],
            b"{\"a\":\"\xff\"}",
            b"{\"a\":\"\xed\xa0\x80\"}",
            br#"{"a":"\ud800"}"#,
            br#"{"a":"\udc00x"}"#,
            br#"{"a":1,}"#,
            br#"{"a":NaN}"#,
            br#"{"a":1e400}"#,
            br#"{"a":1}{"b":2}"#,
            b"{\"a\":\"x\ny\"}",
            b"{\"a\":\"x\ry\"}",
            b"{\"a\":1} // c",
        ] {
            assert!(parse(line).is_err(), "{}", String::from_utf8_lossy(line));
            assert!(serde_json::from_slice::<Value>(line).is_err());
        }
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(parse(deep.as_bytes()).is_err());
    }

    #[test]
    fn keys_that_differ_only_in_case_are_folded() {
        for line in [
            r#"{"method":"ping","Method":"tools/call"}"#,
            r#"{"a":{"params":{},"paramſ":{}}}"#,
            r#"{"a":[{"k":1,"K":2}]}"#,
            r#"{"path":"/tmp/ok","PATH":"/etc/shadow"}"#,
        ] {
            assert!(parse(line.as_bytes()).unwrap().folded, "{line}");
        }
        for line in [
            r#"{"method":"ping","params":{"method":"x"}}"#,
            r#"{"id":1,"id":2}"#,
            r#"{"a":1,"b":2}"#,
        ] {
            assert!(!parse(line.as_bytes()).unwrap().folded, "{line}");
        }
    }

    #[test]
    fn the_raw_value_key_is_an_ordinary_key() {
        let line = r#"{"$serde_json::private::RawValue":"{\"path\":\"/tmp/ok\"}"}"#;
        // serde_json's `Value` (with `raw_value`) reads the string as JSON text…
        let serde: Value = serde_json::from_str(line).unwrap();
        assert_eq!(serde, serde_json::json!({"path": "/tmp/ok"}));
        // …which a peer does not: here the key stays a key.
        let got = parse(line.as_bytes()).unwrap();
        assert_eq!(
            got.value,
            serde_json::json!({"$serde_json::private::RawValue": "{\"path\":\"/tmp/ok\"}"})
        );
        assert!(got.plain);
        // And the canonical form says so too.
        assert_eq!(got.value.to_string(), line);
    }

    /// Arbitrary JSON, with some duplicate keys, escapes and numbers of every kind.
    fn json_text() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("null".to_string()),
            Just("true".to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<u64>().prop_map(|n| n.to_string()),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| format!("{f:?}")),
            prop::sample::select(vec!["1e0", "-0", "1.0", "99999999999999999999"])
                .prop_map(str::to_string),
            "[a-z\\\\\"é\u{2028}]{0,6}".prop_map(|s| serde_json::to_string(&s).unwrap()),
            prop::sample::select(vec![r#""\u0041""#, r#""\n\/""#]).prop_map(str::to_string),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4)
                    .prop_map(|v| format!("[{}]", v.join(","))),
                prop::collection::vec(("[ab]{1,2}", inner), 0..4).prop_map(|kv| {
                    let body: Vec<String> =
                        kv.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                    format!("{{{}}}", body.join(","))
                }),
            ]
        })
    }

    /// A reader that keeps the first of duplicate keys (RapidJSON's `FindMember`, gjson).
    struct FirstWins;

    impl<'de> DeserializeSeed<'de> for FirstWins {
        type Value = Value;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for FirstWins {
        type Value = Value;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("JSON")
        }
        fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
            Ok(v.into())
        }
        fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
            Ok(v.into())
        }
        fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
            Ok(v.into())
        }
        fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
            Ok(v.into())
        }
        fn visit_str<E>(self, v: &str) -> Result<Value, E> {
            Ok(v.into())
        }
        fn visit_unit<E>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
            let mut items = Vec::new();
            while let Some(item) = seq.next_element_seed(FirstWins)? {
                items.push(item);
            }
            Ok(Value::Array(items))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
            let mut object = Map::new();
            while let Some(key) = map.next_key::<String>()? {
                let value = map.next_value_seed(FirstWins)?;
                object.entry(key).or_insert(value);
            }
            Ok(Value::Object(object))
        }
    }

    proptest! {
        /// The value is serde_json's; and when the line is plain, a reader that keeps the
        /// first of duplicate keys reads the same value, the line holds no `\r` and no
        /// `\u`, and every number in it is an exact integer: what the peer reads is what
        /// was judged.
        #[test]
        fn parses_like_serde_json_and_plain_means_unambiguous(text in json_text()) {
            let serde: Value = serde_json::from_str(&text).unwrap();
            let got = parse(text.as_bytes()).unwrap();
            prop_assert_eq!(&got.value, &serde);
            if got.plain {
                prop_assert!(!text.contains("\\u") && !text.contains('\r'));
                let first = FirstWins
                    .deserialize(&mut serde_json::Deserializer::from_str(&text))
                    .unwrap();
                prop_assert_eq!(&first, &serde);
                fn exact(v: &Value) -> bool {
                    match v {
                        Value::Number(n) => n.is_i64() || n.is_u64(),
                        Value::Array(a) => a.iter().all(exact),
                        Value::Object(o) => o.values().all(exact),
                        _ => true,
                    }
                }
                prop_assert!(exact(&serde), "{}", text);
            }
        }
    }
}
