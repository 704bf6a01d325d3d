//! Durations on the command line: `10s`, `15m`, `1h`, `30d`, or a bare
//! number of seconds.

use std::time::Duration;

const ACCEPTED: &str = "use a whole number followed by s, m, h or d (e.g. 10s, 15m, 1h, 30d); \
                        a bare number means seconds";

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
    let too_long = || format!("duration {input:?} is too long; {ACCEPTED}");
    let count: u64 = digits.parse().map_err(|_| too_long())?;
    let secs = count.checked_mul(multiplier).ok_or_else(too_long)?;
    // Every duration is added to a Unix time (an i64) somewhere.
    if i64::try_from(secs).is_err() {
        return Err(too_long());
    }
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
