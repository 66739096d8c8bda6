//! Decoding a record row: borrowed raw columns for hashing ([`RawRow`]), and an owned
//! [`Record`] for people and exports.
//!
//! Both work on the column values alone (not on an SQLite row), so hostile values can be fed
//! to them directly (the fuzz target does). A `STRICT` table keeps most wrong types out, but
//! a hand-edited file can still hold a hash of the wrong length or text that is not UTF-8;
//! every such value is an answer (an error naming the record), never a panic.

use rusqlite::Row;
use rusqlite::types::ValueRef;

use super::schema::{RECORD_WIDTH, to_u64};
use crate::encoding::{Encoding, RecordFields};
use crate::record::Record;
use crate::timestamp::Timestamp;

/// The column values of one row selected with [`super::schema::record_select`].
pub(crate) fn row_values<'a>(row: &'a Row<'_>) -> [ValueRef<'a>; RECORD_WIDTH] {
    std::array::from_fn(|i| row.get_ref(i).unwrap_or(ValueRef::Null))
}

/// A record row, borrowed, with every column type-checked.
#[derive(Debug)]
pub(crate) struct RawRow<'a> {
    pub fields: RecordFields<'a>,
    pub hash: &'a [u8; 32],
}

impl<'a> RawRow<'a> {
    /// Borrow the columns of a row. `Err(seq)` when a column has the wrong type or length
    /// (a hand edit the `STRICT` table let through).
    pub(crate) fn from_values(
        v: &[ValueRef<'a>; RECORD_WIDTH],
        encoding: Encoding,
    ) -> Result<RawRow<'a>, u64> {
        let seq = match v[0] {
            ValueRef::Integer(s) if s >= 0 => s.cast_unsigned(),
            _ => 0,
        };
        // Each column by its type; any other type is a hand edit, named by `seq`.
        let int = |i: usize| integer(v[i]).ok_or(seq);
        let opt_int = |i: usize| nullable(v[i], integer).ok_or(seq);
        let text = |i: usize| bytes(v[i]).ok_or(seq);
        let opt_text = |i: usize| nullable(v[i], bytes).ok_or(seq);
        let hash = |i: usize| hash32(v[i]).ok_or(seq);
        let context = opt_text(12)?;
        if encoding == Encoding::V1 && context.is_some() {
            return Err(seq);
        }
        Ok(RawRow {
            fields: RecordFields {
                encoding,
                seq,
                ts_ns: int(1)?,
                agent: opt_text(2)?,
                action: text(3)?,
                tool: opt_text(4)?,
                resource: opt_text(5)?,
                verdict: text(6)?,
                policy: opt_text(7)?,
                rule: opt_text(8)?,
                reason: text(9)?,
                args: opt_text(10)?,
                args_digest: hash(11)?,
                context,
                // Stored as SQLite's signed integers; the encoding uses the same 64 bits
                // unsigned.
                latency_ns: int(13)?.cast_unsigned(),
                policy_version: opt_int(14)?.map(i64::cast_unsigned),
                prev_hash: hash(15)?,
            },
            hash: hash(16)?,
        })
    }

    /// Whether the stored hash is the hash of the stored fields.
    pub(crate) fn hash_ok(&self, buf: &mut Vec<u8>) -> bool {
        self.fields.hash(buf) == *self.hash
    }
}

fn integer(v: ValueRef<'_>) -> Option<i64> {
    match v {
        ValueRef::Integer(x) => Some(x),
        _ => None,
    }
}

fn bytes(v: ValueRef<'_>) -> Option<&[u8]> {
    match v {
        ValueRef::Text(t) => Some(t),
        _ => None,
    }
}

fn hash32(v: ValueRef<'_>) -> Option<&[u8; 32]> {
    match v {
        ValueRef::Blob(b) => b.try_into().ok(),
        _ => None,
    }
}

/// A nullable column: `Some(None)` for NULL, `Some(Some(x))` when `pick` reads it, `None`
/// for a value of another type.
fn nullable<'a, T>(
    v: ValueRef<'a>,
    pick: impl FnOnce(ValueRef<'a>) -> Option<T>,
) -> Option<Option<T>> {
    match v {
        ValueRef::Null => Some(None),
        v => pick(v).map(Some),
    }
}

/// Decode a row into a [`Record`]. `Err` names the field that does not decode (a hand edit
/// that broke it); `verify` says more.
pub(crate) fn record_from_values(
    v: &[ValueRef<'_>; RECORD_WIDTH],
) -> Result<Record, (u64, &'static str)> {
    let seq = match v[0] {
        ValueRef::Integer(s) => to_u64(s),
        _ => 0,
    };
    let bad = |what: &'static str| (seq, what);
    let int = |i: usize, what| integer(v[i]).ok_or_else(|| bad(what));
    let opt_str = |i: usize, what| {
        nullable(v[i], |v| bytes(v).and_then(|t| std::str::from_utf8(t).ok()))
            .ok_or_else(|| bad(what))
            .map(|s| s.map(str::to_string))
    };
    let str = |i: usize, what| opt_str(i, what)?.ok_or_else(|| bad(what));
    let json = |i: usize, what| {
        opt_str(i, what)?
            .map(|s| serde_json::from_str(&s).map_err(|_| bad(what)))
            .transpose()
    };
    let hash = |i: usize, what| hash32(v[i]).copied().ok_or_else(|| bad(what));
    Ok(Record {
        seq,
        ts: Timestamp::from_unix_nanos(int(1, "timestamp")?),
        agent: opt_str(2, "agent")?,
        action: str(3, "action")?,
        tool: opt_str(4, "tool")?,
        resource: opt_str(5, "resource")?,
        verdict: str(6, "verdict")?.parse().map_err(|_| bad("verdict"))?,
        policy: opt_str(7, "policy")?,
        rule: opt_str(8, "rule")?,
        reason: str(9, "reason")?,
        args: json(10, "args")?,
        args_digest: hash(11, "args digest")?,
        context: json(12, "context")?,
        latency_ns: int(13, "latency")?.cast_unsigned(),
        policy_version: nullable(v[14], integer)
            .ok_or_else(|| bad("policy version"))?
            .map(i64::cast_unsigned),
        prev_hash: hash(15, "previous hash")?,
        hash: hash(16, "hash")?,
    })
}
