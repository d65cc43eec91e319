"""PyTorch references for the exact-oracle benchmarks (`cargo bench --bench em_throughput` and
`cargo bench --bench mixture_score`), timed the same way.

    python benches/pytorch_oracle.py [--threads 2] [--particles 100000] [--steps 1000]

* reverse Euler-Maruyama with the exact 8gaussians score (VP-SDE, beta linear 0.1 -> 20,
  T = 1 -> eps = 1e-3, uniform grid; Song et al. 2021, eq. 6 discretised), float32, the update
  under `torch.compile` (and eager), fresh noise each step, best of 3 after a compile warm-up;
* the score of an isotropic Gaussian mixture at (d, K), batched in float64 the way one writes it
  in PyTorch (squared distances by one matmul, `logsumexp`/softmax, responsibilities times the
  means by a second matmul), particle-scores per second.

Prints one `pytorch <what>: <rate>` line per measurement; `scripts/bench-vs-pytorch.sh` runs it
beside the Rust benchmarks and prints the ratios.
"""

import argparse
import math
import time

import torch


def eight_gaussians(dtype):
    s = 1.0 / math.sqrt(2.0)
    dirs = [[1, 0], [-1, 0], [0, 1], [0, -1], [s, s], [s, -s], [-s, s], [-s, -s]]
    means = torch.tensor(dirs, dtype=dtype) * 4.0 / 1.414
    var = (0.5 / 1.414) ** 2
    return means, var


def mixture_score(x, m, s2, means, var):
    """grad log p_t(x) for the equal-weight isotropic mixture N(m mu_k, (m^2 var + s2) I)."""
    c = m * m * var + s2
    diff = x[:, None, :] - m * means[None, :, :]
    logits = -0.5 * (diff * diff).sum(-1) / c
    r = torch.softmax(logits, dim=1)
    return -(r[:, :, None] * diff).sum(1) / c


def em_update(x, means, var, m, s2, beta, h):
    """One reverse-EM step; the time-dependent scalars come in as 0-d tensors so that one
    compiled graph serves every step."""
    score = mixture_score(x, m, s2, means, var)
    return x + (0.5 * beta * x + beta * score) * h + torch.sqrt(beta * h) * torch.randn_like(x)


def em_rate(n, steps, compiled):
    torch.manual_seed(0)
    means, var = eight_gaussians(torch.float32)
    update = torch.compile(em_update, dynamic=False) if compiled else em_update
    beta0, beta1, t_end, eps = 0.1, 20.0, 1.0, 1e-3
    h = (t_end - eps) / steps
    coeffs = []
    for i in range(steps):
        t = t_end - i * h
        integral = beta0 * t + 0.5 * (beta1 - beta0) * t * t
        coeffs.append(
            [torch.tensor(v, dtype=torch.float32) for v in
             (math.exp(-0.5 * integral), -math.expm1(-integral), beta0 + t * (beta1 - beta0), h)]
        )

    def run(x):
        for m, s2, beta, hh in coeffs:
            x = update(x, means, var, m, s2, beta, hh)
        return x

    run(torch.randn(n, 2))  # compile warm-up
    best = math.inf
    for _ in range(3):
        x = torch.randn(n, 2)
        start = time.perf_counter()
        y = run(x)
        best = min(best, time.perf_counter() - start)
        assert torch.isfinite(y).all()
    return n * steps / best / 1e6


def score_rate(d, k, n):
    g = torch.Generator().manual_seed(0)
    means = torch.randn(k, d, generator=g, dtype=torch.float64) * 3.0
    var = 0.25
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    m, s2 = 0.6, 0.64
    c = m * m * var + s2
    mu = m * means
    mu2 = (mu * mu).sum(1)

    def score():
        # |x - m mu_k|^2 = |x|^2 - 2 x.(m mu_k) + |m mu_k|^2, the cross term by one matmul.
        logits = -0.5 * ((x * x).sum(1, keepdim=True) - 2.0 * x @ mu.T + mu2[None, :]) / c
        r = torch.softmax(logits, dim=1)
        return (r @ mu - x) / c

    score()
    best = math.inf
    for _ in range(5):
        start = time.perf_counter()
        reps = 0
        while time.perf_counter() - start < 0.5:
            score()
            reps += 1
        best = min(best, (time.perf_counter() - start) / reps)
    return n / best / 1e6


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--particles", type=int, default=100_000)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--skip-em", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"pytorch {torch.__version__}, {args.threads} threads")
    if not args.skip_em:
        for compiled in (True, False):
            what = "compiled" if compiled else "eager"
            rate = em_rate(args.particles, args.steps, compiled)
            print(
                f"pytorch exact EM {what} (8gaussians, float32, {args.particles} x {args.steps}): "
                f"{rate:.2f} M particle-steps/s"
            )
    for d, k in [(2, 8), (2, 1000), (16, 100), (64, 100), (64, 1000)]:
        rate = score_rate(d, k, 10_000)
        print(f"pytorch mixture score d={d} K={k} (float64, batch 10000): {rate:.3f} M particle-scores/s")


if __name__ == "__main__":
    main()
