//! PKCS#11 modules, loaded and initialized once per process.
//!
//! `C_Initialize` is process-wide: a module is initialized once, and every
//! store on any of its tokens shares it. A store that finds its token gone
//! (a removed token, an HSM that restarted, a module finalized under it)
//! may re-initialize the module, which is how SoftHSM and several HSM
//! clients notice a token that came back; the module's *epoch* counts the
//! initializations, and sessions of an earlier epoch are abandoned, never
//! closed: their handles may name another application's new sessions.
//!
//! Every call into the module holds the module's read lock; a
//! re-initialization takes the write lock, so it waits for calls in flight
//! and no call runs while the module is finalized.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};

use super::error::Pkcs11Error;
use crate::error::Error;
use crate::file::{check_protection, Protection};

/// The shortest time between two re-initializations of a module: other
/// stores of the process lose their sessions each time.
const REINIT_INTERVAL: Duration = Duration::from_secs(1);

/// One loaded module.
pub(crate) struct Module {
    path: PathBuf,
    state: RwLock<State>,
    last_reinit: Mutex<Option<Instant>>,
    /// Object management of this process, one call at a time (see `Ctx`).
    objects: Mutex<()>,
    /// The stores of this process using the module.
    stores: std::sync::atomic::AtomicUsize,
}

struct State {
    ctx: Pkcs11,
    /// Counts the module's initializations by this process.
    epoch: u64,
}

impl std::fmt::Debug for Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Module")
            .field("path", &self.path)
            .field("epoch", &self.epoch())
            .finish()
    }
}

fn initialize(ctx: &Pkcs11) -> Result<(), CkError> {
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        // Another library of this process initialized it: it is usable.
        Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) | Ok(()) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The modules of this process, by canonical path. Never unloaded: a
/// module stays initialized for the life of the process, as PKCS#11
/// applications do.
fn registry() -> &'static Mutex<HashMap<PathBuf, Arc<Module>>> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Arc<Module>>>> = OnceLock::new();
    MODULES.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Loads and initializes the module at `path`, once per process. Blocking.
///
/// The module is a shared library that runs inside this process, so it is
/// held to the file store's rule for files that decide what is trusted: a
/// regular file owned by this user or root that no one else may write.
pub(crate) fn load(path: &Path) -> Result<Arc<Module>, Error> {
    let shown = path.display();
    let bad = |reason: String| Error::invalid_config("module_path", reason);
    let meta = std::fs::metadata(path).map_err(|e| {
        bad(format!(
            "cannot read the PKCS#11 module {shown} (module-path): {e}; give the full path of your HSM client's PKCS#11 library, e.g. /usr/lib/softhsm/libsofthsm2.so"
        ))
    })?;
    if !meta.is_file() {
        return Err(bad(format!(
            "the PKCS#11 module {shown} (module-path) is not a regular file"
        )));
    }
    check_protection(path, &meta, Protection::Integrity).map_err(|e| {
        bad(format!(
            "the PKCS#11 module {shown} runs inside this process, so only a file its owner alone may change is loaded: {e}"
        ))
    })?;
    let canonical = std::fs::canonicalize(path).map_err(|e| {
        bad(format!(
            "cannot resolve the PKCS#11 module path {shown}: {e}"
        ))
    })?;
    check_directories(&canonical).map_err(|e| {
        bad(format!(
            "the PKCS#11 module {shown} runs inside this process, so it is loaded only from directories no other user may change: {e}"
        ))
    })?;
    let mut modules = registry().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(m) = modules.get(&canonical) {
        return Ok(m.clone());
    }
    let target = format!("module {shown}");
    let ctx = Pkcs11::new(&canonical).map_err(|e| {
        Pkcs11Error::call("load the module", &target, e).into_error_retryable(false)
    })?;
    initialize(&ctx).map_err(|e| Pkcs11Error::call("C_Initialize", &target, e).into_error())?;
    let module = Arc::new(Module {
        path: canonical.clone(),
        state: RwLock::new(State { ctx, epoch: 1 }),
        // A module just initialized has just looked for its tokens.
        last_reinit: Mutex::new(Some(Instant::now())),
        objects: Mutex::new(()),
        stores: std::sync::atomic::AtomicUsize::new(0),
    });
    modules.insert(canonical, module.clone());
    Ok(module)
}

/// Checks the directories that hold the module, up to `/`: each owned by
/// root or this user and not writable by others, unless sticky (like
/// `/tmp`, where no one can rename another user's file), the rule `--key`
/// files follow. Otherwise another user could swap the checked file for
/// their own between the check and the load (attacker's review of issue 18).
fn check_directories(canonical: &Path) -> Result<(), Error> {
    let mut dir = canonical.parent();
    while let Some(d) = dir {
        let meta = std::fs::metadata(d).map_err(|e| Error::io(d, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let sticky = meta.permissions().mode() & 0o1000 != 0;
            if !sticky {
                check_protection(d, &meta, Protection::Integrity)?;
            }
        }
        #[cfg(not(unix))]
        let _ = meta;
        dir = d.parent();
    }
    Ok(())
}

impl Module {
    /// Counts a store that uses the module (until [`leave`](Self::leave)).
    pub(crate) fn join(&self) {
        self.stores
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// A store that used the module is gone.
    pub(crate) fn leave(&self) {
        self.stores
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// How many stores of this process use the module.
    pub(crate) fn stores(&self) -> usize {
        self.stores.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The lock that serializes this process's object management.
    pub(crate) fn objects(&self) -> &Mutex<()> {
        &self.objects
    }

    /// The current epoch (initializations by this process).
    pub(crate) fn epoch(&self) -> u64 {
        self.state.read().unwrap_or_else(|e| e.into_inner()).epoch
    }

    /// Runs `f` with the module and its epoch, no re-initialization meanwhile.
    pub(crate) fn call<R>(&self, f: impl FnOnce(&Pkcs11, u64) -> R) -> R {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        f(&state.ctx, state.epoch)
    }

    /// Finalizes and initializes the module again, so that it finds its
    /// tokens anew, unless another store did so since it saw `seen_epoch`
    /// (then `Ok(true)` at once) or the last initialization was less than a
    /// second ago (`Ok(false)`: try later) — unless `now` (the module says
    /// it is not initialized: nothing works until it is). Blocking; waits
    /// for calls in flight.
    pub(crate) fn reinitialize(&self, seen_epoch: u64, now: bool) -> Result<bool, Error> {
        let mut last = self.last_reinit.lock().unwrap_or_else(|e| e.into_inner());
        if self.epoch() != seen_epoch {
            return Ok(true);
        }
        if !now && last.is_some_and(|t| t.elapsed() < REINIT_INTERVAL) {
            return Ok(false);
        }
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        // Sessions die with the finalization; the epoch tells their owners.
        // A module finalized by someone else answers "not initialized".
        match state.ctx.clone().finalize() {
            Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiNotInitialized, _)) => {}
            Err(e) => {
                tracing::warn!(module = %self.path.display(), error = %e, "C_Finalize failed; initializing the module again anyway");
            }
        }
        state.epoch += 1;
        *last = Some(Instant::now());
        initialize(&state.ctx).map_err(|e| {
            Pkcs11Error::call("C_Initialize", format!("module {}", self.path.display()), e)
                .into_error_retryable(true)
        })?;
        tracing::info!(module = %self.path.display(), epoch = state.epoch, "PKCS#11 module initialized again to find its tokens anew");
        Ok(true)
    }
}
