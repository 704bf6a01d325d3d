//! What reaches the terminal: text that came from outside (a token's header
//! and claims, a JWKS, an HTTP answer, a file name) can hold control
//! characters that a terminal executes: ANSI escapes that recolour or
//! rewrite lines ("valid"), C1 controls (U+009B is a one-character CSI),
//! and bidirectional overrides that reorder what is shown (CVE-2021-42574).
//!
//! Invisible characters are escaped too: zero-width spaces and joiners,
//! the word joiner, a byte-order mark, soft hyphens, variation selectors,
//! tag characters — every Unicode default-ignorable code point, which a
//! terminal draws as nothing. Left as they are, `kid-1` and `kid-1` followed
//! by U+200B look identical while being different keys.
//!
//! Every byte the command prints goes through [`escape`] at the output
//! boundary (`write_stdout`, `diag`, the error printer), so no code path
//! can forget it. The escape is `\uXXXX` (a UTF-16 surrogate pair for a
//! character beyond the Basic Multilingual Plane), which is also a JSON
//! escape for the same character: a JSON document stays valid and decodes
//! to exactly the original values (serde_json already escapes C0; the
//! boundary adds DEL, C1, the bidi controls and the invisible characters).
//! The price is that text which uses joiners on purpose (emoji sequences,
//! Persian's zero-width non-joiner) is shown with them escaped. A backslash
//! is left as it is, so escaping twice changes nothing.

use std::borrow::Cow;
use std::fmt::Write as _;

use jwt_core::Header;
use serde_json::Map;

/// Which line-layout characters pass through unescaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keep {
    /// `\n` and `\t` pass: a multi-line document the command laid out.
    Layout,
    /// Nothing passes: one value that must not be able to start a line of
    /// its own.
    Nothing,
    /// A diagnostic or error: `\n` and `\t` pass so that multi-line
    /// explanations (a TOML parse error with its caret line) stay readable,
    /// but every line after the first is indented, so no text inside the
    /// message can pose as a line of its own (`valid: …`).
    Indented,
}

/// Whether a terminal could act on `c` rather than show it, or would show
/// nothing for it.
fn is_dangerous(c: char) -> bool {
    matches!(c,
        // C0 controls, DEL, C1 controls.
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        // Bidirectional embeddings, overrides and isolates, and the marks.
        | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        | '\u{200e}' | '\u{200f}' | '\u{61c}'
        // Line and paragraph separators.
        | '\u{2028}' | '\u{2029}'
        // Interlinear annotation controls: hide the text between them.
        | '\u{fff9}'..='\u{fffb}'
    ) || is_invisible(c)
}

/// Unicode's default-ignorable code points (DerivedCoreProperties.txt):
/// characters a terminal draws as nothing, so two strings that differ only
/// by them look the same. Zero-width space, non-joiner and joiner (U+200B..D),
/// word joiner and invisible operators (U+2060..), byte-order mark (U+FEFF),
/// soft hyphen, variation selectors, Hangul fillers, tags (U+E0000..).
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{ad}' | '\u{34f}' | '\u{115f}' | '\u{1160}' | '\u{17b4}' | '\u{17b5}'
        | '\u{180b}'..='\u{180f}'
        | '\u{200b}'..='\u{200d}'
        | '\u{2060}'..='\u{206f}'
        | '\u{3164}'
        | '\u{fe00}'..='\u{fe0f}'
        | '\u{feff}'
        | '\u{ffa0}'
        | '\u{fff0}'..='\u{fff8}'
        | '\u{1bca0}'..='\u{1bca3}'
        | '\u{1d173}'..='\u{1d17a}'
        | '\u{e0000}'..='\u{e0fff}'
    )
}

/// Appends `c` as JSON's `\uXXXX`, a surrogate pair beyond the BMP.
fn push_escaped(out: &mut String, c: char) {
    let mut units = [0u16; 2];
    for unit in c.encode_utf16(&mut units) {
        let _ = write!(out, "\\u{:04x}", unit);
    }
}

/// `text` with every character a terminal could act on, or would not show,
/// written as `\uXXXX`; `keep` says whether newlines and tabs pass.
pub(crate) fn escape(text: &str, keep: Keep) -> Cow<'_, str> {
    let passes = |c: char| keep != Keep::Nothing && (c == '\n' || c == '\t');
    let indent = keep == Keep::Indented && text.contains('\n');
    if !indent && !text.chars().any(|c| is_dangerous(c) && !passes(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if indent && c == '\n' {
            out.push_str("\n  ");
        } else if is_dangerous(c) && !passes(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Bytes for stdout: UTF-8 text is escaped (newlines and tabs kept); bytes
/// that are not UTF-8 (a raw HMAC secret from `keys generate`) are binary
/// output and pass unchanged.
pub(crate) fn escape_bytes(bytes: &[u8]) -> Cow<'_, [u8]> {
    match std::str::from_utf8(bytes) {
        Ok(text) => match escape(text, Keep::Layout) {
            Cow::Borrowed(_) => Cow::Borrowed(bytes),
            Cow::Owned(s) => Cow::Owned(s.into_bytes()),
        },
        Err(_) => Cow::Borrowed(bytes),
    }
}

/// A copy of a token's header for the human-readable report, with `kid`,
/// `typ`, `cty` and the names of other parameters escaped whole (newlines
/// included), so that no header value can start a line such as `valid: …`.
/// Other values are printed as JSON, which escapes newlines itself.
pub(crate) fn header_for_display(header: &Header) -> Header {
    let field = |v: Option<&str>| v.map(|s| escape(s, Keep::Nothing).into_owned());
    let mut shown = header.clone();
    shown.kid = field(header.kid.as_deref());
    shown.typ = field(header.typ.as_deref()).map(Cow::Owned);
    shown.cty = field(header.cty.as_deref()).map(Cow::Owned);
    let mut extra = Map::new();
    for (name, value) in &header.extra {
        let mut key = escape(name, Keep::Nothing).into_owned();
        // Two names that escape alike (`a\n` and a literal `a\u000a`):
        // show both rather than let one hide the other.
        let base = key.clone();
        let mut n = 2;
        while extra.contains_key(&key) {
            key = format!("{base} ({n})");
            n += 1;
        }
        extra.insert(key, value.clone());
    }
    shown.extra = extra;
    shown
}

#[cfg(test)]
mod tests {
    use super::*;
    use jwt_core::Algorithm;
    use serde_json::json;

    #[test]
    fn controls_are_escaped_and_text_is_not() {
        assert!(matches!(
            escape("plain kid-1 é ✓", Keep::Nothing),
            Cow::Borrowed(_)
        ));
        assert_eq!(
            escape("\u{1b}[32mvalid\u{1b}[0m", Keep::Layout),
            "\\u001b[32mvalid\\u001b[0m"
        );
        assert_eq!(
            escape("a\u{9b}b\u{7f}c\u{202e}d\u{2066}e\r", Keep::Layout),
            "a\\u009bb\\u007fc\\u202ed\\u2066e\\u000d"
        );
        assert_eq!(escape("a\nb\tc", Keep::Layout), "a\nb\tc");
        assert_eq!(escape("a\nb\tc", Keep::Nothing), "a\\u000ab\\u0009c");
        // Idempotent: a backslash is not escaped.
        let once = escape("\u{1b}\\", Keep::Nothing).into_owned();
        assert_eq!(escape(&once, Keep::Nothing), once);
    }

    /// Found by an attacker's review: a `kid` with a zero-width space
    /// printed exactly like the `kid` without it.
    #[test]
    fn invisible_characters_are_escaped() {
        for (c, shown) in [
            ('\u{200b}', "\\u200b"),
            ('\u{200c}', "\\u200c"),
            ('\u{200d}', "\\u200d"),
            ('\u{2060}', "\\u2060"),
            ('\u{feff}', "\\ufeff"),
            ('\u{ad}', "\\u00ad"),
            ('\u{fe0f}', "\\ufe0f"),
            // A tag character, beyond the BMP: a JSON surrogate pair.
            ('\u{e0041}', "\\udb40\\udc41"),
        ] {
            let text = format!("kid-1{c}");
            assert_eq!(
                escape(&text, Keep::Nothing),
                format!("kid-1{shown}"),
                "{c:?}"
            );
        }
        // Visible text, accents and symbols included, is untouched.
        assert!(matches!(
            escape("kid-1 é ✓ 鍵", Keep::Nothing),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn diagnostics_keep_their_lines_but_indent_all_but_the_first() {
        assert_eq!(
            escape("bad key\n  |\n1 | x = 1\n  | ^", Keep::Indented),
            "bad key\n    |\n  1 | x = 1\n    | ^"
        );
        // A newline inside a message can never start a line of its own.
        let forged = escape("unknown kid k\nvalid: yes\u{1b}[0m", Keep::Indented);
        assert_eq!(forged, "unknown kid k\n  valid: yes\\u001b[0m");
        assert!(forged.lines().skip(1).all(|l| l.starts_with("  ")));
        assert!(matches!(
            escape("one line", Keep::Indented),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn escaped_json_decodes_to_the_same_value() {
        let value = json!({
            "kid": "\u{1b}[31m\u{9b}2J\u{202e}\u{7f}\u{2028}\u{200b}\u{feff}\u{e0041}",
            "\u{85}\u{2060}": 1
        });
        let text = serde_json::to_string(&value).unwrap();
        let shown = escape(&text, Keep::Layout);
        assert!(!shown.chars().any(is_dangerous), "{shown}");
        let back: serde_json::Value = serde_json::from_str(&shown).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn binary_output_passes_unchanged() {
        let secret = [0xff, 0x1b, 0x00, 0x9b];
        assert_eq!(&*escape_bytes(&secret), &secret[..]);
        assert_eq!(&*escape_bytes(b"x\x1by\n"), b"x\\u001by\n");
    }

    #[test]
    fn header_fields_cannot_start_a_line() {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("k\nvalid: signature and claims verified".into());
        header.extra.insert("a\n".into(), json!(1));
        header.extra.insert("a\\u000a".into(), json!(2));
        let shown = header_for_display(&header);
        assert_eq!(
            shown.kid.as_deref(),
            Some("k\\u000avalid: signature and claims verified")
        );
        assert_eq!(shown.extra.len(), 2);
        assert!(shown.extra.keys().all(|k| !k.contains('\n')));
    }
}
