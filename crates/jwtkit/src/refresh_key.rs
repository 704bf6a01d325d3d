//! The key that signs refresh tokens.
//!
//! Refresh tokens are only ever verified by the service that issued them, so
//! they are signed with an HMAC secret the service keeps — separate from the
//! access-token keys (RFC 8725 §3.12: a token of one kind can never pass as
//! the other, even if the `typ` check were forgotten somewhere).

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwt_core::{Algorithm, SigningKey, VerifyingKey};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// Length of a generated secret: 32 bytes (256 bits, the HS256 hash length).
pub const REFRESH_KEY_LEN: usize = 32;

/// An HS256 secret (at least 32 bytes) that signs and verifies refresh tokens.
///
/// ```
/// use jwtkit::RefreshKey;
///
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("refresh.key");
/// let first = RefreshKey::load_or_create(&path)?;   // creates it, mode 0600
/// let again = RefreshKey::load_or_create(&path)?;   // reads the same secret
/// assert_eq!(first.kid(), again.kid());
/// assert!(RefreshKey::from_secret(b"too short").is_err());
/// # Ok::<(), jwtkit::Error>(())
/// ```
#[derive(Clone)]
pub struct RefreshKey {
    secret: Zeroizing<Vec<u8>>,
    kid: String,
}

impl fmt::Debug for RefreshKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl RefreshKey {
    /// A new random secret, living only as long as this process: refresh
    /// tokens it signs stop verifying at the next restart.
    pub fn generate() -> Result<Self> {
        let mut bytes = Zeroizing::new(vec![0u8; REFRESH_KEY_LEN]);
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| Error::Random)?;
        Self::from_secret(&bytes)
    }

    /// A key from raw secret bytes (at least 32).
    pub fn from_secret(secret: &[u8]) -> Result<Self> {
        if secret.len() < REFRESH_KEY_LEN {
            return Err(Error::config(
                "refresh_key",
                format!(
                    "the secret is {} bytes; HS256 refresh keys need at least {REFRESH_KEY_LEN} random bytes \
                     (generate one with RefreshKey::generate or `head -c 32 /dev/urandom | base64`)",
                    secret.len()
                ),
            ));
        }
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, secret);
        // A public name for the secret: the first 8 bytes of its SHA-256.
        let kid = format!("refresh-{}", URL_SAFE_NO_PAD.encode(&digest.as_ref()[..8]));
        Ok(RefreshKey {
            secret: Zeroizing::new(secret.to_vec()),
            kid,
        })
    }

    /// A key from its base64url (or standard base64) text, e.g. an environment variable.
    pub fn from_base64(text: &str) -> Result<Self> {
        let text = text.trim();
        let bytes = URL_SAFE_NO_PAD
            .decode(text.trim_end_matches('='))
            .or_else(|_| base64::engine::general_purpose::STANDARD.decode(text))
            .map_err(|_| {
                Error::config(
                    "refresh_key",
                    "the refresh key is not base64 text (expected 32+ random bytes, base64url-encoded)",
                )
            })?;
        Self::from_secret(&Zeroizing::new(bytes))
    }

    /// Reads the key from `path` (base64url text), or creates the file with a
    /// new random key (mode 0600, parent directories 0700) if it does not exist.
    /// A file readable by group or others is refused.
    pub fn load_or_create(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let io = |source| Error::RefreshKeyFile {
            path: PathBuf::from(path),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                check_private(path).map_err(io)?;
                Self::from_base64(&Zeroizing::new(text))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate()?;
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    create_private_dir(parent).map_err(io)?;
                }
                let text = Zeroizing::new(URL_SAFE_NO_PAD.encode(&key.secret));
                match write_new_private(path, text.as_bytes()) {
                    Ok(()) => {}
                    // Another process created it first: use theirs.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        std::thread::sleep(std::time::Duration::from_millis(100));
                        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(io)?);
                        return Self::from_base64(&text);
                    }
                    Err(e) => return Err(io(e)),
                }
                tracing::info!(path = %path.display(), kid = %key.kid, "created a refresh-token key");
                Ok(key)
            }
            Err(e) => Err(io(e)),
        }
    }

    /// The key id put in refresh tokens' headers (derived from the secret by hashing; reveals nothing).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub(crate) fn signer(&self) -> Result<jwt_core::Signer> {
        let key = SigningKey::hmac(&self.secret).map_err(Error::Encoding)?;
        jwt_core::Signer::new(key, Algorithm::HS256)
            .and_then(|s| s.with_kid(Some(&self.kid)))
            .and_then(|s| s.with_typ(Some(crate::service::REFRESH_TYP)))
            .map_err(Error::Encoding)
    }

    pub(crate) fn verifying_key(&self) -> Result<VerifyingKey> {
        VerifyingKey::hmac(&self.secret)
            .map(|k| k.with_kid(self.kid.clone()))
            .map_err(Error::Encoding)
    }
}

#[cfg(unix)]
fn check_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "mode {mode:03o} lets others read the refresh-token secret; run `chmod 600` on it"
            ),
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_: &Path) -> std::io::Result<()> {
    Ok(())
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

fn write_new_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    // create_new: two processes starting at once never overwrite each other's key.
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.write_all(b"\n")?;
    file.sync_all()
}
