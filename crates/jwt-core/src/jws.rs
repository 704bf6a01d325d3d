//! The compact JWS serialization (RFC 7515 §7.1): signing and verifying tokens.

use std::collections::HashMap;
use std::fmt;
use std::mem::MaybeUninit;
use std::sync::{Arc, OnceLock};

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::algorithm::Algorithm;
use crate::b64;
use crate::claims::Registered;
use crate::error::Error;
use crate::fused;
use crate::header::Header;
use crate::json;
use crate::jwk::Jwks;
use crate::key::{SigningKey, VerifyingKey};
use crate::validation::Validation;

/// A verified token: its header and its claims.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenData<T> {
    /// The header.
    pub header: Header,
    /// The claims, deserialized into the caller's type.
    pub claims: T,
}

/// The parts of a compact token, split and decoded but not verified.
pub(crate) struct Parts<'a> {
    pub(crate) header: Header,
    pub(crate) signing_input: &'a str,
    pub(crate) payload_b64: &'a str,
    pub(crate) signature_b64: &'a str,
}

/// Signatures up to this many bytes are decoded on the stack: every HMAC,
/// ECDSA and EdDSA signature, and RSA up to 4096 bits.
const SIGNATURE_STACK: usize = 512;

/// Payloads up to this many bytes are decoded on the stack.
const PAYLOAD_STACK: usize = 1024;

/// Checks that a signature part is canonical base64url (and hands over the bytes).
pub(crate) fn with_signature<R>(
    signature_b64: &str,
    f: impl FnOnce(&[u8]) -> R,
) -> Result<R, Error> {
    b64::with_decoded::<SIGNATURE_STACK, R>(signature_b64.as_bytes(), "the signature", f)
}

/// Splits a compact JWS and decodes its header (the signature is decoded
/// where it is used). The size limit is checked before anything else is
/// looked at.
pub(crate) fn split(token: &str, max_size: usize) -> Result<Parts<'_>, Error> {
    let (first, second) = separators(token, max_size, None)?;
    let header = parse_header(header_part(token, first)?)?;
    let signature_b64 = signature_part(token, second)?;
    Ok(Parts {
        header,
        signing_input: &token[..second],
        payload_b64: &token[first + 1..second],
        signature_b64,
    })
}

/// The positions of the two `.` of a compact JWS, after the size check.
/// `first` is the first one's when it is already known (the token starts
/// with a memoized header followed by `.`).
fn separators(token: &str, max_size: usize, first: Option<usize>) -> Result<(usize, usize), Error> {
    if token.len() > max_size {
        return Err(Error::TooLarge {
            size: token.len(),
            limit: max_size,
        });
    }
    let bytes = token.as_bytes();
    let first = match first {
        Some(first) => first,
        None => memchr::memchr(b'.', bytes)
            .ok_or_else(|| Error::malformed("the token has no `.` separators"))?,
    };
    // Vectorized scans find the second separator and refuse a third.
    let second = first
        + 1
        + memchr::memchr(b'.', &bytes[first + 1..]).ok_or_else(|| {
            Error::malformed("the token has 2 parts; a JWS has 3 (JWE tokens are not supported)")
        })?;
    if memchr::memchr(b'.', &bytes[second + 1..]).is_some() {
        return Err(Error::malformed(
            "the token has more than 3 parts (JWE tokens, with 5 parts, are not supported)",
        ));
    }
    Ok((first, second))
}

/// The header part, which must not be empty. `.` is ASCII, so the
/// separators are character boundaries.
fn header_part(token: &str, first: usize) -> Result<&str, Error> {
    match &token[..first] {
        "" => Err(Error::malformed("the header part is empty")),
        header_b64 => Ok(header_b64),
    }
}

/// The signature part, which must not be empty. The header (and so its
/// `alg`) is judged before it: an unsigned token (`alg: none`, empty
/// signature) is an algorithm attack and must be reported as
/// `invalid_algorithm`, not as a malformed token.
fn signature_part(token: &str, second: usize) -> Result<&str, Error> {
    match &token[second + 1..] {
        "" => Err(Error::malformed(
            "the signature part is empty (unsigned tokens are never accepted)",
        )),
        signature_b64 => Ok(signature_b64),
    }
}

/// A verified token's header: the memoized one, or the one parsed from it.
enum HeaderOf<'m> {
    Memo(&'m Header),
    Parsed(Box<Header>),
}

impl HeaderOf<'_> {
    fn get(&self) -> &Header {
        match self {
            HeaderOf::Memo(header) => header,
            HeaderOf::Parsed(header) => header,
        }
    }

    #[inline(always)]
    fn into_owned(self) -> Header {
        match self {
            HeaderOf::Memo(header) => header.clone(),
            HeaderOf::Parsed(header) => *header,
        }
    }
}

fn parse_header(header_b64: &str) -> Result<Header, Error> {
    let header_bytes = b64::decode(header_b64.as_bytes(), "the header")?;
    Header::parse(&header_bytes)
}

/// Headers up to this length are memoized.
const HEADER_MEMO_MAX: usize = 512;

/// How many distinct headers one [`Verifier`] memoizes.
const HEADER_MEMO_SLOTS: usize = 4;

/// The parsed headers of tokens a [`Verifier`] has verified, by their
/// base64url text. Tokens from one issuer share their header byte for byte
/// (per key and algorithm), so a stream of them parses each distinct header
/// once. Parsing is a pure function of the text, so the memo cannot change
/// any outcome.
///
/// Each slot is written once and then only read: a hit is an atomic load and
/// a string comparison, with no lock and nothing written to memory shared
/// between threads, however many verify at once. Only headers of tokens
/// whose signature verified are kept, so a client cannot fill the slots with
/// headers of its own; a header that finds the slots full is parsed every
/// time, as without the memo. Slots are per verifier, so a verifier rebuilt
/// for new keys (`jwt_keys::Verifier` does this on reload) starts afresh.
#[derive(Clone, Default)]
struct HeaderMemo {
    slots: [OnceLock<(Box<str>, Header)>; HEADER_MEMO_SLOTS],
}

impl HeaderMemo {
    /// The parsed header of `token` and its length, if `token` starts with a
    /// memoized header text followed by `.`.
    fn get_prefix(&self, token: &[u8]) -> Option<(&Header, usize)> {
        self.slots.iter().find_map(|slot| {
            let (text, header) = slot.get()?;
            let len = text.len();
            (token.get(len) == Some(&b'.') && token[..len] == *text.as_bytes())
                .then_some((header, len))
        })
    }

    /// Keeps `header` (parsed from `header_b64`) in the first free slot.
    fn remember(&self, header_b64: &str, header: &Header) {
        if header_b64.len() > HEADER_MEMO_MAX {
            return;
        }
        for slot in &self.slots {
            match slot.get() {
                // Another thread memoized the same header first.
                Some((text, _)) if **text == *header_b64 => return,
                Some(_) => continue,
                None => {
                    // Losing a race to another header only means this one
                    // tries the next slot next time.
                    let _ = slot.set((header_b64.into(), header.clone()));
                    return;
                }
            }
        }
    }
}

impl fmt::Debug for HeaderMemo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let used = self.slots.iter().filter(|s| s.get().is_some()).count();
        f.debug_struct("HeaderMemo").field("used", &used).finish()
    }
}

/// Decodes and strictly parses the payload as a JSON object.
pub(crate) fn decode_payload(payload_b64: &str) -> Result<Map<String, Value>, Error> {
    let bytes = b64::decode(payload_b64.as_bytes(), "the payload")?;
    json::parse_object(&bytes, "the payload")
}

/// Builds the signing input `BASE64URL(header) . BASE64URL(claims)`.
///
/// This is what remote signers (KMS, Vault) sign; finish the token with [`assemble`].
/// The claims are checked exactly as [`Signer::sign`] checks them.
pub fn signing_input<T: Serialize + ?Sized>(header: &Header, claims: &T) -> Result<String, Error> {
    let mut out = encode_header(header)?;
    append_claims(&mut out, claims)?;
    Ok(out)
}

/// Encodes `header`, refusing one that jwtkit's verifier would refuse or
/// read differently (duplicate parameters, `crit`, `b64`, a parameter in
/// [`Header::extra`] that repeats a field): nothing is signed that the
/// verifier cannot read back as written.
fn encode_header(header: &Header) -> Result<String, Error> {
    let json = serde_json::to_vec(header).map_err(|source| Error::Serialization { source })?;
    match Header::parse(&json) {
        Ok(back) if back == *header => Ok(b64::encode(&json)),
        Ok(_) => Err(Error::config(
            "the header would be read back differently by a verifier (a parameter in \
             `extra` repeats one of the header's fields); set alg, typ, kid and cty through \
             their own fields",
        )),
        Err(e) => Err(Error::config(format!(
            "the header would be refused by a verifier ({e}); remove the parameter it names"
        ))),
    }
}

/// Why [`Signer::with_header_param`] refuses a parameter name, if it does.
fn refused_header_param(name: &str) -> Option<&'static str> {
    Some(match name {
        "alg" => "the algorithm is the signer's (`Signer::new`) and must fit its key",
        "kid" => "set the key id with `Signer::with_kid`",
        "typ" => "set the type with `Signer::with_typ`",
        "crit" | "b64" => {
            "jwtkit implements no critical header extensions (RFC 7515 §4.1.11) or unencoded \
             payloads (RFC 7797), and verifiers refuse tokens that declare them"
        }
        "jku" | "x5u" | "jwk" | "x5c" => {
            "a verifier must never take its key from the token (RFC 8725 §3.10); publish the \
             public key as a JWKS and name it with the `kid`"
        }
        _ => return None,
    })
}

/// Serializes `claims`, checks the bytes with the verifier's strict rules
/// (what a custom `Serialize` or a `Value` built by hand can produce:
/// duplicate member names, serde_json's private member names, nesting past
/// [`json::MAX_DEPTH`], registered claims of the wrong type), and appends
/// them. Checking the bytes rather than the value means nothing is signed
/// that jwtkit's verifier would refuse or read differently.
fn append_claims<T: Serialize + ?Sized>(out: &mut String, claims: &T) -> Result<(), Error> {
    let claims_json =
        serde_json::to_vec(claims).map_err(|source| Error::Serialization { source })?;
    if claims_json.first() != Some(&b'{') {
        return Err(Error::config(
            "the claims must serialize to a JSON object (RFC 7519 §7.1)",
        ));
    }
    // serde_json writes UTF-8; the check cannot fail, but never panic.
    let text = std::str::from_utf8(&claims_json)
        .map_err(|e| Error::config(format!("the claims serialized to invalid UTF-8 ({e})")))?;
    crate::claims::check_signable(text)?;
    out.push('.');
    b64::encode_into(&claims_json, out);
    Ok(())
}

/// Appends the signature to a signing input, giving the compact token.
pub fn assemble(mut signing_input: String, signature: &[u8]) -> String {
    signing_input.push('.');
    b64::encode_into(signature, &mut signing_input);
    signing_input
}

/// Signs tokens with one key and one algorithm.
///
/// The header is fixed when the signer is built: `alg`, `typ` (default `JWT`)
/// and, for asymmetric keys, `kid` (the key's own, or its RFC 7638 thumbprint).
///
/// ```
/// use jwt_core::{Algorithm, Signer, SigningKey, Validation, Verifier};
/// let key = SigningKey::generate(Algorithm::ES256)?;
/// let verifier = Verifier::new(key.verifying_key(), Validation::new([Algorithm::ES256]))?;
/// let signer = Signer::new(key, Algorithm::ES256)?;
/// let token = signer.sign(&serde_json::json!({"sub": "alice", "exp": 4_000_000_000u64}))?;
/// let data = verifier.verify::<serde_json::Value>(&token)?;
/// assert_eq!(data.claims["sub"], "alice");
/// # Ok::<(), jwt_core::Error>(())
/// ```
#[derive(Debug)]
pub struct Signer {
    key: SigningKey,
    alg: Algorithm,
    header: Header,
    header_b64: String,
}

impl Signer {
    /// A signer for `alg`; refuses keys of the wrong family and weak keys.
    pub fn new(key: SigningKey, alg: Algorithm) -> Result<Self, Error> {
        key.check_usable(alg)?;
        let mut header = Header::new(alg);
        header.kid = match key.kid() {
            Some(k) => Some(k.to_owned()),
            None if !alg.is_symmetric() => Some(key.thumbprint()?),
            None => None,
        };
        let mut signer = Signer {
            key,
            alg,
            header_b64: String::new(),
            header,
        };
        signer.encode_header()?;
        Ok(signer)
    }

    fn encode_header(&mut self) -> Result<(), Error> {
        self.header_b64 = encode_header(&self.header)?;
        Ok(())
    }

    /// Adds a header parameter every token gets (`cty`, `x5t#S256`, a
    /// private `ver`…); a parameter already set is replaced. Refused, each
    /// with a [`ErrorKind::Config`](crate::ErrorKind::Config) error saying
    /// why: `alg`, `kid` and `typ` (they have their own setters), `crit` and
    /// `b64` (extensions jwtkit's verifier refuses), and the key-carrying
    /// `jku`, `x5u`, `jwk`, `x5c` (RFC 8725 §3.10). `cty` must be a string.
    ///
    /// ```
    /// use jwt_core::{Algorithm, Signer, SigningKey};
    ///
    /// let key = SigningKey::hmac(b"a test secret of at least 32 bytes!!")?;
    /// let signer = Signer::new(key, Algorithm::HS256)?
    ///     .with_header_param("ver", serde_json::json!(2))?;
    /// assert_eq!(signer.header().extra["ver"], 2);
    /// assert!(Signer::new(SigningKey::hmac(b"a test secret of at least 32 bytes!!")?, Algorithm::HS256)?
    ///     .with_header_param("jku", serde_json::json!("https://evil.example"))
    ///     .is_err());
    /// # Ok::<(), jwt_core::Error>(())
    /// ```
    pub fn with_header_param(mut self, name: &str, value: Value) -> Result<Self, Error> {
        if let Some(why) = refused_header_param(name) {
            return Err(Error::config(format!(
                "header parameter `{name}` cannot be set: {why}"
            )));
        }
        if name == "cty" {
            let Value::String(cty) = value else {
                return Err(Error::config(format!(
                    "header parameter `cty` must be a string, not {}",
                    crate::json::json_type(&value)
                )));
            };
            self.header.cty = Some(crate::header::media_type(cty));
        } else {
            self.header.extra.insert(name.to_owned(), value);
        }
        self.encode_header()?;
        Ok(self)
    }

    /// Sets the header `typ` (e.g. `at+jwt`); `None` removes it.
    pub fn with_typ(mut self, typ: Option<&str>) -> Result<Self, Error> {
        self.header.typ = typ.map(crate::header::media_type);
        self.encode_header()?;
        Ok(self)
    }

    /// Sets the header `kid`; `None` removes it.
    pub fn with_kid(mut self, kid: Option<&str>) -> Result<Self, Error> {
        self.header.kid = kid.map(str::to_owned);
        self.encode_header()?;
        Ok(self)
    }

    /// The header every token gets.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The key.
    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// Signs `claims` (anything that serializes to a JSON object).
    ///
    /// The serialized claims are checked with the verifier's strict rules
    /// first; a configuration error ([`ErrorKind::Config`](crate::ErrorKind::Config))
    /// refuses duplicate member names (e.g. a `#[serde(flatten)]` map that
    /// repeats a field), serde_json's private member names
    /// (`$serde_json::private::…`), nesting deeper than
    /// [`MAX_DEPTH`](crate::MAX_DEPTH), and registered claims of the wrong
    /// type (see [`parse_claims`](crate::parse_claims)).
    pub fn sign<T: Serialize + ?Sized>(&self, claims: &T) -> Result<String, Error> {
        let mut input = String::with_capacity(self.header_b64.len() + 256);
        input.push_str(&self.header_b64);
        append_claims(&mut input, claims)?;
        let sig = self.key.sign_raw(self.alg, input.as_bytes())?;
        Ok(assemble(input, &sig))
    }
}

/// Verification keys indexed by `kid`.
///
/// Built from a JWKS or from individual keys; entries that cannot verify
/// (`use: enc`, unsupported key types or curves, malformed members) are left
/// out and listed in [`KeySet::skipped`], so one odd key in an identity
/// provider's JWKS does not break verification with the others.
#[derive(Debug, Default, Clone)]
pub struct KeySet {
    by_kid: HashMap<String, Arc<VerifyingKey>>,
    order: Vec<Arc<VerifyingKey>>,
    skipped: Vec<(Option<String>, String)>,
}

impl KeySet {
    /// An empty set.
    pub fn new() -> Self {
        KeySet::default()
    }

    /// Adds a key under its `kid` (or its thumbprint when it has none).
    /// A second key with the same `kid` is an error: a `kid` must identify one key.
    pub fn insert(&mut self, key: VerifyingKey) -> Result<(), Error> {
        let kid = key.kid_or_thumbprint()?;
        if self.by_kid.contains_key(&kid) {
            return Err(Error::invalid_key(format!(
                "two keys share kid `{kid}`; a kid must identify exactly one key"
            )));
        }
        let key = Arc::new(if key.kid().is_none() {
            key.with_kid(kid.clone())
        } else {
            key
        });
        self.by_kid.insert(kid, key.clone());
        self.order.push(key);
        Ok(())
    }

    /// Builds a set from a JWKS, skipping (and recording) unusable entries.
    pub fn from_jwks(jwks: &Jwks) -> Self {
        let mut set = KeySet::new();
        for jwk in &jwks.keys {
            let result = VerifyingKey::from_jwk(jwk).and_then(|k| set.insert(k));
            if let Err(e) = result {
                set.skipped.push((jwk.kid.clone(), e.to_string()));
            }
        }
        set
    }

    /// The key with this `kid`.
    pub fn get(&self, kid: &str) -> Option<&Arc<VerifyingKey>> {
        self.by_kid.get(kid)
    }

    /// All keys, in insertion order.
    pub fn keys(&self) -> impl Iterator<Item = &Arc<VerifyingKey>> {
        self.order.iter()
    }

    /// Number of usable keys.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// `true` when the set has no usable key.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Entries that were left out, with their `kid` and the reason.
    pub fn skipped(&self) -> &[(Option<String>, String)] {
        &self.skipped
    }

    /// The public JWKS of the set (HMAC secrets are never included).
    pub fn to_jwks(&self) -> Jwks {
        Jwks {
            keys: self
                .order
                .iter()
                .filter_map(|k| k.to_public_jwk())
                .collect(),
        }
    }
}

#[derive(Debug, Clone)]
enum Keys {
    Single(Arc<VerifyingKey>),
    Set(Arc<KeySet>),
}

/// Verifies tokens: signature with the right key, then the claims.
///
/// Built from a key (or a [`KeySet`]) and a [`Validation`]; the build refuses
/// an empty algorithm list, algorithms the key cannot use, and weak keys.
/// Verification is synchronous and does no I/O.
#[derive(Debug, Clone)]
pub struct Verifier {
    keys: Keys,
    validation: Validation,
    header_memo: HeaderMemo,
}

impl Verifier {
    /// A verifier with a single key.
    pub fn new(key: VerifyingKey, validation: Validation) -> Result<Self, Error> {
        validation.check_config()?;
        for &alg in &validation.algorithms {
            key.check_usable_with(alg, validation.allow_weak_keys)?;
        }
        Ok(Verifier {
            keys: Keys::Single(Arc::new(key)),
            validation,
            header_memo: HeaderMemo::default(),
        })
    }

    /// A verifier that selects the key by the token's `kid`.
    pub fn with_key_set(
        keys: impl Into<Arc<KeySet>>,
        validation: Validation,
    ) -> Result<Self, Error> {
        validation.check_config()?;
        Ok(Verifier {
            keys: Keys::Set(keys.into()),
            validation,
            header_memo: HeaderMemo::default(),
        })
    }

    /// The validation settings.
    pub fn validation(&self) -> &Validation {
        &self.validation
    }

    /// Verifies `token` and deserializes its claims into `T` (any serde
    /// type, `serde_json::Value`, or a `serde_json::Map`).
    pub fn verify<T: DeserializeOwned>(&self, token: &str) -> Result<TokenData<T>, Error> {
        let (header, payload_b64) = self.verify_signature(token)?;
        let mut stack = [MaybeUninit::uninit(); PAYLOAD_STACK];
        let mut heap = Vec::new();
        let payload = b64::decode_to(payload_b64.as_bytes(), &mut stack, &mut heap, "the payload")?;
        self.token_data::<T>(payload, header)
    }

    /// Checks the claims of a verified payload, deserializes them, and
    /// returns them with the header, which is copied out of the memo only
    /// now that the token is accepted. The token's data is built where the
    /// claims are made, so they are moved once: returned on their own and
    /// moved again into it, they went through memory and stalled.
    fn token_data<T: DeserializeOwned>(
        &self,
        payload: &[u8],
        header: HeaderOf<'_>,
    ) -> Result<TokenData<T>, Error> {
        let payload = std::str::from_utf8(payload)
            .map_err(|e| Error::malformed(format!("the payload is not UTF-8 JSON ({e})")))?;
        // A flat object without serde_json (the common case), else one pass
        // through serde_json, else the two-pass path, which has the same
        // outcome and the precise error messages.
        let mut registered = Registered::default();
        if let Some(claims) = fused::flat::parse::<T>(payload, &mut registered) {
            self.validation.check_claims(&registered)?;
            return Ok(TokenData {
                header: header.into_owned(),
                claims,
            });
        }
        let mut registered = Registered::default();
        if let Some(claims) = fused::parse::<T>(payload, &mut registered) {
            self.validation.check_claims(&registered)?;
            return Ok(TokenData {
                header: header.into_owned(),
                claims,
            });
        }
        self.validation.check_claims(&Registered::parse(payload)?)?;
        let claims = serde_json::from_str::<T>(payload).map_err(|e| {
            Error::invalid_claim(
                "payload",
                format!("does not match the expected claims type: {e}"),
            )
        })?;
        Ok(TokenData {
            header: header.into_owned(),
            claims,
        })
    }

    /// Verifies `token` and returns its claims as a JSON map.
    pub fn verify_to_map(&self, token: &str) -> Result<(Header, Map<String, Value>), Error> {
        self.verify::<Map<String, Value>>(token)
            .map(|d| (d.header, d.claims))
    }

    /// Verifies the signature and the header; returns the header and the
    /// payload part, still encoded (the caller checks the claims).
    fn verify_signature<'t>(&self, token: &'t str) -> Result<(HeaderOf<'_>, &'t str), Error> {
        let v = &self.validation;
        // A token whose header is memoized has its first `.` right after it:
        // no scan for it, and no parse (parsing is a pure function of the text).
        let memo = self.header_memo.get_prefix(token.as_bytes());
        let (first, second) = separators(token, v.max_size, memo.map(|(_, len)| len))?;
        let header = match memo {
            Some((header, _)) => HeaderOf::Memo(header),
            None => HeaderOf::Parsed(Box::new(parse_header(header_part(token, first)?)?)),
        };
        let signature_b64 = signature_part(token, second)?;
        let h = header.get();
        let alg = h.alg;
        if !v.algorithms.contains(&alg) {
            return Err(Error::InvalidAlgorithm {
                reason: format!(
                    "the token uses {alg}, which is not allowed here (allowed: {})",
                    v.algorithms
                        .iter()
                        .map(|a| a.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        let key = self.select_key(h)?;
        match &self.keys {
            // Single keys were checked for every allowed algorithm at build time.
            Keys::Single(_) => {}
            Keys::Set(_) => key
                .check_usable_with(alg, v.allow_weak_keys)
                .map_err(|e| match e {
                    Error::IncompatibleKey { .. } => Error::InvalidAlgorithm {
                        reason: format!(
                            "the token uses {alg} but key `{}` is an {} key",
                            key.kid().unwrap_or("?"),
                            key.family().name()
                        ),
                    },
                    other => other,
                })?,
        }
        if let Some(bound) = key.algorithm() {
            if bound != alg {
                return Err(Error::InvalidAlgorithm {
                    reason: format!("the key is bound to {bound}; the token uses {alg}"),
                });
            }
        }
        // Decoded here rather than through `with_signature`: its result,
        // a result inside a result, went through memory and stalled.
        let mut stack = [MaybeUninit::uninit(); SIGNATURE_STACK];
        let mut heap = Vec::new();
        let signature = b64::decode_to(
            signature_b64.as_bytes(),
            &mut stack,
            &mut heap,
            "the signature",
        )?;
        key.verify_raw_inner(
            alg,
            &token.as_bytes()[..second],
            signature,
            v.allow_weak_keys,
        )?;
        if let HeaderOf::Parsed(parsed) = &header {
            self.header_memo.remember(&token[..first], parsed);
        }
        v.check_typ(h)?;
        Ok((header, &token[first + 1..second]))
    }

    fn select_key(&self, header: &Header) -> Result<&Arc<VerifyingKey>, Error> {
        match &self.keys {
            Keys::Single(key) => match (header.kid.as_deref(), key.kid()) {
                (Some(t), Some(k)) if t != k => Err(Error::UnknownKey {
                    kid: Some(t.to_owned()),
                }),
                _ => Ok(key),
            },
            Keys::Set(set) => match header.kid.as_deref() {
                Some(kid) => set.get(kid).ok_or_else(|| Error::UnknownKey {
                    kid: Some(kid.to_owned()),
                }),
                None if set.len() == 1 => Ok(&set.order[0]),
                None => Err(Error::UnknownKey { kid: None }),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::ErrorKind;

    const SECRET: &[u8] = b"a header memo test secret of 32+ bytes";

    fn memoized(verifier: &Verifier) -> usize {
        let slots = &verifier.header_memo.slots;
        slots.iter().filter(|s| s.get().is_some()).count()
    }

    fn claims() -> Value {
        json!({"sub": "alice", "exp": 4_000_000_000u64})
    }

    /// The same token with a signature of zero bytes, which never verifies.
    fn forged(token: &str) -> String {
        let (input, _) = token.rsplit_once('.').unwrap();
        format!("{input}.{}", "A".repeat(43))
    }

    #[test]
    fn header_memo_keeps_only_headers_of_verified_tokens() {
        let signer = Signer::new(SigningKey::hmac(SECRET).unwrap(), Algorithm::HS256).unwrap();
        let verifier = Verifier::new(
            VerifyingKey::hmac(SECRET).unwrap(),
            Validation::new([Algorithm::HS256]),
        )
        .unwrap();
        let token = signer.sign(&claims()).unwrap();
        let forged = forged(&token);
        let kind = |t: &str| verifier.verify::<Value>(t).unwrap_err().kind();

        // A forged token leaves nothing behind.
        assert_eq!(kind(&forged), ErrorKind::InvalidSignature);
        assert_eq!(memoized(&verifier), 0);
        // A verified one is memoized once, and a memo hit changes no outcome.
        let first = verifier.verify::<Value>(&token).unwrap();
        assert_eq!(memoized(&verifier), 1);
        let again = verifier.verify::<Value>(&token).unwrap();
        assert_eq!(again, first);
        assert_eq!(kind(&forged), ErrorKind::InvalidSignature);
        assert_eq!(memoized(&verifier), 1);
    }

    #[test]
    fn header_memo_is_per_verifier_and_bounded() {
        let mut set = KeySet::new();
        let mut signers = Vec::new();
        for i in 0..HEADER_MEMO_SLOTS + 2 {
            let kid = format!("key-{i}");
            set.insert(VerifyingKey::hmac(SECRET).unwrap().with_kid(&kid))
                .unwrap();
            let key = SigningKey::hmac(SECRET).unwrap().with_kid(kid);
            signers.push(Signer::new(key, Algorithm::HS256).unwrap());
        }
        let set = Arc::new(set);
        let verifier =
            Verifier::with_key_set(set.clone(), Validation::new([Algorithm::HS256])).unwrap();
        let other = Verifier::with_key_set(set, Validation::new([Algorithm::HS256])).unwrap();
        // More distinct headers than slots: each still verifies, every time.
        for _ in 0..2 {
            for signer in &signers {
                let token = signer.sign(&claims()).unwrap();
                let data = verifier.verify::<Value>(&token).unwrap();
                assert_eq!(data.header.kid, signer.header().kid);
            }
        }
        assert_eq!(memoized(&verifier), HEADER_MEMO_SLOTS);
        // No state is shared between verifiers (there is no global memo).
        assert_eq!(memoized(&other), 0);
    }
}
