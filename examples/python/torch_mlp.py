"""A PyTorch MLP trained on 8 Gaussians by denoising score matching, sampled with scoresde's
DPM-Solver++(2M) through the bindings and tested against the exact law.

The model is wrapped in a two-line lambda: scoresde hands it float64 numpy arrays x of shape
(n, d) and t of shape (n,), once per step on the whole batch, from the calling thread; the
lambda moves them to the model's device and back. On a GPU set DEVICE = "cuda".

    python examples/python/torch_mlp.py [--quick]
"""

from __future__ import annotations

import sys

import numpy as np
import torch

import scoresde as sd

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
QUICK = "--quick" in sys.argv
torch.manual_seed(0)

data = sd.Data("8gaussians")
path = sd.Path("vp")


class Mlp(torch.nn.Module):
    """eps(x, t): x and a sinusoidal embedding of t through three SiLU layers."""

    def __init__(self, d: int = 2, hidden: int = 128) -> None:
        super().__init__()
        self.freqs = torch.exp(torch.linspace(0.0, 6.0, 16))
        self.net = torch.nn.Sequential(
            torch.nn.Linear(d + 32, hidden),
            torch.nn.SiLU(),
            torch.nn.Linear(hidden, hidden),
            torch.nn.SiLU(),
            torch.nn.Linear(hidden, hidden),
            torch.nn.SiLU(),
            torch.nn.Linear(hidden, d),
        )

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a = t[:, None] * self.freqs.to(t.device)[None, :]
        return self.net(torch.cat([x, torch.sin(a), torch.cos(a)], dim=1))


net = Mlp().to(DEVICE)
opt = torch.optim.Adam(net.parameters(), lr=2e-3)
steps = 1500 if QUICK else 6000
x_all = torch.from_numpy(data.draw(200_000, seed=1)).float()
for k in range(steps):
    x0 = x_all[torch.randint(0, x_all.shape[0], (512,))].to(DEVICE)
    t = torch.rand(512, device=DEVICE) * (1 - 1e-3) + 1e-3
    tn = t.double().cpu().numpy()
    m = torch.from_numpy(np.asarray(path.m(tn))).float().to(DEVICE)[:, None]
    s = torch.from_numpy(np.asarray(path.s(tn))).float().to(DEVICE)[:, None]
    eps = torch.randn_like(x0)
    loss = ((net(m * x0 + s * eps, t) - eps) ** 2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()

net.eval()


@torch.no_grad()
def eps_model(x: np.ndarray, t: np.ndarray) -> np.ndarray:
    out = net(torch.from_numpy(x).float().to(DEVICE), torch.from_numpy(t).float().to(DEVICE))
    return out.double().cpu().numpy()


field = sd.Field(eps_model, dim=2, prediction="eps", path=path)
run = sd.sample(field, sampler="dpm-solver-pp2m", steps=25, n=2000, seed=0)
report = sd.test(run.x, data, alpha=0.01)
print(f"{run}  loss={loss.item():.4f}  rejected={report['rejected']}")
for t in report["tests"]:
    print(f"  {t['name']:8s} statistic={t['statistic']:.4g}  p={t['p_value']:.3f}  adjusted={t['adjusted']:.3f}")
# The verdict is a measurement of this short training, not an assertion; the samples must be finite.
assert np.isfinite(run.x).all() and run.nfe == 25
