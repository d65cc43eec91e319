//! Sweeps: one experiment run over a grid of its settings and a list of seeds, as independent
//! tasks. A task is a pure function of the spec and its index, so any engine can run them — this
//! machine (`scoresde sweep local`), a Slurm job array (`scoresde sweep slurm`, the index from
//! `SLURM_ARRAY_TASK_ID`) or a Hydra/submitit launcher calling `scoresde sweep run --task I` —
//! and `scoresde sweep merge` gathers the same bytes whichever ran them, in any order.
//!
//! ```toml
//! name = "nfe-by-data"
//! experiment = "samplers-vs-nfe"     # a builtin name or an experiment .toml (next to the spec)
//! quick = false
//! seeds = [1, 2, 3]                  # innermost; none: the experiment's own seed
//! collect = "errors.csv"             # a CSV the experiment writes: its rows are merged
//! [grid]                             # dotted keys of the experiment file
//! data = ["8gaussians", "25gaussians"]
//! "samplers_vs_nfe.particles" = [100, 200]
//! [plot]                             # merge's summary figure from merged.csv
//! x = "nfe"
//! y = "endpoint_error"
//! series = ["data", "sampler"]         # one line each, averaged over the seeds
//! log_x = true
//! log_y = true
//! [fit]                              # merge's pooled power law, OUT/fit.csv
//! y = "endpoint_error"               # log y = c + Σ e_j log x_j per group, 95 % intervals
//! x = ["nfe"]
//! by = ["data", "sampler"]
//! [slurm]                            # defaults of `sweep slurm` (flags override)
//! time = "00:30:00"
//! mem = "4G"
//! cpus = 2
//! parallel = 8
//! ```
//!
//! Task i's settings: the grid keys in sorted order (as a TOML table holds them), the last
//! varying fastest, then the seed; `scoresde sweep plan SPEC` prints the table.

mod fit;
mod merge;
mod run;
mod slurm;

pub use fit::{fit_table, PowerFit};
pub use merge::{merge, Merged};
pub use run::{local, run_task, task_index, TaskOutcome};
pub use slurm::{slurm_script, submit, write_slurm, SlurmSettings};

use crate::experiments::{Experiment, BUILTIN};
use crate::io::toml_error;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A sweep specification, as written in its TOML file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecFile {
    name: String,
    experiment: String,
    #[serde(default)]
    quick: bool,
    #[serde(default)]
    seeds: Vec<u64>,
    #[serde(default)]
    collect: Option<String>,
    #[serde(default)]
    grid: toml::Table,
    #[serde(default)]
    slurm: SlurmSettings,
    /// The summary figure `merge` draws from `merged.csv`.
    #[serde(default)]
    plot: Option<SummaryPlot>,
    /// The pooled power-law fit `merge` writes to `fit.csv`.
    #[serde(default)]
    fit: Option<PowerFit>,
}

/// The sweep's summary figure: `y` against `x` (columns of `merged.csv`), one line per
/// combination of the `series` columns, averaged over the rows that share it and x (the seeds).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SummaryPlot {
    pub x: String,
    pub y: String,
    #[serde(default)]
    pub series: Vec<String>,
    #[serde(default)]
    pub log_x: bool,
    #[serde(default)]
    pub log_y: bool,
}

impl SpecFile {
    fn len(&self) -> usize {
        let lens = self.grid.values().map(|v| v.as_array().map_or(0, Vec::len));
        task_count(lens, self.seeds.len())
    }
}

/// Tasks of a grid whose keys have these numbers of values, times the seeds (none: one).
fn task_count(lens: impl Iterator<Item = usize>, seeds: usize) -> usize {
    lens.fold(seeds.max(1), usize::saturating_mul)
}

/// A parsed sweep: the experiment's file, the grid and seeds.
#[derive(Clone, Debug)]
pub struct Spec {
    pub name: String,
    /// Where the spec came from (errors name it).
    pub origin: String,
    /// The spec file's text, kept beside the tasks' outputs.
    pub text: String,
    pub quick: bool,
    pub seeds: Vec<u64>,
    /// A CSV of the experiment's outputs whose rows `merge` gathers.
    pub collect: Option<String>,
    /// (dotted key, values), keys sorted.
    pub grid: Vec<(String, Vec<toml::Value>)>,
    pub slurm: SlurmSettings,
    /// The experiment file: where it came from and its parsed TOML.
    experiment: (String, toml::Table),
}

/// One task: its index, grid values and seed.
#[derive(Clone, Debug, PartialEq)]
pub struct Task {
    pub index: usize,
    pub params: Vec<(String, toml::Value)>,
    pub seed: Option<u64>,
}

impl Spec {
    /// Reads and checks a spec file; every task's experiment is built once, so an unknown or
    /// ill-typed parameter is an error here, naming the task and the field.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse(&path.display().to_string(), &text, path.parent())
    }

    /// [`Spec::load`] from text; an experiment file is looked for relative to `dir`.
    pub fn parse(origin: &str, text: &str, dir: Option<&Path>) -> Result<Self> {
        let bad = |m: String| Error::Data(format!("sweep {origin}: {m}"));
        let file: SpecFile = toml::from_str(text)
            .map_err(|e| Error::Data(format!("sweep {origin}{}", toml_error(text, &e))))?;
        let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        if file.name.is_empty() || !file.name.chars().all(plain) {
            return Err(bad(format!(
                "name '{}' must be letters, digits, '-', '_' or '.'",
                file.name
            )));
        }
        let mut grid = Vec::new();
        for (key, values) in file.grid {
            let values = match values {
                toml::Value::Array(v) if !v.is_empty() => v,
                _ => {
                    return Err(bad(format!(
                        "grid.{key} must be a non-empty array of values"
                    )))
                }
            };
            if key == "seed" || key == "name" {
                return Err(bad(format!(
                    "grid.{key}: {}",
                    if key == "seed" {
                        "seeds go in `seeds = [...]`"
                    } else {
                        "the name is the sweep's, not a parameter"
                    }
                )));
            }
            grid.push((key, values));
        }
        let experiment =
            experiment_source(&file.experiment, dir).map_err(|e| bad(e.to_string()))?;
        let spec = Spec {
            name: file.name,
            origin: origin.to_string(),
            text: text.to_string(),
            quick: file.quick,
            seeds: file.seeds,
            collect: file.collect,
            grid,
            slurm: file.slurm,
            experiment,
        };
        if let Some(c) = &spec.collect {
            if c.contains(['/', '\\']) || !c.ends_with(".csv") {
                return Err(bad(format!(
                    "collect = '{c}' must name a .csv file the experiment writes"
                )));
            }
        }
        let n = spec.len();
        if n == 0 || n > MAX_TASKS {
            return Err(bad(format!("{n} tasks; a sweep has 1 to {MAX_TASKS}")));
        }
        for i in 0..n {
            spec.experiment(&spec.task(i)?)?;
        }
        Ok(spec)
    }

    /// The number of tasks.
    pub fn len(&self) -> usize {
        task_count(self.grid.iter().map(|(_, v)| v.len()), self.seeds.len())
    }

    /// Whether the sweep has no task (never, once parsed).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Task `index`: grid values by sorted key, the last fastest, then the seed.
    pub fn task(&self, index: usize) -> Result<Task> {
        let n = self.len();
        if index >= n {
            return Err(Error::Data(format!(
                "sweep {}: task index {index} is out of range (the sweep has {n} tasks, 0 to {})",
                self.origin,
                n - 1
            )));
        }
        let mut rest = index;
        let seeds = self.seeds.len().max(1);
        let seed = self.seeds.get(rest % seeds).copied();
        rest /= seeds;
        let mut params = Vec::with_capacity(self.grid.len());
        for (key, values) in self.grid.iter().rev() {
            params.push((key.clone(), values[rest % values.len()].clone()));
            rest /= values.len();
        }
        params.reverse();
        Ok(Task {
            index,
            params,
            seed,
        })
    }

    /// The experiment of `task`: the experiment file with the task's values written in.
    pub fn experiment(&self, task: &Task) -> Result<Experiment> {
        let (origin, base) = &self.experiment;
        let mut table = base.clone();
        for (key, value) in &task.params {
            set_dotted(&mut table, key, value.clone()).map_err(|m| {
                Error::Data(format!(
                    "sweep {}: task {}: grid key '{key}': {m}",
                    self.origin, task.index
                ))
            })?;
        }
        let text = toml::to_string(&table).map_err(|e| Error::Data(e.to_string()))?;
        Experiment::parse(&format!("{origin} (sweep task {})", task.index), &text)
    }

    /// The task table as text: one line per task, `index  key=value …  seed=S`.
    pub fn plan(&self) -> Result<String> {
        let mut out = format!(
            "sweep {}: {} tasks of experiment {}{}\n",
            self.name,
            self.len(),
            self.experiment.0,
            if self.quick { " (--quick)" } else { "" }
        );
        for i in 0..self.len() {
            out.push_str(&task_line(&self.task(i)?));
            out.push('\n');
        }
        Ok(out)
    }
}

/// The largest number of tasks a sweep may have.
pub const MAX_TASKS: usize = 1_000_000;

/// `index  key=value …  seed=S`.
pub fn task_line(t: &Task) -> String {
    let mut line = format!("{:>6}", t.index);
    for (k, v) in &t.params {
        line.push_str(&format!("  {k}={v}"));
    }
    if let Some(s) = t.seed {
        line.push_str(&format!("  seed={s}"));
    }
    line
}

/// The experiment file named by a spec: a builtin name, or a `.toml` path relative to `dir`.
fn experiment_source(name: &str, dir: Option<&Path>) -> Result<(String, toml::Table)> {
    let (origin, text) = if name.ends_with(".toml") {
        let path: PathBuf = match dir {
            Some(d) if Path::new(name).is_relative() => d.join(name),
            _ => PathBuf::from(name),
        };
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        (path.display().to_string(), text)
    } else {
        let found = BUILTIN
            .iter()
            .find(|(origin, text)| Experiment::parse(origin, text).is_ok_and(|e| e.name == name));
        match found {
            Some((origin, text)) => (origin.to_string(), text.to_string()),
            None => {
                return Err(Error::Data(format!(
                    "experiment = '{name}' is neither a builtin experiment (scoresde list) nor a .toml file"
                )))
            }
        }
    };
    Experiment::parse(&origin, &text)?;
    let table = toml::from_str(&text).map_err(|e| Error::Data(format!("{origin}: {e}")))?;
    Ok((origin, table))
}

/// Sets `a.b.c = value` in `table`; the tables on the way must exist (a typo in a table name
/// is an error here, one in the last key the experiment's own parse reports).
fn set_dotted(
    table: &mut toml::Table,
    key: &str,
    value: toml::Value,
) -> std::result::Result<(), String> {
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err("empty part in a dotted key".into());
    }
    let (last, path) = parts.split_last().expect("split gives one part");
    let mut here = table;
    for (i, p) in path.iter().enumerate() {
        here = match here.get_mut(*p) {
            Some(toml::Value::Table(t)) => t,
            Some(_) => return Err(format!("'{}' is not a table", parts[..=i].join("."))),
            None => {
                return Err(format!(
                    "the experiment has no table [{}]",
                    parts[..=i].join(".")
                ))
            }
        };
    }
    here.insert(last.to_string(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r#"
name = "t"
experiment = "samplers-vs-nfe"
seeds = [1, 2]
[grid]
data = ["8gaussians", "25gaussians"]
"samplers_vs_nfe.particles" = [10, 20, 30]
"#;

    #[test]
    fn tasks_enumerate_the_grid_last_key_fastest_then_seeds() {
        let s = Spec::parse("t.toml", SPEC, None).unwrap();
        assert_eq!(s.len(), 12);
        let t = s.task(7).unwrap();
        // 7 = ((data 1 × 3 + particles 0) × 2 + seed 1)
        assert_eq!(t.seed, Some(2));
        assert_eq!(t.params[0].1.as_str(), Some("25gaussians"));
        assert_eq!(t.params[1].1.as_integer(), Some(10));
        let e = s.experiment(&t).unwrap();
        assert_eq!(e.data, "25gaussians");
        assert!(s.task(12).unwrap_err().to_string().contains("out of range"));
        assert_eq!(s.plan().unwrap().lines().count(), 13);
    }

    #[test]
    fn bad_specs_are_one_line_errors() {
        for (text, needle) in [
            ("name = \"t\"\nexperiment = \"samplers-vs-nfe\"\nbogus = 1\n", "unknown field `bogus`"),
            ("name = \"t\"\nexperiment = \"nope\"\n", "neither a builtin experiment"),
            (
                "name = \"t\"\nexperiment = \"samplers-vs-nfe\"\n[grid]\n\"samplers_vs_nfe.bogus\" = [1]\n",
                "unknown field `bogus`",
            ),
            (
                "name = \"t\"\nexperiment = \"samplers-vs-nfe\"\n[grid]\n\"nope.x\" = [1]\n",
                "no table [nope]",
            ),
            (
                "name = \"t\"\nexperiment = \"samplers-vs-nfe\"\n[grid]\ndata = []\n",
                "non-empty array",
            ),
            (
                "name = \"t\"\nexperiment = \"samplers-vs-nfe\"\n[grid]\nseed = [1]\n",
                "seeds go in",
            ),
            (
                "name = \"t\"\nexperiment = \"samplers-vs-nfe\"\ncollect = \"../x.csv\"\n",
                "must name a .csv",
            ),
            ("name = \"t\"\nexperiment = \"samplers-vs-nfe\"\n[grid\n", "sweep t.toml"),
        ] {
            let e = Spec::parse("t.toml", text, None).unwrap_err().to_string();
            assert!(e.contains(needle) && !e.contains('\n'), "{needle}: {e}");
        }
    }
}
