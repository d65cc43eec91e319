//! Slurm as the engine: an sbatch job array whose element I runs `scoresde sweep run SPEC
//! --out OUT` with I taken from `SLURM_ARRAY_TASK_ID`; only tasks without a finished record are
//! in the array, so resubmitting runs what is missing or failed.

use super::run::finished;
use super::Spec;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Resources of each array element (`#SBATCH` lines), from the spec's `[slurm]` table or flags.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlurmSettings {
    /// Wall-clock limit, Slurm's format (`HH:MM:SS`, `D-HH:MM:SS`, minutes).
    #[serde(default)]
    pub time: Option<String>,
    /// Memory per element (`4G`, `500M`).
    #[serde(default)]
    pub mem: Option<String>,
    /// CPUs per element (the task's threads).
    #[serde(default)]
    pub cpus: Option<usize>,
    /// Elements running at once (`%P` of `--array`).
    #[serde(default)]
    pub parallel: Option<usize>,
    #[serde(default)]
    pub partition: Option<String>,
}

impl SlurmSettings {
    /// `self` with every setting `flags` gives in its place.
    pub fn with(&self, flags: &SlurmSettings) -> SlurmSettings {
        SlurmSettings {
            time: flags.time.clone().or_else(|| self.time.clone()),
            mem: flags.mem.clone().or_else(|| self.mem.clone()),
            cpus: flags.cpus.or(self.cpus),
            parallel: flags.parallel.or(self.parallel),
            partition: flags.partition.clone().or_else(|| self.partition.clone()),
        }
    }
}

/// Indices as Slurm's array list: `0-3,5,7-9`.
fn ranges(idx: &[usize]) -> String {
    let mut parts = Vec::new();
    let mut k = 0;
    while k < idx.len() {
        let mut j = k;
        while j + 1 < idx.len() && idx[j + 1] == idx[j] + 1 {
            j += 1;
        }
        parts.push(if j == k {
            idx[k].to_string()
        } else {
            format!("{}-{}", idx[k], idx[j])
        });
        k = j + 1;
    }
    parts.join(",")
}

/// Single-quotes `s` for the shell.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The sbatch script of the tasks of `spec` not finished under `out` (None when all are), run
/// by `exe`; paths are made absolute so the script runs from any folder.
pub fn slurm_script(
    spec: &Spec,
    spec_path: &Path,
    out: &Path,
    exe: &Path,
    settings: &SlurmSettings,
) -> Result<Option<String>> {
    let todo: Vec<usize> = (0..spec.len()).filter(|&i| !finished(out, i)).collect();
    if todo.is_empty() {
        return Ok(None);
    }
    let abs = |p: &Path| {
        std::path::absolute(p)
            .map(|a| a.display().to_string())
            .map_err(|e| Error::io(p, e))
    };
    let (spec_abs, out_abs, exe_abs) = (abs(spec_path)?, abs(out)?, abs(exe)?);
    for (what, v) in [("time", &settings.time), ("mem", &settings.mem)] {
        if let Some(v) = v {
            let ok = !v.is_empty()
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '-'));
            if !ok {
                return Err(Error::Data(format!(
                    "slurm {what} = '{v}' is not a Slurm value"
                )));
            }
        }
    }
    let mut array = ranges(&todo);
    if let Some(p) = settings.parallel {
        if p == 0 {
            return Err(Error::Data("slurm parallel must be at least 1".into()));
        }
        array.push_str(&format!("%{p}"));
    }
    let mut s = String::from("#!/bin/bash\n");
    s.push_str(&format!("#SBATCH --job-name=scoresde-{}\n", spec.name));
    s.push_str(&format!("#SBATCH --array={array}\n"));
    if let Some(t) = &settings.time {
        s.push_str(&format!("#SBATCH --time={t}\n"));
    }
    if let Some(m) = &settings.mem {
        s.push_str(&format!("#SBATCH --mem={m}\n"));
    }
    if let Some(c) = settings.cpus {
        s.push_str(&format!("#SBATCH --cpus-per-task={c}\n"));
    }
    if let Some(p) = &settings.partition {
        if !p
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ','))
        {
            return Err(Error::Data(format!(
                "slurm partition '{p}' is not a partition name"
            )));
        }
        s.push_str(&format!("#SBATCH --partition={p}\n"));
    }
    s.push_str(&format!("#SBATCH --output={out_abs}/slurm/%A_%a.log\n"));
    s.push_str("# One element runs one task; the index comes from SLURM_ARRAY_TASK_ID.\n");
    s.push_str("export RAYON_NUM_THREADS=\"${SLURM_CPUS_PER_TASK:-1}\"\n");
    s.push_str(&format!(
        "exec {} sweep run {} --out {}\n",
        quote(&exe_abs),
        quote(&spec_abs),
        quote(&out_abs)
    ));
    Ok(Some(s))
}

/// Writes [`slurm_script`] to `OUT/sweep.sbatch` (atomically; `OUT/slurm/` for the elements'
/// logs) and returns its path, or None when every task has finished.
pub fn write_slurm(
    spec: &Spec,
    spec_path: &Path,
    out: &Path,
    exe: &Path,
    settings: &SlurmSettings,
) -> Result<Option<std::path::PathBuf>> {
    let Some(script) = slurm_script(spec, spec_path, out, exe, settings)? else {
        return Ok(None);
    };
    crate::io::create_dirs(&out.join("slurm"))?;
    let path = out.join("sweep.sbatch");
    let mut f = crate::io::AtomicFile::create(&path)?;
    std::io::Write::write_all(f.writer(), script.as_bytes()).map_err(|e| Error::io(&path, e))?;
    f.commit()?;
    Ok(Some(path))
}

/// Submits `script` with `sbatch` (`--wait`: until every element ends); sbatch's output.
pub fn submit(script: &Path, wait: bool) -> Result<String> {
    let mut cmd = std::process::Command::new("sbatch");
    if wait {
        cmd.arg("--wait");
    }
    let o = cmd.arg(script).output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::Data(
                "sbatch not found: Slurm is not installed here (write the script without --submit, or run the tasks with `sweep local`)".into(),
            )
        } else {
            Error::io("sbatch", e)
        }
    })?;
    let text = String::from_utf8_lossy(&o.stdout).trim().to_string();
    if !o.status.success() {
        let err = String::from_utf8_lossy(&o.stderr);
        let last = err
            .lines()
            .last()
            .unwrap_or("no message")
            .trim()
            .to_string();
        return Err(Error::Data(format!("sbatch failed ({}): {last}", o.status)));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_lists_are_ranges() {
        assert_eq!(ranges(&[0, 1, 2, 3, 5, 7, 8, 9]), "0-3,5,7-9");
        assert_eq!(ranges(&[4]), "4");
    }
}
