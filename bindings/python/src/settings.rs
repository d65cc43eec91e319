//! Python keyword arguments as the serde values the TOML files and the CLI use: a setting
//! reaches the library through the same types in all three front ends, so a new setting is
//! written once. `None` means "not given".

use crate::errors::value_error;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

/// A Python value as a TOML value (`None`: not given). `name` names it in errors.
pub fn to_toml(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Option<toml::Value>> {
    if obj.is_none() {
        return Ok(None);
    }
    if let Ok(p) = obj.cast::<crate::objects::Path>() {
        // A path: the table of its settings (kind included), as `[sde]` holds it.
        return toml::Table::try_from(&p.get().spec)
            .map(|t| Some(toml::Value::Table(t)))
            .map_err(|e| value_error(format!("`{name}`: {e}")));
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Some(toml::Value::Boolean(b.is_true())));
    }
    if obj.is_instance_of::<PyInt>() {
        return obj
            .extract::<i64>()
            .map(|v| Some(toml::Value::Integer(v)))
            .map_err(|_| value_error(format!("`{name}` is out of range")));
    }
    if obj.is_instance_of::<PyFloat>() {
        return Ok(Some(toml::Value::Float(obj.extract::<f64>()?)));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Some(toml::Value::String(s.extract::<String>()?)));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        return table(d, name).map(|t| Some(toml::Value::Table(t)));
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        let mut out = Vec::new();
        for (i, item) in obj.try_iter()?.enumerate() {
            if let Some(v) = to_toml(&item?, &format!("{name}[{i}]"))? {
                out.push(v);
            }
        }
        return Ok(Some(toml::Value::Array(out)));
    }
    // numpy scalars and other numbers.
    if let Ok(v) = obj.extract::<f64>() {
        return Ok(Some(toml::Value::Float(v)));
    }
    Err(value_error(format!(
        "`{name}`: a {} is not a setting value (numbers, strings, booleans, lists, dicts)",
        obj.get_type().name()?
    )))
}

/// A dict of settings as a TOML table (keys must be strings; `None` values left out).
pub fn table(d: &Bound<'_, PyDict>, name: &str) -> PyResult<toml::Table> {
    let mut t = toml::Table::new();
    for (k, v) in d.iter() {
        let key: String = k
            .extract()
            .map_err(|_| value_error(format!("`{name}`: setting names must be strings")))?;
        if let Some(v) = to_toml(&v, &key)? {
            t.insert(key, v);
        }
    }
    Ok(t)
}

/// `table` of optional keyword arguments.
pub fn kwargs(d: Option<&Bound<'_, PyDict>>) -> PyResult<toml::Table> {
    match d {
        Some(d) => table(d, "keyword arguments"),
        None => Ok(toml::Table::new()),
    }
}

/// A serde value from a TOML table, its error one line naming `what`.
pub fn from_table<T: serde::de::DeserializeOwned>(t: toml::Table, what: &str) -> PyResult<T> {
    toml::Value::Table(t)
        .try_into()
        .map_err(|e: toml::de::Error| value_error(format!("{what}: {}", e.to_string().trim())))
}
