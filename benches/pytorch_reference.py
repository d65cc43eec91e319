"""PyTorch reference for `cargo bench --bench net_throughput`: the same networks, the same
batch and the same optimiser, timed the same way (median of repeated timed blocks).

    python benches/pytorch_reference.py [--threads 2]

Prints one `pytorch <what>: <rate>` line per measurement; `scripts/bench-vs-pytorch.sh` runs
it beside the Rust benchmark in one go and prints the ratios.
"""

import argparse
import math
import statistics
import time

import torch
from torch import nn


def embed(t, dim):
    """Sinusoidal embedding of tau = 1000 t (Ho et al. 2020), as scoresde's TimeEmbedding."""
    half = dim // 2
    k = torch.arange(half, dtype=torch.float64)
    freqs = torch.exp(-math.log(10000.0) * k / max(half - 1, 1))
    phase = 1000.0 * t.double()[:, None] * freqs[None, :]
    return torch.cat([phase.sin(), phase.cos()], dim=1).float()


class Net(nn.Module):
    def __init__(self, d, hidden, layers, time_dim, fourier=0, residual=False):
        super().__init__()
        self.time_dim = time_dim
        self.residual = residual
        self.register_buffer("B", torch.randn(d, fourier))
        width_in = d + 2 * fourier + time_dim
        dims = [width_in] + [hidden] * layers
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.out = nn.Linear(hidden, d)

    def forward(self, x, t):
        parts = [x]
        if self.B.shape[1] > 0:
            p = 2 * math.pi * x @ self.B
            parts += [p.sin(), p.cos()]
        h = torch.cat(parts + [embed(t, self.time_dim)], dim=1)
        for i, layer in enumerate(self.hidden):
            a = nn.functional.silu(layer(h))
            h = h + a if (self.residual and i > 0) else a
        return self.out(h)


def median_rate(fn, units, reps=5):
    fn()
    rates = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        rates.append(units / (time.perf_counter() - start))
    return statistics.median(rates)


def train_loop(net, batch, steps=100):
    """`steps` optimiser steps (Adam, clipping, EMA); returns the closure, the EMA copy and the optimiser."""
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    ema = [p.detach().clone() for p in net.parameters()]
    x0 = torch.randn(batch, 2)
    history = []

    def run():
        for _ in range(steps):
            t = torch.rand(batch) * (1 - 1e-5) + 1e-5
            log_mean = -0.25 * t**2 * 19.9 - 0.5 * t * 0.1
            m = log_mean.exp()[:, None]
            s = (1 - (2 * log_mean).exp()).sqrt()[:, None]
            eps = torch.randn(batch, 2)
            loss = ((net(m * x0 + s * eps, t) - eps) ** 2).mean()
            history.append(loss.item())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            with torch.no_grad():
                for e, p in zip(ema, net.parameters()):
                    e.mul_(0.999).add_(p, alpha=0.001)

    run.history = history
    return run, ema, opt


def train_rate(net, batch, steps=100):
    return median_rate(train_loop(net, batch, steps)[0], steps)


@torch.no_grad()
def sample_loop(net, n=10_000, steps=100):
    def run():
        x = torch.randn(n, 2)
        dt = 1.0 / steps
        for k in range(steps):
            t = torch.full((n,), 1.0 - k * dt)
            beta = 0.1 + t[:, None] * 19.9
            log_mean = -0.25 * t**2 * 19.9 - 0.5 * t * 0.1
            s = (1 - (2 * log_mean).exp()).sqrt()[:, None]
            score = -net(x, t) / s
            x = x + (0.5 * beta * x + beta * score) * dt + (beta * dt).sqrt() * torch.randn_like(x)
        return x

    return run


def sample_rate(net, n=10_000, steps=100):
    return median_rate(sample_loop(net, n, steps), n * steps, reps=3)


def whole_process(what, out):
    """What a user's script does, timed from outside as a process (`bench-vs-pytorch.sh`):
    `train`: 500 steps of the reference network at batch 1024, checkpoints (model, EMA,
    optimiser) every 100 steps and at the end, and the loss history written out; `sample`:
    load the EMA weights, 10 000 particles x 100 EM steps, save the samples."""
    import os

    net = Net(2, 256, 3, 128)
    path = os.path.join(out, "model.pt")
    if what == "train":
        run, ema, opt = train_loop(net, 1024, steps=100)
        for _ in range(5):
            run()
            torch.save({"model": net.state_dict(), "ema": ema, "opt": opt.state_dict()}, path)
        with open(os.path.join(out, "loss.csv"), "w") as f:
            f.writelines(f"{v}\n" for v in run.history)
    else:
        state = torch.load(path)
        net.load_state_dict(state["model"])
        x = sample_loop(net)()
        torch.save(x, os.path.join(out, "samples.pt"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--whole-process", choices=["train", "sample"])
    ap.add_argument("--out", default=".")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    if a.whole_process:
        whole_process(a.whole_process, a.out)
        return
    ref = Net(2, 256, 3, 128)
    print(f"pytorch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"pytorch training reference (3x256, batch 1024): {train_rate(ref, 1024):.1f} steps/s")
    print(f"pytorch sampling reference (10000 x 100 EM): {sample_rate(ref) / 1e6:.3f} M particle-steps/s")
    default = Net(2, 128, 3, 64, fourier=64)
    print(f"pytorch training default (3x128 + 64 Fourier, batch 512): {train_rate(default, 512):.1f} steps/s")


if __name__ == "__main__":
    main()
