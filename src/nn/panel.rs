//! The forward product of one layer on weights packed once: `z = init + a W`, then `h = act(z)`
//! (`+ h_prev` through an identity shortcut) while the tile is still in registers or L1.
//!
//! `W` (`k × n`, row-major) is stored as column panels of 32 (16 when `n ≤ 16`), each `k × 32`
//! contiguous and zero-padded past column `n`, so the micro-kernel streams it with aligned-width
//! vector loads and nothing is packed per call; rows of `a` are read in place (one broadcast
//! per row and k). Sampling packs a network once; training packs each step's weights once for
//! all its blocks.
//!
//! Every number is one chain of fused multiply-adds over k from zero per output element,
//! restarted every [`KC`] terms, each partial sum added to the running value once (`c ← ab +
//! c`, starting from `init`): the AVX-512 and AVX2/FMA kernels (chosen at run time) and the
//! portable one agree to the bit on every CPU, and so do the SiLU epilogues
//! ([`crate::numerics::silu_f32`] in vector form). That is also the `matrixmultiply` sgemm
//! (default `S_KC` = 256) wherever it runs its FMA kernels — x86 with AVX2+FMA or AVX-512,
//! aarch64 — up to the sign of an exact zero in its edge tiles; on x86 without FMA it multiplies
//! and adds separately and the two differ in the last bits.

use super::Activation;
use crate::numerics::{silu_f32, silu_grad_f32};

/// The k-blocking of `matrixmultiply`'s sgemm (`S_KC`): partial sums restart every KC terms.
pub const KC: usize = 256;

/// Widest panel (columns).
const WIDE: usize = 32;
/// Panel width for narrow layers (`n ≤ 16`, e.g. the output layer).
const NARROW: usize = 16;

/// A layer's weights `W` (`k × n`) as zero-padded column panels.
#[derive(Clone, Debug, PartialEq)]
pub struct Panels {
    k: usize,
    n: usize,
    width: usize,
    data: Vec<f32>,
}

impl Panels {
    /// Packs row-major `w` (`k × n`).
    pub fn pack(w: &[f32], k: usize, n: usize) -> Self {
        assert_eq!(w.len(), k * n, "panel shape");
        let width = if n <= NARROW { NARROW } else { WIDE };
        let mut data = vec![0f32; n.div_ceil(width) * k * width];
        if k > 0 {
            for (p, panel) in data.chunks_exact_mut(k * width).enumerate() {
                let j0 = p * width;
                let cols = width.min(n - j0);
                for (row, dst) in w.chunks_exact(n).zip(panel.chunks_exact_mut(width)) {
                    dst[..cols].copy_from_slice(&row[j0..j0 + cols]);
                }
            }
        }
        Self { k, n, width, data }
    }

    pub fn k(&self) -> usize {
        self.k
    }

    fn panel(&self, p: usize) -> &[f32] {
        &self.data[p * self.k * self.width..(p + 1) * self.k * self.width]
    }
}

/// What follows the product: the activation (none for a linear layer) and the identity
/// shortcut `h_prev` (`rows × n`) added after it.
#[derive(Clone, Copy)]
pub struct Epilogue<'a> {
    pub act: Option<Activation>,
    pub shortcut: Option<&'a [f32]>,
}

/// The instruction set a product runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    Avx512,
    Avx2,
    Portable,
}

impl Isa {
    /// The widest this CPU has (detected once by `std`).
    pub fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512dq")
            {
                return Isa::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Isa::Avx2;
            }
        }
        Isa::Portable
    }

    /// Whether this CPU can run it (AVX-512 includes AVX2 and FMA).
    pub fn runs_here(self) -> bool {
        match (self, Isa::detect()) {
            (Isa::Portable, _) | (Isa::Avx2, Isa::Avx512) => true,
            (isa, best) => isa == best,
        }
    }

    /// Those this CPU can run (for tests comparing them).
    pub fn available() -> Vec<Self> {
        let mut v = vec![Isa::Portable];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                v.push(Isa::Avx2);
            }
            if Isa::detect() == Isa::Avx512 {
                v.push(Isa::Avx512);
            }
        }
        v
    }
}

/// The left operand of a product: `rows` rows of `data`, row stride `ld` (the product reads
/// the first `k` columns of each).
#[derive(Clone, Copy)]
pub struct Lhs<'a> {
    pub data: &'a [f32],
    pub ld: usize,
    pub rows: usize,
}

/// `out = epi(init + a W)` for the rows of `a` and a row vector `init` (`n`: the bias, or the
/// first layer's constant part); with `z`, the pre-activation is stored there too. All three
/// buffers are `rows × n`, row-major.
pub fn product(
    a: Lhs,
    w: &Panels,
    init: &[f32],
    epi: Epilogue,
    z: Option<&mut [f32]>,
    out: &mut [f32],
) {
    product_on(Isa::detect(), a, w, init, epi, z, out)
}

/// [`product`] on a given instruction set; panics unless the CPU has it.
pub fn product_on(
    isa: Isa,
    a: Lhs,
    w: &Panels,
    init: &[f32],
    epi: Epilogue,
    z: Option<&mut [f32]>,
    out: &mut [f32],
) {
    let Lhs {
        data: a,
        ld: lda,
        rows,
    } = a;
    assert!(isa.runs_here(), "product: this CPU lacks {isa:?}");
    let (k, n) = (w.k, w.n);
    let a_len = rows.checked_sub(1).map_or(Some(0), |r| {
        r.checked_mul(lda).and_then(|x| x.checked_add(k))
    });
    assert!(
        rows == 0 || (lda >= k && a_len.is_some_and(|l| a.len() >= l)),
        "product: a is too short"
    );
    let len = rows.checked_mul(n).expect("product: rows × n overflows");
    assert!(init.len() == n && out.len() >= len, "product: shapes");
    assert!(
        epi.shortcut.is_none_or(|s| s.len() >= len),
        "product: shortcut"
    );
    assert!(z.as_ref().is_none_or(|z| z.len() >= len), "product: z");
    if rows == 0 || n == 0 {
        return;
    }
    let m = tile_rows(isa, w.width);
    let mut pad = Vec::new();
    let mut init_p = [0f32; WIDE];
    let z_ptr = z.map_or(std::ptr::null_mut(), |z| z.as_mut_ptr());
    let prev_ptr = epi.shortcut.map_or(std::ptr::null(), |s| s.as_ptr());
    // The last partial row tile reads a zero-padded copy of its rows.
    let full = rows / m * m;
    if full < rows {
        pad.resize(m * k, 0.0);
        for (i, dst) in pad.chunks_exact_mut(k.max(1)).take(rows - full).enumerate() {
            dst.copy_from_slice(&a[(full + i) * lda..(full + i) * lda + k]);
        }
    }
    // Panel by panel, so that each panel stays in L1 while the row tiles pass under it.
    for p in 0..n.div_ceil(w.width) {
        let j0 = p * w.width;
        let cols = w.width.min(n - j0);
        init_p[..cols].copy_from_slice(&init[j0..j0 + cols]);
        init_p[cols..].fill(0.0);
        for r0 in (0..rows).step_by(m) {
            let here = m.min(rows - r0);
            let (ap, ld) = if here == m {
                (&a[r0 * lda..], lda)
            } else {
                (&pad[..], k)
            };
            let at = r0 * n + j0;
            // SAFETY: rows r0..r0 + here and columns j0..j0 + cols of `rows × n` buffers,
            // whose lengths were checked above; `wrapping_add` keeps a null pointer null.
            let dst = Dst {
                out: unsafe { out.as_mut_ptr().add(at) },
                z: z_ptr.wrapping_add(if z_ptr.is_null() { 0 } else { at }),
                prev: prev_ptr.wrapping_add(if prev_ptr.is_null() { 0 } else { at }),
                ld: n,
                rows: here,
                cols,
                act: epi.act,
            };
            micro(isa, k, ap, ld, w.panel(p), w.width, &init_p, dst);
        }
    }
}

/// `g ⊙ act'(z)` into `out` (all the same length): the backward pass through the activation,
/// the same bits as [`crate::numerics::silu_grad_f32`] on every instruction set.
pub fn act_grad(act: Activation, z: &[f32], g: &[f32], out: &mut [f32]) {
    assert!(
        z.len() == g.len() && out.len() == z.len(),
        "act_grad: shapes"
    );
    let it = out.iter_mut().zip(z.iter().zip(g));
    match (act, Isa::detect()) {
        (Activation::Relu, _) => it.for_each(|(o, (&z, &g))| *o = if z > 0.0 { g } else { 0.0 }),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU has AVX-512F and DQ; the three buffers have the same length.
        (Activation::Silu, Isa::Avx512) => unsafe { x86::silu_grad512(z, g, out) },
        (Activation::Silu, _) => it.for_each(|(o, (&z, &g))| *o = g * silu_grad_f32(z)),
    }
}

/// Where a tile's results go: `rows × cols` at `out` (and `z`, read `prev`; null: none),
/// row stride `ld`.
#[derive(Clone, Copy)]
struct Dst {
    out: *mut f32,
    z: *mut f32,
    prev: *const f32,
    ld: usize,
    rows: usize,
    cols: usize,
    act: Option<Activation>,
}

impl Dst {
    /// The same destination from column `c0` on.
    fn at_col(self, c0: usize) -> Self {
        let off = |null: bool| if null { 0 } else { c0 };
        Self {
            out: self.out.wrapping_add(c0),
            z: self.z.wrapping_add(off(self.z.is_null())),
            prev: self.prev.wrapping_add(off(self.prev.is_null())),
            cols: self.cols.saturating_sub(c0),
            ..self
        }
    }
}

/// Rows of one micro-tile: as many as keep the accumulators in registers.
fn tile_rows(isa: Isa, width: usize) -> usize {
    match (isa, width) {
        (Isa::Avx512, WIDE) => 12,
        (Isa::Avx512, _) => 24,
        (Isa::Avx2, _) => 6,
        (Isa::Portable, _) => 4,
    }
}

/// One tile: `z[i][j] = init[j] + Σ_p a[i, p] panel[p][j]` for `tile_rows` rows of `a` and the
/// panel's `width` columns, then the epilogue into `dst`.
#[allow(clippy::too_many_arguments)]
fn micro(
    isa: Isa,
    k: usize,
    a: &[f32],
    lda: usize,
    panel: &[f32],
    width: usize,
    init: &[f32; WIDE],
    dst: Dst,
) {
    let m = tile_rows(isa, width);
    assert!(k == 0 || a.len() >= (m - 1) * lda + k);
    assert!(panel.len() >= k * width && dst.rows <= m && dst.cols <= width);
    let (ap, bp, ip) = (a.as_ptr(), panel.as_ptr(), init.as_ptr());
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU has the instruction set (`Isa::detect`/`available`); the asserts
        // above bound every read of `a` and `panel`, `product_on` every access through `dst`.
        Isa::Avx512 => unsafe {
            if width == WIDE {
                x86::tile512::<2, 12>(k, ap, lda, bp, width, ip, dst)
            } else {
                x86::tile512::<1, 24>(k, ap, lda, bp, width, ip, dst)
            }
        },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above; each call covers 16 of the panel's columns.
        Isa::Avx2 => unsafe {
            for c0 in (0..width.min(dst.cols.next_multiple_of(16))).step_by(16) {
                x86::tile256::<6>(k, ap, lda, bp.add(c0), width, ip.add(c0), dst.at_col(c0))
            }
        },
        _ => portable_tile(m, k, a, lda, panel, width, init, dst),
    }
}

/// The portable tile: the same chains of fused multiply-adds, vectorised over columns.
#[allow(clippy::too_many_arguments)]
fn portable_tile(
    m: usize,
    k: usize,
    a: &[f32],
    lda: usize,
    b: &[f32],
    width: usize,
    init: &[f32; WIDE],
    dst: Dst,
) {
    let mut acc = [0f32; WIDE];
    let mut c = [0f32; WIDE];
    for i in 0..m.min(dst.rows) {
        let (acc, c) = (&mut acc[..width], &mut c[..width]);
        c.copy_from_slice(&init[..width]);
        let mut p0 = 0;
        while p0 < k {
            let kc = KC.min(k - p0);
            acc.fill(0.0);
            for (p, bp) in b[p0 * width..].chunks_exact(width).take(kc).enumerate() {
                let av = a[i * lda + p0 + p];
                acc.iter_mut()
                    .zip(bp)
                    .for_each(|(s, &b)| *s = av.mul_add(b, *s));
            }
            c.iter_mut().zip(acc.iter()).for_each(|(c, &s)| *c += s);
            p0 += kc;
        }
        for (j, &z) in c.iter().enumerate().take(dst.cols) {
            let at = i * dst.ld + j;
            // SAFETY: row i < rows and column j < cols of the destination (see `Dst`).
            unsafe {
                if !dst.z.is_null() {
                    *dst.z.add(at) = z;
                }
                let mut h = match dst.act {
                    Some(Activation::Silu) => silu_f32(z),
                    Some(Activation::Relu) => z.max(0.0),
                    None => z,
                };
                if !dst.prev.is_null() {
                    h += *dst.prev.add(at);
                }
                *dst.out.add(at) = h;
            }
        }
    }
}

/// SiLU in place over a buffer: the vector form for whole vectors, the scalar one for the tail
/// (tests compare them).
#[cfg(test)]
fn silu_in_place(isa: Isa, t: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    use std::arch::x86_64::*;
    let lanes = match isa {
        Isa::Avx512 => 16,
        Isa::Avx2 => 8,
        Isa::Portable => 1,
    };
    let mut it = t.chunks_exact_mut(lanes);
    for c in &mut it {
        let p = c.as_mut_ptr();
        match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the CPU has the instruction set; `c` holds one whole vector.
            Isa::Avx512 => unsafe { _mm512_storeu_ps(p, x86::silu512(_mm512_loadu_ps(p))) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            Isa::Avx2 => unsafe { _mm256_storeu_ps(p, x86::silu256(_mm256_loadu_ps(p))) },
            _ => c.iter_mut().for_each(|v| *v = silu_f32(*v)),
        }
    }
    it.into_remainder()
        .iter_mut()
        .for_each(|v| *v = silu_f32(*v));
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Activation, Dst, KC};
    use std::arch::x86_64::*;

    /// The tile's values `c[i][v] = init + Σ_p a[i·lda + p] b[p·ldb + L v ..]` (L lanes per
    /// register), one FMA chain from zero per KC block of k, each added to the running value:
    /// the arithmetic of the `matrixmultiply` sgemm, for any vector width.
    macro_rules! accumulate {
        ($k:expr, $a:expr, $lda:expr, $b:expr, $ldb:expr, $init:expr, $lanes:expr,
         $zero:ident, $load:ident, $set1:ident, $fmadd:ident, $add:ident) => {{
            let (k, a, lda, b, ldb, init) = ($k, $a, $lda, $b, $ldb, $init);
            let mut c = [[$zero(); _]; _];
            for row in c.iter_mut() {
                for (v, x) in row.iter_mut().enumerate() {
                    *x = $load(init.add($lanes * v));
                }
            }
            let mut p0 = 0;
            while p0 < k {
                let kc = KC.min(k - p0);
                let mut acc = c.map(|r| r.map(|_| $zero()));
                for p in p0..p0 + kc {
                    let bp = b.add(p * ldb);
                    let mut bv = acc[0].map(|_| $zero());
                    for (v, x) in bv.iter_mut().enumerate() {
                        *x = $load(bp.add($lanes * v));
                    }
                    for (i, row) in acc.iter_mut().enumerate() {
                        let av = $set1(*a.add(i * lda + p));
                        for (s, &b) in row.iter_mut().zip(&bv) {
                            *s = $fmadd(av, b, *s);
                        }
                    }
                }
                for (cr, ar) in c.iter_mut().zip(&acc) {
                    for (x, &s) in cr.iter_mut().zip(ar) {
                        *x = $add(s, *x);
                    }
                }
                p0 += kc;
            }
            c
        }};
    }

    /// The tile's epilogue from the registers: for the destination's rows and columns (masked
    /// to `cnt` lanes), store z if kept, apply the activation, add the shortcut, store h.
    macro_rules! store_tile {
        ($c:expr, $d:expr, $lanes:expr, |$cnt:ident| $mask:expr, $store:ident, $load:ident,
         $silu:ident, $max:ident, $zero:ident, $add:ident) => {{
            let d: Dst = $d;
            for (i, row) in $c.iter().enumerate().take(d.rows) {
                for (v, &z) in row.iter().enumerate() {
                    let lo = $lanes * v;
                    if lo >= d.cols {
                        break;
                    }
                    let $cnt = (d.cols - lo).min($lanes);
                    let m = $mask;
                    let at = i * d.ld + lo;
                    if !d.z.is_null() {
                        $store(d.z.add(at), m, z);
                    }
                    let mut h = match d.act {
                        Some(Activation::Silu) => $silu(z),
                        Some(Activation::Relu) => $max(z, $zero()),
                        None => z,
                    };
                    if !d.prev.is_null() {
                        h = $add(h, $load(d.prev.add(at), m));
                    }
                    $store(d.out.add(at), m, h);
                }
            }
        }};
    }

    /// One tile of `M` rows and `16 V` columns (one register per row and 16 columns): per
    /// KC block of k a chain of FMAs from zero, added to the running value (`init` first);
    /// then the epilogue from the registers, masked to the destination's rows and columns.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub unsafe fn tile512<const V: usize, const M: usize>(
        k: usize,
        a: *const f32,
        lda: usize,
        b: *const f32,
        ldb: usize,
        init: *const f32,
        d: Dst,
    ) {
        let c: [[__m512; V]; M] = accumulate!(
            k,
            a,
            lda,
            b,
            ldb,
            init,
            16,
            _mm512_setzero_ps,
            _mm512_loadu_ps,
            _mm512_set1_ps,
            _mm512_fmadd_ps,
            _mm512_add_ps
        );
        store_tile!(
            c,
            d,
            16,
            |cnt| ((1u32 << cnt) - 1) as __mmask16,
            _mm512_mask_storeu_ps,
            load512,
            silu512,
            _mm512_max_ps,
            _mm512_setzero_ps,
            _mm512_add_ps
        );
    }

    /// Masked load in the argument order of `_mm256_maskload_ps`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn load512(p: *const f32, m: __mmask16) -> __m512 {
        _mm512_maskz_loadu_ps(m, p)
    }

    /// [`tile512`] with AVX2/FMA: 16 columns (two registers) per row.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn tile256<const M: usize>(
        k: usize,
        a: *const f32,
        lda: usize,
        b: *const f32,
        ldb: usize,
        init: *const f32,
        d: Dst,
    ) {
        let c: [[__m256; 2]; M] = accumulate!(
            k,
            a,
            lda,
            b,
            ldb,
            init,
            8,
            _mm256_setzero_ps,
            _mm256_loadu_ps,
            _mm256_set1_ps,
            _mm256_fmadd_ps,
            _mm256_add_ps
        );
        let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        store_tile!(
            c,
            d,
            8,
            |cnt| _mm256_cmpgt_epi32(_mm256_set1_epi32(cnt as i32), lanes),
            _mm256_maskstore_ps,
            _mm256_maskload_ps,
            silu256,
            _mm256_max_ps,
            _mm256_setzero_ps,
            _mm256_add_ps
        );
    }

    /// The constants of [`crate::numerics::exp_nonpos_f32`].
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    const SHIFT: f32 = 12_582_912.0;
    const POLY: [f32; 8] = [
        1.0 / 5040.0,
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ];

    /// [`crate::numerics::sigmoid_f32`] on 16 lanes, with the same operations in the same order
    /// (so the same bits).
    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub fn sigmoid512(x: __m512) -> __m512 {
        let one = _mm512_set1_ps(1.0);
        let shift = _mm512_set1_ps(SHIFT);
        // e = e^{−|x|} (exp_nonpos_f32); max(·, −87) returns its second operand for a NaN
        // first, as f32::max does.
        // −min(|x|, 87) = max(−|x|, −87) in one range op (a NaN x gives NaN, where the scalar
        // clamps to −87: both end in a NaN silu).
        let xc = _mm512_range_ps::<0b1110>(x, _mm512_set1_ps(87.0));
        let tt = _mm512_add_ps(_mm512_mul_ps(xc, _mm512_set1_ps(LOG2E)), shift);
        let n = _mm512_sub_ps(tt, shift);
        // n·LN2_HI is exact (15 + 7 significant bits), so one FMA rounds as mul-then-sub.
        let r = _mm512_sub_ps(
            _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_HI), xc),
            _mm512_mul_ps(n, _mm512_set1_ps(LN2_LO)),
        );
        let mut p = _mm512_set1_ps(POLY[0]);
        for &q in &POLY[1..] {
            p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(q));
        }
        // p · 2ⁿ in one rounding, as the scalar multiply by the exact power of two
        // (n ≥ −126: the factor is normal).
        let e = _mm512_scalef_ps(p, n);
        // σ(x) = 1/(1+e) for x ≥ 0, e/(1+e) otherwise (NaN included)
        let rcp = _mm512_div_ps(one, _mm512_add_ps(one, e));
        let below = _mm512_cmp_ps_mask::<_CMP_NGE_UQ>(x, _mm512_setzero_ps());
        _mm512_mask_mul_ps(rcp, below, e, rcp)
    }

    /// [`crate::numerics::silu_f32`] on 16 lanes: `x σ(x)`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    pub fn silu512(x: __m512) -> __m512 {
        _mm512_mul_ps(x, sigmoid512(x))
    }

    /// `g · silu'(z)` on whole vectors (the tail by the scalar function), with the operations
    /// of [`crate::numerics::silu_grad_f32`]: σ as in [`silu512`], then `σ (1 + z (1 − σ))`.
    #[target_feature(enable = "avx512f,avx512dq")]
    pub unsafe fn silu_grad512(z: &[f32], g: &[f32], out: &mut [f32]) {
        let one = _mm512_set1_ps(1.0);
        let n = z.len() / 16 * 16;
        for i in (0..n).step_by(16) {
            let x = _mm512_loadu_ps(z.as_ptr().add(i));
            let s = sigmoid512(x);
            let t = _mm512_mul_ps(x, _mm512_sub_ps(one, s));
            let d = _mm512_mul_ps(s, _mm512_add_ps(one, t));
            let o = _mm512_mul_ps(_mm512_loadu_ps(g.as_ptr().add(i)), d);
            _mm512_storeu_ps(out.as_mut_ptr().add(i), o);
        }
        for i in n..z.len() {
            out[i] = g[i] * crate::numerics::silu_grad_f32(z[i]);
        }
    }

    /// [`silu512`] with AVX2/FMA on 8 lanes.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub fn silu256(x: __m256) -> __m256 {
        let one = _mm256_set1_ps(1.0);
        let shift = _mm256_set1_ps(SHIFT);
        let xc = _mm256_max_ps(_mm256_or_ps(x, _mm256_set1_ps(-0.0)), _mm256_set1_ps(-87.0));
        let tt = _mm256_add_ps(_mm256_mul_ps(xc, _mm256_set1_ps(LOG2E)), shift);
        let n = _mm256_sub_ps(tt, shift);
        // bits(t) − bits(SHIFT) + 127, the biased exponent of 2ⁿ
        let bias = SHIFT.to_bits() as i32 - 127;
        let ni = _mm256_sub_epi32(_mm256_castps_si256(tt), _mm256_set1_epi32(bias));
        let r = _mm256_sub_ps(
            _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_HI), xc),
            _mm256_mul_ps(n, _mm256_set1_ps(LN2_LO)),
        );
        let mut p = _mm256_set1_ps(POLY[0]);
        for &q in &POLY[1..] {
            p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(q));
        }
        let scale = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(ni));
        let e = _mm256_mul_ps(p, scale);
        let rcp = _mm256_div_ps(one, _mm256_add_ps(one, e));
        let ge = _mm256_cmp_ps::<_CMP_GE_OQ>(x, _mm256_setzero_ps());
        let s = _mm256_blendv_ps(_mm256_mul_ps(e, rcp), rcp, ge);
        _mm256_mul_ps(x, s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::kernel::{gemm, Mat};

    fn lcg(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 4.0
            })
            .collect()
    }

    /// Against `matrixmultiply` plus the scalar epilogue, on every instruction set this CPU
    /// has: partial row and column tiles, both panel widths, k past one KC block, a strided `a`.
    #[test]
    fn products_equal_matrixmultiply_bitwise() {
        for &(rows, k, n, lda) in &[
            (1, 1, 1, 1),
            (13, 2, 256, 2),
            (256, 256, 256, 256),
            (37, 130, 33, 140),
            (50, 300, 17, 300),
            (25, 64, 2, 64),
            (7, 600, 48, 601),
        ] {
            let a = lcg(rows * lda, 1);
            let w = lcg(k * n, 2);
            let init = lcg(n, 3);
            let prev = lcg(rows * n, 4);
            let mut z_ref = Vec::new();
            for _ in 0..rows {
                z_ref.extend_from_slice(&init);
            }
            // matrixmultiply is the reference where it runs FMA kernels (x86 without FMA: the
            // portable path's own chain, which every path must match).
            if cfg!(target_arch = "x86_64") && Isa::detect() == Isa::Portable {
                let lhs = Lhs {
                    data: &a,
                    ld: lda,
                    rows,
                };
                let linear = Epilogue {
                    act: None,
                    shortcut: None,
                };
                let panels = Panels::pack(&w, k, n);
                product_on(Isa::Portable, lhs, &panels, &init, linear, None, &mut z_ref);
            } else {
                gemm(
                    (rows, k, n),
                    Mat::rows(&a, lda),
                    Mat::rows(&w, n),
                    1.0,
                    &mut z_ref,
                );
            }
            let panels = Panels::pack(&w, k, n);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            for isa in Isa::available() {
                let what = format!("{isa:?} rows {rows} k {k} n {n}");
                let mut lin = vec![0f32; rows * n];
                let linear = Epilogue {
                    act: None,
                    shortcut: None,
                };
                let lhs = Lhs {
                    data: &a,
                    ld: lda,
                    rows,
                };
                product_on(isa, lhs, &panels, &init, linear, None, &mut lin);
                assert_eq!(bits(&lin), bits(&z_ref), "linear, {what}");
                for act in [Activation::Silu, Activation::Relu] {
                    for shortcut in [None, Some(&prev[..])] {
                        let h_ref: Vec<f32> = z_ref
                            .iter()
                            .enumerate()
                            .map(|(i, &z)| {
                                let h = match act {
                                    Activation::Silu => silu_f32(z),
                                    Activation::Relu => z.max(0.0),
                                };
                                shortcut.map_or(h, |s| h + s[i])
                            })
                            .collect();
                        let (mut z, mut h) = (vec![0f32; rows * n], vec![0f32; rows * n]);
                        let epi = Epilogue {
                            act: Some(act),
                            shortcut,
                        };
                        product_on(isa, lhs, &panels, &init, epi, Some(&mut z), &mut h);
                        let what = format!("{what} {act:?} shortcut {}", shortcut.is_some());
                        assert_eq!(bits(&z), bits(&z_ref), "z, {what}");
                        assert_eq!(bits(&h), bits(&h_ref), "h, {what}");
                    }
                }
            }
        }
    }

    /// `g ⊙ silu'(z)` against the scalar derivative, bit for bit.
    #[test]
    fn silu_grad_equals_the_scalar_path_bitwise() {
        let z: Vec<f32> = (0..=u32::MAX)
            .step_by(1009)
            .map(f32::from_bits)
            .filter(|x| !x.is_nan())
            .collect();
        let g = lcg(z.len(), 7);
        let mut got = vec![0f32; z.len()];
        act_grad(Activation::Silu, &z, &g, &mut got);
        for ((&o, &z), &g) in got.iter().zip(&z).zip(&g) {
            let w = g * silu_grad_f32(z);
            assert!(
                o.to_bits() == w.to_bits() || (o.is_nan() && w.is_nan()),
                "silu'({z:e})"
            );
        }
    }

    /// The vector SiLUs against the scalar one on every f32 (a minute; `--ignored`).
    #[test]
    #[ignore]
    fn vector_silu_equals_scalar_on_every_f32() {
        let mut xs = vec![0f32; 1 << 20];
        for hi in 0..(1u64 << 12) {
            for (i, x) in xs.iter_mut().enumerate() {
                *x = f32::from_bits(((hi << 20) | i as u64) as u32);
            }
            let want: Vec<f32> = xs.iter().map(|&x| silu_f32(x)).collect();
            for isa in Isa::available() {
                let mut got = xs.clone();
                silu_in_place(isa, &mut got);
                for ((&g, &w), &x) in got.iter().zip(&want).zip(&xs) {
                    let same = g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan());
                    assert!(same, "{isa:?}: silu({x:e}) = {g:e}, scalar {w:e}");
                }
            }
        }
    }

    /// The vector SiLUs against the scalar one on a stride through every f32 bit pattern
    /// (NaNs, infinities, subnormals and both zeros included).
    #[test]
    fn vector_silu_equals_scalar_bitwise() {
        let mut xs: Vec<f32> = (0..=u32::MAX).step_by(997).map(f32::from_bits).collect();
        xs.extend([
            0.0,
            -0.0,
            f32::INFINITY,
            -f32::INFINITY,
            f32::NAN,
            -87.0,
            88.0,
        ]);
        xs.resize(xs.len().next_multiple_of(16), 1.0);
        let want: Vec<u32> = xs.iter().map(|&x| silu_f32(x).to_bits()).collect();
        for isa in Isa::available() {
            let mut got = xs.clone();
            silu_in_place(isa, &mut got);
            for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
                let (g, w) = (f32::from_bits(g.to_bits()), f32::from_bits(w));
                assert!(
                    g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()),
                    "{isa:?}: silu({:e}) = {g:e}, scalar {w:e}",
                    xs[i]
                );
            }
        }
    }
}
