//! Where the error of a sampled distribution comes from: initialisation (prior draws are not
//! p_T), truncation (stopping at ε), discretisation (finite steps) and the score (a learned
//! field is not the exact one). The exact versions exist for mixture data, so each source is
//! removed by replacing it: exact draws of p_T as the start, the exact law at ε as the target,
//! an adaptive integrator at tight tolerance as the sampler, the exact score as the field
//! (the programme of Pierret & Galerne 2025, who do it in closed form for Gaussian data only).
//!
//! The distance is the sliced squared Wasserstein distance SW₂² between the samples and the
//! exact target law: the mean over fixed random unit directions θ of the 1-D W₂² between the
//! projected samples and the projected mixture (a 1-D mixture), ∫₀¹ (F_n⁻¹(u) − F⁻¹(u))² du by
//! the midpoint rule on u = (i − ½)/n with F⁻¹ by bisection. Against the law, not against
//! draws of it: a two-sample W₂² rewards an under-dispersed sample (it can fall below the
//! two-sample floor), the one-sample one does not. Its noise floor is the same statistic for n
//! exact draws.
//! Sources are removed one after another (the chain adds up by construction) and one at a time
//! from the full run; the interaction is the sum of the one-at-a-time contributions minus the
//! whole error removed: where it is not 0 the parts do not add up. Repeated seeds give standard
//! errors (paired across stages); within a seed every stage shares its random numbers (the
//! start's Gaussian noise, the solver's noise, the target draws), so the differences see the
//! replacements, not the sampling noise of SW₂² (which, at n = 2000 on 8gaussians, varies by a
//! factor 10 between draws through the modes' multinomial counts).
//!
//! For Gaussian data and a deterministic sampler with the exact (linear) score, the sampler is
//! an affine map x_T ↦ A x_T + b, read off exactly by running it on 0 and the unit vectors
//! ([`affine_map`]); pushed through it, the start's Gaussian gives the output's in closed form,
//! and [`gaussian_sliced_w2`] its distance to the target — the independent check of the
//! sampled decomposition.

use crate::data::GaussianMixture;
use crate::model::Model;
use crate::sample::{SampleSpec, Sampler};
use crate::{invalid, Result};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::Serialize;

/// Seed offset of the directions, the targets and the starts (one stream each).
const DIRECTIONS: u64 = 0x51ced;
const TARGET: u64 = 0x7a96e7;
const START: u64 = 0x57a97;

/// A source of error and its exact replacement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Prior draws → exact draws of p_T.
    Initialisation,
    /// Target p₀ → the exact law p_ε at the stopping time.
    Truncation,
    /// The sampler → the reference integrator.
    Discretisation,
    /// The model's score → the exact score.
    Score,
}

impl Source {
    pub const ALL: [Source; 4] = [
        Source::Initialisation,
        Source::Truncation,
        Source::Discretisation,
        Source::Score,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Source::Initialisation => "initialisation",
            Source::Truncation => "truncation",
            Source::Discretisation => "discretisation",
            Source::Score => "score",
        }
    }
}

/// What to decompose.
#[derive(Clone, Debug)]
pub struct DecomposeSpec {
    pub sampler: Sampler,
    pub steps: usize,
    pub eps: Option<f64>,
    /// Samples per run (and exact target draws).
    pub n: usize,
    /// Repetitions with seeds `seed, seed + 1, …`.
    pub seeds: usize,
    pub seed: u64,
    /// Random directions of the sliced distance.
    pub projections: usize,
    /// The integrator that replaces the sampler (default: pf-rk45 at rtol = atol = 1e-7).
    pub reference: Sampler,
}

impl Default for DecomposeSpec {
    fn default() -> Self {
        let reference = "pf-rk45".parse::<Sampler>().expect("builtin");
        let reference = match reference {
            Sampler::PfRk45(mut p) => {
                p.rtol = 1e-7;
                p.atol = 1e-7;
                Sampler::PfRk45(p)
            }
            other => other,
        };
        Self {
            sampler: Sampler::default(),
            steps: 100,
            eps: None,
            n: 2000,
            seeds: 4,
            seed: 0,
            projections: 64,
            reference,
        }
    }
}

/// A distance with its standard error over seeds.
#[derive(Clone, Copy, Debug, Serialize, serde::Deserialize)]
pub struct Estimate {
    pub mean: f64,
    pub stderr: f64,
}

impl Estimate {
    fn of(v: &[f64]) -> Self {
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = if v.len() > 1 {
            v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
        } else {
            f64::NAN
        };
        Self {
            mean,
            stderr: (var / n).sqrt(),
        }
    }
}

/// The decomposition: SW₂² of each stage, the contributions and the interaction.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct Decomposition {
    /// SW₂² of n exact draws of p₀ to p₀ (the statistic's noise floor).
    pub floor: Estimate,
    /// The full run.
    pub full: Estimate,
    /// After removing the sources in [`Source::ALL`] order, cumulatively.
    pub chain: Vec<(Source, Estimate)>,
    /// What each source removes in the chain (paired differences): they sum to
    /// `full − chain.last()`.
    pub contributions: Vec<(Source, Estimate)>,
    /// What each source removes alone from the full run.
    pub alone: Vec<(Source, Estimate)>,
    /// Σ alone − Σ contributions (paired): 0 when the sources act independently.
    pub interaction: Estimate,
}

/// Quantiles F⁻¹((i − ½)/n), i = 1…n, of the projection of `law` on each direction (one row
/// per direction): the 1-D mixture of N(θ·μ_k, θᵀΣ_kθ), inverted by bisection.
pub fn projected_quantiles(law: &GaussianMixture, dirs: ArrayView2<f64>, n: usize) -> Array2<f64> {
    use rayon::prelude::*;
    let d = law.dim();
    let mut out = Array2::<f64>::zeros((dirs.nrows(), n));
    let covs: Vec<Array2<f64>> = law.covariances().iter().map(|c| c.matrix(d)).collect();
    out.axis_iter_mut(ndarray::Axis(0))
        .into_par_iter()
        .zip(dirs.axis_iter(ndarray::Axis(0)).into_par_iter())
        .for_each(|(mut q, th)| {
            let comps: Vec<(f64, f64, f64)> = (0..law.n_components())
                .map(|k| {
                    let m = th.dot(&law.means().row(k));
                    let s = th.dot(&covs[k].dot(&th)).sqrt();
                    (law.weights()[k], m, s)
                })
                .collect();
            let cdf = |x: f64| crate::stats::ks::mixture_cdf(&comps, x);
            let lo0 = comps
                .iter()
                .map(|c| c.1 - 12.0 * c.2)
                .fold(f64::INFINITY, f64::min);
            let hi0 = comps
                .iter()
                .map(|c| c.1 + 12.0 * c.2)
                .fold(f64::NEG_INFINITY, f64::max);
            let mut lo = lo0;
            for (i, qi) in q.iter_mut().enumerate() {
                let u = (i as f64 + 0.5) / n as f64;
                // Quantiles increase with i: each search starts at the previous one.
                let mut hi = hi0;
                for _ in 0..64 {
                    let mid = 0.5 * (lo + hi);
                    if cdf(mid) < u {
                        lo = mid;
                    } else {
                        hi = mid;
                    }
                    if hi - lo <= 1e-13 * (1.0 + mid.abs()) {
                        break;
                    }
                }
                *qi = 0.5 * (lo + hi);
            }
        });
    out
}

/// SW₂² between a sample and the law whose [`projected_quantiles`] (for `n` = the sample size)
/// are given, over the same directions.
pub fn sliced_w2_to_law(
    x: ArrayView2<f64>,
    dirs: ArrayView2<f64>,
    quantiles: ArrayView2<f64>,
) -> f64 {
    let p = x.dot(&dirs.t());
    let n = x.nrows() as f64;
    let mut total = 0.0;
    for (j, q) in quantiles.rows().into_iter().enumerate() {
        let mut v = p.column(j).to_vec();
        v.sort_by(f64::total_cmp);
        total += v.iter().zip(q).map(|(a, b)| (a - b).powi(2)).sum::<f64>() / n;
    }
    total / dirs.nrows() as f64
}

/// The sliced W₂² between two equal-size samples over the given unit directions (rows).
pub fn sliced_w2(a: ArrayView2<f64>, b: ArrayView2<f64>, dirs: ArrayView2<f64>) -> f64 {
    assert_eq!(a.nrows(), b.nrows(), "equal sample sizes");
    let pa = a.dot(&dirs.t());
    let pb = b.dot(&dirs.t());
    let mut total = 0.0;
    for j in 0..dirs.nrows() {
        let mut x = pa.column(j).to_vec();
        let mut y = pb.column(j).to_vec();
        x.sort_by(f64::total_cmp);
        y.sort_by(f64::total_cmp);
        total += x.iter().zip(&y).map(|(u, v)| (u - v).powi(2)).sum::<f64>() / x.len() as f64;
    }
    total / dirs.nrows() as f64
}

/// `k` random unit directions in ℝᵈ (rows), keyed by `seed`.
pub fn directions(k: usize, d: usize, seed: u64) -> Array2<f64> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ DIRECTIONS);
    let mut m = Array2::<f64>::from_shape_fn((k, d), |_| StandardNormal.sample(&mut rng));
    for mut r in m.rows_mut() {
        let norm = r.dot(&r).sqrt();
        r /= norm;
    }
    m
}

/// Exact draws of the data diffused to `t`: m x₀ + s z.
pub fn diffused_draws(
    data: &GaussianMixture,
    model: &Model,
    t: f64,
    n: usize,
    seed: u64,
) -> Array2<f64> {
    let k = model.sde().marginal(t);
    let x0 = data.sample(n, seed, crate::data::REFERENCE_DOMAIN).0;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ TARGET);
    x0.mapv(|v| {
        let z: f64 = StandardNormal.sample(&mut rng);
        k.mean * v + k.std * z
    })
}

/// One seed's distances: the chain's stages (full first) and the one-at-a-time runs.
type PerSeed = (Vec<f64>, Vec<f64>);

/// Which sources are replaced by their exact versions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
struct Replaced([bool; 4]);

impl Replaced {
    fn with(self, s: Source) -> Self {
        let mut r = self;
        r.0[s as usize] = true;
        r
    }
    fn has(self, s: Source) -> bool {
        self.0[s as usize]
    }
}

/// Decomposes the error of `model` sampled by `spec.sampler` against `data`, with `exact` the
/// exact field of `data` on the model's path. One-line errors for a model on another path than
/// `exact`, a dimension mismatch, fewer than 2 seeds, or no samples.
pub fn decompose(
    model: &Model,
    exact: &Model,
    data: &GaussianMixture,
    spec: &DecomposeSpec,
) -> Result<Decomposition> {
    let runs = [(spec.sampler.clone(), spec.steps)];
    Ok(decompose_all(model, exact, data, spec, &runs)?.remove(0))
}

/// [`decompose`] for several (sampler, steps) at once: the runs that do not depend on the
/// sampler (the reference integrator's, with or without the exact score and start) and the
/// targets are computed once per seed and shared. `spec.sampler` and `spec.steps` are unused.
pub fn decompose_all(
    model: &Model,
    exact: &Model,
    data: &GaussianMixture,
    spec: &DecomposeSpec,
    samplers: &[(Sampler, usize)],
) -> Result<Vec<Decomposition>> {
    if !crate::sde::same_sde(model.sde().as_ref(), exact.sde().as_ref()) {
        return Err(invalid!(
            "the model ({}) and the exact field ({}) must share a path",
            model.sde().name(),
            exact.sde().name()
        ));
    }
    if model.dim() != data.dim() || exact.dim() != data.dim() {
        return Err(invalid!(
            "the model has dimension {} but the data {}",
            model.dim(),
            data.dim()
        ));
    }
    if spec.seeds < 2 || spec.n < 2 || spec.projections == 0 {
        return Err(invalid!(
            "a decomposition needs ≥ 2 seeds, ≥ 2 samples and ≥ 1 direction (got {}, {}, {})",
            spec.seeds,
            spec.n,
            spec.projections
        ));
    }
    let sde = model.sde();
    let eps = spec.eps.unwrap_or(sde.default_eps());
    let d = data.dim();
    let mut chain_sets = vec![Replaced::default()];
    for s in Source::ALL {
        let last = *chain_sets.last().expect("nonempty");
        chain_sets.push(last.with(s));
    }
    let alone_sets: Vec<Replaced> = Source::ALL
        .iter()
        .map(|&s| Replaced::default().with(s))
        .collect();
    let laws = [
        data.diffused_mixture(sde.marginal(0.0))?,
        data.diffused_mixture(sde.marginal(eps))?,
    ];
    let mut floor = Vec::new();
    let mut per_seed: Vec<Vec<PerSeed>> = vec![Vec::new(); samplers.len()];
    for k in 0..spec.seeds {
        let seed = spec.seed + k as u64;
        let dirs = directions(spec.projections, d, seed);
        // The target laws p₀ and p_ε, as their projected quantiles.
        let targets = [
            projected_quantiles(&laws[0], dirs.view(), spec.n),
            projected_quantiles(&laws[1], dirs.view(), spec.n),
        ];
        let other = diffused_draws(data, exact, 0.0, spec.n, seed ^ 0x0f1005);
        floor.push(sliced_w2_to_law(
            other.view(),
            dirs.view(),
            targets[0].view(),
        ));
        // Common random numbers: the prior draws and the exact start share their Gaussian
        // noise (x_T = m_T x₀ + s_T z with the prior's z), so what the exact start changes is
        // the start's law alone, not its sampling noise.
        let prior = sde.prior_sample(spec.n, d, seed);
        let start_exact = {
            let k = sde.marginal(sde.t_max());
            let x0 = data
                .sample(spec.n, seed ^ START, crate::data::REFERENCE_DOMAIN)
                .0;
            x0 * k.mean + &prior * (k.std / sde.prior_std())
        };
        // Runs keyed by (exact start, reference integrator, exact score) and the sampler's
        // index (none for the reference integrator).
        type Key = ([bool; 3], Option<usize>);
        let mut cache: std::collections::HashMap<Key, Array2<f64>> = Default::default();
        let mut dist = |r: Replaced, which: usize| -> Result<f64> {
            // Truncation changes the target only: the samples depend on the other three.
            let flags = [
                r.has(Source::Initialisation),
                r.has(Source::Discretisation),
                r.has(Source::Score),
            ];
            let key = (flags, (!flags[1]).then_some(which));
            let x = match cache.entry(key) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => {
                    let m = if flags[2] { exact } else { model };
                    let (sampler, steps) = if flags[1] {
                        (spec.reference.clone(), 1)
                    } else {
                        samplers[which].clone()
                    };
                    let run_spec = SampleSpec {
                        sampler,
                        steps,
                        eps: Some(eps),
                        n: spec.n,
                        seed,
                        denoise: Some(false),
                        ..Default::default()
                    };
                    let start = if flags[0] { &start_exact } else { &prior };
                    v.insert(m.integrate(start.clone(), &run_spec, None)?.x)
                }
            };
            let target = &targets[usize::from(r.has(Source::Truncation))];
            Ok(sliced_w2_to_law(x.view(), dirs.view(), target.view()))
        };
        for (which, out) in per_seed.iter_mut().enumerate() {
            let chain: Vec<f64> = chain_sets
                .iter()
                .map(|&r| dist(r, which))
                .collect::<Result<_>>()?;
            let alone: Vec<f64> = alone_sets
                .iter()
                .map(|&r| dist(r, which))
                .collect::<Result<_>>()?;
            out.push((chain, alone));
        }
    }
    let floor = Estimate::of(&floor);
    Ok(per_seed.iter().map(|p| summarise(p, floor)).collect())
}

/// The estimates of one (sampler, steps) from its per-seed distances.
fn summarise(per_seed: &[PerSeed], floor: Estimate) -> Decomposition {
    let column = |f: &dyn Fn(&PerSeed) -> f64| -> Estimate {
        Estimate::of(&per_seed.iter().map(f).collect::<Vec<_>>())
    };
    let full = column(&|s| s.0[0]);
    let chain = Source::ALL
        .iter()
        .enumerate()
        .map(|(i, &s)| (s, column(&|p| p.0[i + 1])))
        .collect();
    let contributions = Source::ALL
        .iter()
        .enumerate()
        .map(|(i, &s)| (s, column(&|p| p.0[i] - p.0[i + 1])))
        .collect();
    let alone = Source::ALL
        .iter()
        .enumerate()
        .map(|(i, &s)| (s, column(&|p| p.0[0] - p.1[i])))
        .collect();
    let interaction = column(&|p| {
        let alone: f64 = p.1.iter().map(|a| p.0[0] - a).sum();
        alone - (p.0[0] - p.0[4])
    });
    Decomposition {
        floor,
        full,
        chain,
        contributions,
        alone,
        interaction,
    }
}

/// The affine map x_T ↦ A x_T + b of a deterministic sampler with a linear field, read off by
/// running it on 0 and the unit vectors; one-line error when two runs from the same start
/// differ (a stochastic sampler).
pub fn affine_map(model: &Model, spec: &SampleSpec) -> Result<(Array2<f64>, Array1<f64>)> {
    let d = model.dim();
    let mut starts = Array2::<f64>::zeros((d + 2, d));
    for j in 0..d {
        starts[[j + 1, j]] = 1.0;
    }
    let out = model.integrate(starts, spec, None)?.x;
    if (&out.row(0) - &out.row(d + 1))
        .iter()
        .any(|v| v.abs() > 1e-12)
    {
        return Err(invalid!(
            "the sampler {} is stochastic: it has no affine map",
            spec.sampler.name()
        ));
    }
    let b = out.row(0).to_owned();
    let a = Array2::from_shape_fn((d, d), |(i, j)| out[[j + 1, i]] - b[i]);
    Ok((a, b))
}

/// SW₂² between N(μ₁, Σ₁) and N(μ₂, Σ₂) over the given directions: per direction θ,
/// (θ·(μ₁ − μ₂))² + (√θᵀΣ₁θ − √θᵀΣ₂θ)².
pub fn gaussian_sliced_w2(
    m1: ArrayView1<f64>,
    c1: ArrayView2<f64>,
    m2: ArrayView1<f64>,
    c2: ArrayView2<f64>,
    dirs: ArrayView2<f64>,
) -> f64 {
    let mut total = 0.0;
    for th in dirs.rows() {
        let dm = th.dot(&(&m1 - &m2));
        let s1 = th.dot(&c1.dot(&th)).sqrt();
        let s2 = th.dot(&c2.dot(&th)).sqrt();
        total += dm * dm + (s1 - s2).powi(2);
    }
    total / dirs.nrows() as f64
}
