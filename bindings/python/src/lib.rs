//! scoresde from Python: the exact mixture fields, the paths, the samplers driving a Python
//! callable, the calibrated tests, training and the experiments, on numpy arrays. The core
//! crate knows nothing of Python; this crate only converts arguments, runs the library with
//! the GIL released ([`runtime`]) and maps its errors ([`errors`]).

mod api;
mod arrays;
mod errors;
mod objects;
mod runtime;
mod settings;

use pyo3::prelude::*;

#[pymodule]
fn _scoresde(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("SolverError", m.py().get_type::<errors::SolverError>())?;
    m.add_class::<objects::Data>()?;
    m.add_class::<objects::Path>()?;
    m.add_class::<objects::Field>()?;
    m.add_class::<objects::Run>()?;
    m.add_class::<objects::Empirical>()?;
    m.add_class::<api::Samples>()?;
    m.add_function(wrap_pyfunction!(api::sample, m)?)?;
    m.add_function(wrap_pyfunction!(api::test, m)?)?;
    m.add_function(wrap_pyfunction!(api::nll, m)?)?;
    m.add_function(wrap_pyfunction!(api::elbo, m)?)?;
    m.add_function(wrap_pyfunction!(api::train, m)?)?;
    m.add_function(wrap_pyfunction!(api::load_run, m)?)?;
    m.add_function(wrap_pyfunction!(api::run_experiment, m)?)?;
    m.add_function(wrap_pyfunction!(api::samplers, m)?)?;
    m.add_function(wrap_pyfunction!(api::datasets, m)?)?;
    m.add_function(wrap_pyfunction!(api::experiments, m)?)?;
    m.add_function(wrap_pyfunction!(api::sampler_settings, m)?)?;
    m.add_function(wrap_pyfunction!(api::solver_noise, m)?)?;
    m.add_function(wrap_pyfunction!(api::train_settings, m)?)?;
    m.add_function(wrap_pyfunction!(api::copy_fraction, m)?)?;
    m.add_function(wrap_pyfunction!(api::optdigits, m)?)?;
    Ok(())
}
