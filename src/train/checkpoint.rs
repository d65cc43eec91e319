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
//!
//! A run directory reaches nothing outside itself: the weight files `run.toml` names must be
//! the plain names of its generation (`ROLE.G.safetensors`, no path separator), `run.toml`,
//! `loss.csv` and the weight files must be regular files, not symlinks (refused, not
//! resolved), and a save deletes only the previous generation's files after checking their
//! checksums against `run.toml`. One process writes a run at a time ([`RunDir::lock`]); a
//! reader that meets a save in progress reads again from the new `run.toml`. A data file is
//! recorded with its checksum, so a run never resumes or loads on data that changed.

use super::{OptState, RunConfig, TrainData, Trainer};
use crate::io::AtomicFile;
use crate::nn::{Arch, Fourier, Mlp};
use crate::{Error, Result};
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Format 3 names a generation of weight files with checksums; format 2 recorded the Fourier
/// features and residual flag of the network (the projection as `fourier.b` in the weight files);
/// format 1 had neither. All three load.
const FORMAT: u32 = 4;

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
    /// FNV-1a 64 (hex) of the data file's bytes when the data is a file (absent in older runs
    /// and for builtin data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data_fnv1a: Option<String>,
    config: RunConfig,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEntry {
    name: String,
    /// FNV-1a 64 of the file's bytes, hex.
    fnv1a: String,
}

/// The writer's hold on a run directory ([`RunDir::lock`]). Dropping it releases the lock;
/// a directory this lock created and no run was saved into is removed again.
pub struct RunLock {
    _file: std::fs::File,
    dir: PathBuf,
    created: bool,
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let only_lock = std::fs::read_dir(&self.dir).is_ok_and(|entries| {
            entries
                .filter_map(|e| e.ok())
                .all(|e| e.file_name() == "run.lock")
        });
        if self.created && only_lock {
            let _ = std::fs::remove_file(self.dir.join("run.lock"));
            let _ = std::fs::remove_dir(&self.dir);
        }
    }
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

/// Refuses a symlink or anything but a regular file at `path` (a missing file passes: the
/// read that follows names it).
fn own_file(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(Error::Data(format!(
            "{}: is a symbolic link; a run directory holds its own files (copy the file instead)",
            path.display()
        ))),
        Ok(m) if !m.is_file() => Err(Error::Data(format!(
            "{}: is not a regular file",
            path.display()
        ))),
        _ => Ok(()),
    }
}

/// FNV-1a of the data file behind `spec` (`None` for builtin data).
fn data_checksum(spec: &str) -> Result<Option<String>> {
    let path = Path::new(spec);
    if crate::data::BUILTINS.iter().any(|(n, _)| *n == spec) || !path.exists() {
        return Ok(None);
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    Ok(Some(format!("{:016x}", crate::io::fnv1a(&bytes))))
}

/// The generations of weight files present in `dir` (`ROLE.G.safetensors`).
fn generations_present(dir: &Path) -> Vec<u64> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return vec![];
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let rest = ROLES
                .iter()
                .find_map(|r| name.strip_prefix(&format!("{r}.")))?;
            rest.strip_suffix(".safetensors")?.parse().ok()
        })
        .collect()
}

/// How often a reader re-reads `run.toml` when a save replaced the generation it was reading.
const READ_TRIES: usize = 5;

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

    /// Takes the run directory for writing (created if missing): an exclusive advisory lock
    /// on `run.lock`, which records the holder's pid. The lock is released when the guard is
    /// dropped and by the kernel when the process ends, however it ends; a second writer gets
    /// an error naming the holder's pid. Readers need no lock.
    pub fn lock(&self) -> Result<RunLock> {
        self.take(false)
    }

    /// [`RunDir::lock`], waiting while another process holds it (experiment cells run in
    /// parallel shards share their models: the second waits for the first's training).
    pub fn lock_waiting(&self) -> Result<RunLock> {
        self.take(true)
    }

    fn take(&self, wait: bool) -> Result<RunLock> {
        let created = !self.path.exists();
        std::fs::create_dir_all(&self.path).map_err(|e| Error::io(&self.path, e))?;
        let path = self.file("run.lock");
        own_file(&path)?;
        let mut opts = std::fs::OpenOptions::new();
        opts.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.custom_flags(libc::O_NOFOLLOW);
        }
        let mut file = opts.open(&path).map_err(|e| Error::io(&path, e))?;
        if wait {
            file.lock().map_err(|e| Error::io(&path, e))?;
        }
        match file.try_lock() {
            Ok(()) => {
                let pid = std::process::id();
                file.set_len(0)
                    .and_then(|()| writeln!(file, "{pid}"))
                    .map_err(|e| Error::io(&path, e))?;
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path)
                    .ok()
                    .and_then(|s| s.trim().parse::<u32>().ok())
                    .map_or("unknown".to_string(), |p| p.to_string());
                return Err(Error::Data(format!(
                    "{}: another process (pid {holder}) is writing this run (lock {}): wait for it to finish or choose another `out`",
                    self.path.display(),
                    path.display()
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
        }
        Ok(RunLock {
            _file: file,
            dir: self.path.clone(),
            created,
        })
    }

    /// Whether a completed checkpoint exists here.
    pub fn exists(&self) -> bool {
        self.file("run.toml").is_file()
    }

    /// Saves weights, EMA, optimiser state, loss log and plot as a new generation; `run.toml`
    /// last, then the previous generation's files are deleted.
    /// The new generation is numbered past every generation whose files are present, so no
    /// file of the checkpoint being replaced (or of an interrupted save) is overwritten; a save
    /// that fails removes the files it wrote.
    pub fn save(&self, tr: &Trainer) -> Result<()> {
        std::fs::create_dir_all(&self.path).map_err(|e| Error::io(&self.path, e))?;
        let previous = if self.exists() {
            Some(self.read_checked_run()?)
        } else {
            None
        };
        let generation = generations_present(&self.path)
            .into_iter()
            .chain(previous.as_ref().map(|r| r.generation))
            .max()
            .unwrap_or(0)
            + 1;
        let mut written = Vec::new();
        let result = self.write_generation(tr, generation, &mut written);
        if result.is_err() {
            for p in &written {
                let _ = std::fs::remove_file(p);
            }
            return result;
        }
        // The new checkpoint is complete: the previous generation may go, once its files are
        // checked to be the ones run.toml recorded (best effort; a file left behind is never
        // read again).
        if let Some(prev) = previous.filter(|p| p.generation < generation) {
            for role in ROLES {
                let path = self.file(&prev.file_name(role));
                let recorded = prev.files.get(role).map(|f| f.fnv1a.clone());
                let ours = own_file(&path).is_ok()
                    && std::fs::read(&path).is_ok_and(|b| {
                        recorded.as_deref() == Some(&format!("{:016x}", crate::io::fnv1a(&b)))
                    });
                if ours {
                    let _ = std::fs::remove_file(path);
                }
            }
        }
        Ok(())
    }

    /// Writes generation `generation` and then `run.toml`, recording each weight file it
    /// wrote in `written`.
    fn write_generation(
        &self,
        tr: &Trainer,
        generation: u64,
        written: &mut Vec<PathBuf>,
    ) -> Result<()> {
        let s = &tr.state;
        let meta = HashMap::from([("step".to_string(), s.step.to_string())]);
        let arch = tr.arch();
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
            if path.exists() {
                return Err(Error::Data(format!(
                    "{}: exists already; refusing to overwrite it (a run directory changed by hand?)",
                    path.display()
                )));
            }
            write_atomic(&path, &bytes)?;
            written.push(path);
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
            data_fnv1a: data_checksum(&tr.cfg.data)?,
            config: tr.cfg.clone(),
        };
        let text = toml::to_string(&run).map_err(|e| Error::Invalid(format!("run.toml: {e}")))?;
        own_file(&self.file("run.toml"))?;
        write_atomic(&self.file("run.toml"), text.as_bytes())
    }

    /// Paths of the current checkpoint's weight files (model, EMA, optimiser).
    pub fn weight_files(&self) -> Result<Vec<PathBuf>> {
        let run = self.read_run()?;
        Ok(ROLES.iter().map(|r| self.file(&run.file_name(r))).collect())
    }

    fn read_run(&self) -> Result<RunFile> {
        let path = self.file("run.toml");
        own_file(&path)?;
        if !path.is_file() {
            return Err(Error::Data(format!(
                "{}: no run here (run.toml is missing)",
                self.path.display()
            )));
        }
        let run: RunFile = crate::io::read_toml(&path)?;
        run.check_names(&path)?;
        Ok(run)
    }

    /// Runs `read` on the current `run.toml`; when it fails while a concurrent save replaced
    /// `run.toml`, reads again from the new one.
    fn read_consistent<T>(&self, mut read: impl FnMut(RunFile) -> Result<T>) -> Result<T> {
        let mut tries = 0;
        loop {
            let run = self.read_checked_run()?;
            let generation = run.generation;
            match read(run) {
                Ok(v) => return Ok(v),
                Err(e) => {
                    tries += 1;
                    let moved = self
                        .read_checked_run()
                        .is_ok_and(|r| r.generation != generation);
                    if !moved || tries >= READ_TRIES {
                        return Err(e);
                    }
                }
            }
        }
    }

    /// Refuses a run whose data file changed since it was trained (checksum) or whose data
    /// no longer has the network's dimension.
    fn check_data(&self, run: &RunFile) -> Result<()> {
        let spec = &run.config.data;
        if let Some(recorded) = &run.data_fnv1a {
            match data_checksum(spec)? {
                Some(now) if &now != recorded => {
                    return Err(Error::Data(format!(
                        "{}: the data file {spec} changed since this run was trained (checksum {now}, recorded {recorded}): restore it or train a new run",
                        self.path.display()
                    )))
                }
                _ => {}
            }
        }
        Ok(())
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
            FORMAT => {}
            2 | 3 => {
                // Written before the time embedding's scale was a setting: τ = 1000 t.
                run.config.net.time_scale = crate::nn::TIME_SCALE;
            }
            1 => {
                // Written before the network gained Fourier features and residual layers.
                run.config.net.fourier = 0;
                run.config.net.residual = false;
                run.config.net.time_scale = crate::nn::TIME_SCALE;
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
        own_file(&path)?;
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
    /// Refused when the data file changed (checksum) or its dimension is not the network's.
    pub fn resume(&self) -> Result<Trainer> {
        let (run, w, proj, ema, m, v) = self.read_consistent(|run| {
            self.check_data(&run)?;
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
            Ok((run, w, proj, ema, m, v))
        })?;
        let (cfg, step) = (run.config, run.step);
        let history = self.read_history(step)?;
        let data = TrainData::from_spec(&cfg.data)?;
        if data.dim() != cfg.net.dim {
            return Err(Error::Data(format!(
                "{}: the data {} now has dimension {} but the run's network takes {}",
                self.path.display(),
                cfg.data,
                data.dim(),
                cfg.net.dim
            )));
        }
        let arch = std::sync::Arc::new(Arch::new(cfg.net.clone(), proj)?);
        let state = OptState { step, w, m, v, ema };
        Trainer::with_state(cfg, data, arch, state, history)
    }

    fn read_history(&self, step: usize) -> Result<Vec<LossRecord>> {
        let path = self.file("loss.csv");
        own_file(&path)?;
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
        let (run, p, proj) = self.read_consistent(|run| {
            self.check_data(&run)?;
            let (p, proj) = self.buffers(&run, if ema { "ema" } else { "model" }, "", true)?;
            Ok((run, p, proj))
        })?;
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

    /// Every recorded weight file must be `ROLE.G.safetensors` of this generation: a plain
    /// name inside the run directory, never a path.
    fn check_names(&self, path: &Path) -> Result<()> {
        for (role, entry) in &self.files {
            let want = format!("{role}.{}.safetensors", self.generation);
            if !ROLES.contains(&role.as_str()) || entry.name != want {
                return Err(Error::Data(format!(
                    "{}: names {:?} for {role} but generation {} is {want:?} (an edited or damaged run.toml; a run never reads files outside its directory)",
                    path.display(),
                    entry.name,
                    self.generation
                )));
            }
        }
        Ok(())
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
        Self::from_run_class(dir, None)
    }

    /// The EMA network of a run at class `class` (a class-conditional run; `None`: the null
    /// class, i.e. the unconditional field a conditional network learnt by label dropout).
    pub fn from_run_class(
        dir: impl Into<PathBuf>,
        class: Option<&str>,
    ) -> Result<(Self, RunConfig)> {
        let (cfg, net) = load_model(dir)?;
        let label = class.map(|c| cfg.net.label_of(c)).transpose()?;
        let net = crate::nn::NetScore::new(net.mlp().with_label(label)?, net.sde().clone());
        let sde = net.sde().clone();
        let model = Self::new(net, sde)?.with_data(cfg.data.clone());
        Ok((model, cfg))
    }
}
