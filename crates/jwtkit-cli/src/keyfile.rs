//! Loading keys: `--key FILE` in any form (PEM, DER, JWK, JWKS), or an HMAC
//! secret from `--secret-file` / `--secret-env`.

use std::io::Read;
use std::path::{Path, PathBuf};

use jwt_core::{Algorithm, Jwk, Jwks, KeyFamily, KeySet, SigningKey, VerifyingKey};
use zeroize::Zeroizing;

use crate::error::CliError;
use jwt_keys::file::Protection;

/// Key files larger than this are refused: no key is anywhere near it, and
/// it keeps `--key /dev/zero` from eating the machine's memory.
const MAX_KEY_FILE: u64 = 1024 * 1024;

/// Where the key comes from; exactly one must be given.
#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
pub(crate) struct KeySource {
    /// Key file: PEM (PKCS#8, PKCS#1, SEC1, SPKI public key, certificate),
    /// DER, JWK, or JWKS (verify picks the entry by the token's `kid`; sign
    /// needs a JWKS holding exactly one private key). A PEM file must hold
    /// one key: for a certificate chain, the first certificate (the leaf) is
    /// used; a file with several different keys is refused.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// HMAC secret: the raw bytes of FILE, exactly as stored (a trailing
    /// newline is part of the secret). A key (PEM, DER, JWK, `openssl -text`
    /// output) is refused: pass keys with --key.
    #[arg(long, value_name = "FILE")]
    pub secret_file: Option<PathBuf>,
    /// HMAC secret: the value of the environment variable VAR, read exactly
    /// as `--store env:VAR` reads it: surrounding whitespace is not part of
    /// the secret, and `base64url:…` is decoded (for binary secrets).
    #[arg(long, value_name = "VAR")]
    pub secret_env: Option<String>,
    /// A key store: `file:DIR`, `env:NAME` (and, when built with them,
    /// `kms:KEY`, `vault+http(s)://HOST:PORT/MOUNT/KEY`). `sign` signs with its
    /// active key; `verify` accepts every key it still publishes.
    #[arg(long, value_name = "URI")]
    pub store: Option<String>,
    /// (verify only) An identity provider's JWKS URL (https, or http on
    /// loopback); keys are selected by the token's `kid`.
    #[arg(long, value_name = "URL")]
    pub jwks_url: Option<String>,
}

/// The parsed contents of a key file, before it becomes a signing or
/// verifying key.
pub(crate) enum KeyDocument {
    /// PEM text.
    Pem(Zeroizing<Vec<u8>>),
    /// Binary DER.
    Der(Zeroizing<Vec<u8>>),
    /// One JSON Web Key.
    Jwk(Box<Jwk>),
    /// A JSON Web Key Set.
    Jwks(Jwks),
}

/// The key material named by a [`KeySource`].
pub(crate) enum KeyMaterial {
    /// A key file.
    File {
        /// The file, for error messages.
        path: PathBuf,
        /// Its contents.
        document: KeyDocument,
        /// Its metadata, from the opened file: owner and mode are checked
        /// for the use it is put to (signing or verifying). Boxed: it is large.
        meta: Box<std::fs::Metadata>,
    },
    /// An HMAC secret.
    Secret(Zeroizing<Vec<u8>>),
}

/// What a verifier checks signatures with.
pub(crate) enum VerificationKeys {
    /// One key (boxed: an HMAC key holds precomputed state and is large).
    Single(Box<VerifyingKey>),
    /// A key set, selected by the token's `kid`, and the JWKS it came from
    /// (the verifier reads the document itself, so that several keys under
    /// one kid are each tried, as for a remote JWKS).
    Set(KeySet, Jwks),
}

impl KeySource {
    /// Reads the key material.
    pub(crate) fn load(&self) -> Result<KeyMaterial, CliError> {
        if let Some(path) = &self.key {
            check_path_trust(path)?;
            let (bytes, meta) = read_limited(path).map_err(|e| cannot_read(path, &e))?;
            let document = classify(bytes).map_err(|e| e.context(key_file(path)))?;
            return Ok(KeyMaterial::File {
                path: path.clone(),
                document,
                meta: Box::new(meta),
            });
        }
        if let Some(path) = &self.secret_file {
            check_path_trust(path)?;
            let (secret, meta) = read_limited(path).map_err(|e| {
                CliError::invalid_key(format!(
                    "cannot read the secret file {}: {e}; check the path and its permissions",
                    path.display()
                ))
            })?;
            // Whoever can read the secret can forge tokens; whoever can
            // replace it chooses which tokens verify.
            protect(path, &meta, Protection::Secret)?;
            if secret.is_empty() {
                return Err(CliError::invalid_key(format!(
                    "the secret file {} is empty; generate a secret with `jwtkit keys generate --alg HS256 --out {}`",
                    path.display(),
                    path.display()
                )));
            }
            if secret.ends_with(b"\n") {
                crate::diag(format_args!(
                    "note: the secret file {} ends with a newline, which is used as part of the secret",
                    path.display()
                ));
            }
            return Ok(KeyMaterial::Secret(secret));
        }
        if let Some(var) = &self.secret_env {
            // The env store's rule, so `--secret-env S` and `--store env:S`
            // read one variable as one secret.
            return jwt_keys::env::hmac_secret_from_env(var)
                .map(KeyMaterial::Secret)
                .map_err(|e| CliError::config(format!("{e}; or use --secret-file")));
        }
        // clap's argument group makes exactly one present; --store and
        // --jwks-url are handled by the commands before they get here.
        Err(CliError::usage(
            "no key given; pass --key FILE, --secret-file FILE, --secret-env VAR or --store URI",
        ))
    }
}

impl KeyMaterial {
    /// The key to sign with. A JWKS must hold exactly one private key.
    pub(crate) fn signing_key(&self) -> Result<SigningKey, CliError> {
        match self {
            KeyMaterial::Secret(secret) => SigningKey::hmac(secret).map_err(CliError::from_setup),
            KeyMaterial::File {
                path,
                document,
                meta,
            } => {
                // A private key signs: like OpenSSH's StrictModes, only its
                // owner (this user, or root) may read or replace it.
                protect(path, meta, Protection::Secret)?;
                document
                    .signing_key()
                    .map_err(|e| e.context(key_file(path)))
            }
        }
    }

    /// The key or key set to verify with.
    pub(crate) fn verification_keys(&self) -> Result<VerificationKeys, CliError> {
        match self {
            KeyMaterial::Secret(secret) => VerifyingKey::hmac(secret)
                .map(|key| VerificationKeys::Single(Box::new(key)))
                .map_err(CliError::from_setup),
            KeyMaterial::File {
                path,
                document: KeyDocument::Jwks(jwks),
                meta,
            } => {
                // Whoever can replace a verification key chooses which
                // tokens verify.
                protect(path, meta, Protection::Integrity)?;
                let set = KeySet::from_jwks(jwks);
                // Entries that share a kid with a usable key are not skipped
                // by the verifier (it tries each key of a kid, at most 4):
                // one line for all of them, not one per entry.
                let mut shared = 0usize;
                for (kid, reason) in set.skipped() {
                    if kid.as_deref().is_some_and(|k| set.get(k).is_some()) {
                        shared += 1;
                        continue;
                    }
                    crate::diag(format_args!(
                        "warning: {}: skipped the JWKS entry {}: {reason}",
                        key_file(path),
                        kid.as_deref()
                            .map(|k| format!("with kid `{k}`"))
                            .unwrap_or_else(|| "without kid".into())
                    ));
                }
                if shared > 0 {
                    crate::diag(format_args!(
                        "warning: {}: {shared} JWKS entries share a kid with another entry; \
                         each key of a kid is tried in order (at most {})",
                        key_file(path),
                        jwt_keys::MAX_KEYS_PER_KID,
                    ));
                }
                if set.is_empty() {
                    return Err(CliError::invalid_key(format!(
                        "{}: the JWKS has no usable verification key{}",
                        key_file(path),
                        if jwks.keys.is_empty() {
                            " (its `keys` array is empty)"
                        } else {
                            " (see the warnings above)"
                        }
                    )));
                }
                Ok(VerificationKeys::Set(set, jwks.clone()))
            }
            KeyMaterial::File {
                path,
                document,
                meta,
            } => {
                protect(path, meta, Protection::Integrity)?;
                document
                    .verifying_key()
                    .map(|key| VerificationKeys::Single(Box::new(key)))
                    .map_err(|e| e.context(key_file(path)))
            }
        }
    }
}

impl KeyDocument {
    /// The private key in this document.
    pub(crate) fn signing_key(&self) -> Result<SigningKey, CliError> {
        match self {
            KeyDocument::Pem(bytes) => SigningKey::from_pem(bytes).map_err(signing_key_error),
            KeyDocument::Der(bytes) => {
                SigningKey::from_der(bytes).map_err(|e| not_a_key(bytes, signing_key_error(e)))
            }
            KeyDocument::Jwk(jwk) => SigningKey::from_jwk(jwk).map_err(CliError::from_setup),
            KeyDocument::Jwks(jwks) => {
                let private: Vec<&Jwk> = jwks.keys.iter().filter(|k| k.is_private()).collect();
                match private.as_slice() {
                    [jwk] => SigningKey::from_jwk(jwk).map_err(CliError::from_setup),
                    [] => Err(CliError::invalid_key(
                        "the JWKS holds no private key, so it cannot sign; pass the private key file \
                         (PEM or JWK) that belongs to one of its entries",
                    )),
                    several => Err(CliError::invalid_key(format!(
                        "the JWKS holds {} private keys and signing needs exactly one; \
                         pass the one you want as a JWK or PEM file",
                        several.len()
                    ))),
                }
            }
        }
    }

    /// The single public key (or HMAC secret, for an `oct` JWK) in this
    /// document; a JWKS is refused.
    pub(crate) fn verifying_key(&self) -> Result<VerifyingKey, CliError> {
        match self {
            KeyDocument::Pem(bytes) => VerifyingKey::from_pem(bytes).map_err(CliError::from_setup),
            KeyDocument::Der(bytes) => {
                VerifyingKey::from_der(bytes).map_err(|e| not_a_key(bytes, CliError::from_setup(e)))
            }
            KeyDocument::Jwk(jwk) => VerifyingKey::from_jwk(jwk).map_err(CliError::from_setup),
            KeyDocument::Jwks(_) => Err(CliError::usage(
                "this is a JWKS (a set of keys); pass a single key file (PEM, DER or JWK)",
            )),
        }
    }
}

/// `key file PATH`, for error messages.
pub(crate) fn key_file(path: &Path) -> String {
    format!("key file {}", path.display())
}

/// Reads and classifies a key file.
pub(crate) fn read_key_file(path: &Path) -> Result<KeyDocument, CliError> {
    let (bytes, _) = read_limited(path).map_err(|e| cannot_read(path, &e))?;
    classify(bytes).map_err(|e| e.context(key_file(path)))
}

/// Refuses a key or secret file that another user owns or that others may
/// write: whoever can replace it chooses which tokens are signed or verify
/// (the file key store's check, `jwt_keys::file::check_protection`). A
/// secret or private key that others may read is used, with a warning: the
/// command runs once, on a file the user chose (a long-running store or
/// `jwtkit serve`'s refresh key refuses it).
fn protect(path: &Path, meta: &std::fs::Metadata, protection: Protection) -> Result<(), CliError> {
    match jwt_keys::file::check_protection(path, meta, Protection::Integrity) {
        Ok(()) => {}
        // The store's wording speaks of key stores; say what it means here.
        Err(jwt_keys::Error::InsecurePermissions { mode, .. }) => {
            let (what, fix) = if protection == Protection::Secret {
                ("what is signed", "600")
            } else {
                ("which tokens verify", "go-w")
            };
            return Err(CliError::insecure_permissions(format!(
                "{}: mode {mode:03o} lets other users change it, and whoever can change it \
                 chooses {what}; run `chmod {fix} {}`",
                key_file(path),
                path.display()
            )));
        }
        Err(e) => return Err(CliError::from_keys(e)),
    }
    // The owner is checked above; what is left for a secret is whether
    // group or others may read it.
    if protection == Protection::Secret && readable_by_others(meta) {
        crate::diag(format_args!(
            "warning: other users can read {}, which holds a secret; run `chmod 600 {}`",
            key_file(path),
            path.display()
        ));
    }
    Ok(())
}

/// Refuses a path that another user could redirect: a symbolic link they
/// own, or a directory on the way that they own or may write (unless it is
/// sticky, like `/tmp`, where nobody may replace another's entries). The
/// file's own owner and mode are checked once it is open; this covers what
/// decides *which* file is opened (like OpenSSH's StrictModes, which checks
/// every directory up to the file).
pub(crate) fn check_path_trust(path: &Path) -> Result<(), CliError> {
    use jwt_keys::file::check_protection;
    let refuse = |e: jwt_keys::Error| {
        CliError::from_keys(e).context(format_args!("{}: the path is not safe", path.display()))
    };
    // A symbolic link's own mode means nothing; its owner chooses the target.
    if let Ok(link) = std::fs::symlink_metadata(path) {
        if link.file_type().is_symlink() {
            if let Err(e @ jwt_keys::Error::InsecureOwner { .. }) =
                check_protection(path, &link, Protection::Integrity)
            {
                return Err(refuse(e));
            }
        }
    }
    let absolute = std::path::absolute(path)
        .map_err(|e| CliError::io(format!("cannot resolve {}: {e}", path.display())))?;
    for dir in absolute.ancestors().skip(1) {
        let Ok(meta) = std::fs::metadata(dir) else {
            continue;
        };
        match check_protection(dir, &meta, Protection::Integrity) {
            Ok(()) => {}
            Err(jwt_keys::Error::InsecurePermissions { .. }) if is_sticky(&meta) => {}
            Err(e) => return Err(refuse(e)),
        }
    }
    Ok(())
}

#[cfg(unix)]
fn readable_by_others(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o077 != 0
}

#[cfg(not(unix))]
fn readable_by_others(_: &std::fs::Metadata) -> bool {
    false
}

#[cfg(unix)]
fn is_sticky(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o1000 != 0
}

#[cfg(not(unix))]
fn is_sticky(_: &std::fs::Metadata) -> bool {
    false
}

fn cannot_read(path: &Path, e: &std::io::Error) -> CliError {
    CliError::invalid_key(format!(
        "cannot read {}: {e}; check the path and its permissions",
        key_file(path)
    ))
}

fn classify(bytes: Zeroizing<Vec<u8>>) -> Result<KeyDocument, CliError> {
    if bytes.is_empty() {
        return Err(CliError::invalid_key(
            "the file is empty; expected a PEM, DER, JWK or JWKS key",
        ));
    }
    if bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        return Ok(KeyDocument::Pem(bytes));
    }
    if bytes.trim_ascii_start().starts_with(b"{") {
        let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            CliError::invalid_key(format!(
                "the file looks like JSON but does not parse ({e}); expected a JWK or a JWKS"
            ))
        })?;
        let is_member = |m: &str| value.as_object().is_some_and(|o| o.contains_key(m));
        return if is_member("keys") {
            Jwks::from_json(&bytes)
                .map(KeyDocument::Jwks)
                .map_err(CliError::from_setup)
        } else if is_member("kty") {
            Jwk::from_json(&bytes)
                .map(|jwk| KeyDocument::Jwk(Box::new(jwk)))
                .map_err(CliError::from_setup)
        } else {
            Err(CliError::invalid_key(
                "the JSON object has neither `kty` (a JWK) nor `keys` (a JWKS)",
            ))
        };
    }
    Ok(KeyDocument::Der(bytes))
}

/// jwt-core reports an RSA private key under 2048 bits as an `invalid_key`
/// that aws-lc-rs "rejected (TooSmall)", while the same key as a public key is
/// a `weak_key`. Until jwt-core maps it, the CLI reports what it is: a weak key.
fn signing_key_error(err: jwt_core::Error) -> CliError {
    if err.kind() == jwt_core::ErrorKind::InvalidKey && err.to_string().contains("(TooSmall)") {
        return CliError::weak_key(format!(
            "weak key: the RSA key has fewer than {} bits, which is too weak to sign with; \
             generate a new key with `jwtkit keys generate --alg RS256`",
            jwt_core::MIN_RSA_BITS
        ));
    }
    CliError::from_setup(err)
}

/// Rewords a DER parse failure when the data was probably never meant to be DER.
fn not_a_key(bytes: &[u8], err: CliError) -> CliError {
    if bytes.first() == Some(&0x30) {
        return err;
    }
    CliError::invalid_key(
        "not a key: expected PEM (-----BEGIN ...), DER, a JWK or a JWKS. An HMAC secret \
         is not a key file: pass it with --secret-file or --secret-env",
    )
}

/// Reads at most [`MAX_KEY_FILE`] bytes (a larger file is an error), with
/// the metadata of the file opened, so that what is checked is what is read.
/// Only a regular file is read (a FIFO would block for ever).
fn read_limited(path: &Path) -> std::io::Result<(Zeroizing<Vec<u8>>, std::fs::Metadata)> {
    let not_regular = || std::io::Error::other("not a regular file");
    if !std::fs::metadata(path)?.is_file() {
        return Err(not_regular());
    }
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(not_regular());
    }
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(MAX_KEY_FILE + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_KEY_FILE {
        return Err(std::io::Error::other(format!(
            "the file is larger than {MAX_KEY_FILE} bytes, which no key is"
        )));
    }
    Ok((bytes, meta))
}

/// The algorithms a key family can be used with, for hints.
pub(crate) fn algorithms_for(family: KeyFamily) -> Vec<Algorithm> {
    Algorithm::ALL
        .iter()
        .copied()
        .filter(|a| a.family() == family)
        .collect()
}

/// The one algorithm a key of this family can use, when there is only one
/// (EC curves, Ed25519).
pub(crate) fn only_algorithm(family: KeyFamily) -> Option<Algorithm> {
    match algorithms_for(family).as_slice() {
        [alg] => Some(*alg),
        _ => None,
    }
}
