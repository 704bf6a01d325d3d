//! RFC 7512 PKCS#11 URIs, as OpenSSL, p11-kit and GnuTLS read them:
//! `pkcs11:token=jwtkit;object=signing?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/secrets/hsm-pin`.
//!
//! Path attributes (`;`-separated) choose the token and name the store's
//! objects; query attributes (`&`-separated) say how to reach the token.
//! Values are percent-decoded (RFC 7512 §2.3: `%20` is a space, `%3B` a
//! `;`). An attribute given twice, one this store does not read, or a
//! malformed `%` escape is refused: a typo must not select another token.
//! The value of `pin-value` never appears in a message ([`redact_pin`]).

use std::path::PathBuf;

use super::pin::Pin;

/// A store's PKCS#11 URI, decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Pkcs11Uri {
    /// `token`: the token label (CKA_LABEL of the token, `CK_TOKEN_INFO.label`).
    pub(crate) token: Option<String>,
    /// `manufacturer`: the token's manufacturer id.
    pub(crate) manufacturer: Option<String>,
    /// `model`: the token's model.
    pub(crate) model: Option<String>,
    /// `serial`: the token's serial number.
    pub(crate) serial: Option<String>,
    /// `slot-id`: the slot number.
    pub(crate) slot_id: Option<u64>,
    /// `slot-description`.
    pub(crate) slot_description: Option<String>,
    /// `slot-manufacturer`.
    pub(crate) slot_manufacturer: Option<String>,
    /// `object`: the CKA_LABEL of every object of the store.
    pub(crate) object: Option<String>,
    /// `module-path`.
    pub(crate) module_path: Option<PathBuf>,
    /// `pin-source` (a file) or `pin-value`.
    pub(crate) pin: Option<Pin>,
    /// `pin-value` was used (the caller warns).
    pub(crate) pin_in_uri: bool,
}

/// The accepted attributes, for messages.
const PATH_ATTRIBUTES: &str =
    "token, manufacturer, model, serial, slot-id, slot-description, slot-manufacturer, object";
const QUERY_ATTRIBUTES: &str = "module-path, pin-source, pin-value";

/// `uri` with the value of every `pin-value` attribute replaced by `***`,
/// wherever it is and however malformed the rest of the URI is: what
/// messages and logs may show.
pub fn redact_pin(uri: &str) -> String {
    // Any `pin…=` attribute but `pin-source` (`pin-value`, and the misspelt
    // `pin_value`, `pinvalue`, `pin%2Dvalue` that the parser refuses with a
    // message quoting the URI), wherever it starts: after the scheme, a
    // `;`, `?` or `&` (also a second `?`, a typo for `&` that would make the
    // PIN part of `module-path`), or at the start of a word of a message.
    let bytes = uri.as_bytes();
    let mut out = String::with_capacity(uri.len());
    let mut at = 0;
    let mut i = 0;
    while i < bytes.len() {
        let starts = i == 0 || matches!(bytes[i - 1], b'?' | b'&' | b';' | b':' | b' ' | b'`');
        if !(starts && bytes.len() - i >= 3 && bytes[i..i + 3].eq_ignore_ascii_case(b"pin")) {
            i += 1;
            continue;
        }
        let name_end = uri[i..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '%'))
            .map_or(uri.len(), |n| i + n);
        let name = uri[i..name_end].to_ascii_lowercase().replace("%2d", "-");
        if name == "pin-source" || bytes.get(name_end) != Some(&b'=') {
            i = name_end.max(i + 1);
            continue;
        }
        // The value ends at the next attribute: `&` (or a `?` typed for
        // it); in the path part also `;`. A `#` does not end it (a PIN may
        // hold one). Over-redacting a following attribute is harmless.
        let in_path = uri[..i].find('?').is_none();
        let end = uri[name_end + 1..]
            .find(|c: char| {
                c == '&'
                    || c == '?'
                    || c.is_whitespace()
                    || c == '`'
                    || c == '"'
                    || (in_path && c == ';')
            })
            .map_or(uri.len(), |n| name_end + 1 + n);
        out.push_str(&uri[at..=name_end]);
        out.push_str("***");
        at = end;
        i = end;
    }
    out.push_str(&uri[at..]);
    out
}

/// Percent-decodes one attribute value (RFC 3986 §2.1, as RFC 7512 asks).
fn decode(name: &str, value: &str) -> Result<Vec<u8>, String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).and_then(|h| {
                    let h = std::str::from_utf8(h).ok()?;
                    u8::from_str_radix(h, 16).ok().filter(|_| h.bytes().all(|b| b.is_ascii_hexdigit()))
                });
                let Some(byte) = hex else {
                    return Err(format!(
                        "the value of `{name}` has a `%` that is not followed by two hex digits; write a literal % as %25"
                    ));
                };
                out.push(byte);
                i += 3;
            }
            b if b.is_ascii_control() || b == b' ' => {
                return Err(format!(
                    "the value of `{name}` holds a space or a control character; percent-encode it (a space is %20)"
                ))
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Ok(out)
}

fn text(name: &str, value: &str) -> Result<String, String> {
    String::from_utf8(decode(name, value)?)
        .map_err(|_| format!("the value of `{name}` is not UTF-8 once percent-decoded"))
}

/// A `pin-source` value: a `file:` URI or an absolute path (RFC 7512 lets
/// the application decide what it reads; this store reads files only).
fn pin_file(value: &str) -> Result<PathBuf, String> {
    let path = if let Some(rest) = value.strip_prefix("file://") {
        // file:///abs: the authority is empty; file://host/… is not local.
        if !rest.starts_with('/') {
            return Err(
                "pin-source file:// URIs must have an absolute path (file:///run/secrets/hsm-pin)"
                    .into(),
            );
        }
        rest
    } else if let Some(rest) = value.strip_prefix("file:") {
        rest
    } else {
        value
    };
    if !path.starts_with('/') {
        return Err(
            "pin-source is not a file: URI or an absolute path (its value is not shown: it may be the PIN); write pin-source=file:/run/secrets/hsm-pin (the file holds the PIN and nothing else)"
                .to_owned(),
        );
    }
    Ok(PathBuf::from(path))
}

impl Pkcs11Uri {
    /// Decodes `uri` (`pkcs11:…`). The error says what is wrong; it never
    /// quotes the PIN.
    pub(crate) fn parse(uri: &str) -> Result<Pkcs11Uri, String> {
        let Some(rest) = uri
            .get(..7)
            .filter(|s| s.eq_ignore_ascii_case("pkcs11:"))
            .map(|_| &uri[7..])
        else {
            return Err("not a PKCS#11 URI: it must start with `pkcs11:`".into());
        };
        if rest.contains('#') {
            return Err(
                "a PKCS#11 URI has no fragment (`#…`); percent-encode a `#` in a value as %23"
                    .into(),
            );
        }
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        let mut u = Pkcs11Uri::default();
        let mut seen = std::collections::HashSet::new();
        for attr in path.split(';').filter(|a| !a.is_empty()) {
            let (name, value) = attr.split_once('=').ok_or_else(|| {
                format!(
                    "path attribute `{attr}` has no `=VALUE`; write NAME=VALUE, e.g. token=jwtkit"
                )
            })?;
            if !seen.insert(name.to_owned()) {
                return Err(format!("attribute `{name}` appears twice; give it once"));
            }
            match name {
                "token" => u.token = Some(text(name, value)?),
                "manufacturer" => u.manufacturer = Some(text(name, value)?),
                "model" => u.model = Some(text(name, value)?),
                "serial" => u.serial = Some(text(name, value)?),
                "slot-description" => u.slot_description = Some(text(name, value)?),
                "slot-manufacturer" => u.slot_manufacturer = Some(text(name, value)?),
                "object" => u.object = Some(text(name, value)?),
                "slot-id" => {
                    let v = text(name, value)?;
                    u.slot_id = Some(v.parse().map_err(|_| {
                        format!("slot-id `{v}` is not a slot number (a decimal integer)")
                    })?);
                }
                "id" | "type" => {
                    return Err(format!(
                        "`{name}` selects one object, but a key store URI names a whole store: its keys, ledger and lock all carry the label given by object=; remove {name}="
                    ))
                }
                "library-manufacturer" | "library-description" | "library-version" => {
                    return Err(format!(
                        "`{name}` is not supported here; module-path names the module to load"
                    ))
                }
                other => {
                    return Err(format!(
                        "unknown path attribute `{other}`; a store URI takes {PATH_ATTRIBUTES} (RFC 7512)"
                    ))
                }
            }
        }
        for attr in query
            .into_iter()
            .flat_map(|q| q.split('&'))
            .filter(|a| !a.is_empty())
        {
            let (name, value) = attr.split_once('=').ok_or_else(|| {
                // Never echo a query attribute: it could be a PIN without its `=`.
                "a query attribute has no `=VALUE`; write NAME=VALUE, e.g. module-path=/usr/lib/softhsm/libsofthsm2.so".to_owned()
            })?;
            if !seen.insert(name.to_owned()) {
                return Err(format!("attribute `{name}` appears twice; give it once"));
            }
            match name {
                "module-path" => {
                    let v = text(name, value)?;
                    if !v.starts_with('/') {
                        return Err(format!(
                            "module-path `{v}` is not an absolute path; give the PKCS#11 module's full path, e.g. /usr/lib/softhsm/libsofthsm2.so"
                        ));
                    }
                    u.module_path = Some(PathBuf::from(v));
                }
                "pin-source" => {
                    u.pin = Some(Pin::from_file(pin_file(&text(name, value)?)?));
                }
                "pin-value" => {
                    let bytes = zeroize::Zeroizing::new(decode(name, value)?);
                    let pin = std::str::from_utf8(&bytes)
                        .map_err(|_| "the value of `pin-value` is not UTF-8 once percent-decoded".to_owned())?;
                    u.pin = Some(Pin::new(pin));
                    u.pin_in_uri = true;
                }
                "module-name" => {
                    return Err(
                        "module-name is not supported: give the module's full path with module-path=, e.g. module-path=/usr/lib/softhsm/libsofthsm2.so".into(),
                    )
                }
                other => {
                    return Err(format!(
                        "unknown query attribute `{other}`; a store URI takes {QUERY_ATTRIBUTES} (RFC 7512)"
                    ))
                }
            }
        }
        if seen.contains("pin-source") && seen.contains("pin-value") {
            return Err("give either pin-source or pin-value, not both".into());
        }
        Ok(u)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issue_example_decodes() {
        let u = Pkcs11Uri::parse(
            "pkcs11:token=jwtkit;object=signing?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/secrets/hsm-pin",
        )
        .unwrap();
        assert_eq!(u.token.as_deref(), Some("jwtkit"));
        assert_eq!(u.object.as_deref(), Some("signing"));
        assert_eq!(
            u.module_path.as_deref(),
            Some(std::path::Path::new("/usr/lib/softhsm/libsofthsm2.so"))
        );
        assert_eq!(
            format!("{:?}", u.pin.unwrap()),
            "Pin::File(\"/run/secrets/hsm-pin\")"
        );
        assert!(!u.pin_in_uri);
    }

    #[test]
    fn values_are_percent_decoded() {
        let u = Pkcs11Uri::parse(
            "PKCS11:token=My%20Token%3B1;object=a%25b;serial=0A1B;slot-id=42;manufacturer=SoftHSM%20project?pin-source=file:///run/pin&module-path=/opt/hsm/lib%20x.so&pin-value=12%2634",
        );
        // pin-source and pin-value together are refused.
        assert!(u.unwrap_err().contains("not both"));
        let u = Pkcs11Uri::parse(
            "PKCS11:token=My%20Token%3B1;object=a%25b;serial=0A1B;slot-id=42;manufacturer=SoftHSM%20project?module-path=/opt/hsm/lib%20x.so&pin-value=12%2634",
        )
        .unwrap();
        assert_eq!(u.token.as_deref(), Some("My Token;1"));
        assert_eq!(u.object.as_deref(), Some("a%b"));
        assert_eq!(u.serial.as_deref(), Some("0A1B"));
        assert_eq!(u.slot_id, Some(42));
        assert_eq!(u.manufacturer.as_deref(), Some("SoftHSM project"));
        assert_eq!(
            u.module_path.as_deref(),
            Some(std::path::Path::new("/opt/hsm/lib x.so"))
        );
        assert!(u.pin_in_uri);
        assert_eq!(u.pin.as_ref().unwrap().value_for_tests(), Some("12&34"));
        assert_eq!(
            Pkcs11Uri::parse("pkcs11:object=x?pin-source=file:///run/pin")
                .unwrap()
                .pin
                .map(|p| format!("{p:?}")),
            Some("Pin::File(\"/run/pin\")".into())
        );
    }

    #[test]
    fn mistakes_are_refused_with_what_to_write() {
        let cases = [
            ("file:x", "must start with `pkcs11:`"),
            ("pkcs11:tokn=x;object=y", "unknown path attribute `tokn`"),
            ("pkcs11:token=x;token=y", "appears twice"),
            ("pkcs11:token=x;object=y;id=%01", "remove id="),
            ("pkcs11:token=x;type=private", "remove type="),
            ("pkcs11:token=a%2", "two hex digits"),
            ("pkcs11:token=a%zz", "two hex digits"),
            ("pkcs11:token=a b", "percent-encode"),
            ("pkcs11:token=%ff%fe", "not UTF-8"),
            ("pkcs11:token", "no `=VALUE`"),
            ("pkcs11:slot-id=x1", "not a slot number"),
            ("pkcs11:token=x?module-path=lib.so", "not an absolute path"),
            ("pkcs11:token=x?module-name=softhsm2", "module-path="),
            ("pkcs11:token=x?pin-source=pin.txt", "absolute path"),
            ("pkcs11:token=x?pin-source=file://host/pin", "absolute path"),
            ("pkcs11:token=x?x-vendor=1", "unknown query attribute"),
            ("pkcs11:token=x#frag", "no fragment"),
        ];
        for (uri, expected) in cases {
            let err = Pkcs11Uri::parse(uri).unwrap_err();
            assert!(err.contains(expected), "{uri}: {err}");
        }
    }

    #[test]
    fn the_pin_never_appears_in_messages() {
        for (uri, shown) in [
            (
                "pkcs11:token=t?pin-value=s3cret&module-path=/m.so",
                "pkcs11:token=t?pin-value=***&module-path=/m.so",
            ),
            (
                "pkcs11:token=t?PIN-VALUE=s3cret",
                "pkcs11:token=t?PIN-VALUE=***",
            ),
            (
                "pkcs11:token=t?pin-value=s3;cret",
                "pkcs11:token=t?pin-value=***",
            ),
            (
                "pkcs11:pin-value=1234;token=t",
                "pkcs11:pin-value=***;token=t",
            ),
            ("pkcs11:token=pin-value", "pkcs11:token=pin-value"),
            ("pkcs11:token=t?pin-value", "pkcs11:token=t?pin-value"),
            ("pkcs11:object=xpin-value=1", "pkcs11:object=xpin-value=1"),
            // Found by the attacker's review of issue 18: a `#` in the PIN,
            // misspelt names, and a `?` typed for `&`.
            (
                "pkcs11:token=t?module-path=/m.so&pin-value=12#3456SECRET",
                "pkcs11:token=t?module-path=/m.so&pin-value=***",
            ),
            (
                "pkcs11:token=t?pin_value=SECRET",
                "pkcs11:token=t?pin_value=***",
            ),
            (
                "pkcs11:token=t?pinvalue=SECRET",
                "pkcs11:token=t?pinvalue=***",
            ),
            (
                "pkcs11:token=t?pin%2Dvalue=SECRET",
                "pkcs11:token=t?pin%2Dvalue=***",
            ),
            (
                "pkcs11:token=t?module-path=/m.so?pin-value=SECRET",
                "pkcs11:token=t?module-path=/m.so?pin-value=***",
            ),
            (
                "cannot read the PKCS#11 module /m.so?pin-value=SECRET: not found",
                // Up to the next space: over-redacting is safe.
                "cannot read the PKCS#11 module /m.so?pin-value=*** not found",
            ),
            (
                "pkcs11:token=t?pin-source=file:/run/pin",
                "pkcs11:token=t?pin-source=file:/run/pin",
            ),
        ] {
            assert_eq!(redact_pin(uri), shown, "{uri}");
        }
        // A query attribute without `=` could be a PIN: never echoed.
        let err = Pkcs11Uri::parse("pkcs11:token=t?s3cret").unwrap_err();
        assert!(!err.contains("s3cret"), "{err}");
        let err = Pkcs11Uri::parse("pkcs11:token=t?pin-value=%zz").unwrap_err();
        assert!(!err.contains("%zz"), "{err}");
    }
}
