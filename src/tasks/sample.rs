//! `scoresde sample`: draws from an exact or trained model into a CSV file.

use super::{format_num, progress_bar};
use crate::data::Dataset;
use crate::ddpm::Variance;
use crate::io::{write_csv, AtomicFile};
use crate::model::Model;
use crate::sample::{Corrector, Predictor, SampleSpec, Sampler, Spacing};
use crate::sde::SdeSpec;
use crate::{invalid, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// The samplers' settings as flat command-line flags: each given flag becomes the setting of
/// that name of the chosen [`Sampler`]; a flag the sampler does not have is an error naming it.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct SamplerFlags {
    /// Spacing of the time grid: time, logsnr, edm or file:GRID.csv (a column `t`, `sigma` or
    /// `log_snr`) [default: time; logsnr for DPM-Solver and UniPC; edm for EDM samplers].
    #[cfg_attr(feature = "cli", arg(long))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spacing: Option<Spacing>,
    /// ρ of the EDM spacing [default: 7].
    #[cfg_attr(feature = "cli", arg(long))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rho: Option<f64>,
    /// Predictor of `--sampler pc` [default: reverse-diffusion].
    #[cfg_attr(feature = "cli", arg(long, value_enum))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predictor: Option<Predictor>,
    /// Corrector of `--sampler pc` [default: langevin].
    #[cfg_attr(feature = "cli", arg(long, value_enum))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub corrector: Option<Corrector>,
    /// Corrector steps per noise level [default: 1].
    #[cfg_attr(feature = "cli", arg(long))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub corrector_steps: Option<usize>,
    /// Signal-to-noise ratio r of the Langevin corrector [default: 0.16].
    #[cfg_attr(feature = "cli", arg(long))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snr: Option<f64>,
    /// η: DDIM's noise scale (0: deterministic, 1: DDPM's posterior variance; default 0), SEEDS-2's (default 1).
    #[cfg_attr(feature = "cli", arg(long))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eta: Option<f64>,
    /// Variance of ancestral / DDPM steps (default: beta, beta-tilde for VE).
    #[cfg_attr(feature = "cli", arg(long, value_enum))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variance: Option<Variance>,
    /// EDM stochastic sampler: S_churn [default: 0].
    #[cfg_attr(feature = "cli", arg(long))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s_churn: Option<f64>,
    /// EDM: churn only where σ̃ = s/m ≥ S_tmin [default: 0].
    #[cfg_attr(feature = "cli", arg(long))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s_tmin: Option<f64>,
    /// EDM: churn only where σ̃ = s/m ≤ S_tmax [default: inf].
    #[cfg_attr(feature = "cli", arg(long))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s_tmax: Option<f64>,
    /// S_noise of EDM's stochastic sampler and of SEEDS-2 [default: 1].
    #[cfg_attr(feature = "cli", arg(long))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s_noise: Option<f64>,
    /// λ of Huang et al.'s plug-in reverse SDEs (0: reverse SDE, 1: probability flow).
    #[cfg_attr(feature = "cli", arg(long))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lambda: Option<f64>,
    /// w(t) of `--sampler em`'s reverse dynamics dx = [u − ½w²∇log p] dt + w dw̄ [default: g].
    #[cfg_attr(feature = "cli", arg(long, value_enum))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diffusion: Option<crate::reverse::DiffusionKind>,
    /// The scale C of `--diffusion` (w = C g, w = C, w² = 2Cs, w² = 2Ct, ½(1 − C cos πt)²) [default: 1].
    #[cfg_attr(feature = "cli", arg(long))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diffusion_scale: Option<f64>,
    /// Order of UniPC's predictor (1–3; default 2), of DEIS and iPNDM (1–4; default 4), of
    /// ER-SDE (1–3; default 3).
    #[cfg_attr(feature = "cli", arg(long))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<usize>,
    /// UniPC's B(h) [default: bh2].
    #[cfg_attr(feature = "cli", arg(long, value_enum))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<crate::sample::BhVariant>,
    /// The prediction a multistep exponential integrator interpolates [default: data].
    #[cfg_attr(feature = "cli", arg(long, value_enum))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prediction: Option<crate::sample::expint::Prediction>,
    /// UniPC's corrector UniC [default: true].
    #[cfg_attr(feature = "cli", arg(long))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_corrector: Option<bool>,
    /// Lower orders on the final steps [default: true].
    #[cfg_attr(feature = "cli", arg(long))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lower_order_final: Option<bool>,
    /// SA-Solver's predictor order (1–4) [default: 2].
    #[cfg_attr(feature = "cli", arg(long))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predictor_order: Option<usize>,
    /// SA-Solver's corrector order (0–4) [default: 2].
    #[cfg_attr(feature = "cli", arg(long))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub corrector_order: Option<usize>,
    /// SA-Solver's noise scale τ [default: 1].
    #[cfg_attr(feature = "cli", arg(long))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tau: Option<f64>,
    /// The times FROM,TO where SA-Solver's τ applies [default: 0.2,0.8].
    #[cfg_attr(feature = "cli", arg(long, value_delimiter = ','))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tau_window: Option<Vec<f64>>,
    /// The variable DEIS interpolates in: t (tAB) or log-rho [default: t].
    #[cfg_attr(feature = "cli", arg(long, value_enum))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub basis: Option<crate::sample::DeisBasis>,
    /// SEEDS-2's stage fraction r [default: 0.5].
    #[cfg_attr(feature = "cli", arg(long))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub r: Option<f64>,
    /// ER-SDE's noise scale φ: ode, reverse-sde or er [default: er].
    #[cfg_attr(feature = "cli", arg(long, value_enum))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub noise_scale: Option<crate::sample::NoiseScale>,
    /// Langevin step size ε (plain: α = ε; annealed: α_i = ε s_i²/s_L²) [default: 0.1].
    #[cfg_attr(feature = "cli", arg(long))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step_size: Option<f64>,
    /// Noise levels of annealed Langevin [default: 10].
    #[cfg_attr(feature = "cli", arg(long))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub levels: Option<usize>,
    /// DDPM / DDIM on the M-step discrete schedule read off the VP-SDE (ddpm: M = --steps).
    #[cfg_attr(feature = "cli", arg(long))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discrete: Option<usize>,
    /// pf-rk45: relative tolerance [default: 1e-5].
    #[cfg_attr(feature = "cli", arg(long))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtol: Option<f64>,
    /// pf-rk45: absolute tolerance [default: 1e-5].
    #[cfg_attr(feature = "cli", arg(long))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub atol: Option<f64>,
}

impl SamplerFlags {
    /// The sampler `name` with the given flags as its settings. Flags it does not have are one
    /// error naming them all and what it reads.
    pub fn sampler(&self, name: &str) -> Result<Sampler> {
        let default: Sampler = name.parse()?;
        let has = default.settings();
        let serde_json::Value::Object(given) =
            serde_json::to_value(self).map_err(|e| invalid!("sampler flags: {e}"))?
        else {
            return Err(invalid!("sampler flags are not a table"));
        };
        let unread: Vec<String> = given
            .keys()
            .filter(|k| !has.contains(k))
            .map(|k| format!("`{k}`"))
            .collect();
        if !unread.is_empty() {
            let reads: Vec<String> = has.iter().map(|k| format!("`{k}`")).collect();
            let what = format!("`sampler` {name}");
            return Err(crate::error::not_applicable(&unread, &what, &reads));
        }
        // The settings through a TOML table, which keeps ±inf (`--s-tmax inf`).
        let mut table = toml::Table::try_from(self).map_err(|e| invalid!("sampler flags: {e}"))?;
        table.insert("sampler".into(), name.into());
        toml::Value::Table(table)
            .try_into()
            .map_err(|e| invalid!("`sampler` {name}: {e}"))
    }
}

/// Sample with the exact score of a mixture dataset, or with a trained network (`model`).
#[derive(Clone, Debug)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct SampleTask {
    /// Builtin mixture name or a mixture .toml file (exact score). With --model: optional.
    #[cfg_attr(
        feature = "cli",
        arg(long, required_unless_present_any = ["model", "empirical"])
    )]
    pub data: Option<String>,
    /// A CSV of training points (header x0,x1,…): sample the exact score of their empirical
    /// distribution diffused on the path (it reproduces training points).
    #[cfg_attr(feature = "cli", arg(long, conflicts_with_all = ["model", "data", "class"]))]
    pub empirical: Option<PathBuf>,
    /// With --empirical: smooth each point into N(x_i, h² I) [default: 0].
    #[cfg_attr(
        feature = "cli",
        arg(long, requires = "empirical", allow_negative_numbers = true)
    )]
    pub bandwidth: Option<f64>,
    /// A run directory from `scoresde train`: sample with its EMA network and its SDE.
    #[cfg_attr(feature = "cli", arg(long))]
    pub model: Option<PathBuf>,
    #[cfg_attr(feature = "cli", command(flatten))]
    pub sde: SdeSpec,
    /// The sampler (each reads its own settings among the flags below).
    #[cfg_attr(
        feature = "cli",
        arg(long, default_value = "em", value_parser = clap::builder::PossibleValuesParser::new(crate::sample::config::NAMES))
    )]
    pub sampler: String,
    /// Steps N (per sampler: steps, grid points, NFE budget or iterations; see the README)
    /// [default: 1000].
    #[cfg_attr(feature = "cli", arg(long))]
    pub steps: Option<usize>,
    #[cfg_attr(feature = "cli", command(flatten))]
    pub settings: SamplerFlags,
    /// Sample p(x | CLASS): a class of a labelled mixture (exact) or of a conditional run.
    #[cfg_attr(feature = "cli", arg(long = "class"))]
    pub class: Option<String>,
    /// Guidance scale w ≥ 0: with --class, classifier-free (1 + w) s(x|c) − w s(x); with
    /// --autoguidance, (1 + w) s_good − w s_bad [default: 0].
    #[cfg_attr(feature = "cli", arg(long, allow_negative_numbers = true))]
    pub guidance_scale: Option<f64>,
    /// The times FROM,TO where the guidance applies [default: the whole path].
    #[cfg_attr(
        feature = "cli",
        arg(long, value_delimiter = ',', requires = "guidance_scale")
    )]
    pub guidance_interval: Option<Vec<f64>>,
    /// Autoguidance (Karras et al. 2024): a run directory holding the bad version of --model.
    #[cfg_attr(feature = "cli", arg(long, requires = "model"))]
    pub autoguidance: Option<PathBuf>,
    /// Final Tweedie denoising step x̂₀ = (x + s² ∇log p)/m at ε, one more NFE (default: on
    /// for edm-heun, edm-sde, ddpm and ddim; off otherwise).
    #[cfg_attr(feature = "cli", arg(long))]
    pub denoise: Option<bool>,
    /// Final time ε (default 1e-3 for VP/sub-VP, 1e-5 for VE).
    #[cfg_attr(feature = "cli", arg(long))]
    pub eps: Option<f64>,
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 2000))]
    pub n: usize,
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0))]
    pub seed: u64,
    #[cfg_attr(feature = "cli", arg(long))]
    pub out: PathBuf,
    /// Rows per work chunk; results do not depend on it.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0, hide = true))]
    pub chunk: usize,
}

impl SampleTask {
    /// The guidance interval flag as `[from, to]`.
    fn interval(&self) -> Result<Option<[f64; 2]>> {
        match self.guidance_interval.as_deref() {
            None => Ok(None),
            Some(&[a, b]) => Ok(Some([a, b])),
            Some(v) => Err(invalid!(
                "--guidance-interval takes FROM,TO, got {} values",
                v.len()
            )),
        }
    }

    /// The model to sample: exact or trained, conditional or not, guided or not, on the path
    /// asked for.
    fn model(&self) -> Result<Model> {
        let (w, interval) = (self.guidance_scale, self.interval()?);
        if w.is_some() && self.class.is_none() && self.autoguidance.is_none() {
            return Err(invalid!(
                "--guidance-scale needs --class (classifier-free guidance) or --autoguidance BAD_RUN"
            ));
        }
        if let Some(file) = &self.empirical {
            let points = crate::io::read_csv(file)?;
            let sde = self
                .sde
                .build(|| crate::data::point_diameter(points.view()))?;
            let score = crate::score::EmpiricalScore::new(
                points,
                self.bandwidth.unwrap_or(0.0),
                sde.clone(),
            )
            .map_err(|e| invalid!("{}: {e}", file.display()))?;
            return Ok(Model::new(score, sde)?.with_data(file.display().to_string()));
        }
        let Some(dir) = &self.model else {
            let data = Dataset::from_spec(self.data.as_deref().unwrap_or_default())?;
            return match &self.class {
                Some(class) => {
                    Model::exact_conditional(&data, &self.sde, class, w.unwrap_or(0.0), interval)
                }
                None => Model::exact(&data, &self.sde),
            };
        };
        let class = self.class.as_deref();
        let (good, cfg) = Model::from_run_class(dir, class)?;
        let model = match (&self.autoguidance, w) {
            (Some(bad_dir), _) => {
                let (bad, bad_cfg) = Model::from_run_class(bad_dir, class)?;
                if bad_cfg.net.classes != cfg.net.classes {
                    return Err(invalid!(
                        "the bad model {} has other classes than {}",
                        bad_dir.display(),
                        dir.display()
                    ));
                }
                let recorded = bad_cfg.train.bad_version_of.as_deref().map(Path::new);
                let good_abs = std::fs::canonicalize(dir).ok();
                if recorded.map(Path::to_path_buf) != good_abs {
                    eprintln!(
                        "note: {} is not recorded as the bad version of {} (train --bad-version-of)",
                        bad_dir.display(),
                        dir.display()
                    );
                }
                good.guided(bad, w.unwrap_or(0.0), interval)?
            }
            (None, Some(w)) => {
                let (uncond, _) = Model::from_run_class(dir, None)?;
                good.guided(uncond, w, interval)?
            }
            (None, None) => good,
        };
        if self.sde == SdeSpec::default() {
            return Ok(model);
        }
        let path = self.sde.build(|| 1.0)?;
        if !crate::sde::same_sde(model.sde().as_ref(), path.as_ref()) {
            eprintln!(
                "note: the run was trained on the {} path; sampling it on the {} path by matching log-SNR (post-hoc path change)",
                model.sde().name(),
                path.name()
            );
        }
        model.on_path(path)
    }

    /// Samples into `out` (written only when the run succeeds); returns the summary line.
    pub fn run(&self) -> Result<String> {
        let model = self.model()?;
        model.check_prior()?;
        let sampler = self.settings.sampler(&self.sampler)?;
        if self.steps.is_some() && !sampler.method(Some(model.sde().as_ref()))?.reads_steps() {
            return Err(invalid!(
                "`steps` does not apply to `sampler` {} (it is adaptive: `rtol`, `atol`)",
                self.sampler
            ));
        }
        let spec = SampleSpec {
            sampler,
            steps: self.steps.unwrap_or(1000),
            eps: self.eps,
            n: self.n,
            seed: self.seed,
            chunk: self.chunk,
            record: vec![],
            denoise: self.denoise,
        };
        // Fail on an unwritable `out` before spending any time.
        let out = AtomicFile::create(&self.out)?;
        let pb = progress_bar(
            self.n as u64,
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} particles ({eta})",
        );
        let tick = pb.as_ref().map(|pb| move |k: u64| pb.inc(k));
        let run = model.sample(&spec, tick.as_ref().map(|f| f as &(dyn Fn(u64) + Sync)))?;
        if let Some(pb) = pb {
            pb.finish_and_clear();
        }
        write_csv(out, run.x.view())?;
        let steps = run.stats.accepted as f64 / run.stats.particles.max(1) as f64;
        let secs = run.wall.as_secs_f64();
        let sde = model.sde();
        Ok(format!(
            "sampled n={} d={} data={} sde={} sampler={} steps={} eps={} nfe={} rejected={} wall={:.3}s throughput={:.2}M particle-steps/s -> {}",
            self.n,
            model.dim(),
            model.data().unwrap_or_default(),
            sde.name(),
            self.sampler,
            format_num(steps),
            crate::error::num(self.eps.unwrap_or(sde.default_eps())),
            format_num(run.nfe),
            run.stats.rejected,
            secs,
            run.stats.accepted as f64 / secs / 1e6,
            self.out.display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::SamplerFlags;
    use crate::sample::config::NAMES;
    use crate::sample::Sampler;

    /// Every sampler setting has a flag and every flag is some sampler's setting: the CLI's
    /// flag list cannot drift from the `Sampler` types it is parsed into (Python and TOML
    /// use those types directly).
    #[test]
    fn flags_mirror_the_sampler_settings() {
        let mut settings: Vec<String> = NAMES
            .iter()
            .flat_map(|n| n.parse::<Sampler>().unwrap().settings())
            .collect();
        settings.sort();
        settings.dedup();
        let mut flags: Vec<&str> = crate::io::field_names::<SamplerFlags>().to_vec();
        flags.sort();
        assert_eq!(flags, settings);
    }
}
