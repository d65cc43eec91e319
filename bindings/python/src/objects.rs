//! The Python classes: `Data` (a dataset; the exact fields of a mixture), `Path`, `Field` (the
//! user's callable with its declared prediction and path) and `Run` (a trained run directory).

use crate::arrays::{output, Input, Times};
use crate::errors::{to_py, value_error};
use crate::runtime::compute;
use crate::settings::{from_table, kwargs, to_toml};
use ndarray::Array1;
use numpy::{AllowTypeChange, PyArray1, PyArrayLike1};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use scoresde::data::{Dataset, REFERENCE_DOMAIN};
use scoresde::score::convert::Prediction;
use scoresde::score::{Field as Quantity, MixtureScore};
use scoresde::sde::{Sde, SdeKind, SdeSpec};
use std::path::PathBuf;
use std::sync::Arc;

/// A path spec from a `Path`, a name (`"rectified"`) or a dict of its settings.
pub fn path_spec(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<SdeSpec>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(None);
    };
    let mut t = match to_toml(obj, "path")? {
        Some(toml::Value::String(kind)) => toml::Table::from_iter([("kind".into(), kind.into())]),
        Some(toml::Value::Table(t)) => t,
        _ => {
            return Err(value_error(
                "`path` must be a Path, a path name or a dict of its settings",
            ))
        }
    };
    // The CLI's name of the kind.
    if let Some(k) = t.remove("path") {
        t.insert("kind".into(), k);
    }
    from_table(t, "path").map(Some)
}

/// Builds a path; VE's σ_max from `diameter` where the spec leaves it open.
pub fn build_path(spec: &SdeSpec, diameter: Option<f64>) -> PyResult<Arc<dyn Sde>> {
    if spec.kind == SdeKind::Ve && spec.sigma_max.is_none() && diameter.is_none() {
        return Err(value_error(
            "the ve path needs `sigma_max` here (with data it defaults to the data's diameter)",
        ));
    }
    spec.build(|| diameter.unwrap_or(f64::NAN)).map_err(to_py)
}

/// A forward path x_t = m(t) x₀ + s(t) ε: VP, sub-VP, VE, EDM, rectified flow or trigonometric.
///
/// `Path("vp", beta_max=20.0)`, `Path("rectified", path_sigma_min=0.0)`: the settings are
/// those of the TOML `[sde]` table and the CLI's path flags. Every method takes t as a float
/// (returning a float) or an array (returning an array).
#[pyclass(frozen, module = "scoresde")]
pub struct Path {
    pub spec: SdeSpec,
    pub path: Arc<dyn Sde>,
}

/// `f` at a float or at every entry of an array.
fn at_times(py: Python<'_>, t: &Bound<'_, PyAny>, f: impl Fn(f64) -> f64) -> PyResult<Py<PyAny>> {
    if let Ok(v) = t.extract::<f64>() {
        return Ok(f(v).into_pyobject(py)?.into_any().unbind());
    }
    let a = t
        .extract::<PyArrayLike1<'_, f64, AllowTypeChange>>()
        .map_err(|_| value_error("`t` must be a number or a 1-D array"))?;
    let out: Array1<f64> = a.as_array().mapv(f);
    Ok(PyArray1::from_owned_array(py, out).into_any().unbind())
}

#[pymethods]
impl Path {
    #[new]
    #[pyo3(signature = (kind = "vp", **settings))]
    fn new(kind: &str, settings: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        let mut t = kwargs(settings)?;
        t.insert("kind".into(), kind.into());
        let spec: SdeSpec = from_table(t, "path")?;
        let path = build_path(&spec, None)?;
        Ok(Self { spec, path })
    }

    /// The path's name (`vp`, `rectified`, …).
    #[getter]
    fn name(&self) -> &'static str {
        self.path.name()
    }
    /// Its settings, as the TOML `[sde]` table holds them.
    #[getter]
    fn settings(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let json = serde_json::to_string(&self.spec).map_err(|e| value_error(e.to_string()))?;
        Ok(py.import("json")?.call_method1("loads", (json,))?.unbind())
    }
    /// The end time T of the path.
    #[getter]
    fn t_max(&self) -> f64 {
        self.path.t_max()
    }
    /// The default final time ε of the samplers.
    #[getter]
    fn default_eps(&self) -> f64 {
        self.path.default_eps()
    }
    /// The standard deviation of the prior at T.
    #[getter]
    fn prior_std(&self) -> f64 {
        self.path.prior_std()
    }
    /// The signal coefficient m(t).
    fn m(&self, py: Python<'_>, t: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        at_times(py, t, |t| self.path.marginal(t).mean)
    }
    /// The noise scale s(t).
    fn s(&self, py: Python<'_>, t: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        at_times(py, t, |t| self.path.marginal(t).std)
    }
    /// dm/dt.
    fn dm(&self, py: Python<'_>, t: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        at_times(py, t, |t| self.path.rates(t).dmean)
    }
    /// ds/dt.
    fn ds(&self, py: Python<'_>, t: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        at_times(py, t, |t| self.path.rates(t).dstd)
    }
    /// The drift coefficient f(t) = ṁ/m of the forward SDE dx = f x dt + g dw.
    fn f(&self, py: Python<'_>, t: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        at_times(py, t, |t| self.path.drift_coeff(t))
    }
    /// The squared diffusion g²(t) = 2(s ṡ − s² ṁ/m).
    fn g2(&self, py: Python<'_>, t: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        at_times(py, t, |t| self.path.g2(t))
    }
    /// The log signal-to-noise ratio λ(t) = log(m²/s²).
    fn log_snr(&self, py: Python<'_>, t: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        at_times(py, t, |t| self.path.log_snr(t))
    }
    /// The time at which λ(t) = `log_snr`.
    fn t_of_log_snr(&self, py: Python<'_>, log_snr: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        at_times(py, log_snr, |l| self.path.t_of_log_snr(l))
    }
    /// σ̃(t) = s/m, the noise level of the scaled variable x/m.
    fn sigma_tilde(&self, py: Python<'_>, t: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        at_times(py, t, |t| self.path.sigma_tilde(t))
    }
    /// `value`, a model's `from_` prediction at (x, t), as the prediction `to`
    /// (eps, x0, v, score, velocity; edm with `sigma_data`).
    #[pyo3(signature = (value, x, t, from_, to, sigma_data = 0.0))]
    #[allow(clippy::too_many_arguments)]
    fn convert(
        &self,
        py: Python<'_>,
        value: &Bound<'_, PyAny>,
        x: &Bound<'_, PyAny>,
        t: &Bound<'_, PyAny>,
        from_: &str,
        to: &str,
        sigma_data: f64,
    ) -> PyResult<Py<PyAny>> {
        let (from, to) = (prediction(from_)?, prediction(to)?);
        let (v, x) = (Input::new(value, "value")?, Input::new(x, "x")?);
        let (vv, xv) = (v.view(), x.view());
        if vv.dim() != xv.dim() {
            return Err(value_error("`value` and `x` must have the same shape"));
        }
        let times = Times::new(t, xv.nrows(), self.path.t_max())?;
        let mut out = vv.to_owned();
        scoresde::path::map_points(
            self.path.as_ref(),
            times.time(),
            xv.view(),
            out.view_mut(),
            |o, x, p| from.convert(to, o, x, p, sigma_data),
        );
        Ok(output(py, out, v.f32))
    }
    fn __repr__(&self) -> String {
        format!("Path({:?})", self.path.name())
    }
}

/// A prediction by name (eps, x0, v, score, velocity, edm).
pub fn prediction(name: &str) -> PyResult<Prediction> {
    from_table::<Wrap>(
        toml::Table::from_iter([("p".into(), name.into())]),
        "prediction",
    )
    .map(|w| w.p)
    .map_err(|_| {
        value_error(format!(
            "unknown prediction '{name}' (known: eps, x0, v, score, velocity, edm)"
        ))
    })
}

#[derive(serde::Deserialize)]
struct Wrap {
    p: Prediction,
}

/// A dataset: a builtin name (`"8gaussians"`, `"swissroll"`, …) or a mixture `.toml` file.
///
/// For a Gaussian mixture the exact fields of its diffused law p_t are available at any t on
/// any path: `score`, `log_prob`, `denoise` (E[x₀ | x_t]), `eps` and the flow `velocity`.
/// x is an array of shape (n, d), float64 or float32 (the result has its dtype); t a float or
/// an array of shape (n,); `path` a `Path`, a name or a dict (default vp).
#[pyclass(frozen, module = "scoresde")]
pub struct Data {
    pub spec: String,
    pub data: Dataset,
}

impl Data {
    /// The exact field of the mixture on `path`.
    pub fn exact(&self, path: Option<&Bound<'_, PyAny>>) -> PyResult<MixtureScore> {
        let mixture = self.data.exact_mixture().map_err(to_py)?.clone();
        let spec = path_spec(path)?.unwrap_or_default();
        let path = build_path(&spec, Some(self.data.diameter()))?;
        Ok(MixtureScore::new(mixture, path))
    }

    fn field(
        &self,
        py: Python<'_>,
        what: Quantity,
        x: &Bound<'_, PyAny>,
        t: &Bound<'_, PyAny>,
        path: Option<&Bound<'_, PyAny>>,
        threads: Option<usize>,
    ) -> PyResult<Py<PyAny>> {
        let exact = self.exact(path)?;
        let input = Input::new(x, "x")?;
        input.check(Some(self.data.dim()))?;
        let view = input.view();
        let times = Times::new(t, view.nrows(), exact.sde.t_max())?;
        let out = compute(py, threads, None, |_| {
            Ok(exact.par_field(what, times.time(), view.view()))
        })?;
        if what == Quantity::LogProb {
            return Ok(output(py, out.column(0).to_owned(), input.f32));
        }
        Ok(output(py, out, input.f32))
    }
}

#[pymethods]
impl Data {
    #[new]
    fn new(spec: &str) -> PyResult<Self> {
        Ok(Self {
            spec: spec.to_string(),
            data: Dataset::from_spec(spec).map_err(to_py)?,
        })
    }
    #[getter]
    fn name(&self) -> &str {
        self.data.name()
    }
    #[getter]
    fn dim(&self) -> usize {
        self.data.dim()
    }
    /// Whether the data is a Gaussian mixture (exact fields and the oracle tests).
    #[getter]
    fn is_mixture(&self) -> bool {
        self.data.mixture().is_some()
    }
    /// `n` exact draws (the same `seed` gives the same points); with `label`, from p(x | label)
    /// of a class-labelled mixture.
    #[pyo3(signature = (n, seed = 0, label = None))]
    fn draw(
        &self,
        py: Python<'_>,
        n: usize,
        seed: u64,
        label: Option<String>,
    ) -> PyResult<Py<PyAny>> {
        scoresde::error::check_range("n", n, scoresde::error::MAX_VALUES / self.dim().max(1))
            .map_err(to_py)?;
        let x = match label {
            None => py.detach(|| self.data.sample(n, seed, REFERENCE_DOMAIN)),
            Some(c) => {
                let m = self.data.exact_mixture().map_err(to_py)?;
                let cond = m.conditional(&c).map_err(to_py)?;
                py.detach(|| cond.sample(n, seed, REFERENCE_DOMAIN).0)
            }
        };
        Ok(output(py, x, false))
    }
    /// `n` exact draws (those of `draw(n, seed)`) and their class indices into `classes`
    /// (int64, shape (n,)).
    #[pyo3(signature = (n, seed = 0))]
    fn draw_labelled(
        &self,
        py: Python<'_>,
        n: usize,
        seed: u64,
    ) -> PyResult<(Py<PyAny>, Py<PyAny>)> {
        scoresde::error::check_range("n", n, scoresde::error::MAX_VALUES / self.dim().max(1))
            .map_err(to_py)?;
        let m = self.data.exact_mixture().map_err(to_py)?;
        let (x, c) = py
            .detach(|| m.sample_labelled(n, seed, REFERENCE_DOMAIN))
            .map_err(to_py)?;
        let c: Vec<i64> = c.into_iter().map(|v| v as i64).collect();
        Ok((
            output(py, x, false),
            numpy::PyArray1::from_vec(py, c).into_any().unbind(),
        ))
    }
    /// The class names of a class-labelled mixture (None: unlabelled).
    #[getter]
    fn classes(&self) -> Option<Vec<String>> {
        self.data
            .mixture()
            .and_then(|m| m.classes())
            .map(|c| c.names.clone())
    }
    /// ∇ₓ log p_t(x).
    #[pyo3(signature = (x, t, path = None, threads = None))]
    fn score(
        &self,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        t: &Bound<'_, PyAny>,
        path: Option<&Bound<'_, PyAny>>,
        threads: Option<usize>,
    ) -> PyResult<Py<PyAny>> {
        self.field(py, Quantity::Score, x, t, path, threads)
    }
    /// log p_t(x), shape (n,).
    #[pyo3(signature = (x, t, path = None, threads = None))]
    fn log_prob(
        &self,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        t: &Bound<'_, PyAny>,
        path: Option<&Bound<'_, PyAny>>,
        threads: Option<usize>,
    ) -> PyResult<Py<PyAny>> {
        self.field(py, Quantity::LogProb, x, t, path, threads)
    }
    /// Tweedie's denoiser E[x₀ | x_t = x] (regular where m = 0).
    #[pyo3(signature = (x, t, path = None, threads = None))]
    fn denoise(
        &self,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        t: &Bound<'_, PyAny>,
        path: Option<&Bound<'_, PyAny>>,
        threads: Option<usize>,
    ) -> PyResult<Py<PyAny>> {
        self.field(py, Quantity::Denoise, x, t, path, threads)
    }
    /// The optimal ε-prediction −s(t) ∇ log p_t(x).
    #[pyo3(signature = (x, t, path = None, threads = None))]
    fn eps(
        &self,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        t: &Bound<'_, PyAny>,
        path: Option<&Bound<'_, PyAny>>,
        threads: Option<usize>,
    ) -> PyResult<Py<PyAny>> {
        self.field(py, Quantity::Eps, x, t, path, threads)
    }
    /// The flow velocity E[ṁ x₀ + ṡ ε | x_t = x], the PF-ODE's drift.
    #[pyo3(signature = (x, t, path = None, threads = None))]
    fn velocity(
        &self,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        t: &Bound<'_, PyAny>,
        path: Option<&Bound<'_, PyAny>>,
        threads: Option<usize>,
    ) -> PyResult<Py<PyAny>> {
        self.field(py, Quantity::Velocity, x, t, path, threads)
    }
    fn __repr__(&self) -> String {
        format!("Data({:?})", self.spec)
    }
}

/// Data from a `Data` or a spec string.
pub fn data_arg(obj: &Bound<'_, PyAny>) -> PyResult<Dataset> {
    if let Ok(d) = obj.cast::<Data>() {
        return Ok(d.get().data.clone());
    }
    let spec: String = obj
        .extract()
        .map_err(|_| value_error("`data` must be a Data or a dataset name / mixture file"))?;
    Dataset::from_spec(&spec).map_err(to_py)
}

/// A model written in Python: `f(x, t) -> array` with x of shape (n, d) and t of shape (n,)
/// (both float64 numpy arrays), returning the declared `prediction` (eps, x0, v, score,
/// velocity; edm with `sigma_data`) of the model trained on `path`, shape (n, d).
///
/// The samplers call it once per model evaluation on the whole batch, from the thread that
/// called them; its evaluations count as NFE. A PyTorch model:
/// `Field(lambda x, t: net(torch.from_numpy(x).float().cuda(), torch.from_numpy(t).float().cuda()).double().cpu().numpy(), dim=2)`.
///
/// With `classes=[...]` (K names) the model is class-conditional and is called as
/// `f(x, t, c)`, c an int64 array of shape (n,) holding each row's class index, K for the null
/// class (the unconditional field, DiT's convention for label dropout).
#[pyclass(frozen, module = "scoresde")]
pub struct Field {
    pub f: Py<PyAny>,
    pub dim: usize,
    pub prediction: Prediction,
    pub spec: SdeSpec,
    pub sigma_data: f64,
    pub classes: Option<Vec<String>>,
}

#[pymethods]
impl Field {
    #[new]
    #[pyo3(signature = (f, dim, prediction = "eps", path = None, sigma_data = 0.0, classes = None))]
    fn new(
        f: &Bound<'_, PyAny>,
        dim: usize,
        prediction: &str,
        path: Option<&Bound<'_, PyAny>>,
        sigma_data: f64,
        classes: Option<Vec<String>>,
    ) -> PyResult<Self> {
        if !f.is_callable() {
            return Err(value_error(if classes.is_some() {
                "`f` must be callable as f(x, t, c)"
            } else {
                "`f` must be callable as f(x, t)"
            }));
        }
        if let Some(names) = &classes {
            let mut sorted = names.clone();
            sorted.sort();
            sorted.dedup();
            if names.is_empty() || sorted.len() != names.len() || names.iter().any(|c| c.is_empty())
            {
                return Err(value_error(
                    "`classes` must be a non-empty list of distinct, non-empty names",
                ));
            }
        }
        scoresde::error::check_range("dim", dim, 1 << 20).map_err(to_py)?;
        let spec = path_spec(path)?.unwrap_or_default();
        build_path(&spec, None)?;
        let prediction = self::prediction(prediction)?;
        Ok(Self {
            f: f.clone().unbind(),
            dim,
            prediction,
            spec,
            sigma_data,
            classes,
        })
    }
    #[getter]
    fn dim(&self) -> usize {
        self.dim
    }
    /// The class names of a conditional field (None: unconditional).
    #[getter]
    fn classes(&self) -> Option<Vec<String>> {
        self.classes.clone()
    }
    #[getter]
    fn path(&self) -> PyResult<Path> {
        Ok(Path {
            spec: self.spec.clone(),
            path: build_path(&self.spec, None)?,
        })
    }
    #[getter]
    fn prediction(&self) -> String {
        scoresde::io::variant_name(&self.prediction)
    }
    fn __repr__(&self) -> String {
        format!(
            "Field(dim={}, prediction={:?}, path={:?})",
            self.dim,
            scoresde::io::variant_name(&self.prediction),
            scoresde::io::variant_name(&self.spec.kind)
        )
    }
}

/// A run directory of `scoresde train` (or `scoresde.train`): its EMA network under its path.
#[pyclass(frozen, module = "scoresde")]
pub struct Run {
    pub dir: PathBuf,
    pub config: scoresde::train::RunConfig,
}

#[pymethods]
impl Run {
    #[getter]
    fn dir(&self) -> String {
        self.dir.display().to_string()
    }
    /// The data the run was trained on.
    #[getter]
    fn data(&self) -> &str {
        &self.config.data
    }
    #[getter]
    fn dim(&self) -> usize {
        self.config.net.dim
    }
    /// The class names of a conditional run (`train(conditional=True)`), else None.
    #[getter]
    fn classes(&self) -> Option<Vec<String>> {
        (!self.config.net.classes.is_empty()).then(|| self.config.net.classes.clone())
    }
    #[getter]
    fn path(&self) -> PyResult<Path> {
        Ok(Path {
            spec: self.config.sde.clone(),
            path: self.config.sde.build(|| f64::NAN).map_err(to_py)?,
        })
    }
    /// The run's settings (data, sde, net, train), as its run.toml holds them.
    #[getter]
    fn config(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let json = serde_json::to_string(&self.config).map_err(|e| value_error(e.to_string()))?;
        Ok(py.import("json")?.call_method1("loads", (json,))?.unbind())
    }
    fn __repr__(&self) -> String {
        format!("Run({:?})", self.dir.display().to_string())
    }
}

/// Loads a run directory.
pub fn load(dir: PathBuf) -> scoresde::Result<Run> {
    if !dir.is_dir() {
        let e = std::io::Error::new(std::io::ErrorKind::NotFound, "no such run directory");
        return Err(scoresde::Error::io(dir, e));
    }
    let (_, config) = scoresde::model::Model::from_run(&dir)?;
    Ok(Run { dir, config })
}

/// The exact field of a training set's empirical distribution (point masses, or Gaussians of
/// standard deviation `bandwidth`) diffused on `path`: a model that memorises. Usable wherever
/// a model is taken (`sample`, `nll`, `elbo`).
#[pyclass(frozen, module = "scoresde")]
pub struct Empirical {
    pub points: ndarray::Array2<f64>,
    pub bandwidth: f64,
    pub spec: SdeSpec,
}

#[pymethods]
impl Empirical {
    #[new]
    #[pyo3(signature = (points, bandwidth = 0.0, path = None))]
    fn new(
        points: &Bound<'_, PyAny>,
        bandwidth: f64,
        path: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let input = crate::arrays::Input::new(points, "points")?;
        let points = input.view().into_owned();
        let spec = path_spec(path)?.unwrap_or_default();
        let sde = build_path(&spec, Some(scoresde::data::point_diameter(points.view())))?;
        // Checked now: no points, duplicates, non-finite values, a negative bandwidth.
        scoresde::score::EmpiricalScore::new(points.clone(), bandwidth, sde).map_err(to_py)?;
        Ok(Self {
            points,
            bandwidth,
            spec,
        })
    }
    #[getter]
    fn dim(&self) -> usize {
        self.points.ncols()
    }
    #[getter]
    fn bandwidth(&self) -> f64 {
        self.bandwidth
    }
    fn __len__(&self) -> usize {
        self.points.nrows()
    }
    fn __repr__(&self) -> String {
        format!(
            "Empirical(n={}, dim={}, bandwidth={})",
            self.points.nrows(),
            self.points.ncols(),
            self.bandwidth
        )
    }
}
