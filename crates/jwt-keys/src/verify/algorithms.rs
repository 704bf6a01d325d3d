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
