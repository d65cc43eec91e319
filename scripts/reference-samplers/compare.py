"""Compare scoresde's multistep/stochastic samplers (Python bindings) with diffusers and the
authors' reference implementations, endpoint against endpoint, on identical grids, identical
starting points and (for the stochastic samplers) identical noise.

    /work/venv/bin/python scripts/reference-samplers/compare.py            # every case
    /work/venv/bin/python scripts/reference-samplers/compare.py unipc deis  # some cases

Case names: unipc, dpm, deis, sa, ipndm, tab, seeds, unipc-authors, ersde. The authors' files are read
from $REFERENCE_SRC (default /tmp/refs/src; see README.md); cases that need a missing file are
reported as "skipped". Not part of CI.

Every run uses n = 64 particles, x_T ~ N(0, I) from numpy default_rng(0), float64 on both sides,
the exact mixture field (mixture.py on the reference side, scoresde.Data(<toml>) on the scoresde
side) and denoise=False. The verdict is "equal" when max |endpoint difference| <= 1e-10.
"""

from __future__ import annotations

import argparse
import ast
import atexit
import contextlib
import importlib.util
import io
import math
import os
import shutil
import sys
import tempfile
import time
import types
import warnings
from functools import partial

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
warnings.filterwarnings("ignore")

import torch  # noqa: E402

import diffusers_drivers as DD  # noqa: E402
import mixture as M  # noqa: E402
import scoresde  # noqa: E402

REFS = os.environ.get("REFERENCE_SRC", "/tmp/refs/src")
N_PARTICLES = 64
TOL = 1e-10
SEED = 0  # scoresde noise seed (solver_noise and sample)

# VP path for the diffusers grids: sigma_max = 157.4 at timestep 999 must lie inside (0, 1],
# which beta_max = 20 does not give (t(157.4) > 1 there); the exact field only depends on abar.
PATH_DIFFUSERS = scoresde.Path("vp", beta_min=0.1, beta_max=25.0)
# The authors' continuous VP (Song et al. 2021): beta 0.1 .. 20, t in [1e-3, 1].
PATH_SONG = scoresde.Path("vp")

TMP = tempfile.mkdtemp(prefix="scoresde-compare-")  # mixture TOMLs and grid CSVs
atexit.register(shutil.rmtree, TMP, True)


# ------------------------------------------------------------------------------------------ io
def write_mixture_toml(m: M.GaussianMixture) -> str:
    path = os.path.join(TMP, f"{m.name}.toml")
    with open(path, "w") as f:
        for w, mu, sd in zip(m.weights, m.means, m.stds):
            cov = np.diag(sd**2)
            f.write("[[components]]\n")
            f.write(f"weight = {float(w)!r}\n")
            f.write(f"mean = [{', '.join(repr(float(v)) for v in mu)}]\n")
            rows = ", ".join("[" + ", ".join(repr(float(v)) for v in row) + "]" for row in cov)
            f.write(f"cov = [{rows}]\n\n")
    return path


_grid_counter = [0]


def write_grid(values, column: str = "sigma") -> str:
    """A grid file (header `sigma` or `t`, then one value per line, first = start)."""
    _grid_counter[0] += 1
    path = os.path.join(TMP, f"grid{_grid_counter[0]}.csv")
    with open(path, "w") as f:
        f.write(column + "\n")
        for v in values:
            f.write(repr(float(v)) + "\n")
    return path


def t_of_sigma(path, sigma):
    """scoresde's continuous t of EDM sigma (log SNR = -2 log sigma)."""
    return np.asarray(path.t_of_log_snr(-2.0 * np.log(np.asarray(sigma, dtype=np.float64))))


def diffusers_sigmas(num_steps: int) -> np.ndarray:
    """diffusers' default grid in float64 (linspace timesteps of the 1000-step linear schedule,
    sigma_min appended), as diffusers_drivers._regrid_f64 computes it."""
    ac = DD.train_alphas_cumprod_f64()
    sig = np.sqrt((1.0 - ac) / ac)
    ts = np.linspace(0, DD.NUM_TRAIN_TIMESTEPS - 1, num_steps + 1).round()[::-1][:-1].astype(np.int64)
    return np.concatenate([sig[ts], [sig[0]]])


def diffusers_timesteps(num_steps: int) -> np.ndarray:
    return np.linspace(0, DD.NUM_TRAIN_TIMESTEPS - 1, num_steps + 1).round()[::-1][:-1].astype(np.int64)


class ScoresdeField:
    """scoresde's own exact field (scoresde.Data.eps / denoise) behind mixture.py's interface
    model.eps(x, abar), model.x0(x, abar), model(x, abar) = eps. Used to re-run the reference side
    of a non-equal case: the two exact fields are different roundings of the same formulas, which
    differ by up to ~1e-12 relative far from the data (large log-sum-exp exponents)."""

    def __init__(self, data, mix: M.GaussianMixture):
        self.data, self.mix, self.name = data, mix, mix.name

    @property
    def dim(self) -> int:
        return self.mix.dim

    @staticmethod
    def _t(alpha_bar: float) -> float:
        return float(PATH_DIFFUSERS.t_of_log_snr(math.log(alpha_bar) - math.log1p(-alpha_bar)))

    def eps(self, x, alpha_bar):
        return np.asarray(self.data.eps(np.ascontiguousarray(x, dtype=np.float64), self._t(float(alpha_bar)),
                                        path=PATH_DIFFUSERS))

    def x0(self, x, alpha_bar):
        return np.asarray(self.data.denoise(np.ascontiguousarray(x, dtype=np.float64), self._t(float(alpha_bar)),
                                            path=PATH_DIFFUSERS))

    __call__ = eps


class Ctx:
    """Per-mixture state: reference model (mixture.py by default), scoresde data, x_T."""

    def __init__(self, name: str, field: str = "numpy"):
        self.name = name
        self.mix = M.MIXTURES[name]()
        self.data = scoresde.Data(write_mixture_toml(self.mix))
        self.m = self.mix if field == "numpy" else ScoresdeField(self.data, self.mix)
        self.field = field
        self.x_T = np.random.default_rng(0).standard_normal((N_PARTICLES, self.mix.dim))

    def sd(self, sampler: dict, steps: int, path, x_t=None, seed: int = SEED) -> np.ndarray:
        r = scoresde.sample(self.data, sampler=sampler, steps=steps, path=path,
                            x_t=self.x_T if x_t is None else x_t, denoise=False, seed=seed)
        return np.asarray(r.x, dtype=np.float64)

    def noise(self, draws: int, seed: int = SEED) -> np.ndarray:
        return np.asarray(scoresde.solver_noise(N_PARTICLES, self.mix.dim, draws, seed=seed), dtype=np.float64)


# ------------------------------------------------------------------------------------------ table
ROWS: list = []
_CURRENT: list = [None]  # the (function, args) being run, recorded with its rows for re-runs


def report(case: str, mix: str, n: int, ref: np.ndarray, ours: np.ndarray, note: str = "",
           expected: bool = False) -> None:
    """One table row. expected=True: a documented, intended difference (not re-run)."""
    diff = float(np.max(np.abs(ref - ours)))
    scale = float(np.max(np.abs(ref)))
    verdict = "equal" if diff <= TOL else f"{diff:.3e}"
    ROWS.append((case, mix, n, f"{diff:.2e}", f"{scale:.3f}", verdict, note, None if expected else _CURRENT[0]))
    print(f"{case:<48s} {mix:<8s} {n:>3d} {diff:>10.2e} {scale:>8.3f} {diff / scale:>8.1e}  {verdict}"
          f"{'  ' + note if note else ''}", flush=True)


def report_error(case: str, mix: str, n: int, msg: str) -> None:
    ROWS.append((case, mix, n, "-", "-", "ERROR", msg, _CURRENT[0]))
    print(f"{case:<48s} {mix:<8s} {n:>3d} {'-':>10s} {'-':>8s} {'-':>8s}  ERROR {msg}", flush=True)


def guarded(fn):
    def wrapper(case, mix, n, *a, **k):
        _CURRENT[0] = (wrapper, case, mix, n, a, k)
        try:
            fn(case, mix, n, *a, **k)
        except Exception as e:  # noqa: BLE001 - a harness: report and go on
            report_error(case, mix.name if isinstance(mix, Ctx) else mix, n, f"{type(e).__name__}: {e}")
    return wrapper


# ------------------------------------------------------------------------------------------ 1 UniPC
def case_unipc(cx: Ctx) -> None:
    for n in (8, 20):
        for order in (1, 2, 3):
            for variant in ("bh1", "bh2"):
                for px0 in (True, False):
                    for corr in (True, False):
                        name = f"unipc p{order} {variant} {'x0' if px0 else 'eps'} {'UniPC' if corr else 'UniP'}"
                        _unipc_one(name, cx, n, order, variant, px0, corr)


@guarded
def _unipc_one(name, cx, n, order, variant, px0, corr):
    ref, sig = DD.run_unipc(cx.x_T, cx.m, n, order=order, variant=variant, predict_x0=px0, corrector=corr)
    ours = cx.sd({"sampler": "unipc", "order": order, "variant": variant,
                  "prediction": "data" if px0 else "noise", "use_corrector": corr,
                  "lower_order_final": True, "spacing": "file:" + write_grid(sig)}, n, PATH_DIFFUSERS)
    report(name, cx.name, n, ref, ours)


# ------------------------------------------------------------------------------------------ 2 DPM++2M
def case_dpm(cx: Ctx) -> None:
    for n in (8, 20):
        _dpm_one("dpm++2m midpoint (diffusers) vs dpm-solver-pp2m", cx, n)


@guarded
def _dpm_one(name, cx, n):
    ref, sig = DD.run_dpmsolver(cx.x_T, cx.m, n, algorithm_type="dpmsolver++", order=2, solver_type="midpoint")
    ours = cx.sd({"sampler": "dpm-solver-pp2m", "spacing": "file:" + write_grid(sig)}, n, PATH_DIFFUSERS)
    report(name, cx.name, n, ref, ours)


# ------------------------------------------------------------------------------------------ 3 DEIS log-rho
def case_deis(cx: Ctx) -> None:
    for n in (8, 20):
        for order in (1, 2, 3):
            _deis_one(f"deis log-rho p{order} (diffusers)", cx, n, order)


@guarded
def _deis_one(name, cx, n, order):
    ref, sig = DD.run_deis(cx.x_T, cx.m, n, order=order)
    ours = cx.sd({"sampler": "deis", "order": order, "basis": "log-rho", "spacing": "file:" + write_grid(sig)},
                 n, PATH_DIFFUSERS)
    report(name, cx.name, n, ref, ours)


# ------------------------------------------------------------------------------------------ 4 SA-Solver
SA_PAIRS = ((1, 1), (2, 2), (3, 3), (2, 3), (3, 2), (2, 1), (4, 4))  # the brief's five, plus (2, 1), (4, 4)


def sa_window_in_t(n: int, lo: int = 200, hi: int = 800) -> tuple[float, float]:
    """A window [from, to] in scoresde's t (PATH_DIFFUSERS) containing exactly the grid points
    whose diffusers integer timestep satisfies lo <= timestep <= hi (diffusers' default tau_func,
    scheduling_sasolver.py:237-238): the bounds are midpoints between neighbouring grid times."""
    ts = diffusers_timesteps(n)
    t = t_of_sigma(PATH_DIFFUSERS, diffusers_sigmas(n)[:-1])  # decreasing, one per timestep
    inside = (ts >= lo) & (ts <= hi)
    idx = np.nonzero(inside)[0]
    first, last = idx[0], idx[-1]  # first = largest t inside, last = smallest t inside
    upper = 0.5 * (t[first] + t[first - 1]) if first > 0 else 1e9
    lower = 0.5 * (t[last] + t[last + 1]) if last + 1 < len(t) else 0.0
    sel = (t >= lower) & (t <= upper)
    assert np.array_equal(sel, inside), (sel, inside)
    return float(lower), float(upper)


def case_sa(cx: Ctx) -> None:
    n = 20
    win = sa_window_in_t(n)
    for pred in ("data", "noise"):
        for (p, c) in SA_PAIRS:
            for tau_name in ("0", "1", "window"):
                if pred == "noise" and (p, c) not in ((2, 2), (3, 3)):
                    continue
                _sa_one(f"sa p{p} c{c} tau={tau_name} {pred}", cx, n, p, c, tau_name, pred, win)


@guarded
def _sa_one(name, cx, n, p, c, tau_name, pred, win):
    xi = cx.noise(n)

    def noise(k, shape):
        return xi[k].reshape(shape)

    if tau_name == "0":
        tau_ref, tau, window = "zero", 0.0, [0.0, 1e9]
    elif tau_name == "1":
        tau_ref, tau, window = 1.0, 1.0, [0.0, 1e9]
    else:
        tau_ref, tau, window = "default", 1.0, list(win)
    ref, sig = DD.run_sasolver(cx.x_T, cx.m, n, predictor_order=p, corrector_order=c, tau=tau_ref,
                               algorithm_type="data_prediction" if pred == "data" else "noise_prediction",
                               noise=noise)
    ours = cx.sd({"sampler": "sa-solver", "predictor_order": p, "corrector_order": c, "tau": tau,
                  "tau_window": window, "prediction": pred, "spacing": "file:" + write_grid(sig)},
                 n, PATH_DIFFUSERS)
    note = f"window t in [{win[0]:.4f}, {win[1]:.4f}]" if tau_name == "window" else ""
    report(name, cx.name, n, ref, ours, note)


# ------------------------------------------------------------------------------------------ 5 iPNDM
AB = ([1.0], [1.5, -0.5], [23 / 12, -16 / 12, 5 / 12], [55 / 24, -59 / 24, 37 / 24, -9 / 24])


def ipndm_authors_numpy(x_T, eps_fn, alpha_bars, order: int = 4) -> np.ndarray:
    """qsh-zh/deis th_deis/sampler.py:50-95 (get_sampler_ipndm) in numpy float64, on a given
    list of abar (one per grid point). order < 4 caps the AB order (the authors' code is 4)."""
    ab = np.asarray(alpha_bars, dtype=np.float64)
    x = np.array(x_T, dtype=np.float64, copy=True)
    hist: list = []
    for i in range(len(ab) - 1):
        a_c, a_n = ab[i], ab[i + 1]
        x_coef = math.sqrt(a_n / a_c)  # sde.psi
        ddim = math.sqrt(1 - a_n) - math.sqrt(a_n / a_c) * math.sqrt(1 - a_c)  # sampler.py:73
        e = eps_fn(x, i)
        hist = [e] + hist[:3]
        c = AB[min(i, order - 1)]
        x = x_coef * x + ddim * sum(ck * ek for ck, ek in zip(c, hist))
    return x


def case_ipndm(cx: Ctx) -> None:
    n = 20
    _ipndm_diffusers("ipndm p4 (diffusers IPNDMScheduler, vp grid)", cx, n)
    for order in (1, 2, 3, 4):
        _ipndm_authors(f"ipndm p{order} (deis authors, numpy) diffusers grid", cx, n, order, "sigma")
    _ipndm_authors("ipndm p4 (deis authors, numpy) uniform-t grid", cx, n, 4, "t")


@guarded
def _ipndm_diffusers(name, cx, n):
    ref, sig = DD.run_ipndm(cx.x_T, cx.m, n, grid="vp")
    ours = cx.sd({"sampler": "ipndm", "order": 4, "spacing": "file:" + write_grid(sig)}, n, PATH_DIFFUSERS)
    report(name, cx.name, n, ref, ours)


@guarded
def _ipndm_authors(name, cx, n, order, grid):
    if grid == "sigma":
        sig = diffusers_sigmas(n)
        ab = 1.0 / (1.0 + sig**2)
        spacing, path = "file:" + write_grid(sig), PATH_DIFFUSERS
    else:  # the authors' grid: get_rev_ts(sde, N, 1, "t") = linspace(T, eps, N+1), beta 0.1..20
        t = np.linspace(1.0, 1e-3, n + 1)
        ab = M.vp_alpha_bar(t)
        spacing, path = "file:" + write_grid(t, "t"), PATH_SONG
    ref = ipndm_authors_numpy(cx.x_T, lambda x, i: cx.m.eps(x, ab[i]), ab, order)
    ours = cx.sd({"sampler": "ipndm", "order": order, "spacing": spacing}, n, path)
    report(name, cx.name, n, ref, ours)


# ------------------------------------------------------------------------------------------ 6 DEIS tAB
def tab_coefficients(ts, order: int, quad: str, beta_min: float = 0.1, beta_max: float = 20.0,
                     riemann_points: int = 10000):
    """qsh-zh/deis th_deis/multistep.py (get_ab_eps_coef) + vpsde.py in numpy float64.

    Step i (t_i -> t_{i+1}) uses degree r_i = min(i, order - 1) (order = points) with nodes
    t_i, t_{i-1}, ..., t_{i-r_i}; C_ij = int_{t_i}^{t_{i+1}} psi(tau, t_{i+1}) E(tau) l_j(tau) dtau
    with psi(a, b) = sqrt(abar_b / abar_a) (vpsde.py:58-59) and
    E(tau) = -1/2 dlog abar/dtau / sqrt(1 - abar) (vpsde.py:61-64).
    quad = "riemann": the authors' left Riemann sum, riemann_points = 10000 (multistep.py:6-15, 34-44);
    quad = "gl64": 64-point Gauss-Legendre on the step.
    Returns [(x_coef, [C_i0 (eps_i), C_i1 (eps_{i-1}), ...]) for each step]."""
    ts = np.asarray(ts, dtype=np.float64)
    dbeta = beta_max - beta_min

    def abar(t):
        return np.exp(-0.5 * t**2 * dbeta - t * beta_min)

    def integrand(tau, t_end):
        dlog = -(tau * dbeta + beta_min)  # d log abar / dtau
        return np.sqrt(abar(t_end) / abar(tau)) * (-0.5 * dlog) / np.sqrt(1.0 - abar(tau))

    gl_x, gl_w = np.polynomial.legendre.leggauss(64)
    out = []
    for i in range(len(ts) - 1):
        t0, t1 = ts[i], ts[i + 1]
        r = min(i, order - 1)
        nodes = ts[i - r:i + 1][::-1]  # t_i, t_{i-1}, ..., t_{i-r}
        if quad == "riemann":
            M_ = riemann_points
            dt = (t1 - t0) / M_
            tau = t0 + dt * np.arange(M_)
            w = np.full(M_, dt)
        else:
            tau = 0.5 * (t0 + t1) + 0.5 * (t1 - t0) * gl_x
            w = 0.5 * (t1 - t0) * gl_w
        f = integrand(tau, t1) * w
        cs = []
        for j in range(r + 1):
            ell = np.ones_like(tau)
            for k in range(r + 1):
                if k != j:
                    ell *= (tau - nodes[k]) / (nodes[j] - nodes[k])
            cs.append(float(np.sum(f * ell)))
        out.append((math.sqrt(abar(t1) / abar(t0)), cs))
    return out


def tab_run(x_T, eps_fn, coefs) -> np.ndarray:
    """th_deis/sampler.py:23-47 + multistep.py:97-103 (ab_step)."""
    x = np.array(x_T, dtype=np.float64, copy=True)
    hist: list = []
    for i, (xc, cs) in enumerate(coefs):
        hist = [eps_fn(x, i)] + hist[:3]
        x = xc * x + sum(c * e for c, e in zip(cs, hist))
    return x


def case_tab(cx: Ctx) -> None:
    for n in (10, 20):
        for order in (1, 2, 3, 4):
            _tab_one(f"deis tAB p{order} (authors rule, numpy)", cx, n, order)


@guarded
def _tab_one(name, cx, n, order):
    # The README/tests grid: t_k = (sqrt(T) + k/N (sqrt(eps) - sqrt(T)))^2, T = 1, eps = 1e-3.
    t = (1.0 + np.arange(n + 1) / n * (math.sqrt(1e-3) - 1.0)) ** 2
    ab = M.vp_alpha_bar(t)
    ours = cx.sd({"sampler": "deis", "order": order, "basis": "t", "spacing": "file:" + write_grid(t, "t")},
                 n, PATH_SONG)
    variants = [("gl64", 0, "64-pt Gauss-Legendre"), ("riemann", 10000, "10000-pt left Riemann (authors)")]
    if order == 4:  # the Riemann sum's O(1/M) error: 10x the points, 10x smaller difference
        variants.append(("riemann", 100000, "100000-pt left Riemann"))
    for quad, pts, label in variants:
        ref = tab_run(cx.x_T, lambda x, i: cx.m.eps(x, ab[i]),
                      tab_coefficients(t, order, quad, riemann_points=pts or 10000))
        report(name, cx.name, n, ref, ours, label, expected=quad == "riemann")


# ------------------------------------------------------------------------------------------ 7 SEEDS-2
def load_comfy_seeds2():
    """sample_seeds_2 and its helpers, taken verbatim from ComfyUI's comfy/k_diffusion/sampling.py
    (compiled from the source text; `comfy.model_sampling.CONST` stubbed: an EPS model)."""
    src_path = os.path.join(REFS, "ComfyUI", "comfy", "k_diffusion", "sampling.py")
    src = open(src_path).read()
    tree = ast.parse(src)
    wanted = {"sample_seeds_2", "sigma_to_half_log_snr", "half_log_snr_to_sigma", "offset_first_sigma_for_snr",
              "ei_h_phi_1", "ei_h_phi_2", "default_noise_sampler"}
    body = [nd for nd in tree.body if isinstance(nd, ast.FunctionDef) and nd.name in wanted]
    assert {nd.name for nd in body} == wanted, "ComfyUI sampling.py changed"

    class CONST:  # comfy.model_sampling.CONST (flow models); the EPS stub is not one
        pass

    from tqdm.auto import trange
    comfy_stub = types.SimpleNamespace(model_sampling=types.SimpleNamespace(CONST=CONST))
    ns = {"torch": torch, "math": math, "partial": partial, "trange": trange, "comfy": comfy_stub}
    exec(compile(ast.Module(body=body, type_ignores=[]), src_path, "exec"), ns)
    return ns["sample_seeds_2"]


class EdmDenoiser:
    """k-diffusion/ComfyUI denoiser D(x~, sigma) of an EPS model: x~ = x / alpha (EDM scale),
    sigma = EDM sigma, D = E[x0 | x_t = alpha x~] with abar = 1 / (1 + sigma^2)."""

    def __init__(self, m: M.GaussianMixture):
        self.m = m
        self.inner_model = types.SimpleNamespace(
            model_patcher=types.SimpleNamespace(get_model_object=lambda name: object()))

    def __call__(self, x, sigma, **kw):
        s = float(sigma.reshape(-1)[0])
        assert torch.all(sigma == sigma.reshape(-1)[0])
        ab = 1.0 / (1.0 + s * s)
        return torch.from_numpy(self.m.x0(math.sqrt(ab) * x.numpy(), ab))


def case_seeds(cx: Ctx) -> None:
    n = 10
    for eta in (1.0, 0.0):
        _seeds_one(f"seeds-2 eta={eta:g} r=0.5 (ComfyUI)", cx, n, eta, 0.5)
    _seeds_one("seeds-2 eta=1 r=0.3 s_noise=0.7 (ComfyUI)", cx, n, 1.0, 0.3, 0.7)


@guarded
def _seeds_one(name, cx, n, eta, r, s_noise=1.0):
    sample_seeds_2 = load_comfy_seeds2()
    sig = diffusers_sigmas(n)
    xi = cx.noise(2 * n)
    calls = []

    def noise_sampler(sigma, sigma_next):
        # scoresde: draws 2k and 2k+1 are xi_1, xi_2 of step k (N(0, I), the same in the VP and
        # EDM scales: ComfyUI multiplies by sigma~_next, i.e. sigma_vp_next / alpha_next).
        k = len(calls)
        calls.append((float(sigma), float(sigma_next)))
        return torch.from_numpy(xi[k].copy())

    a0 = 1.0 / math.sqrt(1.0 + sig[0] ** 2)
    aN = 1.0 / math.sqrt(1.0 + sig[-1] ** 2)
    xt = torch.from_numpy(cx.x_T / a0)
    out = sample_seeds_2(EdmDenoiser(cx.m), xt, torch.from_numpy(sig), disable=True, eta=eta, s_noise=s_noise,
                         noise_sampler=noise_sampler, r=r)
    ref = out.numpy() * aN
    if eta > 0:
        assert len(calls) == 2 * n, len(calls)
    ours = cx.sd({"sampler": "seeds-2", "eta": eta, "r": r, "s_noise": s_noise,
                  "spacing": "file:" + write_grid(sig)}, n, PATH_DIFFUSERS)
    report(name, cx.name, n, ref, ours)


# ------------------------------------------------------------------------------------------ 9 ER-SDE
# scoresde noise_scale -> ComfyUI noise_scaler / the authors' customized_func func_type.
ER_PHI = {"ode": (lambda l: l, 1), "reverse-sde": (lambda l: l * l, 2), "er": (None, 7)}
ER_GL_POINTS = 32  # the accurate-integral variant: Gauss-Legendre nodes replacing the Riemann nodes


def _gl_nodes_weights(m: float, points: int = ER_GL_POINTS):
    """Gauss-Legendre nodes on [0, m) in the references' "point index" units (node n <-> l_t +
    n (l_s - l_t)/m) and weights such that sum(W * f(node)) * (l_s - l_t)/m = int f: a drop-in for
    `arange(m)` + `sum` in the Riemann sums of both references."""
    u, w = np.polynomial.legendre.leggauss(points)
    return 0.5 * (u + 1.0) * m, 0.5 * w * m


def _patch(src: str, old: str, new: str, count: int = 1) -> str:
    assert src.count(old) == count, f"reference source changed: {old!r} found {src.count(old)} times"
    return src.replace(old, new)


def load_comfy_er_sde(accurate: bool = False, noise_coef=None):
    """ComfyUI's sample_er_sde (comfy/k_diffusion/sampling.py:1493-1556) and helpers, compiled from
    the source text as for SEEDS-2. accurate=True replaces its 200-point left Riemann sums (whose
    nodes and sums are float32: `point_indice` is float32, :1508, and a 0-dim float64 factor does
    not promote it) by 32-point Gauss-Legendre in float64: the node line :1508 and the two
    `torch.sum` of :1542 and :1548 are rewritten, nothing else. noise_coef (a list, one per step):
    the noise factor `s_noise * sqrt(l_t^2 - l_s^2 r^2)` of :1554 is replaced by noise_coef[i]."""
    src_path = os.path.join(REFS, "ComfyUI", "comfy", "k_diffusion", "sampling.py")
    tree = ast.parse(open(src_path).read())
    wanted = {"sample_er_sde", "sigma_to_half_log_snr", "offset_first_sigma_for_snr", "default_noise_sampler"}
    nodes = {nd.name: nd for nd in tree.body if isinstance(nd, ast.FunctionDef) and nd.name in wanted}
    assert set(nodes) == wanted, "ComfyUI sampling.py changed"
    lines = open(src_path).read().splitlines(keepends=True)
    text = "".join("".join(lines[nd.lineno - 1 - len(nd.decorator_list):nd.end_lineno]) + "\n\n"
                   for nd in nodes.values())
    pos, wts = _gl_nodes_weights(200.0)
    if accurate:
        text = _patch(text, "point_indice = torch.arange(0, num_integration_points, dtype=torch.float32, device=x.device)",
                      "point_indice = _GL_POS")
        text = _patch(text, "torch.sum(", "_gl_sum(", 2)
    if noise_coef is not None:
        text = _patch(text, "s_noise * (er_lambda_t ** 2 - er_lambda_s ** 2 * r ** 2).sqrt().nan_to_num(nan=0.0)",
                      "_NOISE_COEF[i]")

    class CONST:
        pass

    from tqdm.auto import trange
    comfy_stub = types.SimpleNamespace(model_sampling=types.SimpleNamespace(CONST=CONST))
    ns = {"torch": torch, "math": math, "partial": partial, "trange": trange, "comfy": comfy_stub,
          "_GL_POS": torch.from_numpy(pos), "_gl_sum": lambda v: torch.sum(v * torch.from_numpy(wts)),
          "_NOISE_COEF": noise_coef}
    exec(compile(text, src_path, "exec"), ns)
    return ns["sample_er_sde"]


def load_authors_er_sde(accurate: bool = False, noise_coef=None):
    """QinpengCui/ER-SDE-Solver er_sde_solver.py, executed from its source text. Its VP functions
    mix numpy and torch: the Riemann nodes are numpy (`np.arange`, :188, :288) and summed with
    `np.sum` (:204, :305, :312-313), which fails on torch tensors (ndarray * Tensor, Tensor.sum has
    no `axis`), while `numerical_clip` (:324-332) calls `torch.abs`, which fails on numpy. So
    alphas and sigmas are passed as numpy float64 arrays (x stays a torch tensor) and
    `numerical_clip` is replaced by its numpy twin (the same |arg| < 1e-6 -> 0 rule).
    accurate=True also replaces the 100-point left Riemann sums by 32-point Gauss-Legendre: the
    two VP `nums_indices` lines and the `np.sum(` calls are rewritten, nothing else. noise_coef (a
    list, one per step): `numerical_clip`, called once per step on l_t^2 - l_s^2 r^2 (:119, :199,
    :300), returns noise_coef[k]^2 instead, so that the noise factor is scoresde's."""
    path = os.path.join(REFS, "ER-SDE-Solver", "er_sde_solver.py")
    text = open(path).read()
    pos, wts = _gl_nodes_weights(100.0)
    if accurate:
        text = _patch(text, "nums_indices = np.arange(nums_intergrate, dtype=np.float64)", "nums_indices = _GL_POS", 2)
        text = _patch(text, "np.sum(", "_gl_sum(", 5)  # 4 in the VP functions, 1 in ve_2_order_taylor (not run)
    ns = {"__name__": "authors_er_sde", "_GL_POS": pos, "_gl_sum": lambda v: np.sum(np.asarray(v) * wts)}
    exec(compile(text, path, "exec"), ns)

    calls = []

    def numerical_clip(self, x, eps=1e-6):  # er_sde_solver.py:324-332 for numpy scalars
        calls.append(1)
        if noise_coef is not None:
            return np.float64(noise_coef[len(calls) - 1]) ** 2
        return np.float64(0.0) if abs(x) < eps else x

    ns["ER_SDE_Solver"].numerical_clip = numerical_clip
    return ns


def scoresde_ersde_noise_coef(sig, phi: str) -> list:
    """scoresde's noise factor per step for phi = ode: exactly 0 (src/sample/er_sde.rs sets it so;
    computed as sqrt(l_t^2 - l_s^2 r^2) it rounds to ~1.5e-8 l_t on some steps)."""
    assert phi == "ode"
    return [0.0] * (len(sig) - 1)


def case_ersde(cx: Ctx) -> None:
    for n in (10, 20):
        for order in (1, 2, 3):
            for phi in ER_PHI:
                _ersde_one(f"er-sde p{order} {phi}", cx, n, order, phi)


@guarded
def _ersde_one(name, cx, n, order, phi):
    sig = diffusers_sigmas(n)
    xi = cx.noise(n)
    ours = cx.sd({"sampler": "er-sde", "order": order, "noise_scale": phi, "spacing": "file:" + write_grid(sig)},
                 n, PATH_DIFFUSERS)
    alpha = 1.0 / np.sqrt(1.0 + sig**2)  # alpha = sqrt(abar), abar = 1/(1 + sigma~^2)
    comfy_phi, func_type = ER_PHI[phi]
    have_authors = os.path.exists(os.path.join(REFS, "ER-SDE-Solver", "er_sde_solver.py"))

    # (1) ComfyUI, EDM form: x~ = x/alpha, D(x~, sigma~), sigmas = sigma~. Its noise term (:1554) is
    # alpha_t xi s_noise sqrt(l_t^2 - l_s^2 r^2) with alpha_t = sigma/er_lambda = 1 in the EDM form,
    # i.e. m_t sqrt(...) xi in x: the scoresde draw k goes in unscaled, s_noise = 1. max_stage =
    # order (stage_used = min(max_stage, i + 1), :1522), noise_scaler = phi (None: its default,
    # :1503-1506, = "er"). For phi = ode a third run takes scoresde's noise factor, exactly 0.
    variants = [(False, None), (True, None)]
    if phi == "ode":  # see README: the references round the exact-zero noise factor to ~1e-8 l_t
        variants.append((True, scoresde_ersde_noise_coef(sig, phi)))
    note = "ode: see README (noise factor)" if phi == "ode" else ""
    for accurate, coef in variants:
        calls = []

        def noise_sampler(s, s_next):
            calls.append(1)
            return torch.from_numpy(xi[len(calls) - 1].copy())

        fn = load_comfy_er_sde(accurate, coef)
        out = fn(EdmDenoiser(cx.m), torch.from_numpy(cx.x_T / alpha[0]), torch.from_numpy(sig), disable=True,
                 s_noise=1.0, noise_sampler=noise_sampler, noise_scaler=comfy_phi, max_stage=order)
        assert len(calls) == n, len(calls)
        ref = out.numpy() * alpha[-1]
        label = (" (ComfyUI as is, 200-pt Riemann)" if not accurate else " (ComfyUI, GL32 integrals)"
                 if coef is None else " (ComfyUI GL32, zero ode noise)")
        report(name + label, cx.name, n, ref, ours, note if coef is None else "",
               expected=(not accurate and order > 1) or (phi == "ode" and coef is None))

    # (2) the authors' vp_1_order / vp_2_order_taylor / vp_3_order_taylor, model type x_start,
    # alphas = sqrt(abar), sigmas = sqrt(1 - abar) (numpy, see load_authors_er_sde), times = step
    # index; torch.randn_like injected (draw k at step k; vp_*: one call per step, :119, :199, :300).
    if not have_authors:
        return
    for accurate, coef in variants:
        ns = load_authors_er_sde(accurate, coef)
        solver = ns["ER_SDE_Solver"](sde_type="vp", model_prediction_type="x_start")
        run = {1: solver.vp_1_order, 2: solver.vp_2_order_taylor, 3: solver.vp_3_order_taylor}[order]
        alphas = alpha.copy()
        sigmas = sig * alpha
        abar = alpha**2

        def model(x, i):
            return torch.from_numpy(cx.m.x0(x.numpy(), float(abar[int(i)])))

        drawn = []

        def randn_like(x):
            drawn.append(1)
            return torch.from_numpy(xi[len(drawn) - 1].copy())

        saved = torch.randn_like
        torch.randn_like = randn_like
        try:
            out = run(model, torch.from_numpy(cx.x_T.copy()), alphas, sigmas, torch.arange(n + 1),
                      fn_lambda=partial(ns["customized_func"], func_type=func_type))
        finally:
            torch.randn_like = saved
        assert len(drawn) == n, len(drawn)
        ref = np.asarray(out, dtype=np.float64)
        label = (" (authors as is, 100-pt Riemann)" if not accurate else " (authors, GL32 integrals)"
                 if coef is None else " (authors GL32, zero ode noise)")
        report(name + label, cx.name, n, ref, ours, note if coef is None else "",
               expected=(not accurate and order > 1) or (phi == "ode" and coef is None))


# ------------------------------------------------------------------------------------------ 8 UniPC authors
def load_authors_unipc():
    path = os.path.join(REFS, "UniPC", "uni_pc.py")
    spec = importlib.util.spec_from_file_location("authors_uni_pc", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def case_unipc_authors(cx: Ctx) -> None:
    U = load_authors_unipc()
    for n in (8, 20):
        for order in (1, 2, 3):
            for variant in ("bh1", "bh2"):
                for px0 in (True, False):
                    _unipc_authors_one(f"unipc authors p{order} {variant} {'x0' if px0 else 'eps'} logSNR",
                                       cx, n, U, order, variant, px0)


@guarded
def _unipc_authors_one(name, cx, n, U, order, variant, px0):
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # uni_pc.py builds torch.tensor(t) / linspace in the default dtype
    try:
        ns = U.NoiseScheduleVP("linear", continuous_beta_0=0.1, continuous_beta_1=20.0, dtype=torch.float64)

        def model(x, t):  # x: (n, d, 1, 1), uni_pc.py's einsums want image-shaped (b, c, h, w)
            t = t.reshape(-1)
            assert torch.all(t == t[0])
            e = cx.m.eps(x.reshape(x.shape[0], -1).numpy(), float(M.vp_alpha_bar(float(t[0]))))
            return torch.from_numpy(e).reshape(x.shape)

        fn = U.model_wrapper(model, ns, model_type="noise")
        uni = U.UniPC(fn, ns, algorithm_type="data_prediction" if px0 else "noise_prediction", variant=variant)
        with contextlib.redirect_stdout(io.StringIO()):  # it prints on the last step
            ref = uni.sample(torch.from_numpy(cx.x_T.copy()).reshape(N_PARTICLES, -1, 1, 1), steps=n, t_start=1.0, t_end=1e-3, order=order,
                             skip_type="logSNR", method="multistep",
                             lower_order_final=True).reshape(N_PARTICLES, -1).numpy()
    finally:
        torch.set_default_dtype(old)
    ours = cx.sd({"sampler": "unipc", "order": order, "variant": variant, "prediction": "data" if px0 else "noise",
                  "use_corrector": True, "lower_order_final": True, "spacing": "logsnr"}, n, PATH_SONG)
    report(name, cx.name, n, ref, ours)


# ------------------------------------------------------------------------------------------ main
CASES = {
    "unipc": (case_unipc, None),
    "dpm": (case_dpm, None),
    "deis": (case_deis, None),
    "sa": (case_sa, None),
    "ipndm": (case_ipndm, None),
    "tab": (case_tab, None),
    "seeds": (case_seeds, os.path.join("ComfyUI", "comfy", "k_diffusion", "sampling.py")),
    "unipc-authors": (case_unipc_authors, os.path.join("UniPC", "uni_pc.py")),
    "ersde": (case_ersde, os.path.join("ComfyUI", "comfy", "k_diffusion", "sampling.py")),
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("cases", nargs="*", help="subset of: " + ", ".join(CASES) + " (default: all)")
    ap.add_argument("--no-rerun", action="store_true",
                    help="do not re-run the non-equal cases with scoresde's field on the reference side")
    args = ap.parse_args(argv)
    names = args.cases or list(CASES)
    for c in names:
        if c not in CASES:
            ap.error(f"unknown case {c!r} (known: {', '.join(CASES)})")
    torch.set_num_threads(1)
    print(f"diffusers {DD.DIFFUSERS_VERSION}, torch {torch.__version__}, numpy {np.__version__}, "
          f"scoresde {getattr(scoresde, '__version__', '?')}; n = {N_PARTICLES}; equal: max|diff| <= {TOL:g}")
    print(f"{'case':<48s} {'mixture':<8s} {'N':>3s} {'max|diff|':>10s} {'max|x|':>8s} {'rel':>8s}  verdict")
    t0 = time.time()
    ctxs = [Ctx(name) for name in M.MIXTURES]
    for c in names:
        fn, needs = CASES[c]
        if needs is not None and not os.path.exists(os.path.join(REFS, needs)):
            print(f"{c}: skipped ({os.path.join(REFS, needs)} not found; see README.md)")
            continue
        for cx in ctxs:
            fn(cx)
    bad = [r for r in ROWS if r[5] != "equal"]
    n_expected = sum(r[7] is None and r[5] != "ERROR" for r in bad)
    print(f"\n{len(ROWS)} comparisons, {len(ROWS) - len(bad)} equal, {len(bad)} not equal "
          f"({n_expected} of them documented in README.md: the references' Riemann sums (tAB, ER-SDE) and "
          f"ComfyUI's rounded ER-SDE ode noise factor) "
          f"({time.time() - t0:.1f} s)")
    if any(r[7] is not None for r in bad) and not args.no_rerun:
        # Same cases, reference side driven by scoresde's own field: what remains is the samplers.
        print("\nNon-equal cases re-run with scoresde's field (scoresde.Data.eps/denoise) on the reference side:")
        first = len(ROWS)
        alt = {cx.name: Ctx(cx.name, field="scoresde") for cx in ctxs}
        seen = set()
        for r in bad:
            call = r[7]
            if call is None or id(call) in seen:
                continue
            seen.add(id(call))
            wrapper, case, cx, n, a, k = call
            wrapper(case, alt[cx.name], n, *a, **k)
        again = ROWS[first:]
        print(f"{len(again)} re-run comparisons, {sum(r[5] == 'equal' for r in again)} equal")
    return 0


if __name__ == "__main__":
    sys.exit(main())
