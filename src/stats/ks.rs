//! One-sample Kolmogorov–Smirnov test against an exact CDF.

use statrs::function::erf::erfc;

/// Φ(z), the standard normal CDF.
pub fn normal_cdf(z: f64) -> f64 {
    0.5 * erfc(-z / std::f64::consts::SQRT_2)
}

/// CDF of a 1D Gaussian mixture given as `(weight, mean, std)` components.
pub fn mixture_cdf(components: &[(f64, f64, f64)], x: f64) -> f64 {
    components
        .iter()
        .map(|&(w, m, s)| w * normal_cdf((x - m) / s))
        .sum()
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
