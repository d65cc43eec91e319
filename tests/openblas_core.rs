//! OpenBLAS after `tune_runtime`: the vector kernels the CPU has (not the SSE3 fallback an
//! older OpenBLAS picks for a CPU model it does not know), and still correct. Its own test
//! binary: `tune_runtime` sets an environment variable, which must happen before other threads.
#![cfg(all(target_os = "linux", target_env = "gnu"))]

use ndarray::Array2;

#[test]
fn openblas_runs_the_cpus_vector_kernels_and_stays_correct() {
    let chosen = std::env::var_os("OPENBLAS_CORETYPE").is_some();
    scoresde::nn::tune_runtime();
    let core = scoresde::nn::openblas_core_name();
    #[cfg(target_arch = "x86_64")]
    if !chosen
        && scoresde::nn::openblas_core_switchable()
        && is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
    {
        assert_ne!(core, "Prescott", "OpenBLAS left on its SSE3 kernels");
    }
    // Child processes choose for their own CPU.
    assert_eq!(std::env::var_os("OPENBLAS_CORETYPE").is_some(), chosen);
    // dgemm (through ndarray's BLAS path) and a LAPACK solve against plain loops.
    let (m, k, n) = (150, 300, 70);
    let a = Array2::from_shape_fn((m, k), |(i, j)| ((i * 7 + j * 3) % 11) as f64 / 11.0 - 0.4);
    let b = Array2::from_shape_fn((k, n), |(i, j)| ((i * 5 + j * 13) % 17) as f64 / 17.0 - 0.5);
    let c = a.dot(&b);
    for i in 0..m {
        for j in 0..n {
            let want: f64 = (0..k).map(|p| a[[i, p]] * b[[p, j]]).sum();
            assert!(
                (c[[i, j]] - want).abs() <= 1e-12 * (1.0 + want.abs()),
                "dgemm ({i}, {j}) on {core}"
            );
        }
    }
    use ndarray_linalg::Cholesky;
    let spd = a.t().dot(&a) + Array2::<f64>::eye(k);
    let l = spd.cholesky(ndarray_linalg::UPLO::Lower).expect("cholesky");
    let back = l.dot(&l.t());
    let err = (&back - &spd).iter().fold(0f64, |e, v| e.max(v.abs()));
    assert!(err < 1e-10, "cholesky on {core}: max error {err:e}");
}
