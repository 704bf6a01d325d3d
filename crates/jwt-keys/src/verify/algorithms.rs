//! Which algorithms a key verifies with: one rule for every key source.

use jwt_core::{Algorithm, VerifyingKey};

/// Where the algorithms a key verifies with come from; see
/// [`verification_algorithms`].
#[non_exhaustive]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AlgorithmRule {
    /// The [`Validation`](jwt_core::Validation)'s list is the caller's choice (`--alg`,
    /// `Validation::new([Algorithm::RS256])`): a key bound to an algorithm
    /// verifies with it if the list has it; a key that names none verifies
    /// with every listed algorithm of its family.
    #[default]
    Listed,
    /// The keys name their algorithms (a JWK's `alg`, a store's records): a
    /// key verifies only with the algorithm it is bound to, and a key that
    /// names none verifies nothing (the error says to name the algorithms).
    /// The [`Validation`](jwt_core::Validation)'s list still bounds what is accepted: give
    /// `Validation::new(Algorithm::ALL)` for no bound.
    KeysOnly,
}

/// The algorithms `key` verifies with, given the [`Validation`](jwt_core::Validation)'s list
/// `listed` and the [`AlgorithmRule`]: the one rule of the workspace, used
/// by [`Verifier`](super::Verifier) for every key source, so `jwtkit verify` and the token
/// service agree.
///
/// - A key bound to an algorithm (a JWK's `alg`, a store's record) verifies
///   with that one only, and only if `listed` has it.
/// - A key that names none verifies with the listed algorithms of its
///   family under [`AlgorithmRule::Listed`], and with none under
///   [`AlgorithmRule::KeysOnly`]: the key's family is never used to guess.
///
/// An empty answer means the key cannot verify any token here.
///
/// ```
/// use jwt_core::{Algorithm, SigningKey};
/// use jwt_keys::{verification_algorithms, AlgorithmRule};
///
/// let key = SigningKey::generate(Algorithm::ES256).unwrap().verifying_key();
/// assert_eq!(verification_algorithms(&key, &Algorithm::ALL, AlgorithmRule::KeysOnly), []);
/// assert_eq!(
///     verification_algorithms(&key, &[Algorithm::ES256, Algorithm::RS256], AlgorithmRule::Listed),
///     [Algorithm::ES256]
/// );
/// let bound = key.with_algorithm(Algorithm::ES256).unwrap();
/// assert_eq!(
///     verification_algorithms(&bound, &Algorithm::ALL, AlgorithmRule::KeysOnly),
///     [Algorithm::ES256]
/// );
/// ```
pub fn verification_algorithms(
    key: &VerifyingKey,
    listed: &[Algorithm],
    rule: AlgorithmRule,
) -> Vec<Algorithm> {
    match (key.algorithm(), rule) {
        (Some(bound), _) => listed.iter().copied().filter(|&a| a == bound).collect(),
        (None, AlgorithmRule::Listed) => listed
            .iter()
            .copied()
            .filter(|a| a.family() == key.family())
            .collect(),
        (None, AlgorithmRule::KeysOnly) => Vec::new(),
    }
}

/// The algorithms a key published by an issuer may ever verify with: every
/// algorithm but HMAC. An issuer's key set is public; an HMAC token would
/// need a secret shared with the verifier, which no JWKS carries (a
/// symmetric key in a fetched JWKS is dropped).
pub(crate) const PUBLIC_KEY_ALGORITHMS: [Algorithm; 10] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::ES512,
    Algorithm::EdDSA,
];

/// The algorithms and rule an issuer's keys verify with when the caller
/// names none, given what the issuer's metadata declares it signs with
/// (`None`: the metadata declares nothing, or there is no metadata):
///
/// - declared: the declared public-key algorithms, under
///   [`AlgorithmRule::Listed`] (a JWK's `alg` still binds its key; a key
///   that names none verifies with the declared algorithms of its family —
///   the issuer's own statement, not a guess from the key's type);
/// - not declared: every public-key algorithm under
///   [`AlgorithmRule::KeysOnly`] (each key verifies only with its JWK's
///   `alg`; a key without one verifies nothing, and the error says to name
///   the algorithms).
///
/// An `Err` holds the reason when the issuer declares no public-key
/// algorithm at all.
pub(crate) fn issuer_default(
    declared: Option<&[Algorithm]>,
) -> Result<(Vec<Algorithm>, AlgorithmRule), String> {
    match declared {
        None => Ok((PUBLIC_KEY_ALGORITHMS.to_vec(), AlgorithmRule::KeysOnly)),
        Some(declared) => {
            let allowed: Vec<Algorithm> = PUBLIC_KEY_ALGORITHMS
                .iter()
                .copied()
                .filter(|a| declared.contains(a))
                .collect();
            if allowed.is_empty() {
                return Err(
                    "the issuer's metadata declares no public-key signing algorithm (its \
                     `*_signing_alg_values_supported` lists name none that a published key \
                     can verify); name the algorithms its tokens use for this issuer"
                        .to_owned(),
                );
            }
            Ok((allowed, AlgorithmRule::Listed))
        }
    }
}
