"""Run diffusers' multistep schedulers in float64 on CPU with an exact model (see mixture.py).

Every driver has the shape

    endpoint, sigmas = run_xxx(x_T, model, num_steps, **options)

  x_T       numpy (n, d) starting sample at the scheduler's first noise level (VP scale,
            i.e. x_T ~ N(0, I) approximately; diffusers' init_noise_sigma is 1 for all of these);
  model     callable model(x: (n, d) ndarray, alpha_bar: float) -> eps (n, d) ndarray
            (a mixture.GaussianMixture is such a callable);
  endpoint  numpy (n, d) after the last step (VP scale);
  sigmas    numpy (num_steps + 1,): the grid visited as EDM sigma = sqrt((1 - abar)/abar),
            sigmas[i] is where model evaluation i happens, sigmas[-1] is where the last step lands.

An optional `info` dict is filled with: timesteps (the integer/float timesteps passed to the
scheduler), alpha_bars (one per model evaluation), nfe, orders (when the scheduler exposes them).

Precision. diffusers builds its schedule in float32 (betas via torch.linspace(..., float32),
alphas_cumprod, and the inference grid `sigmas ... .astype(np.float32)` in set_timesteps). By
default (`f64=True`) the drivers rebuild betas / alphas_cumprod / alpha_t / sigma_t / lambda_t in
float64 before set_timesteps and replace the inference grid `scheduler.sigmas` by the same grid
computed in float64 afterwards (asserting it agrees with diffusers' float32 grid to ~1e-6).
DPMSolverMultistepScheduler.step additionally casts the sample to float32 on every step; with
`f64=True` the driver runs a copy of that `step` with only that line removed (checked by source
text). With `f64=False` diffusers runs untouched (its float32 grid/casts), for comparison.

The model is always evaluated at alpha_bar = 1 / (1 + scheduler.sigmas[step_index]^2), i.e.
exactly the noise level the scheduler's convert_model_output assumes, and its output is passed as
prediction_type="epsilon".
"""

from __future__ import annotations

import contextlib
import inspect
import math
import textwrap
import types
from typing import Callable, Optional, Sequence

import numpy as np
import torch

import diffusers
from diffusers import (
    DDIMScheduler,
    DEISMultistepScheduler,
    DPMSolverMultistepScheduler,
    SASolverScheduler,
    UniPCMultistepScheduler,
)
from diffusers.schedulers import scheduling_dpmsolver_multistep as _dpm_mod
from diffusers.schedulers import scheduling_sasolver as _sa_mod

try:
    from diffusers import IPNDMScheduler
except ImportError:  # pragma: no cover - older/newer diffusers
    IPNDMScheduler = None

DIFFUSERS_VERSION = diffusers.__version__

Model = Callable[[np.ndarray, float], np.ndarray]

# Default diffusers discrete schedule
NUM_TRAIN_TIMESTEPS = 1000
BETA_START = 1e-4
BETA_END = 0.02
BETA_SCHEDULE = "linear"


# ---------------------------------------------------------------------------------------------
# float64 schedule helpers
# ---------------------------------------------------------------------------------------------
def train_alphas_cumprod_f64(num_train_timesteps: int = NUM_TRAIN_TIMESTEPS, beta_start: float = BETA_START,
                             beta_end: float = BETA_END, beta_schedule: str = BETA_SCHEDULE) -> np.ndarray:
    """alphas_cumprod of diffusers' discrete schedule, computed in float64."""
    if beta_schedule == "linear":
        betas = np.linspace(beta_start, beta_end, num_train_timesteps, dtype=np.float64)
    elif beta_schedule == "scaled_linear":
        betas = np.linspace(beta_start**0.5, beta_end**0.5, num_train_timesteps, dtype=np.float64) ** 2
    else:
        raise NotImplementedError(beta_schedule)
    return np.cumprod(1.0 - betas)


def _rebuild_train_schedule_f64(sched) -> None:
    """Replace the float32 training schedule tensors built in __init__ by float64 ones (numpy
    linspace + sequential cumprod, the same numbers train_alphas_cumprod_f64 returns)."""
    cfg = sched.config
    ac = train_alphas_cumprod_f64(cfg.num_train_timesteps, cfg.beta_start, cfg.beta_end, cfg.beta_schedule)
    sched.alphas_cumprod = torch.from_numpy(ac)
    sched.alphas = torch.from_numpy(np.concatenate([[ac[0]], ac[1:] / ac[:-1]]))
    if cfg.beta_schedule == "linear":
        sched.betas = torch.from_numpy(np.linspace(cfg.beta_start, cfg.beta_end, cfg.num_train_timesteps))
    else:
        sched.betas = 1.0 - sched.alphas
    sched.alpha_t = torch.sqrt(sched.alphas_cumprod)
    sched.sigma_t = torch.sqrt(1 - sched.alphas_cumprod)
    sched.lambda_t = torch.log(sched.alpha_t) - torch.log(sched.sigma_t)
    sched.sigmas = ((1 - sched.alphas_cumprod) / sched.alphas_cumprod) ** 0.5


def _regrid_f64(sched, final_zero: bool = False) -> None:
    """After set_timesteps (default, non-Karras path): recompute `sched.sigmas` in float64.

    diffusers: sigmas = np.interp(timesteps, arange(T), sqrt((1-ac)/ac)); append sigma_last
    (sqrt((1-ac[0])/ac[0]) for final_sigmas_type="sigma_min", 0 for "zero"); .astype(float32).
    """
    ac = sched.alphas_cumprod.to(torch.float64).numpy()
    train_sig = np.sqrt((1.0 - ac) / ac)
    ts = sched.timesteps.numpy().astype(np.float64)
    grid = np.interp(ts, np.arange(len(train_sig)), train_sig)
    last = 0.0 if final_zero else math.sqrt((1.0 - ac[0]) / ac[0])
    grid = np.concatenate([grid, [last]])
    old = sched.sigmas.numpy().astype(np.float64)
    if old.shape != grid.shape or not np.allclose(old, grid, rtol=2e-6, atol=0):
        raise AssertionError(f"float64 regrid disagrees with diffusers' grid: {old} vs {grid}")
    sched.sigmas = torch.from_numpy(grid)


def _patched_dpm_step():
    """DPMSolverMultistepScheduler.step without its `sample = sample.to(torch.float32)` line."""
    src = textwrap.dedent(inspect.getsource(DPMSolverMultistepScheduler.step))
    needle = "sample = sample.to(torch.float32)"
    if src.count(needle) != 1:
        raise RuntimeError("diffusers changed DPMSolverMultistepScheduler.step; update the float64 patch")
    src = src.replace(needle, "pass  # float64 harness: upcast-to-float32 removed")
    ns: dict = {}
    exec(compile(src, inspect.getsourcefile(DPMSolverMultistepScheduler), "exec"), dict(_dpm_mod.__dict__), ns)
    return ns["step"]


_DPM_STEP_F64 = None


def _run(sched, x_T: np.ndarray, model: Model, num_steps: int, *, f64: bool, final_zero: bool = False,
         info: Optional[dict] = None, on_step: Optional[Callable] = None):
    """Common sampling loop for the schedulers that carry a `sigmas` grid (EDM sigma)."""
    if f64:
        _rebuild_train_schedule_f64(sched)
    sched.set_timesteps(num_steps)
    if f64:
        _regrid_f64(sched, final_zero=final_zero)
    sched.set_begin_index(0)
    x = torch.from_numpy(np.array(x_T, dtype=np.float64, copy=True))
    sig = sched.sigmas.to(torch.float64)
    abars, orders = [], []
    for i, t in enumerate(sched.timesteps):
        assert sched.step_index in (None, i)
        ab = 1.0 / (1.0 + float(sig[i]) ** 2)
        eps = np.asarray(model(x.numpy(), ab), dtype=np.float64)
        abars.append(ab)
        x = sched.step(torch.from_numpy(eps), t, x).prev_sample
        if f64:
            assert x.dtype == torch.float64, x.dtype
        orders.append(getattr(sched, "this_order", getattr(sched, "this_predictor_order", None)))
        if on_step is not None:
            on_step(i, sched, x)
    if info is not None:
        info.update(timesteps=sched.timesteps.numpy().copy(), alpha_bars=np.array(abars), nfe=len(abars),
                    orders=orders, config=dict(sched.config))
    return x.to(torch.float64).numpy(), sig.numpy().copy()


# ---------------------------------------------------------------------------------------------
# UniPC
# ---------------------------------------------------------------------------------------------
def run_unipc(x_T, model: Model, num_steps: int, order: int = 2, variant: str = "bh2", predict_x0: bool = True,
              corrector: bool = True, lower_order_final: bool = True,
              disable_corrector: Optional[Sequence[int]] = None, timestep_spacing: str = "linspace",
              final_sigmas_type: str = "sigma_min", f64: bool = True, info: Optional[dict] = None):
    """UniPCMultistepScheduler (UniPC-p with B(h) = bh1 / bh2).

    corrector=False disables UniC on every step (pure UniP). disable_corrector is diffusers' own
    list: an index k in it means the sample produced by step k is not corrected (the correction
    would happen at the start of step k + 1).
    """
    dc = list(range(num_steps)) if not corrector else list(disable_corrector or [])
    sched = UniPCMultistepScheduler(
        num_train_timesteps=NUM_TRAIN_TIMESTEPS, beta_start=BETA_START, beta_end=BETA_END,
        beta_schedule=BETA_SCHEDULE, solver_order=order, prediction_type="epsilon", predict_x0=predict_x0,
        solver_type=variant, lower_order_final=lower_order_final, disable_corrector=dc,
        timestep_spacing=timestep_spacing, final_sigmas_type=final_sigmas_type,
    )
    return _run(sched, x_T, model, num_steps, f64=f64, final_zero=final_sigmas_type == "zero", info=info)


# ---------------------------------------------------------------------------------------------
# DPM-Solver (multistep)
# ---------------------------------------------------------------------------------------------
def run_dpmsolver(x_T, model: Model, num_steps: int, algorithm_type: str = "dpmsolver++", order: int = 2,
                  solver_type: str = "midpoint", lower_order_final: bool = True, euler_at_final: bool = False,
                  timestep_spacing: str = "linspace", final_sigmas_type: str = "sigma_min", f64: bool = True,
                  info: Optional[dict] = None):
    """DPMSolverMultistepScheduler. algorithm_type "dpmsolver++" (data prediction) or "dpmsolver"
    (noise prediction; diffusers deprecates it and refuses final_sigmas_type="zero" for it).
    solver_type "midpoint" or "heun"; "taylor" is accepted as an alias of "heun" (diffusers' "heun"
    branch is the Taylor-expansion form of the DPM-Solver(++) papers' multistep 2nd-order update).
    DPM-Solver++(2M) = dpmsolver++, order 2, midpoint."""
    global _DPM_STEP_F64
    if solver_type == "taylor":
        solver_type = "heun"
    sched = DPMSolverMultistepScheduler(
        num_train_timesteps=NUM_TRAIN_TIMESTEPS, beta_start=BETA_START, beta_end=BETA_END,
        beta_schedule=BETA_SCHEDULE, solver_order=order, prediction_type="epsilon",
        algorithm_type=algorithm_type, solver_type=solver_type, lower_order_final=lower_order_final,
        euler_at_final=euler_at_final, timestep_spacing=timestep_spacing, final_sigmas_type=final_sigmas_type,
    )
    if f64:
        if _DPM_STEP_F64 is None:
            _DPM_STEP_F64 = _patched_dpm_step()
        sched.step = types.MethodType(_DPM_STEP_F64, sched)
    return _run(sched, x_T, model, num_steps, f64=f64, final_zero=final_sigmas_type == "zero", info=info)


# ---------------------------------------------------------------------------------------------
# DEIS
# ---------------------------------------------------------------------------------------------
def run_deis(x_T, model: Model, num_steps: int, order: int = 2, lower_order_final: bool = True,
             timestep_spacing: str = "linspace", f64: bool = True, info: Optional[dict] = None):
    """DEISMultistepScheduler (log-rho AB, orders 1-3). DEIS has no final_sigmas_type option; on
    the default path its last sigma is already sigma_min = sqrt((1-ac[0])/ac[0])."""
    sched = DEISMultistepScheduler(
        num_train_timesteps=NUM_TRAIN_TIMESTEPS, beta_start=BETA_START, beta_end=BETA_END,
        beta_schedule=BETA_SCHEDULE, solver_order=order, prediction_type="epsilon",
        lower_order_final=lower_order_final, timestep_spacing=timestep_spacing,
    )
    return _run(sched, x_T, model, num_steps, f64=f64, info=info)


# ---------------------------------------------------------------------------------------------
# SA-Solver
# ---------------------------------------------------------------------------------------------
def sasolver_default_tau(t) -> int:
    """diffusers' default tau_func (scheduling_sasolver.py __init__): 1 on 200 <= t <= 800, else 0."""
    return 1 if t >= 200 and t <= 800 else 0


@contextlib.contextmanager
def _patched_randn(fn):
    """Replace the `randn_tensor` that scheduling_sasolver.py imported (the only noise source of
    SASolverScheduler.step)."""
    orig = _sa_mod.randn_tensor
    _sa_mod.randn_tensor = fn
    try:
        yield
    finally:
        _sa_mod.randn_tensor = orig


def run_sasolver(x_T, model: Model, num_steps: int, predictor_order: int = 2, corrector_order: int = 2,
                 tau="zero", algorithm_type: str = "data_prediction", lower_order_final: bool = True,
                 noise: Optional[Callable[[int, tuple], np.ndarray]] = None, seed: int = 0,
                 timestep_spacing: str = "linspace", f64: bool = True, info: Optional[dict] = None):
    """SASolverScheduler.

    tau: "zero" (tau_func = 0: deterministic, ODE), "default" (diffusers' default: 1 for integer
         timesteps 200..800, else 0), a float (constant), or a callable tau(t_int).
    noise: optional callable noise(step_index, shape) -> ndarray ~ N(0, I). Step k draws exactly one
         noise tensor (even where tau = 0); it is used by the predictor of step k and, as
         `last_noise`, by the corrector at the start of step k + 1. Without `noise`, a float64
         torch.Generator seeded with `seed` is used (diffusers' own randn_tensor).
    """
    if tau == "zero":
        tau_func = lambda t: 0  # noqa: E731
    elif tau == "default":
        tau_func = sasolver_default_tau
    elif callable(tau):
        tau_func = tau
    else:
        c = float(tau)
        tau_func = lambda t: c  # noqa: E731
    sched = SASolverScheduler(
        num_train_timesteps=NUM_TRAIN_TIMESTEPS, beta_start=BETA_START, beta_end=BETA_END,
        beta_schedule=BETA_SCHEDULE, predictor_order=predictor_order, corrector_order=corrector_order,
        prediction_type="epsilon", tau_func=tau_func, algorithm_type=algorithm_type,
        lower_order_final=lower_order_final, timestep_spacing=timestep_spacing,
    )
    drawn = []

    def fake_randn(shape, generator=None, device=None, dtype=None, layout=None):
        k = sched.step_index
        if noise is not None:
            z = torch.from_numpy(np.asarray(noise(k, tuple(shape)), dtype=np.float64).reshape(tuple(shape)))
        else:
            z = torch.randn(tuple(shape), generator=gen, dtype=torch.float64)
        drawn.append(z.numpy().copy())
        return z

    gen = torch.Generator().manual_seed(seed)
    with _patched_randn(fake_randn):
        out = _run(sched, x_T, model, num_steps, f64=f64, info=info)
    if info is not None:
        info["noise"] = drawn
        info["taus"] = [tau_func(int(t)) for t in sched.timesteps]
    return out


# ---------------------------------------------------------------------------------------------
# IPNDM
# ---------------------------------------------------------------------------------------------
def run_ipndm(x_T, model: Model, num_steps: int, grid: str = "vp", f64: bool = True, info: Optional[dict] = None):
    """IPNDMScheduler (4th-order improved pseudo linear multistep: Adams-Bashforth on eps, with
    lower-order AB warm-up, DDIM-style transfer).

    diffusers' IPNDM has its own time variable: steps t_i = linspace(1, 0, N + 1) and, in its
    attribute names, betas = sin(pi t / 2)^2 (the noise std sigma_t) and
    alphas = sqrt(1 - betas^2) (the signal scale alpha_t); the model is called with
    timestep = atan2(betas, alphas) * 2 / pi, and its output is treated as a v-prediction
    (eps = x * sigma_t + v * alpha_t). The last step lands on sigma = 0.

    grid="native": that schedule as is (ends at EDM sigma = 0; starts at alpha = 0, where x0hat is
                   the prior mean).
    grid="vp":     trained_betas = the VP std sqrt(1 - abar) on the same grid as the other drivers
                   (linspace timesteps of the 1000-step linear schedule + sigma_min at the end), so
                   the run is comparable to UniPC/DPM/DEIS on an identical sigma list.
    The driver converts eps to the v the scheduler expects: v = (eps - sigma_t x) / alpha_t (so
    that eps is recovered exactly), or v = -x0hat at alpha_t = 0.
    """
    if IPNDMScheduler is None:
        raise RuntimeError(f"diffusers {DIFFUSERS_VERSION} has no IPNDMScheduler")
    if grid == "vp":
        ac = train_alphas_cumprod_f64()
        ts = np.linspace(0, NUM_TRAIN_TIMESTEPS - 1, num_steps + 1).round()[::-1][:-1].astype(np.int64)
        ab_grid = np.concatenate([ac[ts], [ac[0]]])
        vp_std = np.sqrt(1.0 - ab_grid)
        sched = IPNDMScheduler(num_train_timesteps=NUM_TRAIN_TIMESTEPS, trained_betas=vp_std.tolist())
        sched.set_timesteps(num_steps)
        if f64:
            sched.betas = torch.from_numpy(vp_std)
            # diffusers recomputes alphas = sqrt(1 - betas^2), which loses ~1e-11 relative where
            # abar ~ 4e-5; set sqrt(abar) directly (same value up to that rounding).
            sched.alphas = torch.from_numpy(np.sqrt(ab_grid))
            sched.timesteps = (torch.atan2(sched.betas, sched.alphas) / math.pi * 2)[:-1]
    elif grid == "native":
        sched = IPNDMScheduler(num_train_timesteps=NUM_TRAIN_TIMESTEPS)
        sched.set_timesteps(num_steps)
        if f64:
            steps = torch.cat([torch.linspace(1, 0, num_steps + 1, dtype=torch.float64)[:-1],
                               torch.zeros(1, dtype=torch.float64)])
            sched.betas = torch.sin(steps * math.pi / 2) ** 2
            sched.alphas = (1.0 - sched.betas**2) ** 0.5
            sched.timesteps = (torch.atan2(sched.betas, sched.alphas) / math.pi * 2)[:-1]
    else:
        raise ValueError(grid)
    sched.set_begin_index(0)
    sig_t = sched.betas.to(torch.float64)
    alp_t = sched.alphas.to(torch.float64)
    x = torch.from_numpy(np.array(x_T, dtype=np.float64, copy=True))
    abars = []
    for i, t in enumerate(sched.timesteps):
        a, s = float(alp_t[i]), float(sig_t[i])
        ab = a * a / (a * a + s * s)  # = a^2 since a^2 + s^2 = 1 up to rounding
        xn = x.numpy()
        if a > 0:
            eps = np.asarray(model(xn, ab), dtype=np.float64)
            v = (eps - s * xn) / a
        else:  # alpha = 0: eps = x exactly, v = -x0hat (needs a data-prediction model)
            v = -np.asarray(model.x0(xn, 0.0), dtype=np.float64)
        abars.append(ab)
        x = sched.step(torch.from_numpy(v), t, x).prev_sample
        if f64:
            assert x.dtype == torch.float64
    with np.errstate(divide="ignore"):
        sigmas = (sig_t / alp_t).numpy()
    if info is not None:
        info.update(timesteps=sched.timesteps.numpy().copy(), alpha_bars=np.array(abars), nfe=len(abars))
    return x.numpy(), sigmas


# ---------------------------------------------------------------------------------------------
# plain DDIM (numpy) for self-checks
# ---------------------------------------------------------------------------------------------
def ddim_numpy(x_T, model: Model, sigmas) -> np.ndarray:
    """Deterministic DDIM on an EDM-sigma grid: x' = sqrt(ab') x0hat + sqrt(1 - ab') eps."""
    x = np.array(x_T, dtype=np.float64, copy=True)
    for s, s_next in zip(sigmas[:-1], sigmas[1:]):
        ab, ab_next = 1.0 / (1.0 + s * s), 1.0 / (1.0 + s_next * s_next)
        eps = model(x, ab)
        x0 = (x - math.sqrt(1.0 - ab) * eps) / math.sqrt(ab)
        x = math.sqrt(ab_next) * x0 + math.sqrt(1.0 - ab_next) * eps
    return x


def self_check(n: int = 64, num_steps: int = 10, seed: int = 0) -> dict:
    """UniPC order 1 (no corrector) vs numpy DDIM on the same sigma list; both mixtures."""
    import mixture

    out = {}
    rng = np.random.default_rng(seed)
    for name, mk in mixture.MIXTURES.items():
        m = mk()
        x_T = rng.standard_normal((n, m.dim))
        for px0 in (True, False):
            end, sig = run_unipc(x_T, m, num_steps, order=1, predict_x0=px0, corrector=False)
            ref = ddim_numpy(x_T, m, sig)
            out[(name, "predict_x0" if px0 else "predict_eps")] = float(np.max(np.abs(end - ref)))
    return out


if __name__ == "__main__":
    import sys
    import os

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    print("diffusers", DIFFUSERS_VERSION, "torch", torch.__version__)
    for k, v in self_check().items():
        print("UniPC(order 1, no corrector) vs numpy DDIM", k, f"max|diff| = {v:.3e}")
