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
//! previous `keys.json` — the previous consistent state. Leftover temporary
//! files and key files `keys.json` does not name (or names as retired) are
//! removed by the next write.

use std::collections::HashMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use async_trait::async_trait;
use jwt_core::{Algorithm, Clock, Jwks, SigningKey, SystemClock};

use crate::error::{Error, Result};
use crate::lifecycle::{generate_key, kid_is_safe, Ledger};
use crate::memory::log_rotation;
use crate::policy::RotationPolicy;
use crate::store::{KeyInfo, KeyRecord, KeyState, KeyStore, RotationReport};

/// The metadata file's name.
pub const METADATA_FILE: &str = "keys.json";
/// The lock file's name.
pub const LOCK_FILE: &str = ".lock";
const MAX_METADATA_BYTES: u64 = 4 << 20;
const MAX_KEY_BYTES: u64 = 64 << 10;

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
/// let now = jwt_core::time::now_unix();
/// let init = store.init(Algorithm::ES256, &RotationPolicy::default(), now).await?;
/// let rotated = store.rotate(now, None).await?;
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

    fn snapshot(&self) -> Result<Arc<Snapshot>> {
        let path = self.metadata_path();
        let stamp = match fs::metadata(&path) {
            Ok(m) => Stamp::of(&m),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(self.not_initialized())
            }
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
            None => return Err(self.not_initialized()),
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
        // Whoever can write keys.json or the directory decides which keys
        // verify and for how long: refuse group- or world-writable ones.
        check_not_writable_by_others(&path, &meta)?;
        let dir_meta = std::fs::metadata(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        check_not_writable_by_others(&self.dir, &dir_meta)?;
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
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(Error::InsecurePermissions {
                    path,
                    mode,
                    problem: "lets others read a private key; run `chmod 600` on it",
                });
            }
        }
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
        let lock_path = self.dir.join(LOCK_FILE);
        let lock = open_private(&lock_path, false).map_err(|e| Error::io(&lock_path, e))?;
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

    fn write_key(&self, kid: &str, key: &SigningKey) -> Result<()> {
        let pem = key.to_pkcs8_pem()?;
        write_atomic(&self.dir, &format!("{kid}.pem"), pem.as_bytes(), 0o600)
    }

    /// Removes leftovers of interrupted writes and the private keys of
    /// retired keys. Runs under the lock, so no other writer is mid-write.
    fn sweep(&self, ledger: &Ledger) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let remove = if name.starts_with('.') && name.contains(".tmp-") {
                true
            } else if let Some(kid) = name.strip_suffix(".pem") {
                kid_is_safe(kid) && ledger.get(kid).is_none_or(|r| r.state == KeyState::Retired)
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
    }
}

/// Refuses a metadata file or store directory that others can write.
fn check_not_writable_by_others(path: &Path, meta: &std::fs::Metadata) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o022 != 0 {
            return Err(Error::InsecurePermissions {
                path: path.to_owned(),
                mode,
                problem:
                    "lets others than its owner change which keys verify; run `chmod go-w` on it \
                          (the store creates its directory 0700)",
            });
        }
    }
    #[cfg(not(unix))]
    let _ = (path, meta);
    Ok(())
}

fn create_dir(dir: &Path) -> Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| Error::io(dir, e))
}

fn open_private(path: &Path, create_new: bool) -> std::io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.read(true).write(true);
    if create_new {
        opts.create_new(true);
    } else {
        opts.create(true).truncate(false);
    }
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path)
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
        let now = self.inner.clock.now();
        Ok(Jwks {
            keys: snap
                .ledger
                .keys
                .iter()
                .filter(|r| r.state_at(now).is_published())
                .filter_map(|r| snap.keys.get(&r.kid).and_then(|k| k.to_public_jwk()))
                .collect(),
        })
    }

    async fn list(&self) -> Result<Vec<KeyRecord>> {
        Ok(self.snapshot()?.ledger.list(self.inner.clock.now()))
    }

    async fn policy(&self) -> Result<RotationPolicy> {
        Ok(self.snapshot()?.ledger.policy.clone())
    }

    async fn init(
        &self,
        alg: Algorithm,
        policy: &RotationPolicy,
        now: i64,
    ) -> Result<RotationReport> {
        let policy = policy.clone();
        let report = self
            .blocking(move |inner| {
                let (active_kid, active) = generate_key(alg)?;
                let (pending_kid, pending) = generate_key(alg)?;
                let ledger = Ledger::new(policy, alg, now, &active_kid, &pending_kid)?;
                inner.write_locked(true, |inner, current| {
                    if current.is_some() {
                        return Err(Error::AlreadyInitialized {
                            backend: "file",
                            location: inner.dir.display().to_string(),
                        });
                    }
                    inner.write_key(&active_kid, &active)?;
                    inner.write_key(&pending_kid, &pending)?;
                    Ok((
                        ledger,
                        RotationReport {
                            previous: None,
                            active: active_kid.clone(),
                            pending: pending_kid.clone(),
                            previous_retire_at: None,
                            retired: Vec::new(),
                            published_for_secs: None,
                        },
                    ))
                })
            })
            .await?;
        tracing::info!(store = "file", dir = %self.inner.dir.display(), active = %report.active,
            pending = %report.pending, %alg, "key store initialized");
        Ok(report)
    }

    async fn rotate(&self, now: i64, if_active: Option<&str>) -> Result<RotationReport> {
        let alg = self.snapshot()?.ledger.next_algorithm();
        let if_active = if_active.map(str::to_owned);
        let report = self
            .blocking(move |inner| {
                let (mut kid, mut key) = generate_key(alg)?;
                inner.write_locked(false, |inner, current| {
                    let mut ledger = current.ok_or_else(|| inner.not_initialized())?;
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

    async fn retire_expired(&self, now: i64) -> Result<Vec<String>> {
        let retired = self
            .blocking(move |inner| {
                inner.write_locked(false, |inner, current| {
                    let mut ledger = current.ok_or_else(|| inner.not_initialized())?;
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
