//! Timestamps from feeds and honeypots: every form becomes a UTC instant.

use crate::{RejectCode, Rejection};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};

/// Earliest accepted instant: 1970-01-01 (no threat intelligence predates the epoch, and an
/// earlier value is almost always a parsing accident such as a zero date).
const MIN_YEAR: i32 = 1970;
const MAX_YEAR: i32 = 9999;

fn invalid(s: &str, why: &str) -> Rejection {
    Rejection::new(RejectCode::InvalidTime, format!("`{s}` is not a timestamp: {why}"))
}

fn out_of_range(s: &str) -> Rejection {
    Rejection::new(
        RejectCode::TimeOutOfRange,
        format!("`{s}` is outside the accepted range {MIN_YEAR}-01-01 to {MAX_YEAR}-12-31"),
    )
}

/// Parse a timestamp: RFC 3339 / ISO 8601 (`Z`, `±hh:mm` or `±hhmm`, space for `T`),
/// `2019-01-13 21:06:13 UTC`, naive (UTC, never the host zone), epoch seconds, epoch
/// milliseconds (13 digits), `YYYYMMDD`. Out of range is a rejection, never a panic.
///
/// Digit-only values: 8 digits are `YYYYMMDD`, 13 are epoch milliseconds, 16 epoch
/// microseconds, 19 epoch nanoseconds, any other length up to 11 is epoch seconds (a fraction
/// `1514764800.5` is allowed).
pub fn parse_time(s: &str) -> Result<DateTime<Utc>, Rejection> {
    let t = s.trim();
    if t.is_empty() {
        return Err(invalid(s, "empty"));
    }
    if t.len() > 64 {
        return Err(invalid(s, "too long"));
    }
    let b = t.as_bytes();
    if b.iter().all(u8::is_ascii_digit) {
        return parse_digits(t);
    }
    if let Some((whole, frac)) = t.split_once('.') {
        if !whole.is_empty()
            && whole.len() <= 11
            && whole.bytes().all(|c| c.is_ascii_digit())
            && !frac.is_empty()
            && frac.len() <= 9
            && frac.bytes().all(|c| c.is_ascii_digit())
        {
            let secs: i64 = whole.parse().map_err(|_| out_of_range(s))?;
            let nanos = frac_nanos(frac);
            return in_range(s, Utc.timestamp_opt(secs, nanos).single());
        }
    }
    parse_iso(s, t)
}

fn frac_nanos(frac: &str) -> u32 {
    let mut n: u32 = 0;
    for (i, c) in frac.bytes().take(9).enumerate() {
        n += (c - b'0') as u32 * 10u32.pow(8 - i as u32);
    }
    n
}

fn in_range(s: &str, t: Option<DateTime<Utc>>) -> Result<DateTime<Utc>, Rejection> {
    use chrono::Datelike;
    match t {
        Some(t) if (MIN_YEAR..=MAX_YEAR).contains(&t.year()) => Ok(t),
        _ => Err(out_of_range(s)),
    }
}

fn parse_digits(t: &str) -> Result<DateTime<Utc>, Rejection> {
    let n = t.len();
    if n == 8 {
        let y: i32 = t[..4].parse().map_err(|_| invalid(t, "bad year"))?;
        let m: u32 = t[4..6].parse().map_err(|_| invalid(t, "bad month"))?;
        let d: u32 = t[6..].parse().map_err(|_| invalid(t, "bad day"))?;
        let date = NaiveDate::from_ymd_opt(y, m, d).ok_or_else(|| invalid(t, "no such date (YYYYMMDD)"))?;
        return in_range(t, date.and_hms_opt(0, 0, 0).map(|x| x.and_utc()));
    }
    if n > 19 {
        return Err(out_of_range(t));
    }
    let v: i64 = t.parse().map_err(|_| out_of_range(t))?;
    let dt = match n {
        13 => Utc.timestamp_millis_opt(v).single(),
        16 => DateTime::from_timestamp_micros(v),
        19 => Some(DateTime::from_timestamp_nanos(v)),
        1..=11 => Utc.timestamp_opt(v, 0).single(),
        _ => {
            return Err(invalid(t, "a number of this length is not epoch seconds (<=11 digits), milliseconds (13), microseconds (16) or nanoseconds (19)"))
        }
    };
    in_range(t, dt)
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn num(&mut self, digits: usize) -> Option<u32> {
        let end = self.i.checked_add(digits)?;
        let part = self.b.get(self.i..end)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.i = end;
        Some(part.iter().fold(0, |a, &c| a * 10 + (c - b'0') as u32))
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    fn rest(&self) -> &[u8] {
        &self.b[self.i.min(self.b.len())..]
    }
}

/// `YYYY-MM-DD[(T| )hh:mm[:ss[.frac]]][ ][Z|UTC|GMT|±hh:mm|±hhmm|±hh]`.
fn parse_iso(s: &str, t: &str) -> Result<DateTime<Utc>, Rejection> {
    let mut c = Cursor { b: t.as_bytes(), i: 0 };
    let shape = "expected YYYY-MM-DD[Thh:mm[:ss[.frac]]][Z|±hh:mm]";
    let y = c.num(4).ok_or_else(|| invalid(s, shape))?;
    if !c.eat(b'-') {
        return Err(invalid(s, shape));
    }
    let mo = c.num(2).ok_or_else(|| invalid(s, shape))?;
    if !c.eat(b'-') {
        return Err(invalid(s, shape));
    }
    let d = c.num(2).ok_or_else(|| invalid(s, shape))?;
    let date = NaiveDate::from_ymd_opt(y as i32, mo, d).ok_or_else(|| invalid(s, "no such date"))?;
    let (mut h, mut mi, mut sec, mut nanos) = (0, 0, 0, 0);
    if c.eat(b'T') || c.eat(b't') || (c.peek() == Some(b' ') && c.b.get(c.i + 1).is_some_and(u8::is_ascii_digit) && c.eat(b' ')) {
        h = c.num(2).ok_or_else(|| invalid(s, shape))?;
        if !c.eat(b':') {
            return Err(invalid(s, shape));
        }
        mi = c.num(2).ok_or_else(|| invalid(s, shape))?;
        if c.eat(b':') {
            sec = c.num(2).ok_or_else(|| invalid(s, shape))?;
            if c.eat(b'.') || c.eat(b',') {
                let start = c.i;
                while c.peek().is_some_and(|x| x.is_ascii_digit()) {
                    c.i += 1;
                }
                let frac = &t[start..c.i];
                if frac.is_empty() {
                    return Err(invalid(s, "empty fraction"));
                }
                nanos = frac_nanos(frac);
            }
        }
    }
    // A leap second (:60) is read as the last instant of the preceding second.
    let (sec, nanos) = if sec == 60 { (59, 999_999_999) } else { (sec, nanos) };
    let naive = date.and_hms_nano_opt(h, mi, sec, nanos).ok_or_else(|| invalid(s, "no such time of day"))?;
    // Zone: none (naive = UTC), Z, UTC/GMT, or a numeric offset.
    let rest = c.rest();
    let rest = rest.strip_prefix(b" ").unwrap_or(rest);
    let offset_secs: i64 = match rest {
        b"" | b"Z" | b"z" | b"UTC" | b"GMT" | b"utc" | b"gmt" | b"+00:00 UTC" => 0,
        _ => parse_offset(rest).ok_or_else(|| invalid(s, "unrecognised time zone (use Z, UTC or ±hh:mm)"))?,
    };
    let utc = naive.and_utc() - chrono::Duration::seconds(offset_secs);
    in_range(s, Some(utc))
}

fn parse_offset(z: &[u8]) -> Option<i64> {
    let sign = match z.first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let d = &z[1..];
    let (h, m) = match d.len() {
        2 => (&d[..2], &b"00"[..]),
        4 => (&d[..2], &d[2..]),
        5 if d[2] == b':' => (&d[..2], &d[3..]),
        _ => return None,
    };
    if !h.iter().chain(m).all(u8::is_ascii_digit) {
        return None;
    }
    let h = ((h[0] - b'0') * 10 + (h[1] - b'0')) as i64;
    let m = ((m[0] - b'0') * 10 + (m[1] - b'0')) as i64;
    if h > 23 || m > 59 {
        return None;
    }
    Some(sign * (h * 3600 + m * 60))
}

/// Format as RFC 3339 UTC with `Z` (seconds, or microseconds when non-zero).
pub fn format_time(t: DateTime<Utc>) -> String {
    if t.timestamp_subsec_micros() == 0 {
        t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> String {
        format_time(parse_time(s).unwrap_or_else(|e| panic!("{s}: {e}")))
    }

    #[test]
    fn forms() {
        let cases = [
            ("2021-01-17 07:44:46", "2021-01-17T07:44:46Z"),
            ("2021-01-17T07:44:46", "2021-01-17T07:44:46Z"),
            ("2021-01-17T07:44:46Z", "2021-01-17T07:44:46Z"),
            ("2021-01-17T09:44:46+02:00", "2021-01-17T07:44:46Z"),
            ("2021-01-17T02:44:46-0500", "2021-01-17T07:44:46Z"),
            ("2021-01-17T09:44:46+02", "2021-01-17T07:44:46Z"),
            ("2019-01-13 21:06:13 UTC", "2019-01-13T21:06:13Z"),
            ("2016-10-04T10:00:00.000000Z", "2016-10-04T10:00:00Z"),
            ("2018-06-14T00:00:01.123456Z", "2018-06-14T00:00:01.123456Z"),
            ("1514764800000", "2018-01-01T00:00:00Z"),
            ("1514764800", "2018-01-01T00:00:00Z"),
            ("1514764800.25", "2018-01-01T00:00:00.250000Z"),
            ("20180101", "2018-01-01T00:00:00Z"),
            ("2018-01-01", "2018-01-01T00:00:00Z"),
            ("2016-12-31T23:59:60Z", "2016-12-31T23:59:59.999999Z"),
        ];
        for (i, o) in cases {
            assert_eq!(p(i), o, "{i}");
        }
    }

    #[test]
    fn rejections() {
        for (s, code) in [
            ("", RejectCode::InvalidTime),
            ("yesterday", RejectCode::InvalidTime),
            ("2021-02-30 00:00:00", RejectCode::InvalidTime),
            ("2021-01-17T25:00:00Z", RejectCode::InvalidTime),
            ("99999999999999999999", RejectCode::TimeOutOfRange),
            ("1969-12-31T23:59:59Z", RejectCode::TimeOutOfRange),
            ("20211399", RejectCode::InvalidTime),
            ("2021-01-17T07:44:46+25:00", RejectCode::InvalidTime),
        ] {
            assert_eq!(parse_time(s).map_err(|e| e.code), Err(code), "{s}");
        }
    }
}

/// How far after its arrival a reported time may be: clock skew between a sensor and the hub.
pub const MAX_FUTURE: chrono::TimeDelta = chrono::TimeDelta::days(1);

/// The one rule for a reported time against its arrival (`now`), applied on every path in
/// (publish, imports, hpfeeds, sensor events, sessions): more than [`MAX_FUTURE`] after arrival
/// is `in_future` (a record dated 2999 would top every newest-first list and never age out), and
/// before 1970 is `time_out_of_range`. `Err` holds (code, message naming `field`).
pub fn check_reported_time(field: &str, t: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), (&'static str, String)> {
    if t > now + MAX_FUTURE {
        return Err(("in_future", format!("`{field}` {} is more than a day after its arrival", format_time(t))));
    }
    if t < DateTime::<Utc>::UNIX_EPOCH {
        return Err(("time_out_of_range", format!("`{field}` {} is before 1970", format_time(t))));
    }
    Ok(())
}

#[cfg(test)]
mod reported_time_tests {
    use super::*;

    #[test]
    fn a_day_of_skew_is_allowed_the_far_future_and_before_1970_are_not() {
        let now = parse_time("2026-12-04T18:00:00Z").unwrap();
        assert!(check_reported_time("t", now + chrono::TimeDelta::hours(23), now).is_ok());
        assert_eq!(check_reported_time("t", parse_time("9999-01-01T00:00:00Z").unwrap(), now).unwrap_err().0, "in_future");
        let before = DateTime::<Utc>::UNIX_EPOCH - chrono::TimeDelta::seconds(1);
        assert_eq!(check_reported_time("t", before, now).unwrap_err().0, "time_out_of_range");
    }
}
