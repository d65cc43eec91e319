"""Speed of the Python bindings (issue: Python bindings, item 6; the README quotes the output).

1. The exact 8-Gaussians score on 10^5 points: scoresde against a vectorised numpy
   implementation of the same formula (log-sum-exp responsibilities), median of repeats.
2. Sampling 10^4 particles x 100 steps with a numpy callable: the overhead per call of the
   bindings (channel to the calling thread, GIL, array hand-over, the Rust update) over the
   callable's own time, in microseconds.
3. A PyTorch MLP (3 x 128, SiLU) driven by scoresde's DPM-Solver++(2M) against the same
   multistep loop written in PyTorch (same grid, same update, same model), 10^4 particles x 20
   steps, median of repeats.

    python bench.py [--device cuda] [--threads N]

On a CUDA machine `--device cuda` runs part 3 on the GPU (the callable moves x and t there and
back); parts 1 and 2 always measure this machine's CPU cores.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

import scoresde as sd


def median_time(f, repeats: int) -> float:
    f()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def numpy_score(x: np.ndarray, t: float, path: sd.Path) -> np.ndarray:
    """The 8-Gaussians score on VP in numpy: means 4·dir/1.414, std 0.5/1.414, equal weights."""
    s2 = np.sqrt(0.5)
    dirs = np.array([[1, 0], [-1, 0], [0, 1], [0, -1], [s2, s2], [s2, -s2], [-s2, s2], [-s2, -s2]])
    mu = 4.0 * dirs / 1.414
    m, s = path.m(t), path.s(t)
    var = m**2 * (0.5 / 1.414) ** 2 + s**2
    diff = x[:, None, :] - m * mu[None, :, :]  # (n, K, d)
    logits = -0.5 * (diff**2).sum(-1) / var
    logits -= logits.max(axis=1, keepdims=True)
    r = np.exp(logits)
    r /= r.sum(axis=1, keepdims=True)
    return -(r[:, :, None] * diff).sum(1) / var


def part1(threads: int | None) -> None:
    data, path = sd.Data("8gaussians"), sd.Path("vp")
    x = np.random.default_rng(0).normal(size=(100_000, 2)) * 2
    ours = data.score(x, 0.3, threads=threads)
    ref = numpy_score(x, 0.3, path)
    err = np.abs(ours - ref).max()
    t_ours = median_time(lambda: data.score(x, 0.3, threads=threads), 20)
    t_np = median_time(lambda: numpy_score(x, 0.3, path), 10)
    print(f"[1] exact 8gaussians score, 1e5 points: scoresde {t_ours * 1e3:.2f} ms, numpy {t_np * 1e3:.2f} ms, "
          f"ratio {t_np / t_ours:.1f}x (max |difference| {err:.1e})")


def part2(threads: int | None) -> None:
    path = sd.Path("vp")
    own = [0.0]
    calls = [0]

    def f(x: np.ndarray, t: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        out = -x / (path.m(t[0]) ** 2 + path.s(t[0]) ** 2)
        own[0] += time.perf_counter() - t0
        calls[0] += 1
        return out

    field = sd.Field(f, dim=2, prediction="score")
    runs = []
    for _ in range(5):
        own[0], calls[0] = 0.0, 0
        t0 = time.perf_counter()
        sd.sample(field, sampler="em", steps=100, n=10_000, seed=0, threads=threads)
        total = time.perf_counter() - t0
        runs.append((total, own[0], calls[0]))
    total, callable_time, n_calls = sorted(runs)[len(runs) // 2]
    over = (total - callable_time) / n_calls * 1e6
    print(f"[2] numpy callable, 1e4 particles x 100 EM steps: {total * 1e3:.1f} ms total, callable "
          f"{callable_time * 1e3:.1f} ms ({callable_time / total:.0%}), {n_calls} calls, overhead {over:.0f} us per call")


def part3(device: str, threads: int | None) -> None:
    import torch

    torch.manual_seed(0)
    if threads:
        torch.set_num_threads(threads)
    net = torch.nn.Sequential(
        torch.nn.Linear(3, 128), torch.nn.SiLU(), torch.nn.Linear(128, 128), torch.nn.SiLU(),
        torch.nn.Linear(128, 128), torch.nn.SiLU(), torch.nn.Linear(128, 2),
    ).to(device)
    net.eval()

    @torch.no_grad()
    def eps_torch(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return net(torch.cat([x, t[:, None]], dim=1))

    def eps_numpy(x: np.ndarray, t: np.ndarray) -> np.ndarray:
        xt = torch.from_numpy(x).float().to(device)
        tt = torch.from_numpy(t).float().to(device)
        return eps_torch(xt, tt).double().cpu().numpy()

    path, n, steps, eps = sd.Path("vp"), 10_000, 20, 1e-3
    field = sd.Field(eps_numpy, dim=2, prediction="eps", path=path)
    run = lambda: sd.sample(field, sampler="dpm-solver-pp2m", steps=steps, n=n, seed=0, threads=threads)

    # The same loop in PyTorch: a uniform log-SNR grid from t = 1 to eps, DPM-Solver++(2M).
    lam = np.linspace(path.log_snr(1.0), path.log_snr(eps), steps + 1)
    ts = np.array([1.0] + [path.t_of_log_snr(v) for v in lam[1:-1]] + [eps])
    al, si, la = path.m(ts), path.s(ts), path.log_snr(ts) / 2  # la: log(m/s) = lambda/2 in Lu et al.

    def torch_loop() -> torch.Tensor:
        g = torch.Generator().manual_seed(0)
        x = torch.randn(n, 2, generator=g).to(device)
        prev = None
        for i in range(steps):
            t = torch.full((n,), float(ts[i]), device=device)
            x0 = (x - si[i] * eps_torch(x, t)) / al[i]
            h = la[i + 1] - la[i]
            if prev is None:
                d = x0
            else:
                r = prev[1] / h
                d = (1 + 0.5 / r) * x0 - (0.5 / r) * prev[0]
            x = (si[i + 1] / si[i]) * x - al[i + 1] * np.expm1(-h) * d
            prev = (x0, h)
        if device == "cuda":
            torch.cuda.synchronize()
        return x

    t_sd = median_time(run, 7)
    t_torch = median_time(torch_loop, 7)
    t_model = median_time(lambda: eps_numpy(np.zeros((n, 2)), np.full(n, 0.5)), 20)
    print(f"[3] PyTorch MLP 3x128 on {device}, 1e4 particles x {steps} DPM-Solver++(2M) steps: scoresde "
          f"{t_sd * 1e3:.1f} ms, pure PyTorch {t_torch * 1e3:.1f} ms, ratio {t_sd / t_torch:.3f} "
          f"(per step: +{(t_sd - t_torch) / steps * 1e6:.0f} us; one model call with its transfers {t_model * 1e3:.2f} ms)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--skip-torch", action="store_true")
    a = ap.parse_args()
    print(f"scoresde {sd.__version__}, numpy {np.__version__}, {os.cpu_count()} CPUs")
    part1(a.threads)
    part2(a.threads)
    if not a.skip_torch:
        import torch

        print(f"torch {torch.__version__}")
        part3(a.device, a.threads)


if __name__ == "__main__":
    main()
