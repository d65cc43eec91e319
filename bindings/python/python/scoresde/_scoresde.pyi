"""Type stubs of the compiled module (checked against it by mypy's stubtest in the tests)."""

from collections.abc import Callable
from os import PathLike
from typing import Any, Union, final

import numpy as np
import numpy.typing as npt

__version__: str
__all__ = [
    "Data",
    "Empirical",
    "Field",
    "Path",
    "Run",
    "Samples",
    "SolverError",
    "__version__",
    "copy_fraction",
    "datasets",
    "elbo",
    "experiments",
    "load_run",
    "nll",
    "optdigits",
    "run_experiment",
    "sample",
    "sampler_settings",
    "solver_noise",
    "samplers",
    "test",
    "train",
    "train_settings",
]

_ArrayLike = npt.ArrayLike
_Times = Union[float, npt.ArrayLike]
_PathArg = Union["Path", str, dict[str, Any], None]
_FloatArray = npt.NDArray[np.floating[Any]]
_StrPath = Union[str, PathLike[str]]

class SolverError(RuntimeError): ...

@final
class Path:
    """A forward path x_t = m(t) x0 + s(t) eps (vp, subvp, ve, edm, rectified, trig)."""

    def __new__(cls, kind: str = "vp", **settings: Any) -> Path: ...
    @property
    def name(self) -> str: ...
    @property
    def settings(self) -> dict[str, Any]: ...
    @property
    def t_max(self) -> float: ...
    @property
    def default_eps(self) -> float: ...
    @property
    def prior_std(self) -> float: ...
    def m(self, t: _Times) -> Any: ...
    def s(self, t: _Times) -> Any: ...
    def dm(self, t: _Times) -> Any: ...
    def ds(self, t: _Times) -> Any: ...
    def f(self, t: _Times) -> Any: ...
    def g2(self, t: _Times) -> Any: ...
    def log_snr(self, t: _Times) -> Any: ...
    def t_of_log_snr(self, log_snr: _Times) -> Any: ...
    def sigma_tilde(self, t: _Times) -> Any: ...
    def convert(
        self,
        value: _ArrayLike,
        x: _ArrayLike,
        t: _Times,
        from_: str,
        to: str,
        sigma_data: float = 0.0,
    ) -> _FloatArray: ...

@final
class Data:
    """A dataset: a builtin name or a mixture .toml file; exact fields for mixtures."""

    def __new__(cls, spec: str) -> Data: ...
    @property
    def name(self) -> str: ...
    @property
    def dim(self) -> int: ...
    @property
    def is_mixture(self) -> bool: ...
    def draw(self, n: int, seed: int = 0, label: str | None = None) -> _FloatArray: ...
    def draw_labelled(
        self, n: int, seed: int = 0
    ) -> tuple[_FloatArray, npt.NDArray[np.int64]]: ...
    @property
    def classes(self) -> list[str] | None: ...
    def score(
        self, x: _ArrayLike, t: _Times, path: _PathArg = None, threads: int | None = None
    ) -> _FloatArray: ...
    def log_prob(
        self, x: _ArrayLike, t: _Times, path: _PathArg = None, threads: int | None = None
    ) -> _FloatArray: ...
    def denoise(
        self, x: _ArrayLike, t: _Times, path: _PathArg = None, threads: int | None = None
    ) -> _FloatArray: ...
    def eps(
        self, x: _ArrayLike, t: _Times, path: _PathArg = None, threads: int | None = None
    ) -> _FloatArray: ...
    def velocity(
        self, x: _ArrayLike, t: _Times, path: _PathArg = None, threads: int | None = None
    ) -> _FloatArray: ...

@final
class Field:
    """Your model f(x, t) -> prediction, x of shape (n, d) and t of shape (n,); with
    `classes`, f(x, t, c), c the rows' class indices (len(classes): the null class)."""

    def __new__(
        cls,
        f: Callable[..., _ArrayLike],
        dim: int,
        prediction: str = "eps",
        path: _PathArg = None,
        sigma_data: float = 0.0,
        classes: list[str] | None = None,
    ) -> Field: ...
    @property
    def dim(self) -> int: ...
    @property
    def classes(self) -> list[str] | None: ...
    @property
    def path(self) -> Path: ...
    @property
    def prediction(self) -> str: ...

@final
class Run:
    """A run directory of `scoresde train`."""

    @property
    def dir(self) -> str: ...
    @property
    def data(self) -> str: ...
    @property
    def dim(self) -> int: ...
    @property
    def classes(self) -> list[str] | None: ...
    @property
    def path(self) -> Path: ...
    @property
    def config(self) -> dict[str, Any]: ...

@final
class Empirical:
    """The exact field of a training set's empirical distribution (bandwidth 0: point masses)
    diffused on `path`: a model that memorises."""

    def __new__(
        cls, points: _ArrayLike, bandwidth: float = 0.0, path: _PathArg = None
    ) -> Empirical: ...
    @property
    def dim(self) -> int: ...
    @property
    def bandwidth(self) -> float: ...
    def __len__(self) -> int: ...

@final
class Samples:
    """Samples and what they cost."""

    @property
    def x(self) -> npt.NDArray[np.float64]: ...
    @property
    def nfe(self) -> float: ...
    @property
    def wall(self) -> float: ...
    @property
    def sampler(self) -> str: ...
    @property
    def path(self) -> str: ...

_Model = Union[Data, Field, Run, Empirical, _StrPath]

def sample(
    model: _Model,
    sampler: str | dict[str, Any] | None = None,
    steps: int | None = None,
    n: int = 1000,
    seed: int = 0,
    path: _PathArg = None,
    eps: float | None = None,
    denoise: bool | None = None,
    threads: int | None = None,
    x_t: _ArrayLike | None = None,
    label: str | None = None,
    guidance_scale: float | None = None,
    guidance_interval: tuple[float, float] | None = None,
    autoguidance: Run | _StrPath | None = None,
    **settings: Any,
) -> Samples: ...
def test(
    samples: _ArrayLike,
    data: Data | str,
    alpha: float = 0.05,
    seed: int = 0,
    permutations: int | None = None,
    max_points: int = 5000,
    threads: int | None = None,
) -> dict[str, Any]: ...
def nll(
    model: _Model,
    x: _ArrayLike | None = None,
    data: Data | str | None = None,
    n: int = 1000,
    seed: int = 0,
    path: _PathArg = None,
    divergence: str = "exact",
    rtol: float = 1e-5,
    atol: float = 1e-5,
    eps: float = 1e-5,
    threads: int | None = None,
) -> dict[str, Any]: ...
def elbo(
    model: _Model,
    x: _ArrayLike | None = None,
    data: Data | str | None = None,
    n: int = 1000,
    seed: int = 0,
    path: _PathArg = None,
    continuous: bool = True,
    draws: int = 16,
    sampling: str = "importance",
    eps: float = 1e-5,
    steps: int = 1000,
    variance: str = "beta",
    threads: int | None = None,
) -> dict[str, Any]: ...
def train(
    out: _StrPath,
    data: Data | str | None = None,
    config: _StrPath | None = None,
    resume: bool = False,
    threads: int | None = None,
    **settings: Any,
) -> Run: ...
def load_run(dir: _StrPath) -> Run: ...
def run_experiment(
    name: str,
    out: _StrPath,
    quick: bool = False,
    seed: int | None = None,
    threads: int | None = None,
) -> dict[str, Any]: ...
def samplers() -> list[str]: ...
def datasets() -> list[str]: ...
def experiments() -> list[str]: ...
def sampler_settings(name: str) -> list[str]: ...
def solver_noise(n: int, d: int, draws: int, seed: int = 0) -> npt.NDArray[np.float64]: ...
def train_settings() -> list[str]: ...
def copy_fraction(
    samples: _ArrayLike,
    train: _ArrayLike,
    fraction: float = ...,
    fresh: _ArrayLike | None = None,
) -> dict[str, Any]: ...
def optdigits() -> tuple[_FloatArray, Any]: ...
