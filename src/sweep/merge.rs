//! Gathering a sweep: every task's record into `OUT/merged.jsonl` (in index order, wall time
//! and timings left out) and one table `OUT/merged.csv` — the rows of the spec's `collect` CSV
//! of each task prefixed by the task's index, settings and seed, or one row per task without
//! it; with a `[fit]`, `OUT/fit.csv` (see `fit.rs`). The bytes depend only on what the tasks computed, not on which machine, engine or order
//! ran them.

use super::run::{read_record, task_dir};
use super::SpecFile;
use crate::io::AtomicFile;
use crate::{Error, Result};
use serde_json::Value;
use std::io::Write;
use std::path::Path;

/// What `merge` found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Merged {
    pub tasks: usize,
    /// Tasks with a finished record.
    pub merged: usize,
    /// Indices with no record (never run, or killed).
    pub missing: Vec<usize>,
    /// Indices whose record holds an error.
    pub failed: Vec<usize>,
    /// One line per group of the spec's `[fit]` (none without it).
    pub fits: Vec<String>,
}

/// A parameter's value as a CSV field: strings bare, anything else as TOML writes it.
fn field(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Merges the tasks found under `out` (the folder `sweep run`/`local` wrote, holding
/// `spec.toml`).
pub fn merge(out: &Path) -> Result<Merged> {
    let spec_path = out.join("spec.toml");
    let text = std::fs::read_to_string(&spec_path).map_err(|e| {
        Error::Data(format!(
            "{} holds no sweep ({}: {e})",
            out.display(),
            spec_path.display()
        ))
    })?;
    let spec: SpecFile =
        toml::from_str(&text).map_err(|e| Error::Data(format!("{}: {e}", spec_path.display())))?;
    let n = spec.len();
    let keys: Vec<String> = spec.grid.keys().cloned().collect();
    let mut found = Merged {
        tasks: n,
        merged: 0,
        missing: Vec::new(),
        failed: Vec::new(),
        fits: Vec::new(),
    };
    let (mut jsonl, mut csv) = (String::new(), csv::Writer::from_writer(Vec::new()));
    let csv_err = |e: csv::Error| Error::Data(format!("merged.csv: {e}"));
    let mut header: Option<Vec<String>> = None;
    for i in 0..n {
        let Some(mut r) = read_record(out, i) else {
            found.missing.push(i);
            continue;
        };
        if let Some(m) = r.as_object_mut() {
            m.remove("wall_seconds");
            m.remove("timings");
        }
        jsonl.push_str(&serde_json::to_string(&r).map_err(|e| Error::Data(e.to_string()))?);
        jsonl.push('\n');
        if r["status"] != "ok" {
            found.failed.push(i);
            continue;
        }
        found.merged += 1;
        let mut prefix = vec![i.to_string()];
        prefix.extend(keys.iter().map(|k| field(&r["parameters"][k])));
        prefix.push(field(&r["seed"]));
        let mut lead: Vec<String> = vec!["task".into()];
        lead.extend(keys.iter().cloned());
        lead.push("seed".into());
        match &spec.collect {
            Some(name) => {
                let exp = r["experiment"].as_str().unwrap_or_default();
                let path = task_dir(out, i).join(exp).join(name);
                let mut rd = csv::Reader::from_path(&path)
                    .map_err(|e| Error::Data(format!("{}: {e}", path.display())))?;
                let own: Vec<String> = rd
                    .headers()
                    .map_err(csv_err)?
                    .iter()
                    .map(String::from)
                    .collect();
                lead.extend(own);
                check_header(&mut header, &lead, &mut csv, &path)?;
                for row in rd.records() {
                    let row = row.map_err(csv_err)?;
                    csv.write_record(prefix.iter().map(String::as_str).chain(row.iter()))
                        .map_err(csv_err)?;
                }
            }
            None => {
                lead.extend(["claims".into(), "claims_failed".into()]);
                check_header(&mut header, &lead, &mut csv, &spec_path)?;
                let claims = r["claims"].as_array().map_or(&[][..], |c| c.as_slice());
                let failed = claims
                    .iter()
                    .filter(|c| c["asserted"] == true && c["verdict"] != "pass")
                    .count();
                prefix.extend([claims.len().to_string(), failed.to_string()]);
                csv.write_record(&prefix).map_err(csv_err)?;
            }
        }
    }
    let body = csv.into_inner().map_err(|e| Error::Data(e.to_string()))?;
    if let Some(plot) = &spec.plot {
        let chart = summary(plot, &body, &spec.name)?;
        for ext in ["png", "svg"] {
            crate::plot::line_chart(&out.join(format!("summary.{ext}")), &chart)?;
        }
    }
    let mut files = vec![("merged.jsonl", jsonl.into_bytes())];
    if let Some(fit) = &spec.fit {
        let (bytes, lines) = super::fit_table(fit, &body)?;
        files.push(("fit.csv", bytes));
        found.fits = lines;
    }
    files.push(("merged.csv", body));
    for (name, bytes) in files {
        let path = out.join(name);
        let mut f = AtomicFile::create(&path)?;
        f.writer()
            .write_all(&bytes)
            .map_err(|e| Error::io(&path, e))?;
        f.commit()?;
    }
    Ok(found)
}

/// Writes the header on the first row; every later task must bring the same columns.
fn check_header(
    header: &mut Option<Vec<String>>,
    lead: &[String],
    csv: &mut csv::Writer<Vec<u8>>,
    path: &Path,
) -> Result<()> {
    match header {
        Some(h) if h.as_slice() == lead => Ok(()),
        Some(_) => Err(Error::Data(format!(
            "{}: its columns differ from the first task's",
            path.display()
        ))),
        None => {
            csv.write_record(lead)
                .map_err(|e| Error::Data(format!("merged.csv: {e}")))?;
            *header = Some(lead.to_vec());
            Ok(())
        }
    }
}

/// The summary chart of `merged.csv` (its bytes): `plot.y` against `plot.x` per combination of
/// the `plot.series` columns, the mean over rows that share the combination and x.
fn summary(plot: &super::SummaryPlot, csv_bytes: &[u8], name: &str) -> Result<crate::plot::Chart> {
    use std::collections::BTreeMap;
    let mut rd = csv::Reader::from_reader(csv_bytes);
    let header: Vec<String> = rd
        .headers()
        .map_err(|e| Error::Data(format!("merged.csv: {e}")))?
        .iter()
        .map(String::from)
        .collect();
    let col = |c: &str| {
        header.iter().position(|h| h == c).ok_or_else(|| {
            Error::Data(format!(
                "plot: '{c}' is not a column of merged.csv (columns: {})",
                header.join(", ")
            ))
        })
    };
    let (xi, yi) = (col(&plot.x)?, col(&plot.y)?);
    let si: Vec<usize> = plot.series.iter().map(|c| col(c)).collect::<Result<_>>()?;
    // series label → its (x, y) points
    let mut groups: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for row in rd.records() {
        let row = row.map_err(|e| Error::Data(format!("merged.csv: {e}")))?;
        let num = |i: usize| row.get(i).and_then(|v| v.parse::<f64>().ok());
        let (Some(x), Some(y)) = (num(xi), num(yi)) else {
            continue;
        };
        if !x.is_finite() || !y.is_finite() {
            continue;
        }
        let label: Vec<String> = si
            .iter()
            .zip(&plot.series)
            .map(|(&i, c)| format!("{c}={}", row.get(i).unwrap_or("")))
            .collect();
        groups.entry(label.join(", ")).or_default().push((x, y));
    }
    let series = groups
        .into_iter()
        .map(|(label, mut pts)| {
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            let mean = pts
                .chunk_by(|a, b| a.0 == b.0)
                .map(|c| (c[0].0, c.iter().map(|p| p.1).sum::<f64>() / c.len() as f64))
                .collect();
            let label = if label.is_empty() {
                plot.y.clone()
            } else {
                label
            };
            crate::plot::Series::line_points(label, mean)
        })
        .collect();
    Ok(crate::plot::Chart {
        title: format!(
            "sweep {name}: {} against {} (mean over seeds)",
            plot.y, plot.x
        ),
        x_label: plot.x.clone(),
        y_label: plot.y.clone(),
        log_x: plot.log_x,
        log_y: plot.log_y,
        series,
        ..Default::default()
    })
}
