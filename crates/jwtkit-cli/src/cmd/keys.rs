//! `jwtkit keys`: generate keys, publish their public parts as a JWKS, and
//! compute RFC 7638 thumbprints.

use std::collections::HashSet;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use jwt_core::{Jwk, Jwks, KeyFamily, SigningKey};
use zeroize::Zeroizing;

use crate::error::CliError;
use crate::keyfile::{self, key_file, only_algorithm, KeyDocument};

/// `jwtkit keys` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum KeysCommand {
    /// Generate a key: PKCS#8 PEM for asymmetric algorithms, 64 random bytes for HS*.
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
    #[arg(long, value_name = "ALG")]
    alg: String,
    /// Write the key to FILE (created with mode 0600; an existing file is
    /// never overwritten) instead of stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// Arguments of `jwtkit keys jwks`.
#[derive(Debug, clap::Args)]
pub(crate) struct JwksArgs {
    /// Key files (PEM, DER or JWK; public or private). HMAC secrets are refused.
    #[arg(value_name = "FILE", required = true)]
    files: Vec<PathBuf>,
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
    let key = SigningKey::generate(alg).map_err(CliError::from_setup)?;
    let pem;
    let bytes: &[u8] = match key.hmac_secret() {
        Some(secret) => secret,
        None => {
            // jwt-core's PEM has CRLF line endings (the `pem` crate's default);
            // key files on Unix conventionally use LF, which every parser accepts.
            let crlf = key.to_pkcs8_pem().map_err(CliError::from_setup)?;
            pem = Zeroizing::new(crlf.replace("\r\n", "\n"));
            pem.as_bytes()
        }
    };
    match &args.out {
        Some(path) => {
            write_new_private_file(path, bytes)?;
            crate::diag(format_args!(
                "wrote a new {alg} key to {} (mode 0600){}",
                path.display(),
                if alg.is_symmetric() {
                    format!("; use it with --secret-file {}", path.display())
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
            if alg.is_symmetric() && std::io::stdout().is_terminal() {
                crate::diag(format_args!(
                    "warning: writing 64 raw secret bytes to the terminal; use --out FILE to keep them"
                ));
            }
            crate::write_stdout(bytes)
        }
    }
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
    let mut keys = Vec::with_capacity(args.files.len());
    let mut seen = HashSet::new();
    for path in &args.files {
        let jwk = public_jwk(path).map_err(|e| e.context(key_file(path)))?;
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
/// `use: "sig"`, and `alg` when the key declares one or its type allows only one.
fn public_jwk(path: &Path) -> Result<Jwk, CliError> {
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
    if key.algorithm().is_none() {
        if let Some(alg) = only_algorithm(key.family()) {
            key = key.with_algorithm(alg).map_err(CliError::from_setup)?;
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
