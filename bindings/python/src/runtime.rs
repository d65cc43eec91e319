//! Where the library's work runs when Python calls it: on a worker thread inside a rayon pool
//! of this module's own, with the GIL released. The calling thread meanwhile waits for the
//! result, runs the user's callable whenever the work asks for it (so the callable is only
//! ever called from the thread that called the module, GIL held only for that call), and
//! checks for signals every 50 ms: Ctrl-C sets [`scoresde::interrupt`], the work stops at its
//! next model evaluation, and `KeyboardInterrupt` is raised.
//!
//! Pools are kept per process id and nesting depth: after `os.fork()` the child builds its own
//! (the parent's worker threads do not exist there), and a field evaluated inside a callable
//! during a sampler run gets a pool other than the one whose worker waits for that callable.

use crate::errors::to_py;
use ndarray::{Array2, ArrayView2};
use numpy::{AllowTypeChange, PyArray1, PyArray2, PyArrayLike2};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One evaluation the work asks of the user's callable: `f(x, t)` on the whole batch, or
/// `f(x, t, c)` with every row's class index `c` for a conditional callable.
pub struct Request {
    pub x: Array2<f64>,
    pub t: Vec<f64>,
    pub label: Option<i64>,
    pub reply: mpsc::SyncSender<Result<Array2<f64>, ()>>,
}

/// The work's side of the channel to the calling thread.
pub type Caller = mpsc::Sender<Request>;

/// Asks the calling thread to evaluate the callable; `Err` once it has raised.
pub fn call(
    caller: &Caller,
    t: scoresde::solvers::Time<'_>,
    x: ArrayView2<f64>,
    label: Option<i64>,
) -> Result<Array2<f64>, ()> {
    let (reply, answer) = mpsc::sync_channel(1);
    let t = (0..x.nrows()).map(|i| t.at(i)).collect();
    caller
        .send(Request {
            x: x.to_owned(),
            t,
            label,
            reply,
        })
        .map_err(|_| ())?;
    answer.recv().map_err(|_| ())?
}

static DEPTH: AtomicUsize = AtomicUsize::new(0);

type Pools = HashMap<(u32, usize, Option<usize>), Arc<rayon::ThreadPool>>;
static POOLS: Mutex<Option<Pools>> = Mutex::new(None);

/// The pool of this process for nesting `depth` and `threads` (None: one per core).
fn pool(depth: usize, threads: Option<usize>) -> PyResult<Arc<rayon::ThreadPool>> {
    let pid = std::process::id();
    let mut pools = POOLS.lock().unwrap_or_else(|p| p.into_inner());
    let pools = pools.get_or_insert_with(HashMap::new);
    if pools.keys().any(|k| k.0 != pid) {
        // Forked: the parent's threads do not exist here; its pools are left untouched.
        pools.drain().for_each(|(_, p)| std::mem::forget(p));
    }
    if let Some(p) = pools.get(&(pid, depth, threads)) {
        return Ok(p.clone());
    }
    let mut b = rayon::ThreadPoolBuilder::new().thread_name(|i| format!("scoresde-{i}"));
    if let Some(n) = threads {
        b = b.num_threads(n);
    }
    let p = Arc::new(
        b.build()
            .map_err(|e| PyRuntimeError::new_err(format!("cannot start worker threads: {e}")))?,
    );
    pools.insert((pid, depth, threads), p.clone());
    Ok(p)
}

/// Checks `threads` (None or at least 1).
pub fn check_threads(threads: Option<usize>) -> PyResult<()> {
    if threads == Some(0) {
        return Err(crate::errors::value_error("`threads` must be at least 1"));
    }
    Ok(())
}

/// Runs `work` with the GIL released (see the module doc); `callable` serves its requests.
pub fn compute<T: Send>(
    py: Python<'_>,
    threads: Option<usize>,
    callable: Option<&Py<PyAny>>,
    work: impl FnOnce(Caller) -> scoresde::Result<T> + Send,
) -> PyResult<T> {
    check_threads(threads)?;
    let depth = DEPTH.fetch_add(1, Ordering::SeqCst);
    let pool = pool(depth, threads);
    let result = pool.and_then(|pool| serve(py, &pool, callable, work));
    DEPTH.fetch_sub(1, Ordering::SeqCst);
    result
}

fn serve<T: Send>(
    py: Python<'_>,
    pool: &rayon::ThreadPool,
    callable: Option<&Py<PyAny>>,
    work: impl FnOnce(Caller) -> scoresde::Result<T> + Send,
) -> PyResult<T> {
    let (tx, rx) = mpsc::channel::<Request>();
    let callable = callable.map(|c| c.clone_ref(py));
    let (outcome, raised) = py.detach(move || {
        std::thread::scope(|s| {
            let handle = s.spawn(move || pool.install(move || work(tx)));
            let mut raised: Option<PyErr> = None;
            loop {
                match rx.recv_timeout(Duration::from_millis(50)) {
                    Ok(req) => {
                        let reply = req.reply.clone();
                        let answer = if raised.is_some() {
                            Err(())
                        } else {
                            Python::attach(|py| evaluate(py, callable.as_ref(), req))
                                .map_err(|e| raised = Some(e))
                        };
                        let _ = reply.send(answer);
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        if raised.is_none() {
                            if let Err(e) = Python::attach(|py| py.check_signals()) {
                                scoresde::interrupt::request();
                                raised = Some(e);
                            }
                        }
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
            }
            (handle.join(), raised)
        })
    });
    if let Some(e) = raised {
        scoresde::interrupt::clear();
        return Err(e);
    }
    match outcome {
        Ok(r) => r.map_err(to_py),
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(PyRuntimeError::new_err(format!(
                "internal error (a bug in scoresde): {what}"
            )))
        }
    }
}

/// Calls the user's `f(x, t)` (or `f(x, t, c)`) on the calling thread; its result as an
/// `n × d` float64 array.
fn evaluate(py: Python<'_>, callable: Option<&Py<PyAny>>, req: Request) -> PyResult<Array2<f64>> {
    let f = callable.ok_or_else(|| PyRuntimeError::new_err("no callable to evaluate"))?;
    let (n, d) = req.x.dim();
    let x = PyArray2::from_owned_array(py, req.x);
    let t = PyArray1::from_slice(py, &req.t);
    let out = match req.label {
        None => f.bind(py).call1((x, t))?,
        Some(c) => f
            .bind(py)
            .call1((x, t, PyArray1::from_vec(py, vec![c; n])))?,
    };
    let arr = out
        .extract::<PyArrayLike2<'_, f64, AllowTypeChange>>()
        .map_err(|_| {
            crate::errors::value_error(format!(
                "the model returned {} where an array of shape ({}, {}) was expected",
                out.get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default(),
                n,
                d
            ))
        })?;
    let view = arr.as_array();
    if view.dim() != (n, d) {
        return Err(crate::errors::value_error(format!(
            "the model returned an array of shape ({}, {}); expected ({n}, {d}), the shape of x",
            view.nrows(),
            view.ncols(),
        )));
    }
    Ok(view.to_owned())
}
