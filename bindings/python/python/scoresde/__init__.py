"""scoresde from Python: exact Gaussian-mixture fields on every path, the samplers driving
your own model, calibrated tests of samples against the exact law, ELBOs and likelihoods,
training runs and the named experiments -- all on numpy arrays.

    import scoresde as sd
    data = sd.Data("8gaussians")
    run = sd.sample(data, sampler="dpm-solver-pp2m", steps=20, n=2000, seed=0)
    print(sd.test(run.x, data)["rejected"])
"""

from ._scoresde import (
    Data,
    Empirical,
    Field,
    Path,
    Run,
    Samples,
    SolverError,
    __version__,
    copy_fraction,
    datasets,
    elbo,
    experiments,
    load_run,
    nll,
    optdigits,
    run_experiment,
    sample,
    sampler_settings,
    solver_noise,
    samplers,
    test,
    train,
    train_settings,
)

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
