//! The built-in samplers by name, each with only its own settings: [`Sampler`] is the one place
//! where names map to structs. In files a sampler is its name (`sampler = "ddim"`) or a table
//! tagged by `sampler` (`{ sampler = "ddim", eta = 0.5 }`); a setting the sampler does not have
//! is an error naming it. [`Sampler::method`] checks the settings and builds the runnable
//! [`Method`], whose file holds the algorithm and its NFE formula.

use super::chunked::{PfOde, ReverseEm};
use super::deis::{self, DeisBasis};
use super::er_sde::{self, NoiseScale};
use super::expint::Prediction;
use super::grid::{Grid, Spacing};
use super::unipc::{self, BhVariant};
use super::{ddim, dpm, edm, langevin, pc, Corrector, Method, Predictor};
use super::{sa_solver, seeds};
use crate::ddpm::Variance;
use crate::reverse::{Diffusion, DiffusionKind};
use crate::sde::Sde;
use crate::{invalid, Result};
use scoresde_solvers::{Tolerances, EULER, HEUN, RK4};
use serde::{Deserialize, Serialize};

/// ρ of EDM's spacing when none is given (Karras et al. 2022).
pub const DEFAULT_RHO: f64 = 7.0;

/// The grid of a sampler on a t-grid: `spacing` (its own default when unset) and EDM's ρ,
/// which only the `edm` spacing reads.
fn grid(name: &str, spacing: &Option<Spacing>, rho: Option<f64>, default: Spacing) -> Result<Grid> {
    let spacing = spacing.clone().unwrap_or(default);
    if rho.is_some() && spacing != Spacing::Edm {
        return Err(invalid!(
            "`rho` does not apply to `sampler` {name} on a {} grid (only `spacing` edm reads it)",
            crate::io::variant_name(&spacing)
        ));
    }
    Ok(Grid {
        spacing,
        rho: rho.unwrap_or(DEFAULT_RHO),
    })
}

/// A sampler whose only settings are its grid (em, pf-euler/heun/rk4, edm-heun, DPM-Solvers).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OnGrid {
    /// Spacing of the time grid (default: time; logsnr for DPM-Solver; edm for EDM).
    pub spacing: Option<Spacing>,
    /// ρ of the EDM spacing (default 7).
    pub rho: Option<f64>,
}

/// Euler–Maruyama on the reverse dynamics with diffusion w(t) (default: g, the reverse SDE).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Em {
    pub spacing: Option<Spacing>,
    pub rho: Option<f64>,
    /// The form of w(t) (default g).
    pub diffusion: Option<DiffusionKind>,
    /// Its scale C (default 1).
    pub diffusion_scale: Option<f64>,
}

/// Huang et al. 2021's plug-in reverse SDE with λ ∈ [0, 1] (0: reverse SDE, 1: PF-ODE).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlugIn {
    pub lambda: f64,
    pub spacing: Option<Spacing>,
    pub rho: Option<f64>,
}

/// Adaptive Dormand–Prince on the PF-ODE: its tolerances (the step count is not read).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PfRk45 {
    pub rtol: f64,
    pub atol: f64,
}

impl Default for PfRk45 {
    fn default() -> Self {
        Self {
            rtol: 1e-5,
            atol: 1e-5,
        }
    }
}

/// Predictor–corrector (Song et al. 2021, Alg. 1–3).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Pc {
    pub predictor: Predictor,
    pub corrector: Corrector,
    /// Corrector steps per noise level (default 1; not with `corrector` none).
    pub corrector_steps: Option<usize>,
    /// Signal-to-noise ratio r of the Langevin corrector (default 0.16).
    pub snr: Option<f64>,
    /// Variance of the ancestral predictor (default β, β̃ for VE).
    pub variance: Option<Variance>,
    pub spacing: Option<Spacing>,
    pub rho: Option<f64>,
}

impl Default for Pc {
    fn default() -> Self {
        Self {
            predictor: Predictor::ReverseDiffusion,
            corrector: Corrector::Langevin,
            corrector_steps: None,
            snr: None,
            variance: None,
            spacing: None,
            rho: None,
        }
    }
}

/// EDM's stochastic sampler (Karras et al. 2022, Alg. 2).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EdmSde {
    pub s_churn: f64,
    /// Churn only where σ̃ = s/m ≥ S_tmin.
    pub s_tmin: f64,
    /// Churn only where σ̃ ≤ S_tmax.
    pub s_tmax: f64,
    pub s_noise: f64,
    pub spacing: Option<Spacing>,
    pub rho: Option<f64>,
}

impl Default for EdmSde {
    fn default() -> Self {
        Self {
            s_churn: 0.0,
            s_tmin: 0.0,
            s_tmax: f64::INFINITY,
            s_noise: 1.0,
            spacing: None,
            rho: None,
        }
    }
}

/// DDIM (Song, Meng & Ermon 2021) with η; on DDPM's M-step schedule with `discrete` = M.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Ddim {
    pub eta: f64,
    pub discrete: Option<usize>,
    /// Grid without `discrete` only.
    pub spacing: Option<Spacing>,
    pub rho: Option<f64>,
}

/// DDPM ancestral sampling (Ho et al. 2020, Alg. 2) on its M-step schedule (default M = N).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Ddpm {
    /// σ² = β (default) or β̃.
    pub variance: Option<Variance>,
    pub discrete: Option<usize>,
}

/// Plain Langevin dynamics at t = ε with step size ε_L.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Langevin {
    pub step_size: f64,
}

impl Default for Langevin {
    fn default() -> Self {
        Self { step_size: 0.1 }
    }
}

/// Annealed Langevin (Song & Ermon 2019): N iterations at each of `levels` noise levels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnnealedLangevin {
    pub step_size: f64,
    pub levels: usize,
    pub spacing: Option<Spacing>,
    pub rho: Option<f64>,
}

impl Default for AnnealedLangevin {
    fn default() -> Self {
        Self {
            step_size: 0.1,
            levels: 10,
            spacing: None,
            rho: None,
        }
    }
}

/// UniPC (Zhao et al. 2023): UniP-p with the UniC corrector.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UniPc {
    /// Predictor order p ∈ {1, 2, 3} (default 2).
    pub order: usize,
    /// B(h): bh1 (h) or bh2 (e^h − 1, default).
    pub variant: BhVariant,
    /// Interpolate data (x̂₀, default) or noise (ε̂) predictions.
    pub prediction: Prediction,
    /// The UniC corrector (default on; off: UniP alone).
    pub use_corrector: bool,
    /// Lower orders on the last p − 1 steps (default on, as both references).
    pub lower_order_final: bool,
    pub spacing: Option<Spacing>,
    pub rho: Option<f64>,
}

impl Default for UniPc {
    fn default() -> Self {
        Self {
            order: 2,
            variant: BhVariant::default(),
            prediction: Prediction::default(),
            use_corrector: true,
            lower_order_final: true,
            spacing: None,
            rho: None,
        }
    }
}

/// SA-Solver (Xue et al. 2023), stepping as diffusers' `SASolverScheduler`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SaSolver {
    /// SA-Predictor order 1–4 (default 2).
    pub predictor_order: usize,
    /// SA-Corrector order 0–4 (0: none; default 2).
    pub corrector_order: usize,
    /// Noise scale τ ≥ 0 inside `tau_window` (default 1; 0: an ODE solver).
    pub tau: f64,
    /// The times [from, to] where τ applies, 0 elsewhere (default [0.2, 0.8], the reference's
    /// 200 ≤ timestep ≤ 800; [0, inf] for a constant τ).
    pub tau_window: [f64; 2],
    /// Data (x̂₀, default) or noise (ε̂) prediction.
    pub prediction: Prediction,
    pub spacing: Option<Spacing>,
    pub rho: Option<f64>,
}

impl Default for SaSolver {
    fn default() -> Self {
        Self {
            predictor_order: 2,
            corrector_order: 2,
            tau: 1.0,
            tau_window: [0.2, 0.8],
            prediction: Prediction::default(),
            spacing: None,
            rho: None,
        }
    }
}

/// DEIS (Zhang & Chen 2022): tAB in t (the authors') or Adams in log ρ (diffusers').
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Deis {
    /// Outputs per step p = 1–4, tAB-(p − 1), order p (default 4: the authors' tAB3).
    pub order: usize,
    /// Interpolate in t (default) or in log ρ.
    pub basis: DeisBasis,
    pub spacing: Option<Spacing>,
    pub rho: Option<f64>,
}

impl Default for Deis {
    fn default() -> Self {
        Self {
            order: 4,
            basis: DeisBasis::default(),
            spacing: None,
            rho: None,
        }
    }
}

/// iPNDM (Zhang & Chen 2022, App. B).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Ipndm {
    /// Outputs per step, 1–4 (default 4).
    pub order: usize,
    pub spacing: Option<Spacing>,
    pub rho: Option<f64>,
}

impl Default for Ipndm {
    fn default() -> Self {
        Self {
            order: 4,
            spacing: None,
            rho: None,
        }
    }
}

/// SEEDS-2 (Gonzalez et al. 2023), as ComfyUI's `sample_seeds_2`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Seeds2 {
    /// Noise scale η ≥ 0 (default 1: the reverse SDE; 0: DPM-Solver++(2S)).
    pub eta: f64,
    /// The stage at λ_s + r h, r ∈ (0, 1] (default ½).
    pub r: f64,
    /// S_noise (default 1).
    pub s_noise: f64,
    pub spacing: Option<Spacing>,
    pub rho: Option<f64>,
}

impl Default for Seeds2 {
    fn default() -> Self {
        Self {
            eta: 1.0,
            r: 0.5,
            s_noise: 1.0,
            spacing: None,
            rho: None,
        }
    }
}

/// ER-SDE-Solver (Cui et al. 2023).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ErSde {
    /// Order 1–3 (default 3).
    pub order: usize,
    /// φ: ode (ℓ), reverse-sde (ℓ²) or er (ℓ(e^{ℓ^0.3} + 10), default).
    pub noise_scale: NoiseScale,
    pub spacing: Option<Spacing>,
    pub rho: Option<f64>,
}

impl Default for ErSde {
    fn default() -> Self {
        Self {
            order: 3,
            noise_scale: NoiseScale::default(),
            spacing: None,
            rho: None,
        }
    }
}

/// An order setting in `range`, or an error naming the sampler.
fn check_order(
    name: &str,
    what: &str,
    order: usize,
    range: std::ops::RangeInclusive<usize>,
) -> Result<()> {
    if range.contains(&order) {
        return Ok(());
    }
    Err(invalid!(
        "`{what}` of `sampler` {name} must lie in {} … {}, got {order}",
        range.start(),
        range.end()
    ))
}

/// Declares [`Sampler`] and [`NAMES`] from one list: variant, settings struct, name.
macro_rules! samplers {
    ($($(#[$doc:meta])* $variant:ident($settings:ty) = $name:literal,)*) => {
        /// Every built-in sampler with its settings. What N (`steps`) means is each sampler's
        /// own: see [`Method::nfe`] of the struct it builds.
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(remote = "Self", tag = "sampler")]
        pub enum Sampler {
            $($(#[$doc])* #[serde(rename = $name)] $variant($settings),)*
        }

        /// Every sampler name, in the order of [`Sampler`]'s variants.
        pub const NAMES: &[&str] = &[$($name),*];
    };
}

samplers! {
    /// Euler–Maruyama on the reverse-time SDE, N steps.
    Em(Em) = "em",
    /// Euler on the probability-flow ODE, N steps.
    PfEuler(OnGrid) = "pf-euler",
    /// Heun (trapezoid in t) on the PF-ODE, N steps.
    PfHeun(OnGrid) = "pf-heun",
    /// Classical RK4 on the PF-ODE, N steps.
    PfRk4(OnGrid) = "pf-rk4",
    /// Adaptive Dormand–Prince 5(4) on the PF-ODE.
    PfRk45(PfRk45) = "pf-rk45",
    /// Euler–Maruyama on Huang et al.'s plug-in reverse SDE, N steps.
    PlugIn(PlugIn) = "plug-in",
    /// Predictor–corrector, N noise levels.
    Pc(Pc) = "pc",
    /// EDM Algorithm 1 (Heun in σ̃ = s/m), N grid points.
    EdmHeun(OnGrid) = "edm-heun",
    /// EDM Algorithm 2, N grid points.
    EdmSde(EdmSde) = "edm-sde",
    /// DPM-Solver-1 (= DDIM), N = NFE budget.
    DpmSolver1(OnGrid) = "dpm-solver-1",
    /// DPM-Solver-2 (single-step, r₁ = ½), N = NFE budget.
    DpmSolver2(OnGrid) = "dpm-solver-2",
    /// DPM-Solver-3 (single-step, r₁ = ⅓, r₂ = ⅔), N = NFE budget split as the authors do.
    DpmSolver3(OnGrid) = "dpm-solver-3",
    /// DPM-Solver-fast (Lu et al. 2022, §3.4): the paper's name for dpm-solver-3's split.
    DpmSolverFast(OnGrid) = "dpm-solver-fast",
    /// DPM-Solver++(2M), multistep, N steps.
    DpmSolverPp2m(OnGrid) = "dpm-solver-pp2m",
    /// UniPC (Zhao et al. 2023), N steps, N evaluations.
    UniPc(UniPc) = "unipc",
    /// SA-Solver (Xue et al. 2023), N steps, N evaluations.
    SaSolver(SaSolver) = "sa-solver",
    /// DEIS (Zhang & Chen 2022), N steps, N evaluations.
    Deis(Deis) = "deis",
    /// iPNDM (Zhang & Chen 2022), N steps, N evaluations.
    Ipndm(Ipndm) = "ipndm",
    /// SEEDS-2 (Gonzalez et al. 2023), N steps, 2N evaluations.
    Seeds2(Seeds2) = "seeds-2",
    /// ER-SDE-Solver (Cui et al. 2023), N steps, N evaluations.
    ErSde(ErSde) = "er-sde",
    /// DDIM, N grid points.
    Ddim(Ddim) = "ddim",
    /// DDPM ancestral sampling on the N-step schedule.
    Ddpm(Ddpm) = "ddpm",
    /// Plain Langevin dynamics at t = ε, N iterations.
    Langevin(Langevin) = "langevin",
    /// Annealed Langevin, N iterations at each level.
    AnnealedLangevin(AnnealedLangevin) = "annealed-langevin",
}

impl Serialize for Sampler {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        Sampler::serialize(self, s)
    }
}

impl<'de> Deserialize<'de> for Sampler {
    /// A name (`"ddim"`, default settings) or a table tagged by `sampler`.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        // Through a TOML value, which keeps ±inf (`s_tmax = inf`), unlike a JSON one.
        let v = match toml::Value::deserialize(d)? {
            toml::Value::String(name) => named(&name),
            other => other,
        };
        Sampler::deserialize(v).map_err(serde::de::Error::custom)
    }
}

/// The table `{ sampler = name }`.
fn named(name: &str) -> toml::Value {
    toml::Value::Table(toml::map::Map::from_iter([(
        "sampler".to_string(),
        toml::Value::String(name.into()),
    )]))
}

impl std::str::FromStr for Sampler {
    type Err = crate::Error;
    /// The sampler of this name with its default settings.
    fn from_str(name: &str) -> Result<Self> {
        Sampler::deserialize(named(name)).map_err(|e| {
            invalid!(
                "unknown sampler '{name}' ({e}; known: {})",
                NAMES.join(", ")
            )
        })
    }
}

impl Default for Sampler {
    fn default() -> Self {
        Sampler::Em(Em::default())
    }
}

impl Sampler {
    /// `em` with the path's own reverse SDE (w = g), or with w² = 2s (SiT's `sigma`) where g is
    /// singular at t_max (rectified and trigonometric paths).
    pub fn em_for(path: &dyn Sde) -> Sampler {
        let singular = !path.diffusion(path.t_max()).is_finite();
        Sampler::Em(Em {
            diffusion: singular.then_some(DiffusionKind::Sigma),
            ..Default::default()
        })
    }

    /// The name (`em`, `dpm-solver-2`, …).
    pub fn name(&self) -> String {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(m)) => m
                .get("sampler")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string(),
            _ => String::new(),
        }
    }

    /// The name and every setting given, for legends: `dpm-solver-2 spacing=time`.
    pub fn label(&self) -> String {
        let mut out = self.name();
        if let Ok(serde_json::Value::Object(m)) = serde_json::to_value(self) {
            for (k, v) in m.iter().filter(|(k, v)| *k != "sampler" && !v.is_null()) {
                let v = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                out.push_str(&format!(" {k}={v}"));
            }
        }
        out
    }

    /// The name and the settings that differ from the sampler's defaults, for legends:
    /// `unipc order=3 lower_order_final=false`.
    pub fn brief(&self) -> String {
        let name = self.name();
        let own = serde_json::to_value(self).ok();
        let default = name
            .parse::<Sampler>()
            .ok()
            .and_then(|d| serde_json::to_value(d).ok());
        let mut out = name;
        if let (Some(serde_json::Value::Object(m)), Some(serde_json::Value::Object(d))) =
            (own, default)
        {
            for (k, v) in m
                .iter()
                .filter(|(k, v)| *k != "sampler" && d.get(*k) != Some(*v))
            {
                let v = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                out.push_str(&format!(" {k}={v}"));
            }
        }
        out
    }

    /// The settings this sampler has, as field names (`sampler` excluded).
    pub fn settings(&self) -> Vec<String> {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(m)) => {
                m.keys().filter(|k| *k != "sampler").cloned().collect()
            }
            _ => vec![],
        }
    }

    /// Checks the settings and builds the runnable method (PC's ancestral variance defaults by
    /// `sde`: β̃ for VE, β otherwise).
    pub fn method(&self, sde: Option<&dyn Sde>) -> Result<Box<dyn Method>> {
        let name = self.name();
        let finite_nonneg = |what: &str, v: f64| -> Result<()> {
            if v >= 0.0 && v.is_finite() {
                Ok(())
            } else {
                Err(invalid!(
                    "`{what}` must be non-negative and finite, got {}",
                    crate::error::num(v)
                ))
            }
        };
        let positive = |what: &str, v: f64| -> Result<()> {
            if v > 0.0 && v.is_finite() {
                Ok(())
            } else {
                Err(invalid!(
                    "`{what}` must be positive, got {}",
                    crate::error::num(v)
                ))
            }
        };
        let g = |o: &OnGrid, default| grid(&name, &o.spacing, o.rho, default);
        Ok(match self {
            Sampler::Em(o) => {
                if o.diffusion_scale.is_some() && o.diffusion == Some(DiffusionKind::Zero) {
                    return Err(invalid!(
                        "`diffusion_scale` does not apply to `diffusion` zero"
                    ));
                }
                let scale = o.diffusion_scale.unwrap_or(1.0);
                finite_nonneg("diffusion_scale", scale)?;
                Box::new(ReverseEm {
                    diffusion: Diffusion::Kind {
                        kind: o.diffusion.unwrap_or_default(),
                        scale,
                    },
                    grid: grid(&name, &o.spacing, o.rho, Spacing::Time)?,
                })
            }
            Sampler::PlugIn(p) => {
                if !(0.0..=1.0).contains(&p.lambda) {
                    return Err(invalid!(
                        "`lambda` must lie in [0, 1], got {}",
                        crate::error::num(p.lambda)
                    ));
                }
                Box::new(ReverseEm {
                    diffusion: Diffusion::PlugIn { lambda: p.lambda },
                    grid: grid(&name, &p.spacing, p.rho, Spacing::Time)?,
                })
            }
            Sampler::PfEuler(o) => Box::new(PfOde::fixed(&EULER, g(o, Spacing::Time)?)),
            Sampler::PfHeun(o) => Box::new(PfOde::fixed(&HEUN, g(o, Spacing::Time)?)),
            Sampler::PfRk4(o) => Box::new(PfOde::fixed(&RK4, g(o, Spacing::Time)?)),
            Sampler::PfRk45(p) => {
                if !(p.rtol > 0.0 && p.atol > 0.0 && p.rtol.is_finite() && p.atol.is_finite()) {
                    return Err(invalid!(
                        "`rtol` and `atol` must be positive (got {} and {})",
                        crate::error::num(p.rtol),
                        crate::error::num(p.atol)
                    ));
                }
                Box::new(PfOde::adaptive(Tolerances::new(p.rtol, p.atol)))
            }
            Sampler::Pc(p) => {
                if p.corrector == Corrector::None {
                    for (given, what) in [
                        (p.snr.is_some(), "snr"),
                        (p.corrector_steps.is_some(), "corrector_steps"),
                    ] {
                        if given {
                            return Err(invalid!(
                                "`{what}` does not apply to `sampler` pc with `corrector` none"
                            ));
                        }
                    }
                }
                if p.variance.is_some() && p.predictor != Predictor::Ancestral {
                    return Err(invalid!(
                        "`variance` does not apply to `sampler` pc without the ancestral `predictor`"
                    ));
                }
                if let Some(c) = p.corrector_steps {
                    if c > crate::error::MAX_STEPS {
                        return Err(invalid!(
                            "`corrector_steps` must lie in [0, {}], got {c}",
                            crate::error::MAX_STEPS
                        ));
                    }
                }
                let settings = pc::Pc {
                    predictor: p.predictor,
                    corrector: p.corrector,
                    corrector_steps: p.corrector_steps.unwrap_or(1),
                    snr: p.snr.unwrap_or(0.16),
                    variance: p.variance.unwrap_or(match sde {
                        Some(s) if s.name() == "ve" => Variance::BetaTilde,
                        _ => Variance::Beta,
                    }),
                };
                positive("snr", settings.snr)?;
                if settings.evals_per_step() == 0 {
                    return Err(invalid!(
                        "`sampler` pc with `predictor` none needs a corrector with `corrector_steps` ≥ 1: as configured it does no work"
                    ));
                }
                Box::new(pc::PcSampler {
                    pc: settings,
                    grid: grid(&name, &p.spacing, p.rho, Spacing::Time)?,
                })
            }
            Sampler::EdmHeun(o) => Box::new(edm::Edm {
                churn: edm::Churn::NONE,
                grid: g(o, Spacing::Edm)?,
                stochastic: false,
            }),
            Sampler::EdmSde(e) => {
                finite_nonneg("s_churn", e.s_churn)?;
                finite_nonneg("s_noise", e.s_noise)?;
                if e.s_tmin.is_nan() || e.s_tmax.is_nan() || e.s_tmin > e.s_tmax {
                    return Err(invalid!(
                        "EDM churn needs `s_tmin` ≤ `s_tmax` (got {} and {})",
                        crate::error::num(e.s_tmin),
                        crate::error::num(e.s_tmax)
                    ));
                }
                Box::new(edm::Edm {
                    churn: edm::Churn {
                        s_churn: e.s_churn,
                        s_tmin: e.s_tmin,
                        s_tmax: e.s_tmax,
                        s_noise: e.s_noise,
                    },
                    grid: grid(&name, &e.spacing, e.rho, Spacing::Edm)?,
                    stochastic: true,
                })
            }
            Sampler::DpmSolver1(o)
            | Sampler::DpmSolver2(o)
            | Sampler::DpmSolver3(o)
            | Sampler::DpmSolverFast(o) => Box::new(dpm::DpmSolver {
                order: match self {
                    Sampler::DpmSolver1(_) => 1,
                    Sampler::DpmSolver2(_) => 2,
                    _ => 3,
                },
                grid: g(o, Spacing::Logsnr)?,
                fast: matches!(self, Sampler::DpmSolverFast(_)),
            }),
            Sampler::DpmSolverPp2m(o) => Box::new(dpm::DpmSolverPp2m {
                grid: g(o, Spacing::Logsnr)?,
            }),
            Sampler::UniPc(u) => {
                check_order(&name, "order", u.order, 1..=3)?;
                Box::new(unipc::UniPc {
                    order: u.order,
                    variant: u.variant,
                    prediction: u.prediction,
                    corrector: u.use_corrector,
                    lower_order_final: u.lower_order_final,
                    grid: grid(&name, &u.spacing, u.rho, Spacing::Logsnr)?,
                })
            }
            Sampler::SaSolver(a) => {
                check_order(&name, "predictor_order", a.predictor_order, 1..=4)?;
                check_order(&name, "corrector_order", a.corrector_order, 0..=4)?;
                finite_nonneg("tau", a.tau)?;
                let [lo, hi] = a.tau_window;
                if lo.is_nan() || hi.is_nan() || lo > hi {
                    return Err(invalid!(
                        "`tau_window` must be [from, to] with from ≤ to, got [{}, {}]",
                        crate::error::num(lo),
                        crate::error::num(hi)
                    ));
                }
                Box::new(sa_solver::SaSolver {
                    predictor_order: a.predictor_order,
                    corrector_order: a.corrector_order,
                    tau: a.tau,
                    window: a.tau_window,
                    prediction: a.prediction,
                    grid: grid(&name, &a.spacing, a.rho, Spacing::Time)?,
                })
            }
            Sampler::Deis(p) => {
                check_order(&name, "order", p.order, 1..=4)?;
                Box::new(deis::Deis {
                    order: p.order,
                    basis: p.basis,
                    grid: grid(&name, &p.spacing, p.rho, Spacing::Time)?,
                })
            }
            Sampler::Ipndm(p) => {
                check_order(&name, "order", p.order, 1..=4)?;
                Box::new(deis::Ipndm {
                    order: p.order,
                    grid: grid(&name, &p.spacing, p.rho, Spacing::Time)?,
                })
            }
            Sampler::Seeds2(p) => {
                finite_nonneg("eta", p.eta)?;
                finite_nonneg("s_noise", p.s_noise)?;
                if !(p.r > 0.0 && p.r <= 1.0) {
                    return Err(invalid!(
                        "`r` of `sampler` seeds-2 must lie in (0, 1], got {}",
                        crate::error::num(p.r)
                    ));
                }
                Box::new(seeds::Seeds2 {
                    eta: p.eta,
                    r: p.r,
                    s_noise: p.s_noise,
                    grid: grid(&name, &p.spacing, p.rho, Spacing::Logsnr)?,
                })
            }
            Sampler::ErSde(p) => {
                check_order(&name, "order", p.order, 1..=3)?;
                Box::new(er_sde::ErSde {
                    order: p.order,
                    noise_scale: p.noise_scale,
                    grid: grid(&name, &p.spacing, p.rho, Spacing::Logsnr)?,
                })
            }
            Sampler::Ddim(p) => {
                finite_nonneg("eta", p.eta)?;
                if p.discrete.is_some() && (p.spacing.is_some() || p.rho.is_some()) {
                    return Err(invalid!(
                        "`spacing` and `rho` do not apply to `sampler` ddim with `discrete` (its grid is DDPM's)"
                    ));
                }
                Box::new(ddim::Ddim {
                    eta: p.eta,
                    discrete: p.discrete,
                    grid: grid(&name, &p.spacing, p.rho, Spacing::Time)?,
                })
            }
            Sampler::Ddpm(p) => Box::new(pc::Ddpm {
                variance: p.variance.unwrap_or(Variance::Beta),
                discrete: p.discrete,
            }),
            Sampler::Langevin(p) => {
                positive("step_size", p.step_size)?;
                Box::new(langevin::Langevin {
                    step_size: p.step_size,
                    annealed: None,
                })
            }
            Sampler::AnnealedLangevin(p) => {
                positive("step_size", p.step_size)?;
                crate::error::check_range("levels", p.levels, crate::error::MAX_STEPS)?;
                Box::new(langevin::Langevin {
                    step_size: p.step_size,
                    annealed: Some((p.levels, grid(&name, &p.spacing, p.rho, Spacing::Time)?)),
                })
            }
        })
    }

    /// Score evaluations per particle for N = `steps` (None: adaptive), the final Tweedie step
    /// included when `denoise` (or the sampler's default) has it on.
    pub fn nfe(&self, steps: usize, denoise: Option<bool>) -> Result<Option<u64>> {
        let m = self.method(None)?;
        let d = u64::from(denoise.unwrap_or(m.denoises_by_default()));
        Ok(m.nfe(steps).map(|n| n + d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every name parses, names itself, and round-trips through a file's table form.
    #[test]
    fn names_parse_and_round_trip() {
        for &n in NAMES {
            let s: Sampler = n.parse().unwrap();
            assert_eq!(s.name(), n);
            let text = toml::to_string(&s).unwrap();
            let back: Sampler = toml::from_str(&text).unwrap();
            assert_eq!(back, s);
            assert!(s.method(None).is_ok(), "{n}");
        }
        assert!("magic".parse::<Sampler>().is_err());
    }

    /// `brief` names only the settings that differ from the defaults.
    #[test]
    fn brief_labels_show_what_differs() {
        let s: Sampler =
            toml::from_str("sampler = \"unipc\"\norder = 3\nvariant = \"bh2\"").unwrap();
        assert_eq!(s.brief(), "unipc order=3");
        assert_eq!("sa-solver".parse::<Sampler>().unwrap().brief(), "sa-solver");
    }

    /// A setting the sampler does not have is refused by name; one it has is taken.
    #[test]
    fn settings_belong_to_their_sampler() {
        let e = toml::from_str::<Sampler>("sampler = \"em\"\neta = 0.5").unwrap_err();
        assert!(e.to_string().contains("eta"), "{e}");
        let d: Sampler = toml::from_str("sampler = \"ddim\"\neta = 0.5").unwrap();
        assert_eq!(
            d,
            Sampler::Ddim(Ddim {
                eta: 0.5,
                ..Default::default()
            })
        );
        let rho = Sampler::Em(Em {
            rho: Some(3.0),
            ..Default::default()
        });
        assert!(rho.method(None).is_err());
    }
}
