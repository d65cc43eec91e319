//! Named experiments: definitions in `experiments/*.toml` (serde, unknown fields rejected),
//! each run into `DIR/NAME/` with PNG + SVG charts, the CSV behind every chart and a
//! `manifest.json` (config, seed, version, git revision, wall time, NFE, claims with verdicts).

pub mod cells;
pub mod index;
pub mod kit;
pub mod model;

pub use kit::{Exact, Fixed, Num, Scale, Sci, SciP};

use crate::io::{toml_error, AtomicFile};
use crate::plot::{line_chart, Chart, Panel, Series};
use crate::sde::SdeSpec;
use crate::{invalid, Error, Result};
use ndarray::Array2;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The experiment files shipped with scoresde (`scoresde list`): every `experiments/*.toml`,
/// gathered by `build.rs` in file-name order.
pub const BUILTIN: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/builtin_experiments.rs"));

/// The one registry of experiment kinds: each line names the module (which holds `Params` and
/// `run`), the variant of [`Params`] and the `kind` of an experiment file, whose parameter
/// table carries the module's name (`kind = "samplers-vs-nfe"` with `[samplers_vs_nfe]`).
macro_rules! registry {
    ($($module:ident => $variant:ident = $kind:literal),* $(,)?) => {
        /// An experiment's kind with its parameter table.
        #[derive(Clone, Debug)]
        pub enum Params {
            $($variant($module::Params),)*
        }

        /// Every `kind` an experiment file may name.
        pub const KINDS: &[&str] = &[$($kind),*];

        impl Params {
            /// The `kind` of an experiment file.
            pub fn kind(&self) -> &'static str {
                match self {
                    $(Params::$variant(_) => $kind,)*
                }
            }

            fn execute(
                &self,
                exp: &Experiment,
                o: &mut Outputs,
                mode: cells::Mode,
            ) -> Result<(Option<Vec<Claim>>, cells::Tally)> {
                match self {
                    $(Params::$variant(p) => cells::execute(p, exp, o, mode),)*
                }
            }
        }

        /// The file form: the shared header, `kind`, and one table named by the kind.
        #[derive(Clone, Debug, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct File {
            name: String,
            description: String,
            #[serde(default)]
            tags: Vec<String>,
            kind: String,
            data: String,
            #[serde(default)]
            sde: SdeSpec,
            #[serde(default)]
            seed: u64,
            $(
                #[serde(default, skip_serializing_if = "Option::is_none")]
                $module: Option<$module::Params>,
            )*
        }

        impl File {
            fn tables(&self) -> Vec<&'static str> {
                let mut t = Vec::new();
                $(if self.$module.is_some() { t.push(stringify!($module)); })*
                t
            }

            fn params(self, origin: &str) -> Result<Params> {
                let tables = self.tables();
                let params = match self.kind.as_str() {
                    $($kind => self.$module.map(Params::$variant),)*
                    other => {
                        return Err(Error::Data(format!(
                            "{origin}: unknown kind '{other}' (known: {})",
                            KINDS.join(", ")
                        )))
                    }
                };
                let own = self.kind.replace('-', "_");
                if let Some(t) = tables.iter().find(|t| **t != own) {
                    return Err(Error::Data(format!(
                        "{origin}: table [{t}] does not belong to kind '{}' (its table is [{own}])",
                        self.kind
                    )));
                }
                params.ok_or_else(|| {
                    Error::Data(format!(
                        "{origin}: experiment '{}' of kind {} needs its [{own}] table",
                        self.name, self.kind
                    ))
                })
            }

            fn from_experiment(e: &Experiment) -> File {
                let mut f = File {
                    name: e.name.clone(),
                    description: e.description.clone(),
                    tags: e.tags.clone(),
                    kind: e.params.kind().into(),
                    data: e.data.clone(),
                    sde: e.sde.clone(),
                    seed: e.seed,
                    $($module: None,)*
                };
                match &e.params {
                    $(Params::$variant(p) => f.$module = Some(p.clone()),)*
                }
                f
            }
        }
    };
}

// The experiment modules, declared here (not inside `registry!`) so that `cargo fmt` sees them;
// each must also have its line in `registry!` below.
pub mod adaptive_ode;
pub mod autoguidance_toy;
pub mod cfg_exact;
pub mod ddim_eta;
pub mod ddim_reconstruction;
pub mod ddpm_ablation;
pub mod ddpm_vs_vpsde;
pub mod dpm_solver;
pub mod edm_churn;
pub mod edm_samplers;
pub mod elbo_terms;
pub mod elbo_vs_t;
pub mod error_budget;
pub mod error_vs_dimension;
pub mod few_step;
pub mod forward_reverse_2d;
pub mod likelihoods;
pub mod memorisation;
pub mod memorisation_digits;
pub mod ncsn_langevin;
pub mod ncsn_score_field;
pub mod ode_curvature;
pub mod optimised_schedules;
pub mod pc_samplers;
pub mod sampler_orders;
pub mod samplers_vs_nfe;
pub mod sde_trajectories;
pub mod swiss_roll;
pub mod toy_gallery;

registry! {
    samplers_vs_nfe => SamplersVsNfe = "samplers-vs-nfe",
    dpm_solver => DpmSolver = "dpm-solver",
    ode_curvature => OdeCurvature = "ode-curvature",
    edm_samplers => EdmSamplers = "edm-samplers",
    edm_churn => EdmChurn = "edm-churn",
    ddim_reconstruction => DdimReconstruction = "ddim-reconstruction",
    ncsn_score_field => NcsnScoreField = "ncsn-score-field",
    ddpm_ablation => DdpmAblation = "ddpm-ablation",
    elbo_vs_t => ElboVsT = "elbo-vs-t",
    ncsn_langevin => NcsnLangevin = "ncsn-langevin",
    adaptive_ode => AdaptiveOde = "adaptive-ode",
    forward_reverse_2d => ForwardReverse2d = "forward-reverse-2d",
    ddim_eta => DdimEta = "ddim-eta",
    ddpm_vs_vpsde => DdpmVsVpsde = "ddpm-vs-vpsde",
    sde_trajectories => SdeTrajectories = "sde-trajectories",
    swiss_roll => SwissRoll = "swiss-roll",
    pc_samplers => PcSamplers = "pc-samplers",
    likelihoods => Likelihoods = "likelihoods",
    elbo_terms => ElboTerms = "elbo-terms",
    toy_gallery => ToyGallery = "toy-gallery",
    sampler_orders => SamplerOrders = "sampler-orders",
    few_step => FewStep = "few-step",
    optimised_schedules => OptimisedSchedules = "optimised-schedules",
    cfg_exact => CfgExact = "cfg-exact",
    autoguidance_toy => AutoguidanceToy = "autoguidance-toy",
    memorisation => Memorisation = "memorisation",
    memorisation_digits => MemorisationDigits = "memorisation-digits",
    error_budget => ErrorBudget = "error-budget",
    error_vs_dimension => ErrorVsDimension = "error-vs-dimension",
}

/// One experiment definition.
#[derive(Clone, Debug)]
pub struct Experiment {
    pub name: String,
    /// One line for `scoresde list`.
    pub description: String,
    /// `paper` experiments are what `scoresde figures` runs.
    pub tags: Vec<String>,
    /// Builtin dataset or mixture file.
    pub data: String,
    pub sde: SdeSpec,
    pub seed: u64,
    /// The kind and its parameter table.
    pub params: Params,
}

impl Serialize for Experiment {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        File::from_experiment(self).serialize(s)
    }
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
        let file: File = toml::from_str(text)
            .map_err(|e| Error::Data(format!("{origin}{}", toml_error(text, &e))))?;
        let e = Experiment {
            name: file.name.clone(),
            description: file.description.clone(),
            tags: file.tags.clone(),
            data: file.data.clone(),
            sde: file.sde.clone(),
            seed: file.seed,
            params: file.params(origin)?,
        };
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

    /// `NAME  description [tags]`, as `scoresde list` prints it.
    pub fn list_line(&self) -> String {
        let tags = if self.tags.is_empty() {
            String::new()
        } else {
            format!(" [{}]", self.tags.join(", "))
        };
        format!("{:<18} {}{tags}", self.name, self.description)
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

/// Runs experiments, `jobs` at a time (each on its own thread, their inner parallel work on
/// the shared rayon pool: outputs do not depend on `jobs`), the longest first by the wall time
/// in `out/NAME/manifest.json` (never run: first), printing one line each (stdout) and every
/// claim that does not hold (stderr) as each ends, then writes `out/index.html` over every
/// experiment in `out`; returns whether every asserted claim held. The first error stops new
/// experiments from starting and is returned once the running ones end. A shard
/// ([`cells::Mode::Shard`]) prints what it computed and writes no index.
pub fn run_all(
    list: &[Experiment],
    out: &Path,
    quick: bool,
    seed: Option<u64>,
    mode: cells::Mode,
    jobs: usize,
) -> Result<bool> {
    let mut order: Vec<(f64, usize)> = list
        .iter()
        .enumerate()
        .map(|(i, e)| (previous_wall(out, e).unwrap_or(f64::INFINITY), i))
        .collect();
    order.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let order: Vec<usize> = order.into_iter().map(|(_, i)| i).collect();
    let mut ok = true;
    let mut error = None;
    let run_one = |i: usize| run_mode(&list[i], out, quick, seed, mode).map(|r| (i, r));
    cells::side_by_side(order, jobs.max(1), run_one, |r| match r {
        Ok((i, r)) if error.is_none() => ok &= report(&list[i], &r, mode),
        Ok(_) => {}
        Err(e) => {
            error.get_or_insert(e);
        }
    });
    if let Some(e) = error {
        return Err(e);
    }
    if matches!(mode, cells::Mode::Shard { .. }) {
        return Ok(true);
    }
    let shown = index::write_index(out)?;
    println!(
        "index of {shown} experiments -> {}",
        out.join("index.html").display()
    );
    Ok(ok)
}

/// The wall time of `e`'s last run into `out`, from its manifest.
fn previous_wall(out: &Path, e: &Experiment) -> Option<f64> {
    let text = std::fs::read_to_string(out.join(&e.name).join("manifest.json")).ok()?;
    let m: serde_json::Value = serde_json::from_str(&text).ok()?;
    m.get("wall_seconds")?.as_f64()
}

/// Prints what one run did; whether its asserted claims held.
fn report(e: &Experiment, r: &Report, mode: cells::Mode) -> bool {
    let t = &r.tally;
    if let cells::Mode::Shard { index, count } = mode {
        println!(
            "{}: shard {index}/{count}: {} cells computed, {} reused, of {} in all, {:.1}s",
            e.name, t.computed, t.reused, t.cells, r.wall
        );
        return true;
    }
    let failed = r.failures();
    println!(
        "{}: {} claims, {} failed, {} of {} cells computed, {:.1}s -> {}",
        e.name,
        r.claims.len(),
        failed.len(),
        t.computed,
        t.cells,
        r.wall,
        r.dir.display()
    );
    for c in r.claims.iter().filter(|c| !c.passed()) {
        eprintln!(
            "{}: claim {}: '{}' statistic {:.4e}, threshold {}",
            e.name,
            if c.asserted {
                "FAILED"
            } else {
                "not met (reported only)"
            },
            c.name,
            c.statistic,
            c.threshold
        );
    }
    failed.is_empty()
}

/// The builtin experiments carrying `tag` (`paper`: what `scoresde figures` runs).
pub fn tagged(tag: &str) -> Result<Vec<Experiment>> {
    Ok(builtin()?
        .into_iter()
        .filter(|e| e.tags.iter().any(|t| t == tag))
        .collect())
}

/// Every builtin experiment.
pub fn builtin() -> Result<Vec<Experiment>> {
    BUILTIN
        .iter()
        .map(|(origin, text)| Experiment::parse(origin, text))
        .collect()
}

/// One checked claim of a paper.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claim {
    pub name: String,
    /// "pass" or "fail".
    pub verdict: String,
    pub statistic: f64,
    pub threshold: String,
    /// false: reported only (papers.md does not mark it assertable on toys).
    pub asserted: bool,
}

impl Claim {
    pub fn new(name: &str, pass: bool, statistic: f64, threshold: &str) -> Self {
        Self {
            name: name.into(),
            verdict: if pass { "pass" } else { "fail" }.into(),
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
    /// Measured speeds and costs (machine-dependent: kept out of CSVs and claims), for the
    /// manifest: (what, value).
    pub timings: Vec<(String, f64)>,
}

impl Outputs {
    /// Nothing written yet into `dir`.
    pub fn new(dir: PathBuf, quick: bool, seed: u64) -> Self {
        Self {
            dir,
            files: Vec::new(),
            quick,
            seed,
            nfe: Vec::new(),
            models: Vec::new(),
            timings: Vec::new(),
        }
    }

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

    /// `NAME.csv` from typed rows: the header is the field names, numbers as each field's
    /// type writes them ([`Sci`], [`Num`]).
    pub fn rows<R: Serialize>(&mut self, name: &str, rows: &[R]) -> Result<()> {
        let mut w = csv::Writer::from_writer(Vec::new());
        for r in rows {
            w.serialize(r).map_err(|e| invalid!("{name}.csv: {e}"))?;
        }
        let body = w.into_inner().map_err(|e| invalid!("{name}.csv: {e}"))?;
        let body = String::from_utf8(body).map_err(|e| invalid!("{name}.csv: {e}"))?;
        self.text(&format!("{name}.csv"), &body)
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
    /// Empty for a shard.
    pub claims: Vec<Claim>,
    pub dir: PathBuf,
    pub wall: f64,
    pub tally: cells::Tally,
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

/// `git rev-parse --short=12 HEAD` in the working directory, or "unknown".
pub fn git_revision() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// Runs `exp` into `out/NAME/` (every cell, then the figures and claims).
pub fn run(exp: &Experiment, out: &Path, quick: bool, seed: Option<u64>) -> Result<Report> {
    run_mode(exp, out, quick, seed, cells::Mode::All)
}

/// Runs the part `mode` names of `exp`: its cells go to `out/cells/NAME/`, its figures, CSVs
/// and manifest to `out/NAME/` (not for a shard).
pub fn run_mode(
    exp: &Experiment,
    out: &Path,
    quick: bool,
    seed: Option<u64>,
    mode: cells::Mode,
) -> Result<Report> {
    let start = Instant::now();
    let dir = out.join(&exp.name);
    let created = crate::io::create_dirs(&dir)?;
    let result = run_in(exp, dir, quick, seed, start, mode);
    if result.is_err() || matches!(mode, cells::Mode::Shard { .. }) {
        // A failed run (a full disk, a bad setting) or a shard leaves no empty directory.
        crate::io::remove_empty_dirs(&created);
    }
    result
}

fn run_in(
    exp: &Experiment,
    dir: PathBuf,
    quick: bool,
    seed: Option<u64>,
    start: Instant,
    mode: cells::Mode,
) -> Result<Report> {
    let seed = seed.unwrap_or(exp.seed);
    let mut o = Outputs::new(dir.clone(), quick, seed);
    let (claims, tally) = exp.params.execute(exp, &mut o, mode)?;
    let wall = start.elapsed().as_secs_f64();
    let Some(claims) = claims else {
        return Ok(Report {
            claims: Vec::new(),
            dir,
            wall,
            tally,
        });
    };
    let manifest = serde_json::json!({
        "name": exp.name,
        "description": exp.description,
        "config": exp,
        "seed": seed,
        "quick": quick,
        "version": env!("CARGO_PKG_VERSION"),
        "git_revision": git_revision(),
        "wall_seconds": wall,
        "cells": {"total": tally.cells, "computed": tally.computed, "reused": tally.reused},
        "nfe": o.nfe.iter().map(|(k, v)| serde_json::json!({"config": k, "nfe": v})).collect::<Vec<_>>(),
        "models": o.models,
        "timings": o.timings.iter().map(|(k, v)| serde_json::json!({"what": k, "value": v})).collect::<Vec<_>>(),
        "files": o.files,
        "claims": claims,
    });
    let body = serde_json::to_string_pretty(&manifest).map_err(|e| invalid!("manifest: {e}"))?;
    o.text("manifest.json", &(body + "\n"))?;
    Ok(Report {
        claims,
        dir,
        wall,
        tally,
    })
}

/// A 2D scatter chart of the rows of `x` (axes x₀, x₁).
pub fn scatter(title: String, x: &Array2<f64>) -> Chart {
    Chart {
        title,
        x_label: "x₀".into(),
        y_label: "x₁".into(),
        log_x: false,
        log_y: false,
        series: vec![Series::scatter(
            "",
            x.rows().into_iter().map(|r| (r[0], r[1])).collect(),
        )],
        ..Default::default()
    }
}

pub use crate::numerics::loglog_slope;

/// Refuses a list of times (or fractions of t_max) with a value outside (0, `max`]: an
/// experiment file's values are checked, never clamped into range.
pub(crate) fn check_times(what: &str, times: &[f64], max: f64) -> Result<()> {
    if let Some(t) = times.iter().find(|t| !(**t > 0.0 && **t <= max)) {
        return Err(crate::invalid!(
            "`{what}` must lie in (0, {}], got {}",
            crate::error::num(max),
            crate::error::num(*t)
        ));
    }
    Ok(())
}
