//! Times for the `exp`, `nbf` and `iat` claims of `jwtkit sign`: an offset
//! from now (`15m`, `+15m`, `-30s`), a NumericDate (`1716163200`) or an
//! RFC 3339 date-time (`2026-12-01T00:00:00Z`, `2026-12-01T02:00:00+02:00`).
//!
//! A bare integer is always a NumericDate, never a number of seconds: an
//! offset needs a unit. (`--exp 4000000000` once meant "now + 4e9 s".)

use std::fmt;
use std::time::Duration;

/// The latest time any of these flags accepts: 9999-12-31T23:59:59Z, the
/// last instant RFC 3339 can write. Far below anything that overflows when
/// a verifier adds its leeway.
pub(crate) const LATEST: i64 = 253_402_300_799;

/// The forms, for error messages.
const FORMS: &str = "an offset from now with a unit (15m, +1h, -30s; units s, m, h, d), \
                     a NumericDate (Unix seconds, e.g. 1716163200) or an RFC 3339 date-time \
                     (e.g. 2026-12-01T00:00:00Z or 2026-12-01T02:00:00+02:00)";

/// A claim time as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClaimTime {
    form: Form,
    /// The argument as written, for messages.
    text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    /// Seconds after (positive) or before (negative) now.
    Offset(i64),
    /// An absolute Unix time (a NumericDate or an RFC 3339 date-time).
    Absolute(i64),
}

impl ClaimTime {
    /// The Unix time this argument means when "now" is `now`.
    pub(crate) fn resolve(&self, now: i64) -> Result<i64, String> {
        match self.form {
            Form::Absolute(t) => Ok(t),
            Form::Offset(secs) => now.checked_add(secs).ok_or_else(|| {
                format!(
                    "now ({now}) plus {secs}s is outside the representable times; give a shorter \
                     offset or an absolute time"
                )
            }),
        }
    }

    /// Whether the argument was a bare integer (a NumericDate): messages
    /// about a past `exp` then say that bare numbers are not lifetimes.
    pub(crate) fn is_numeric_date(&self) -> bool {
        matches!(self.form, Form::Absolute(_)) && self.text.bytes().all(|b| b.is_ascii_digit())
    }

    /// The offset from now, when the argument is one.
    pub(crate) fn offset(&self) -> Option<i64> {
        match self.form {
            Form::Offset(secs) => Some(secs),
            Form::Absolute(_) => None,
        }
    }
}

/// The argument as the user wrote it.
impl fmt::Display for ClaimTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Parses `--nbf` and `--iat` (a clap `value_parser`): every form, negative
/// offsets included (`--nbf -30s` tolerates a verifier's slow clock).
pub(crate) fn parse(input: &str) -> Result<ClaimTime, String> {
    let form = if let Some(form) = offset(input)? {
        form
    } else if is_integer(input) {
        Form::Absolute(numeric_date(input)?)
    } else if looks_like_date(input) {
        Form::Absolute(rfc3339(input)?)
    } else {
        return Err(format!("invalid time {input:?}: use {FORMS}"));
    };
    Ok(ClaimTime {
        form,
        text: input.to_owned(),
    })
}

/// Parses `--exp`: like [`parse`], but a negative offset is refused here,
/// since a token that expired before it was signed is never useful.
pub(crate) fn parse_exp(input: &str) -> Result<ClaimTime, String> {
    let time = parse(input)?;
    if time.offset().is_some_and(|secs| secs < 0) {
        return Err(format!(
            "{input:?} is in the past: a token with this `exp` would be expired when signed; \
             give a lifetime such as 15m (or an absolute time in the future)"
        ));
    }
    Ok(time)
}

/// Parses `--now` (a clap `value_parser`): a Unix time in seconds
/// (`1716163200`; any 64-bit integer, so a test can probe the extremes) or
/// an RFC 3339 date-time (`2026-12-01T00:00:00Z`), as --exp takes them. An
/// offset is refused: "now" is the instant the offsets are counted from.
pub(crate) fn parse_now(input: &str) -> Result<i64, String> {
    let accepted = "use a Unix time in seconds (e.g. 1716163200) or an RFC 3339 date-time \
                    (e.g. 2026-12-01T00:00:00Z or 2026-12-01T02:00:00+02:00)";
    if is_integer(input) {
        return input.parse::<i64>().map_err(|_| {
            format!("{input:?} is outside the 64-bit range of Unix times; {accepted}")
        });
    }
    if looks_like_date(input) {
        return rfc3339(input);
    }
    if matches!(offset(input), Ok(Some(_))) {
        return Err(format!(
            "{input:?} is an offset, but --now is the instant offsets are counted from; {accepted}"
        ));
    }
    Err(format!("invalid time {input:?}: {accepted}"))
}

/// `[+|-]<digits><unit>`: an offset from now. `None` when the input has no
/// unit letter at the end (then it is not an offset at all).
fn offset(input: &str) -> Result<Option<Form>, String> {
    let (negative, rest) = match input.as_bytes().first() {
        Some(b'-') => (true, &input[1..]),
        Some(b'+') => (false, &input[1..]),
        _ => (false, input),
    };
    let Some(unit) = rest.chars().last() else {
        return Ok(None);
    };
    let digits = &rest[..rest.len() - unit.len_utf8()];
    if !unit.is_ascii_alphabetic()
        || digits.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return Ok(None);
    }
    // The duration parser owns the units and the 100-year bound; it reads
    // the unsigned part (it refuses a sign itself).
    let duration: Duration = super::parse(rest).map_err(|e| {
        if e.contains("too long") {
            e
        } else {
            format!("invalid offset {input:?}: the unit must be s, m, h or d; or use {FORMS}")
        }
    })?;
    // At most 100 years: fits an i64 with room to spare.
    let secs = i64::try_from(duration.as_secs()).unwrap_or(i64::MAX);
    Ok(Some(Form::Offset(if negative { -secs } else { secs })))
}

/// A bare integer: a NumericDate (Unix seconds), from 1970 to 9999.
fn numeric_date(input: &str) -> Result<i64, String> {
    if input.starts_with('-') {
        return Err(format!(
            "{input:?} is a negative NumericDate (before 1970). A bare number is an absolute \
             Unix time; for an offset before now write a unit, e.g. {input}s"
        ));
    }
    if input.starts_with('+') {
        return Err(format!(
            "{input:?}: a bare number is a NumericDate (Unix seconds) and takes no sign; for an \
             offset from now write a unit, e.g. {input}s"
        ));
    }
    match input.parse::<i64>() {
        Ok(t) if t <= LATEST => Ok(t),
        _ => Err(format!(
            "{input:?} is past 9999-12-31T23:59:59Z ({LATEST}), the latest time accepted; a bare \
             number is a NumericDate (Unix seconds), not a lifetime: for one write a unit, e.g. 15m"
        )),
    }
}

/// An optional sign and at least one digit.
fn is_integer(input: &str) -> bool {
    let digits = input.strip_prefix(['-', '+']).unwrap_or(input);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// `YYYY-MM-DD` followed by a time: worth an RFC 3339 error message.
fn looks_like_date(input: &str) -> bool {
    let b = input.as_bytes();
    b.len() >= 10 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' && b[7] == b'-'
}

/// An RFC 3339 `date-time` (§5.6): `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`.
/// `t`, `z` and a space in place of `T` are accepted (§5.6 note).
/// Fractional seconds are dropped: the claims are whole seconds.
fn rfc3339(input: &str) -> Result<i64, String> {
    let invalid = |why: &str| {
        format!(
            "invalid RFC 3339 date-time {input:?}: {why}; write it like 2026-12-01T00:00:00Z or \
             2026-12-01T02:00:00+02:00"
        )
    };
    let b = input.as_bytes();
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = b.get(range)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        part.iter().try_fold(0u32, |n, d| {
            n.checked_mul(10)?.checked_add(u32::from(d - b'0'))
        })
    };
    // `YYYY-MM-DDTHH:MM:SS` is 19 bytes; the zone comes after.
    if b.len() < 19 {
        return Err(invalid("it is too short"));
    }
    let (Some(year), Some(month), Some(day)) = (number(0..4), number(5..7), number(8..10)) else {
        return Err(invalid("the date is not YYYY-MM-DD"));
    };
    if !matches!(b[10], b'T' | b't' | b' ') {
        return Err(invalid("the date and the time are separated by `T`"));
    }
    let (Some(hour), Some(minute), Some(second)) = (number(11..13), number(14..16), number(17..19))
    else {
        return Err(invalid("the time is not HH:MM:SS"));
    };
    if b[13] != b':' || b[16] != b':' {
        return Err(invalid("the time is not HH:MM:SS"));
    }
    let mut rest = &b[19..];
    if let Some(fraction) = rest.strip_prefix(b".") {
        let digits = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return Err(invalid("a `.` must be followed by the fraction's digits"));
        }
        rest = &fraction[digits..];
    }
    let offset_secs: i32 = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let two = |a: u8, b: u8| {
                (a.is_ascii_digit() && b.is_ascii_digit())
                    .then(|| i32::from(a - b'0') * 10 + i32::from(b - b'0'))
            };
            let (Some(h), Some(m)) = (two(*h1, *h2), two(*m1, *m2)) else {
                return Err(invalid("the offset is not ±HH:MM"));
            };
            if h > 23 || m > 59 {
                return Err(invalid("the offset is out of range (at most ±23:59)"));
            }
            let secs = h * 3600 + m * 60;
            if *sign == b'-' {
                -secs
            } else {
                secs
            }
        }
        [] => {
            return Err(invalid(
                "the time zone is missing (add Z for UTC, or ±HH:MM)",
            ))
        }
        _ => return Err(invalid("the time zone must be Z or ±HH:MM")),
    };
    if second == 60 {
        return Err(invalid(
            "leap seconds (:60) are not representable as a NumericDate",
        ));
    }
    let month = u8::try_from(month)
        .ok()
        .and_then(|m| time::Month::try_from(m).ok())
        .ok_or_else(|| invalid("the month is out of range"))?;
    let date = i32::try_from(year)
        .ok()
        .zip(u8::try_from(day).ok())
        .and_then(|(y, d)| time::Date::from_calendar_date(y, month, d).ok())
        .ok_or_else(|| invalid("no such day"))?;
    let clock = u8::try_from(hour)
        .ok()
        .zip(u8::try_from(minute).ok())
        .zip(u8::try_from(second).ok())
        .and_then(|((h, m), s)| time::Time::from_hms(h, m, s).ok())
        .ok_or_else(|| invalid("the time of day is out of range"))?;
    let offset = time::UtcOffset::from_whole_seconds(offset_secs)
        .map_err(|_| invalid("the offset is out of range"))?;
    let unix = time::PrimitiveDateTime::new(date, clock)
        .assume_offset(offset)
        .unix_timestamp();
    if unix < 0 {
        return Err(invalid(
            "it is before 1970-01-01T00:00:00Z, which no claim time may be",
        ));
    }
    if unix > LATEST {
        return Err(invalid("it is after 9999-12-31T23:59:59Z"));
    }
    Ok(unix)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(input: &str, now: i64) -> i64 {
        parse(input)
            .unwrap_or_else(|e| panic!("{input}: {e}"))
            .resolve(now)
            .unwrap()
    }

    #[test]
    fn offsets_with_and_without_sign() {
        assert_eq!(at("15m", 1000), 1900);
        assert_eq!(at("+15m", 1000), 1900);
        assert_eq!(at("-30s", 1000), 970);
        assert_eq!(at("2d", 0), 172_800);
        assert_eq!(at("0s", 5), 5);
        assert_eq!(parse("15m").unwrap().offset(), Some(900));
    }

    #[test]
    fn a_bare_integer_is_a_numeric_date() {
        assert_eq!(at("1716163200", 1), 1_716_163_200);
        assert_eq!(at("4000000000", 1_700_000_000), 4_000_000_000);
        assert_eq!(at("0", 99), 0);
        assert!(parse("4000000000").unwrap().is_numeric_date());
        assert!(!parse("15m").unwrap().is_numeric_date());
        assert!(!parse("2026-12-01T00:00:00Z").unwrap().is_numeric_date());
        let err = parse("-30").unwrap_err();
        assert!(err.contains("-30s"), "{err}");
        let err = parse("+30").unwrap_err();
        assert!(err.contains("+30s"), "{err}");
        let err = parse("253402300800").unwrap_err();
        assert!(err.contains("9999"), "{err}");
        let err = parse("99999999999999999999999").unwrap_err();
        assert!(err.contains("NumericDate"), "{err}");
    }

    #[test]
    fn rfc3339_with_zone_and_offset() {
        assert_eq!(at("2026-12-01T00:00:00Z", 0), 1_796_083_200);
        assert_eq!(at("2026-12-01T02:00:00+02:00", 0), 1_796_083_200);
        assert_eq!(at("2026-11-30T19:30:00-04:30", 0), 1_796_083_200);
        assert_eq!(at("2026-12-01t00:00:00z", 0), 1_796_083_200);
        assert_eq!(at("2026-12-01 00:00:00Z", 0), 1_796_083_200);
        // Fractions are dropped, not rounded up.
        assert_eq!(at("2026-12-01T00:00:00.999Z", 0), 1_796_083_200);
        assert_eq!(at("1970-01-01T00:00:00Z", 0), 0);
        assert_eq!(at("9999-12-31T23:59:59Z", 0), LATEST);
        assert_eq!(at("2024-02-29T00:00:00Z", 0), 1_709_164_800);
    }

    #[test]
    fn bad_rfc3339_says_why() {
        for (bad, why) in [
            ("2026-12-01T00:00:00", "time zone is missing"),
            ("2026-12-01", "too short"),
            ("2026-13-01T00:00:00Z", "month"),
            ("2025-02-29T00:00:00Z", "no such day"),
            ("2026-12-01T24:00:00Z", "time of day"),
            ("2026-12-01T23:59:60Z", "leap seconds"),
            ("2026-12-01T00:00:00+24:00", "offset is out of range"),
            ("2026-12-01T00:00:00+0200", "Z or ±HH:MM"),
            ("2026-12-01T00:00:00.Z", "fraction"),
            ("2026-12-01X00:00:00Z", "separated by `T`"),
            ("1969-12-31T23:59:59Z", "before 1970"),
            ("2026-12-01T00:00:00+é", "Z or ±HH:MM"),
        ] {
            let err = parse(bad).expect_err(bad);
            assert!(err.contains(why), "{bad}: {err}");
            assert!(err.contains("2026-12-01T00:00:00Z"), "{bad}: {err}");
        }
    }

    #[test]
    fn other_input_lists_every_form() {
        for bad in [
            "", "soon", "15", "1.5h", "15x", "--exp", "1w", "é", "-", "+", "1e9",
        ] {
            match parse(bad) {
                Ok(t) if bad == "15" => assert!(t.is_numeric_date()),
                Ok(t) => panic!("{bad}: accepted as {t:?}"),
                Err(err) => assert!(
                    err.contains("15m") || err.contains("unit must be"),
                    "{bad}: {err}"
                ),
            }
        }
        let err = parse("99999999999d").unwrap_err();
        assert!(err.contains("too long"), "{err}");
    }

    #[test]
    fn exp_refuses_negative_offsets_only() {
        let err = parse_exp("-30s").unwrap_err();
        assert!(err.contains("expired when signed"), "{err}");
        assert_eq!(parse_exp("+30s").unwrap().offset(), Some(30));
        assert!(parse_exp("1716163200").is_ok());
    }

    #[test]
    fn now_is_a_unix_time_or_rfc3339() {
        assert_eq!(parse_now("1716163200"), Ok(1_716_163_200));
        assert_eq!(parse_now("-5"), Ok(-5));
        assert_eq!(parse_now(&i64::MIN.to_string()), Ok(i64::MIN));
        assert_eq!(parse_now("2026-12-01T00:00:00Z"), Ok(1_796_083_200));
        assert_eq!(parse_now("2026-12-01T02:00:00+02:00"), Ok(1_796_083_200));
        for (bad, why) in [
            ("soon", "invalid time"),
            ("", "invalid time"),
            ("15m", "an offset"),
            ("99999999999999999999", "64-bit range"),
            ("2026-12-01T00:00:00", "time zone is missing"),
        ] {
            let err = parse_now(bad).expect_err(bad);
            assert!(err.contains(why), "{bad}: {err}");
            assert!(err.contains("2026-12-01T00:00:00Z"), "{bad}: {err}");
        }
    }

    #[test]
    fn resolve_refuses_overflow() {
        let t = parse("36500d").unwrap();
        let err = t.resolve(i64::MAX).unwrap_err();
        assert!(err.contains("outside"), "{err}");
    }
}
