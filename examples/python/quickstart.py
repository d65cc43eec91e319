"""The README's Python example: sample the exact 8-Gaussians score, and a model of your own."""

import numpy as np

import scoresde as sd

data = sd.Data("8gaussians")  # the exact oracle: score, log_prob, denoise, eps, velocity
run = sd.sample(data, sampler="dpm-solver-pp2m", steps=20, n=1000, seed=0)
print(run, sd.test(run.x, data)["rejected"])  # False: the exact law is not rejected

# Your model: f(x, t) -> prediction on the whole batch (here the oracle's eps, scaled wrongly).
mine = sd.Field(lambda x, t: 0.8 * data.eps(x, t), dim=2, prediction="eps")
bad = sd.sample(mine, sampler="ddim", steps=50, n=1000, seed=0)
print(bad, sd.test(bad.x, data)["rejected"])  # True: a 0.8x eps-prediction is caught
assert np.isfinite(bad.x).all()
