//! Request ids and how answers are matched to them.
//!
//! A proxy that filters answers by the request they answer must match them exactly as the
//! client will, or a server can slip an answer past the filter: keyed by the id's JSON text,
//! an answer to request `1` sent with id `1.0` or `"1"` matched nothing the proxy waited for
//! and went through unfiltered — and the TypeScript SDK client, which matches with
//! `Number(id)`, took it as the answer to request 1.
//!
//! So ids are compared by value: numbers as the IEEE double JavaScript makes of them
//! (`1`, `1.0` and `1e0` are one id), strings as exact strings. Pending requests are indexed
//! by a **loose key** under which a string that JavaScript reads as a number (`"1"`, `" 1 "`,
//! `"0x1"`) and that number fall together; an answer must then also have the request's JSON
//! type ([`same_id`]). One loose key can therefore be pending only once: two requests the
//! client could confuse (`1` and `"1"`) are never outstanding together.

use serde_json::Value;

/// The key a pending request is indexed by: ids a JavaScript client would take for one
/// another share it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IdKey {
    /// A number, or a string JavaScript's `Number()` reads as that number: the bits of the
    /// double (negative zero folded into zero).
    Number(u64),
    /// Any other string.
    String(String),
}

/// Whether `id` may identify a request: a string, or a number with an integral value (MCP:
/// "a string or integer").
pub fn valid_request_id(id: &Value) -> bool {
    match id {
        Value::String(_) => true,
        Value::Number(_) => number_bits(id).is_some(),
        _ => false,
    }
}

/// The loose key of an id; `None` for ids no request can have (null, objects, fractions).
pub fn key(id: &Value) -> Option<IdKey> {
    match id {
        Value::String(s) => Some(match js_number(s).and_then(integral_bits) {
            Some(bits) => IdKey::Number(bits),
            None => IdKey::String(s.clone()),
        }),
        Value::Number(_) => number_bits(id).map(IdKey::Number),
        _ => None,
    }
}

/// Whether an answer's id is the request's id: the same JSON type and the same value
/// (numbers compared as doubles, strings exactly).
pub fn same_id(request: &Value, answer: &Value) -> bool {
    match (request, answer) {
        (Value::String(a), Value::String(b)) => a == b,
        (Value::Number(_), Value::Number(_)) => {
            number_bits(request).is_some() && number_bits(request) == number_bits(answer)
        }
        _ => false,
    }
}

fn number_bits(v: &Value) -> Option<u64> {
    v.as_f64().and_then(integral_bits)
}

fn integral_bits(f: f64) -> Option<u64> {
    if !f.is_finite() || f.fract() != 0.0 {
        return None;
    }
    // `-0.0 == 0.0`, so this folds negative zero into zero.
    Some(if f == 0.0 { 0.0f64 } else { f }.to_bits())
}

/// What JavaScript's `Number(s)` makes of a string, for the forms that give a finite
/// number: surrounding white space ignored, empty means 0, `0x`/`0o`/`0b` prefixes, decimal
/// with an optional sign and exponent.
fn js_number(s: &str) -> Option<f64> {
    let t = s.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    if t.is_empty() {
        return Some(0.0);
    }
    for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] {
        if let Some(digits) = t
            .get(..2)
            .filter(|p| p.eq_ignore_ascii_case(prefix))
            .map(|_| &t[2..])
        {
            // JavaScript reads any number of digits; past u128 the value is not an id anyone
            // sends, and treating it as a plain string only makes matching stricter.
            return u128::from_str_radix(digits, radix)
                .ok()
                .filter(|_| !digits.starts_with(['+', '-']))
                .map(|n| n as f64);
        }
    }
    // Rust accepts `inf`, `nan` and `infinity` where JavaScript accepts only `Infinity`;
    // none of them is integral, so none becomes a number key either way.
    let plain = t
        .bytes()
        .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b));
    if !plain {
        return None;
    }
    t.parse::<f64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(s: &str) -> Value {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn numbers_are_one_id_whatever_their_spelling() {
        for form in ["1", "1.0", "1e0", "10e-1", "1.00000"] {
            assert!(same_id(&json!(1), &parse(form)), "{form}");
            assert_eq!(key(&parse(form)), key(&json!(1)), "{form}");
        }
        assert!(same_id(&parse("-0"), &json!(0)));
        assert!(!same_id(&json!(1), &json!(2)));
        assert!(!same_id(&json!(1), &parse("1.5")));
    }

    #[test]
    fn a_string_is_never_the_answer_to_a_number_nor_the_reverse() {
        assert!(!same_id(&json!(1), &json!("1")));
        assert!(!same_id(&json!("1"), &json!(1)));
        assert!(!same_id(&json!("1"), &json!("1.0")));
        assert!(same_id(&json!("a"), &json!("a")));
        assert!(!same_id(&json!(null), &json!(null)));
    }

    #[test]
    fn ids_a_javascript_client_would_confuse_share_a_key() {
        for s in ["1", " 1 ", "1.0", "0x1", "+1", "1e0"] {
            assert_eq!(key(&json!(s)), key(&json!(1)), "{s:?}");
        }
        assert_eq!(key(&json!("")), key(&json!(0)));
        assert_eq!(key(&json!("abc")), Some(IdKey::String("abc".into())));
        assert_eq!(key(&json!("1.5")), Some(IdKey::String("1.5".into())));
        assert_eq!(
            key(&json!("Infinity")),
            Some(IdKey::String("Infinity".into()))
        );
        assert_eq!(key(&json!(null)), None);
        assert_eq!(key(&parse("1.5")), None);
        assert_eq!(key(&json!({"a": 1})), None);
    }

    #[test]
    fn request_ids_are_strings_or_integers() {
        assert!(valid_request_id(&json!(7)) && valid_request_id(&json!("x")));
        assert!(valid_request_id(&parse("7.0")));
        assert!(!valid_request_id(&parse("7.5")));
        assert!(!valid_request_id(&json!(null)) && !valid_request_id(&json!([1])));
    }

    #[test]
    fn huge_integers_compare_as_javascript_sees_them() {
        // 2^53 + 1 is not a double; JavaScript reads it as 2^53.
        assert!(same_id(
            &parse("9007199254740993"),
            &parse("9007199254740992")
        ));
        assert!(same_id(
            &parse("18446744073709551615"),
            &parse("1.8446744073709552e19")
        ));
    }
}
