"""Minimal reproduction: scoresde's ER-SDE with noise_scale = "ode" is not deterministic.

    /work/venv/bin/python scripts/reference-samplers/repro_ersde_ode_noise.py

For phi(l) = l the ER-SDE step is DDIM and its noise factor m_t sqrt(l_t^2 - l_s^2 r^2), with
r = phi(l_t)/phi(l_s) = l_t/l_s, is exactly 0. src/sample/er_sde.rs:133-134 computes it as

    let r = phi(lt) / phi(ls);
    let noise = kt.mean * (lt * lt - ls * ls * r * r).max(0.0).sqrt();

in float64, where ls*ls*r*r lands a few ulp above l_t^2 on some steps: the factor is then
~1.5e-8 l_t instead of 0 (the ulp-sized difference, square-rooted), and the draw of that step is
added. N = 10 on the diffusers grid, order 1, 64 particles of the bimodal mixture:

1. the endpoint changes with the seed (by ~1e-7; up to 2e-5 at order 2 on gmm8);
2. hand-written DDIM, x_t = (s_t/s_s) x + (m_t - s_t m_s/s_s) D(x, t_s) with scoresde's own
   field and path, differs from it by the same amount;
3. the same DDIM plus m_t * (that float64 factor) * draw k at step k reproduces it (<= 1e-14).

ComfyUI's sample_er_sde computes the factor with its own rounding (`(er_lambda_t ** 2 -
er_lambda_s ** 2 * r ** 2).sqrt().nan_to_num(nan=0.0)`, sampling.py:1554) and so also adds
~1e-8 noise on some steps; the authors' `numerical_clip` (er_sde_solver.py:324-332) sets an
argument below 1e-6 in absolute value to 0, which removes it.
"""

import math
import os
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
warnings.filterwarnings("ignore")

import compare as C  # noqa: E402

N = 10
cx = C.Ctx("bimodal")
path = C.PATH_DIFFUSERS
sig = C.diffusers_sigmas(N)
spacing = "file:" + C.write_grid(sig)
t = C.t_of_sigma(path, sig)
m = [float(path.m(float(u))) for u in t]
s = [float(path.s(float(u))) for u in t]
coef = C.scoresde_ersde_noise_coef(sig, "ode")  # sqrt(max(0, lt*lt - ls*ls*r*r)), er_sde.rs order

run = {seed: cx.sd({"sampler": "er-sde", "order": 1, "noise_scale": "ode", "spacing": spacing}, N, path, seed=seed)
       for seed in (0, 1)}
xi = cx.noise(N)


def ddim(with_noise: bool) -> np.ndarray:
    x = cx.x_T.copy()
    for k in range(N):
        x0 = np.asarray(cx.data.denoise(np.ascontiguousarray(x), float(t[k]), path=path))
        x = (s[k + 1] / s[k]) * x + (m[k + 1] - s[k + 1] * m[k] / s[k]) * x0
        if with_noise:
            x = x + m[k + 1] * coef[k] * xi[k]
    return x


print("step   l_s        l_t        float64 noise factor / l_t   (exact: 0)")
for k in range(N):
    print(f"{k:4d}  {s[k] / m[k]:9.4g}  {s[k + 1] / m[k + 1]:9.4g}  {coef[k] / (s[k + 1] / m[k + 1]):.2e}")
print(f"1. |scoresde(seed 0) - scoresde(seed 1)|            = {np.max(np.abs(run[0] - run[1])):.2e}")
print(f"2. |DDIM - scoresde(seed 0)|                        = {np.max(np.abs(ddim(False) - run[0])):.2e}")
print(f"3. |DDIM + m_t factor_k xi_k - scoresde(seed 0)|    = {np.max(np.abs(ddim(True) - run[0])):.2e}")
