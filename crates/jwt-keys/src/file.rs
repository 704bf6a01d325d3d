//! The file backend: a directory an operator can read.
//!
//! ```text
//! DIR/                 mode 0700 when created by the store
//!   keys.json          metadata: format version, policy, one record per kid
//!                      (state, alg, created/activated/retiring/retire-at times)
//!   <kid>.pem          the private key of each key that is not retired,
//!                      PKCS#8 PEM, mode 0600
//!   .lock              advisory lock (flock) taken by every writer
//! ```
//!
//! Crash safety: every write happens under the lock; new key files are
//! written (temporary file, fsync, rename, fsync of the directory) *before*
//! `keys.json` is atomically replaced the same way, so `keys.json` never
//! names a key that is not on disk, and a crash at any point leaves the
//! previous `keys.json` — the previous consistent state.
//!
//! The store deletes only files it wrote itself: its own temporary files
//! (`.NAME.tmp-PID-N`, left by an interrupted write) and the key file of a
//! key that `keys.json` records as retired. Any other file in the directory
//! is left alone (a key file an interrupted rotation wrote but never recorded
//! is logged, not deleted), and [`init`](KeyStore::init) refuses a directory
//! that holds anything but the store's own files
//! ([`Error::UnexpectedFiles`]). A directory with key files but no
//! `keys.json` is a damaged store ([`Error::DamagedStore`]): it is never
//! initialized over.
//!
//! Trust (like OpenSSH's `StrictModes`): the directory, `keys.json`, every
//! key file and `.lock` must be owned by the user the process runs as (its
//! effective uid) or by root, and writable by no one else; key files must
//! not be readable by anyone else either ([`check_protection`]). `init`
//! checks the directory before it writes any private key, and the lock file
//! is never opened through a symbolic link.

use std::collections::HashMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
#[cfg(unix)]
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use async_trait::async_trait;
use jwt_core::{Algorithm, Clock, Jwks, SigningKey, SystemClock};

use crate::error::{Error, Result};
use crate::lifecycle::{generate_key, init_report, kid_is_safe, log_rotation, Ledger};
use crate::policy::RotationPolicy;
use crate::store::{KeyInfo, KeyRecord, KeyState, KeyStore, RotationReport};

/// The metadata file's name.
pub const METADATA_FILE: &str = "keys.json";
/// The lock file's name.
pub const LOCK_FILE: &str = ".lock";
const MAX_METADATA_BYTES: u64 = 4 << 20;
const MAX_KEY_BYTES: u64 = 64 << 10;
/// How many file names an error lists at most.
const MAX_LISTED_FILES: usize = 20;

/// What a file or directory the store trusts must keep from other users
/// (see [`check_protection`]).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protection {
    /// A secret (a private key, a refresh-token secret): no permission bit
    /// for group or others (`chmod 600`).
    Secret,
    /// A directory or file that decides which keys are trusted (the store
    /// directory, `keys.json`, `.lock`): others may read it but not write it
    /// (`chmod go-w`).
    Integrity,
}

/// Checks `meta` (the metadata of `path`) the way the file store checks its
/// own directory and files, like OpenSSH's `StrictModes`: the owner must be
/// the user this process runs as (its effective uid) or root, and the mode
/// must not give other users what `protection` keeps from them.
///
/// Fails with [`Error::InsecureOwner`] or [`Error::InsecurePermissions`],
/// which name the path and the fix. Always succeeds on non-Unix platforms.
///
/// ```
/// use jwt_keys::file::{check_protection, Protection};
///
/// let dir = tempfile::tempdir().unwrap(); // created 0700 by this user
/// let meta = std::fs::metadata(dir.path()).unwrap();
/// check_protection(dir.path(), &meta, Protection::Integrity)?;
/// # Ok::<(), jwt_keys::Error>(())
/// ```
pub fn check_protection(path: &Path, meta: &fs::Metadata, protection: Protection) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let owner = meta.uid();
        if owner != 0 {
            let euid = effective_uid()?;
            if owner != euid {
                return Err(Error::InsecureOwner {
                    path: path.to_owned(),
                    owner,
                    euid,
                });
            }
        }
        let mode = meta.permissions().mode() & 0o777;
        let (forbidden, problem) = match protection {
            Protection::Secret => (
                0o077,
                "lets other users read or change a secret (a private key); run `chmod 600` on it",
            ),
            Protection::Integrity => (
                0o022,
                "lets others than its owner change which keys verify; run `chmod go-w` on it \
                 (the store creates its directory 0700)",
            ),
        };
        if mode & forbidden != 0 {
            return Err(Error::InsecurePermissions {
                path: path.to_owned(),
                mode,
                problem,
            });
        }
    }
    #[cfg(not(unix))]
    let _ = (path, meta, protection);
    Ok(())
}

/// The effective uid of this process, read from the kernel's
/// `/proc/self/status` (its `Uid:` line: real, effective, saved, fs). Std
/// has no `geteuid`, and calling libc needs `unsafe`; unlike the owner of
/// `/proc/self`, this line stays right when the process is not dumpable.
#[cfg(target_os = "linux")]
fn effective_uid() -> Result<u32> {
    const STATUS: &str = "/proc/self/status";
    let text = fs::read_to_string(STATUS).map_err(|e| Error::io(STATUS, e))?;
    text.lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .and_then(|euid| euid.parse().ok())
        .ok_or_else(|| {
            Error::io(
                STATUS,
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "no effective uid in its `Uid:` line, so the owners of key files cannot be checked",
                ),
            )
        })
}

/// The effective uid of this process, without `/proc`: POSIX gives a new
/// file the effective uid of its creator, so create one and look.
#[cfg(all(unix, not(target_os = "linux")))]
fn effective_uid() -> Result<u32> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let probe = std::env::temp_dir().join(format!(
        ".jwt-keys-euid-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(|e| Error::io(&probe, e))?;
    let uid = file.metadata().map(|m| m.uid());
    drop(file);
    let _ = fs::remove_file(&probe);
    uid.map_err(|e| Error::io(&probe, e))
}

/// Keys in a directory (see the [module docs](self) for the layout).
///
/// Reading is cheap: the parsed keys are cached and `keys.json` is re-read
/// only when it changed on disk (another process rotated). Writes (`init`,
/// `rotate`, `retire_expired`) take an advisory lock, so processes sharing
/// the directory serialize and always leave exactly one active key.
///
/// ```
/// use jwt_core::Algorithm;
/// use jwt_keys::{FileKeyStore, KeyStore, KeyStoreExt, RotationPolicy};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let dir = tempfile::tempdir().unwrap();
/// let store = FileKeyStore::open(dir.path().join("keys"));
/// let init = store.init(Algorithm::ES256, &RotationPolicy::default()).await?;
/// let rotated = store.rotate(None).await?;
/// assert_eq!(rotated.active, init.pending);
/// assert!(dir.path().join("keys").join(format!("{}.pem", rotated.active)).is_file());
/// # Ok::<(), jwt_keys::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct FileKeyStore {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    clock: Arc<dyn Clock>,
    cache: Mutex<Option<Arc<Snapshot>>>,
}

struct Snapshot {
    stamp: Stamp,
    ledger: Ledger,
    keys: HashMap<String, Arc<SigningKey>>,
}

/// Identifies one version of `keys.json`: every write renames a new file
/// into place, so the inode changes even when size and mtime do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    ino: u64,
}

impl Stamp {
    fn of(m: &fs::Metadata) -> Stamp {
        #[cfg(unix)]
        let ino = std::os::unix::fs::MetadataExt::ino(m);
        #[cfg(not(unix))]
        let ino = 0;
        Stamp {
            len: m.len(),
            modified: m.modified().ok(),
            ino,
        }
    }
}

impl fmt::Debug for FileKeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileKeyStore")
            .field("dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

impl FileKeyStore {
    /// A store in `dir`. Nothing is read until the store is used; `init`
    /// creates the directory (mode 0700) if it does not exist.
    pub fn open(dir: impl Into<PathBuf>) -> Self {
        FileKeyStore::with_clock(dir, Arc::new(SystemClock))
    }

    /// Like [`open`](Self::open), reading time from `clock` (which decides
    /// when a retiring key stops verifying).
    pub fn with_clock(dir: impl Into<PathBuf>, clock: Arc<dyn Clock>) -> Self {
        FileKeyStore {
            inner: Arc::new(Inner {
                dir: dir.into(),
                clock,
                cache: Mutex::new(None),
            }),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The current contents, re-read if `keys.json` changed on disk.
    fn snapshot(&self) -> Result<Arc<Snapshot>> {
        self.inner.snapshot()
    }

    async fn blocking<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| Error::Backend {
                backend: "file",
                source: Box::new(e),
                retryable: false,
            })?
    }
}

impl Inner {
    fn metadata_path(&self) -> PathBuf {
        self.dir.join(METADATA_FILE)
    }

    fn key_path(&self, kid: &str) -> PathBuf {
        self.dir.join(format!("{kid}.pem"))
    }

    fn not_initialized(&self) -> Error {
        Error::NotInitialized {
            backend: "file",
            location: self.dir.display().to_string(),
        }
    }

    /// The error for a store without `keys.json`: [`Error::DamagedStore`]
    /// when the directory holds key files anyway, else not initialized.
    fn missing_ledger(&self) -> Error {
        match self.foreign_files() {
            Ok(found) if !found.keys.is_empty() => Error::DamagedStore {
                dir: self.dir.clone(),
                files: found.other,
            },
            Ok(_) => self.not_initialized(),
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                self.not_initialized()
            }
            Err(e) => e,
        }
    }

    /// For `init`: the store never shares its directory, so whatever is in
    /// it and not the store's own is refused, never touched. Key files named
    /// as the store names them (`<thumbprint>.pem`) mean a store that lost
    /// its `keys.json`; anything else (a `signing.pem`, a certbot
    /// `privkey.pem`, notes) means the wrong directory.
    fn refuse_foreign_files(&self) -> Result<()> {
        let found = self.foreign_files()?;
        if !found.keys.is_empty() {
            return Err(Error::DamagedStore {
                dir: self.dir.clone(),
                files: found.other,
            });
        }
        if !found.other.is_empty() {
            return Err(Error::UnexpectedFiles {
                dir: self.dir.clone(),
                files: found.other,
            });
        }
        Ok(())
    }

    /// The files of a directory without `keys.json` that are not the
    /// store's own (`.lock`, its temporary files): key files (`*.pem`) and
    /// anything else, by name.
    fn foreign_files(&self) -> Result<ForeignFiles> {
        let mut found = ForeignFiles::default();
        let entries = fs::read_dir(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&self.dir, e))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name == LOCK_FILE || name == METADATA_FILE || is_own_temp(&name) {
                continue;
            }
            // Printable whatever the name holds (control characters escaped).
            let shown = name.escape_debug().to_string();
            if is_store_key_file(&name) {
                found.keys.push(shown.clone());
            }
            // Everything is listed among the foreign files; the store's own
            // key files also make the directory a damaged store.
            found.other.push(shown);
        }
        found.keys.sort();
        found.other.sort();
        truncate_listing(&mut found.keys);
        truncate_listing(&mut found.other);
        Ok(found)
    }

    fn snapshot(&self) -> Result<Arc<Snapshot>> {
        let path = self.metadata_path();
        let stamp = match fs::metadata(&path) {
            Ok(m) => Stamp::of(&m),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(self.missing_ledger()),
            Err(e) => return Err(Error::io(path, e)),
        };
        let previous = {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            match cache.as_ref() {
                Some(s) if s.stamp == stamp => return Ok(s.clone()),
                other => other.cloned(),
            }
        };
        let (stamp, ledger) = match self.read_ledger()? {
            Some(found) => found,
            None => return Err(self.missing_ledger()),
        };
        let mut keys = HashMap::new();
        for r in ledger.keys.iter().filter(|r| r.state != KeyState::Retired) {
            // A kid names one key forever, so a key parsed before is still right.
            let key = match previous.as_ref().and_then(|p| p.keys.get(&r.kid)) {
                Some(k) => k.clone(),
                None => Arc::new(self.load_key(&r.kid, r.alg)?),
            };
            keys.insert(r.kid.clone(), key);
        }
        let snap = Arc::new(Snapshot {
            stamp,
            ledger,
            keys,
        });
        *self.cache.lock().unwrap_or_else(|e| e.into_inner()) = Some(snap.clone());
        Ok(snap)
    }

    /// Reads and checks `keys.json`; `None` when it does not exist.
    fn read_ledger(&self) -> Result<Option<(Stamp, Ledger)>> {
        let path = self.metadata_path();
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(path, e)),
        };
        let meta = file.metadata().map_err(|e| Error::io(&path, e))?;
        // Whoever owns or can write keys.json or the directory decides which
        // keys verify and for how long: refuse any but ours (or root's), and
        // group- or world-writable ones.
        self.check_dir()?;
        check_protection(&path, &meta, Protection::Integrity)?;
        if meta.len() > MAX_METADATA_BYTES {
            return Err(Error::corrupt(
                &path,
                format!("{} bytes is far too large for key metadata", meta.len()),
            ));
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        file.take(MAX_METADATA_BYTES)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io(&path, e))?;
        let ledger: Ledger = serde_json::from_slice(&bytes).map_err(|e| {
            Error::corrupt(&path, format!("not a valid key store metadata file: {e}"))
        })?;
        ledger
            .check()
            .map_err(|reason| Error::corrupt(&path, reason))?;
        Ok(Some((Stamp::of(&meta), ledger)))
    }

    fn load_key(&self, kid: &str, alg: Algorithm) -> Result<SigningKey> {
        let path = self.key_path(kid);
        let file = File::open(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::corrupt(
                &path,
                format!("{METADATA_FILE} lists key `{kid}` but its private key file is missing"),
            ),
            _ => Error::io(&path, e),
        })?;
        let meta = file.metadata().map_err(|e| Error::io(&path, e))?;
        check_protection(&path, &meta, Protection::Secret)?;
        let mut pem = zeroize::Zeroizing::new(Vec::with_capacity(meta.len() as usize));
        file.take(MAX_KEY_BYTES)
            .read_to_end(&mut pem)
            .map_err(|e| Error::io(&path, e))?;
        let key = SigningKey::from_pem(&pem)
            .map_err(|e| Error::corrupt(&path, format!("not a usable private key: {e}")))?;
        key.check_usable(alg).map_err(|e| {
            Error::corrupt(
                &path,
                format!("{METADATA_FILE} says this key signs with {alg}, but: {e}"),
            )
        })?;
        let thumbprint = key.thumbprint()?;
        if thumbprint != kid {
            return Err(Error::corrupt(
                &path,
                format!(
                    "the key's thumbprint is `{thumbprint}`, not the kid `{kid}` it is filed under; \
                     the file was replaced or mixed up with another key"
                ),
            ));
        }
        Ok(key.with_kid(kid).with_algorithm(alg)?)
    }

    /// Runs `f` under the directory's lock with the current ledger (if
    /// any); writes the ledger it returns atomically, then sweeps files that
    /// are no longer needed.
    fn write_locked<R>(
        &self,
        create: bool,
        f: impl FnOnce(&Inner, Option<Ledger>) -> Result<(Ledger, R)>,
    ) -> Result<R> {
        if create {
            create_dir(&self.dir)?;
        } else if !self.dir.is_dir() {
            return Err(self.not_initialized());
        }
        // Before anything is written (`init`'s private keys included).
        self.check_dir()?;
        let lock_path = self.dir.join(LOCK_FILE);
        let lock = open_lock(&lock_path)?;
        fs4::FileExt::lock(&lock).map_err(|e| Error::io(&lock_path, e))?;
        let result = (|| {
            let current = self.read_ledger()?.map(|(_, l)| l);
            let (ledger, out) = f(self, current)?;
            ledger
                .check()
                .map_err(|reason| Error::corrupt(self.metadata_path(), reason))?;
            let mut json = serde_json::to_vec_pretty(&ledger).map_err(|e| {
                Error::corrupt(self.metadata_path(), format!("cannot serialize: {e}"))
            })?;
            json.push(b'\n');
            write_atomic(&self.dir, METADATA_FILE, &json, 0o644)?;
            self.sweep(&ledger);
            Ok(out)
        })();
        // Closing the file releases the lock too; unlock explicitly to be prompt.
        let _ = fs4::FileExt::unlock(&lock);
        result
    }

    /// Checks the directory's owner and mode.
    fn check_dir(&self) -> Result<()> {
        let meta = fs::metadata(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        check_protection(&self.dir, &meta, Protection::Integrity)
    }

    fn write_key(&self, kid: &str, key: &SigningKey) -> Result<()> {
        let pem = key.to_pkcs8_pem()?;
        write_atomic(&self.dir, &format!("{kid}.pem"), pem.as_bytes(), 0o600)
    }

    /// Removes what the store itself wrote and no longer needs: its
    /// temporary files (leftovers of interrupted writes) and the key files
    /// of keys `ledger` records as retired. Nothing else, ever: a key file
    /// `ledger` does not name may be someone else's. Runs under the lock, so
    /// no other writer is mid-write.
    fn sweep(&self, ledger: &Ledger) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        let mut unlisted = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let remove = if is_own_temp(name) {
                true
            } else if let Some(kid) = name.strip_suffix(".pem") {
                match ledger.get(kid) {
                    Some(r) => r.state == KeyState::Retired,
                    None => {
                        unlisted.push(name.escape_debug().to_string());
                        false
                    }
                }
            } else {
                false
            };
            if remove {
                match fs::remove_file(entry.path()) {
                    Ok(()) => tracing::debug!(file = %entry.path().display(), "removed"),
                    Err(e) => {
                        tracing::warn!(file = %entry.path().display(), error = %e, "could not remove")
                    }
                }
            }
        }
        if !unlisted.is_empty() {
            truncate_listing(&mut unlisted);
            tracing::warn!(dir = %self.dir.display(), files = ?unlisted,
                "key files that keys.json does not list were left in place (written by an \
                 interrupted rotation, or put there by hand); the store never deletes them: \
                 remove them if they are not needed");
        }
    }
}

/// Files found in a store directory that are not the store's own.
#[derive(Debug, Default)]
struct ForeignFiles {
    /// Key files named as the store names them (`<thumbprint>.pem`).
    keys: Vec<String>,
    /// Every file that is not the store's own, key files included.
    other: Vec<String>,
}

/// Caps a listing of file names for an error message.
fn truncate_listing(names: &mut Vec<String>) {
    if names.len() > MAX_LISTED_FILES {
        let more = names.len() - MAX_LISTED_FILES;
        names.truncate(MAX_LISTED_FILES);
        names.push(format!("and {more} more"));
    }
}

/// `true` for the names of the store's own temporary files,
/// `.NAME.tmp-PID-N` with NAME `keys.json` or a key file (see [`write_atomic`]).
fn is_own_temp(name: &str) -> bool {
    let Some((target, suffix)) = name
        .strip_prefix('.')
        .and_then(|rest| rest.rsplit_once(".tmp-"))
    else {
        return false;
    };
    let number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let Some((pid, n)) = suffix.split_once('-') else {
        return false;
    };
    number(pid)
        && number(n)
        && (target == METADATA_FILE || target.strip_suffix(".pem").is_some_and(kid_is_safe))
}

fn create_dir(dir: &Path) -> Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| Error::io(dir, e))
}

/// Opens (or creates, mode 0600) the lock file without following a
/// symbolic link: a new file is created with `O_EXCL`, which never follows
/// one; an existing one must be a regular file before it is opened (without
/// `O_CREAT`) and the same file (device and inode) after, and pass
/// [`check_protection`].
fn open_lock(path: &Path) -> Result<File> {
    let io = |e| Error::io(path, e);
    // Twice: another process may create the file between our two attempts.
    for _ in 0..2 {
        let before = match fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut opts = OpenOptions::new();
                opts.read(true).write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
                match opts.open(path) {
                    Ok(file) => return Ok(file),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                    Err(e) => return Err(io(e)),
                }
            }
            Err(e) => return Err(io(e)),
        };
        if !before.file_type().is_file() {
            return Err(Error::corrupt(
                path,
                "the lock file is a symbolic link or not a regular file; the store never follows \
                 one here (it could make the store open another file): remove it, the store \
                 creates a new one",
            ));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(io)?;
        let after = file.metadata().map_err(io)?;
        if !same_file(&before, &after) {
            return Err(Error::corrupt(
                path,
                "the lock file was replaced while it was being opened; refusing it (run the \
                 command again, and check who else writes to the store directory)",
            ));
        }
        check_protection(path, &after, Protection::Integrity)?;
        return Ok(file);
    }
    Err(io(std::io::Error::new(
        std::io::ErrorKind::AlreadyExists,
        "the lock file keeps appearing and disappearing; check who else writes to the store directory",
    )))
}

#[cfg(unix)]
fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    (a.dev(), a.ino()) == (b.dev(), b.ino())
}

#[cfg(not(unix))]
fn same_file(_: &fs::Metadata, _: &fs::Metadata) -> bool {
    true
}

/// Writes `dir/name` atomically: a temporary file in the same directory,
/// fsync, rename over the target, fsync of the directory.
fn write_atomic(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let tmp = dir.join(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let target = dir.join(name);
    let result = (|| {
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, mode);
        #[cfg(not(unix))]
        let _ = mode;
        let mut file = opts.open(&tmp).map_err(|e| Error::io(&tmp, e))?;
        file.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
        file.sync_all().map_err(|e| Error::io(&tmp, e))?;
        drop(file);
        fs::rename(&tmp, &target).map_err(|e| Error::io(&target, e))?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[async_trait]
impl KeyStore for FileKeyStore {
    fn name(&self) -> &'static str {
        "file"
    }

    fn clock(&self) -> &dyn Clock {
        &*self.inner.clock
    }

    async fn active(&self) -> Result<KeyInfo> {
        let snap = self.snapshot()?;
        let a = snap
            .ledger
            .active()
            .ok_or_else(|| self.inner.not_initialized())?;
        Ok(KeyInfo {
            kid: a.kid.clone(),
            alg: a.alg,
        })
    }

    async fn sign(&self, kid: &str, signing_input: &[u8]) -> Result<Vec<u8>> {
        let snap = self.snapshot()?;
        let unknown = || Error::UnknownKey {
            kid: kid.to_owned(),
        };
        let record = snap.ledger.get(kid).ok_or_else(unknown)?;
        match record.state_at(self.inner.clock.now()) {
            KeyState::Active => {}
            state => {
                return Err(Error::NotActive {
                    kid: kid.to_owned(),
                    state,
                })
            }
        }
        let key = snap.keys.get(kid).ok_or_else(unknown)?;
        Ok(key.sign_raw(record.alg, signing_input)?)
    }

    async fn verification_keys(&self) -> Result<Jwks> {
        let snap = self.snapshot()?;
        Ok(snap.ledger.verification_keys(self.inner.clock.now(), |r| {
            snap.keys.get(&r.kid).and_then(|k| k.to_public_jwk())
        }))
    }

    async fn list(&self) -> Result<Vec<KeyRecord>> {
        Ok(self.snapshot()?.ledger.list(self.inner.clock.now()))
    }

    async fn policy(&self) -> Result<RotationPolicy> {
        Ok(self.snapshot()?.ledger.policy.clone())
    }

    async fn init(&self, alg: Algorithm, policy: &RotationPolicy) -> Result<RotationReport> {
        let policy = policy.clone();
        let now = self.inner.clock.now();
        let report = self
            .blocking(move |inner| {
                let (active_kid, active) = generate_key(alg)?;
                let (pending_kid, pending) = generate_key(alg)?;
                let ledger = Ledger::new(policy, alg, now, &active_kid, &pending_kid)?;
                // Refuse a directory that is not ours before creating even
                // the lock file in it; checked again under the lock.
                if inner.dir.is_dir() && !inner.metadata_path().exists() {
                    inner.refuse_foreign_files()?;
                }
                inner.write_locked(true, |inner, current| {
                    if current.is_some() {
                        return Err(Error::AlreadyInitialized {
                            backend: "file",
                            location: inner.dir.display().to_string(),
                        });
                    }
                    inner.refuse_foreign_files()?;
                    inner.write_key(&active_kid, &active)?;
                    inner.write_key(&pending_kid, &pending)?;
                    Ok((ledger, init_report(active_kid.clone(), pending_kid.clone())))
                })
            })
            .await?;
        tracing::info!(store = "file", dir = %self.inner.dir.display(), active = %report.active,
            pending = %report.pending, %alg, "key store initialized");
        Ok(report)
    }

    async fn rotate(&self, if_active: Option<&str>) -> Result<RotationReport> {
        let now = self.inner.clock.now();
        let alg = self.snapshot()?.ledger.next_algorithm();
        let if_active = if_active.map(str::to_owned);
        let report = self
            .blocking(move |inner| {
                let (mut kid, mut key) = generate_key(alg)?;
                inner.write_locked(false, |inner, current| {
                    let mut ledger = current.ok_or_else(|| inner.missing_ledger())?;
                    let alg_now = ledger.next_algorithm();
                    if alg_now != alg {
                        (kid, key) = generate_key(alg_now)?;
                    }
                    let report = ledger.rotate(now, if_active.as_deref(), &kid, alg_now)?;
                    inner.write_key(&kid, &key)?;
                    Ok((ledger, report))
                })
            })
            .await?;
        log_rotation("file", &report);
        Ok(report)
    }

    async fn retire_expired(&self) -> Result<Vec<String>> {
        let now = self.inner.clock.now();
        let retired = self
            .blocking(move |inner| {
                inner.write_locked(false, |inner, current| {
                    let mut ledger = current.ok_or_else(|| inner.missing_ledger())?;
                    let retired = ledger.retire_expired(now);
                    Ok((ledger, retired))
                })
            })
            .await?;
        for kid in &retired {
            tracing::info!(store = "file", %kid, "key retired; its private key file was removed");
        }
        Ok(retired)
    }
}

/// Whether `name` is a key file as the store writes them: `<kid>.pem`, the
/// kid being the key's RFC 7638 thumbprint (SHA-256, 43 base64url
/// characters). Only such files make a directory without `keys.json` a
/// damaged store rather than someone else's directory.
fn is_store_key_file(name: &str) -> bool {
    name.strip_suffix(".pem").is_some_and(|kid| {
        kid.len() == 43
            && kid
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}
