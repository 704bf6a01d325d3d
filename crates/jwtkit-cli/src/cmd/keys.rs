//! `jwtkit keys`: generate keys, publish their public parts as a JWKS, and
//! compute RFC 7638 thumbprints.

use std::collections::HashSet;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwt_core::{Algorithm, Jwk, Jwks, KeyFamily, SigningKey};
use zeroize::Zeroizing;

use crate::error::CliError;
use crate::keyfile::{self, key_file, only_algorithm, KeyDocument, KeyUse};

/// `jwtkit keys` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum KeysCommand {
    /// Generate a key: PKCS#8 PEM for asymmetric algorithms; for HS*, 64 random
    /// bytes written as one line of text, `base64url:…`, which --secret-file,
    /// --secret-env and `--store env:` decode.
    Generate(GenerateArgs),
    /// Print a JWKS of the public parts of the given key files, in order.
    Jwks(JwksArgs),
    /// Print the RFC 7638 SHA-256 thumbprint of a key.
    Thumbprint(ThumbprintArgs),
}

/// Arguments of `jwtkit keys generate`.
#[derive(Debug, clap::Args)]
pub(crate) struct GenerateArgs {
    /// The algorithm the key is for (HS256 … EdDSA; RS*/PS* get RSA-2048).
    #[arg(long, value_name = "ALG", alias = "algorithm")]
    alg: String,
    /// Write the key to FILE (created with mode 0600; an existing file is
    /// never overwritten) instead of stdout; `-` is stdout. A FILE in a
    /// directory other users may write (unless sticky, like /tmp) or own is
    /// refused, as `--secret-file` and `--key` refuse to read it.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// Arguments of `jwtkit keys jwks`.
#[derive(Debug, clap::Args)]
pub(crate) struct JwksArgs {
    /// Key files (PEM, DER or JWK; public or private). HMAC secrets are refused.
    #[arg(value_name = "FILE", required = true)]
    files: Vec<PathBuf>,
    /// Write `"alg": ALG` into every entry, binding each key to that
    /// algorithm: verifiers (`jwtkit verify --key JWKS`, `--jwks-url`) then
    /// need no --alg, and refuse tokens using another. Each key must fit
    /// it, and a key (JWK) that declares another `alg` is refused. Without
    /// it, `alg` is written only where the key declares one or its type
    /// allows only one (EC, Ed25519).
    #[arg(long, value_name = "ALG", alias = "algorithm")]
    alg: Option<String>,
}

/// Arguments of `jwtkit keys thumbprint`.
#[derive(Debug, clap::Args)]
pub(crate) struct ThumbprintArgs {
    /// Key file (PEM, DER or JWK).
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

/// Runs a `jwtkit keys` subcommand.
pub(crate) fn run(command: &KeysCommand) -> Result<(), CliError> {
    match command {
        KeysCommand::Generate(args) => generate(args),
        KeysCommand::Jwks(args) => jwks(args),
        KeysCommand::Thumbprint(args) => thumbprint(args),
    }
}

fn generate(args: &GenerateArgs) -> Result<(), CliError> {
    let alg = super::parse_algorithm(&args.alg)?;
    // `-` is stdout, as `--key -` is stdin: never a file named `-`.
    let out = args
        .out
        .as_deref()
        .filter(|path| path.as_os_str() != keyfile::STDIN);
    if let Some(path) = out {
        check_out_path(path)?;
    }
    let key = SigningKey::generate(alg).map_err(CliError::from_setup)?;
    let text = match key.hmac_secret() {
        // Text that survives a shell, an environment variable and a
        // terminal, never raw bytes: every secret reader decodes it.
        Some(secret) => Zeroizing::new(format!(
            "{}{}\n",
            keyfile::BASE64URL_PREFIX,
            URL_SAFE_NO_PAD.encode(secret)
        )),
        // jwt-core's PEM has CRLF line endings (the `pem` crate's default);
        // key files on Unix conventionally use LF, which every parser accepts.
        None => Zeroizing::new(
            key.to_pkcs8_pem()
                .map_err(CliError::from_setup)?
                .replace("\r\n", "\n"),
        ),
    };
    match out {
        Some(path) => {
            write_new_private_file(path, text.as_bytes())?;
            crate::diag(format_args!(
                "wrote a new {alg} key to {} (mode 0600){}",
                path.display(),
                if alg.is_symmetric() {
                    format!(
                        "; use it with --secret-file {}, or export its line as the value \
                         of --secret-env VAR",
                        path.display()
                    )
                } else {
                    format!(
                        "; publish its public part with `jwtkit keys jwks {}`",
                        path.display()
                    )
                }
            ));
            Ok(())
        }
        None => {
            if std::io::stdout().is_terminal() {
                // A private key is as secret as an HMAC secret.
                let what = if alg.is_symmetric() {
                    "a secret"
                } else {
                    "a private key"
                };
                crate::diag(format_args!(
                    "warning: {what} is being shown on the terminal; use --out FILE to keep it \
                     out of the scrollback"
                ));
            }
            crate::write_stdout(text.as_bytes())
        }
    }
}

/// Refuses an `--out` path another user could redirect or replace, before
/// the key exists: `sign --secret-file` and `--key` refuse to read a key
/// from there ([`keyfile::check_path_trust`]), so it would be a key nobody
/// can use, or one someone else can swap.
fn check_out_path(path: &Path) -> Result<(), CliError> {
    let Some(problem) = keyfile::path_trust_problem(path)? else {
        return Ok(());
    };
    let out = path.display();
    let fix = "write the key into a directory only you can change (e.g. `mkdir -m 700 ~/keys`), \
               or print it on stdout (no --out)";
    let because = "another user could replace the key file, and `jwtkit sign` and `verify` \
                   refuse to read a key from there";
    let message = match &problem {
        jwt_keys::Error::InsecurePermissions { path: dir, mode, .. } => format!(
            "--out {out}: the directory {dir} has mode {mode:03o}: other users may write it and \
             it is not sticky, so {because}; run `chmod go-w {dir}`, or {fix}",
            dir = dir.display()
        ),
        jwt_keys::Error::InsecureOwner {
            path: owned,
            owner,
            euid,
        } => format!(
            "--out {out}: {} belongs to uid {owner}, not to you (uid {euid}) or root, so {because}; \
             {fix}",
            owned.display()
        ),
        other => format!("--out {out}: {other}"),
    };
    // The kind (`insecure_permissions`, `insecure_owner`) stays the store's.
    Err(CliError::from_keys(problem).with_message(message))
}

/// Creates `path` with mode 0600 and writes `bytes`, refusing to replace an
/// existing file: a generated key must never clobber another key.
fn write_new_private_file(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            CliError::usage(format!(
                "{} already exists; a generated key never overwrites a file — choose another \
                 --out path, or move the old file away first",
                path.display()
            ))
        } else {
            CliError::io(format!(
                "cannot create {}: {e}; check that the directory exists and is writable",
                path.display()
            ))
        }
    })?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    if let Err(e) = written {
        drop(file);
        // Do not leave a truncated key behind; the file is ours (create_new).
        let _ = std::fs::remove_file(path);
        return Err(CliError::io(format!(
            "cannot write {}: {e}; no key was saved",
            path.display()
        )));
    }
    Ok(())
}

fn jwks(args: &JwksArgs) -> Result<(), CliError> {
    let alg = args
        .alg
        .as_deref()
        .map(super::parse_algorithm)
        .transpose()?;
    let mut keys = Vec::with_capacity(args.files.len());
    let mut seen = HashSet::new();
    for path in &args.files {
        let jwk = public_jwk(path, alg).map_err(|e| e.context(key_file(path)))?;
        let kid = jwk.kid.clone().unwrap_or_default();
        if !seen.insert(kid.clone()) {
            return Err(CliError::usage(format!(
                "{}: kid `{kid}` is already used by an earlier file; each key in a JWKS needs its \
                 own kid (is the same key listed twice?)",
                key_file(path)
            )));
        }
        keys.push(jwk);
    }
    let jwks = Jwks { keys };
    crate::write_stdout(crate::to_json_line(&jwks)?.as_bytes())
}

/// The public JWK of a key file: `kid` (the JWK's own, else the thumbprint),
/// `use: "sig"`, and `alg`: `bind` (--alg) when given, else the key's own
/// when it declares one or its type allows only one.
fn public_jwk(path: &Path, bind: Option<Algorithm>) -> Result<Jwk, CliError> {
    let document = keyfile::read_key_file(path)?;
    let mut key = document.verifying_key().map_err(|e| {
        if matches!(document, KeyDocument::Der(_)) {
            CliError::invalid_key(format!(
                "{}; if this is an HMAC secret: secrets have no public part and are never published",
                e.message()
            ))
        } else {
            e
        }
    })?;
    if key.family() == KeyFamily::Hmac {
        return Err(CliError::invalid_key(
            "this is an HMAC secret (an `oct` JWK); secrets have no public part and are never \
             published in a JWKS",
        ));
    }
    match (bind, key.algorithm()) {
        (Some(alg), Some(own)) if alg != own => {
            return Err(CliError::usage(format!(
                "--alg {alg}: the key declares `alg` {own} (its JWK's `alg` member); drop --alg \
                 or pass --alg {own}"
            )));
        }
        (Some(alg), _) => {
            if key.family() != alg.family() {
                return Err(keyfile::mismatch(key.family(), alg, KeyUse::Verify));
            }
            key = key.with_algorithm(alg).map_err(CliError::from_setup)?;
        }
        (None, Some(_)) => {}
        (None, None) => {
            if let Some(alg) = only_algorithm(key.family()) {
                key = key.with_algorithm(alg).map_err(CliError::from_setup)?;
            }
        }
    }
    key.to_public_jwk()
        .ok_or_else(|| CliError::invalid_key("the key has no public JWK form"))
}

fn thumbprint(args: &ThumbprintArgs) -> Result<(), CliError> {
    let path = &args.file;
    let document = keyfile::read_key_file(path)?;
    let key = document
        .verifying_key()
        .map_err(|e| e.context(key_file(path)))?;
    // For a JWK, hash its own members (RFC 7638 is defined on the JWK); the
    // key was parsed first so that only a usable key gets a thumbprint.
    let thumbprint = match &document {
        KeyDocument::Jwk(jwk) => jwk.thumbprint(),
        _ => key.thumbprint(),
    }
    .map_err(|e| CliError::from_setup(e).context(key_file(path)))?;
    crate::write_stdout(format!("{thumbprint}\n").as_bytes())
}
