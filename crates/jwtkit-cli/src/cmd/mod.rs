//! One module per subcommand, plus what several of them share: reading the
//! token argument and rendering a header and claims for people.

use std::fmt::Write as _;
use std::io::Read;

use jwt_core::{Algorithm, Header};
use serde_json::{Map, Value};

use crate::error::CliError;

pub(crate) mod discover;
pub(crate) mod dpop;
pub(crate) mod inspect;
pub(crate) mod keys;
pub(crate) mod refresh_key;
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

/// The items of a repeatable flag that also splits at commas (clap's
/// `value_delimiter`): each trimmed, so `--require "exp, sub"` means `sub`
/// and not ` sub`. An empty item (`--alg ES256,`, `a,,b`) is a usage error
/// naming the flag, never an item called "". `example` shows the right form.
pub(crate) fn list_items<'a>(
    flag: &str,
    values: &'a [String],
    example: &str,
) -> Result<Vec<&'a str>, CliError> {
    values
        .iter()
        .map(|value| {
            let item = value.trim();
            if item.is_empty() {
                Err(CliError::usage(format!(
                    "{flag}: an empty item (a comma with nothing after it, two commas in a row, \
                     or an empty value); separate the items with commas, e.g. {flag} {example}"
                )))
            } else {
                Ok(item)
            }
        })
        .collect()
}

/// Parses a comma-separated, repeatable algorithm flag (`--alg RS256,PS256`,
/// `--allowed-alg`), by the rules of [`list_items`] and [`parse_algorithm`].
pub(crate) fn parse_algorithms(flag: &str, values: &[String]) -> Result<Vec<Algorithm>, CliError> {
    list_items(flag, values, "RS256,PS256")?
        .into_iter()
        .map(|name| {
            name.parse::<Algorithm>()
                .map_err(|e| CliError::usage(format!("{flag} {name}: {e}")))
        })
        .collect()
}

/// The header and claims as an indented, human-readable report, with the
/// NumericDate claims also shown as RFC 3339 times and, relative to `now`,
/// how long ago or how far ahead they are.
pub(crate) fn render_token(header: &Header, claims: &Map<String, Value>, now: i64) -> String {
    let mut out = String::from("header:\n");
    let _ = writeln!(out, "  alg: {}", header.alg);
    for (name, value) in [
        ("kid", header.kid.as_deref()),
        ("typ", header.typ.as_deref()),
        ("cty", header.cty.as_deref()),
    ] {
        if let Some(value) = value {
            let _ = writeln!(out, "  {name}: {value}");
        }
    }
    for (name, value) in &header.extra {
        let _ = writeln!(out, "  {name}: {value}");
    }
    render_claims(&mut out, claims, now);
    out
}

/// Appends the claims, pretty-printed, and the NumericDate claims as
/// RFC 3339 times, each with where it stands relative to `now`.
pub(crate) fn render_claims(out: &mut String, claims: &Map<String, Value>, now: i64) {
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
            let _ = write!(out, "  {name}: {}", describe_time(value));
            if let Some(relative) = seconds(value).map(|t| relative_time(name, t, now)) {
                let _ = write!(out, " ({relative})");
            }
            out.push('\n');
        }
    }
}

/// A NumericDate claim's value in seconds, when it is a usable number.
fn seconds(value: &Value) -> Option<f64> {
    value
        .as_f64()
        .filter(|secs| secs.is_finite() && secs.abs() < 1e15)
}

/// Whole seconds from `earlier` to `later` (0 when not later).
fn span(earlier: f64, later: f64) -> String {
    // `as` saturates; the values are bounded by 1e15 anyway.
    crate::duration::human((later - earlier).max(0.0).floor() as u64)
}

/// Where the time claim `name` (at `t`) stands at `now`, by the
/// verifier's rules at leeway 0: `exp` has passed when `now >= exp`; `nbf`
/// and `iat` are in the future when their whole second is after `now`.
fn relative_time(name: &str, t: f64, now: i64) -> String {
    let now_f = now as f64;
    match name {
        "exp" if now_f >= t => format!("expired {} ago", span(t, now_f)),
        "exp" => format!("valid for another {}", span(now_f, t)),
        "nbf" if t.floor() > now_f => format!("not valid yet: in {}", span(now_f, t)),
        "iat" if t.floor() > now_f => format!("in the future: in {}", span(now_f, t)),
        _ => format!("{} ago", span(t, now_f)),
    }
}

/// Why verification at `now` (leeway 0) refuses the token's times: an
/// `exp` that has passed, an `nbf` or an `iat` in the future. For
/// `inspect`, which checks nothing but says what `verify` would object to.
pub(crate) fn time_warnings(claims: &Map<String, Value>, now: i64) -> Vec<String> {
    let now_f = now as f64;
    let at = |name: &str| claims.get(name).and_then(seconds);
    let mut warnings = Vec::new();
    if let Some(exp) = at("exp").filter(|&exp| now_f >= exp) {
        warnings.push(format!(
            "the token expired {} ago (exp {}); verification refuses it (`expired`)",
            span(exp, now_f),
            describe_time(&Value::from(exp))
        ));
    }
    if let Some(nbf) = at("nbf").filter(|nbf| nbf.floor() > now_f) {
        warnings.push(format!(
            "the token is not valid before {} (nbf, in {}); verification refuses it until then \
             (`immature`)",
            describe_time(&Value::from(nbf)),
            span(now_f, nbf)
        ));
    }
    if let Some(iat) = at("iat").filter(|iat| iat.floor() > now_f) {
        warnings.push(format!(
            "the token's iat {} is in the future (in {}): it says it was issued later than now; \
             verification refuses it until then (`immature`); check the issuer's clock",
            describe_time(&Value::from(iat)),
            span(now_f, iat)
        ));
    }
    warnings
}

/// What is wrong with a pasted token that does not decode, when it is one
/// of the usual copy-and-paste slips: an `Authorization` header's `Bearer `
/// prefix, surrounding quotes, whitespace inside. Only a hint: the token is
/// never changed (a verifier must see exactly the token it was given).
pub(crate) fn paste_hint(token: &str) -> Option<&'static str> {
    let trimmed = token.trim_start();
    let lower = trimmed.get(..14).unwrap_or(trimmed).to_ascii_lowercase();
    if lower.starts_with("authorization:") {
        return Some(
            "the token starts with an `Authorization:` header name; pass only the token \
             itself, without `Authorization: Bearer `",
        );
    }
    if lower.starts_with("bearer") && trimmed[6..].starts_with(char::is_whitespace) {
        return Some(
            "the token starts with `Bearer `: remove the `Bearer ` prefix and pass only the \
             token that follows it",
        );
    }
    let quoted = token.contains(['"', '\'', '`']);
    let spaced = token.contains(char::is_whitespace);
    match (quoted, spaced) {
        (true, true) => Some(
            "the token contains whitespace and quotes; pass only the token's characters \
             (base64url and two dots), without quotes, spaces or line breaks",
        ),
        (true, false) => {
            Some("the token contains quotes (copied from JSON or code?); pass it without them")
        }
        (false, true) => Some(
            "the token contains whitespace (a line break or space from copying?); pass it \
             as one unbroken line",
        ),
        (false, false) => None,
    }
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

    #[test]
    fn times_are_placed_relative_to_now() {
        assert_eq!(relative_time("exp", 1000.0, 3700), "expired 45m ago");
        assert_eq!(relative_time("exp", 1000.0, 1000), "expired 0s ago");
        assert_eq!(relative_time("exp", 1840.0, 1000), "valid for another 14m");
        assert_eq!(relative_time("nbf", 1060.0, 1000), "not valid yet: in 1m");
        assert_eq!(relative_time("nbf", 1000.5, 1000), "0s ago");
        assert_eq!(relative_time("iat", 1300.0, 1000), "in the future: in 5m");
        assert_eq!(relative_time("iat", 400.0, 1000), "10m ago");
    }

    #[test]
    fn time_warnings_follow_the_verifier_at_leeway_0() {
        let claims = |v: Value| v.as_object().unwrap().clone();
        let now = 1_700_000_000;
        assert!(time_warnings(
            &claims(serde_json::json!({"exp": now + 1, "nbf": now, "iat": now as f64 + 0.9})),
            now
        )
        .is_empty());
        let warnings = time_warnings(
            &claims(serde_json::json!({"exp": now, "nbf": now + 60, "iat": now + 120})),
            now,
        );
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert!(
            warnings[0].starts_with("the token expired 0s ago"),
            "{warnings:?}"
        );
        assert!(warnings[1].contains("(nbf, in 1m)"), "{warnings:?}");
        assert!(warnings[2].contains("iat 2023-11-14T22:15:20Z is in the future (in 2m)"));
        // Not numbers: left to `jwtkit verify`, which names the type.
        assert!(time_warnings(&claims(serde_json::json!({"exp": "soon"})), now).is_empty());
    }

    #[test]
    fn paste_slips_are_named() {
        let t = "eyJh.eyJz.c2ln";
        assert_eq!(paste_hint(t), None);
        assert!(paste_hint(&format!("Bearer {t}"))
            .unwrap()
            .contains("`Bearer `"));
        assert!(paste_hint(&format!("bearer\t{t}"))
            .unwrap()
            .contains("`Bearer `"));
        assert!(paste_hint(&format!("Authorization: Bearer {t}"))
            .unwrap()
            .contains("Authorization"));
        assert!(paste_hint(&format!("\"{t}\"")).unwrap().contains("quotes"));
        assert!(paste_hint(&format!("{t}\n"))
            .unwrap()
            .contains("whitespace"));
        assert!(paste_hint(&format!("' {t}'"))
            .unwrap()
            .contains("whitespace and quotes"));
        // `Bearer` glued to the token is not the prefix; a short token is fine.
        assert_eq!(paste_hint("Bearerx.y.z"), None);
        assert_eq!(paste_hint("é"), None);
    }
}
