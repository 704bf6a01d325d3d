//! # jwt-core
//!
//! Strict, fast JSON Web Token signing and verification (RFC 7515, 7518,
//! 7519, 8037, following the best current practices of RFC 8725).
//! Synchronous and free of I/O.
//!
//! ```
//! use jwt_core::{Algorithm, Signer, SigningKey, Validation, Verifier, VerifyingKey};
//!
//! // HS256 with a 32-byte (or longer) secret.
//! let secret = b"an example secret of at least 32 bytes!!";
//! let signer = Signer::new(SigningKey::hmac(secret)?, Algorithm::HS256)?;
//! let token = signer.sign(&serde_json::json!({"sub": "alice", "exp": 4_000_000_000u64}))?;
//!
//! let verifier = Verifier::new(
//!     VerifyingKey::hmac(secret)?,
//!     Validation::new([Algorithm::HS256]),
//! )?;
//! let claims = verifier.verify::<serde_json::Value>(&token)?.claims;
//! assert_eq!(claims["sub"], "alice");
//! # Ok::<(), jwt_core::Error>(())
//! ```
//!
//! ## Defaults, and what they defend against
//! - The allowed algorithms are mandatory ([`Validation::new`]); there is no
//!   `none`. A key is bound to its family (an RSA public key can never be an
//!   HMAC secret) and a JWK's `alg` binds exactly.
//! - Weak keys are refused: HMAC secrets shorter than the hash, RSA under 2048
//!   bits ([`dangerous::allow_weak_verification_keys`] exists for legacy verification).
//! - Header `jwk`, `jku`, `x5u`, `x5c` are never used; `crit` and `b64:false`
//!   are refused; only canonical unpadded base64url is accepted; duplicate JSON
//!   members are refused; tokens over 64 KiB are refused before decoding.
//! - Signing holds itself to the same rules: [`Signer::sign`] and
//!   [`signing_input`] refuse claims the verifier would refuse or read
//!   differently, and [`parse_claims`] reads claims given as JSON text.
//! - `exp` is required; `nbf`/`iat` are checked; an unexpected `aud` is refused.
//! - Unverified decoding lives in [`dangerous`].
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod algorithm;
pub mod b64;
mod claims;
pub mod dangerous;
pub mod dpop;
mod error;
mod fused;
mod header;
mod json;
mod jwk;
mod jws;
mod key;
// Benchmark scaffolding for `jwtkit speed` and the benches; not public API.
#[cfg(feature = "bench")]
#[doc(hidden)]
pub mod speed;
pub mod time;
mod validation;

pub use algorithm::{Algorithm, Curve, KeyFamily};
pub use claims::parse_claims;
pub use error::{Error, ErrorKind, Result};
pub use header::{typ_matches, Header};
pub use json::MAX_DEPTH;
pub use jwk::{Jwk, Jwks};
pub use jws::{assemble, signing_input, KeySet, Signer, TokenData, Verifier};
pub use key::{SigningKey, VerifyingKey, MIN_RSA_BITS};
pub use time::{Clock, ManualClock, SystemClock};
pub use validation::{Validation, DEFAULT_MAX_TOKEN_SIZE};
