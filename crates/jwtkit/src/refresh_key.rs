//! The key that signs refresh tokens.
//!
//! Refresh tokens are only ever verified by the service that issued them, so
//! they are signed with an HMAC secret the service keeps — separate from the
//! access-token keys (RFC 8725 §3.12: a token of one kind can never pass as
//! the other, even if the `typ` check were forgotten somewhere).
//!
//! A [`RefreshKey`] may hold several secrets (a ring), for rotation.

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
/// It may hold more than one secret, so that the key can be rotated without
/// logging everyone out: the first signs; a staged `next` key already
/// verifies (so that every instance accepts it before any signs with it); a
/// previous key verifies until its `until` time. In a file (or
/// `JWTKIT_REFRESH_KEY`), one key per line (or per comma); a file of one
/// line, the format of earlier versions, is one key:
///
/// ```text
/// # jwtkit refresh keys: the first line signs
/// 0Mx2…base64url…
/// q8Vb…base64url… next
/// Zt3w…base64url… until=1800000000
/// ```
///
/// `jwtkit refresh-key stage|promote|rotate|show FILE` edits and shows such
/// a file; [`stage`](Self::stage) and [`promote`](Self::promote) do the same
/// in code.
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
    /// The keys that only verify: a staged next key, previous keys.
    others: Vec<OtherKey>,
}

/// A refresh key that verifies but does not sign.
#[derive(Clone)]
struct OtherKey {
    secret: Zeroizing<Vec<u8>>,
    kid: String,
    role: Role,
}

/// What a verify-only key is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// Staged: signs after the next promotion.
    Next,
    /// Signed before; verifies until this Unix time.
    Previous { until: i64 },
}

/// One key of a [`RefreshKey`] ring, as [`RefreshKey::keys`] lists it: its
/// public name and what it does. Never the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RefreshKeyInfo {
    /// The key id in refresh tokens' headers.
    pub kid: String,
    /// `"signs"`, `"next"` (verifies, signs after a promotion) or
    /// `"previous"` (verifies until [`until`](Self::until)).
    pub role: &'static str,
    /// For a previous key: the Unix time it stops verifying.
    pub until: Option<i64>,
}

impl fmt::Debug for RefreshKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshKey")
            .field("kid", &self.kid)
            .field(
                "others",
                &self
                    .others
                    .iter()
                    .map(|o| (&o.kid, o.role))
                    .collect::<Vec<_>>(),
            )
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

        Ok(RefreshKey {
            secret: Zeroizing::new(secret.to_vec()),
            kid: kid_of(secret),
            others: Vec::new(),
        })
    }

    /// A key from its base64url (or standard base64) text, e.g. an
    /// environment variable. A `base64url:` prefix (what `jwtkit keys generate
    /// --alg HS256` prints, and what `--secret-env` reads) is accepted, so one
    /// secret text works everywhere.
    ///
    /// Several keys, separated by newlines or commas, form a ring (see
    /// [`RefreshKey`]): the first signs; `SECRET next` is staged,
    /// `SECRET until=UNIX` is a previous key; `#` starts a comment line.
    pub fn from_base64(text: &str) -> Result<Self> {
        let mut entries = text
            .split(['\n', ','])
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'));
        let Some(first) = entries.next() else {
            return Err(Error::config(
                "refresh_key",
                "the refresh key text holds no key (expected 32+ random bytes, base64url-encoded)",
            ));
        };
        let (secret, role) = parse_entry(first)?;
        if role.is_some() {
            return Err(Error::config(
                "refresh_key",
                "the first refresh key signs, so it takes no `next` or `until=`: put the signing \
                 key first",
            ));
        }
        let mut key = Self::from_secret(&secret)?;
        for entry in entries {
            let (secret, role) = parse_entry(entry)?;
            let Some(role) = role else {
                return Err(Error::config(
                    "refresh_key",
                    "only the first refresh key signs: mark a later one `next` (staged) or \
                     `until=UNIX-TIME` (a previous key)",
                ));
            };
            key.add(&secret, role)?;
        }
        Ok(key)
    }

    /// One key's secret, from its base64url (or base64) text.
    fn decode_secret(text: &str) -> Result<Zeroizing<Vec<u8>>> {
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
        Ok(Zeroizing::new(bytes))
    }

    /// Adds a verify-only key; a second staged key, or a key already in
    /// the ring, is refused.
    fn add(&mut self, secret: &[u8], role: Role) -> Result<()> {
        let other = Self::from_secret(secret)?;
        if other.kid == self.kid || self.others.iter().any(|o| o.kid == other.kid) {
            return Err(Error::config(
                "refresh_key",
                format!("the refresh key {} is in the ring twice", other.kid),
            ));
        }
        if role == Role::Next && self.others.iter().any(|o| o.role == Role::Next) {
            return Err(Error::config(
                "refresh_key",
                "two refresh keys are staged (`next`): promote one first, or remove one",
            ));
        }
        self.others.push(OtherKey {
            secret: other.secret,
            kid: other.kid,
            role,
        });
        Ok(())
    }

    /// The keys of the ring, the signing one first; never the secrets.
    pub fn keys(&self) -> Vec<RefreshKeyInfo> {
        std::iter::once(RefreshKeyInfo {
            kid: self.kid.clone(),
            role: "signs",
            until: None,
        })
        .chain(self.others.iter().map(|o| RefreshKeyInfo {
            kid: o.kid.clone(),
            role: match o.role {
                Role::Next => "next",
                Role::Previous { .. } => "previous",
            },
            until: match o.role {
                Role::Next => None,
                Role::Previous { until } => Some(until),
            },
        }))
        .collect()
    }

    /// Stages a new random key (`next`): it verifies at once and signs
    /// after [`promote`](Self::promote). Refused when one is staged already.
    pub fn stage(&mut self) -> Result<&str> {
        let new = Self::generate()?;
        self.add(&new.secret, Role::Next)?;
        Ok(&self.others.last().expect("just added").kid)
    }

    /// Makes the staged key the signing one; the signing key becomes a
    /// previous key that verifies until `until` (Unix time: now + the
    /// longest a refresh token it signed can live), and previous keys whose
    /// time has come (`until <= now`) are dropped. Refused without a staged
    /// key.
    pub fn promote(&mut self, now: i64, until: i64) -> Result<()> {
        let Some(i) = self.others.iter().position(|o| o.role == Role::Next) else {
            return Err(Error::config(
                "refresh_key",
                "no refresh key is staged: stage one first (`jwtkit refresh-key stage`), roll it out \
                 to every instance, then promote; or `jwtkit refresh-key rotate` on a single instance",
            ));
        };
        let next = self.others.remove(i);
        let old_secret = std::mem::replace(&mut self.secret, next.secret);
        let old_kid = std::mem::replace(&mut self.kid, next.kid);
        self.others
            .retain(|o| !matches!(o.role, Role::Previous { until } if until <= now));
        self.others.push(OtherKey {
            secret: old_secret,
            kid: old_kid,
            role: Role::Previous { until },
        });
        Ok(())
    }

    /// The ring as the file holds it (base64url secrets: write it 0600).
    pub fn to_text(&self) -> Zeroizing<String> {
        let mut out = Zeroizing::new(String::from(
            "# jwtkit refresh keys: the first line signs; `next` verifies and signs after a \
             promotion; `until=T` verifies until Unix time T\n",
        ));
        out.push_str(&URL_SAFE_NO_PAD.encode(&self.secret));
        out.push('\n');
        for o in &self.others {
            out.push_str(&URL_SAFE_NO_PAD.encode(&o.secret));
            match o.role {
                Role::Next => out.push_str(" next"),
                Role::Previous { until } => out.push_str(&format!(" until={until}")),
            }
            out.push('\n');
        }
        out
    }

    /// Whether a verify-only key named `kid` has reached its `until` at `now`.
    pub(crate) fn expired(&self, kid: Option<&str>, now: i64) -> bool {
        self.others.iter().any(|o| {
            Some(o.kid.as_str()) == kid
                && matches!(o.role, Role::Previous { until } if until <= now)
        })
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
        refuse_special_file(path).map_err(io)?;
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

    /// Reads the key (ring) from `path`, which must exist, with the same
    /// ownership and mode checks as [`load_or_create`](Self::load_or_create).
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let io = |source| Error::RefreshKeyFile {
            path: PathBuf::from(path),
            source,
        };
        refuse_special_file(path).map_err(io)?;
        let file = std::fs::File::open(path).map_err(io)?;
        Self::read_checked(path, file).map_err(io)?
    }

    /// Replaces the file at `path` with this ring, atomically (a new file,
    /// mode 0600, renamed over the old one): a reader sees the old ring or
    /// the new one, never half of either.
    ///
    /// A symbolic link is refused: replacing it would leave its target (which
    /// the server may read) unchanged; give the path of the file itself.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let io = |source| Error::RefreshKeyFile {
            path: PathBuf::from(path),
            source,
        };
        if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "is a symbolic link: replacing it would leave the file it points to (which the \
                 server reads) unchanged; give the path of the key file itself",
            )));
        }
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut random = [0u8; 6];
        aws_lc_rs::rand::fill(&mut random).map_err(|_| Error::Random)?;
        let tmp = dir.join(format!(
            ".{}.{}.tmp",
            path.file_name()
                .map_or("refresh.key".into(), |n| n.to_string_lossy()),
            URL_SAFE_NO_PAD.encode(random)
        ));
        write_new_private(&tmp, self.to_text().trim_end().as_bytes()).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io(e)
        })
    }

    /// Reads the secret from `file` (opened from `path`) after checking its
    /// owner and mode by the descriptor, so the file checked is the file
    /// read. The outer error is about the file; the inner one about its
    /// contents.
    fn read_checked(path: &Path, file: std::fs::File) -> std::io::Result<Result<Self>> {
        use std::io::Read as _;
        let meta = file.metadata()?;
        check_protection(path, &meta, Protection::Secret)?;
        if !meta.is_file() {
            return Err(not_a_key_file("it is not a regular file"));
        }
        // A ring is a few lines of base64; 64 KiB is far beyond any.
        if meta.len() > MAX_KEY_FILE_BYTES {
            return Err(not_a_key_file(&format!(
                "it is {} bytes; a refresh-key file holds a few lines of base64 (at most {MAX_KEY_FILE_BYTES} bytes)",
                meta.len()
            )));
        }
        let mut text = Zeroizing::new(String::new());
        file.take(MAX_KEY_FILE_BYTES).read_to_string(&mut text)?;
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

    /// Every key of the ring, by kid (a previous key past its time is
    /// refused at verification, see [`expired`](Self::expired)).
    pub(crate) fn verifying_keys(&self) -> Result<jwt_core::KeySet> {
        let mut set = jwt_core::KeySet::new();
        for (secret, kid) in std::iter::once((&self.secret, &self.kid))
            .chain(self.others.iter().map(|o| (&o.secret, &o.kid)))
        {
            let key = VerifyingKey::hmac(secret)
                .map(|k| k.with_kid(kid.clone()))
                .map_err(Error::Encoding)?;
            set.insert(key).map_err(Error::Encoding)?;
        }
        Ok(set)
    }
}

/// A public name for a secret: the first 8 bytes of its SHA-256.
fn kid_of(secret: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, secret);
    format!("refresh-{}", URL_SAFE_NO_PAD.encode(&digest.as_ref()[..8]))
}

/// `SECRET`, `SECRET next` or `SECRET until=UNIX`.
fn parse_entry(entry: &str) -> Result<(Zeroizing<Vec<u8>>, Option<Role>)> {
    let mut words = entry.split_whitespace();
    let secret = RefreshKey::decode_secret(words.next().unwrap_or(""))?;
    let role = match words.next() {
        None => None,
        Some("next") => Some(Role::Next),
        Some(word) => match word.strip_prefix("until=").map(str::parse::<i64>) {
            Some(Ok(until)) => Some(Role::Previous { until }),
            _ => {
                return Err(Error::config(
                    "refresh_key",
                    "a refresh key is followed by `next` or `until=UNIX-TIME` or nothing; \
                     found something else (the secret itself is not shown)",
                ))
            }
        },
    };
    if words.next().is_some() {
        return Err(Error::config(
            "refresh_key",
            "a refresh key line has more than a secret and one marker (`next` or `until=…`)",
        ));
    }
    Ok((secret, role))
}

/// The largest refresh-key file read.
const MAX_KEY_FILE_BYTES: u64 = 64 << 10;

/// An I/O error saying why the file at the key path is no key file.
fn not_a_key_file(why: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("not a refresh-key file: {why}"),
    )
}

/// Refuses what is at `path` when it is there and is not a regular file (a
/// FIFO would block the open for ever, a device would be read as the key),
/// before it is opened.
fn refuse_special_file(path: &Path) -> std::io::Result<()> {
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_file() => Err(not_a_key_file(
            "it is not a regular file (a directory, a FIFO or a device); give the path of the \
             key file jwtkit serve created (default .jwtkit/refresh.key)",
        )),
        _ => Ok(()),
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

    /// What is at the key path must be a small regular file (the attacker's
    /// review): a FIFO made `jwtkit serve` wait for ever at start, and a
    /// 100 MB file was read whole.
    #[test]
    fn only_a_small_regular_file_of_random_bytes_is_a_key() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo.key");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo");
        assert!(made.success());
        std::fs::set_permissions(&fifo, std::fs::Permissions::from_mode(0o600)).unwrap();
        for load in [RefreshKey::load_or_create, RefreshKey::load] {
            let err = load(&fifo).unwrap_err().to_string();
            assert!(err.contains("not a regular file"), "{err}");
        }
        let big = dir.path().join("big.key");
        std::fs::write(&big, "A".repeat(100 << 10)).unwrap();
        std::fs::set_permissions(&big, std::fs::Permissions::from_mode(0o600)).unwrap();
        let err = RefreshKey::load(&big).unwrap_err().to_string();
        assert!(err.contains("at most 65536 bytes"), "{err}");
    }

    /// Issue 15 item 5: a ring is staged, promoted and saved; its text
    /// round-trips; the old key keeps verifying until its time; mistakes in
    /// the text are refused without showing a secret.
    #[test]
    fn a_ring_is_staged_promoted_and_saved() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("refresh.key");
        let mut ring = RefreshKey::load_or_create(&path).unwrap();
        let first = ring.kid().to_owned();
        let staged = ring.stage().unwrap().to_owned();
        assert!(ring.stage().is_err(), "one staged key at a time");
        ring.save(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let mut ring = RefreshKey::load(&path).unwrap();
        assert_eq!(ring.kid(), first, "staging does not change the signing key");
        assert_eq!(ring.keys()[1].role, "next");
        ring.promote(1_000, 5_000).unwrap();
        assert_eq!(ring.kid(), staged);
        let keys = ring.keys();
        assert_eq!(
            (keys[1].kid.as_str(), keys[1].role, keys[1].until),
            (first.as_str(), "previous", Some(5_000))
        );
        assert!(!ring.expired(Some(&first), 4_999));
        assert!(ring.expired(Some(&first), 5_000));
        assert!(!ring.expired(Some(&staged), i64::MAX));
        assert!(ring.promote(6_000, 9_000).is_err(), "nothing staged");
        // The next promotion drops the previous key whose time is over.
        ring.stage().unwrap();
        ring.promote(6_000, 9_000).unwrap();
        assert_eq!(ring.keys().len(), 2);
        let again = RefreshKey::from_base64(&ring.to_text()).unwrap();
        assert_eq!(again.keys(), ring.keys());
        assert!(again.verifying_keys().unwrap().len() == 2);

        let a = URL_SAFE_NO_PAD.encode([1u8; 32]);
        let b = URL_SAFE_NO_PAD.encode([2u8; 32]);
        for (text, fragment) in [
            (format!("{a} next"), "first refresh key signs"),
            (format!("{a}\n{b}"), "only the first refresh key signs"),
            (format!("{a}\n{b} soon"), "`next` or `until=UNIX-TIME`"),
            (format!("{a}\n{a} next"), "in the ring twice"),
            (format!("{a}\n{b} next x"), "more than a secret"),
            ("# only a comment".to_owned(), "holds no key"),
        ] {
            let err = RefreshKey::from_base64(&text).unwrap_err().to_string();
            assert!(err.contains(fragment), "{text}: {err}");
            assert!(!err.contains(&a) && !err.contains(&b), "{err}");
        }
        // The comma form (an environment variable).
        let ring = RefreshKey::from_base64(&format!("{a}, {b} until=7")).unwrap();
        assert_eq!(ring.keys().len(), 2);
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
