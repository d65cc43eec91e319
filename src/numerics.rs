//! Small numerical kernels shared by the hot loops.

/// Rows per parallel block, wherever a batch is split over threads (network kernel, score
/// evaluation, noise draws): each block is computed alone and blocks are combined in a fixed
/// order, so results do not depend on the thread count. A 256 × 256 f32 activation is
/// 256 KiB, half a core's L2.
pub const BLOCK: usize = 256;

/// `e^x` for `x ≤ 0`, written so that loops over it vectorise (no libm call).
///
/// Cody–Waite reduction `x = n ln2 + r`, |r| ≤ ln2/2, and the degree-12 Taylor polynomial of
/// `e^r` (truncation error < 2e-16 relative); `2^n` is built from the exponent bits.
/// Inputs below −708 are clamped there (`e^{−708}` ≈ 3e-308): branch-free, so that a loop over
/// it vectorises; as a softmax weight next to the maximum's e⁰ = 1 such a value is nil.
#[inline(always)]
pub fn exp_nonpos(x: f64) -> f64 {
    const LOG2E: f64 = std::f64::consts::LOG2_E;
    const LN2_HI: f64 = 0.6931471803691238;
    const LN2_LO: f64 = 1.9082149292705877e-10;
    const SHIFT: f64 = 6_755_399_441_055_744.0; // 1.5 · 2^52: adding it rounds to an integer
    let xc = x.max(-708.0);
    let t = xc * LOG2E + SHIFT;
    let n = t - SHIFT;
    let ni = (t.to_bits() as i64).wrapping_sub(SHIFT.to_bits() as i64);
    let r = (xc - n * LN2_HI) - n * LN2_LO;
    // Horner form of Σ_{k=0}^{12} r^k / k!.
    let mut p: f64 = 1.0 / 479_001_600.0;
    p = p.mul_add(r, 1.0 / 39_916_800.0);
    p = p.mul_add(r, 1.0 / 3_628_800.0);
    p = p.mul_add(r, 1.0 / 362_880.0);
    p = p.mul_add(r, 1.0 / 40_320.0);
    p = p.mul_add(r, 1.0 / 5_040.0);
    p = p.mul_add(r, 1.0 / 720.0);
    p = p.mul_add(r, 1.0 / 120.0);
    p = p.mul_add(r, 1.0 / 24.0);
    p = p.mul_add(r, 1.0 / 6.0);
    p = p.mul_add(r, 0.5);
    p = p.mul_add(r, 1.0);
    p = p.mul_add(r, 1.0);
    p * f64::from_bits(((ni + 1023) as u64) << 52)
}

/// [`exp_nonpos`] applied to each of 8 lanes (a loop that vectorises).
#[inline(always)]
pub fn exp_nonpos_lanes(v: &mut [f64; 8]) {
    for x in v.iter_mut() {
        *x = exp_nonpos(*x);
    }
}

/// `e^x` in f32 for `x ≤ 0`, branch-free so that loops over it vectorise.
///
/// Cody–Waite reduction `x = n ln2 + r`, |r| ≤ ln2/2, and the degree-7 Taylor polynomial of
/// `e^r` (truncation error < 1.3e-8 relative, below f32 rounding); inputs below −87 are
/// clamped there (e^{−87} ≈ 1.6e-38, the smallest normal f32 is 1.2e-38).
#[inline(always)]
pub fn exp_nonpos_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    const SHIFT: f32 = 12_582_912.0; // 1.5 · 2^23: adding it rounds to an integer
    let xc = x.max(-87.0);
    let t = xc * LOG2E + SHIFT;
    let n = t - SHIFT;
    let ni = (t.to_bits() as i32).wrapping_sub(SHIFT.to_bits() as i32);
    let r = (xc - n * LN2_HI) - n * LN2_LO;
    let mut p: f32 = 1.0 / 5040.0;
    p = p.mul_add(r, 1.0 / 720.0);
    p = p.mul_add(r, 1.0 / 120.0);
    p = p.mul_add(r, 1.0 / 24.0);
    p = p.mul_add(r, 1.0 / 6.0);
    p = p.mul_add(r, 0.5);
    p = p.mul_add(r, 1.0);
    p = p.mul_add(r, 1.0);
    p * f32::from_bits(((ni + 127) as u32) << 23)
}

/// The logistic sigmoid `σ(x) = 1 / (1 + e^{−x})` in f32, stable for all x (uses e^{−|x|}).
#[inline(always)]
pub fn sigmoid_f32(x: f32) -> f32 {
    let e = exp_nonpos_f32(-x.abs());
    let r = 1.0 / (1.0 + e);
    if x >= 0.0 {
        r
    } else {
        e * r
    }
}

/// SiLU (swish) `x σ(x)` (Elfwing et al. 2018; Ramachandran et al. 2017) in f32.
#[inline(always)]
pub fn silu_f32(x: f32) -> f32 {
    x * sigmoid_f32(x)
}

/// The derivative of SiLU: `σ(x) (1 + x (1 − σ(x)))`.
#[inline(always)]
pub fn silu_grad_f32(x: f32) -> f32 {
    let s = sigmoid_f32(x);
    s * (1.0 + x * (1.0 - s))
}

/// `(sin x, cos x)` for |x| ≤ 1e6 without libm: `x = k π/2 + r` (Cody–Waite with π/2 split in
/// three parts), |r| ≤ π/4, Taylor polynomials of degree 15 / 16 (truncation < 1e-17), and the
/// quadrant k mod 4. Branch-free, so loops over it vectorise; absolute error below 1e-15 over
/// that range (tested against libm). The input encodings of the networks use it (an f32 network
/// input needs no more), where `sin_cos` dominated the cost of a training batch.
#[inline(always)]
pub fn sin_cos_fast(x: f64) -> (f64, f64) {
    let (k, sin_r, cos_r) = sin_cos_reduced(x);
    // The quadrant k mod 4 in f64 (exact for |k| < 2^50), and the identities
    // sin(kπ/2 + r), cos(kπ/2 + r) as selects and sign flips, so that the loops vectorise.
    let q = k - 4.0 * (k * 0.25).floor();
    let swap = q == 1.0 || q == 3.0;
    let (s0, c0) = if swap { (cos_r, sin_r) } else { (sin_r, cos_r) };
    let s = if q >= 2.0 { -s0 } else { s0 };
    let c = if q == 1.0 || q == 2.0 { -c0 } else { c0 };
    (s, c)
}

const TWO_OVER_PI: f64 = std::f64::consts::FRAC_2_PI;
const P1: f64 = 1.570_796_326_734_125_6; // π/2 split: P1 + P2 + P3
const P2: f64 = 6.077_100_506_303_966e-11;
const P3: f64 = 2.022_266_248_795_950_7e-21;
/// Taylor coefficients of `(r − sin r)/r³` in r², from 1/15! (Horner order).
const SIN_COEFFS: [f64; 7] = [
    1.0 / 1_307_674_368_000.0,
    -1.0 / 6_227_020_800.0,
    1.0 / 39_916_800.0,
    -1.0 / 362_880.0,
    1.0 / 5_040.0,
    -1.0 / 120.0,
    1.0 / 6.0,
];
/// Taylor coefficients of `(cos r − 1)/r²` in r², from 1/16! (Horner order).
const COS_COEFFS: [f64; 8] = [
    1.0 / 20_922_789_888_000.0,
    -1.0 / 87_178_291_200.0,
    1.0 / 479_001_600.0,
    -1.0 / 3_628_800.0,
    1.0 / 40_320.0,
    -1.0 / 720.0,
    1.0 / 24.0,
    -0.5,
];

/// `(k, sin r, cos r)` with `x = k π/2 + r`, |r| ≤ π/4 (see [`sin_cos_fast`]).
#[inline(always)]
fn sin_cos_reduced(x: f64) -> (f64, f64, f64) {
    let k = (x * TWO_OVER_PI).round();
    let r = ((x - k * P1) - k * P2) - k * P3;
    let r2 = r * r;
    let mut s = SIN_COEFFS[0];
    for c in &SIN_COEFFS[1..] {
        s = s * r2 + c;
    }
    let sin_r = r - r * r2 * s;
    let mut c = COS_COEFFS[0];
    for a in &COS_COEFFS[1..] {
        c = c * r2 + a;
    }
    let cos_r = 1.0 + r2 * c;
    (k, sin_r, cos_r)
}

/// Whether the hand-written AVX-512 kernels (mixture score, sin/cos, permutation block sums)
/// run: the CPU has AVX-512F and `SCORESDE_PORTABLE_SIMD` is not set (set it to time or check
/// the portable loops, which give the same bits, on the same machine).
#[cfg(target_arch = "x86_64")]
pub(crate) fn avx512() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::env::var_os("SCORESDE_PORTABLE_SIMD").is_none()
    })
}

/// `sin[i], cos[i] = sin_cos_fast(phase[i])` rounded to f32, over slices of equal length:
/// eight phases per AVX-512 register where the CPU has it (the same operations, so the same
/// bits), else one flat loop that the compiler vectorises.
pub fn sin_cos_f32(phase: &[f64], sin: &mut [f32], cos: &mut [f32]) {
    assert!(sin.len() == phase.len() && cos.len() == phase.len());
    #[cfg(target_arch = "x86_64")]
    if avx512() {
        let whole = phase.len() / 8 * 8;
        // SAFETY: the CPU has AVX-512F; the kernel reads and writes `whole` ≤ len elements.
        unsafe { sin_cos_avx512::run(&phase[..whole], &mut sin[..whole], &mut cos[..whole]) };
        sin_cos_f32_portable(&phase[whole..], &mut sin[whole..], &mut cos[whole..]);
        return;
    }
    sin_cos_f32_portable(phase, sin, cos);
}

/// [`sin_cos_f32`] as one flat loop.
fn sin_cos_f32_portable(phase: &[f64], sin: &mut [f32], cos: &mut [f32]) {
    for ((&p, s), c) in phase.iter().zip(sin.iter_mut()).zip(cos.iter_mut()) {
        let (a, b) = sin_cos_fast(p);
        *s = a as f32;
        *c = b as f32;
    }
}

/// [`sin_cos_fast`] on eight lanes of a `__m512d`: each lane performs the scalar function's
/// IEEE operations in its order (products and sums unfused, `round` half away from zero, the
/// quadrant's selects and sign flips), then rounds to f32.
#[cfg(target_arch = "x86_64")]
mod sin_cos_avx512 {
    use std::arch::x86_64::*;

    /// `f64::round` (half away from zero): the truncation, plus ±1 where the (exact)
    /// fractional part is at least one half.
    #[target_feature(enable = "avx512f")]
    pub(super) fn round(x: __m512d) -> __m512d {
        let t = _mm512_roundscale_pd::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(x);
        let frac = _mm512_sub_pd(x, t);
        let half = _mm512_cmp_pd_mask::<_CMP_GE_OQ>(_mm512_abs_pd(frac), _mm512_set1_pd(0.5));
        let sign = _mm512_and_epi64(_mm512_castpd_si512(x), _mm512_set1_epi64(i64::MIN));
        let one = _mm512_castsi512_pd(_mm512_or_epi64(
            sign,
            _mm512_castpd_si512(_mm512_set1_pd(1.0)),
        ));
        _mm512_mask_add_pd(t, half, t, one)
    }

    /// `−v` (the sign bit flipped) in the lanes of `m`.
    #[target_feature(enable = "avx512f")]
    fn neg(m: __mmask8, v: __m512d) -> __m512d {
        let flipped = _mm512_xor_epi64(_mm512_castpd_si512(v), _mm512_set1_epi64(i64::MIN));
        _mm512_mask_mov_pd(v, m, _mm512_castsi512_pd(flipped))
    }

    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn run(phase: &[f64], sin: &mut [f32], cos: &mut [f32]) {
        let set = _mm512_set1_pd;
        let (p1, p2, p3) = (set(super::P1), set(super::P2), set(super::P3));
        for ((ph, so), co) in phase
            .chunks_exact(8)
            .zip(sin.chunks_exact_mut(8))
            .zip(cos.chunks_exact_mut(8))
        {
            // SAFETY: each chunk holds exactly eight elements.
            let x = unsafe { _mm512_loadu_pd(ph.as_ptr()) };
            let k = round(_mm512_mul_pd(x, set(super::TWO_OVER_PI)));
            let r = _mm512_sub_pd(x, _mm512_mul_pd(k, p1));
            let r = _mm512_sub_pd(r, _mm512_mul_pd(k, p2));
            let r = _mm512_sub_pd(r, _mm512_mul_pd(k, p3));
            let r2 = _mm512_mul_pd(r, r);
            let mut s = set(super::SIN_COEFFS[0]);
            for &c in &super::SIN_COEFFS[1..] {
                s = _mm512_add_pd(_mm512_mul_pd(s, r2), set(c));
            }
            let sin_r = _mm512_sub_pd(r, _mm512_mul_pd(_mm512_mul_pd(r, r2), s));
            let mut c = set(super::COS_COEFFS[0]);
            for &a in &super::COS_COEFFS[1..] {
                c = _mm512_add_pd(_mm512_mul_pd(c, r2), set(a));
            }
            let cos_r = _mm512_add_pd(set(1.0), _mm512_mul_pd(r2, c));
            let quarter = _mm512_mul_pd(k, set(0.25));
            let fl = _mm512_roundscale_pd::<{ _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC }>(quarter);
            let q = _mm512_sub_pd(k, _mm512_mul_pd(set(4.0), fl));
            let is = |v: f64| _mm512_cmp_pd_mask::<_CMP_EQ_OQ>(q, set(v));
            let swap = is(1.0) | is(3.0);
            let s0 = _mm512_mask_mov_pd(sin_r, swap, cos_r);
            let c0 = _mm512_mask_mov_pd(cos_r, swap, sin_r);
            let s = neg(_mm512_cmp_pd_mask::<_CMP_GE_OQ>(q, set(2.0)), s0);
            let c = neg(is(1.0) | is(2.0), c0);
            // SAFETY: each output chunk holds exactly eight elements.
            unsafe {
                _mm256_storeu_ps(so.as_mut_ptr(), _mm512_cvtpd_ps(s));
                _mm256_storeu_ps(co.as_mut_ptr(), _mm512_cvtpd_ps(c));
            }
        }
    }
}

/// The n-point Gauss–Legendre rule on [−1, 1]: nodes (ascending) and weights, exact for
/// polynomials of degree < 2n. Newton on P_n from Tricomi's initial guesses, P_n by its
/// three-term recurrence (Abramowitz & Stegun 25.4.29).
pub fn gauss_legendre(n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut nodes = vec![0.0; n];
    let mut weights = vec![0.0; n];
    for i in 0..n.div_ceil(2) {
        let mut x = (std::f64::consts::PI * (i as f64 + 0.75) / (n as f64 + 0.5)).cos();
        let mut dp = 1.0;
        for _ in 0..100 {
            // P_n(x) and P_n'(x).
            let (mut p0, mut p1) = (1.0, x);
            for k in 2..=n {
                let p2 = ((2 * k - 1) as f64 * x * p1 - (k - 1) as f64 * p0) / k as f64;
                (p0, p1) = (p1, p2);
            }
            let p = if n == 0 { 1.0 } else { p1 };
            dp = n as f64 * (x * p - p0) / (x * x - 1.0);
            let dx = p / dp;
            x -= dx;
            if dx.abs() < 1e-16 {
                break;
            }
        }
        let w = 2.0 / ((1.0 - x * x) * dp * dp);
        nodes[i] = -x;
        nodes[n - 1 - i] = x;
        weights[i] = w;
        weights[n - 1 - i] = w;
    }
    (nodes, weights)
}

/// Minimises `f` by Nelder–Mead (Nelder & Mead 1965; the standard coefficients: reflection 1,
/// expansion 2, contraction ½, shrink ½) from `x0` with an initial simplex of axis steps
/// `step`, for at most `max_evals` evaluations or until the simplex's values agree to 1e-12.
/// Returns the best point and its value. A non-finite value counts as +∞ (an infeasible point).
pub fn nelder_mead(
    mut f: impl FnMut(&[f64]) -> f64,
    x0: &[f64],
    step: f64,
    max_evals: usize,
) -> (Vec<f64>, f64) {
    let n = x0.len();
    let mut eval = |x: &[f64]| {
        let v = f(x);
        if v.is_nan() {
            f64::INFINITY
        } else {
            v
        }
    };
    if n == 0 {
        let v = eval(x0);
        return (x0.to_vec(), v);
    }
    let mut simplex: Vec<(Vec<f64>, f64)> = Vec::with_capacity(n + 1);
    simplex.push((x0.to_vec(), eval(x0)));
    for i in 0..n {
        let mut x = x0.to_vec();
        x[i] += step;
        let v = eval(&x);
        simplex.push((x, v));
    }
    let mut evals = n + 1;
    let lerp = |a: &[f64], b: &[f64], t: f64| -> Vec<f64> {
        a.iter().zip(b).map(|(a, b)| a + t * (b - a)).collect()
    };
    while evals < max_evals {
        simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
        let (best, worst) = (simplex[0].1, simplex[n].1);
        if (worst - best).abs() <= 1e-12 * (1.0 + best.abs()) {
            break;
        }
        let centroid: Vec<f64> = (0..n)
            .map(|j| simplex[..n].iter().map(|p| p.0[j]).sum::<f64>() / n as f64)
            .collect();
        let xw = simplex[n].0.clone();
        let xr = lerp(&centroid, &xw, -1.0);
        let vr = eval(&xr);
        evals += 1;
        if vr < best {
            let xe = lerp(&centroid, &xw, -2.0);
            let ve = eval(&xe);
            evals += 1;
            simplex[n] = if ve < vr { (xe, ve) } else { (xr, vr) };
        } else if vr < simplex[n - 1].1 {
            simplex[n] = (xr, vr);
        } else {
            let (xc, vc) = if vr < worst {
                let xc = lerp(&centroid, &xr, 0.5);
                let v = eval(&xc);
                (xc, v)
            } else {
                let xc = lerp(&centroid, &xw, 0.5);
                let v = eval(&xc);
                (xc, v)
            };
            evals += 1;
            if vc < worst.min(vr) {
                simplex[n] = (xc, vc);
            } else {
                let x0 = simplex[0].0.clone();
                for p in simplex.iter_mut().skip(1) {
                    p.0 = lerp(&x0, &p.0, 0.5);
                    p.1 = eval(&p.0);
                }
                evals += n;
            }
        }
    }
    simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
    let (x, v) = simplex.swap_remove(0);
    (x, v)
}

/// The CDF of the 1-D density ∝ exp(`log_density`) on [lo, hi], by the trapezoid rule on
/// `points` equally spaced nodes (the log-density is evaluated once, on the nodes as a column),
/// interpolated linearly between them; 0 below lo and 1 above hi.
pub fn quadrature_cdf(
    lo: f64,
    hi: f64,
    points: usize,
    log_density: impl FnOnce(&ndarray::Array2<f64>) -> Vec<f64>,
) -> impl Fn(f64) -> f64 {
    let k = points.max(2);
    let xs: Vec<f64> = (0..k)
        .map(|i| lo + (hi - lo) * i as f64 / (k - 1) as f64)
        .collect();
    let logp = log_density(&ndarray::Array2::from_shape_vec((k, 1), xs.clone()).expect("k × 1"));
    let top = logp.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let mut cdf = vec![0.0; k];
    for i in 1..k {
        let (a, b) = ((logp[i - 1] - top).exp(), (logp[i] - top).exp());
        cdf[i] = cdf[i - 1] + 0.5 * (a + b) * (xs[i] - xs[i - 1]);
    }
    let total = cdf[k - 1];
    move |x: f64| {
        let f = ((x - lo) / (hi - lo) * (k - 1) as f64).clamp(0.0, (k - 1) as f64);
        let i = (f.floor() as usize).min(k - 2);
        let a = f - i as f64;
        ((1.0 - a) * cdf[i] + a * cdf[i + 1]) / total
    }
}

/// Least-squares slope of log y against log x.
pub fn loglog_slope(x: &[f64], y: &[f64]) -> f64 {
    let lx: Vec<f64> = x.iter().map(|v| v.ln()).collect();
    let ly: Vec<f64> = y.iter().map(|v| v.ln()).collect();
    let k = lx.len() as f64;
    let (mx, my) = (lx.iter().sum::<f64>() / k, ly.iter().sum::<f64>() / k);
    lx.iter()
        .zip(&ly)
        .map(|(a, b)| (a - mx) * (b - my))
        .sum::<f64>()
        / lx.iter().map(|a| (a - mx).powi(2)).sum::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nelder–Mead finds the minimum of Rosenbrock's function to 1e-6.
    #[test]
    fn nelder_mead_minimises_rosenbrock() {
        let f = |x: &[f64]| (1.0 - x[0]).powi(2) + 100.0 * (x[1] - x[0] * x[0]).powi(2);
        let (x, v) = nelder_mead(f, &[-1.2, 1.0], 0.5, 5000);
        assert!(
            (x[0] - 1.0).abs() < 1e-5 && (x[1] - 1.0).abs() < 1e-5 && v < 1e-10,
            "{x:?} {v}"
        );
    }

    /// Exact for degree < 2n; ∫_0^1 e^x dx to 1e-15 with 16 points.
    #[test]
    fn gauss_legendre_integrates_polynomials_exactly() {
        for n in [1, 2, 5, 16, 32] {
            let (x, w) = gauss_legendre(n);
            assert!((w.iter().sum::<f64>() - 2.0).abs() < 1e-14, "n = {n}");
            for k in 0..2 * n {
                let quad: f64 = x.iter().zip(&w).map(|(x, w)| w * x.powi(k as i32)).sum();
                let exact = if k % 2 == 1 {
                    0.0
                } else {
                    2.0 / (k + 1) as f64
                };
                assert!((quad - exact).abs() < 1e-13, "n = {n}, degree {k}: {quad}");
            }
        }
        let (x, w) = gauss_legendre(16);
        let e: f64 = x
            .iter()
            .zip(&w)
            .map(|(x, w)| 0.5 * w * (0.5 * (x + 1.0)).exp())
            .sum();
        assert!((e - (1f64.exp() - 1.0)).abs() < 1e-15);
    }

    #[test]
    fn matches_libm_to_a_few_ulp() {
        let mut worst = 0.0f64;
        for i in 0..200_000 {
            let x = -708.0 * (i as f64 / 200_000.0).powi(3);
            let (a, b) = (exp_nonpos(x), x.exp());
            worst = worst.max(((a - b) / b).abs());
        }
        assert!(worst < 1e-15, "worst relative error {worst:e}");
        assert_eq!(exp_nonpos(0.0), 1.0);
        assert!(exp_nonpos(-800.0) < 4e-308);
        assert!(exp_nonpos(f64::NEG_INFINITY) < 4e-308);
    }

    /// The AVX-512 `round` is `f64::round` (half away from zero) on halves, the largest
    /// non-integers, zeros, infinities and NaN.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn vector_round_is_half_away_from_zero() {
        if !std::arch::is_x86_feature_detected!("avx512f") {
            return;
        }
        let xs = [
            0.5,
            -0.5,
            1.5,
            -2.5,
            0.499_999_999_999_999_94,
            -0.499_999_999_999_999_94,
            4_503_599_627_370_495.5,
            -4_503_599_627_370_495.5,
            9_007_199_254_740_993.0,
            0.0,
            -0.0,
            1e300,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
        ];
        let mut out = [0f64; 8];
        for c in xs.chunks(8) {
            let mut v = [0f64; 8];
            v[..c.len()].copy_from_slice(c);
            // SAFETY: AVX-512F is present (checked above).
            unsafe {
                use std::arch::x86_64::*;
                let r = sin_cos_avx512::round(_mm512_loadu_pd(v.as_ptr()));
                _mm512_storeu_pd(out.as_mut_ptr(), r);
            }
            for (x, r) in v.iter().zip(out) {
                if x.is_nan() {
                    assert!(r.is_nan(), "round(NaN)");
                    continue;
                }
                assert_eq!(r.to_bits(), x.round().to_bits(), "round({x})");
            }
        }
    }

    /// The vectorised quadrant selection gives the bits of the integer `match` it replaced,
    /// through [`sin_cos_f32`] (AVX-512 and portable) as well as one value at a time.
    #[test]
    fn sin_cos_quadrants_bitwise() {
        let by_match = |x: f64| {
            let (k, sr, cr) = sin_cos_reduced(x);
            match (k as i64).rem_euclid(4) {
                0 => (sr, cr),
                1 => (cr, -sr),
                2 => (-sr, -cr),
                _ => (-cr, sr),
            }
        };
        let xs: Vec<f64> = (0..20_001)
            .map(|i| -5000.0 + i as f64 * 0.5 + 1e-3 * (i % 13) as f64)
            .chain([0.0, -0.0, 1e-300, -1e-300, 9.9e5, -9.9e5])
            .collect();
        let (mut s32, mut c32) = (vec![0f32; xs.len()], vec![0f32; xs.len()]);
        sin_cos_f32(&xs, &mut s32, &mut c32);
        let (mut ps32, mut pc32) = (vec![0f32; xs.len()], vec![0f32; xs.len()]);
        sin_cos_f32_portable(&xs, &mut ps32, &mut pc32);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&s32), bits(&ps32), "sin: vector and portable paths");
        assert_eq!(bits(&c32), bits(&pc32), "cos: vector and portable paths");
        for (i, &x) in xs.iter().enumerate() {
            let (s, c) = sin_cos_fast(x);
            let (ms, mc) = by_match(x);
            assert_eq!(
                (s.to_bits(), c.to_bits()),
                (ms.to_bits(), mc.to_bits()),
                "x = {x}"
            );
            assert_eq!(
                (s32[i].to_bits(), c32[i].to_bits()),
                ((s as f32).to_bits(), (c as f32).to_bits())
            );
        }
    }

    #[test]
    fn fast_sin_cos_matches_libm() {
        let mut worst = 0.0f64;
        for i in 0..400_001 {
            let x = -2000.0 + i as f64 * 0.01 + 1e-3 * (i % 7) as f64;
            let (s, c) = sin_cos_fast(x);
            worst = worst.max((s - x.sin()).abs()).max((c - x.cos()).abs());
        }
        for x in [0.0, 1e-300, -0.5, 1e5 + 0.25, -9.9e5] {
            let (s, c) = sin_cos_fast(x);
            worst = worst.max((s - x.sin()).abs()).max((c - x.cos()).abs());
        }
        assert!(worst < 1e-14, "worst absolute error {worst:e}");
    }

    #[test]
    fn f32_kernels_match_libm() {
        let mut worst = 0.0f64;
        for i in 0..200_000 {
            let x = -87.0 * (i as f32 / 200_000.0).powi(2);
            let (a, b) = (exp_nonpos_f32(x) as f64, (x as f64).exp());
            worst = worst.max(((a - b) / b).abs());
        }
        assert!(worst < 3e-7, "exp worst relative error {worst:e}");
        let mut worst_silu = 0.0f64;
        let mut worst_grad = 0.0f64;
        for i in 0..40_001 {
            let x = -40.0 + i as f32 * 0.002;
            let xd = x as f64;
            let s = 1.0 / (1.0 + (-xd).exp());
            worst_silu = worst_silu.max((silu_f32(x) as f64 - xd * s).abs() / (1.0 + xd.abs()));
            worst_grad =
                worst_grad.max((silu_grad_f32(x) as f64 - s * (1.0 + xd * (1.0 - s))).abs());
        }
        assert!(worst_silu < 1e-6, "silu {worst_silu:e}");
        assert!(worst_grad < 1e-6, "silu' {worst_grad:e}");
        assert_eq!(silu_f32(0.0), 0.0);
        assert!(silu_f32(-200.0).abs() < 1e-30 && silu_f32(200.0) == 200.0);
    }
}
