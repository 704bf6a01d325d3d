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
use jwt_keys::file::Protection;
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

    /// A key from its base64url (or standard base64) text, e.g. an
    /// environment variable. A `base64url:` prefix (what `jwtkit keys generate
    /// --alg HS256` prints, and what `--secret-env` reads) is accepted, so one
    /// secret text works everywhere.
    pub fn from_base64(text: &str) -> Result<Self> {
        let text = text.trim();
        let text = jwt_keys::env::base64url_text(text).unwrap_or(text);
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
    ///
    /// Like the file key store's files (OpenSSH `StrictModes` style), the
    /// file must be owned by the user this process runs as (its effective
    /// uid) or root, and give group and others no access (`chmod 600`); a
    /// file another user owns could hold a secret they know. Anything else
    /// is refused with [`Error::RefreshKeyFile`], whose source is the
    /// [`jwt_keys::Error`] naming the path and the fix.
    pub fn load_or_create(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let io = |source| Error::RefreshKeyFile {
            path: PathBuf::from(path),
            source,
        };
        match std::fs::File::open(path) {
            Ok(file) => Self::read_checked(path, file).map_err(io)?,
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
                        let file = std::fs::File::open(path).map_err(io)?;
                        return Self::read_checked(path, file).map_err(io)?;
                    }
                    Err(e) => return Err(io(e)),
                }
                tracing::info!(path = %path.display(), kid = %key.kid, "created a refresh-token key");
                Ok(key)
            }
            Err(e) => Err(io(e)),
        }
    }

    /// Reads the secret from `file` (opened from `path`) after checking its
    /// owner and mode by the descriptor, so the file checked is the file
    /// read. The outer error is about the file; the inner one about its
    /// contents.
    fn read_checked(path: &Path, file: std::fs::File) -> std::io::Result<Result<Self>> {
        use std::io::Read as _;
        let meta = file.metadata()?;
        check_protection(path, &meta, Protection::Secret)?;
        let mut text = Zeroizing::new(String::new());
        // A secret is a line of base64; 64 KiB is far beyond any.
        file.take(64 << 10).read_to_string(&mut text)?;
        Ok(Self::from_base64(&text))
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

/// [`jwt_keys::file::check_protection`], as an I/O error of the file (its
/// source is the typed [`jwt_keys::Error`] naming the path and the fix).
fn check_protection(
    path: &Path,
    meta: &std::fs::Metadata,
    protection: Protection,
) -> std::io::Result<()> {
    jwt_keys::file::check_protection(path, meta, protection)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::PermissionDenied, e))
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

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// The typed store error inside a `RefreshKeyFile` error.
    fn inner(err: &Error) -> &jwt_keys::Error {
        match err {
            Error::RefreshKeyFile { source, .. } => source
                .get_ref()
                .and_then(|e| e.downcast_ref::<jwt_keys::Error>())
                .unwrap_or_else(|| panic!("no jwt_keys::Error inside {err:?}")),
            other => panic!("expected RefreshKeyFile, got {other:?}"),
        }
    }

    /// Issue 13 item 8: the text `jwtkit keys generate --alg HS256` prints
    /// (`base64url:…`) is the same key as its bare base64url, as it is for
    /// `--secret-env` and `--secret-file`: one secret text everywhere.
    #[test]
    fn the_base64url_prefix_names_the_same_key() {
        let text = URL_SAFE_NO_PAD.encode([7u8; 32]);
        let bare = RefreshKey::from_base64(&text).unwrap();
        let prefixed = RefreshKey::from_base64(&format!("base64url:{text}\n")).unwrap();
        assert_eq!(prefixed.kid(), bare.kid());
        let capitals = RefreshKey::from_base64(&format!("BASE64URL:{text}")).unwrap();
        assert_eq!(capitals.kid(), bare.kid());
        let err = RefreshKey::from_base64("base64url:not base64!").unwrap_err();
        assert!(err.to_string().contains("not base64 text"), "{err}");
    }

    /// Issue 11 item 3: a secret another user owns (and so may know) is
    /// refused, as is one others may read; the owner's own 0600 file loads.
    #[test]
    fn a_refresh_key_owned_by_another_user_or_readable_by_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("refresh.key");
        let first = RefreshKey::load_or_create(&path).unwrap();

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = RefreshKey::load_or_create(&path).unwrap_err();
        assert!(
            matches!(
                inner(&err),
                jwt_keys::Error::InsecurePermissions { mode: 0o640, .. }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("chmod 600"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();

        match std::os::unix::fs::chown(&path, Some(65_534), Some(65_534)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                eprintln!("skipped the ownership part: chown needs root ({e})");
                return;
            }
            Err(e) => panic!("{e}"),
        }
        let err = RefreshKey::load_or_create(&path).unwrap_err();
        match inner(&err) {
            jwt_keys::Error::InsecureOwner { path: p, owner, .. } => {
                assert_eq!((p, *owner), (&path, 65_534))
            }
            other => panic!("expected InsecureOwner, got {other:?}"),
        }
        assert_eq!(err.kind(), "refresh_key_file");

        // Root's file is trusted.
        std::os::unix::fs::chown(&path, Some(0), Some(0)).unwrap();
        assert_eq!(
            RefreshKey::load_or_create(&path).unwrap().kid(),
            first.kid()
        );
    }
}
