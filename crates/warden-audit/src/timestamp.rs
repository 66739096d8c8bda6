//! Record timestamps: nanoseconds since the Unix epoch, shown and parsed as RFC 3339 UTC.
//!
//! The conversion is the proleptic Gregorian calendar arithmetic of Howard Hinnant's
//! `days_from_civil` / `civil_from_days`; a dozen lines do not justify a date-time crate in the
//! audit path.

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

const NANOS_PER_SEC: i64 = 1_000_000_000;
const SECS_PER_DAY: i64 = 86_400;

/// A point in time, in nanoseconds since 1970-01-01T00:00:00Z (negative before it).
///
/// Serialized as an RFC 3339 UTC string with nanoseconds (`2026-11-27T14:16:00.123456789Z`),
/// which round-trips exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The timestamp `nanos` nanoseconds after the Unix epoch.
    pub const fn from_unix_nanos(nanos: i64) -> Self {
        Timestamp(nanos)
    }

    /// Nanoseconds since the Unix epoch.
    pub const fn unix_nanos(self) -> i64 {
        self.0
    }

    /// The current time. A clock before 1970 or after 2262 (out of `i64` nanoseconds) is
    /// clamped rather than panicking: a timestamp is evidence, not a control input.
    pub fn now() -> Self {
        let nanos = match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
            Err(e) => i64::try_from(e.duration().as_nanos()).map_or(i64::MIN, |n| -n),
        };
        Timestamp(nanos)
    }

    /// Nanoseconds since the Unix epoch, now, unsigned (0 for a clock before 1970): the
    /// form the runtime's stores (approvals, sagas) keep times in.
    pub fn now_unix_ns() -> u64 {
        u64::try_from(Timestamp::now().unix_nanos()).unwrap_or(0)
    }

    /// Parse RFC 3339 (`2026-11-27T14:16:00Z`, `2026-11-27T15:16:00.5+01:00`), or a bare date
    /// (`2026-11-27`, meaning midnight UTC).
    pub fn parse_rfc3339(text: &str) -> Result<Self, TimestampError> {
        parse(text.trim()).ok_or_else(|| TimestampError {
            text: text.to_string(),
        })
    }
}

/// A string that is not an RFC 3339 timestamp.
#[derive(Debug, Clone, thiserror::Error)]
#[error("`{text}` is not an RFC 3339 timestamp (expected e.g. 2026-11-27T14:16:00Z or 2026-11-27)")]
pub struct TimestampError {
    text: String,
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC; the fraction is printed only when it is not zero, with 9 digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.div_euclid(NANOS_PER_SEC);
        let nanos = self.0.rem_euclid(NANOS_PER_SEC);
        let days = secs.div_euclid(SECS_PER_DAY);
        let sod = secs.rem_euclid(SECS_PER_DAY);
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
            sod / 3600,
            (sod / 60) % 60,
            sod % 60
        )?;
        if nanos != 0 {
            write!(f, ".{nanos:09}")?;
        }
        f.write_str("Z")
    }
}

impl FromStr for Timestamp {
    type Err = TimestampError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Timestamp::parse_rfc3339(s)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Timestamp::parse_rfc3339(&text).map_err(serde::de::Error::custom)
    }
}

fn parse(s: &str) -> Option<Timestamp> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = b.get(from..from + len)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(
            part.iter()
                .fold(0i64, |acc, c| acc * 10 + i64::from(c - b'0')),
        )
    };
    let year = num(0, 4)?;
    let month = num(5, 2)?;
    let day = num(8, 2)?;
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    if b.len() == 10 {
        return Some(Timestamp(days.checked_mul(SECS_PER_DAY * NANOS_PER_SEC)?));
    }
    if !matches!(b.get(10), Some(b'T' | b't' | b' '))
        || b.get(13) != Some(&b':')
        || b.get(16) != Some(&b':')
    {
        return None;
    }
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    // A leap second (:60) is accepted and folded into the next second, as most systems do.
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            if i - start < 9 {
                nanos = nanos * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        let digits = i - start;
        if digits == 0 {
            return None;
        }
        for _ in digits..9 {
            nanos *= 10;
        }
    }
    let offset_secs = match b.get(i) {
        Some(b'Z' | b'z') if b.len() == i + 1 => 0,
        Some(sign @ (b'+' | b'-')) if b.len() == i + 6 && b[i + 3] == b':' => {
            let (oh, om) = (num(i + 1, 2)?, num(i + 4, 2)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let off = oh * 3600 + om * 60;
            if *sign == b'+' { off } else { -off }
        }
        _ => return None,
    };
    let secs = days * SECS_PER_DAY + hour * 3600 + minute * 60 + second - offset_secs;
    secs.checked_mul(NANOS_PER_SEC)?
        .checked_add(nanos)
        .map(Timestamp)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_known_instants() {
        let cases = [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400 * NANOS_PER_SEC, "2000-02-29T00:00:00Z"),
            (
                1_795_788_960 * NANOS_PER_SEC + 123_456_789,
                "2026-11-27T14:16:00.123456789Z",
            ),
            (-1, "1969-12-31T23:59:59.999999999Z"),
        ];
        for (nanos, text) in cases {
            assert_eq!(Timestamp(nanos).to_string(), text);
            assert_eq!(
                Timestamp::parse_rfc3339(text).unwrap(),
                Timestamp(nanos),
                "{text}"
            );
        }
    }

    #[test]
    fn parses_offsets_fractions_and_dates() {
        let z = Timestamp::parse_rfc3339("2026-11-27T14:16:00Z").unwrap();
        assert_eq!(
            Timestamp::parse_rfc3339("2026-11-27T15:16:00+01:00").unwrap(),
            z
        );
        assert_eq!(
            Timestamp::parse_rfc3339("2026-11-27t09:16:00-05:00").unwrap(),
            z
        );
        let half = Timestamp::parse_rfc3339("2026-11-27T14:16:00.5Z").unwrap();
        assert_eq!(half.unix_nanos() - z.unix_nanos(), 500_000_000);
        let day = Timestamp::parse_rfc3339("2026-11-27").unwrap();
        assert_eq!(
            z.unix_nanos() - day.unix_nanos(),
            (14 * 3600 + 16 * 60) * NANOS_PER_SEC
        );
    }

    #[test]
    fn rejects_malformed_text() {
        for bad in [
            "",
            "2026-11-27T14:16:00",
            "2026-13-01T00:00:00Z",
            "2026-02-29",
            "2026-11-27T24:00:00Z",
            "2026-11-27T14:16:00.Z",
            "2026-11-27T14:16:00+0100",
            "yesterday",
        ] {
            assert!(Timestamp::parse_rfc3339(bad).is_err(), "{bad}");
        }
        let e = Timestamp::parse_rfc3339("yesterday").unwrap_err();
        assert!(e.to_string().contains("`yesterday`"), "{e}");
    }

    #[test]
    fn round_trips_every_day_of_four_centuries() {
        for days in (-146_097..146_097).step_by(7) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
