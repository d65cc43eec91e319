"""The Python bindings against independent numpy formulas, the library's own oracle, and
deliberately wrong inputs. Statistical checks state alpha, n and seeds; each has a power
check beside it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path as FsPath

import numpy as np
from numpy.typing import NDArray
import pytest

import scoresde as sd

PATHS = ["vp", "subvp", "edm", "rectified", "trig"]


def mixture_file(tmp_path: FsPath) -> str:
    """A 3-D, 3-component mixture with a full covariance the project has never seen."""
    p = tmp_path / "mix.toml"
    p.write_text(
        textwrap.dedent(
            """
            [[components]]
            weight = 0.5
            mean = [1.0, -0.5, 0.3]
            std = 0.4
            [[components]]
            weight = 0.3
            mean = [-1.2, 0.8, 0.0]
            cov = [[0.3, 0.1, 0.0], [0.1, 0.2, 0.05], [0.0, 0.05, 0.25]]
            [[components]]
            weight = 0.2
            mean = [0.0, 1.5, -1.0]
            std = 0.2
            """
        )
    )
    return str(p)


@pytest.fixture()
def mix(tmp_path: FsPath) -> sd.Data:
    return sd.Data(mixture_file(tmp_path))


@pytest.mark.parametrize("path", PATHS)
def test_score_is_gradient_of_log_prob(mix: sd.Data, path: str) -> None:
    """The exact score against central differences of log p_t (h = 1e-5, tolerance 1e-5)."""
    x = mix.draw(50, seed=3) * 1.3
    h = 1e-5
    for t in [0.05, 0.4, 0.9]:
        t = t * (80.0 if path == "edm" else 1.0)
        s = mix.score(x, t, path=path)
        fd = np.zeros_like(x)
        for j in range(x.shape[1]):
            e = np.zeros(x.shape[1])
            e[j] = h
            fd[:, j] = (mix.log_prob(x + e, t, path=path) - mix.log_prob(x - e, t, path=path)) / (2 * h)
        np.testing.assert_allclose(s, fd, rtol=1e-5, atol=1e-5)


def test_isotropic_gaussian_against_numpy() -> None:
    """One N(mu, sigma^2 I) component on VP: p_t = N(m mu, (m^2 sigma^2 + s^2) I) in numpy."""
    data = sd.Data("bimodal-1d")
    p = sd.Path("vp")
    x = np.linspace(-3, 3, 41)[:, None]
    t = 0.3
    m, s = p.m(t), p.s(t)
    var = m**2 * 0.15**2 + s**2
    comps = [np.exp(-((x - m * mu) ** 2) / (2 * var)) / np.sqrt(2 * np.pi * var) for mu in (-1, 1)]
    dens = 0.5 * comps[0] + 0.5 * comps[1]
    np.testing.assert_allclose(data.log_prob(x, t), np.log(dens[:, 0]), rtol=1e-12)
    grad = 0.5 * sum(c * (-(x - m * mu) / var) for c, mu in zip(comps, (-1, 1))) / dens
    np.testing.assert_allclose(data.score(x, t), grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("path", PATHS)
def test_velocity_is_path_conversion_of_score(mix: sd.Data, path: str) -> None:
    p = sd.Path(path)
    x = mix.draw(40, seed=5)
    t = 0.5 * p.t_max
    u = mix.velocity(x, t, path=path)
    np.testing.assert_allclose(p.convert(mix.score(x, t, path=path), x, t, "score", "velocity"), u, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(p.convert(mix.eps(x, t, path=path), x, t, "eps", "velocity"), u, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(p.convert(u, x, t, "velocity", "x0"), mix.denoise(x, t, path=path), rtol=1e-9, atol=1e-9)


def test_velocity_at_signal_free_end() -> None:
    """On the rectified path at t = 1, E[x0 | x] is the data mean and u = E[x0]·(−1) + x."""
    data = sd.Data("8gaussians")
    x = np.random.default_rng(0).normal(size=(7, 2))
    u = data.velocity(x, 1.0, path="rectified")
    mean = data.draw(400_000, seed=1).mean(axis=0)
    np.testing.assert_allclose(u, x - data.denoise(x, 1.0, path="rectified"), atol=1e-12)
    np.testing.assert_allclose(data.denoise(x, 1.0, path="rectified"), np.tile(mean, (7, 1)), atol=1e-2)


def test_per_row_times_and_dtypes(mix: sd.Data) -> None:
    x = mix.draw(30, seed=1)
    ts = np.linspace(0.01, 0.99, 30)
    per_row = mix.score(x, ts)
    one_by_one = np.vstack([mix.score(x[i : i + 1], ts[i]) for i in range(30)])
    np.testing.assert_allclose(per_row, one_by_one, rtol=1e-12)
    s32 = mix.score(x.astype(np.float32), 0.3)
    assert s32.dtype == np.float32
    np.testing.assert_allclose(s32, mix.score(x.astype(np.float32).astype(np.float64), 0.3), rtol=1e-6)
    # Non-contiguous input is converted once, with the same result.
    wide = np.hstack([x, x])[:, ::2]
    np.testing.assert_allclose(mix.score(np.ascontiguousarray(wide), 0.3), mix.score(wide, 0.3))
    assert mix.log_prob(x, 0.2).shape == (30,)


def standard_normal_score(path: sd.Path) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """The exact score of N(0, I) data diffused on `path`, written in numpy alone."""

    def f(x: np.ndarray, t: np.ndarray) -> np.ndarray:
        return -x / (path.m(t) ** 2 + path.s(t) ** 2)[:, None]

    return f


def normal_data(tmp_path: FsPath) -> sd.Data:
    p = tmp_path / "normal.toml"
    p.write_text("[[components]]\nweight = 1.0\nmean = [0.0, 0.0]\nstd = 1.0\n")
    return sd.Data(str(p))


def test_numpy_callable_reproduces_standard_normal(tmp_path: FsPath) -> None:
    """Sampling N(0, I) with a numpy field: not rejected at alpha = 0.01 (n = 1000, seed 0);
    the same field scaled by 0.7 is rejected (power check)."""
    data = normal_data(tmp_path)
    score = standard_normal_score(sd.Path("vp"))
    run = sd.sample(sd.Field(score, dim=2, prediction="score"), sampler="dpm-solver-pp2m", steps=30, n=1000, seed=0)
    assert run.nfe == 30
    assert not sd.test(run.x, data, alpha=0.01)["rejected"]
    wrong = sd.Field(lambda x, t: 0.7 * score(x, t), dim=2, prediction="score")
    bad = sd.sample(wrong, sampler="dpm-solver-pp2m", steps=30, n=1000, seed=0)
    assert sd.test(bad.x, data, alpha=0.01)["rejected"]


@pytest.mark.parametrize(
    "sampler,settings",
    [("em", {}), ("pf-heun", {}), ("ddim", {"eta": 0.5}), ("dpm-solver-2", {}), ("pc", {}), ("edm-heun", {})],
)
def test_callable_equals_builtin(sampler: str, settings: dict[str, float]) -> None:
    """A callable returning the exact score gives the built-in exact model's samples."""
    data = sd.Data("8gaussians")
    calls = []

    def f(x: np.ndarray, t: np.ndarray) -> np.ndarray:
        calls.append(x.shape[0])
        return data.score(x, t)

    ref = sd.sample(data, sampler=sampler, steps=24, n=300, seed=7, **settings)
    got = sd.sample(sd.Field(f, dim=2, prediction="score"), sampler=sampler, steps=24, n=300, seed=7, **settings)
    np.testing.assert_array_equal(got.x, ref.x)
    assert got.nfe == ref.nfe
    # Called once per evaluation on the whole batch.
    assert set(calls) == {300} and len(calls) == got.nfe


@pytest.mark.parametrize("prediction", ["eps", "x0", "v", "velocity"])
def test_predictions_agree(prediction: str) -> None:
    data = sd.Data("8gaussians")
    path = sd.Path("vp")

    def f(x: np.ndarray, t: np.ndarray) -> np.ndarray:
        return path.convert(data.score(x, t), x, t, "score", prediction)

    ref = sd.sample(data, sampler="dpm-solver-pp2m", steps=20, n=200, seed=1)
    got = sd.sample(sd.Field(f, dim=2, prediction=prediction), sampler="dpm-solver-pp2m", steps=20, n=200, seed=1)
    np.testing.assert_allclose(got.x, ref.x, rtol=1e-7, atol=1e-7)


def test_velocity_field_on_rectified_path() -> None:
    data = sd.Data("8gaussians")
    f = sd.Field(lambda x, t: data.velocity(x, t, path="rectified"), dim=2, prediction="velocity", path="rectified")
    ref = sd.sample(data, path="rectified", sampler="pf-heun", steps=30, n=300, seed=2)
    got = sd.sample(f, sampler="pf-heun", steps=30, n=300, seed=2)
    np.testing.assert_allclose(got.x, ref.x, rtol=1e-12, atol=1e-12)


def test_verdict_calibration_and_power() -> None:
    """Exact samples at 5 seeds, alpha = 0.05, n = 1000: at most one rejection
    (P(>= 2) = 0.023 under a calibrated verdict); the score scaled by 0.8 is rejected at
    every seed (power)."""
    data = sd.Data("8gaussians")
    rejected = [
        sd.test(sd.sample(data, sampler="dpm-solver-pp2m", steps=40, n=1000, seed=s).x, data, alpha=0.05, seed=s)["rejected"]
        for s in range(5)
    ]
    assert sum(rejected) <= 1
    wrong = sd.Field(lambda x, t: 0.8 * data.score(x, t), dim=2, prediction="score")
    for s in range(3):
        x = sd.sample(wrong, sampler="dpm-solver-pp2m", steps=40, n=1000, seed=s).x
        report = sd.test(x, data, alpha=0.05, seed=s)
        assert report["rejected"]
        assert {"name", "statistic", "p_value", "adjusted"} <= set(report["tests"][0])


def test_threads_do_not_change_results(mix: sd.Data) -> None:
    a = sd.sample(sd.Data("25gaussians"), sampler="em", steps=50, n=1500, seed=4, threads=1)
    b = sd.sample(sd.Data("25gaussians"), sampler="em", steps=50, n=1500, seed=4, threads=2)
    np.testing.assert_array_equal(a.x, b.x)
    x = mix.draw(3000, seed=0)
    np.testing.assert_array_equal(mix.score(x, 0.2, threads=1), mix.score(x, 0.2, threads=2))


def test_callable_exception_propagates_and_stops() -> None:
    calls = []

    class Boom(Exception):
        pass

    def f(x: np.ndarray, t: np.ndarray) -> np.ndarray:
        calls.append(1)
        if len(calls) == 3:
            raise Boom("third call")
        return -x

    with pytest.raises(Boom, match="third call"):
        sd.sample(sd.Field(f, dim=2, prediction="score"), sampler="em", steps=1000, n=10)
    assert len(calls) == 3
    with pytest.raises(ValueError, match="shape"):
        sd.sample(sd.Field(lambda x, t: x[:, :1], dim=2), steps=5, n=4)


def test_error_mapping(tmp_path: FsPath) -> None:
    data = sd.Data("8gaussians")
    with pytest.raises(ValueError, match="unknown keyword `etaa`.*eta"):
        sd.sample(data, sampler="ddim", etaa=0.5)
    with pytest.raises(ValueError, match="unknown sampler"):
        sd.sample(data, sampler="nope")
    with pytest.raises(ValueError, match="`t` must lie"):
        data.score(np.zeros((2, 2)), 2.0)
    with pytest.raises(ValueError, match="columns"):
        data.score(np.zeros((2, 3)), 0.5)
    with pytest.raises(ValueError, match="unknown dataset"):
        sd.Data("nope")
    with pytest.raises(FileNotFoundError):
        sd.Data(str(tmp_path / "missing.toml"))
    with pytest.raises(FileNotFoundError):
        sd.load_run(str(tmp_path / "no-run"))
    with pytest.raises(OSError):
        sd.train("/proc/scoresde-run", data="8gaussians", steps=10)
    with pytest.raises(ValueError, match="unknown training setting `hiden`"):
        sd.train(str(tmp_path / "r"), data="8gaussians", hiden=3)
    with pytest.raises(sd.SolverError, match="non-finite"):
        sd.sample(sd.Field(lambda x, t: np.full_like(x, np.nan), dim=2), sampler="em", steps=5, n=4)
    with pytest.raises(ValueError, match="sigma_max"):
        sd.Path("ve")
    assert issubclass(sd.SolverError, RuntimeError)


def test_keyboard_interrupt_stops_within_a_second(tmp_path: FsPath) -> None:
    script = tmp_path / "long.py"
    script.write_text(
        textwrap.dedent(
            """
            import signal, sys, time, scoresde as sd
            signal.signal(signal.SIGINT, signal.default_int_handler)
            print("ready", flush=True)
            t0 = time.time()
            try:
                sd.sample(sd.Data("8gaussians"), steps=10**6, n=20000)
            except KeyboardInterrupt:
                print("interrupted", flush=True)
            """
        )
    )
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    start = time.time()
    out, _ = proc.communicate(timeout=30)
    assert "interrupted" in out
    assert time.time() - start < 1.0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork")
def test_works_after_fork() -> None:
    data = sd.Data("8gaussians")
    ref = sd.sample(data, sampler="em", steps=20, n=500, seed=3).x
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            x = sd.sample(data, sampler="em", steps=20, n=500, seed=3).x
            os.write(w, b"1" if np.array_equal(x, ref) else b"0")
        finally:
            os._exit(0)
    os.close(w)
    got = os.read(r, 1)
    os.waitpid(pid, 0)
    assert got == b"1"


def test_nll_and_elbo(tmp_path: FsPath) -> None:
    data = sd.Data("8gaussians")
    x = data.draw(40, seed=9)
    exact = sd.nll(data, x=x)
    f = sd.Field(lambda x, t: data.score(x, t), dim=2, prediction="score")
    via_callable = sd.nll(f, x=x)
    np.testing.assert_allclose(via_callable["nll"], exact["nll"], atol=2e-3)
    # Hutchinson is unbiased: its per-point error averages out (|z| < 4 over 40 points).
    diff = sd.nll(f, x=x, divergence="hutchinson")["nll"] - exact["nll"]
    assert abs(diff.mean()) < 4 * diff.std(ddof=1) / np.sqrt(len(diff))
    bound = sd.elbo(data, x=x)
    assert bound["total"] >= exact["mean"] - 3 * bound["stderr"]
    discrete = sd.elbo(data, x=x, continuous=False, steps=100)
    assert np.isfinite(discrete["total"])


def test_train_load_and_sample(tmp_path: FsPath) -> None:
    out = tmp_path / "run"
    run = sd.train(str(out), data="8gaussians", steps=300, hidden=32, path="rectified", prediction="velocity")
    assert run.config["net"]["hidden"] == 32 and run.path.name == "rectified"
    again = sd.load_run(str(out))
    x = sd.sample(again, sampler="pf-heun", steps=20, n=200, seed=0).x
    assert x.shape == (200, 2) and np.isfinite(x).all()
    with pytest.raises(ValueError, match="already holds a run"):
        sd.train(str(out), data="8gaussians", steps=10)
    with pytest.raises(ValueError, match="cannot change a run"):
        sd.train(str(out), resume=True, hidden=3)
    assert "hidden" in sd.train_settings() and "eta" in sd.sampler_settings("ddim")
    # A whole path (kind and settings) as one keyword.
    vp = sd.train(str(tmp_path / "vp10"), data="8gaussians", steps=20, hidden=16, path=sd.Path("vp", beta_max=10.0))
    assert vp.config["sde"]["kind"] == "vp" and vp.config["sde"]["beta_max"] == 10.0


def test_paths_and_lists() -> None:
    p = sd.Path("rectified", path_sigma_min=0.1)
    assert p.name == "rectified" and p.settings["path_sigma_min"] == 0.1
    np.testing.assert_allclose(p.s(np.array([0.0, 1.0])), [0.1, 1.0])
    vp = sd.Path("vp")
    lam = vp.log_snr(0.3)
    assert abs(vp.t_of_log_snr(lam) - 0.3) < 1e-9
    assert "dpm-solver-pp2m" in sd.samplers() and "8gaussians" in sd.datasets()
    assert {"ddim-eta", "samplers-vs-nfe"} <= set(sd.experiments())


def test_examples_run() -> None:
    examples = FsPath(__file__).resolve().parents[3] / "examples" / "python"
    subprocess.run([sys.executable, str(examples / "quickstart.py")], check=True, timeout=120)


def test_torch_example() -> None:
    pytest.importorskip("torch")
    examples = FsPath(__file__).resolve().parents[3] / "examples" / "python"
    subprocess.run([sys.executable, str(examples / "torch_mlp.py"), "--quick"], check=True, timeout=600)


def test_given_start_states_and_the_solver_noise() -> None:
    """`x_t` replaces the prior draws; `solver_noise` is the noise a stochastic sampler draws:
    one SA-Solver step (p = 1, no corrector, τ = 1, data prediction, t = 1 → ε on a 2-point
    grid is x_ε = m_ε(1 − e^{−2h}) x̂₀ + s_ε √(1 − e^{−2h}) ξ + (s_ε/s_1) e^{−h} x_1) must equal
    the same formula in numpy with ξ = solver_noise(...)[0]. A different seed must not."""
    data = sd.Data("bimodal-1d")
    path = sd.Path("vp")
    rng = np.random.default_rng(1)
    x1 = rng.standard_normal((50, 1))
    settings = dict(predictor_order=1, corrector_order=0, tau=1.0, tau_window=[0.0, 1.0])
    run = sd.sample(data, sampler="sa-solver", steps=1, x_t=x1, seed=4, denoise=False, **settings)
    assert run.x.shape == (50, 1) and run.nfe == 1.0
    eps = path.default_eps
    m1, s1 = float(path.m(1.0)), float(path.s(1.0))
    me, se = float(path.m(eps)), float(path.s(eps))
    h = np.log(me / se) - np.log(m1 / s1)
    x0 = data.denoise(x1, 1.0)
    for seed, same in [(4, True), (5, False)]:
        xi = sd.solver_noise(50, 1, 1, seed=seed)[0]
        expected = (se / s1) * np.exp(-h) * x1 + me * (1 - np.exp(-2 * h)) * x0 + se * np.sqrt(1 - np.exp(-2 * h)) * xi
        assert np.allclose(run.x, expected, rtol=0, atol=1e-12) == same
    with pytest.raises(ValueError, match="x_t"):
        sd.sample(data, sampler="unipc", steps=3, x_t=np.zeros((4, 2)))


@pytest.mark.parametrize("name", ["unipc", "deis", "ipndm", "sa-solver", "seeds-2", "er-sde"])
def test_newer_samplers_run_on_every_path(name: str) -> None:
    """Each newer sampler runs on every path with its declared NFE and finite output."""
    for p in PATHS:
        run = sd.sample(sd.Data("8gaussians"), sampler=name, steps=6, n=64, path=p, denoise=False)
        assert np.isfinite(run.x).all(), (name, p)
        assert run.nfe == (12.0 if name == "seeds-2" else 6.0), (name, p, run.nfe)


def test_class_conditional_sampling_and_guidance() -> None:
    """`label` samples p(x | c) of a labelled mixture: 99 % of 1000 draws (seed 0) lie within
    1.5 of the class's two centres (component std 0.35; the other centres are ≥ 1.1 farther),
    where unconditional draws do not (power); CFG costs two evaluations per step; the faults
    are ValueErrors naming the cause."""
    data = sd.Data("8gaussians")
    run = sd.sample(data, sampler="unipc", steps=40, n=1000, label="sector-0", denoise=False)
    assert run.nfe == 40.0
    centres = np.array([[4.0, 0.0], [2.0 * np.sqrt(2.0), 2.0 * np.sqrt(2.0)]]) / 1.414
    nearest = np.linalg.norm(run.x[:, None, :] - centres[None], axis=2).min(axis=1)
    assert np.quantile(nearest, 0.99) < 1.5, "samples left class sector-0's two modes"
    plain = sd.sample(data, sampler="unipc", steps=40, n=1000, denoise=False).x
    assert np.quantile(np.linalg.norm(plain[:, None, :] - centres[None], axis=2).min(axis=1), 0.99) > 1.5
    guided = sd.sample(data, sampler="unipc", steps=40, n=200, label="sector-0", guidance_scale=2.0)
    assert guided.nfe == 80.0
    with pytest.raises(ValueError, match="unknown class"):
        sd.sample(data, steps=5, n=10, label="sector-9")
    with pytest.raises(ValueError, match="need `label`"):
        sd.sample(data, steps=5, n=10, guidance_scale=1.0)
    with pytest.raises(ValueError, match="non-negative"):
        sd.sample(data, steps=5, n=10, label="sector-0", guidance_scale=-1.0)


def _mixture_file(path: FsPath, comps: list[tuple[float, str]]) -> str:
    text = "".join(
        f'[[components]]\nweight = 1\nmean = [{m}]\nstd = 0.3\nclass = "{c}"\n' for m, c in comps
    )
    path.write_text(text)
    return str(path)


def test_conditional_callable_reproduces_exact_guidance(tmp_path: FsPath) -> None:
    """A conditional Field f(x, t, c) built from the exact per-class fields, guided with CFG,
    equals the library's exact CFG sampler to 1e-9 (same noise, seed 2) and costs two NFE per
    step; c arrives as int64 of shape (n,), len(classes) for the null class."""
    full = sd.Data(_mixture_file(tmp_path / "full.toml", [(-2.0, "a"), (1.0, "a"), (2.5, "b")]))
    parts = [
        sd.Data(_mixture_file(tmp_path / "a.toml", [(-2.0, "a"), (1.0, "a")])),
        sd.Data(_mixture_file(tmp_path / "b.toml", [(2.5, "b")])),
        full,
    ]
    seen: set[int] = set()

    def f(
        x: NDArray[np.float64], t: NDArray[np.float64], c: NDArray[np.int64]
    ) -> NDArray[np.float64]:
        assert c.dtype == np.int64 and c.shape == (x.shape[0],)
        seen.update(int(v) for v in np.unique(c))
        return np.asarray(parts[int(c[0])].eps(x, t))

    x, c = full.draw_labelled(500, seed=3)
    assert full.classes == ["a", "b"] and c.dtype == np.int64
    assert np.array_equal(x, full.draw(500, seed=3)) and set(np.unique(c)) == {0, 1}
    assert (full.draw(200, label="b") > 1.0).mean() > 0.99
    with pytest.raises(ValueError, match="no class labels"):
        sd.Data("bimodal-1d").draw_labelled(5)
    field = sd.Field(f, dim=1, classes=["a", "b"])
    assert field.classes == ["a", "b"]
    for sampler in ["unipc", "em"]:
        got = sd.sample(field, sampler=sampler, steps=20, n=300, seed=2, label="a", guidance_scale=1.5)
        want = sd.sample(full, sampler=sampler, steps=20, n=300, seed=2, label="a", guidance_scale=1.5)
        assert got.nfe == want.nfe == 40.0
        assert np.abs(got.x - want.x).max() < 1e-9, sampler
    assert seen == {0, 2}
    plain = sd.sample(field, sampler="unipc", steps=10, n=50, seed=2)
    assert np.abs(plain.x - sd.sample(full, sampler="unipc", steps=10, n=50, seed=2).x).max() < 1e-9
    with pytest.raises(ValueError, match="unknown class 'z'"):
        sd.sample(field, steps=4, n=5, label="z")
    with pytest.raises(ValueError, match="needs a conditional Field"):
        sd.sample(sd.Field(lambda x, t: x, dim=1), steps=4, n=5, label="a")
    with pytest.raises(ValueError, match="distinct"):
        sd.Field(f, dim=1, classes=["a", "a"])


def test_conditional_run_cfg_and_autoguidance(tmp_path: FsPath) -> None:
    """train(conditional=True) records the classes; CFG on the run costs two NFE per step and
    concentrates the class (share of samples in sector-1's quarter ≥ that without guidance);
    a bad version trains from the run and drives autoguidance; the faults are ValueErrors."""
    good = sd.train(tmp_path / "good", data="8gaussians", conditional=True, steps=300, hidden=32, batch=128)
    assert good.classes == ["sector-0", "sector-1", "sector-2", "sector-3"]
    bad = sd.train(tmp_path / "bad", bad_version_of=good.dir, hidden=8)
    assert bad.config["train"]["bad_version_of"].endswith("good")

    def share(x: NDArray[np.float64]) -> float:
        a = (np.degrees(np.arctan2(x[:, 1], x[:, 0])) + 22.5) % 360.0
        return float(np.mean((a >= 90.0) & (a < 180.0)))

    cond = sd.sample(good, sampler="unipc", steps=20, n=500, label="sector-1")
    cfg = sd.sample(good, sampler="unipc", steps=20, n=500, label="sector-1", guidance_scale=2.0)
    assert cond.nfe == 20.0 and cfg.nfe == 40.0
    assert share(cfg.x) >= share(cond.x) > 0.5
    auto = sd.sample(good, sampler="unipc", steps=20, n=100, label="sector-1", guidance_scale=1.0, autoguidance=bad)
    assert auto.nfe == 40.0 and np.isfinite(auto.x).all()
    with pytest.raises(ValueError, match="not class-conditional"):
        plain = sd.train(tmp_path / "plain", data="8gaussians", steps=10, hidden=8)
        sd.sample(plain, steps=4, n=5, label="sector-1")
    with pytest.raises(ValueError, match="must be a Run"):
        sd.sample(sd.Data("8gaussians"), steps=4, n=5, guidance_scale=1.0, autoguidance=bad)
    with pytest.raises(ValueError, match="smaller or shorter"):
        sd.train(tmp_path / "same", bad_version_of=good.dir)


def test_empirical_model_memorises() -> None:
    """`Empirical(points)` is the exact field of the points' empirical law: PF-ODE samples with
    the final denoiser are all training points (copy fraction 1, distance ratio 0 against fresh
    draws); smoothed with a bandwidth of the points' spacing it copies far less; the faults
    are ValueErrors."""
    data = sd.Data("8gaussians")
    train = data.draw(40, seed=5)
    fresh = data.draw(300, seed=6)
    emp = sd.Empirical(train)
    assert len(emp) == 40 and emp.dim == 2
    x = sd.sample(emp, sampler="unipc", steps=40, n=300, denoise=True).x
    stats = sd.copy_fraction(x, train, fresh=fresh)
    assert stats["copy_fraction"] == 1.0 and stats["distance_ratio"] < 1e-6
    smooth = sd.sample(sd.Empirical(train, bandwidth=0.5), sampler="unipc", steps=40, n=300).x
    assert sd.copy_fraction(smooth, train)["copy_fraction"] < 0.5
    nll_train = sd.nll(emp, x=train[:20])["mean"]
    assert nll_train < sd.nll(emp, x=fresh[:20])["mean"]
    with pytest.raises(ValueError, match="are equal"):
        sd.Empirical(np.vstack([train, train[:1]]))
    with pytest.raises(ValueError, match="bandwidth"):
        sd.Empirical(train, bandwidth=-1.0)
    with pytest.raises(ValueError, match="no class labels|class labels"):
        sd.sample(emp, steps=4, n=5, label="a")


def test_optdigits_empirical_copies() -> None:
    """The shipped optdigits images: 1797 of 64 pixels in [-1, 1], ten digits; the exact
    empirical field of 150 of them copies them in d = 64, and held-out digits do not (power)."""
    x, labels = sd.optdigits()
    assert x.shape == (1797, 64) and labels.shape == (1797,)
    assert x.min() == -1.0 and x.max() == 1.0
    assert np.bincount(labels).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    train, held = x[:150], x[150:350]
    y = sd.sample(sd.Empirical(train), sampler="dpm-solver-pp2m", steps=30, n=100, denoise=True).x
    assert sd.copy_fraction(y, train, fresh=held)["copy_fraction"] == 1.0
    assert sd.copy_fraction(held, train)["copy_fraction"] < 0.1
