//! Adaptive explicit Runge–Kutta with an embedded error estimate and FSAL (Dormand–Prince 5(4)
//! is [`crate::DOPRI5`]), per-particle step size (Hairer, Nørsett & Wanner, *Solving ODEs I*,
//! §II.4–II.5). Each particle has its own time and step size; the batch is evaluated together,
//! one stage at a time, over the particles that are still running.

use crate::{run_chunks, OdeSystem, Solution, SolveError, SolveOptions, Stats, Tableau, Time};
use ndarray::{Array2, ArrayViewMut2};

/// Error tolerances and limits of adaptive stepping.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerances {
    pub rtol: f64,
    pub atol: f64,
    /// Maximum accepted + rejected steps per particle.
    pub max_steps: u64,
}

impl Tolerances {
    pub fn new(rtol: f64, atol: f64) -> Self {
        Self {
            rtol,
            atol,
            max_steps: 100_000,
        }
    }
}

/// RMS norm of `v / (atol + rtol·max(|a|, |b|))`.
fn scaled_norm(v: &[f64], a: &[f64], b: &[f64], tol: &Tolerances) -> f64 {
    let s: f64 = v
        .iter()
        .zip(a.iter().zip(b))
        .map(|(&v, (&a, &b))| {
            let sc = tol.atol + tol.rtol * a.abs().max(b.abs());
            (v / sc) * (v / sc)
        })
        .sum();
    (s / v.len() as f64).sqrt()
}

/// Integrates `dx/dt = F(x, t)` from `t0` to `t1` (either direction) with the embedded FSAL
/// tableau `tab`.
///
/// Step sizes are controlled per particle, so a particle's path does not depend on the others.
/// Record times must lie between `t0` and `t1`, in integration order; steps are shortened to
/// land on them exactly. `stats.evals` counts every right-hand-side row evaluation, including
/// the two used to choose each particle's initial step.
pub(crate) fn rk_adaptive<S>(
    sys: &S,
    tab: &Tableau,
    x0: Array2<f64>,
    t0: f64,
    t1: f64,
    tol: Tolerances,
    opts: &SolveOptions<'_>,
) -> Result<Solution, SolveError>
where
    S: OdeSystem + ?Sized,
{
    let Some(err) = tab.err.filter(|_| tab.fsal) else {
        return Err(SolveError::Invalid(format!(
            "adaptive steps need a tableau with embedded error weights and FSAL; {} has not",
            tab.name
        )));
    };
    if !(tol.rtol > 0.0 && tol.atol > 0.0 && tol.rtol.is_finite() && tol.atol.is_finite()) {
        return Err(SolveError::Invalid(format!(
            "tolerances must be positive and finite (rtol = {}, atol = {})",
            tol.rtol, tol.atol
        )));
    }
    if !(t0.is_finite() && t1.is_finite()) || t0 == t1 {
        return Err(SolveError::Invalid(format!(
            "invalid integration interval [{t0}, {t1}]"
        )));
    }
    let dir = (t1 - t0).signum();
    let rec = &opts.record;
    let ordered = rec.windows(2).all(|w| (w[1] - w[0]) * dir >= 0.0);
    if !ordered
        || rec
            .iter()
            .any(|&r| (r - t0) * dir < 0.0 || (r - t1) * dir > 0.0)
    {
        return Err(SolveError::Invalid(
            "record times must lie in the integration interval, in integration order".into(),
        ));
    }
    run_chunks(x0, opts, rec, |row0, x| {
        chunk(sys, tab, err, x, row0, (t0, t1, dir), tol, rec)
    })
}

#[allow(clippy::too_many_arguments)]
fn chunk<S: OdeSystem + ?Sized>(
    sys: &S,
    tab: &Tableau,
    err_w: &[f64],
    mut x: ArrayViewMut2<f64>,
    row0: usize,
    (t0, t1, dir): (f64, f64, f64),
    tol: Tolerances,
    rec: &[f64],
) -> Result<(Stats, Vec<Array2<f64>>), SolveError> {
    let (n, d) = x.dim();
    let stages = tab.stages();
    let inv_order = 1.0 / tab.order as f64;
    let mut stats = Stats {
        particles: n as u64,
        ..Stats::default()
    };
    let mut records: Vec<Array2<f64>> = rec.iter().map(|_| Array2::zeros((n, d))).collect();
    let mut next_rec = vec![0usize; n];
    // Records at t0 are taken before the first step.
    for (r, &tr) in rec.iter().enumerate() {
        if tr == t0 {
            records[r].assign(&x);
            next_rec.iter_mut().for_each(|k| *k = r + 1);
        }
    }
    let mut t = vec![t0; n];
    let mut steps = vec![0u64; n];

    // FSAL derivative at the current state, and Hairer's initial step-size heuristic.
    let mut k1 = Array2::zeros((n, d));
    sys.rhs(Time::Shared(t0), x.view(), k1.view_mut());
    let mut y1 = Array2::zeros((n, d));
    let mut h0 = vec![0.0; n];
    for i in 0..n {
        let (xr, fr) = (x.row(i), k1.row(i));
        let d0 = scaled_norm(
            xr.as_slice().unwrap(),
            xr.as_slice().unwrap(),
            xr.as_slice().unwrap(),
            &tol,
        );
        let d1 = scaled_norm(
            fr.as_slice().unwrap(),
            xr.as_slice().unwrap(),
            xr.as_slice().unwrap(),
            &tol,
        );
        let h = if d0 < 1e-5 || d1 < 1e-5 {
            1e-6
        } else {
            0.01 * d0 / d1
        };
        h0[i] = h.min((t1 - t0).abs());
        for j in 0..d {
            y1[[i, j]] = x[[i, j]] + dir * h0[i] * k1[[i, j]];
        }
    }
    let t_probe: Vec<f64> = h0.iter().map(|h| t0 + dir * h).collect();
    let mut f1 = Array2::zeros((n, d));
    sys.rhs(Time::PerRow(&t_probe), y1.view(), f1.view_mut());
    stats.evals += 2 * n as u64;
    let mut h: Vec<f64> = (0..n)
        .map(|i| {
            let xr = x.row(i);
            let xs = xr.as_slice().unwrap();
            let d1 = scaled_norm(k1.row(i).as_slice().unwrap(), xs, xs, &tol);
            let diff: Vec<f64> = (0..d).map(|j| f1[[i, j]] - k1[[i, j]]).collect();
            let d2 = scaled_norm(&diff, xs, xs, &tol) / h0[i];
            let m = d1.max(d2);
            let h1 = if m <= 1e-15 {
                (h0[i] * 1e-3).max(1e-6)
            } else {
                (0.01 / m).powf(inv_order)
            };
            dir * (100.0 * h0[i]).min(h1)
        })
        .collect();

    let mut active: Vec<usize> = (0..n).collect();
    while !active.is_empty() {
        let na = active.len();
        // Gather the running particles and the step each will try.
        let mut xa = Array2::zeros((na, d));
        let mut ka: Vec<Array2<f64>> = (0..stages).map(|_| Array2::zeros((na, d))).collect();
        let mut ta = vec![0.0; na];
        let mut ha = vec![0.0; na];
        let mut clipped = vec![false; na];
        for (a, &i) in active.iter().enumerate() {
            xa.row_mut(a).assign(&x.row(i));
            ka[0].row_mut(a).assign(&k1.row(i));
            let target = rec.get(next_rec[i]).copied().unwrap_or(t1);
            ta[a] = t[i];
            ha[a] = h[i];
            if (t[i] + h[i] - target) * dir >= 0.0 {
                ha[a] = target - t[i];
                clipped[a] = true;
            }
        }
        let mut ys = Array2::zeros((na, d));
        let mut ts = vec![0.0; na];
        for s in 1..stages {
            for a in 0..na {
                ts[a] = ta[a] + tab.c[s] * ha[a];
                for j in 0..d {
                    let mut acc = 0.0;
                    for (q, k) in ka.iter().enumerate().take(s) {
                        acc += tab.a[s][q] * k[[a, j]];
                    }
                    ys[[a, j]] = xa[[a, j]] + ha[a] * acc;
                }
            }
            sys.rhs(Time::PerRow(&ts), ys.view(), ka[s].view_mut());
        }
        stats.evals += (stages - 1) as u64 * na as u64;
        // After the last stage, `ys` holds the solution and its derivative is the last stage
        // (FSAL).
        let mut still = Vec::with_capacity(na);
        for (a, &i) in active.iter().enumerate() {
            steps[i] += 1;
            if steps[i] > tol.max_steps {
                return Err(SolveError::StepFailure {
                    row: row0 + i,
                    t: t[i],
                    reason: format!("more than {} steps", tol.max_steps),
                });
            }
            let err: Vec<f64> = (0..d)
                .map(|j| ha[a] * (0..stages).map(|q| err_w[q] * ka[q][[a, j]]).sum::<f64>())
                .collect();
            let y_new = ys.row(a);
            let norm = scaled_norm(
                &err,
                xa.row(a).as_slice().unwrap(),
                y_new.as_slice().unwrap(),
                &tol,
            );
            let accept = norm <= 1.0 && y_new.iter().all(|v| v.is_finite());
            let fac = if norm.is_finite() {
                0.9 * norm.max(1e-10).powf(-inv_order)
            } else {
                0.2
            };
            if accept {
                stats.accepted += 1;
                x.row_mut(i).assign(&y_new);
                k1.row_mut(i).assign(&ka[stages - 1].row(a));
                if clipped[a] {
                    t[i] = rec.get(next_rec[i]).copied().unwrap_or(t1);
                    // Several record times may coincide.
                    while let Some(&tr) = rec.get(next_rec[i]) {
                        if tr != t[i] {
                            break;
                        }
                        records[next_rec[i]].row_mut(i).assign(&x.row(i));
                        next_rec[i] += 1;
                    }
                } else {
                    t[i] += ha[a];
                }
                // Keep the untruncated step proposal when a step was only clipped to a target.
                h[i] = if clipped[a] {
                    h[i]
                } else {
                    ha[a] * fac.clamp(0.2, 5.0)
                };
                if t[i] != t1 {
                    still.push(i);
                }
            } else {
                stats.rejected += 1;
                h[i] = ha[a] * fac.clamp(0.2, 1.0);
                if h[i].abs() <= 1e-14 * t[i].abs().max(1.0) {
                    return Err(SolveError::StepFailure {
                        row: row0 + i,
                        t: t[i],
                        reason:
                            "step size underflow (the state may be non-finite or the problem stiff)"
                                .into(),
                    });
                }
                still.push(i);
            }
        }
        active = still;
    }
    Ok((stats, records))
}
