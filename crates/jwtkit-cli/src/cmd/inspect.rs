//! `jwtkit inspect`: decode a token **without verifying anything**.
//!
//! It is a debugging tool, so it shows whatever it can decode: a token the
//! verifier takes apart as usual is shown as the verifier reads it, with
//! where its `exp`, `nbf` and `iat` stand at `--now`; any
//! other (an unsigned `alg: none` token, a signature part that is not
//! base64url, a payload that is not an object, duplicate members…) is
//! decoded part by part and shown with the reason verification refuses it.
//! It exits 0 when the header and the payload decode (base64url, then
//! JSON), and 1 naming the part that does not.
//!
//! Everything shown came from the token: `write_stdout` escapes control
//! characters, and the text report escapes header values whole.

use std::fmt::Write as _;

use jwt_core::{b64, dangerous, Header, DEFAULT_MAX_TOKEN_SIZE};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::CliError;
use crate::output::{escape, Keep};

/// Arguments of `jwtkit inspect`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit codes: 0 the header and the payload decode (whether or not the token \
                  would verify: an unsigned, damaged, expired or not yet valid token is shown \
                  with the reason verification refuses it); 1 the header or the payload does \
                  not decode (the message names the part, and a pasted `Bearer ` prefix, quotes \
                  or whitespace); 2 usage error."
)]
pub(crate) struct InspectArgs {
    /// Print one JSON object: `{"header":…,"claims":…}`, plus `"warnings":[…]`
    /// for a token verification would refuse (unsigned, damaged, expired,
    /// not yet valid); on failure `{"error":KIND,"message":…}` with whatever
    /// part did decode.
    #[arg(long)]
    pub(crate) json: bool,
    /// The time `exp`, `nbf` and `iat` are compared with (the warnings and
    /// the `times:` section): Unix seconds or RFC 3339
    /// (2026-12-01T00:00:00Z); default: the system clock.
    #[arg(
        long,
        value_name = "TIME",
        value_parser = crate::duration::claim_time::parse_now,
        allow_negative_numbers = true
    )]
    now: Option<i64>,
    /// The token, or `-` to read it from stdin.
    #[arg(value_name = "TOKEN")]
    token: String,
}

#[derive(Serialize)]
struct Decoded<'a> {
    header: &'a Header,
    claims: &'a Map<String, Value>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    warnings: &'a [String],
}

/// What the part-by-part decoding found, for `--json`.
#[derive(Serialize)]
struct Partial<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    header: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    claims: Option<&'a Value>,
    warnings: &'a [String],
}

/// Runs `jwtkit inspect`.
pub(crate) fn run(args: &InspectArgs) -> Result<(), CliError> {
    let token = super::read_token(&args.token, DEFAULT_MAX_TOKEN_SIZE)?;
    crate::diag(format_args!(
        "warning: nothing was verified — not the signature, not the claims; \
         do not trust this content (use `jwtkit verify` for that)"
    ));
    let now = args.now.unwrap_or_else(jwt_core::time::now_unix);
    match dangerous::insecure_decode(&token) {
        Ok(decoded) => show_decoded(args, &decoded.header, &decoded.claims, now),
        Err(refusal) => show_parts(args, &token, &refusal, now),
    }
}

/// A token whose parts the verifier reads: shown as it reads them.
fn show_decoded(
    args: &InspectArgs,
    header: &Header,
    claims: &Map<String, Value>,
    now: i64,
) -> Result<(), CliError> {
    let warnings = super::time_warnings(claims, now);
    let out = if args.json {
        crate::to_json_line(&Decoded {
            header,
            claims,
            warnings: &warnings,
        })?
    } else {
        for warning in &warnings {
            crate::diag(format_args!("warning: {warning}"));
        }
        // Header values escaped whole: a `kid` must not start a line of its own.
        let header = crate::output::header_for_display(header);
        super::render_token(&header, claims, now)
    };
    crate::write_stdout(out.as_bytes())
}

/// A token the verifier refuses before reading it whole (`refusal` says
/// why): each part is decoded on its own, shown when it decodes, and the
/// first part that does not is the error. The warnings give the verifier's
/// objection, then what else is wrong that it did not get to.
fn show_parts(
    args: &InspectArgs,
    token: &str,
    refusal: &jwt_core::Error,
    now: i64,
) -> Result<(), CliError> {
    let refused = reason(refusal);
    let mut warnings = vec![format!("verification refuses this token: {refused}")];
    // A pasted `Bearer …`, quotes, a line break: say so first. The token is
    // shown as given, never cleaned up.
    let hint = super::paste_hint(token);
    warnings.extend(hint.map(str::to_owned));
    let view = View { args, hint, now };
    let parts: Vec<&str> = token.split('.').collect();
    let (header, payload) = match parts.as_slice() {
        [header, payload, signature] => {
            if signature.is_empty() {
                warnings.push("the signature part is empty: the token is unsigned".to_owned());
            } else if let Err(e) = b64::decode(signature.as_bytes(), "the signature") {
                if !refused.contains("the signature") {
                    warnings.push(format!(
                        "the signature part does not decode: {}",
                        reason(&e)
                    ));
                }
            }
            (decode_part(header, "header", &mut warnings), *payload)
        }
        [header, payload] => (decode_part(header, "header", &mut warnings), *payload),
        [header, _, _, _, _] => {
            // A JWE: only its protected header is readable without the key.
            let header = decode_part(header, "header", &mut warnings);
            let failure = "the token has 5 parts: it is an encrypted JWT (JWE), whose payload \
                           cannot be read without its decryption key; jwtkit handles signed \
                           tokens (JWS, 3 parts) only"
                .to_owned();
            return finish(&view, header.ok().as_ref(), None, Err(failure), &warnings);
        }
        [_] => {
            let failure = "the text has no `.`: a JWT is three base64url parts \
                           (header.payload.signature)"
                .to_owned();
            return finish(&view, None, None, Err(failure), &warnings);
        }
        more => {
            let failure = format!(
                "the token has {} parts; a signed JWT (JWS) has 3 (header.payload.signature), \
                 an encrypted one (JWE) 5",
                more.len()
            );
            return finish(&view, None, None, Err(failure), &warnings);
        }
    };
    let header = match header {
        Ok(header) => header,
        Err(failure) => return finish(&view, None, None, Err(failure), &warnings),
    };
    match decode_part(payload, "payload", &mut warnings) {
        Ok(claims) => {
            // What the verifier's parser refuses in a payload that decodes
            // (duplicate member names, nesting too deep), unless that is
            // already its objection.
            if claims.is_object() && !refused.starts_with("the payload") {
                if let Some(note) = strict_payload_note(payload) {
                    warnings.push(note);
                }
            }
            finish(&view, Some(&header), Some(&claims), Ok(()), &warnings)
        }
        Err(failure) => finish(&view, Some(&header), None, Err(failure), &warnings),
    }
}

/// Decodes a header or payload part: base64url, then JSON. A value that is
/// not an object is still shown, with a warning.
fn decode_part(part: &str, name: &str, warnings: &mut Vec<String>) -> Result<Value, String> {
    let bytes = b64::decode(part.as_bytes(), &format!("the {name}"))
        .map_err(|e| format!("the {name} does not decode: {}", reason(&e)))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(value) => {
            if !value.is_object() {
                warnings.push(format!(
                    "the {name} is JSON but not an object (it is {}); a JWT's {name} must be \
                     an object",
                    json_type(&value)
                ));
            }
            Ok(value)
        }
        Err(e) => {
            let mut failure = format!("the {name} is not JSON: {e}");
            match std::str::from_utf8(&bytes) {
                Ok(text) => {
                    let start: String = text.chars().take(40).collect();
                    let _ = write!(failure, " (it starts {start:?})");
                }
                Err(_) => failure.push_str(" (it is not UTF-8 text)"),
            }
            Err(failure)
        }
    }
}

/// Why the verifier's strict JSON parser refuses a payload that plain JSON
/// reads (duplicate member names, which a lenient reader resolves silently
/// and differently from one library to the next; nesting too deep). The
/// types of registered claims are left to `jwtkit verify`, as for a token
/// that decodes.
fn strict_payload_note(payload: &str) -> Option<String> {
    let bytes = b64::decode(payload.as_bytes(), "the payload").ok()?;
    match jwt_core::parse_claims(&bytes) {
        Err(jwt_core::Error::Config { reason }) if reason.starts_with("the claims set") => {
            Some(format!(
                "the payload would be refused: {}",
                reason.replacen("the claims set", "it", 1)
            ))
        }
        _ => None,
    }
}

/// A decoding error's own words, without the general advice a malformed
/// token's message adds.
fn reason(err: &jwt_core::Error) -> String {
    match err {
        jwt_core::Error::Malformed { reason } => reason.clone(),
        other => other.to_string(),
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Prints what decoded and the warnings, then reports `outcome`: exit 0
/// when header and payload decoded, 1 (`malformed`) naming the part that
/// did not.
/// How to show a token that is decoded part by part.
struct View<'a> {
    args: &'a InspectArgs,
    /// What looks pasted wrong (`Bearer `, quotes, whitespace), if anything.
    hint: Option<&'static str>,
    /// The time the claims' times are compared with.
    now: i64,
}

fn finish(
    view: &View<'_>,
    header: Option<&Value>,
    claims: Option<&Value>,
    outcome: Result<(), String>,
    warnings: &[String],
) -> Result<(), CliError> {
    let args = view.args;
    let failure = outcome.err().map(|reason| {
        let hint = view.hint.map(|h| format!("; {h}")).unwrap_or_default();
        CliError::rejected("malformed", format!("cannot inspect: {reason}{hint}"))
    });
    let mut warnings = warnings.to_vec();
    if failure.is_some() {
        // The error's message ends with the hint: once is enough.
        warnings.retain(|w| Some(w.as_str()) != view.hint);
    }
    if let Some(Value::Object(claims)) = claims {
        warnings.extend(super::time_warnings(claims, view.now));
    }
    let warnings = warnings.as_slice();
    let out = if args.json {
        crate::to_json_line(&Partial {
            error: failure.as_ref().map(CliError::kind),
            message: failure.as_ref().map(CliError::message),
            header,
            claims,
            warnings,
        })?
    } else {
        for warning in warnings {
            crate::diag(format_args!("warning: {warning}"));
        }
        render_parts(header, claims, view.now)
    };
    if !out.is_empty() {
        crate::write_stdout(out.as_bytes())?;
    }
    match failure {
        // With --json the document above holds the error.
        Some(err) if args.json => Err(err.reported()),
        Some(err) => Err(err),
        None => Ok(()),
    }
}

/// The text report of the parts that decoded.
fn render_parts(header: Option<&Value>, claims: Option<&Value>, now: i64) -> String {
    let mut out = String::new();
    if let Some(header) = header {
        out.push_str("header:\n");
        match header {
            Value::Object(members) => {
                for (name, value) in members {
                    // Names and string values escaped whole: none may start a line.
                    let shown = match value {
                        Value::String(s) => escape(s, Keep::Nothing).into_owned(),
                        other => other.to_string(),
                    };
                    let _ = writeln!(out, "  {}: {shown}", escape(name, Keep::Nothing));
                }
            }
            other => indent_json(&mut out, other),
        }
    }
    match claims {
        Some(Value::Object(claims)) => super::render_claims(&mut out, claims, now),
        Some(other) => {
            out.push_str("payload:\n");
            indent_json(&mut out, other);
        }
        None => {}
    }
    out
}

/// `value` as pretty JSON, indented by two spaces.
fn indent_json(out: &mut String, value: &Value) {
    let pretty = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    for line in pretty.lines() {
        let _ = writeln!(out, "  {line}");
    }
}
