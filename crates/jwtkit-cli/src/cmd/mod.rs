//! One module per subcommand, plus what several of them share: reading the
//! token argument and rendering a header and claims for people.

use std::fmt::Write as _;
use std::io::Read;

use jwt_core::{Algorithm, Header};
use serde_json::{Map, Value};

use crate::error::CliError;

pub(crate) mod inspect;
pub(crate) mod keys;
pub(crate) mod serve;
pub(crate) mod sign;
pub(crate) mod speed;
pub(crate) mod store;
pub(crate) mod verify;

/// Slack for whitespace around a token read from stdin.
const STDIN_SLACK: usize = 4096;

/// The token from the command line, or from stdin when the argument is `-`
/// (surrounding whitespace trimmed). `max_size` bounds how much of stdin is read.
pub(crate) fn read_token(arg: &str, max_size: usize) -> Result<String, CliError> {
    if arg != "-" {
        return Ok(arg.to_owned());
    }
    let limit = max_size.saturating_add(STDIN_SLACK);
    let mut bytes = Vec::new();
    std::io::stdin()
        .lock()
        .take(u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| CliError::io(format!("cannot read the token from stdin: {e}")))?;
    if bytes.len() > limit {
        return Err(CliError::rejected(
            "too_large",
            format!(
                "too large: stdin holds more than {limit} bytes, over the token size limit of {max_size}; \
                 raise --max-size only if your tokens really are this big"
            ),
        ));
    }
    let text = String::from_utf8(bytes).map_err(|_| {
        CliError::rejected(
            "malformed",
            "malformed token: stdin is not UTF-8 text; a JWT is three base64url parts \
             (header.payload.signature)",
        )
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(CliError::rejected(
            "malformed",
            "malformed token: stdin is empty; pipe the token in, or pass it as an argument",
        ));
    }
    Ok(token.to_owned())
}

/// Parses `--alg` values (case-sensitive JOSE names; `none` is refused).
pub(crate) fn parse_algorithm(name: &str) -> Result<Algorithm, CliError> {
    name.parse::<Algorithm>()
        .map_err(|e| CliError::usage(format!("--alg {name}: {e}")))
}

/// The header and claims as an indented, human-readable report, with the
/// NumericDate claims also shown as RFC 3339 times.
pub(crate) fn render_token(header: &Header, claims: &Map<String, Value>) -> String {
    let mut out = String::from("header:\n");
    let _ = writeln!(out, "  alg: {}", header.alg);
    for (name, value) in [
        ("kid", &header.kid),
        ("typ", &header.typ),
        ("cty", &header.cty),
    ] {
        if let Some(value) = value {
            let _ = writeln!(out, "  {name}: {value}");
        }
    }
    for (name, value) in &header.extra {
        let _ = writeln!(out, "  {name}: {value}");
    }
    out.push_str("claims:\n");
    let pretty = serde_json::to_string_pretty(claims).unwrap_or_else(|_| "{}".into());
    for line in pretty.lines() {
        let _ = writeln!(out, "  {line}");
    }
    let times: Vec<_> = ["iat", "nbf", "exp"]
        .iter()
        .filter_map(|&name| claims.get(name).map(|v| (name, v)))
        .collect();
    if !times.is_empty() {
        out.push_str("times:\n");
        for (name, value) in times {
            let _ = writeln!(out, "  {name}: {}", describe_time(value));
        }
    }
    out
}

/// A NumericDate as RFC 3339 (UTC), or why it is not one.
fn describe_time(value: &Value) -> String {
    let Some(secs) = value.as_f64() else {
        return format!("{value} (not a number)");
    };
    if !secs.is_finite() || secs.abs() >= 1e15 {
        return format!("{value} (out of range)");
    }
    // `as` is exact here: the value is finite and well within i64.
    let whole = secs.floor() as i64;
    match time::OffsetDateTime::from_unix_timestamp(whole)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        }) {
        Some(rfc3339) => rfc3339,
        None => format!("{value} (out of range)"),
    }
}

/// Unix seconds as RFC 3339 (UTC), or the number itself when out of range.
pub(crate) fn format_time(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| secs.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(
            describe_time(&Value::from(1_700_000_000)),
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(describe_time(&Value::from(0.5)), "1970-01-01T00:00:00Z");
        assert_eq!(describe_time(&Value::from(1e300)), "1e+300 (out of range)");
        assert_eq!(describe_time(&Value::from("x")), "\"x\" (not a number)");
    }
}
