"""Self-checks of the reference harness: /work/venv/bin/python -m pytest -q scripts/reference-samplers"""

import math
import os
import sys
import warnings

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
warnings.filterwarnings("ignore", category=FutureWarning)

import mixture as M  # noqa: E402


# ------------------------------------------------------------------ mixture.py
@pytest.mark.parametrize("name", list(M.MIXTURES))
@pytest.mark.parametrize("ab", [0.0, 1e-4, 0.3, 0.9, 0.999, 1.0])
def test_score_is_gradient_of_log_prob(name, ab):
    m = M.MIXTURES[name]()
    x = np.random.default_rng(3).standard_normal((5, m.dim)) * 1.5
    h = 1e-5
    fd = np.empty_like(x)
    for j in range(m.dim):
        e = np.zeros(m.dim)
        e[j] = h
        fd[:, j] = (m.log_prob(x + e, ab) - m.log_prob(x - e, ab)) / (2 * h)
    np.testing.assert_allclose(m.score(x, ab), fd, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", list(M.MIXTURES))
@pytest.mark.parametrize("ab", [1e-4, 0.3, 0.9, 0.999])
def test_x0_forms_agree(name, ab):
    m = M.MIXTURES[name]()
    x = np.random.default_rng(4).standard_normal((7, m.dim))
    np.testing.assert_allclose(m.x0(x, ab), m.x0_from_eps(x, ab), rtol=1e-9, atol=1e-9)
    # eps = -sqrt(1-ab) score
    np.testing.assert_allclose(m.eps(x, ab), -math.sqrt(1 - ab) * m.score(x, ab), rtol=1e-14)


def test_limits():
    m = M.gmm_8d()
    x = np.random.default_rng(5).standard_normal((4, 8))
    np.testing.assert_allclose(m.eps(x, 0.0), x, rtol=1e-14)  # pure noise: eps = x
    np.testing.assert_allclose(m.x0(x, 0.0), np.tile(m.mean(), (4, 1)), rtol=1e-14)  # prior mean
    assert np.all(m.eps(x, 1.0) == 0.0)


def test_per_row_alpha_bar():
    m = M.gmm_8d()
    x = np.random.default_rng(6).standard_normal((3, 8))
    abs_ = np.array([0.1, 0.5, 0.9])
    e = m.eps(x, abs_)
    for i in range(3):
        np.testing.assert_allclose(e[i], m.eps(x[i:i + 1], abs_[i])[0], rtol=1e-14)


def test_gmm8_literals_match_generator():
    mu, sd = M._generate_gmm8_raw()
    np.testing.assert_array_equal(np.round(mu, 3), np.array(M.GMM8_MEANS))
    np.testing.assert_array_equal(np.round(sd, 3), np.array(M.GMM8_STDS))
    assert sd.min() >= 0.3 and sd.max() <= 0.8


def test_vp_schedule():
    t = np.linspace(1e-5, 1.0, 101)
    m, s = M.vp_m(t), M.vp_s(t)
    np.testing.assert_allclose(m**2 + s**2, 1.0, rtol=1e-15)
    np.testing.assert_allclose(np.log(m), -0.25 * t**2 * 19.9 - 0.5 * t * 0.1, rtol=1e-12, atol=1e-16)
    np.testing.assert_allclose(M.vp_t_from_log_alpha_bar(2 * M.vp_log_mean_coeff(t)), t, rtol=1e-14)
    np.testing.assert_allclose(M.vp_t_from_alpha_bar(M.vp_alpha_bar(t)), t, rtol=1e-9)  # exp/log near 1
    np.testing.assert_allclose(M.vp_t_from_sigma(s / m), t, rtol=1e-12)
    assert M.vp_t_from_alpha_bar(1.0) == 0.0


# ------------------------------------------------------------------ diffusers_drivers.py
D = pytest.importorskip("diffusers_drivers")


def test_unipc_order1_is_ddim():
    for key, diff in D.self_check(n=16, num_steps=10).items():
        assert diff < 1e-12, (key, diff)


@pytest.fixture(scope="module")
def setup():
    m = M.gmm_8d()
    x_T = np.random.default_rng(1).standard_normal((8, 8))
    return m, x_T


def _check(out, n_steps, grid=None):
    end, sig = out
    assert np.all(np.isfinite(end))
    assert sig.shape == (n_steps + 1,)
    if grid is not None:
        np.testing.assert_allclose(sig, grid, rtol=1e-14, atol=0)
    return end


@pytest.mark.parametrize("N", [8, 20])
def test_all_drivers_run_on_one_grid(setup, N):
    m, x_T = setup
    _, grid = D.run_unipc(x_T, m, N)
    assert grid[-1] == pytest.approx(math.sqrt(1e-4 / (1 - 1e-4)), rel=1e-12)  # sigma_min
    for order in (1, 2, 3):
        for variant in ("bh1", "bh2"):
            for px0 in (True, False):
                for corr in (True, False):
                    for lof in (True, False):
                        _check(D.run_unipc(x_T, m, N, order=order, variant=variant, predict_x0=px0,
                                           corrector=corr, lower_order_final=lof), N, grid)
    for alg in ("dpmsolver++", "dpmsolver"):
        for st in ("midpoint", "heun"):
            for order in (1, 2, 3):
                _check(D.run_dpmsolver(x_T, m, N, algorithm_type=alg, order=order, solver_type=st), N, grid)
    for order in (1, 2, 3):
        _check(D.run_deis(x_T, m, N, order=order), N, grid)
    for p in (1, 2, 3):
        for c in (1, 2, 3):
            for tau in ("zero", "default"):
                _check(D.run_sasolver(x_T, m, N, p, c, tau=tau), N, grid)
    _check(D.run_ipndm(x_T, m, N, grid="vp"), N, grid)
    end, sig = D.run_ipndm(x_T, m, N, grid="native")
    assert sig[-1] == 0.0 and np.isinf(sig[0]) and np.all(np.isfinite(end))


def test_first_order_methods_agree(setup):
    """DDIM = UniP-1 = DPM-Solver(++)-1 = DEIS-1 in exact arithmetic."""
    m, x_T = setup
    ref, grid = D.run_unipc(x_T, m, 12, order=1, corrector=False)
    np.testing.assert_allclose(D.ddim_numpy(x_T, m, grid), ref, atol=1e-12)
    for out in (D.run_dpmsolver(x_T, m, 12, order=1), D.run_dpmsolver(x_T, m, 12, algorithm_type="dpmsolver", order=1),
                D.run_deis(x_T, m, 12, order=1)):
        np.testing.assert_allclose(out[0], ref, atol=1e-11)


def test_dpm_f64_patch_matters(setup):
    m, x_T = setup
    a, _ = D.run_dpmsolver(x_T, m, 20)
    b, _ = D.run_dpmsolver(x_T, m, 20, f64=False)
    d = np.abs(a - b).max()
    assert 1e-9 < d < 1e-3, d


def test_sasolver_noise_injection(setup):
    m, x_T = setup
    N = 10

    def noise_fn(seed):
        return lambda k, shape: np.random.default_rng([seed, k]).standard_normal(shape)

    a, _ = D.run_sasolver(x_T, m, N, 2, 2, tau="default", noise=noise_fn(1))
    b, _ = D.run_sasolver(x_T, m, N, 2, 2, tau="default", noise=noise_fn(1))
    c, _ = D.run_sasolver(x_T, m, N, 2, 2, tau="default", noise=noise_fn(2))
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-3
    z0, _ = D.run_sasolver(x_T, m, N, 2, 2, tau="zero", noise=noise_fn(1))
    z1, _ = D.run_sasolver(x_T, m, N, 2, 2, tau="zero", noise=noise_fn(2))
    np.testing.assert_array_equal(z0, z1)


@pytest.mark.parametrize("tau", [0.0, 0.7, 1.0])
def test_sasolver_11_matches_numpy(setup, tau):
    """SA-Solver predictor 1 / corrector 1, data prediction, constant tau, against a direct transcription
    (noise k used by predictor k and by the corrector at the start of step k + 1)."""
    m, x_T = setup
    N = 9
    zs = [np.random.default_rng([7, k]).standard_normal(x_T.shape) for k in range(N)]
    info = {}
    out, sig = D.run_sasolver(x_T, m, N, 1, 1, tau=tau, noise=lambda k, shape: zs[k], info=info)
    t2 = tau * tau
    al = 1 / np.sqrt(1 + sig**2)
    sd = sig * al
    lam = -np.log(sig)

    def step(x_from, i, j, x0, z):
        h = lam[j] - lam[i]
        c = (np.exp((1 + t2) * lam[j]) - np.exp((1 + t2) * lam[i])) / (1 + t2)
        return (np.exp(-t2 * h) * sd[j] / sd[i] * x_from + (1 + t2) * sd[j] * np.exp(-t2 * lam[j]) * c * x0
                + sd[j] * np.sqrt(-np.expm1(-2 * t2 * h)) * z)

    x = x_T.copy()
    x_prev = x0_prev = None
    for k in range(N):
        ab = al[k] ** 2
        eps = m.eps(x, ab)
        x0 = (x - sd[k] * eps) / al[k]
        if k > 0:
            x = step(x_prev, k - 1, k, x0, zs[k - 1])
        x_prev = x
        x = step(x, k, k + 1, x0, zs[k])
    np.testing.assert_allclose(out, x, rtol=1e-11, atol=1e-11)


def test_convergence_to_ode(setup):
    m, x_T = setup
    errs = []
    for N in (80, 160):
        end, sig = D.run_dpmsolver(x_T, m, N)
        ref = M.ode_reference(m, x_T, sig[0], sig[-1])
        errs.append(np.abs(end - ref).max())
    assert errs[1] < errs[0] / 3, errs  # ~2nd order


def _lam(sig):
    return -np.log(sig)  # lambda = log(alpha/sigma_vp) = -log(EDM sigma)


def test_dpmpp_2m_matches_numpy(setup):
    """DPM-Solver++(2M), midpoint, N >= 15 (no lower-order final with sigma_min)."""
    m, x_T = setup
    N = 16
    out, sig = D.run_dpmsolver(x_T, m, N)
    al = 1 / np.sqrt(1 + sig**2)
    sd = sig * al
    lam = _lam(sig)
    x = x_T.copy()
    prev = None
    for k in range(N):
        x0 = m.x0_from_eps(x, al[k] ** 2)
        h = lam[k + 1] - lam[k]
        if prev is None:
            D_ = x0
        else:
            r = (lam[k] - lam[k - 1]) / h
            D_ = x0 + 0.5 * (x0 - prev) / r
        x = sd[k + 1] / sd[k] * x - al[k + 1] * np.expm1(-h) * D_
        prev = x0
    np.testing.assert_allclose(out, x, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("variant", ["bh1", "bh2"])
def test_unipc2_matches_numpy(setup, variant):
    """UniPC-2 (predict_x0, corrector on, lower_order_final): predictor rho = 1/2, UniC-p solve."""
    m, x_T = setup
    N = 10
    out, sig = D.run_unipc(x_T, m, N, order=2, variant=variant)
    al = 1 / np.sqrt(1 + sig**2)
    sd = sig * al
    lam = _lam(sig)

    def B(hh):
        return hh if variant == "bh1" else np.expm1(hh)

    def phis(hh, p):  # b_i = hh * i! * phi_{i+1}(hh) / B(hh), i = 1..p
        out_, hk, fac = [], np.expm1(hh) / hh - 1, 1
        for i in range(1, p + 1):
            out_.append(hk * fac / B(hh))
            fac *= i + 1
            hk = hk / hh - 1 / fac
        return np.array(out_)

    x = x_T.copy()
    ms = []  # data predictions at grid points
    last_x, last_order = None, None
    for k in range(N):
        mk = m.x0_from_eps(x, al[k] ** 2)
        if k > 0:  # UniC on x_k, from last_x = x_{k-1}
            p = last_order
            h = lam[k] - lam[k - 1]
            hh = -h
            m0 = ms[-1]
            rks = [(lam[k - 2] - lam[k - 1]) / h] if p == 2 else []
            D1s = [(ms[-2] - m0) / rks[0]] if p == 2 else []
            b = phis(hh, p)
            R = np.vander(np.array(rks + [1.0]), p, increasing=True).T
            rho = np.array([0.5]) if p == 1 else np.linalg.solve(R, b)
            corr = sum(rho[j] * D1s[j] for j in range(p - 1)) if p > 1 else 0
            x = sd[k] / sd[k - 1] * last_x - al[k] * np.expm1(hh) * m0 - al[k] * B(hh) * (corr + rho[-1] * (mk - m0))
        ms.append(mk)
        order = min(2, N - k, k + 1)
        last_x, last_order = x, order
        h = lam[k + 1] - lam[k]
        hh = -h
        x_ = sd[k + 1] / sd[k] * x - al[k + 1] * np.expm1(hh) * mk
        if order == 2:
            r = (lam[k - 1] - lam[k]) / h
            x_ = x_ - al[k + 1] * B(hh) * 0.5 * (ms[-2] - mk) / r
        x = x_
    np.testing.assert_allclose(out, x, rtol=1e-12, atol=1e-12)
