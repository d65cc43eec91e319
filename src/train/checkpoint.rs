//! Run directories: `runs/NAME/` holds
//! * one generation of weight files: `model.G.safetensors` (raw weights), `ema.G.safetensors`
//!   (EMA weights), `optimizer.G.safetensors` (Adam moments), each tagged with the step in its
//!   metadata;
//! * `run.toml`: format version, step, the full [`RunConfig`] (data, SDE, network, training) and
//!   the generation's file names with their FNV-1a checksums;
//! * `loss.csv` (`step,loss,lr,grad_norm`) and `loss.png`.
//!
//! A save writes generation G + 1 beside G (every file to a temporary name, flushed, renamed),
//! then `run.toml` (the one pointer, replaced atomically), and only then deletes generation G:
//! after an interruption or a write error at any point the directory loads at its last complete
//! checkpoint. Every load checks the checksums and the step tags and refuses non-finite
//! weights; a truncated, corrupted or mismatched file is an error naming the file and the cause.
//! Runs of formats 1 and 2 (fixed names `model.safetensors`, …, no checksums) still load.

use super::{OptState, RunConfig, TrainData, Trainer};
use crate::io::AtomicFile;
use crate::nn::{Arch, EpsNet, Fourier, Mlp};
use crate::{Error, Result};
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Format 3 names a generation of weight files with checksums; format 2 recorded the Fourier
/// features and residual flag of the network (the projection as `fourier.b` in the weight files);
/// format 1 had neither. All three load.
const FORMAT: u32 = 3;

/// The weight files of a checkpoint, by role.
const ROLES: [&str; 3] = ["model", "ema", "optimizer"];

/// One logged optimiser step.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LossRecord {
    /// Steps completed.
    pub step: usize,
    pub loss: f64,
    pub lr: f64,
    pub grad_norm: f64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunFile {
    format: u32,
    version: String,
    step: usize,
    /// Generation of the weight files (0 in formats 1 and 2).
    #[serde(default)]
    generation: u64,
    /// Weight files by role (empty in formats 1 and 2: the fixed names).
    #[serde(default)]
    files: std::collections::BTreeMap<String, FileEntry>,
    config: RunConfig,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEntry {
    name: String,
    /// FNV-1a 64 of the file's bytes, hex.
    fnv1a: String,
}

/// A run directory.
#[derive(Clone, Debug)]
pub struct RunDir {
    pub path: PathBuf,
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = AtomicFile::create(path)?;
    f.writer()
        .write_all(bytes)
        .map_err(|e| Error::io(path, e))?;
    f.commit()
}

fn corrupt(path: &Path, why: impl std::fmt::Display) -> Error {
    Error::Data(format!(
        "{}: corrupted or truncated checkpoint ({why})",
        path.display()
    ))
}

impl RunDir {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Whether a completed checkpoint exists here.
    pub fn exists(&self) -> bool {
        self.file("run.toml").is_file()
    }

    /// Saves weights, EMA, optimiser state, loss log and plot as a new generation; `run.toml`
    /// last, then the previous generation's files are deleted.
    pub fn save(&self, tr: &Trainer) -> Result<()> {
        std::fs::create_dir_all(&self.path).map_err(|e| Error::io(&self.path, e))?;
        let previous = self.read_run().ok();
        let generation = previous.as_ref().map_or(1, |r| r.generation + 1);
        let s = &tr.state;
        let meta = HashMap::from([("step".to_string(), s.step.to_string())]);
        let arch = tr.net().arch();
        let mut opt = Vec::new();
        for (prefix, bufs) in [("m.", &s.m), ("v.", &s.v)] {
            for (name, t) in arch.named(bufs, false)? {
                opt.push((format!("{prefix}{name}"), t));
            }
        }
        let contents = [arch.named(&s.w, true)?, arch.named(&s.ema, true)?, opt];
        let mut files = std::collections::BTreeMap::new();
        for (role, items) in ROLES.iter().zip(contents) {
            let name = format!("{role}.{generation}.safetensors");
            let path = self.file(&name);
            let bytes = safetensors::serialize(items, Some(meta.clone()))
                .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
            write_atomic(&path, &bytes)?;
            let fnv1a = format!("{:016x}", crate::io::fnv1a(&bytes));
            files.insert(role.to_string(), FileEntry { name, fnv1a });
        }
        let mut csv = String::from("step,loss,lr,grad_norm\n");
        for r in &tr.history {
            csv.push_str(&format!(
                "{},{:e},{:e},{:e}\n",
                r.step, r.loss, r.lr, r.grad_norm
            ));
        }
        write_atomic(&self.file("loss.csv"), csv.as_bytes())?;
        let losses: Vec<(f64, f64)> = tr.history.iter().map(|r| (r.step as f64, r.loss)).collect();
        crate::plot::loss_curve(&self.file("loss.png"), &losses, &tr.cfg.data)?;
        let run = RunFile {
            format: FORMAT,
            version: env!("CARGO_PKG_VERSION").to_string(),
            step: s.step,
            generation,
            files,
            config: tr.cfg.clone(),
        };
        let text = toml::to_string(&run).map_err(|e| Error::Invalid(format!("run.toml: {e}")))?;
        write_atomic(&self.file("run.toml"), text.as_bytes())?;
        // The new checkpoint is complete: the previous generation may go (best effort; a file
        // left behind is never read again).
        if let Some(prev) = previous {
            for role in ROLES {
                let _ = std::fs::remove_file(self.file(&prev.file_name(role)));
            }
        }
        Ok(())
    }

    /// Paths of the current checkpoint's weight files (model, EMA, optimiser).
    pub fn weight_files(&self) -> Result<Vec<PathBuf>> {
        let run = self.read_run()?;
        Ok(ROLES.iter().map(|r| self.file(&run.file_name(r))).collect())
    }

    fn read_run(&self) -> Result<RunFile> {
        let path = self.file("run.toml");
        if !path.is_file() {
            return Err(Error::Data(format!(
                "{}: no run here (run.toml is missing)",
                self.path.display()
            )));
        }
        crate::io::read_toml(&path)
    }

    /// The config and step of the last complete checkpoint.
    pub fn load_config(&self) -> Result<(RunConfig, usize)> {
        let run = self.read_checked_run()?;
        Ok((run.config, run.step))
    }

    /// `run.toml`, with the configs of older formats brought up to date.
    fn read_checked_run(&self) -> Result<RunFile> {
        let path = self.file("run.toml");
        let mut run = self.read_run()?;
        match run.format {
            FORMAT | 2 => {}
            1 => {
                // Written before the network gained Fourier features and residual layers.
                run.config.net.fourier = 0;
                run.config.net.residual = false;
            }
            f => {
                return Err(Error::Data(format!(
                    "{}: checkpoint format {f} is not supported (this build reads formats 1 to {FORMAT})",
                    path.display()
                )))
            }
        }
        Ok(run)
    }

    /// Reads the weight file of `role`, checking its checksum and that it belongs to
    /// checkpoint `step`.
    fn tensors(&self, run: &RunFile, role: &str) -> Result<HashMap<String, Tensor>> {
        let step = run.step;
        let path = self.file(&run.file_name(role));
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        if let Some(entry) = run.files.get(role) {
            let got = format!("{:016x}", crate::io::fnv1a(&bytes));
            if got != entry.fnv1a {
                return Err(Error::Data(format!(
                    "{}: checksum {got} does not match {} recorded in run.toml (a damaged file, or one from another run or save)",
                    path.display(),
                    entry.fnv1a
                )));
            }
        }
        let (_, meta) =
            safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| corrupt(&path, e))?;
        let tagged = meta
            .metadata()
            .as_ref()
            .and_then(|m| m.get("step"))
            .cloned();
        if tagged.as_deref() != Some(step.to_string().as_str()) {
            return Err(Error::Data(format!(
                "{}: holds step {} but run.toml names step {step} (an interrupted save? the files do not belong together)",
                path.display(),
                tagged.unwrap_or_else(|| "?".into())
            )));
        }
        candle_core::safetensors::load_buffer(&bytes, &Device::Cpu).map_err(|e| corrupt(&path, e))
    }

    /// One file's flat parameters (names prefixed by `prefix`) and, with `fourier`, the
    /// Fourier projection it holds.
    fn buffers(
        &self,
        run: &RunFile,
        role: &str,
        prefix: &str,
        fourier: bool,
    ) -> Result<(Vec<f32>, Option<Fourier>)> {
        let what = self.file(&run.file_name(role)).display().to_string();
        let mut map = self.tensors(run, role)?;
        if !prefix.is_empty() {
            map = map
                .into_iter()
                .filter_map(|(k, v)| k.strip_prefix(prefix).map(|k| (k.to_string(), v)))
                .collect();
        }
        Arch::unpack(&run.config.net, map, fourier, &what)
    }

    /// Continues a run from its last checkpoint (weights, Adam moments, EMA, step, loss log).
    pub fn resume(&self) -> Result<Trainer> {
        let run = self.read_checked_run()?;
        let (w, proj) = self.buffers(&run, "model", "", true)?;
        let (ema, proj_ema) = self.buffers(&run, "ema", "", true)?;
        if proj != proj_ema {
            return Err(Error::Data(format!(
                "{}: the Fourier projections of the model and EMA weights differ (files of different runs?)",
                self.path.display()
            )));
        }
        let m = self.buffers(&run, "optimizer", "m.", false)?.0;
        let v = self.buffers(&run, "optimizer", "v.", false)?.0;
        let (cfg, step) = (run.config, run.step);
        let history = self.read_history(step)?;
        let data = TrainData::from_spec(&cfg.data)?;
        let net = EpsNet::from_parts(Arch::new(cfg.net.clone(), proj)?, w.clone())?;
        let state = OptState { step, w, m, v, ema };
        Trainer::with_state(cfg, data, net, state, history)
    }

    fn read_history(&self, step: usize) -> Result<Vec<LossRecord>> {
        let path = self.file("loss.csv");
        if !path.is_file() {
            return Ok(vec![]);
        }
        let mut rdr = csv::Reader::from_path(&path)
            .map_err(|e| Error::Data(format!("{}: {e}", path.display())))?;
        let mut out = Vec::new();
        for rec in rdr.deserialize() {
            let r: LossRecord = rec.map_err(|e| Error::Data(format!("{}: {e}", path.display())))?;
            if r.step <= step {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// The config and an inference network from the EMA (or raw) weights.
    pub fn load_mlp(&self, ema: bool) -> Result<(RunConfig, Mlp)> {
        let run = self.read_checked_run()?;
        let (p, proj) = self.buffers(&run, if ema { "ema" } else { "model" }, "", true)?;
        let arch = Arch::new(run.config.net.clone(), proj)?;
        Ok((run.config, Mlp::new(std::sync::Arc::new(arch), p)))
    }
}

impl RunFile {
    /// The file holding `role` (formats 1 and 2: the fixed name `ROLE.safetensors`).
    fn file_name(&self, role: &str) -> String {
        self.files
            .get(role)
            .map_or_else(|| format!("{role}.safetensors"), |f| f.name.clone())
    }
}

/// A run's SDE and its EMA network as a score, ready for the samplers.
pub fn load_model(dir: impl Into<PathBuf>) -> Result<(RunConfig, crate::nn::NetScore)> {
    let dir = RunDir::new(dir);
    let (cfg, mlp) = dir.load_mlp(true)?;
    let data = TrainData::from_spec(&cfg.data).ok();
    let sde = cfg
        .sde
        .build(|| data.map(|d| d.diameter()).unwrap_or(1.0))?;
    Ok((cfg, crate::nn::NetScore::new(mlp, sde)))
}

impl crate::model::Model {
    /// The EMA network of a run directory of `scoresde train`, under the run's own SDE, with
    /// the run's configuration (its data spec, network and training settings).
    pub fn from_run(dir: impl Into<PathBuf>) -> Result<(Self, RunConfig)> {
        let (cfg, net) = load_model(dir)?;
        let sde = net.sde().clone();
        let model = Self::new(net, sde)?.with_data(cfg.data.clone());
        Ok((model, cfg))
    }
}
