//! Run directories: `runs/NAME/` holds
//! * `model.safetensors` (raw weights), `ema.safetensors` (EMA weights),
//!   `optimizer.safetensors` (Adam moments), each tagged with the step in its metadata;
//! * `run.toml`: format version, step and the full [`RunConfig`] (data, SDE, network, training);
//! * `loss.csv` (`step,loss,lr,grad_norm`) and `loss.png`.
//!
//! Every file is written to a temporary name and renamed; `run.toml` goes last, so it only ever
//! names a step whose weights are complete. A truncated, corrupted or mismatched file is an
//! error naming the file and the cause.

use super::{OptState, RunConfig, TrainData, Trainer};
use crate::io::AtomicFile;
use crate::nn::{Arch, EpsNet, Fourier, Mlp};
use crate::{Error, Result};
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Format 2 records the Fourier features and residual flag of the network (and stores the
/// Fourier projection as `fourier.b` in the weight files); format 1 runs had neither and load
/// as such.
const FORMAT: u32 = 2;

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
    config: RunConfig,
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

    /// Saves weights, EMA, optimiser state, loss log and plot; `run.toml` last.
    pub fn save(&self, tr: &Trainer) -> Result<()> {
        std::fs::create_dir_all(&self.path).map_err(|e| Error::io(&self.path, e))?;
        let s = &tr.state;
        let meta = HashMap::from([("step".to_string(), s.step.to_string())]);
        let arch = tr.net().arch();
        let ser = |path: &Path, items: Vec<(String, Tensor)>| -> Result<()> {
            let bytes = safetensors::serialize(items, Some(meta.clone()))
                .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
            write_atomic(path, &bytes)
        };
        ser(&self.file("model.safetensors"), arch.named(&s.w, true)?)?;
        ser(&self.file("ema.safetensors"), arch.named(&s.ema, true)?)?;
        let mut opt = Vec::new();
        for (prefix, bufs) in [("m.", &s.m), ("v.", &s.v)] {
            for (name, t) in arch.named(bufs, false)? {
                opt.push((format!("{prefix}{name}"), t));
            }
        }
        ser(&self.file("optimizer.safetensors"), opt)?;
        let mut csv = String::from("step,loss,lr,grad_norm\n");
        for r in &tr.history {
            csv.push_str(&format!(
                "{},{:e},{:e},{:e}\n",
                r.step, r.loss, r.lr, r.grad_norm
            ));
        }
        write_atomic(&self.file("loss.csv"), csv.as_bytes())?;
        crate::plot::loss_curve(&self.file("loss.png"), &tr.history, &tr.cfg.data)?;
        let run = RunFile {
            format: FORMAT,
            version: env!("CARGO_PKG_VERSION").to_string(),
            step: s.step,
            config: tr.cfg.clone(),
        };
        let text = toml::to_string(&run).map_err(|e| Error::Invalid(format!("run.toml: {e}")))?;
        write_atomic(&self.file("run.toml"), text.as_bytes())
    }

    /// The config and step of the last complete checkpoint.
    pub fn load_config(&self) -> Result<(RunConfig, usize)> {
        let path = self.file("run.toml");
        if !path.is_file() {
            return Err(Error::Data(format!(
                "{}: no run here (run.toml is missing)",
                self.path.display()
            )));
        }
        let mut run: RunFile = crate::io::read_toml(&path)?;
        match run.format {
            FORMAT => {}
            1 => {
                // Written before the network gained Fourier features and residual layers.
                run.config.net.fourier = 0;
                run.config.net.residual = false;
            }
            f => {
                return Err(Error::Data(format!(
                    "{}: checkpoint format {f} is not supported (this build reads formats 1 and {FORMAT})",
                    path.display()
                )))
            }
        }
        Ok((run.config, run.step))
    }

    /// Reads one safetensors file, checking that it belongs to checkpoint `step`.
    fn tensors(&self, name: &str, step: usize) -> Result<HashMap<String, Tensor>> {
        let path = self.file(name);
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
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
        name: &str,
        step: usize,
        cfg: &RunConfig,
        prefix: &str,
        fourier: bool,
    ) -> Result<(Vec<f32>, Option<Fourier>)> {
        let what = self.file(name).display().to_string();
        let mut map = self.tensors(name, step)?;
        if !prefix.is_empty() {
            map = map
                .into_iter()
                .filter_map(|(k, v)| k.strip_prefix(prefix).map(|k| (k.to_string(), v)))
                .collect();
        }
        Arch::unpack(&cfg.net, map, fourier, &what)
    }

    /// Continues a run from its last checkpoint (weights, Adam moments, EMA, step, loss log).
    pub fn resume(&self) -> Result<Trainer> {
        let (cfg, step) = self.load_config()?;
        let (w, proj) = self.buffers("model.safetensors", step, &cfg, "", true)?;
        let (ema, proj_ema) = self.buffers("ema.safetensors", step, &cfg, "", true)?;
        if proj != proj_ema {
            return Err(Error::Data(format!(
                "{}: the Fourier projections of model.safetensors and ema.safetensors differ (files of different runs?)",
                self.path.display()
            )));
        }
        let m = self.buffers("optimizer.safetensors", step, &cfg, "m.", false)?.0;
        let v = self.buffers("optimizer.safetensors", step, &cfg, "v.", false)?.0;
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
        let (cfg, step) = self.load_config()?;
        let name = if ema {
            "ema.safetensors"
        } else {
            "model.safetensors"
        };
        let (p, proj) = self.buffers(name, step, &cfg, "", true)?;
        let arch = Arch::new(cfg.net.clone(), proj)?;
        Ok((cfg, Mlp::new(std::sync::Arc::new(arch), p)))
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
