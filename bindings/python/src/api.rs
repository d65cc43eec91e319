//! The module's functions: `sample`, `test`, `nll`, `elbo`, `train`, `load_run`,
//! `run_experiment` and the lists of names. Each is a thin call into the library.

use crate::arrays::{output, Input};
use crate::errors::{to_py, value_error};
use crate::objects::{data_arg, load, path_spec, Data, Empirical, Field, Run};
use crate::runtime::{call, compute, Caller};
use crate::settings::{from_table, kwargs, to_toml};
use ndarray::Array2;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use scoresde::data::{Dataset, REFERENCE_DOMAIN};
use scoresde::likelihood::{Divergence, NllSpec};
use scoresde::model::Model;
use scoresde::sample::config::NAMES;
use scoresde::sample::{SampleSpec, Sampler};
use scoresde::score::convert::Prediction;
use scoresde::score::External;
use scoresde::sde::SdeSpec;
use std::path::PathBuf;

/// What a model argument is, resolved before the work starts (the callable's model is built
/// inside the work, where its channel to the calling thread exists).
enum Source {
    Exact {
        data: Dataset,
        spec: SdeSpec,
    },
    Run {
        dir: PathBuf,
        path: Option<SdeSpec>,
    },
    Empirical {
        points: Array2<f64>,
        bandwidth: f64,
        spec: SdeSpec,
    },
    Field {
        dim: usize,
        prediction: Prediction,
        spec: SdeSpec,
        sigma_data: f64,
        path: Option<SdeSpec>,
        /// The class names of a conditional callable `f(x, t, c)`.
        classes: Option<Vec<String>>,
    },
}

/// Conditioning and guidance asked of a model: p(x | `label`), guided with scale `w` on
/// `interval` away from the unconditional field (classifier-free) or from the run `bad`
/// (autoguidance).
#[derive(Clone, Debug, Default)]
struct Guide {
    label: Option<String>,
    w: Option<f64>,
    interval: Option<[f64; 2]>,
    bad: Option<PathBuf>,
}

impl Source {
    /// `model` (a `Data`, a `Run`, a `Field` or a run directory) with `path` (the path to
    /// diffuse the data on; for a run or a field, a post-hoc path change); the callable of a
    /// `Field`.
    fn new(
        model: &Bound<'_, PyAny>,
        path: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<(Source, Option<Py<PyAny>>)> {
        let path = path_spec(path)?;
        if let Ok(d) = model.cast::<Data>() {
            let data = d.get().data.clone();
            data.exact_mixture().map_err(to_py)?;
            let spec = path.unwrap_or_default();
            return Ok((Source::Exact { data, spec }, None));
        }
        if let Ok(e) = model.cast::<Empirical>() {
            let e = e.get();
            let spec = path.unwrap_or_else(|| e.spec.clone());
            return Ok((
                Source::Empirical {
                    points: e.points.clone(),
                    bandwidth: e.bandwidth,
                    spec,
                },
                None,
            ));
        }
        if let Ok(r) = model.cast::<Run>() {
            let dir = r.get().dir.clone();
            return Ok((Source::Run { dir, path }, None));
        }
        if let Ok(f) = model.cast::<Field>() {
            let f = f.get();
            let source = Source::Field {
                dim: f.dim,
                prediction: f.prediction,
                spec: f.spec.clone(),
                sigma_data: f.sigma_data,
                path,
                classes: f.classes.clone(),
            };
            return Ok((source, Some(f.f.clone_ref(model.py()))));
        }
        if let Ok(dir) = model.extract::<PathBuf>() {
            return Ok((Source::Run { dir, path }, None));
        }
        Err(value_error(
            "`model` must be a Data (exact mixture), a Field (your callable), a Run or a run directory",
        ))
    }

    /// The model; a callable's evaluations go through `caller`.
    fn build(&self, caller: &Caller, guide: &Guide) -> scoresde::Result<Model> {
        let change = |m: Model, path: &Option<SdeSpec>| match path {
            Some(spec) => m.on_path(spec.build(|| f64::NAN)?),
            None => Ok(m),
        };
        let w = guide.w.unwrap_or(0.0);
        if guide.bad.is_some() && !matches!(self, Source::Run { .. }) {
            return Err(scoresde::invalid!(
                "`autoguidance` takes the bad version of a trained run: `model` must be a Run"
            ));
        }
        if guide.label.is_some() && matches!(self, Source::Empirical { .. }) {
            return Err(scoresde::invalid!(
                "`label` needs class labels: an Empirical model has none"
            ));
        }
        match self {
            Source::Empirical {
                points,
                bandwidth,
                spec,
            } => {
                let sde = spec.build(|| scoresde::data::point_diameter(points.view()))?;
                let score =
                    scoresde::score::EmpiricalScore::new(points.clone(), *bandwidth, sde.clone())?;
                Model::new(score, sde)
            }
            Source::Exact { data, spec } => match &guide.label {
                Some(class) => Model::exact_conditional(data, spec, class, w, guide.interval),
                None => Model::exact(data, spec),
            },
            Source::Run { dir, path } => {
                let label = guide.label.as_deref();
                let good = Model::from_run_class(dir, label)?.0;
                let model = match (&guide.bad, guide.w) {
                    (Some(bad), _) => {
                        good.guided(Model::from_run_class(bad, label)?.0, w, guide.interval)?
                    }
                    (None, Some(w)) => {
                        good.guided(Model::from_run_class(dir, None)?.0, w, guide.interval)?
                    }
                    (None, None) => good,
                };
                change(model, path)
            }
            Source::Field {
                dim,
                prediction,
                spec,
                sigma_data,
                path,
                classes,
            } => {
                let own = spec.build(|| f64::NAN)?;
                // The label index a conditional callable sees (K, the null class, for p(x)).
                let label_of = |name: Option<&str>| -> scoresde::Result<Option<i64>> {
                    match (classes, name) {
                        (None, None) => Ok(None),
                        (None, Some(_)) => Err(scoresde::invalid!(
                            "`label` needs a conditional Field (pass `classes=[...]` and a callable f(x, t, c))"
                        )),
                        (Some(names), None) => Ok(Some(names.len() as i64)),
                        (Some(names), Some(n)) => match names.iter().position(|c| c == n) {
                            Some(i) => Ok(Some(i as i64)),
                            None => Err(scoresde::invalid!(
                                "unknown class '{n}' (the Field's classes: {})",
                                names.join(", ")
                            )),
                        },
                    }
                };
                let field = |label: Option<i64>| -> scoresde::Result<Model> {
                    let caller = caller.clone();
                    let f = Box::new(
                        move |t: scoresde::solvers::Time<'_>, x: ndarray::ArrayView2<f64>| {
                            call(&caller, t, x, label)
                        },
                    );
                    let ext = External::new(f, *dim, *prediction, *sigma_data, own.clone())?;
                    Model::new(ext, own.clone())
                };
                let main = field(label_of(guide.label.as_deref())?)?;
                let model = match guide.w {
                    Some(w) => main.guided(field(label_of(None)?)?, w, guide.interval)?,
                    None => main,
                };
                change(model, path)
            }
        }
    }

    fn dim(&self) -> Option<usize> {
        match self {
            Source::Exact { data, .. } => Some(data.dim()),
            Source::Field { dim, .. } => Some(*dim),
            Source::Empirical { points, .. } => Some(points.ncols()),
            Source::Run { .. } => None,
        }
    }
}

/// The sampler from `sampler` (a name or a dict tagged by `sampler`) and the remaining
/// keyword arguments, through the serde type the TOML files and the CLI use; an unknown
/// keyword names itself and the valid ones. `None`: `em` with the path's own reverse SDE.
fn sampler_arg(
    sampler: Option<&Bound<'_, PyAny>>,
    settings: Option<&Bound<'_, PyDict>>,
) -> PyResult<Option<Sampler>> {
    let mut table = match sampler
        .map(|s| to_toml(s, "sampler"))
        .transpose()?
        .flatten()
    {
        None => toml::Table::new(),
        Some(toml::Value::String(name)) => {
            toml::Table::from_iter([("sampler".into(), name.into())])
        }
        Some(toml::Value::Table(t)) => t,
        Some(_) => {
            return Err(value_error(
                "`sampler` must be a name or a dict of its settings",
            ))
        }
    };
    let given = kwargs(settings)?;
    if table.is_empty() && given.is_empty() {
        return Ok(None);
    }
    let name = match table.get("sampler") {
        Some(toml::Value::String(n)) => n.clone(),
        None => "em".to_string(),
        Some(_) => return Err(value_error("`sampler` must name a sampler")),
    };
    let default: Sampler = name.parse().map_err(to_py)?;
    let has = default.settings();
    let mut unknown: Vec<&String> = given.keys().filter(|k| !has.contains(k)).collect();
    unknown.extend(table.keys().filter(|k| *k != "sampler" && !has.contains(k)));
    if let Some(k) = unknown.first() {
        return Err(value_error(format!(
            "unknown keyword `{k}` for sampler {name} (valid: model, sampler, steps, n, seed, path, eps, denoise, threads, x_t, label, guidance_scale, guidance_interval, autoguidance; and {name}'s own: {})",
            if has.is_empty() { "none".to_string() } else { has.join(", ") }
        )));
    }
    table.extend(given);
    table.insert("sampler".into(), name.clone().into());
    from_table(table, &format!("sampler {name}")).map(Some)
}

/// Samples with the model from prior draws (or from the given states `x_t` at the grid's
/// first time); returns a `Samples`.
#[pyfunction]
#[pyo3(signature = (model, sampler = None, steps = None, n = 1000, seed = 0, path = None, eps = None, denoise = None, threads = None, x_t = None, label = None, guidance_scale = None, guidance_interval = None, autoguidance = None, **settings))]
#[allow(clippy::too_many_arguments)]
pub fn sample(
    py: Python<'_>,
    model: &Bound<'_, PyAny>,
    sampler: Option<&Bound<'_, PyAny>>,
    steps: Option<usize>,
    n: usize,
    seed: u64,
    path: Option<&Bound<'_, PyAny>>,
    eps: Option<f64>,
    denoise: Option<bool>,
    threads: Option<usize>,
    x_t: Option<&Bound<'_, PyAny>>,
    label: Option<String>,
    guidance_scale: Option<f64>,
    guidance_interval: Option<(f64, f64)>,
    autoguidance: Option<&Bound<'_, PyAny>>,
    settings: Option<&Bound<'_, PyDict>>,
) -> PyResult<Samples> {
    let (source, callable) = Source::new(model, path)?;
    let bad = match autoguidance {
        None => None,
        Some(b) => match b.cast::<Run>() {
            Ok(r) => Some(r.get().dir.clone()),
            Err(_) => Some(b.extract::<PathBuf>().map_err(|_| {
                value_error("`autoguidance` must be a Run or a run directory (the bad model)")
            })?),
        },
    };
    if label.is_none() && bad.is_none() && (guidance_scale.is_some() || guidance_interval.is_some())
    {
        return Err(value_error(
            "`guidance_scale` and `guidance_interval` need `label` (classifier-free guidance) or `autoguidance` (a bad model)",
        ));
    }
    let guide = Guide {
        label,
        w: guidance_scale,
        interval: guidance_interval.map(|(a, b)| [a, b]),
        bad,
    };
    let sampler = sampler_arg(sampler, settings)?;
    let dim = source.dim().unwrap_or(1);
    // Given starting states replace the prior draws (their rows are the particles).
    let x_start = match x_t {
        Some(a) => {
            let input = Input::new(a, "x_t")?;
            input.check(source.dim())?;
            Some(input.view().to_owned())
        }
        None => None,
    };
    let n = x_start.as_ref().map_or(n, |x| x.nrows());
    scoresde::error::check_range("n", n, scoresde::error::MAX_VALUES / dim).map_err(to_py)?;
    if let Some(s) = steps {
        scoresde::error::check_range("steps", s, scoresde::error::MAX_STEPS).map_err(to_py)?;
    }
    let (run, label, path_name) = compute(py, threads, callable.as_ref(), move |caller| {
        let model = source.build(&caller, &guide)?;
        model.check_prior()?;
        let sampler = sampler.unwrap_or_else(|| Sampler::em_for(model.sde().as_ref()));
        if steps.is_some() && !sampler.method(Some(model.sde().as_ref()))?.reads_steps() {
            return Err(scoresde::invalid!(
                "`steps` does not apply to sampler {} (it is adaptive: `rtol`, `atol`)",
                sampler.name()
            ));
        }
        let spec = SampleSpec {
            sampler: sampler.clone(),
            steps: steps.unwrap_or(1000),
            eps,
            n,
            seed,
            chunk: 0,
            record: vec![],
            denoise,
        };
        let run = match x_start {
            Some(x) => model.integrate(x, &spec, None)?,
            None => model.sample(&spec, None)?,
        };
        Ok((run, sampler.label(), model.sde().name()))
    })?;
    Ok(Samples {
        x: output(py, run.x, false),
        nfe: run.nfe,
        wall: run.wall.as_secs_f64(),
        sampler: label,
        path: path_name.to_string(),
    })
}

/// Samples and what they cost.
#[pyclass(frozen, module = "scoresde")]
pub struct Samples {
    /// The samples, shape (n, d).
    #[pyo3(get)]
    x: Py<PyAny>,
    /// Model evaluations per particle (the final denoising step included).
    #[pyo3(get)]
    nfe: f64,
    /// Seconds spent.
    #[pyo3(get)]
    wall: f64,
    /// The sampler and every setting given.
    #[pyo3(get)]
    sampler: String,
    /// The path sampled on.
    #[pyo3(get)]
    path: String,
}

#[pymethods]
impl Samples {
    fn __repr__(&self) -> String {
        format!(
            "Samples(sampler={:?}, path={:?}, nfe={}, wall={:.3})",
            self.sampler, self.path, self.nfe, self.wall
        )
    }
}

/// Points from `x`, or `n` exact draws of `data` (default: the model's data).
fn points(
    py: Python<'_>,
    x: Option<&Bound<'_, PyAny>>,
    data: Option<&Bound<'_, PyAny>>,
    source: &Source,
    n: usize,
    seed: u64,
) -> PyResult<Array2<f64>> {
    if let Some(x) = x {
        if data.is_some() {
            return Err(value_error("give `x` or `data`, not both"));
        }
        let input = Input::new(x, "x")?;
        input.check(source.dim())?;
        return Ok(input.view().into_owned());
    }
    let data = match (data, source) {
        (Some(d), _) => data_arg(d)?,
        (None, Source::Exact { data, .. }) => data.clone(),
        (None, Source::Run { dir, .. }) => {
            let (_, cfg) = Model::from_run(dir).map_err(to_py)?;
            Dataset::from_spec(&cfg.data).map_err(to_py)?
        }
        (None, Source::Field { .. }) => {
            return Err(value_error(
                "a Field has no data of its own: give `x` or `data`",
            ))
        }
        (None, Source::Empirical { points, .. }) => return Ok(points.clone()),
    };
    scoresde::error::check_range("n", n, scoresde::error::MAX_VALUES / data.dim())
        .map_err(to_py)?;
    Ok(py.detach(|| data.sample(n, seed, REFERENCE_DOMAIN)))
}

/// Exact negative log-likelihoods −log p_ε(x) through the probability-flow ODE.
#[pyfunction]
#[pyo3(signature = (model, x = None, data = None, n = 1000, seed = 0, path = None, divergence = "exact", rtol = 1e-5, atol = 1e-5, eps = 1e-5, threads = None))]
#[allow(clippy::too_many_arguments)]
pub fn nll(
    py: Python<'_>,
    model: &Bound<'_, PyAny>,
    x: Option<&Bound<'_, PyAny>>,
    data: Option<&Bound<'_, PyAny>>,
    n: usize,
    seed: u64,
    path: Option<&Bound<'_, PyAny>>,
    divergence: &str,
    rtol: f64,
    atol: f64,
    eps: f64,
    threads: Option<usize>,
) -> PyResult<Py<PyDict>> {
    let (source, callable) = Source::new(model, path)?;
    let pts = points(py, x, data, &source, n, seed)?;
    let divergence = match divergence {
        "exact" => Divergence::Exact,
        "hutchinson" => Divergence::Hutchinson,
        other => {
            return Err(value_error(format!(
                "unknown divergence '{other}' (known: exact, hutchinson)"
            )))
        }
    };
    let spec = NllSpec {
        rtol,
        atol,
        eps,
        divergence,
        seed,
        chunk: 0,
    };
    let run = compute(py, threads, callable.as_ref(), move |caller| {
        let model = source.build(&caller, &Guide::default())?;
        model.check_points(pts.view())?;
        model.nll(pts.view(), &spec)
    })?;
    let d = PyDict::new(py);
    d.set_item("mean", run.mean())?;
    d.set_item("nll", output(py, run.nll, false))?;
    d.set_item("nfe", run.nfe)?;
    d.set_item("wall", run.wall.as_secs_f64())?;
    Ok(d.unbind())
}

/// The −ELBO (nats per point): the continuous-time bound from ε to T (default), or Ho et
/// al.'s discrete bound on the `steps`-step grid (VP only) with `continuous=False`.
#[pyfunction]
#[pyo3(signature = (model, x = None, data = None, n = 1000, seed = 0, path = None, continuous = true, draws = 16, sampling = "importance", eps = 1e-5, steps = 1000, variance = "beta", threads = None))]
#[allow(clippy::too_many_arguments)]
pub fn elbo(
    py: Python<'_>,
    model: &Bound<'_, PyAny>,
    x: Option<&Bound<'_, PyAny>>,
    data: Option<&Bound<'_, PyAny>>,
    n: usize,
    seed: u64,
    path: Option<&Bound<'_, PyAny>>,
    continuous: bool,
    draws: usize,
    sampling: &str,
    eps: f64,
    steps: usize,
    variance: &str,
    threads: Option<usize>,
) -> PyResult<Py<PyDict>> {
    let (source, callable) = Source::new(model, path)?;
    let pts = points(py, x, data, &source, n, seed)?;
    let sampling: scoresde::elbo::TimeSampling =
        from_table::<Named<_>>(named(sampling), "sampling")?.v;
    let variance: scoresde::sample::Variance =
        from_table::<Named<_>>(named(variance), "variance")?.v;
    let (total, stderr, per_point, terms) =
        compute(py, threads, callable.as_ref(), move |caller| {
            let model = source.build(&caller, &Guide::default())?;
            model.check_points(pts.view())?;
            if continuous {
                let b = model.continuous_bound(pts.view(), eps, draws, sampling, seed)?;
                let terms = vec![
                    ("prior".to_string(), b.prior.mean().unwrap_or(f64::NAN)),
                    (
                        "diffusion".to_string(),
                        b.diffusion.mean().unwrap_or(f64::NAN),
                    ),
                    ("recon".to_string(), b.recon),
                ];
                Ok((b.total(), b.stderr(), b.per_point, terms))
            } else {
                let b = model.discrete_bound(pts.view(), steps, variance, seed)?;
                let terms = b
                    .terms
                    .iter()
                    .map(|t| (format!("{}:{}", t.kind.name(), t.step), t.nats))
                    .collect();
                Ok((b.total(), b.stderr(), b.per_point, terms))
            }
        })?;
    let d = PyDict::new(py);
    d.set_item("total", total)?;
    d.set_item("stderr", stderr)?;
    d.set_item("per_point", output(py, per_point, false))?;
    let t = PyDict::new(py);
    for (k, v) in terms {
        t.set_item(k, v)?;
    }
    d.set_item("terms", t)?;
    Ok(d.unbind())
}

#[derive(serde::Deserialize)]
struct Named<T> {
    v: T,
}

fn named(v: &str) -> toml::Table {
    toml::Table::from_iter([("v".into(), v.into())])
}

/// Tests samples against the exact data distribution: MMD, energy and kNN permutation tests
/// and, for a mixture, the exact-oracle tests, judged as one family at level `alpha`.
#[pyfunction]
#[pyo3(signature = (samples, data, alpha = 0.05, seed = 0, permutations = None, max_points = 5000, threads = None))]
#[allow(clippy::too_many_arguments)]
pub fn test(
    py: Python<'_>,
    samples: &Bound<'_, PyAny>,
    data: &Bound<'_, PyAny>,
    alpha: f64,
    seed: u64,
    permutations: Option<usize>,
    max_points: usize,
    threads: Option<usize>,
) -> PyResult<Py<PyDict>> {
    let data = data_arg(data)?;
    let input = Input::new(samples, "samples")?;
    input.check(Some(data.dim()))?;
    let x = input.view();
    let battery = scoresde::stats::suite::Battery {
        alpha,
        seed,
        permutations,
        max_points,
        progress: false,
    };
    let report = compute(py, threads, None, |_| battery.run(x.view(), &data))?;
    let d = PyDict::new(py);
    d.set_item("rejected", report.rejected)?;
    d.set_item("alpha", report.alpha)?;
    d.set_item("n", report.n)?;
    d.set_item("resamples", report.resamples)?;
    d.set_item("floor_limited", report.floor_limited)?;
    let tests = PyList::empty(py);
    for (o, adj) in report.outcomes.iter().zip(&report.adjusted) {
        let t = PyDict::new(py);
        t.set_item("name", o.name)?;
        t.set_item("statistic", o.statistic)?;
        t.set_item("p_value", o.p_value)?;
        t.set_item("adjusted", *adj)?;
        t.set_item("detail", &o.detail)?;
        tests.append(t)?;
    }
    d.set_item("tests", tests)?;
    Ok(d.unbind())
}

/// Trains a network by denoising score matching into the run directory `out` (created; with
/// `resume=True` the run there continues to `steps`). `config` is a training TOML; every
/// other keyword is a setting of its `sde`, `net` or `train` table by its own name, or
/// `data` / `path`.
#[pyfunction]
#[pyo3(signature = (out, data = None, config = None, resume = false, threads = None, **settings))]
pub fn train(
    py: Python<'_>,
    out: PathBuf,
    data: Option<&Bound<'_, PyAny>>,
    config: Option<PathBuf>,
    resume: bool,
    threads: Option<usize>,
    settings: Option<&Bound<'_, PyDict>>,
) -> PyResult<Run> {
    let mut overrides = kwargs(settings)?;
    if let Some(d) = data {
        let spec = match d.cast::<Data>() {
            Ok(d) => d.get().spec.clone(),
            Err(_) => d
                .extract::<String>()
                .map_err(|_| value_error("`data` must be a Data or a name"))?,
        };
        overrides.insert("data".into(), spec.into());
    }
    let out2 = out.clone();
    compute(py, threads, None, move |_| {
        scoresde::tasks::train(&out2, config.as_deref(), resume, &overrides).map(|_| ())
    })?;
    load(out).map_err(to_py)
}

/// Loads a run directory of `scoresde train`.
#[pyfunction]
pub fn load_run(dir: PathBuf) -> PyResult<Run> {
    load(dir).map_err(to_py)
}

/// Runs a named experiment (or an experiment .toml) into `out/NAME/`; returns its claims.
#[pyfunction]
#[pyo3(signature = (name, out, quick = false, seed = None, threads = None))]
pub fn run_experiment(
    py: Python<'_>,
    name: &str,
    out: PathBuf,
    quick: bool,
    seed: Option<u64>,
    threads: Option<usize>,
) -> PyResult<Py<PyDict>> {
    let exp = scoresde::experiments::Experiment::load(name).map_err(to_py)?;
    let report = compute(py, threads, None, |_| {
        scoresde::experiments::run(&exp, &out, quick, seed)
    })?;
    let d = PyDict::new(py);
    d.set_item("name", &exp.name)?;
    d.set_item("dir", report.dir.display().to_string())?;
    d.set_item("wall", report.wall)?;
    d.set_item("passed", report.failures().is_empty())?;
    let claims = PyList::empty(py);
    for c in &report.claims {
        let t = PyDict::new(py);
        t.set_item("name", &c.name)?;
        t.set_item("passed", c.passed())?;
        t.set_item("asserted", c.asserted)?;
        t.set_item("statistic", c.statistic)?;
        t.set_item("threshold", &c.threshold)?;
        claims.append(t)?;
    }
    d.set_item("claims", claims)?;
    Ok(d.unbind())
}

/// The sampler names.
#[pyfunction]
pub fn samplers() -> Vec<&'static str> {
    NAMES.to_vec()
}

/// The builtin dataset names.
#[pyfunction]
pub fn datasets() -> Vec<&'static str> {
    scoresde::data::BUILTINS.iter().map(|b| b.0).collect()
}

/// The builtin experiment names.
#[pyfunction]
pub fn experiments() -> PyResult<Vec<String>> {
    Ok(scoresde::experiments::builtin()
        .map_err(to_py)?
        .into_iter()
        .map(|e| e.name)
        .collect())
}

/// The N(0, 1) draws the step-map samplers use, shape (draws, n, d): draw k is the k-th
/// `StepContext::normal` block of a run with this seed (row i keyed by (seed, i, k)), so that
/// an outside implementation can be driven with the same noise.
#[pyfunction]
#[pyo3(signature = (n, d, draws, seed = 0))]
pub fn solver_noise(
    py: Python<'_>,
    n: usize,
    d: usize,
    draws: usize,
    seed: u64,
) -> PyResult<Py<PyAny>> {
    scoresde::error::check_range("n × d × draws", n * d * draws, scoresde::error::MAX_VALUES)
        .map_err(to_py)?;
    let key = scoresde::solvers::KeyedNormal::new(seed, scoresde::sample::SOLVER_DOMAIN);
    let mut out = ndarray::Array3::zeros((draws, n, d));
    for (k, mut block) in out.outer_iter_mut().enumerate() {
        block.assign(&key.matrix(n, d, k as u64));
    }
    Ok(output(py, out, false))
}

/// The settings of a sampler (its own keywords of `sample`).
#[pyfunction]
pub fn sampler_settings(name: &str) -> PyResult<Vec<String>> {
    Ok(name.parse::<Sampler>().map_err(to_py)?.settings())
}

/// The names `train` takes as keywords.
#[pyfunction]
pub fn train_settings() -> Vec<&'static str> {
    scoresde::train::RunConfig::override_names()
}

/// The share of `samples` whose nearest training point lies closer than `fraction` × that
/// point's distance to its own nearest other training point (a copy), and the mean distance
/// to the training set over that of `fresh` draws when given: `{"copy_fraction",
/// "distance_ratio"}`.
#[pyfunction]
#[pyo3(signature = (samples, train, fraction = 1.0 / 3.0, fresh = None))]
pub fn copy_fraction(
    py: Python<'_>,
    samples: &Bound<'_, PyAny>,
    train: &Bound<'_, PyAny>,
    fraction: f64,
    fresh: Option<&Bound<'_, PyAny>>,
) -> PyResult<Py<PyDict>> {
    let x = Input::new(samples, "samples")?;
    let t = Input::new(train, "train")?;
    t.check(None)?;
    let d = t.view().ncols();
    x.check(Some(d))?;
    if t.view().nrows() < 2 {
        return Err(value_error("`train` needs at least 2 points"));
    }
    if !(fraction > 0.0 && fraction.is_finite()) {
        return Err(value_error("`fraction` must be positive"));
    }
    let (xv, tv) = (x.view().into_owned(), t.view().into_owned());
    let fv = match fresh {
        Some(f) => {
            let f = Input::new(f, "fresh")?;
            f.check(Some(d))?;
            Some(f.view().into_owned())
        }
        None => None,
    };
    let (copies, ratio) = py.detach(|| {
        use scoresde::stats::memorisation as mem;
        let c = mem::copy_fraction(xv.view(), tv.view(), fraction);
        let r = fv.map(|f| mem::distance_ratio(xv.view(), tv.view(), f.view()));
        (c, r)
    });
    let out = PyDict::new(py);
    out.set_item("copy_fraction", copies)?;
    out.set_item("distance_ratio", ratio)?;
    Ok(out.unbind())
}

/// The 1797 8×8 handwritten digits of UCI optdigits (Alpaydin & Kaynak 1998, as scikit-learn
/// ships them): `(x, labels)`, x of shape (1797, 64) scaled to [−1, 1] (count / 8 − 1),
/// labels int64 digits.
#[pyfunction]
pub fn optdigits(py: Python<'_>) -> PyResult<(Py<PyAny>, Py<PyAny>)> {
    let (x, labels) = scoresde::data::optdigits().map_err(to_py)?;
    let labels = ndarray::Array1::from_iter(labels.into_iter().map(|c| c as i64));
    Ok((
        output(py, x, false),
        numpy::PyArray1::from_owned_array(py, labels)
            .into_any()
            .unbind(),
    ))
}
