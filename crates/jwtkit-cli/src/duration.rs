//! Durations on the command line: `10s`, `15m`, `1h`, `30d`, or a bare
//! number of seconds; and, in [`claim_time`], the times `jwtkit sign` puts
//! in `exp`, `nbf` and `iat` (where a bare number is a Unix time instead).

use std::time::Duration;

pub(crate) mod claim_time;

const ACCEPTED: &str = "use a whole number followed by s, m, h or d (e.g. 10s, 15m, 1h, 30d); \
                        a bare number means seconds";

/// The longest duration any option accepts (100 years). Every duration is
/// added to a Unix time somewhere; below this bound no sum can overflow, and
/// each option has its own, smaller maximum on top.
pub(crate) const MAX: Duration = Duration::from_secs(36_500 * 86_400);

/// Parses a duration argument (a clap `value_parser`).
pub(crate) fn parse(input: &str) -> Result<Duration, String> {
    let invalid = || format!("invalid duration {input:?}: {ACCEPTED}");
    let (digits, unit) = match input.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&input[..i], c),
        Some(_) => (input, 's'),
        None => return Err(invalid()),
    };
    // `u64::from_str` accepts a leading `+`; only plain digits are a duration here.
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    let multiplier: u64 = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        _ => return Err(invalid()),
    };
    let too_long = || {
        format!(
            "duration {input:?} is too long: no option accepts more than {} (100 years); \
             {ACCEPTED}",
            display(MAX)
        )
    };
    let count: u64 = digits.parse().map_err(|_| too_long())?;
    let secs = count.checked_mul(multiplier).ok_or_else(too_long)?;
    if secs > MAX.as_secs() {
        return Err(too_long());
    }
    Ok(Duration::from_secs(secs))
}

/// Writes `d` the way [`parse`] reads it, in the largest unit that divides it
/// (`365d`, `90m`, `45s`); sub-second parts are dropped.
pub(crate) fn display(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0 => "0s".to_owned(),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// An elapsed time for people, in at most two adjacent units, rounded down:
/// `1d 2h`, `45m`, `3m 20s`, `0s` (never `1d 30s`).
pub(crate) fn human(secs: u64) -> String {
    let units = [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)];
    let mut parts = Vec::new();
    let mut rest = secs;
    for (unit, size) in units {
        if rest >= size && parts.len() < 2 {
            parts.push(format!("{}{unit}", rest / size));
            rest %= size;
        } else if !parts.is_empty() {
            // Two units side by side (`1d 2h`), never `1d 30s`.
            break;
        }
    }
    if parts.is_empty() {
        "0s".to_owned()
    } else {
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_uses_two_adjacent_units_at_most() {
        assert_eq!(human(0), "0s");
        assert_eq!(human(45 * 60), "45m");
        assert_eq!(human(200), "3m 20s");
        assert_eq!(human(86_400 + 7_200 + 5), "1d 2h");
        assert_eq!(human(86_400 + 30), "1d");
        assert_eq!(human(u64::MAX), "213503982334601d 7h");
    }

    #[test]
    fn accepted_forms() {
        assert_eq!(parse("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3_600)));
        assert_eq!(parse("30d"), Ok(Duration::from_secs(2_592_000)));
        assert_eq!(parse("42"), Ok(Duration::from_secs(42)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn refused_forms_name_the_accepted_ones() {
        for bad in [
            "",
            "s",
            "1.5h",
            "-1s",
            "+5",
            "1w",
            "10 s",
            " 10s",
            "1hh",
            "1H",
            "é",
            "1é",
            "99999999999999999999",
            "999999999999999999d",
        ] {
            let err = parse(bad).expect_err(bad);
            assert!(err.contains("15m"), "{bad}: {err}");
        }
    }

    /// Issue 11 item 5: `106751991167300d` fits in an i64 of seconds but
    /// overflows as soon as it is added to the current Unix time.
    #[test]
    fn values_that_overflow_a_unix_time_are_refused_with_the_limit() {
        for bad in [
            "106751991167300d",
            "9223372036854775807",
            "36501d",
            "876025h",
        ] {
            let err = parse(bad).expect_err(bad);
            assert!(
                err.contains("too long") && err.contains("36500d"),
                "{bad}: {err}"
            );
        }
        assert_eq!(parse("36500d"), Ok(MAX));
        // The largest accepted value, added to any Unix time up to the year
        // 292 billion, still fits in an i64.
        let max = i64::try_from(MAX.as_secs()).unwrap();
        assert!(max.checked_add(i64::MAX / 2).is_some());
    }

    #[test]
    fn display_uses_the_largest_exact_unit() {
        assert_eq!(display(Duration::from_secs(365 * 86_400)), "365d");
        assert_eq!(display(Duration::from_secs(7_200)), "2h");
        assert_eq!(display(Duration::from_secs(90)), "90s");
        assert_eq!(display(Duration::from_secs(120)), "2m");
        assert_eq!(display(Duration::ZERO), "0s");
    }
}
