//! The write lock of a store: a `CKO_DATA` object, so that writes of
//! several processes (on one host or many, sharing one HSM) serialize.
//!
//! # Why a lock object, and how it is made safe
//!
//! PKCS#11 has no compare-and-swap: `C_CreateObject` never refuses an
//! object because one with the same label exists, and no attribute can be
//! changed only if it still has a given value. So neither a "create if
//! absent" nor a conditional ledger write can decide between two writers.
//! What the token does guarantee is that an object, once created, is seen by
//! every later search of every session. The lock builds on that alone, the
//! way two flags do in Dekker's algorithm:
//!
//! 1. look for live lock objects of the store; wait while there is one;
//! 2. create this writer's lock object;
//! 3. look again: if another writer's live lock exists, destroy this one,
//!    back off for a random moment and start over; else the lock is held.
//!
//! Two writers cannot both pass step 3: whichever created its object second
//! sees the first one's in its search. (Both may see each other and back
//! off; the random back-off ends that.) While holding the lock a writer
//! reads the ledger, writes the next generation and checks again, before
//! writing, that the generation it read is still the newest and its lock
//! object still exists (compare-before-write): a writer whose lock was
//! taken from it as abandoned writes nothing.
//!
//! Before the lock object, a writer takes a lock file of this host
//! (`flock`, in `$XDG_RUNTIME_DIR/jwtkit-pkcs11/` or
//! `/tmp/jwtkit-pkcs11-UID/`), which the kernel releases when the process
//! dies. Writers of one host then never run the protocol above at the same
//! moment, which SoftHSM needs: its file store can hide an object that one
//! process created from another process that created one at the same
//! moment (each takes the token's generation counter as its own), so two
//! SoftHSM writers could both see only their own lock object. A network
//! HSM shared by hosts has no such flaw, and the lock object serializes
//! the hosts.
//!
//! A lock whose holder died (`kill -9`, a crash, a lost host) must not stop
//! the store forever. A lock counts as **abandoned** when its holder's
//! process is gone — checked at once when the holder ran on this host, in
//! this PID namespace since this boot (`/proc/PID/stat` with the same start
//! time) — or, for holders elsewhere, when its lease (`lock_lease`, 2
//! minutes by default, far longer than any write) has passed by the wall
//! clock, so hosts sharing an HSM need synchronized clocks (NTP). An
//! abandoned lock is destroyed by the next writer.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cryptoki::object::ObjectHandle;
use serde::{Deserialize, Serialize};

use super::state::{create_data, data_objects, destroy, value, APP_LOCK};
use super::token::{Retry, Token};
use crate::error::Result;

/// The `format` of the lock objects' JSON.
const LOCK_FORMAT: &str = "jwtkit-pkcs11-lock/1";

/// Who holds a lock, as its object's `CKA_VALUE` says (JSON).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Holder {
    format: String,
    /// A random id of this acquisition.
    pub(crate) nonce: String,
    pub(crate) pid: u32,
    /// The host name, for messages.
    pub(crate) host: String,
    /// Boot id and PID namespace: where `pid` means this process.
    machine: Option<String>,
    /// The process's start time (clock ticks since boot, `/proc/PID/stat`).
    start: Option<u64>,
    /// What the holder is doing (`rotate`, `init`, …).
    pub(crate) operation: String,
    /// Wall-clock milliseconds since the epoch.
    pub(crate) acquired_ms: u64,
    pub(crate) expires_ms: u64,
}

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `boot_id/pid-namespace`: two processes with the same value see the same
/// PIDs. `None` off Linux (then only the lease tells).
fn machine() -> Option<String> {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let ns = std::fs::read_link("/proc/self/ns/pid").ok()?;
    Some(format!("{}/{}", boot.trim(), ns.display()))
}

/// The start time of process `pid` (field 22 of `/proc/PID/stat`).
fn start_time(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown host".into())
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    // The system RNG failing is not something to continue past.
    aws_lc_rs::rand::fill(&mut buf).unwrap_or_else(|_| {
        // Fall back to the time: a nonce only has to differ between writers.
        let t = wall_ms().to_le_bytes();
        for (i, b) in buf.iter_mut().enumerate() {
            *b = t[i % 8] ^ (std::process::id() as u8).wrapping_add(i as u8);
        }
    });
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

impl Holder {
    fn this_process(operation: &str, lease: Duration) -> Holder {
        let now = wall_ms();
        Holder {
            format: LOCK_FORMAT.into(),
            nonce: random_hex(16),
            pid: std::process::id(),
            host: host(),
            machine: machine(),
            start: start_time("self"),
            operation: operation.into(),
            acquired_ms: now,
            expires_ms: now.saturating_add(lease.as_millis() as u64),
        }
    }

    /// Whether the holder is gone: its process ended (when it ran where
    /// this one can see it), or its lease passed.
    fn abandoned(&self, now_ms: u64, here: &Option<String>) -> bool {
        if now_ms > self.expires_ms {
            return true;
        }
        if here.is_some() && self.machine == *here {
            return start_time(&self.pid.to_string()) != self.start;
        }
        false
    }

    /// `pid 123 on host h (rotate, since 2 s)`, for messages.
    fn describe(&self, now_ms: u64) -> String {
        format!(
            "pid {} on {} ({}, for {:.1} s)",
            self.pid,
            self.host,
            self.operation,
            now_ms.saturating_sub(self.acquired_ms) as f64 / 1000.0
        )
    }
}

/// A lock object as found.
#[derive(Debug, Clone)]
struct Found {
    /// The object's handle, valid only in module epoch `.1`: once the
    /// module is initialized again a handle may name another object.
    handle: (ObjectHandle, u64),
    /// `None`: not a lock's JSON (a create cut short by a crash).
    holder: Option<Holder>,
}

/// A held lock; given back with [`StoreLock::release`] (dropping it
/// releases it too, from a thread of its own).
pub(crate) struct StoreLock {
    token: Arc<Token>,
    label: String,
    pub(crate) holder: Holder,
    /// The lock object's handle and the module epoch it belongs to.
    handle: Option<(ObjectHandle, u64)>,
    /// The host's lock file, locked; released (closed) after the object.
    host: Option<std::fs::File>,
}

impl std::fmt::Debug for StoreLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreLock")
            .field("label", &self.label)
            .field("nonce", &self.holder.nonce)
            .finish_non_exhaustive()
    }
}

async fn find(token: &Arc<Token>, label: &str) -> Result<Vec<Found>> {
    let label = label.to_owned();
    token
        .run("read the lock", Retry::Idempotent, move |c| {
            let mut out = Vec::new();
            for handle in data_objects(c, &label, APP_LOCK)? {
                let Some(bytes) = value(c, handle)? else {
                    continue;
                };
                let holder = serde_json::from_slice::<Holder>(&bytes)
                    .ok()
                    .filter(|h| h.format == LOCK_FORMAT);
                out.push(Found {
                    handle: (handle, c.conn.epoch),
                    holder,
                });
            }
            Ok(out)
        })
        .await
}

/// Destroys the objects `handles` found, those of the module's current
/// epoch only: a handle of an earlier one may name another object now (a
/// key!). Locks left so are found again by the next writer.
async fn destroy_all(token: &Arc<Token>, handles: Vec<(ObjectHandle, u64)>) -> Result<()> {
    if handles.is_empty() {
        return Ok(());
    }
    token
        .run("remove a lock", Retry::Idempotent, move |c| {
            for (h, epoch) in &handles {
                if *epoch == c.conn.epoch {
                    destroy(c, *h)?;
                }
            }
            Ok(())
        })
        .await
}

/// Destroys this process's lock object `nonce` of store `label`: by its
/// handle when that is of the module's current epoch, and by a search for
/// its nonce (a re-initialized module gives the object another handle).
fn destroy_own(
    c: &super::token::Ctx<'_>,
    handle: (ObjectHandle, u64),
    label: &str,
    nonce: &str,
) -> std::result::Result<(), super::token::OpError> {
    if handle.1 == c.conn.epoch {
        destroy(c, handle.0)?;
    }
    for h in data_objects(c, label, APP_LOCK)? {
        if let Some(bytes) = value(c, h)? {
            if serde_json::from_slice::<Holder>(&bytes).is_ok_and(|x| x.nonce == nonce) {
                destroy(c, h)?;
            }
        }
    }
    Ok(())
}

/// A random pause of 10–80 ms.
fn backoff() -> Duration {
    let mut b = [0u8; 1];
    let _ = aws_lc_rs::rand::fill(&mut b);
    Duration::from_millis(10 + u64::from(b[0]) * 70 / 255)
}

/// The effective uid, from `/proc/self/status` (std has no `geteuid`).
fn euid() -> Option<u32> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The directory of this user's lock files: created 0700, and refused
/// when another user owns it or may write it (they could hold our locks).
fn lock_dir() -> std::result::Result<std::path::PathBuf, String> {
    let dir = match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(runtime) => std::path::PathBuf::from(runtime).join("jwtkit-pkcs11"),
        None => std::env::temp_dir().join(format!(
            "jwtkit-pkcs11-{}",
            euid().map_or_else(|| "user".to_owned(), |u| u.to_string())
        )),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(format!(
                    "cannot create the lock directory {}: {e}",
                    dir.display()
                ))
            }
        }
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(&dir)
        .map_err(|e| format!("cannot create the lock directory {}: {e}", dir.display()))?;
    let meta = std::fs::symlink_metadata(&dir)
        .map_err(|e| format!("cannot read the lock directory {}: {e}", dir.display()))?;
    if !meta.is_dir() {
        return Err(format!("{} is not a directory; remove it", dir.display()));
    }
    crate::file::check_protection(&dir, &meta, crate::file::Protection::Integrity)
        .map_err(|e| format!("the lock directory is not this user's alone: {e}"))?;
    Ok(dir)
}

/// Opens (creating) the lock file of `key` and tries to lock it.
fn try_host_lock(key: &str) -> std::result::Result<Option<std::fs::File>, String> {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, key.as_bytes());
    let name: String = digest.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let path = lock_dir()?.join(format!("{name}.lock"));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("cannot open the lock file {}: {e}", path.display()))?;
    match fs4::FileExt::try_lock(&file) {
        Ok(()) => Ok(Some(file)),
        Err(fs4::TryLockError::WouldBlock) => Ok(None),
        Err(fs4::TryLockError::Error(e)) => {
            Err(format!("cannot lock the lock file {}: {e}", path.display()))
        }
    }
}

/// Takes this host's lock of `key`, waiting until `deadline`.
async fn host_lock(
    token: &Arc<Token>,
    label: &str,
    key: &str,
    deadline: Instant,
    wait: Duration,
) -> Result<std::fs::File> {
    loop {
        let k = key.to_owned();
        let tried = tokio::task::spawn_blocking(move || try_host_lock(&k))
            .await
            .unwrap_or_else(|e| Err(format!("the lock file task failed: {e}")));
        match tried {
            Ok(Some(file)) => return Ok(file),
            Ok(None) if Instant::now() < deadline => tokio::time::sleep(backoff()).await,
            Ok(None) => {
                return Err(super::token::invalid(
                    "take the write lock",
                    token,
                    format!(
                        "another process of this host is writing the store `{label}` and it did not finish within {} s",
                        wait.as_secs_f32()
                    ),
                    "try again later; if that process hangs, stop it (the lock is released when it ends)",
                    true,
                ))
            }
            Err(reason) => {
                return Err(crate::error::Error::invalid_config("lock_dir", reason));
            }
        }
    }
}

/// Waits, up to `wait`, until no writer of this host is writing store
/// `label` (whose host key is `host_key`), and holds the host's lock file
/// until the returned guard is dropped: a read made meanwhile sees no
/// ledger swap of this host half done.
pub(crate) async fn quiet(
    token: &Arc<Token>,
    label: &str,
    host_key: &str,
    wait: Duration,
) -> Result<std::fs::File> {
    host_lock(token, label, host_key, Instant::now() + wait, wait).await
}

/// Takes the write lock of store `label`, waiting up to `wait` for another
/// writer; `lease` is how long others wait before they take it from this
/// process should it stop answering (on another host).
///
/// `host_key` names the store on this host (module, token, object): the
/// lock file taken first.
pub(crate) async fn acquire(
    token: &Arc<Token>,
    label: &str,
    host_key: &str,
    operation: &str,
    wait: Duration,
    lease: Duration,
) -> Result<StoreLock> {
    let deadline = Instant::now() + wait;
    let mut host = Some(host_lock(token, label, host_key, deadline, wait).await?);
    let here = machine();
    loop {
        let now = wall_ms();
        let (live, abandoned): (Vec<Found>, Vec<Found>) = find(token, label)
            .await?
            .into_iter()
            .partition(|f| f.holder.as_ref().is_some_and(|h| !h.abandoned(now, &here)));
        for f in &abandoned {
            match &f.holder {
                Some(h) => {
                    tracing::warn!(store = label, holder = %h.describe(now), "removing the write lock of a writer that is gone")
                }
                None => tracing::warn!(store = label, "removing a damaged write lock object"),
            }
        }
        destroy_all(token, abandoned.into_iter().map(|f| f.handle).collect()).await?;
        if let Some(other) = live.first().and_then(|f| f.holder.clone()) {
            if Instant::now() >= deadline {
                return Err(super::token::invalid(
                    "take the write lock",
                    token,
                    format!(
                        "the store `{label}` is being written by {} and it did not finish within {} s",
                        other.describe(now),
                        wait.as_secs_f32()
                    ),
                    "try again later; if that process hangs, stop it (its lock is removed as soon as it is gone, or after its lease)",
                    true,
                ));
            }
            tokio::time::sleep(backoff()).await;
            continue;
        }
        let holder = Holder::this_process(operation, lease);
        let value = serde_json::to_vec(&holder).unwrap_or_default();
        let label_owned = label.to_owned();
        let handle = token
            .run("take the write lock", Retry::Checked, move |c| {
                Ok((
                    create_data(c, &label_owned, APP_LOCK, &value)?,
                    c.conn.epoch,
                ))
            })
            .await?;
        let mut lock = StoreLock {
            token: token.clone(),
            label: label.to_owned(),
            holder,
            handle: Some(handle),
            host: None,
        };
        let now = wall_ms();
        let contended = find(token, label).await?.into_iter().any(|f| {
            f.holder
                .as_ref()
                .is_some_and(|h| h.nonce != lock.holder.nonce && !h.abandoned(now, &here))
        });
        if !contended {
            lock.host = host.take();
            return Ok(lock);
        }
        lock.release().await;
        tokio::time::sleep(backoff()).await;
    }
}

impl StoreLock {
    /// Gives the lock back (destroys its object). A failure is logged: the
    /// lock is then abandoned once this process ends or its lease passes.
    pub(crate) async fn release(mut self) {
        let Some(handle) = self.handle.take() else {
            return;
        };
        let nonce = self.holder.nonce.clone();
        let label = self.label.clone();
        let result = self
            .token
            .run("release the write lock", Retry::Idempotent, move |c| {
                destroy_own(c, handle, &label, &nonce)
            })
            .await;
        if let Err(e) = result {
            tracing::warn!(store = %self.label, error = %e, "could not release the write lock; other writers take it when this process ends or after its lease");
        }
        // Closing the lock file releases this host's lock, after the object.
        drop(self.host.take());
    }
}

/// Whether the lock `nonce` of store `label` is still on the token
/// (another writer did not take it as abandoned). On a session the caller has.
pub(crate) fn held(
    c: &super::token::Ctx<'_>,
    label: &str,
    nonce: &str,
) -> std::result::Result<bool, super::token::OpError> {
    for handle in data_objects(c, label, APP_LOCK)? {
        if let Some(bytes) = value(c, handle)? {
            if serde_json::from_slice::<Holder>(&bytes).is_ok_and(|h| h.nonce == nonce) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

impl Drop for StoreLock {
    fn drop(&mut self) {
        // Dropped without `release` (the write was cancelled): release it
        // from a thread of its own, since this may be an async context.
        let Some(handle) = self.handle.take() else {
            return;
        };
        let token = self.token.clone();
        let (label, nonce) = (self.label.clone(), self.holder.nonce.clone());
        let runtime = tokio::runtime::Handle::try_current();
        if let Ok(rt) = runtime {
            rt.spawn(async move {
                let _ = token
                    .run("release the write lock", Retry::Idempotent, move |c| {
                        destroy_own(c, handle, &label, &nonce)
                    })
                    .await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_local_holder_is_abandoned_at_once() {
        let here = machine();
        assert!(here.is_some(), "Linux exposes /proc");
        let me = Holder::this_process("rotate", Duration::from_secs(120));
        let now = wall_ms();
        assert!(!me.abandoned(now, &here), "this process is alive");
        // The same pid with another start time: a reused pid.
        let reused = Holder {
            start: me.start.map(|s| s + 1),
            ..me.clone()
        };
        assert!(reused.abandoned(now, &here));
        // A child that exited.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let gone = Holder { pid, ..me.clone() };
        assert!(gone.abandoned(now, &here));
        // Elsewhere: only the lease tells.
        let remote = Holder {
            machine: Some("another-boot/pid:[1]".into()),
            pid,
            ..me.clone()
        };
        assert!(!remote.abandoned(now, &here));
        assert!(remote.abandoned(me.expires_ms + 1, &here));
        assert!(me.describe(now).contains("rotate"));
    }
}
