//! The crate's error type: every message names its cause (a field, a file, a step).

use std::path::PathBuf;

/// Errors a user can cause or meet; the CLI prints them as one line and exits non-zero.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An argument or configuration value is out of range or inconsistent.
    #[error("{0}")]
    Invalid(String),
    /// A data specification (builtin name, mixture file, CSV) could not be used.
    #[error("{0}")]
    Data(String),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An integrator failed (non-finite state, step-size underflow, bad grid).
    #[error("solver: {0}")]
    Solve(#[from] scoresde_solvers::SolveError),
    /// The computation was asked to stop ([`crate::interrupt`]).
    #[error("interrupted")]
    Interrupted,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// A number as messages print it: plain where that is short (`0.25`, `1500`), in scientific
/// notation otherwise (`5e-324`, `1e170`), never hundreds of digits.
pub fn num(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 || !v.is_finite() || (1e-4..1e7).contains(&a) {
        format!("{v}")
    } else {
        format!("{v:e}")
    }
}

/// Returns `Error::Invalid` with a formatted message.
#[macro_export]
macro_rules! invalid {
    ($($arg:tt)*) => { $crate::error::Error::Invalid(format!($($arg)*)) };
}

/// Largest number of values (points × dimension) a single array of samples may hold: 2²⁷ f64 =
/// 1 GiB, so an absurd size is a one-line error instead of an allocation abort.
pub const MAX_VALUES: usize = 1 << 27;
/// Largest number of steps of any sampler, chain or training run.
pub const MAX_STEPS: usize = 100_000_000;

/// `Ok` when `1 ≤ value ≤ max`, else an error naming `what` and the allowed range.
pub fn check_range(what: &str, value: usize, max: usize) -> Result<()> {
    if value == 0 || value > max {
        return Err(Error::Invalid(format!(
            "`{what}` must lie in [1, {max}], got {value}"
        )));
    }
    Ok(())
}

/// "`a`, `b` do not apply to WHAT (it reads: …)": settings given to something that does not
/// have them, named with what it does read.
pub fn not_applicable(unread: &[String], what: &str, reads: &[String]) -> Error {
    Error::Invalid(format!(
        "{} {} not apply to {what} (it reads: {})",
        unread.join(", "),
        if unread.len() == 1 { "does" } else { "do" },
        if reads.is_empty() {
            "none of these".into()
        } else {
            reads.join(", ")
        }
    ))
}

/// `Ok` when `n` points of dimension `d` fit in [`MAX_VALUES`].
pub fn check_points(what: &str, n: usize, d: usize) -> Result<()> {
    check_range(what, n, MAX_VALUES / d.max(1))
}
