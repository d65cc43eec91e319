//! Running tasks: `OUT/tasks/I/` is written whole or not at all. A task computes into
//! `OUT/tasks/.I.partial/` and is renamed into place with its `record.json`; a finished task is
//! skipped on rerun; a failed one leaves a record with its error (and is rerun next time); one
//! killed mid-run (SIGTERM, SIGKILL) leaves only the partial folder; the rerun keeps its
//! finished cells (`cells/`, each row stored whole under the hash of its inputs), clears the
//! rest and computes only the cells that are missing.

use super::{task_line, Spec, Task};
use crate::experiments;
use crate::io::AtomicFile;
use crate::{Error, Result};
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// How a task ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskOutcome {
    /// Computed now (`claims_failed` asserted claims did not hold).
    Done { claims_failed: usize },
    /// Found finished, left as it was.
    Skipped,
}

/// The folder of task `index`.
pub(super) fn task_dir(out: &Path, index: usize) -> PathBuf {
    out.join("tasks").join(index.to_string())
}

/// The record of a finished or failed task, if it has one that reads.
pub(super) fn read_record(out: &Path, index: usize) -> Option<Value> {
    let text = std::fs::read_to_string(task_dir(out, index).join("record.json")).ok()?;
    serde_json::from_str(&text).ok()
}

/// Whether task `index` finished (a record with status "ok").
pub fn finished(out: &Path, index: usize) -> bool {
    read_record(out, index).is_some_and(|r| r["status"] == "ok")
}

/// Writes `OUT/spec.toml` (the spec's text) the first time; later runs must bring the same spec:
/// one output folder holds one sweep.
fn claim_output(spec: &Spec, out: &Path) -> Result<()> {
    crate::io::create_dirs(&out.join("tasks"))?;
    let path = out.join("spec.toml");
    match std::fs::read_to_string(&path) {
        Ok(old) if old == spec.text => Ok(()),
        Ok(_) => Err(Error::Data(format!(
            "{} holds another sweep: its spec.toml differs from {} (use a new --out)",
            out.display(),
            spec.origin
        ))),
        Err(_) => {
            let mut f = AtomicFile::create(&path)?;
            f.writer()
                .write_all(spec.text.as_bytes())
                .map_err(|e| Error::io(&path, e))?;
            f.commit()
        }
    }
}

/// The task to run: `given`, or else the Slurm array index `SLURM_ARRAY_TASK_ID`.
pub fn task_index(given: Option<usize>) -> Result<usize> {
    if let Some(i) = given {
        return Ok(i);
    }
    let v = std::env::var("SLURM_ARRAY_TASK_ID")
        .map_err(|_| Error::Data("no --task and no SLURM_ARRAY_TASK_ID: which task?".into()))?;
    v.trim()
        .parse()
        .map_err(|_| Error::Data(format!("SLURM_ARRAY_TASK_ID = '{v}' is not a task index")))
}

/// Runs task `index` of `spec` into `OUT/tasks/index/` unless it finished before.
pub fn run_task(spec: &Spec, out: &Path, index: usize) -> Result<TaskOutcome> {
    let task = spec.task(index)?;
    claim_output(spec, out)?;
    if finished(out, index) {
        return Ok(TaskOutcome::Skipped);
    }
    let exp = spec.experiment(&task)?;
    let partial = out.join("tasks").join(format!(".{index}.partial"));
    clear_but_cells(&partial)?;
    std::fs::create_dir_all(&partial).map_err(|e| Error::io(&partial, e))?;
    let start = Instant::now();
    let result = experiments::run(&exp, &partial, spec.quick, task.seed);
    let wall = start.elapsed().as_secs_f64();
    let record = match &result {
        Ok(report) => {
            let manifest: Value = std::fs::read_to_string(report.dir.join("manifest.json"))
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or(Value::Null);
            record(spec, &task, &exp.name, Ok(&manifest), wall)
        }
        Err(e) => record(spec, &task, &exp.name, Err(&e.to_string()), wall),
    };
    let path = partial.join("record.json");
    let body = serde_json::to_string_pretty(&record).map_err(|e| Error::Data(e.to_string()))?;
    let mut f = AtomicFile::create(&path)?;
    f.writer()
        .write_all(format!("{body}\n").as_bytes())
        .map_err(|e| Error::io(&path, e))?;
    f.commit()?;
    let dir = task_dir(out, index);
    if dir.exists() {
        // A failed task's record: replaced by this run's.
        std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    }
    std::fs::rename(&partial, &dir).map_err(|e| Error::io(&dir, e))?;
    match result {
        Ok(r) => Ok(TaskOutcome::Done {
            claims_failed: r.failures().len(),
        }),
        Err(e) => Err(Error::Data(format!("sweep task {index}: {e}"))),
    }
}

/// Empties a killed run's partial folder except its finished cells, which the rerun reuses.
fn clear_but_cells(partial: &Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(partial) else {
        return Ok(());
    };
    for e in entries {
        let path = e.map_err(|e| Error::io(partial, e))?.path();
        if path.file_name().is_some_and(|n| n == "cells") && path.is_dir() {
            continue;
        }
        let gone = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        gone.map_err(|e| Error::io(&path, e))?;
    }
    Ok(())
}

/// A task's record: its settings and what it measured (claims, NFE), or its error; plus its
/// timings (particle-steps per second, …), wall time, version and git revision (`merge` leaves
/// the timings and the wall time out: they depend on the machine).
fn record(
    spec: &Spec,
    task: &Task,
    experiment: &str,
    outcome: std::result::Result<&Value, &str>,
    wall: f64,
) -> Value {
    let params: serde_json::Map<String, Value> = task
        .params
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::to_value(v).unwrap_or(Value::Null)))
        .collect();
    let mut r = json!({
        "sweep": spec.name,
        "index": task.index,
        "experiment": experiment,
        "parameters": params,
        "seed": task.seed,
        "quick": spec.quick,
    });
    match outcome {
        Ok(m) => {
            r["status"] = json!("ok");
            r["seed"] = m["seed"].clone();
            r["claims"] = m["claims"].clone();
            r["nfe"] = m["nfe"].clone();
            r["timings"] = m["timings"].clone();
        }
        Err(e) => {
            r["status"] = json!("failed");
            r["error"] = json!(e);
        }
    }
    r["wall_seconds"] = json!(wall);
    r["version"] = json!(env!("CARGO_PKG_VERSION"));
    r["git_revision"] = json!(experiments::git_revision());
    r
}

/// Runs every unfinished task of `spec` on this machine, `jobs` at a time, each in its own
/// process (`exe sweep run SPEC --task I --out OUT`, the threads shared out among them), as a
/// scheduler would; prints one line per task. Returns (done, skipped, failed indices).
pub fn local(
    spec: &Spec,
    spec_path: &Path,
    out: &Path,
    jobs: usize,
) -> Result<(usize, usize, Vec<usize>)> {
    claim_output(spec, out)?;
    let exe = std::env::current_exe().map_err(|e| Error::io("the scoresde executable", e))?;
    let todo: Vec<usize> = (0..spec.len()).filter(|&i| !finished(out, i)).collect();
    let skipped = spec.len() - todo.len();
    let jobs = jobs.clamp(1, todo.len().max(1));
    let threads = (std::thread::available_parallelism().map_or(1, |n| n.get()) / jobs).max(1);
    let next = AtomicUsize::new(0);
    let failed = Mutex::new(Vec::new());
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::SeqCst);
                let Some(&i) = todo.get(k) else { break };
                let status = std::process::Command::new(&exe)
                    .args(["sweep", "run"])
                    .arg(spec_path)
                    .args(["--task", &i.to_string(), "--out"])
                    .arg(out)
                    .env("RAYON_NUM_THREADS", threads.to_string())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .output();
                match status {
                    Ok(o) if o.status.success() => {
                        let line = spec.task(i).map(|t| task_line(&t)).unwrap_or_default();
                        println!("done   {line}");
                    }
                    Ok(o) => {
                        let err = String::from_utf8_lossy(&o.stderr);
                        let last = err.lines().last().unwrap_or("no message").trim();
                        eprintln!("failed task {i}: {last}");
                        failed.lock().expect("no panic holds it").push(i);
                    }
                    Err(e) => {
                        first_error
                            .lock()
                            .expect("no panic holds it")
                            .get_or_insert(Error::io(&exe, e));
                        break;
                    }
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().expect("threads ended") {
        return Err(e);
    }
    let mut failed = failed.into_inner().expect("threads ended");
    failed.sort_unstable();
    Ok((todo.len() - failed.len(), skipped, failed))
}
