//! A [`Model`]: a score together with the forward SDE it belongs to. Everything that samples,
//! bounds or evaluates takes one, so a score cannot be used under an SDE it was not built for.
//!
//! Built from the exact score of a mixture ([`Model::exact`]), from a run directory of
//! `scoresde train` (`Model::from_run`, in [`crate::train`]), or from user code
//! ([`Model::new`]):
//!
//! ```
//! use scoresde::data::Dataset;
//! use scoresde::model::Model;
//! use scoresde::sample::SampleSpec;
//! use scoresde::sde::SdeSpec;
//! let data = Dataset::from_spec("8gaussians").unwrap();
//! let model = Model::exact(&data, &SdeSpec::default()).unwrap();
//! let run = model.sample(&SampleSpec { n: 100, steps: 50, ..Default::default() }, None).unwrap();
//! assert_eq!(run.x.dim(), (100, 2));
//! let nll = model.nll(data.sample(20, 1, 0).view(), &Default::default()).unwrap();
//! assert!(nll.mean().is_finite());
//! ```

use crate::data::Dataset;
use crate::elbo::{Bound, ContinuousBound, TimeSampling};
use crate::likelihood::{NllRun, NllSpec};
use crate::sample::{Method, RunSpec, SampleRun, SampleSpec};
use crate::score::{check_sde, MixtureScore, Score};
use crate::sde::{Sde, SdeSpec};
use crate::{Error, Result};
use ndarray::{Array2, ArrayView2};
use std::sync::Arc;

/// A progress callback: called with the number of particles just finished.
pub type Progress<'a> = Option<&'a (dyn Fn(u64) + Sync)>;

/// A score and its forward SDE.
pub struct Model {
    score: Box<dyn Score + Send>,
    sde: Arc<dyn Sde>,
    data: Option<String>,
}

impl Model {
    /// A model from any score and the SDE it is used under; refused when the score reports
    /// another SDE ([`Score::sde`]).
    pub fn new(score: impl Score + Send + 'static, sde: Arc<dyn Sde>) -> Result<Self> {
        check_sde(&score, sde.as_ref())?;
        Ok(Self {
            score: Box::new(score),
            sde,
            data: None,
        })
    }

    /// The exact score of a mixture dataset diffused by the SDE of `spec` (VE's σ_max defaults
    /// to the data diameter).
    pub fn exact(data: &Dataset, spec: &SdeSpec) -> Result<Self> {
        let mixture = data.exact_mixture()?.clone();
        let sde = spec.build(|| data.diameter())?;
        Ok(Self::new(MixtureScore::new(mixture, sde.clone()), sde)?.with_data(data.name()))
    }

    /// The exact field of p(x | `class`) of a class-labelled mixture, guided away from the
    /// unconditional p(x) with classifier-free guidance of scale w on t ∈ `interval` (default
    /// the whole path; w = 0: the conditional field itself, one evaluation per row).
    pub fn exact_conditional(
        data: &Dataset,
        spec: &SdeSpec,
        class: &str,
        w: f64,
        interval: Option<[f64; 2]>,
    ) -> Result<Self> {
        let mixture = data.exact_mixture()?.clone();
        let sde = spec.build(|| data.diameter())?;
        let cond = MixtureScore::new(Arc::new(mixture.conditional(class)?), sde.clone());
        let uncond = MixtureScore::new(mixture, sde.clone());
        Self::new(cond, sde.clone())?
            .guided(Self::new(uncond, sde)?, w, interval)
            .map(|m| m.with_data(data.name()))
    }

    /// Guidance of this model away from `other` ([`crate::score::Guided`]):
    /// `(1 + w) self − w other` on t ∈ `interval` (default the whole path). Classifier-free
    /// guidance when `self` is p(x | c) and `other` p(x); autoguidance when `other` is a bad
    /// version of `self`. Both must live on one path.
    pub fn guided(self, other: Model, w: f64, interval: Option<[f64; 2]>) -> Result<Self> {
        if !crate::sde::same_sde(self.sde.as_ref(), other.sde.as_ref()) {
            return Err(crate::invalid!(
                "guidance combines models on one path, got {} and {}",
                self.sde.name(),
                other.sde.name()
            ));
        }
        let interval = interval.unwrap_or([0.0, self.sde.t_max()]);
        let guided =
            crate::score::Guided::new(Arc::from(self.score), Arc::from(other.score), w, interval)?;
        Ok(Self {
            score: Box::new(guided),
            sde: self.sde,
            data: self.data,
        })
    }

    /// Records the name of the data the model describes (a builtin or a mixture file).
    pub fn with_data(mut self, data: impl Into<String>) -> Self {
        self.data = Some(data.into());
        self
    }

    /// The same field on another path ([`crate::score::PathChange`]: matched log-SNR and a
    /// rescaling); `self` when `path` is already the model's.
    pub fn on_path(self, path: Arc<dyn Sde>) -> Result<Self> {
        if crate::sde::same_sde(self.sde.as_ref(), path.as_ref()) {
            return Ok(self);
        }
        crate::path::check_path(path.as_ref())?;
        let field = crate::score::PathChange {
            field: self.score,
            from: self.sde,
            to: path.clone(),
        };
        Ok(Self {
            score: Box::new(field),
            sde: path,
            data: self.data,
        })
    }

    pub fn score(&self) -> &dyn Score {
        self.score.as_ref()
    }
    pub fn sde(&self) -> &Arc<dyn Sde> {
        &self.sde
    }
    pub fn dim(&self) -> usize {
        self.score.dim()
    }
    /// The data the model describes, where known.
    pub fn data(&self) -> Option<&str> {
        self.data.as_deref()
    }

    /// Draws `spec.n` samples from the prior down to ε with a built-in sampler.
    pub fn sample(&self, spec: &SampleSpec, progress: Progress) -> Result<SampleRun> {
        crate::sample::sample(self.sde.as_ref(), self.score(), spec, progress)
    }

    /// Integrates given states at t_max down to ε with a built-in sampler.
    pub fn integrate(
        &self,
        x_t: Array2<f64>,
        spec: &SampleSpec,
        progress: Progress,
    ) -> Result<SampleRun> {
        crate::sample::integrate(self.sde.as_ref(), self.score(), x_t, spec, progress)
    }

    /// Draws samples with any [`Method`], a user's own included.
    pub fn sample_with(
        &self,
        method: &dyn Method,
        run: &RunSpec,
        progress: Progress,
    ) -> Result<SampleRun> {
        crate::sample::sample_with(self.sde.as_ref(), self.score(), method, run, progress)
    }

    /// Ho et al.'s discrete −ELBO on the T-step grid (VP only).
    pub fn discrete_bound(
        &self,
        x0: ArrayView2<f64>,
        steps: usize,
        variance: crate::sample::Variance,
        seed: u64,
    ) -> Result<Bound> {
        crate::elbo::discrete_bound(self.sde.as_ref(), self.score(), x0, steps, variance, seed)
    }

    /// The continuous-time −ELBO from ε to T.
    pub fn continuous_bound(
        &self,
        x0: ArrayView2<f64>,
        eps: f64,
        draws: usize,
        sampling: TimeSampling,
        seed: u64,
    ) -> Result<ContinuousBound> {
        crate::elbo::continuous_bound(
            self.sde.as_ref(),
            self.score(),
            x0,
            eps,
            draws,
            sampling,
            seed,
        )
    }

    /// Exact negative log-likelihoods of the rows of `x` through the probability-flow ODE.
    pub fn nll(&self, x: ArrayView2<f64>, spec: &NllSpec) -> Result<NllRun> {
        crate::likelihood::pf_ode_nll(self.sde.as_ref(), self.score(), x, spec)
    }

    /// Refuses a model whose prior does not cover p_T of its data
    /// ([`crate::data::prior_gap`]); for every command that starts from the prior. A model
    /// without known data, or whose data file is gone, passes.
    pub fn check_prior(&self) -> Result<()> {
        use crate::data::prior_gap::{check_points_covered, check_prior_covers};
        let Some(spec) = self.data.as_deref() else {
            return Ok(());
        };
        let sde = self.sde.as_ref();
        if spec.ends_with(".csv") {
            match crate::io::read_csv(spec) {
                Ok(x) => check_points_covered(&x, spec, sde),
                Err(_) => Ok(()),
            }
        } else {
            match Dataset::from_spec(spec) {
                Ok(d) => check_prior_covers(&d, sde),
                Err(_) => Ok(()),
            }
        }
    }

    /// Refuses points of another dimension than the model's.
    pub fn check_points(&self, x: ArrayView2<f64>) -> Result<()> {
        if x.ncols() != self.dim() {
            return Err(Error::Data(format!(
                "the points have dimension {} but the model has {}",
                x.ncols(),
                self.dim()
            )));
        }
        Ok(())
    }
}
