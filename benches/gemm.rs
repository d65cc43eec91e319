//! Single-threaded sgemm throughput on the network's shapes: matrixmultiply against OpenBLAS,
//! and the forward product on packed panels (`nn::panel`) on each instruction set the CPU has.
//! `cargo bench --bench gemm`.
use scoresde::nn::panel::{product_on, Epilogue, Isa, Lhs, Panels};
use scoresde::nn::Activation;
use std::time::Instant;

#[link(name = "openblas")]
extern "C" {
    fn cblas_sgemm(
        layout: i32,
        ta: i32,
        tb: i32,
        m: i32,
        n: i32,
        k: i32,
        alpha: f32,
        a: *const f32,
        lda: i32,
        b: *const f32,
        ldb: i32,
        beta: f32,
        c: *mut f32,
        ldc: i32,
    );
    fn openblas_set_num_threads(n: i32);
}

fn time(f: &mut dyn FnMut(), flops: f64) -> f64 {
    for _ in 0..20 {
        f();
    }
    let mut r = vec![];
    for _ in 0..7 {
        let reps = 100;
        let s = Instant::now();
        for _ in 0..reps {
            f();
        }
        r.push(flops * reps as f64 / s.elapsed().as_secs_f64() / 1e9);
    }
    r.sort_by(f64::total_cmp);
    r[3]
}

fn main() {
    unsafe { openblas_set_num_threads(1) };
    for &(m, k, n) in &[
        (256, 130, 256),
        (256, 256, 256),
        (256, 256, 2),
        (256, 2, 256),
    ] {
        let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 * 0.1).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 * 0.1).collect();
        let mut c = vec![0f32; m * n];
        let fl = 2.0 * (m * k * n) as f64;
        let mut line = format!("{m}x{k}x{n}:");
        // A as stored (the forward pass) and transposed (the weight gradient xᵀ g).
        for (what, (rs, cs), lda, trans) in [("A", (k, 1), k, 111), ("Aᵀ", (1, m), m, 112)] {
            let mm = time(
                &mut || unsafe {
                    matrixmultiply::sgemm(
                        m,
                        k,
                        n,
                        1.0,
                        a.as_ptr(),
                        rs as isize,
                        cs as isize,
                        b.as_ptr(),
                        n as isize,
                        1,
                        1.0,
                        c.as_mut_ptr(),
                        n as isize,
                        1,
                    )
                },
                fl,
            );
            let ob = time(
                &mut || unsafe {
                    cblas_sgemm(
                        101,
                        trans,
                        111,
                        m as i32,
                        n as i32,
                        k as i32,
                        1.0,
                        a.as_ptr(),
                        lda as i32,
                        b.as_ptr(),
                        n as i32,
                        1.0,
                        c.as_mut_ptr(),
                        n as i32,
                    )
                },
                fl,
            );
            line += &format!("  {what}: matrixmultiply {mm:.1}, openblas {ob:.1}");
        }
        // The forward product on packed panels (`nn::panel`), linear and with SiLU fused.
        let panels = Panels::pack(&b, k, n);
        let init = vec![0f32; n];
        let lhs = Lhs {
            data: &a,
            ld: k,
            rows: m,
        };
        for isa in Isa::available() {
            for act in [None, Some(Activation::Silu)] {
                let epi = Epilogue {
                    act,
                    shortcut: None,
                };
                let g = time(
                    &mut || product_on(isa, lhs, &panels, &init, epi, None, &mut c),
                    fl,
                );
                let what = if act.is_some() { "+silu" } else { "" };
                line += &format!("  panel {isa:?}{what} {g:.1}");
            }
        }
        println!("{line} GFLOP/s");
    }
}
