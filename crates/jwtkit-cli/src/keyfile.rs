//! Loading keys: `--key FILE` in any form (PEM, DER, JWK, JWKS), or an HMAC
//! secret from `--secret-file` / `--secret-env`; `-` reads either from stdin.
//!
//! One rule for a secret's text, everywhere a secret is read
//! ([`jwt_keys::env::hmac_secret_from_value`]): surrounding whitespace is not
//! part of it, and `base64url:…` (the prefix in any letter case) is decoded,
//! for binary secrets. `--secret-env`, `--store env:` and `--secret-file`
//! (a UTF-8 text file) all read it so; a file that is not UTF-8 is used
//! byte for byte, and `--secret-raw` takes the file's bytes exactly as
//! stored.

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};

use jwt_core::{Algorithm, Jwk, Jwks, KeyFamily, KeySet, SigningKey, Validation, VerifyingKey};
use zeroize::Zeroizing;

use crate::error::CliError;
use jwt_keys::file::Protection;

/// Key files larger than this are refused: no key is anywhere near it, and
/// it keeps `--key /dev/zero` from eating the machine's memory. Stdin is
/// bounded the same way.
const MAX_KEY_FILE: u64 = 1024 * 1024;

/// The path that means "read stdin" (`--key -`, `--secret-file -`).
pub(crate) const STDIN: &str = "-";

/// The prefix of a secret written as text (`jwtkit keys generate --alg HS256`).
pub(crate) const BASE64URL_PREFIX: &str = "base64url:";

/// Where the key comes from; exactly one of `--key`, `--secret-file`,
/// `--secret-env`, `--store`, `--jwks-url` must be given. The options
/// after them (`--secret-raw`, `--dangerous-allow-weak-key`) are not part
/// of that choice. Clap refuses two sources; the commands check that one
/// was given ([`KeySource::check`]), so that the message lists their own
/// sources only and the hidden `--secret` is refused with its reason.
#[derive(Debug, clap::Args)]
#[group(skip)]
#[command(group(
    clap::ArgGroup::new("key_source")
        .required(false)
        .multiple(false)
))]
pub(crate) struct KeySource {
    /// Key file, or `-` for stdin: PEM (PKCS#8, PKCS#1, SEC1, SPKI public
    /// key, certificate), DER, JWK, or JWKS (verify picks the entry by the
    /// token's `kid`; sign needs a JWKS holding exactly one private key). A
    /// PEM file must hold one key: for a certificate chain, the first
    /// certificate (the leaf) is used; a file with several different keys is
    /// refused.
    #[arg(long, value_name = "FILE", group = "key_source")]
    pub key: Option<PathBuf>,
    /// HMAC secret from FILE, or `-` for stdin. Text is read exactly as
    /// --secret-env reads a variable: surrounding whitespace (the newline
    /// `echo secret > FILE` writes, a CRLF, spaces) is not part of the
    /// secret, and `base64url:…` (prefix in any letter case) is decoded, the
    /// form `jwtkit keys generate --alg HS256` writes. A file that is not
    /// UTF-8 text is used byte for byte. --secret-raw: every byte as stored.
    /// A key (PEM, DER, JWK, `openssl -text` output) is refused: pass keys
    /// with --key.
    #[arg(long, value_name = "FILE", group = "key_source")]
    pub secret_file: Option<PathBuf>,
    /// HMAC secret: the value of the environment variable VAR, read exactly
    /// as `--store env:VAR` reads it: surrounding whitespace is not part of
    /// the secret, and `base64url:…` (prefix in any letter case) is decoded
    /// (for binary secrets).
    #[arg(long, value_name = "VAR", group = "key_source")]
    pub secret_env: Option<String>,
    /// A key store: `file:DIR`, `env:NAME` (and, when built with them,
    /// `kms:KEY`, `vault+http(s)://HOST:PORT/MOUNT/KEY`, and an HSM's
    /// `pkcs11:token=T;object=O?module-path=…&pin-source=file:…`). `sign` signs with its
    /// active key; `verify` accepts every key it still publishes.
    #[arg(long, value_name = "URI", group = "key_source")]
    pub store: Option<String>,
    /// (verify only) An identity provider's JWKS URL (https, or http on
    /// loopback); keys are selected by the token's `kid`.
    #[arg(long, value_name = "URL", group = "key_source")]
    pub jwks_url: Option<String>,
    /// (verify only) An identity provider's issuer URL, exactly as its
    /// tokens' `iss` spell it (https, or http on loopback); repeat to accept
    /// tokens of several. Its keys are found by OpenID Connect Discovery
    /// (or RFC 8414 metadata), and a token is checked only with the keys of
    /// the issuer its `iss` names.
    #[arg(long, value_name = "URL", group = "key_source")]
    pub issuer_url: Vec<String>,
    /// Refused, always: jwt-cli's `-S/--secret VALUE`. A secret on the
    /// command line shows in `ps` and the shell history; the commands say
    /// which flags to use instead.
    #[arg(
        long,
        short = 'S',
        hide = true,
        value_name = "SECRET",
        num_args = 0..=1,
        allow_hyphen_values = true
    )]
    pub secret: Option<Option<String>>,
    /// With --secret-file: the secret is the file's bytes exactly as stored,
    /// surrounding whitespace (a trailing newline) included and `base64url:`
    /// not decoded.
    // `requires` alone is not enough: clap waives a requirement that
    // conflicts with a given argument (here through the group).
    #[arg(
        long,
        requires = "secret_file",
        conflicts_with_all = ["key", "secret_env", "store", "jwks_url", "issuer_url", "secret"]
    )]
    pub secret_raw: bool,
    /// (verify only) DANGEROUS: accept keys too weak to sign with: HMAC
    /// secrets shorter than the hash (e.g. PyJWT tutorials' "secret") and
    /// 1024-2047-bit RSA keys (with RS256 and RS512 only; nothing under 1024
    /// bits), to check legacy tokens while their issuer migrates. Anyone who
    /// can guess such a secret can forge tokens; a warning is printed every
    /// time. Not with --store (a store's keys sign, so they are never weak:
    /// pass a legacy secret with --secret-env or --secret-file). `sign`
    /// always refuses weak keys.
    #[arg(long)]
    pub dangerous_allow_weak_key: bool,
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
    /// A key file (or a key read from stdin).
    File {
        /// The file, for error messages; [`STDIN`] for stdin.
        path: PathBuf,
        /// Its contents.
        document: KeyDocument,
        /// Its metadata, from the opened file: owner and mode are checked
        /// for the use it is put to (signing or verifying). Boxed: it is
        /// large. `None` for stdin, which has no owner to check: whoever
        /// piped the key chose it.
        meta: Option<Box<std::fs::Metadata>>,
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
            let (bytes, meta) = if path.as_os_str() == STDIN {
                let bytes = read_stdin("the key", "--key -")?;
                (bytes, None)
            } else {
                check_path_trust(path)?;
                let (bytes, meta) = read_limited(path).map_err(|e| cannot_read(path, &e))?;
                (bytes, Some(Box::new(meta)))
            };
            let document = classify(bytes).map_err(|e| e.context(key_file(path)))?;
            return Ok(KeyMaterial::File {
                path: path.clone(),
                document,
                meta,
            });
        }
        if let Some(path) = &self.secret_file {
            let bytes = if path.as_os_str() == STDIN {
                read_stdin("the secret", "--secret-file -")?
            } else {
                check_path_trust(path)?;
                let (bytes, meta) = read_limited(path).map_err(|e| {
                    CliError::invalid_key(format!(
                        "cannot read the secret file {}: {e}; check the path and its permissions",
                        path.display()
                    ))
                })?;
                // Whoever can read the secret can forge tokens; whoever can
                // replace it chooses which tokens verify.
                protect(path, &meta, Protection::Secret)?;
                bytes
            };
            return secret_from_file(bytes, path, self.secret_raw).map(KeyMaterial::Secret);
        }
        if let Some(var) = &self.secret_env {
            // The env store's rule, so `--secret-env S` and `--store env:S`
            // read one variable as one secret.
            return jwt_keys::env::hmac_secret_from_env(var)
                .map(KeyMaterial::Secret)
                .map_err(|e| CliError::config(format!("{e}; or use --secret-file FILE")));
        }
        // clap's argument group makes exactly one present; --store and
        // --jwks-url are handled by the commands before they get here.
        Err(CliError::usage(
            "no key given; pass --key FILE, --secret-file FILE, --secret-env VAR or --store URI",
        ))
    }

    /// Checks that a key source was given, for `usage`: the hidden
    /// `--secret VALUE` is refused with its reason, and a missing source is
    /// reported with the command's own sources.
    pub(crate) fn check(&self, usage: KeyUse) -> Result<(), CliError> {
        self.refuse_inline_secret()?;
        let given = self.key.is_some()
            || self.secret_file.is_some()
            || self.secret_env.is_some()
            || self.store.is_some()
            || self.jwks_url.is_some()
            || !self.issuer_url.is_empty();
        if given {
            return Ok(());
        }
        Err(CliError::usage(match usage {
            KeyUse::Sign => {
                "no key to sign with: pass --key FILE (a private key: PEM, DER or JWK), \
                 --secret-file FILE or --secret-env VAR (an HMAC secret), or --store URI (a key \
                 store's active key); see `jwtkit sign --help`"
            }
            KeyUse::Verify => {
                "no key to verify with: pass --key FILE (a public key or JWKS: PEM, DER, JWK), \
                 --secret-file FILE or --secret-env VAR (an HMAC secret), --store URI, \
                 --jwks-url URL (an identity provider's JWKS) or --issuer-url URL (an \
                 identity provider, found by discovery); see `jwtkit verify --help`"
            }
        }))
    }

    /// Refuses `--secret VALUE` (jwt-cli's spelling), which would put the
    /// secret where other users and the shell history see it. The value is
    /// never repeated in the message, unless it is jwt-cli's `@FILE`, a path.
    fn refuse_inline_secret(&self) -> Result<(), CliError> {
        let Some(value) = &self.secret else {
            return Ok(());
        };
        let file = value
            .as_deref()
            .and_then(|v| v.strip_prefix('@'))
            .filter(|path| !path.is_empty())
            .map(|path| format!(" (for jwt-cli's `@{path}`: --secret-file {path})"))
            .unwrap_or_default();
        Err(CliError::usage(format!(
            "--secret: jwtkit takes no secret on the command line (it would show in `ps` and \
             in the shell history); pass --secret-env VAR (the secret in an environment \
             variable) or --secret-file FILE (`-` for stdin){file}"
        )))
    }

    /// The flag that reads stdin (`--key -` or `--secret-file -`), if any:
    /// a command reading stdin for something else too must refuse the pair.
    pub(crate) fn stdin_flag(&self) -> Option<&'static str> {
        let is_stdin = |p: &Option<PathBuf>| p.as_deref().is_some_and(|p| p.as_os_str() == STDIN);
        if is_stdin(&self.key) {
            Some("--key -")
        } else if is_stdin(&self.secret_file) {
            Some("--secret-file -")
        } else {
            None
        }
    }

    /// `validation` as `--dangerous-allow-weak-key` asks: unchanged without
    /// the flag; with it, weak verification keys are accepted
    /// ([`jwt_core::dangerous::allow_weak_verification_keys`]) and a warning
    /// says so, on every run. For verification only: `sign` refuses the flag.
    // `jwtkit verify` applies it to its `Validation` (in `build_validation`).
    pub(crate) fn weak_key_validation(&self, validation: Validation) -> Validation {
        if !self.dangerous_allow_weak_key {
            return validation;
        }
        crate::diag(format_args!(
            "warning: --dangerous-allow-weak-key: weak keys are accepted (HMAC secrets shorter \
             than the hash, 1024-2047-bit RSA keys); anyone who can guess or break such a key \
             can forge tokens that pass this check. Move the issuer to a strong key \
             (`jwtkit keys generate --alg HS256`) and drop this flag"
        ));
        jwt_core::dangerous::allow_weak_verification_keys(validation)
    }
}

/// The secret in a secret file's bytes, by the rule of `--secret-file`
/// (see [`KeySource::secret_file`]); `raw` is `--secret-raw`.
fn secret_from_file(
    bytes: Zeroizing<Vec<u8>>,
    path: &Path,
    raw: bool,
) -> Result<Zeroizing<Vec<u8>>, CliError> {
    let origin = secret_origin(path);
    let empty = |what: &str| {
        CliError::invalid_key(format!(
            "{origin} {what}; generate a secret with `jwtkit keys generate --alg HS256 --out FILE`"
        ))
    };
    if bytes.is_empty() {
        return Err(empty("is empty"));
    }
    let text = match std::str::from_utf8(&bytes) {
        Ok(text) if !raw => text,
        // Bytes as stored: --secret-raw, or a binary secret (such as the
        // raw bytes older `jwtkit keys generate --out` wrote), whose last
        // byte may be 0x0a by chance.
        _ => {
            if raw && bytes.last().is_some_and(u8::is_ascii_whitespace) {
                crate::diag(format_args!(
                    "note: {origin} ends with whitespace (a newline?), which --secret-raw keeps \
                     as part of the secret"
                ));
            }
            return Ok(bytes);
        }
    };
    // The rule of `--secret-env` and `env:` stores, from jwt-keys itself,
    // so that one text is one secret however it is passed.
    let secret = jwt_keys::env::hmac_secret_from_value(text).map_err(|e| {
        // A bad `base64url:` text is a bad key, never a "malformed token".
        let reason = match e {
            jwt_core::Error::InvalidKey { reason } => reason,
            other => other.to_string(),
        };
        CliError::invalid_key(format!(
            "{origin}: {reason} (or pass --secret-raw to use the file's bytes themselves as the \
             secret)"
        ))
    })?;
    if secret.is_empty() {
        let what = if text.trim().is_empty() {
            "is empty (it holds only whitespace)"
        } else {
            "holds an empty `base64url:` secret"
        };
        return Err(empty(what));
    }
    Ok(secret)
}

/// `the secret file F` or `the secret read from stdin`, for messages.
fn secret_origin(path: &Path) -> String {
    if path.as_os_str() == STDIN {
        "the secret read from stdin".to_owned()
    } else {
        format!("the secret file {}", path.display())
    }
}

/// Reads stdin for `flag` (`--key -`, `--claims -`, …), at most
/// [`MAX_KEY_FILE`] bytes. A terminal is refused rather than waited on.
pub(crate) fn read_stdin(what: &str, flag: &str) -> Result<Zeroizing<Vec<u8>>, CliError> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Err(CliError::usage(format!(
            "{flag} reads {what} from stdin, but stdin is a terminal; pipe it in \
             (e.g. `cat FILE | jwtkit …`) or name a file instead of `-`"
        )));
    }
    let mut bytes = Zeroizing::new(Vec::new());
    stdin
        .lock()
        .take(MAX_KEY_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| CliError::io(format!("{flag}: cannot read {what} from stdin: {e}")))?;
    if bytes.len() as u64 > MAX_KEY_FILE {
        return Err(CliError::usage(format!(
            "{flag}: stdin holds more than {MAX_KEY_FILE} bytes, more than {what} can be; \
             check what is piped in"
        )));
    }
    if bytes.is_empty() {
        return Err(CliError::usage(format!(
            "{flag}: stdin is empty; pipe {what} in, or name a file instead of `-`"
        )));
    }
    Ok(bytes)
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
                // Parsed first: a public key cannot sign (that is the
                // error), and a world-readable public key file is no leak.
                let key = document
                    .signing_key()
                    .map_err(|e| e.context(key_file(path)))?;
                // A private key signs: like OpenSSH's StrictModes, only its
                // owner (this user, or root) may read or replace it.
                if let Some(meta) = meta {
                    protect(path, meta, Protection::Secret)?;
                }
                Ok(key)
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
                if let Some(meta) = meta {
                    protect(path, meta, Protection::Integrity)?;
                }
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
                if let Some(meta) = meta {
                    protect(path, meta, Protection::Integrity)?;
                }
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

/// `key file PATH` (or `the key read from stdin`), for error messages.
pub(crate) fn key_file(path: &Path) -> String {
    if path.as_os_str() == STDIN {
        return "the key read from stdin".to_owned();
    }
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
    match path_trust_problem(path)? {
        None => Ok(()),
        Some(e) => Err(CliError::from_keys(e)
            .context(format_args!("{}: the path is not safe", path.display()))),
    }
}

/// What [`check_path_trust`] refuses, as the file store reports it (the
/// link or directory at fault, its mode or owner), for a caller that words
/// the refusal for its own use (`keys generate --out`); `None` when the
/// path is safe.
pub(crate) fn path_trust_problem(path: &Path) -> Result<Option<jwt_keys::Error>, CliError> {
    use jwt_keys::file::check_protection;
    // A symbolic link's own mode means nothing; its owner chooses the target.
    if let Ok(link) = std::fs::symlink_metadata(path) {
        if link.file_type().is_symlink() {
            if let Err(e @ jwt_keys::Error::InsecureOwner { .. }) =
                check_protection(path, &link, Protection::Integrity)
            {
                return Ok(Some(e));
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
            Err(e) => return Ok(Some(e)),
        }
    }
    Ok(None)
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
    let public = err.kind() == jwt_core::ErrorKind::InvalidKey
        && err.to_string().contains("which can only verify");
    let err = CliError::from_setup(err);
    if public {
        // Say where the private key usually is, and what this file is for.
        let message = format!(
            "{}: pass the private key file instead (the one `openssl genrsa`, `openssl \
             ecparam -genkey` or `jwtkit keys generate` wrote); this file can verify tokens: \
             `jwtkit verify --key FILE`",
            err.message()
        );
        return err.with_message(message);
    }
    err
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

/// What a key is put to, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyUse {
    /// `jwtkit sign`: a private key or a secret.
    Sign,
    /// `jwtkit verify`: a public key or a secret.
    Verify,
}

/// A key of `family` with its article, for messages: `an RSA private key`,
/// `an EC P-256 key`, `an Ed25519 key`, `an HMAC secret`.
pub(crate) fn a_key(family: KeyFamily, usage: KeyUse) -> String {
    match (family, usage) {
        (KeyFamily::Hmac, _) => "an HMAC secret".to_owned(),
        (family, KeyUse::Sign) => format!("{} private key", with_article(family.name())),
        (family, KeyUse::Verify) => format!("{} key", with_article(family.name())),
    }
}

/// `name` after `a` or `an`, by how it is read aloud: the key type names
/// (RSA, EC, Ed25519, HMAC) all start with a vowel sound.
pub(crate) fn with_article(name: &str) -> String {
    // Letters whose name starts with a vowel sound when spelled out (R is
    // "ar", H "aitch", …), plus the vowels.
    let an = name
        .chars()
        .next()
        .is_some_and(|c| "AEFHILMNORSXaeiou".contains(c));
    format!("{} {name}", if an { "an" } else { "a" })
}

/// The algorithms of a key family as `A, B or C`.
fn alternatives(family: KeyFamily) -> String {
    let names: Vec<&str> = algorithms_for(family)
        .into_iter()
        .map(Algorithm::as_str)
        .collect();
    match names.split_last() {
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// The error for a key that cannot be used with `alg` (another key type):
/// what the key is, what `alg` needs instead and which flag passes it, and
/// the algorithms this key does fit. Kind `invalid_key` (exit 2).
pub(crate) fn mismatch(family: KeyFamily, alg: Algorithm, usage: KeyUse) -> CliError {
    let key = a_key(family, usage);
    let fits = alternatives(family);
    let verb = match usage {
        KeyUse::Sign => "signs",
        KeyUse::Verify => "verifies",
    };
    let message = match (family, alg.family()) {
        (KeyFamily::Hmac, wanted) => format!(
            "{key} {verb} HS256, HS384 or HS512 only, not {alg}: {alg} needs {}; pass it with \
             --key FILE{}",
            a_key(wanted, usage),
            if usage == KeyUse::Verify {
                " (or --jwks-url URL)"
            } else {
                ""
            }
        ),
        (_, KeyFamily::Hmac) => format!(
            "a key file (here {key}) is never an HMAC secret: {alg} takes a shared secret: pass \
             --secret-env VAR or --secret-file FILE; for this key use --alg {fits}"
        ),
        (_, wanted) => format!(
            "{key} cannot be used with {alg}, which needs {}; for this key use --alg {fits}",
            a_key(wanted, usage)
        ),
    };
    CliError::invalid_key(format!("key/algorithm mismatch: {message}"))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn source(dangerous_allow_weak_key: bool) -> KeySource {
        KeySource {
            key: None,
            secret_file: None,
            secret_env: Some("UNUSED".into()),
            store: None,
            jwks_url: None,
            issuer_url: Vec::new(),
            secret: None,
            secret_raw: false,
            dangerous_allow_weak_key,
        }
    }

    /// What `jwtkit verify` does with the flag: the same verifier
    /// (`jwt_keys::Verifier`, one fixed key), with the validation passed
    /// through [`KeySource::weak_key_validation`].
    fn verify_legacy(allow: bool) -> Result<(), jwt_keys::Error> {
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &serde_json::json!({"sub": "alice", "exp": 4_000_000_000u64}),
            &jsonwebtoken::EncodingKey::from_secret(b"secret"),
        )
        .unwrap();
        let key = VerifyingKey::hmac(b"secret").unwrap();
        let validation = source(allow).weak_key_validation(Validation::new([Algorithm::HS256]));
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let verifier = jwt_keys::Verifier::builder(
                    jwt_keys::KeySource::Key(Box::new(key)),
                    validation,
                )
                .build()?;
                let data = verifier
                    .verify::<serde_json::Map<String, serde_json::Value>>(&token)
                    .await?;
                assert_eq!(data.claims["sub"], "alice");
                Ok(())
            })
    }

    #[test]
    fn key_types_take_an() {
        use jwt_core::Curve;
        assert_eq!(a_key(KeyFamily::Rsa, KeyUse::Sign), "an RSA private key");
        assert_eq!(
            a_key(KeyFamily::Ec(Curve::P384), KeyUse::Verify),
            "an EC P-384 key"
        );
        assert_eq!(a_key(KeyFamily::Ed25519, KeyUse::Verify), "an Ed25519 key");
        assert_eq!(a_key(KeyFamily::Hmac, KeyUse::Sign), "an HMAC secret");
        assert_eq!(with_article("key"), "a key");
    }

    #[test]
    fn mismatches_say_what_fits() {
        use jwt_core::Curve;
        let m = |f, a, u| mismatch(f, a, u).message().to_owned();
        let rsa_hs = m(KeyFamily::Rsa, Algorithm::HS256, KeyUse::Sign);
        assert_eq!(
            rsa_hs,
            "key/algorithm mismatch: a key file (here an RSA private key) is never an HMAC \
             secret: HS256 takes a shared secret: pass --secret-env VAR or --secret-file FILE; \
             for this key use --alg RS256, RS384, RS512, PS256, PS384 or PS512"
        );
        let hs_rs = m(KeyFamily::Hmac, Algorithm::RS256, KeyUse::Verify);
        assert!(
            hs_rs.contains(
                "an HMAC secret verifies HS256, HS384 or HS512 only, not RS256: RS256 \
                            needs an RSA key; pass it with --key FILE (or --jwks-url URL)"
            ),
            "{hs_rs}"
        );
        let ec = m(KeyFamily::Ec(Curve::P256), Algorithm::ES384, KeyUse::Sign);
        assert!(
            ec.contains(
                "an EC P-256 private key cannot be used with ES384, which needs an EC \
                         P-384 private key; for this key use --alg ES256"
            ),
            "{ec}"
        );
        assert_eq!(
            mismatch(KeyFamily::Rsa, Algorithm::HS256, KeyUse::Sign).kind(),
            "invalid_key"
        );
    }

    #[test]
    fn the_weak_key_flag_lets_a_short_secret_verify() {
        let err = verify_legacy(false).unwrap_err();
        assert_eq!(err.kind().as_str(), "weak_key", "{err}");
        verify_legacy(true).unwrap();
    }

    #[test]
    fn weak_key_validation_changes_nothing_without_the_flag() {
        let validation = Validation::new([Algorithm::HS256]);
        let key = VerifyingKey::hmac(b"secret").unwrap();
        let unchanged = source(false).weak_key_validation(validation);
        let err = jwt_core::Verifier::new(key, unchanged).unwrap_err();
        assert_eq!(err.kind(), jwt_core::ErrorKind::WeakKey);
    }
}
