"""Minimal reproduction: scoresde's SA-Solver with corrector_order = 1 runs an order-2 corrector.

    /work/venv/bin/python scripts/reference-samplers/repro_sa_corrector1.py

N = 2 steps (diffusers grid: timesteps 999, 500, then sigma_min), tau = 0, data prediction,
predictor_order = 1, 4 particles of the bimodal mixture. The only corrector is the one at the
start of step 1 (it corrects x_1 before the last, order-1, predictor). By hand (numpy):

  x1p = (s1/s0) x0 + a1 (1 - e^{-h}) D(x0, t0)                            predictor (DDIM)
  c=1: x1c = (s1/s0) x0 + a1 (1 - e^{-h}) D(x1p, t1)                        node at t1 only
       (diffusers scheduling_sasolver.py:1151-1158 with order 1; authors' sa_solver.py: the
        order-1 corrector's node list is [lambda_t])
  c=2: x1c = (s1/s0) x0 + a1 (1 - e^{-h}) D0 + a1 h/2 (D1 - D0)             nodes t1, t0 with the
       order-2 rescaling (= UniC-1 bh1; diffusers :1164-1181)
  x2  = (s2/s1) x1c + a2 (1 - e^{-h2}) D(x1p, t1)                          last predictor

scoresde (1, 1) reproduces the c = 2 formula bit for bit, diffusers (1, 1) the c = 1 formula.
"""

import math
import os
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
warnings.filterwarnings("ignore")

import compare as C  # noqa: E402
import diffusers_drivers as DD  # noqa: E402

cx = C.Ctx("bimodal")
x0 = cx.x_T[:4]
sig = C.diffusers_sigmas(2)
D = cx.m.x0


def a_s(sigma):
    a = 1.0 / math.sqrt(1.0 + sigma * sigma)
    return a, sigma * a


def by_hand(c):
    (a0, s0), (a1, s1), (a2, s2) = a_s(sig[0]), a_s(sig[1]), a_s(sig[2])
    h = math.log(a1 / s1) - math.log(a0 / s0)
    h2 = math.log(a2 / s2) - math.log(a1 / s1)
    d0 = D(x0, a0 * a0)
    x1p = s1 / s0 * x0 - a1 * math.expm1(-h) * d0
    d1 = D(x1p, a1 * a1)
    if c == 1:
        x1c = s1 / s0 * x0 - a1 * math.expm1(-h) * d1
    else:
        x1c = s1 / s0 * x0 - a1 * math.expm1(-h) * d0 + a1 * h / 2 * (d1 - d0)
    return s2 / s1 * x1c - a2 * math.expm1(-h2) * d1


grid = "file:" + C.write_grid(sig)
xi = cx.noise(2)[:, :4]
print("grid sigma:", sig)
for c in (1, 2):
    sd = np.asarray(C.scoresde.sample(cx.data, sampler={"sampler": "sa-solver", "predictor_order": 1,
                                                        "corrector_order": c, "tau": 0.0, "tau_window": [0, 1e9],
                                                        "prediction": "data", "spacing": grid},
                                      steps=2, path=C.PATH_DIFFUSERS, x_t=x0, denoise=False).x)
    ref, _ = DD.run_sasolver(x0, cx.m, 2, predictor_order=1, corrector_order=c, tau="zero",
                             noise=lambda k, shape: xi[k])
    print(f"corrector_order={c}: scoresde {sd.ravel()}")
    print(f"                   diffusers {ref.ravel()}")
    for cc in (1, 2):
        print(f"   by hand c={cc}:  |scoresde - hand| = {np.abs(sd - by_hand(cc)).max():.1e}   "
              f"|diffusers - hand| = {np.abs(ref - by_hand(cc)).max():.1e}")
