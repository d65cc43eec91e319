//! Named experiments: definitions in `experiments/*.toml` (serde, unknown fields rejected),
//! each run into `DIR/NAME/` with PNG + SVG charts, the CSV behind every chart and a
//! `manifest.json` (config, seed, version, git revision, wall time, NFE, claims with verdicts).

mod adaptive_ode;
mod ddim_eta;
mod ddpm_vs_vpsde;
mod elbo_terms;
mod elbo_vs_t;
mod forward_reverse;
mod likelihoods;
pub mod model;
mod ncsn_langevin;
mod pc_samplers;
mod samplers_vs_nfe;
mod sde_trajectories;
mod swiss_roll;
mod toy_gallery;

use crate::data::Dataset;
use crate::io::{toml_error, AtomicFile};
use crate::plot::{line_chart, Chart, Mark, Panel, Series};
use crate::score::GaussianMixture;
use crate::sde::SdeSpec;
use crate::{invalid, Error, Result};
use ndarray::Array2;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// The experiment files shipped with scoresde (`scoresde list`).
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "experiments/samplers-vs-nfe.toml",
        include_str!("../../experiments/samplers-vs-nfe.toml"),
    ),
    (
        "experiments/elbo-vs-t.toml",
        include_str!("../../experiments/elbo-vs-t.toml"),
    ),
    (
        "experiments/adaptive-ode.toml",
        include_str!("../../experiments/adaptive-ode.toml"),
    ),
    (
        "experiments/forward-reverse-2d.toml",
        include_str!("../../experiments/forward-reverse-2d.toml"),
    ),
    (
        "experiments/ddim-eta.toml",
        include_str!("../../experiments/ddim-eta.toml"),
    ),
    (
        "experiments/ddpm-vs-vpsde.toml",
        include_str!("../../experiments/ddpm-vs-vpsde.toml"),
    ),
    (
        "experiments/ncsn-langevin.toml",
        include_str!("../../experiments/ncsn-langevin.toml"),
    ),
    (
        "experiments/sde-trajectories.toml",
        include_str!("../../experiments/sde-trajectories.toml"),
    ),
    (
        "experiments/swiss-roll.toml",
        include_str!("../../experiments/swiss-roll.toml"),
    ),
    (
        "experiments/pc-samplers.toml",
        include_str!("../../experiments/pc-samplers.toml"),
    ),
    (
        "experiments/likelihoods.toml",
        include_str!("../../experiments/likelihoods.toml"),
    ),
    (
        "experiments/elbo-terms.toml",
        include_str!("../../experiments/elbo-terms.toml"),
    ),
    (
        "experiments/toy-gallery.toml",
        include_str!("../../experiments/toy-gallery.toml"),
    ),
];

/// What an experiment runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    SamplersVsNfe,
    ElboVsT,
    NcsnLangevin,
    AdaptiveOde,
    #[serde(rename = "forward-reverse-2d")]
    ForwardReverse2d,
    DdimEta,
    DdpmVsVpsde,
    SdeTrajectories,
    SwissRoll,
    PcSamplers,
    Likelihoods,
    ElboTerms,
    ToyGallery,
}

/// One experiment definition.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    pub name: String,
    /// One line for `scoresde list`.
    pub description: String,
    /// `paper` experiments are what `scoresde figures` runs.
    #[serde(default)]
    pub tags: Vec<String>,
    pub kind: Kind,
    /// Builtin dataset or mixture file.
    pub data: String,
    #[serde(default)]
    pub sde: SdeSpec,
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub samplers_vs_nfe: Option<samplers_vs_nfe::Params>,
    #[serde(default)]
    pub elbo_vs_t: Option<elbo_vs_t::Params>,
    #[serde(default)]
    pub ncsn_langevin: Option<ncsn_langevin::Params>,
    #[serde(default)]
    pub adaptive_ode: Option<adaptive_ode::Params>,
    #[serde(default)]
    pub forward_reverse_2d: Option<forward_reverse::Params>,
    #[serde(default)]
    pub ddim_eta: Option<ddim_eta::Params>,
    #[serde(default)]
    pub ddpm_vs_vpsde: Option<ddpm_vs_vpsde::Params>,
    #[serde(default)]
    pub sde_trajectories: Option<sde_trajectories::Params>,
    #[serde(default)]
    pub swiss_roll: Option<swiss_roll::Params>,
    #[serde(default)]
    pub pc_samplers: Option<pc_samplers::Params>,
    #[serde(default)]
    pub likelihoods: Option<likelihoods::Params>,
    #[serde(default)]
    pub elbo_terms: Option<elbo_terms::Params>,
    #[serde(default)]
    pub toy_gallery: Option<toy_gallery::Params>,
}

/// Every significance level in a definition (a key named `alpha`, at any depth) must lie in
/// (0, 1): `alpha = 5` would mark every test rejected.
fn check_levels(origin: &str, path: &str, v: &toml::Value) -> Result<()> {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let here = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                if k == "alpha" {
                    let a = v.as_float().or_else(|| v.as_integer().map(|i| i as f64));
                    if !a.is_some_and(|a| a > 0.0 && a < 1.0) {
                        return Err(Error::Data(format!(
                            "{origin}: {here} = {v} must lie in (0, 1)"
                        )));
                    }
                }
                check_levels(origin, &here, v)?;
            }
        }
        toml::Value::Array(a) => {
            for v in a {
                check_levels(origin, path, v)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Sizes and lists of an experiment's parameter table (`[kind]`, at any depth; model tables
/// `train`/`net` are checked by the trainer, `seed` may be 0): every integer in [1, 10⁸], every
/// list non-empty, every float finite. `steps = 0` or `nfe = []` is refused, not a panic.
fn check_sizes(origin: &str, path: &str, v: &toml::Value) -> Result<()> {
    const MAX: i64 = 100_000_000;
    let bad = |what: String| Err(Error::Data(format!("{origin}: {path} = {v} {what}")));
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                if matches!(k.as_str(), "seed" | "train" | "net") {
                    continue;
                }
                check_sizes(origin, &format!("{path}.{k}"), v)?;
            }
        }
        toml::Value::Array(a) if a.is_empty() => return bad("must not be empty".into()),
        toml::Value::Array(a) => {
            for v in a {
                check_sizes(origin, path, v)?;
            }
        }
        toml::Value::Integer(i) if !(1..=MAX).contains(i) => {
            return bad(format!("must lie in [1, {MAX}]"))
        }
        toml::Value::Float(f) if !f.is_finite() => return bad("must be finite".into()),
        _ => {}
    }
    Ok(())
}

impl Experiment {
    /// Parses a definition; errors name the file, line, column and field.
    pub fn parse(origin: &str, text: &str) -> Result<Self> {
        let e: Experiment = toml::from_str(text)
            .map_err(|e| Error::Data(format!("{origin}{}", toml_error(text, &e))))?;
        if let Ok(value) = toml::from_str::<toml::Value>(text) {
            check_levels(origin, "", &value)?;
            if let toml::Value::Table(t) = &value {
                for (k, v) in t.iter().filter(|(_, v)| v.is_table()) {
                    if k != "sde" {
                        check_sizes(origin, k, v)?;
                    }
                }
            }
        }
        let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        if e.name.is_empty() || !e.name.chars().all(plain) || e.name.chars().all(|c| c == '.') {
            return Err(Error::Data(format!(
                "{origin}: name '{}' must be letters, digits, '-', '_' or '.' (not only dots): it names the output folder",
                e.name
            )));
        }
        Ok(e)
    }

    /// The dataset and its exact mixture (every experiment here needs the exact score).
    pub fn exact_data(&self) -> Result<(Dataset, Arc<GaussianMixture>)> {
        let data = Dataset::from_spec(&self.data)?;
        let mixture = data
            .mixture()
            .ok_or_else(|| Error::Data(format!("{}: needs a mixture dataset", self.name)))?
            .clone();
        Ok((data, mixture))
    }

    /// A builtin name or a path to a `.toml` file.
    pub fn load(spec: &str) -> Result<Self> {
        if spec.ends_with(".toml") || Path::new(spec).exists() {
            let text = std::fs::read_to_string(spec).map_err(|e| Error::io(spec, e))?;
            return Self::parse(spec, &text);
        }
        for e in builtin()? {
            if e.name == spec {
                return Ok(e);
            }
        }
        let names: Vec<String> = builtin()?.into_iter().map(|e| e.name).collect();
        Err(Error::Data(format!(
            "unknown experiment '{spec}' (known: {}; or a path to a .toml file)",
            names.join(", ")
        )))
    }
}

/// Every builtin experiment.
pub fn builtin() -> Result<Vec<Experiment>> {
    BUILTIN
        .iter()
        .map(|(origin, text)| Experiment::parse(origin, text))
        .collect()
}

/// One checked claim of a paper.
#[derive(Clone, Debug, Serialize)]
pub struct Claim {
    pub name: String,
    /// "pass" or "fail".
    pub verdict: &'static str,
    pub statistic: f64,
    pub threshold: String,
    /// false: reported only (papers.md does not mark it assertable on toys).
    pub asserted: bool,
}

impl Claim {
    pub fn new(name: &str, pass: bool, statistic: f64, threshold: &str) -> Self {
        Self {
            name: name.into(),
            verdict: if pass { "pass" } else { "fail" },
            statistic,
            threshold: threshold.into(),
            asserted: true,
        }
    }
    pub fn report_only(self) -> Self {
        Self {
            asserted: false,
            ..self
        }
    }
    /// A claim about a model trained in the run: under `--quick` (a few hundred optimiser steps,
    /// fewer seeds) it is recorded but not asserted, for want of statistical power.
    pub fn learned(self, quick: bool) -> Self {
        if quick {
            self.report_only()
        } else {
            self
        }
    }

    pub fn passed(&self) -> bool {
        self.verdict == "pass"
    }
}

/// Where an experiment writes, and what it has written.
pub struct Outputs {
    pub dir: PathBuf,
    pub files: Vec<String>,
    pub quick: bool,
    pub seed: u64,
    /// NFE of each configuration, for the manifest.
    pub nfe: Vec<(String, f64)>,
    /// Trained or reused models, for the manifest.
    pub models: Vec<model::ModelUse>,
}

impl Outputs {
    /// `NAME.png` and `NAME.svg`.
    pub fn chart(&mut self, name: &str, chart: &Chart) -> Result<()> {
        for ext in ["png", "svg"] {
            let f = format!("{name}.{ext}");
            line_chart(&self.dir.join(&f), chart)?;
            self.files.push(f);
        }
        Ok(())
    }

    /// `NAME.png` and `NAME.svg` with the charts side by side.
    pub fn panels(&mut self, name: &str, charts: &[Chart]) -> Result<()> {
        self.grid(name, charts, charts.len())
    }

    /// `NAME.png` and `NAME.svg` with the charts in rows of `cols`.
    pub fn grid(&mut self, name: &str, charts: &[Chart], cols: usize) -> Result<()> {
        let panels: Vec<Panel> = charts.iter().cloned().map(Panel::from).collect();
        self.figure(name, &panels, cols)
    }

    /// `NAME.png` and `NAME.svg` with any panels (charts, heat maps) in rows of `cols`.
    pub fn figure(&mut self, name: &str, panels: &[Panel], cols: usize) -> Result<()> {
        for ext in ["png", "svg"] {
            let f = format!("{name}.{ext}");
            crate::plot::panels(&self.dir.join(&f), panels, cols)?;
            self.files.push(f);
        }
        Ok(())
    }

    /// `NAME.csv` from a header and rows.
    pub fn csv(&mut self, name: &str, header: &str, rows: &[String]) -> Result<()> {
        let f = format!("{name}.csv");
        self.text(&f, &format!("{header}\n{}\n", rows.join("\n")))
    }

    /// Any text file, written atomically.
    pub fn text(&mut self, file: &str, body: &str) -> Result<()> {
        let path = self.dir.join(file);
        let mut a = AtomicFile::create(&path)?;
        std::io::Write::write_all(a.writer(), body.as_bytes()).map_err(|e| Error::io(&path, e))?;
        a.commit()?;
        self.files.push(file.into());
        Ok(())
    }
}

/// The result of one experiment.
pub struct Report {
    pub claims: Vec<Claim>,
    pub dir: PathBuf,
    pub wall: f64,
}

impl Report {
    /// Asserted claims that failed.
    pub fn failures(&self) -> Vec<&Claim> {
        self.claims
            .iter()
            .filter(|c| c.asserted && !c.passed())
            .collect()
    }
}

fn git_revision() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// Runs `exp` into `out/NAME/`.
pub fn run(exp: &Experiment, out: &Path, quick: bool, seed: Option<u64>) -> Result<Report> {
    let start = Instant::now();
    let dir = out.join(&exp.name);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let seed = seed.unwrap_or(exp.seed);
    let mut o = Outputs {
        dir: dir.clone(),
        files: Vec::new(),
        quick,
        seed,
        nfe: Vec::new(),
        models: Vec::new(),
    };
    let missing = |k: &str| {
        invalid!(
            "experiment '{}' of kind {k} needs its [{k}] table",
            exp.name
        )
    };
    // Each kind runs its module with its own params table.
    macro_rules! dispatch {
        ($($kind:ident => $module:ident . $field:ident),* $(,)?) => {
            match exp.kind {
                $(Kind::$kind => $module::run(
                    exp,
                    exp.$field.as_ref().ok_or_else(|| missing(stringify!($field)))?,
                    &mut o,
                )?,)*
            }
        };
    }
    let claims = dispatch!(
        SamplersVsNfe => samplers_vs_nfe.samplers_vs_nfe,
        ElboVsT => elbo_vs_t.elbo_vs_t,
        NcsnLangevin => ncsn_langevin.ncsn_langevin,
        AdaptiveOde => adaptive_ode.adaptive_ode,
        ForwardReverse2d => forward_reverse.forward_reverse_2d,
        DdimEta => ddim_eta.ddim_eta,
        DdpmVsVpsde => ddpm_vs_vpsde.ddpm_vs_vpsde,
        SdeTrajectories => sde_trajectories.sde_trajectories,
        SwissRoll => swiss_roll.swiss_roll,
        PcSamplers => pc_samplers.pc_samplers,
        Likelihoods => likelihoods.likelihoods,
        ElboTerms => elbo_terms.elbo_terms,
        ToyGallery => toy_gallery.toy_gallery,
    );
    let wall = start.elapsed().as_secs_f64();
    let manifest = serde_json::json!({
        "name": exp.name,
        "description": exp.description,
        "config": exp,
        "seed": seed,
        "quick": quick,
        "version": env!("CARGO_PKG_VERSION"),
        "git_revision": git_revision(),
        "wall_seconds": wall,
        "nfe": o.nfe.iter().map(|(k, v)| serde_json::json!({"config": k, "nfe": v})).collect::<Vec<_>>(),
        "models": o.models,
        "files": o.files,
        "claims": claims,
    });
    let body = serde_json::to_string_pretty(&manifest).map_err(|e| invalid!("manifest: {e}"))?;
    o.text("manifest.json", &(body + "\n"))?;
    Ok(Report { claims, dir, wall })
}

/// A 2D scatter chart of the rows of `x` (axes x₀, x₁).
pub fn scatter(title: String, x: &Array2<f64>) -> Chart {
    Chart {
        title,
        x_label: "x₀".into(),
        y_label: "x₁".into(),
        log_x: false,
        log_y: false,
        series: vec![Series {
            label: String::new(),
            points: x.rows().into_iter().map(|r| (r[0], r[1])).collect(),
            mark: Mark::Points,
        }],
        ..Default::default()
    }
}

pub use crate::numerics::loglog_slope;
