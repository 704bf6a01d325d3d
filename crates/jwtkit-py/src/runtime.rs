//! The package's tokio runtime, one per process, and the guard that keeps
//! objects made before a `fork()` away from the child.
//!
//! `fork()` copies the calling thread only. A runtime created before it is,
//! in the child, a runtime without its worker and blocking-pool threads
//! (whatever is handed to it waits forever), whose I/O driver is an epoll
//! instance *shared* with the parent: a socket registered there by the
//! child, or deregistered when the child drops an object, changes the
//! parent's registrations (the parent then aborts, or reads the child's
//! pointers as its own). So:
//!
//! - [`runtime`] keeps one runtime per process id: the first call in a
//!   forked child builds a fresh one (its own threads, its own epoll), and
//!   the inherited one is leaked, never used nor dropped.
//! - The `*_async` methods run on that same runtime ([`awaitable`] through
//!   pyo3-async-runtimes' generic bridge with [`PerProcess`]), never on
//!   pyo3-async-runtimes' own process-wide runtime.
//! - Objects holding connections or tasks of a runtime ([`ProcessLocal`]:
//!   key stores, verifiers, token services, JWKS clients) refuse use in
//!   another process with a clear error, and a child that drops one leaks it
//!   instead of touching the parent's runtime.

use std::cell::OnceCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use pyo3_async_runtimes::generic;
use pyo3_async_runtimes::TaskLocals;
use tokio::runtime::Runtime;

/// The runtime of one process, and the one a child of it built (each
/// process appends to the chain it inherited, in its own memory).
struct Generation {
    pid: u32,
    runtime: Runtime,
    /// Completions of awaitables running now (see [`wait_for_completions`]).
    completing: AtomicUsize,
    next: OnceLock<Box<Generation>>,
}

/// The first runtime of the chain (the one of the process that first used
/// the package).
static FIRST: OnceLock<Generation> = OnceLock::new();

/// The last runtime of the chain, whichever process built it: reading it
/// takes no lock (an initialized `OnceLock` is one atomic load), so a fork
/// while another thread looks the runtime up cannot leave the child
/// waiting on a lock held by a thread it does not have.
fn last() -> Option<&'static Generation> {
    let mut generation = FIRST.get()?;
    while let Some(next) = generation.next.get() {
        generation = next;
    }
    Some(generation)
}

/// This process's generation if it has one already (no runtime is built).
fn current_generation() -> Option<&'static Generation> {
    let pid = std::process::id();
    last().filter(|g| g.pid == pid)
}

/// This process's runtime if it has one already (no runtime is built).
fn current() -> Option<&'static Runtime> {
    current_generation().map(|g| &g.runtime)
}

/// A multi-thread runtime with every driver (I/O, time) enabled.
fn build() -> PyResult<Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("jwtkit-runtime")
        .build()
        .map_err(|e| {
            crate::errors::to_py_err(
                "backend",
                format!(
                    "could not start jwtkit's async runtime (threads, an epoll instance): {e}; \
                     check the process's thread and file-descriptor limits"
                ),
            )
        })
}

/// This process's tokio runtime, built on first use, shared by the sync
/// methods' [`block_on`] and the `*_async` methods. In a child of a
/// process that had one, the first call builds the child's own; the
/// parent's is never touched (see the module documentation).
pub(crate) fn runtime() -> PyResult<&'static Runtime> {
    loop {
        if let Some(runtime) = current() {
            return Ok(runtime);
        }
        let pid = std::process::id();
        let generation = Generation {
            pid,
            runtime: build()?,
            completing: AtomicUsize::new(0),
            next: OnceLock::new(),
        };
        // Another thread of this process may have built one meanwhile: the
        // first installed wins, the other is shut down unused (without
        // waiting: nothing ran on it).
        let lost = match last() {
            None => FIRST.set(generation).err(),
            Some(tail) => tail.next.set(Box::new(generation)).err().map(|b| *b),
        };
        if let Some(lost) = lost {
            lost.runtime.shutdown_background();
        }
    }
}

/// Runs `fut` to completion on the runtime with the GIL released, so other
/// Python threads run while this one waits on a store or a signature.
pub(crate) fn block_on<F>(py: Python<'_>, fut: F) -> PyResult<F::Output>
where
    F: Future + Send,
    F::Output: Send,
{
    let runtime = runtime()?;
    Ok(py.detach(|| runtime.block_on(fut)))
}

/// A Python awaitable for `fut`, run on this process's runtime (for the
/// `*_async` methods, called from a coroutine on a running asyncio loop).
pub(crate) fn awaitable<'py, F, T>(py: Python<'py>, fut: F) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = PyResult<T>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    // Built here, where a failure can be raised: `PerProcess::spawn` then
    // finds it.
    runtime()?;
    generic::future_into_py::<PerProcess, F, T>(py, fut)
}

/// pyo3-async-runtimes' bridge on this process's runtime (its own
/// `tokio::future_into_py` uses one runtime for the life of the library,
/// which a forked child inherits without its threads).
pub(crate) struct PerProcess;

tokio::task_local! {
    /// The asyncio loop and context of the awaitable a task completes.
    static TASK_LOCALS: OnceCell<TaskLocals>;
}

/// Why a spawned task did not complete.
pub(crate) enum SpawnError {
    /// It panicked or was cancelled.
    Join(tokio::task::JoinError),
    /// This process has no runtime (its creation failed; `awaitable`
    /// raised that error before anything was spawned).
    NoRuntime,
}

impl generic::JoinError for SpawnError {
    fn is_panic(&self) -> bool {
        matches!(self, SpawnError::Join(e) if e.is_panic())
    }

    fn into_panic(self) -> Box<dyn std::any::Any + Send + 'static> {
        match self {
            SpawnError::Join(e) => match e.try_into_panic() {
                Ok(payload) => payload,
                Err(e) => Box::new(e.to_string()),
            },
            SpawnError::NoRuntime => Box::new("jwtkit's runtime is not running".to_owned()),
        }
    }
}

/// A task spawned on this process's runtime.
pub(crate) enum Spawned {
    /// Running.
    Task(tokio::task::JoinHandle<()>),
    /// Never started: no runtime.
    NoRuntime,
}

impl Future for Spawned {
    type Output = Result<(), SpawnError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            Spawned::Task(handle) => Pin::new(handle).poll(cx).map_err(SpawnError::Join),
            Spawned::NoRuntime => Poll::Ready(Err(SpawnError::NoRuntime)),
        }
    }
}

impl generic::Runtime for PerProcess {
    type JoinError = SpawnError;
    type JoinHandle = Spawned;

    fn spawn<F>(fut: F) -> Spawned
    where
        F: Future<Output = ()> + Send + 'static,
    {
        match current() {
            Some(runtime) => Spawned::Task(runtime.spawn(fut)),
            None => Spawned::NoRuntime,
        }
    }

    /// The bridge's blocking tasks complete Python futures (they take the
    /// GIL); they are counted, and skipped once the interpreter exits.
    fn spawn_blocking<F>(f: F) -> Spawned
    where
        F: FnOnce() + Send + 'static,
    {
        match current_generation() {
            Some(generation) => Spawned::Task(generation.runtime.spawn_blocking(move || {
                generation.completing.fetch_add(1, Ordering::SeqCst);
                if EXITING.load(Ordering::SeqCst) {
                    // The interpreter is finalizing: taking the GIL now
                    // would end this thread inside Python (a crash). The
                    // future is left unresolved; its loop is gone anyway.
                    std::mem::forget(f);
                } else {
                    f();
                }
                generation.completing.fetch_sub(1, Ordering::SeqCst);
            })),
            None => Spawned::NoRuntime,
        }
    }
}

impl generic::ContextExt for PerProcess {
    fn scope<F, R>(locals: TaskLocals, fut: F) -> Pin<Box<dyn Future<Output = R> + Send>>
    where
        F: Future<Output = R> + Send + 'static,
    {
        let cell = OnceCell::new();
        let _ = cell.set(locals);
        Box::pin(TASK_LOCALS.scope(cell, fut))
    }

    fn get_task_locals() -> Option<TaskLocals> {
        TASK_LOCALS
            .try_with(|c| c.get().cloned())
            .unwrap_or_default()
    }
}

/// Set when the interpreter exits (an `atexit` hook).
static EXITING: AtomicBool = AtomicBool::new(false);

/// How long the exit hook waits for completions under way.
const EXIT_WAIT: Duration = Duration::from_secs(2);

/// The `atexit` hook: no completion of an awaitable starts from now on, and
/// those under way (a blocking thread that handed a result to asyncio and
/// still holds Python objects) finish before the interpreter finalizes; a
/// thread taking the GIL during finalization is ended by CPython inside
/// the call, which crashed the process at exit now and then.
#[pyfunction]
pub(crate) fn wait_for_completions(py: Python<'_>) {
    EXITING.store(true, Ordering::SeqCst);
    let Some(generation) = current_generation() else {
        return;
    };
    let start = Instant::now();
    py.detach(|| {
        while generation.completing.load(Ordering::SeqCst) > 0 && start.elapsed() < EXIT_WAIT {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
}

/// Registers [`wait_for_completions`] with `atexit`.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let hook = wrap_pyfunction!(wait_for_completions, m)?;
    m.py().import("atexit")?.call_method1("register", (hook,))?;
    Ok(())
}

// ---------------------------------------------------------------------------
// Objects bound to the process that made them
// ---------------------------------------------------------------------------

/// A value holding connections or tasks of the runtime of the process that
/// made it: [`get`](Self::get) refuses it in any other process (a child
/// after `fork()`), and dropping it there leaks it, so the child never
/// touches the parent's runtime (deregistering a socket from the shared
/// epoll instance would remove the parent's registration).
pub(crate) struct ProcessLocal<T> {
    pid: u32,
    /// `None` only while being dropped.
    value: Option<T>,
    /// The Python class, for the message.
    class: &'static str,
}

impl<T> ProcessLocal<T> {
    /// `value`, bound to this process; `class` names it in the error.
    pub(crate) fn new(class: &'static str, value: T) -> Self {
        ProcessLocal {
            pid: std::process::id(),
            value: Some(value),
            class,
        }
    }

    /// The value, in the process that made it; a `ConfigurationError`
    /// saying what to do in any other.
    pub(crate) fn get(&self) -> PyResult<&T> {
        let pid = std::process::id();
        match &self.value {
            Some(value) if pid == self.pid => Ok(value),
            _ => Err(crate::errors::to_py_err(
                "forked",
                format!(
                    "this {class} was created in process {parent}, before this process ({pid}) \
                     was forked from it; its connections and background tasks belong to that \
                     process's runtime and cannot be used here. Create KeyStore/TokenService/\
                     PyJWKClient in each worker after the fork, and do not use them in the parent \
                     before forking (gunicorn --preload: create them in a post_fork hook or \
                     lazily on first use in the worker, not at import)",
                    class = self.class,
                    parent = self.pid,
                ),
            )),
        }
    }

    /// The value whatever the process, for what touches no runtime (a
    /// name, a repr); `None` only while being dropped.
    pub(crate) fn peek(&self) -> Option<&T> {
        self.value.as_ref()
    }

    /// Whether this is the process that made the value.
    pub(crate) fn is_home(&self) -> bool {
        std::process::id() == self.pid
    }
}

impl<T> Drop for ProcessLocal<T> {
    fn drop(&mut self) {
        if let Some(value) = self.value.take() {
            if !self.is_home() {
                // The parent's connections and tasks: leaked, not closed.
                std::mem::forget(value);
            }
        }
    }
}
