//! One-sample Kolmogorov–Smirnov test against an exact CDF.

use statrs::function::erf::erfc;

/// Φ(z), the standard normal CDF.
pub fn normal_cdf(z: f64) -> f64 {
    0.5 * erfc(-z / std::f64::consts::SQRT_2)
}

/// CDF of a 1D Gaussian mixture given as `(weight, mean, std)` components: the sum
/// `Σ_k w_k Φ((x − m_k)/s_k)` in component order, bit for bit, without the `erfc` calls whose
/// outcome is known. Φ(z) is exactly 1 once `−z/√2 ≤ −6` (`erfc` is `2 − erfc(6…)` there, and
/// `erfc(6) ≈ 2.2e-17` is below half a unit in the last place of 2); a term of Φ below 1e-33
/// (`−z/√2 ≥ 8.6`: `erfc(8.6)/2 ≈ 2.5e-34`) leaves a partial sum above `1e-16 w` unchanged,
/// being under half its unit in the last place.
pub fn mixture_cdf(components: &[(f64, f64, f64)], x: f64) -> f64 {
    /// A partial sum above this multiple of w absorbs a lower-tail term whole.
    const ABSORBS: f64 = 1e-16;
    let mut sum: f64 = std::iter::empty::<f64>().sum();
    for &(w, m, s) in components {
        let z = (x - m) / s;
        let arg = -z / std::f64::consts::SQRT_2;
        let term = if arg <= -6.0 {
            w * 1.0
        } else if arg >= 8.6 && sum > w * ABSORBS {
            continue;
        } else {
            w * normal_cdf(z)
        };
        sum += term;
    }
    sum
}

/// Kolmogorov's survival function `Q(λ) = 2 Σ_{j≥1} (−1)^{j−1} e^{−2 j² λ²}`, with the
/// Jacobi-theta form `1 − √(2π)/λ Σ e^{−(2j−1)² π² / (8λ²)}` for small λ.
pub fn kolmogorov_sf(lambda: f64) -> f64 {
    if lambda <= 0.0 {
        return 1.0;
    }
    if lambda < 1.18 {
        let c = -std::f64::consts::PI.powi(2) / (8.0 * lambda * lambda);
        let s: f64 = (1..=8)
            .map(|j| ((2 * j - 1) as f64).powi(2) * c)
            .map(f64::exp)
            .sum();
        (1.0 - (2.0 * std::f64::consts::PI).sqrt() / lambda * s).clamp(0.0, 1.0)
    } else {
        let s: f64 = (1..=8)
            .map(|j| {
                let sign = if j % 2 == 1 { 1.0 } else { -1.0 };
                sign * (-2.0 * (j * j) as f64 * lambda * lambda).exp()
            })
            .sum();
        (2.0 * s).clamp(0.0, 1.0)
    }
}

/// KS statistic `D = sup |F_n − F|` and its asymptotic p-value with Stephens' small-sample
/// correction `λ = (√n + 0.12 + 0.11/√n) D` (Numerical Recipes §14.3).
pub fn ks_test(sample: &[f64], cdf: impl Fn(f64) -> f64) -> (f64, f64) {
    let mut x: Vec<f64> = sample.to_vec();
    x.sort_by(f64::total_cmp);
    let n = x.len() as f64;
    let d = x.iter().enumerate().fold(0.0f64, |d, (i, &v)| {
        let f = cdf(v);
        d.max((f - i as f64 / n).abs())
            .max(((i + 1) as f64 / n - f).abs())
    });
    let sn = n.sqrt();
    (d, kolmogorov_sf((sn + 0.12 + 0.11 / sn) * d))
}

/// Two-sample KS: `D = sup |F_a − F_b|` with the asymptotic p-value at the effective size
/// `n_e = n_a n_b / (n_a + n_b)` (Numerical Recipes §14.3).
pub fn ks_two_sample(a: &[f64], b: &[f64]) -> (f64, f64) {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j, mut d) = (0usize, 0usize, 0.0f64);
    while i < a.len() && j < b.len() {
        let v = a[i].min(b[j]);
        while i < a.len() && a[i] <= v {
            i += 1;
        }
        while j < b.len() && b[j] <= v {
            j += 1;
        }
        d = d.max((i as f64 / na - j as f64 / nb).abs());
    }
    let ne = (na * nb / (na + nb)).sqrt();
    (d, kolmogorov_sf((ne + 0.12 + 0.11 / ne) * d))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn mixture_cdf_equals_the_plain_sum_bitwise() {
        let plain = |c: &[(f64, f64, f64)], x: f64| -> f64 {
            c.iter().map(|&(w, m, s)| w * normal_cdf((x - m) / s)).sum()
        };
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(11);
        let mut shortcuts = 0;
        for _ in 0..2000 {
            let k = rng.random_range(1..12);
            let c: Vec<(f64, f64, f64)> = (0..k)
                .map(|_| {
                    let s = 10f64.powf(rng.random_range(-3.0..0.5));
                    (rng.random_range(0.0..1.0), rng.random_range(-3.0..3.0), s)
                })
                .collect();
            for _ in 0..50 {
                let x = rng.random_range(-4.0..4.0);
                let got = mixture_cdf(&c, x);
                assert_eq!(got.to_bits(), plain(&c, x).to_bits(), "{c:?} at {x}");
                shortcuts += c
                    .iter()
                    .filter(|&&(_, m, s)| ((x - m) / s).abs() > 8.5)
                    .count();
            }
        }
        assert!(
            shortcuts > 100_000,
            "the shortcuts were exercised: {shortcuts}"
        );
        // Where the upper shortcut starts, Φ is 1.
        for i in 0..100_000 {
            let z = 6.0 * std::f64::consts::SQRT_2 * (1.0 + i as f64 * 1e-5);
            if -z / std::f64::consts::SQRT_2 <= -6.0 {
                assert_eq!(normal_cdf(z), 1.0, "z = {z}");
            }
        }
    }
}
