//! The PyJWT guide's workflow, end to end, in jwtkit: the steps a user
//! arriving from a PyJWT/python-jose tutorial takes, run against the real
//! `jwtkit` binary, real keys made by the guide's `openssl` commands, a
//! loopback JWKS endpoint, `jwtkit serve` on the memory store and on Redis,
//! and PyJWT itself for interop both ways.
//!
//! | module | the guide's step |
//! |---|---|
//! | `hs256` | HS256 with a secret from an env var; audience, issuer, expiry and leeway, required claims |
//! | `pem_keys` | RS256 and ES256 with `openssl genrsa` / `openssl ecparam -genkey` (SEC1) keys |
//! | `jwks` | a provider's JWKS by `kid`, and the provider rotating its keys (CLI and a long-lived library verifier) |
//! | `refresh` | the refresh-token flow through `jwtkit serve`: memory and Redis |
//! | `store_rotation` | a key store with rotation and audit |
//! | `pyjwt` | PyJWT-made tokens verified by jwtkit, jwtkit-made tokens decoded by PyJWT |
//! | `vault_dogfood` | a workload token from one `jwtkit serve` logs a second jwtkit into OpenBao (issue 17) |
//!
//! Servers and tools come from the environment as for every jwtkit test
//! (`docs/testing.md`): Redis from `JWTKIT_TEST_REDIS_URL`, Python from
//! `JWTKIT_TEST_PYTHON` or `.services/venv`. Locally a missing one is a loud
//! skip; under `scripts/test.sh` or CI, a failure.
//!
//! Run: `cargo test -p jwtkit-cli --test guide`.
#![forbid(unsafe_code)]

#[path = "../../crates/jwtkit-cli/tests/common/mod.rs"]
mod common;
#[path = "../support/mod.rs"]
mod support;

mod hs256;
mod jwks;
mod pem_keys;
mod pyjwt;
mod refresh;
mod store_rotation;
mod vault_dogfood;
