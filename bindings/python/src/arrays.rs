//! numpy arrays in and out: contiguous float64 input is read in place, anything else
//! array-like is converted once; outputs are fresh arrays owned by Python, float32 where the
//! input was float32.

use crate::errors::value_error;
use ndarray::{Array, CowArray, Dimension, Ix2};
use numpy::{
    AllowTypeChange, PyArray, PyArrayDescrMethods, PyArrayLike1, PyArrayLike2, PyUntypedArray,
    PyUntypedArrayMethods,
};
use pyo3::prelude::*;

/// A 2-D input: a borrowed view of a float64 array (or its one converted copy), and whether
/// the caller gave float32.
pub struct Input<'py> {
    arr: PyArrayLike2<'py, f64, AllowTypeChange>,
    pub f32: bool,
    name: &'static str,
}

impl<'py> Input<'py> {
    /// `obj` as an `n × d` float64 array (`name` names it in errors).
    pub fn new(obj: &Bound<'py, PyAny>, name: &'static str) -> PyResult<Self> {
        let f32 = obj
            .cast::<PyUntypedArray>()
            .map(|a| a.dtype().is_equiv_to(&numpy::dtype::<f32>(obj.py())))
            .unwrap_or(false);
        let arr = obj
            .extract::<PyArrayLike2<'py, f64, AllowTypeChange>>()
            .map_err(|_| {
                let shape = obj
                    .cast::<PyUntypedArray>()
                    .map(|a| format!("an array of shape {:?}", a.shape()))
                    .unwrap_or_else(|_| "something else".into());
                value_error(format!(
                    "`{name}` must be a 2-D array of numbers, shape (n, d); got {shape}"
                ))
            })?;
        Ok(Self { arr, f32, name })
    }

    /// The values, in place where they are contiguous (rows in standard layout otherwise).
    pub fn view(&self) -> CowArray<'_, f64, Ix2> {
        let v = self.arr.as_array();
        if v.is_standard_layout() {
            CowArray::from(v)
        } else {
            CowArray::from(v.to_owned())
        }
    }

    /// Refuses non-finite values and an empty array.
    pub fn check(&self, dim: Option<usize>) -> PyResult<()> {
        let v = self.arr.as_array();
        if let Some(d) = dim {
            if v.ncols() != d {
                return Err(value_error(format!(
                    "`{}` has {} columns but the model's dimension is {d}",
                    self.name,
                    v.ncols()
                )));
            }
        }
        if v.nrows() == 0 || v.ncols() == 0 {
            return Err(value_error(format!("`{}` is empty", self.name)));
        }
        if let Some(pos) = v.iter().position(|x| !x.is_finite()) {
            return Err(value_error(format!(
                "`{}` holds a non-finite value at row {}",
                self.name,
                pos / v.ncols()
            )));
        }
        Ok(())
    }
}

/// A time argument: one time for every row, or one per row.
pub enum Times {
    Shared(f64),
    PerRow(Vec<f64>),
}

impl Times {
    /// `t` as a float or an array of shape (n,); every time in [0, t_max].
    pub fn new(t: &Bound<'_, PyAny>, n: usize, t_max: f64) -> PyResult<Self> {
        let times = if let Ok(v) = t.extract::<f64>() {
            Times::Shared(v)
        } else {
            let a = t
                .extract::<PyArrayLike1<'_, f64, AllowTypeChange>>()
                .map_err(|_| value_error("`t` must be a number or an array of shape (n,)"))?;
            let v = a.as_array().to_vec();
            if v.len() != n {
                return Err(value_error(format!(
                    "`t` has {} entries but `x` has {n} rows",
                    v.len()
                )));
            }
            match v.first() {
                // One time for every row: the shared-time arithmetic (and its speed).
                Some(&t0) if v.iter().all(|&t| t == t0) => Times::Shared(t0),
                _ => Times::PerRow(v),
            }
        };
        let all: &[f64] = match &times {
            Times::Shared(v) => std::slice::from_ref(v),
            Times::PerRow(v) => v,
        };
        if let Some(bad) = all.iter().find(|t| !(**t >= 0.0 && **t <= t_max)) {
            return Err(value_error(format!(
                "`t` must lie in [0, {t_max}], got {}",
                scoresde::error::num(*bad)
            )));
        }
        Ok(times)
    }

    pub fn time(&self) -> scoresde::solvers::Time<'_> {
        match self {
            Times::Shared(t) => scoresde::solvers::Time::Shared(*t),
            Times::PerRow(v) => scoresde::solvers::Time::PerRow(v),
        }
    }
}

/// A fresh Python array of `a`, any dimension (float32 when `f32`).
pub fn output<D: Dimension>(py: Python<'_>, a: Array<f64, D>, f32: bool) -> Py<PyAny> {
    if f32 {
        PyArray::from_owned_array(py, a.mapv(|v| v as f32))
            .into_any()
            .unbind()
    } else {
        PyArray::from_owned_array(py, a).into_any().unbind()
    }
}
