//! A process-wide request to stop the running computation (a front end's Ctrl-C: the Python
//! module sets it when `KeyboardInterrupt` arrives while Rust computes). Model evaluations
//! ([`crate::score::Counted`]) then return NaN, which every sampler and integrator stops on at
//! the step it is in, and the trainer stops before its next step; the run returns
//! [`crate::Error::Interrupted`]. Files already written stay as they were (atomic writes).

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Asks the running computation to stop.
pub fn request() {
    REQUESTED.store(true, Ordering::SeqCst);
}

/// Withdraws the request (before the next computation).
pub fn clear() {
    REQUESTED.store(false, Ordering::SeqCst);
}

/// Whether a stop was requested.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::Relaxed)
}

/// `Err(Interrupted)` when a stop was requested; `result` otherwise.
pub fn check<T>(result: crate::Result<T>) -> crate::Result<T> {
    if requested() {
        Err(crate::Error::Interrupted)
    } else {
        result
    }
}
