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

/// Returns `Error::Invalid` with a formatted message.
#[macro_export]
macro_rules! invalid {
    ($($arg:tt)*) => { $crate::error::Error::Invalid(format!($($arg)*)) };
}
