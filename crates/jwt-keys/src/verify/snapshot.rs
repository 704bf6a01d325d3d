//! One loaded key set: the verifiers over its keys, the kids that name no
//! algorithm, when each retiring key's grace ends, and the validation and
//! algorithm rule it verifies under (fixed per verifier, except that an
//! issuer found by discovery narrows the algorithms to the ones its
//! metadata declares, at each load).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use jwt_core::{ErrorKind, KeySet, TokenData, Validation, VerifyingKey};
use serde::de::DeserializeOwned;

use super::{verification_algorithms, AlgorithmRule, Input};
use crate::error::{Error, Result};

/// When a snapshot was loaded and how long it may serve.
#[derive(Debug, Clone, Copy)]
pub(super) struct Times {
    pub(super) loaded_at: i64,
    /// Refresh (in the background) from `fresh_until - refresh_ahead` on.
    pub(super) fresh_until: i64,
    /// Unusable from then on: past `max_stale`.
    pub(super) hard_until: i64,
}

impl Times {
    pub(super) fn forever(now: i64) -> Times {
        Times {
            loaded_at: now,
            fresh_until: i64::MAX,
            hard_until: i64::MAX,
        }
    }
}

pub(super) struct Snapshot {
    /// `None` when no key can verify (every key names no algorithm under
    /// [`AlgorithmRule::KeysOnly`], or every retiring key's grace ended).
    pub(super) verifier: Option<jwt_core::Verifier>,
    /// Verifiers over the second, third, … key of kids that name several
    /// (see [`JwksKeys`](crate::remote::JwksKeys)); empty when every kid is unique.
    pub(super) alternates: Vec<jwt_core::Verifier>,
    /// The kids of the keys that verify.
    pub(super) kids: Vec<String>,
    /// Kids left out because they name no algorithm and the rule is
    /// [`AlgorithmRule::KeysOnly`]: a token naming one gets an error that
    /// says to name the algorithms, not `unknown_key`.
    pub(super) unbound: Vec<String>,
    pub(super) input: Input,
    /// Each retiring key with the end of its grace.
    pub(super) retiring: Vec<(String, i64)>,
    /// The earliest grace end still ahead: from then on the snapshot is
    /// rebuilt without that key (no I/O).
    pub(super) prune_at: i64,
    pub(super) times: Times,
    /// What the keys that verify are: equal for two snapshots whose keys
    /// verify exactly the same tokens. A cached token verified under
    /// another digest is verified again (see `token_cache`).
    pub(super) key_digest: [u8; 32],
    /// The validation the verifiers were built with.
    pub(super) validation: Validation,
    /// The algorithm rule the keys were filtered with.
    pub(super) rule: AlgorithmRule,
}

impl Snapshot {
    /// Builds the verifiers for `input` at `now`, leaving out the retiring
    /// keys whose grace has ended and, under [`AlgorithmRule::KeysOnly`],
    /// the keys that name no algorithm.
    pub(super) fn new(
        input: Input,
        retiring: Vec<(String, i64)>,
        validation: Validation,
        rule: AlgorithmRule,
        times: Times,
        now: i64,
    ) -> Result<Snapshot> {
        let ended = |kid: Option<&str>| {
            kid.is_some_and(|kid| retiring.iter().any(|(k, at)| k == kid && *at <= now))
        };
        let mut unbound = Vec::new();
        let mut digest = KeyDigest::new();
        let (verifier, alternates, kids) = match &input {
            Input::Single(key) => {
                digest.key(key);
                let verifier =
                    jwt_core::Verifier::new(VerifyingKey::clone(key), validation.clone())?;
                (
                    Some(verifier),
                    Vec::new(),
                    key.kid().map(str::to_owned).into_iter().collect(),
                )
            }
            Input::Set(keys) => {
                let mut keep = |key: &VerifyingKey| {
                    if ended(key.kid()) {
                        return false;
                    }
                    if rule == AlgorithmRule::KeysOnly && key.algorithm().is_none() {
                        let kid = key.kid().unwrap_or("?").to_owned();
                        if !unbound.contains(&kid) {
                            unbound.push(kid);
                        }
                        return false;
                    }
                    true
                };
                let primary = filtered(&keys.primary, &mut keep)?;
                digest.set(&primary);
                let mut alternates = Vec::new();
                for set in &keys.alternates {
                    let set = filtered(set, &mut keep)?;
                    if !set.is_empty() {
                        digest.set(&set);
                        alternates.push(jwt_core::Verifier::with_key_set(set, validation.clone())?);
                    }
                }
                let kids: Vec<String> = primary
                    .keys()
                    .filter_map(|k| k.kid().map(str::to_owned))
                    .collect();
                let verifier = if primary.is_empty() {
                    None
                } else {
                    Some(jwt_core::Verifier::with_key_set(
                        primary,
                        validation.clone(),
                    )?)
                };
                (verifier, alternates, kids)
            }
        };
        let prune_at = retiring
            .iter()
            .map(|(_, at)| *at)
            .filter(|&at| at > now)
            .min()
            .unwrap_or(i64::MAX);
        for kid in &unbound {
            digest.field(b'u', kid.as_bytes());
        }
        // Which algorithms may verify is part of what the keys verify: a
        // narrowed list (an issuer's metadata changed) is another key set.
        for alg in validation.algorithms() {
            digest.field(b'v', alg.as_str().as_bytes());
        }
        digest.field(b'r', &[u8::from(rule == AlgorithmRule::KeysOnly)]);
        Ok(Snapshot {
            verifier,
            alternates,
            kids,
            unbound,
            input,
            retiring,
            prune_at,
            times,
            key_digest: digest.finish(),
            validation,
            rule,
        })
    }

    /// The same keys at `now` (a retiring key's grace ended): CPU only.
    pub(super) fn pruned(&self, now: i64) -> Result<Snapshot> {
        Snapshot::new(
            self.input.clone(),
            self.retiring.clone(),
            self.validation.clone(),
            self.rule,
            self.times,
            now,
        )
    }

    /// A fixed source must hold at least one key that can verify.
    pub(super) fn check_usable(&self) -> Result<()> {
        let (validation, rule) = (&self.validation, self.rule);
        if self.verifier.is_some() {
            let usable = match &self.input {
                Input::Single(_) => true,
                Input::Set(keys) => keys
                    .primary
                    .keys()
                    .any(|k| !verification_algorithms(k, validation.algorithms(), rule).is_empty()),
            };
            if usable {
                return Ok(());
            }
            let names: Vec<&str> = validation.algorithms().iter().map(|a| a.as_str()).collect();
            return Err(Error::Core(jwt_core::Error::InvalidKey {
                reason: format!(
                    "no key of the set can verify {}: each key is bound to another algorithm or \
                     is of another family; check the allowed algorithms against the keys",
                    names.join("/")
                ),
            }));
        }
        Err(Error::Core(unbound_error(&self.unbound)))
    }

    /// Verifies with the key the token's `kid` names; when the JWKS names
    /// several keys with that `kid`, tries the others in order until one
    /// verifies the signature. The error of a failed search is the most
    /// telling one: a bad signature over an algorithm mismatch.
    pub(super) fn verify<T: DeserializeOwned>(
        &self,
        token: &str,
    ) -> std::result::Result<TokenData<T>, jwt_core::Error> {
        let Some(verifier) = &self.verifier else {
            return Err(self.no_key(token));
        };
        let first = match verifier.verify::<T>(token) {
            Ok(data) => return Ok(data),
            Err(e) => e,
        };
        if let jwt_core::Error::UnknownKey { kid } = &first {
            if let Some(e) = self.unbound_key(kid.as_deref()) {
                return Err(e);
            }
        }
        if self.alternates.is_empty() || !another_key_may_verify(&first) {
            return Err(first);
        }
        // Only a token that names its kid: without one, a set with a single
        // key uses it, and an alternate set must not stand in for it.
        let named = jwt_core::dangerous::insecure_decode_header(token)
            .is_ok_and(|header| header.kid.is_some());
        if !named {
            return Err(first);
        }
        let mut best = first;
        for alternate in &self.alternates {
            match alternate.verify::<T>(token) {
                Ok(data) => return Ok(data),
                // Sets are filled in order: no further key has this kid.
                Err(jwt_core::Error::UnknownKey { .. }) => break,
                Err(e) if another_key_may_verify(&e) => {
                    if e.kind() == ErrorKind::InvalidSignature
                        && best.kind() != ErrorKind::InvalidSignature
                    {
                        best = e;
                    }
                }
                // The signature verified with this key: the claims decide.
                Err(e) => return Err(e),
            }
        }
        Err(best)
    }

    /// The key a token naming `kid` (or none) is verified with first — for
    /// a `kid` that names several keys, the first of them — and the
    /// algorithms it verifies with.
    #[cfg(feature = "jsonwebtoken")]
    pub(super) fn key(
        &self,
        kid: Option<&str>,
    ) -> std::result::Result<super::SelectedKey, jwt_core::Error> {
        if let Some(e) = self.unbound_key(kid) {
            return Err(e);
        }
        let unknown = || jwt_core::Error::UnknownKey {
            kid: kid.map(str::to_owned),
        };
        match &self.input {
            Input::Single(key) => match (kid, key.kid()) {
                (Some(wanted), Some(own)) if wanted != own => Err(unknown()),
                // A single key verifies with exactly the validation's algorithms.
                _ => Ok(super::SelectedKey {
                    key: Arc::new(VerifyingKey::clone(key)),
                    algorithms: self.validation.algorithms().to_vec(),
                }),
            },
            Input::Set(keys) => {
                // Only the keys that verify now (a retiring key past its
                // grace is still in `input`, but no longer in `kids`).
                let kid = match kid {
                    Some(kid) if self.kids.iter().any(|k| k == kid) => kid,
                    None if self.kids.len() == 1 => self.kids[0].as_str(),
                    _ => return Err(unknown()),
                };
                let key = keys.primary.get(kid).ok_or_else(unknown)?;
                Ok(super::SelectedKey {
                    key: key.clone(),
                    algorithms: verification_algorithms(
                        key,
                        self.validation.algorithms(),
                        self.rule,
                    ),
                })
            }
        }
    }

    /// The error for a token when no key can verify at all.
    pub(super) fn no_key(&self, token: &str) -> jwt_core::Error {
        let kid = match jwt_core::dangerous::insecure_decode_header(token) {
            Ok(header) => header.kid,
            Err(e) => return e,
        };
        self.unbound_key(kid.as_deref())
            .unwrap_or(jwt_core::Error::UnknownKey { kid })
    }

    /// The `config` error for a token whose key names no algorithm under
    /// [`AlgorithmRule::KeysOnly`] (a token without `kid` when no other key
    /// could serve it).
    pub(super) fn unbound_key(&self, kid: Option<&str>) -> Option<jwt_core::Error> {
        match kid {
            Some(kid) if self.unbound.iter().any(|k| k == kid) => {
                Some(unbound_error(&[kid.to_owned()]))
            }
            None if self.kids.is_empty() && !self.unbound.is_empty() => {
                Some(unbound_error(&self.unbound))
            }
            _ => None,
        }
    }
}

/// The SHA-256 over the keys of a snapshot, in verification order: each
/// key's `kid`, bound algorithm and RFC 7638 thumbprint (for an HMAC
/// secret, of its `oct` JWK: a hash, never the secret), and each set's
/// boundary. A key whose thumbprint cannot be computed makes the digest
/// unique to this snapshot, so nothing cached carries over.
struct KeyDigest {
    ctx: aws_lc_rs::digest::Context,
}

/// Makes a digest unique when a thumbprint fails.
static UNIQUE: AtomicU64 = AtomicU64::new(0);

impl KeyDigest {
    fn new() -> KeyDigest {
        KeyDigest {
            ctx: aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256),
        }
    }

    /// One tagged, length-prefixed field: no two key sets encode alike.
    fn field(&mut self, tag: u8, bytes: &[u8]) {
        self.ctx.update(&[tag]);
        self.ctx.update(&(bytes.len() as u64).to_be_bytes());
        self.ctx.update(bytes);
    }

    fn key(&mut self, key: &VerifyingKey) {
        self.field(b'k', key.kid().unwrap_or("").as_bytes());
        self.field(b'n', &[u8::from(key.kid().is_some())]);
        self.field(b'a', key.algorithm().map_or("", |a| a.as_str()).as_bytes());
        match key.thumbprint() {
            Ok(t) => self.field(b't', t.as_bytes()),
            Err(_) => {
                let n = UNIQUE.fetch_add(1, Ordering::Relaxed);
                self.field(b'!', &n.to_be_bytes());
            }
        }
    }

    fn set(&mut self, set: &KeySet) {
        self.field(b's', &(set.len() as u64).to_be_bytes());
        for key in set.keys() {
            self.key(key);
        }
    }

    fn finish(self) -> [u8; 32] {
        let digest = self.ctx.finish();
        let mut out = [0u8; 32];
        out.copy_from_slice(digest.as_ref());
        out
    }
}

/// `set` without the keys `keep` refuses (the same set when it keeps all).
pub(super) fn filtered(
    set: &KeySet,
    keep: &mut impl FnMut(&VerifyingKey) -> bool,
) -> Result<KeySet> {
    let mut all = true;
    let kept: Vec<&Arc<VerifyingKey>> = set
        .keys()
        .filter(|k| {
            let kept = keep(k);
            all &= kept;
            kept
        })
        .collect();
    if all {
        return Ok(set.clone());
    }
    let mut out = KeySet::new();
    for key in kept {
        out.insert(VerifyingKey::clone(key))?;
    }
    Ok(out)
}

pub(super) fn unbound_error(kids: &[String]) -> jwt_core::Error {
    let names: Vec<String> = kids
        .iter()
        .map(|k| format!("`{}`", k.escape_debug()))
        .collect();
    jwt_core::Error::Config {
        reason: format!(
            "the key {} names no algorithm (no `alg`), and the algorithms come from the keys: \
             name the algorithms the issuer signs with; a key's type is never used to guess one",
            names.join(", ")
        ),
    }
}

/// Whether another key under the same `kid` could verify a token that this
/// error rejected: the signature did not match, or the key does not fit
/// the token's algorithm.
pub(super) fn another_key_may_verify(e: &jwt_core::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::InvalidSignature
            | ErrorKind::InvalidAlgorithm
            | ErrorKind::InvalidKey
            | ErrorKind::WeakKey
    )
}
