//! The library's errors as Python exceptions, each carrying the library's one-line message:
//! bad arguments and data are `ValueError`, files `OSError` (`FileNotFoundError` where the
//! file is missing), integrator failures `scoresde.SolverError` (a `RuntimeError`), a stop
//! request `KeyboardInterrupt`.

use pyo3::exceptions::{
    PyFileNotFoundError, PyKeyboardInterrupt, PyOSError, PyRuntimeError, PyValueError,
};
use pyo3::{create_exception, PyErr};
use scoresde::Error;

create_exception!(
    scoresde,
    SolverError,
    PyRuntimeError,
    "An integrator failed: a non-finite state, step-size underflow or a bad grid."
);

/// The Python exception of a library error.
pub fn to_py(e: Error) -> PyErr {
    let message = e.to_string();
    match e {
        Error::Invalid(_) | Error::Data(_) => PyValueError::new_err(message),
        Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            PyFileNotFoundError::new_err(message)
        }
        Error::Io { .. } => PyOSError::new_err(message),
        Error::Solve(_) => SolverError::new_err(message),
        Error::Interrupted => PyKeyboardInterrupt::new_err(message),
    }
}

/// A `ValueError` with this message.
pub fn value_error(message: impl Into<String>) -> PyErr {
    PyValueError::new_err(message.into())
}
