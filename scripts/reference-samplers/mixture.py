"""Exact denoisers for diagonal Gaussian mixtures under the VP kernel (float64, numpy only).

Forward kernel: x_t = sqrt(abar) * x_0 + sqrt(1 - abar) * z,  z ~ N(0, I).

If x_0 ~ sum_k w_k N(mu_k, diag(sigma_k^2)) then x_t is the mixture
    sum_k w_k N(sqrt(abar) mu_k, diag(v_k)),   v_k = abar sigma_k^2 + 1 - abar,
and everything below is closed form:
    score(x)  = sum_k r_k(x) * (-(x - sqrt(abar) mu_k) / v_k)       r_k = responsibilities (log-sum-exp)
    eps(x)    = -sqrt(1 - abar) * score(x)                            (= E[z | x_t])
    x0hat(x)  = (x - sqrt(1 - abar) eps) / sqrt(abar)                 (= E[x_0 | x_t])
              = sum_k r_k * (mu_k + sqrt(abar) sigma_k^2 / v_k * (x - sqrt(abar) mu_k))
The second form of x0hat is the one evaluated (it is finite at abar = 0); the tests check it
equals the first.

Also: the continuous VP schedule of Song et al. 2021 (beta_min = 0.1, beta_max = 20):
    m(t) = sqrt(abar(t)) = exp(-1/4 t^2 (beta_max - beta_min) - 1/2 t beta_min)
    s(t) = sqrt(1 - m(t)^2)
i.e. log abar(t) = -1/2 t^2 (beta_max - beta_min) - t beta_min, with a closed-form inverse t(abar).

Noise levels are often exchanged as diffusers'/EDM's sigma = sqrt((1 - abar) / abar);
abar = 1 / (1 + sigma^2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "GaussianMixture",
    "bimodal_1d",
    "gmm_8d",
    "MIXTURES",
    "BETA_MIN",
    "BETA_MAX",
    "vp_log_mean_coeff",
    "vp_m",
    "vp_s",
    "vp_alpha_bar",
    "vp_t_from_alpha_bar",
    "vp_t_from_log_alpha_bar",
    "vp_t_from_sigma",
    "sigma_from_alpha_bar",
    "alpha_bar_from_sigma",
    "ode_reference",
]

LOG_2PI = math.log(2.0 * math.pi)


@dataclass(frozen=True)
class GaussianMixture:
    """Diagonal Gaussian mixture: weights (K,), means (K, d), stds (K, d). float64."""

    weights: np.ndarray
    means: np.ndarray
    stds: np.ndarray
    name: str = "gmm"

    def __post_init__(self) -> None:
        w = np.asarray(self.weights, dtype=np.float64).reshape(-1)
        mu = np.atleast_2d(np.asarray(self.means, dtype=np.float64))
        sd = np.atleast_2d(np.asarray(self.stds, dtype=np.float64))
        if mu.shape[0] != w.shape[0] and mu.shape[1] == w.shape[0] and mu.shape[0] == 1:
            mu = mu.T  # d = 1 given as a flat list of K means
        if sd.shape[0] != w.shape[0] and sd.shape[1] == w.shape[0] and sd.shape[0] == 1:
            sd = sd.T
        if mu.shape != sd.shape or mu.shape[0] != w.shape[0]:
            raise ValueError(f"shape mismatch: weights {w.shape}, means {mu.shape}, stds {sd.shape}")
        if np.any(w <= 0) or abs(w.sum() - 1.0) > 1e-12:
            raise ValueError("weights must be positive and sum to 1")
        if np.any(sd <= 0):
            raise ValueError("stds must be positive")
        object.__setattr__(self, "weights", w)
        object.__setattr__(self, "means", mu)
        object.__setattr__(self, "stds", sd)

    # ------------------------------------------------------------------ basics
    @property
    def dim(self) -> int:
        return int(self.means.shape[1])

    @property
    def n_components(self) -> int:
        return int(self.weights.shape[0])

    def _prep(self, x: np.ndarray, alpha_bar) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 1:
            x = x.reshape(-1, self.dim) if self.dim == 1 else x.reshape(1, -1)
        if x.shape[-1] != self.dim:
            raise ValueError(f"x has last dim {x.shape[-1]}, mixture has d = {self.dim}")
        ab = np.asarray(alpha_bar, dtype=np.float64)
        if ab.ndim == 1:  # one alpha_bar per row
            ab = ab.reshape(-1, 1, 1)
        if np.any(ab < 0) or np.any(ab > 1):
            raise ValueError("alpha_bar must lie in [0, 1]")
        return x, ab

    def _components(self, x: np.ndarray, ab):
        """Responsibilities r (n, K), centred diffs (n, K, d), variances v (., K, d), sqrt(ab)."""
        a = np.sqrt(ab)
        var = ab * self.stds**2 + (1.0 - ab)  # (K, d) or (n, K, d)
        diff = x[:, None, :] - a * self.means  # (n, K, d)
        logp = np.log(self.weights) - 0.5 * np.sum(diff**2 / var + np.log(var) + LOG_2PI, axis=-1)  # (n, K)
        mx = logp.max(axis=1, keepdims=True)
        lse = mx + np.log(np.exp(logp - mx).sum(axis=1, keepdims=True))
        r = np.exp(logp - lse)
        return r, diff, var, a, lse[:, 0]

    # ------------------------------------------------------------------ exact quantities
    def log_prob(self, x: np.ndarray, alpha_bar: float = 1.0) -> np.ndarray:
        """log p_t(x) of the marginal at alpha_bar (alpha_bar = 1: the data distribution)."""
        x, ab = self._prep(x, alpha_bar)
        return self._components(x, ab)[4]

    def score(self, x: np.ndarray, alpha_bar) -> np.ndarray:
        x, ab = self._prep(x, alpha_bar)
        r, diff, var, _, _ = self._components(x, ab)
        return -np.einsum("nk,nkd->nd", r, diff / var)

    def eps(self, x: np.ndarray, alpha_bar) -> np.ndarray:
        """Exact noise prediction E[z | x_t = x] = -sqrt(1 - abar) * score."""
        x, ab = self._prep(x, alpha_bar)
        r, diff, var, _, _ = self._components(x, ab)
        s = np.sqrt(1.0 - ab)
        s = s.reshape(-1, 1) if np.ndim(s) == 3 else s
        return s * np.einsum("nk,nkd->nd", r, diff / var)

    def x0(self, x: np.ndarray, alpha_bar) -> np.ndarray:
        """Exact data prediction E[x_0 | x_t = x] (finite for abar in [0, 1])."""
        x, ab = self._prep(x, alpha_bar)
        r, diff, var, a, _ = self._components(x, ab)
        comp = self.means + a * self.stds**2 / var * diff  # (n, K, d)
        return np.einsum("nk,nkd->nd", r, comp)

    def x0_from_eps(self, x: np.ndarray, alpha_bar: float) -> np.ndarray:
        """x0hat = (x - sqrt(1 - abar) eps) / sqrt(abar): the textbook form (abar > 0)."""
        x = np.asarray(x, dtype=np.float64)
        return (x - math.sqrt(1.0 - alpha_bar) * self.eps(x, alpha_bar)) / math.sqrt(alpha_bar)

    __call__ = eps  # a GaussianMixture *is* a noise-prediction model: model(x, abar) -> eps

    # ------------------------------------------------------------------ sampling
    def sample(self, n: int, rng: np.random.Generator, alpha_bar: float = 1.0) -> np.ndarray:
        """Exact samples of the marginal at alpha_bar."""
        k = rng.choice(self.n_components, size=n, p=self.weights)
        x0 = self.means[k] + self.stds[k] * rng.standard_normal((n, self.dim))
        if alpha_bar == 1.0:
            return x0
        return math.sqrt(alpha_bar) * x0 + math.sqrt(1.0 - alpha_bar) * rng.standard_normal((n, self.dim))

    def mean(self) -> np.ndarray:
        return self.weights @ self.means

    def cov_diag(self) -> np.ndarray:
        m = self.mean()
        return self.weights @ (self.stds**2 + self.means**2) - m**2


# ---------------------------------------------------------------------- test mixtures
def bimodal_1d() -> GaussianMixture:
    """d = 1: 0.3 N(-1.5, 0.4^2) + 0.7 N(1.0, 0.6^2)."""
    return GaussianMixture(
        weights=np.array([0.3, 0.7]),
        means=np.array([[-1.5], [1.0]]),
        stds=np.array([[0.4], [0.6]]),
        name="bimodal",
    )


# d = 8, K = 3. Generated once by _generate_gmm8_raw() (numpy default_rng(8): means ~ N(0, 1.5^2),
# stds ~ U(0.3, 0.8)) and rounded to 3 decimals, so that other implementations can copy the
# literals exactly. test_reference.py checks the literals still match the generator.
GMM8_WEIGHTS = (0.2, 0.5, 0.3)
GMM8_MEANS = (
    (-2.607, -2.005, -2.042, -0.527, -3.469, -0.283, -1.436, 1.340),
    (1.435, 2.088, 1.151, -0.080, 1.290, 2.258, -0.980, 0.916),
    (-0.064, 2.160, -1.255, -0.452, 0.544, 0.387, -2.459, 0.540),
)
GMM8_STDS = (
    (0.308, 0.391, 0.497, 0.497, 0.608, 0.526, 0.604, 0.412),
    (0.367, 0.465, 0.348, 0.483, 0.530, 0.659, 0.734, 0.326),
    (0.778, 0.660, 0.794, 0.359, 0.488, 0.551, 0.674, 0.456),
)


def _generate_gmm8_raw() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(8)
    return rng.normal(0.0, 1.5, (3, 8)), rng.uniform(0.3, 0.8, (3, 8))


def gmm_8d() -> GaussianMixture:
    return GaussianMixture(
        weights=np.array(GMM8_WEIGHTS),
        means=np.array(GMM8_MEANS),
        stds=np.array(GMM8_STDS),
        name="gmm8",
    )


MIXTURES = {"bimodal": bimodal_1d, "gmm8": gmm_8d}


# ---------------------------------------------------------------------- VP schedule (Song et al. 2021)
BETA_MIN = 0.1
BETA_MAX = 20.0


def vp_log_mean_coeff(t, beta_min: float = BETA_MIN, beta_max: float = BETA_MAX):
    """log m(t) = log sqrt(abar(t)) = -1/4 t^2 (beta_max - beta_min) - 1/2 t beta_min."""
    t = np.asarray(t, dtype=np.float64)
    return -0.25 * t**2 * (beta_max - beta_min) - 0.5 * t * beta_min


def vp_m(t, beta_min: float = BETA_MIN, beta_max: float = BETA_MAX):
    """Mean coefficient m(t) = sqrt(abar(t))."""
    return np.exp(vp_log_mean_coeff(t, beta_min, beta_max))


def vp_s(t, beta_min: float = BETA_MIN, beta_max: float = BETA_MAX):
    """Noise std s(t) = sqrt(1 - m(t)^2), computed as sqrt(-expm1(2 log m)) (no cancellation)."""
    return np.sqrt(-np.expm1(2.0 * vp_log_mean_coeff(t, beta_min, beta_max)))


def vp_alpha_bar(t, beta_min: float = BETA_MIN, beta_max: float = BETA_MAX):
    return np.exp(2.0 * vp_log_mean_coeff(t, beta_min, beta_max))


def vp_t_from_log_alpha_bar(log_alpha_bar, beta_min: float = BETA_MIN, beta_max: float = BETA_MAX):
    """Inverse of log abar(t) = -1/2 (beta_max - beta_min) t^2 - beta_min t.

    Root of 1/2 D t^2 + beta_min t + log abar = 0 (D = beta_max - beta_min), written without
    cancellation: t = -2 log abar / (beta_min + sqrt(beta_min^2 - 2 D log abar)).
    """
    la = np.asarray(log_alpha_bar, dtype=np.float64)
    d = beta_max - beta_min
    return -2.0 * la / (beta_min + np.sqrt(beta_min**2 - 2.0 * d * la))


def vp_t_from_alpha_bar(alpha_bar, beta_min: float = BETA_MIN, beta_max: float = BETA_MAX):
    return vp_t_from_log_alpha_bar(np.log(np.asarray(alpha_bar, dtype=np.float64)), beta_min, beta_max)


def vp_t_from_sigma(sigma, beta_min: float = BETA_MIN, beta_max: float = BETA_MAX):
    """t from the EDM sigma = sqrt((1 - abar)/abar): log abar = -log1p(sigma^2)."""
    s = np.asarray(sigma, dtype=np.float64)
    return vp_t_from_log_alpha_bar(-np.log1p(s**2), beta_min, beta_max)


def sigma_from_alpha_bar(alpha_bar):
    ab = np.asarray(alpha_bar, dtype=np.float64)
    return np.sqrt((1.0 - ab) / ab)


def alpha_bar_from_sigma(sigma):
    s = np.asarray(sigma, dtype=np.float64)
    return 1.0 / (1.0 + s**2)


# ---------------------------------------------------------------------- exact ODE endpoint
def ode_reference(model: GaussianMixture, x_start: np.ndarray, sigma_from: float, sigma_to: float,
                  rtol: float = 1e-12, atol: float = 1e-12) -> np.ndarray:
    """Probability-flow ODE solved to tolerance, in EDM variables.

    y = x / sqrt(abar) = x sqrt(1 + sigma^2) obeys dy/dsigma = eps(x, abar(sigma)) exactly
    (the VP PF-ODE after the change of variables); integrated with scipy's DOP853.
    Returns x at sigma_to (VP scale).
    """
    from scipy.integrate import solve_ivp

    x_start = np.asarray(x_start, dtype=np.float64)
    shape = x_start.shape
    y0 = (x_start * math.sqrt(1.0 + sigma_from**2)).ravel()

    def f(sig, y):
        ab = 1.0 / (1.0 + sig * sig)
        x = y.reshape(shape) * math.sqrt(ab)
        return model.eps(x, ab).ravel()

    sol = solve_ivp(f, (sigma_from, sigma_to), y0, method="DOP853", rtol=rtol, atol=atol)
    if not sol.success:
        raise RuntimeError(sol.message)
    return sol.y[:, -1].reshape(shape) / math.sqrt(1.0 + sigma_to**2)
