"""
Where a grid's trials run.

- :func:`run_local`: a pool of ``workers`` processes on this machine (``spawn``: a fresh interpreter each, one
  torch thread each unless told), finished trials reported as they come; Ctrl-C terminates the workers.
- :func:`run_ray`: each trial a Ray Tune trial (``ray[tune]``, the ``ray`` extra) with ``cpus``/``gpus`` per trial
  (fractions allowed: several small trials share a GPU), on ``ray.init(address=...)``'s cluster (or a local one,
  or the session already started in this process), failed trials retried (``FailureConfig(max_failures=...)``),
  an interrupted run continued with ``Tuner.restore``.

Both call ``report(result)`` once per finished trial, in the order they finish.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sb3_offline.benchmark.grid import Grid, Trial
from sb3_offline.benchmark.trial import read_result, run_trial

Report = Callable[[dict[str, Any]], None]
#: The folder of a grid's Ray Tune experiment, under ``DIR`` (what ``Tuner.restore`` continues).
RAY_FOLDER = "ray"
RAY_EXPERIMENT = "tune"


def trial_folder(output: Path, trial: Trial) -> Path:
    return output / "trials" / trial.name


def _run_one(arguments: tuple[Trial, Grid, Path, int | None]) -> dict[str, Any]:
    return run_trial(*arguments)


def run_local(
    grid: Grid, trials: Sequence[Trial], output: Path, report: Report, workers: int = 1, torch_threads: int | None = 1
) -> None:
    """
    Run ``trials`` in a pool of ``workers`` fresh processes. On Ctrl-C (or a trial's error) the workers are
    terminated: the trials they were running have no ``result.json`` and run again on ``--resume``.
    """
    context = multiprocessing.get_context("spawn")
    pool = context.Pool(processes=workers)
    arguments = [(trial, grid, trial_folder(output, trial), torch_threads) for trial in trials]
    try:
        for result in pool.imap_unordered(_run_one, arguments, chunksize=1):
            report(result)
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.close()
        pool.join()


def _ray_trainable(config: dict[str, Any], grid: Grid, trials: dict[str, Trial], output: str, threads: int) -> None:
    """A Tune function trainable: the trial ``config["trial"]``, its result reported once (the curve left out)."""
    from ray import tune

    result = run_trial(trials[config["trial"]], grid, trial_folder(Path(output), trials[config["trial"]]), threads)
    tune.report({key: value for key, value in result.items() if key not in ("curve", "kwargs")} | {"done": True})


class _Progress:
    """A Tune callback: ``report`` of the trial's result (``result.json`` when it reached this machine)."""

    def __init__(self, report: Report, output: Path, trials: dict[str, Trial]) -> None:
        self.report: Report | None = report
        self.output, self.trials = output, trials

    def __getstate__(self) -> dict[str, Any]:
        """Saved with the experiment without ``report`` (a restored run is given a new callback)."""
        return {**self.__dict__, "report": None}

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        name = trial.config["trial"]
        if self.report is not None and name in self.trials:
            self.report(read_result(trial_folder(self.output, self.trials[name])) or dict(trial.last_result))


def run_ray(
    grid: Grid,
    trials: Sequence[Trial],
    output: Path,
    report: Report,
    address: str | None = None,
    cpus: float = 1.0,
    gpus: float = 0.0,
    resume: bool = False,
    max_failures: int = 2,
) -> list[dict[str, Any]]:
    """
    Run ``trials`` as Ray Tune trials (a grid search over their names) in ``output/ray/tune``; ``resume``
    continues that experiment (``Tuner.restore``: its finished trials are not run again, its errored ones are).

    :return: the metrics of every trial Tune reported (a cluster without a shared file system: the only copy)
    """
    try:
        import ray
        from ray import tune
    except ImportError as error:
        raise ImportError(f"--engine ray: expected Ray Tune (pip install -e '.[ray]'), found {error}") from error
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # Tune's own tables off (verbose=0): our progress lines only
    if not ray.is_initialized():
        ray.init(address=address, log_to_driver=False, include_dashboard=False)
    by_name = {trial.name: trial for trial in trials}
    threads = max(1, int(cpus))
    trainable = tune.with_resources(
        tune.with_parameters(_ray_trainable, grid=grid, trials=by_name, output=str(output.resolve()), threads=threads),
        {"cpu": cpus, "gpu": gpus},
    )
    callback = type("Progress", (_Progress, tune.Callback), {})(report, output, by_name)
    storage = str((output / RAY_FOLDER).resolve())
    experiment = Path(storage) / RAY_EXPERIMENT
    if resume and tune.Tuner.can_restore(str(experiment)):
        tuner = tune.Tuner.restore(str(experiment), trainable, resume_errored=True)
        tuner._local_tuner._run_config.callbacks = [callback]  # type: ignore[union-attr]  # saved ones report nothing
    else:
        tuner = tune.Tuner(
            trainable,
            param_space={
                "trial": tune.grid_search([t.name for t in trials if read_result(trial_folder(output, t)) is None])
            },
            tune_config=tune.TuneConfig(reuse_actors=True),  # one import of torch and sb3_offline per worker
            run_config=tune.RunConfig(
                name=RAY_EXPERIMENT,
                storage_path=storage,
                failure_config=tune.FailureConfig(max_failures=max_failures),
                callbacks=[callback],
                verbose=0,
            ),
        )
    grid_results = tuner.fit()
    results = [grid_results[index] for index in range(len(grid_results))]
    errors = [str(result.error) for result in results if result.error is not None]
    if errors:
        raise RuntimeError(f"--engine ray: {len(errors)} trial(s) failed after {max_failures} retries: {errors[0]}")
    if any(not (result.metrics or {}).get("done") for result in results):
        raise KeyboardInterrupt  # Tune stops on Ctrl-C (SIGINT) and returns what finished: --resume continues
    return [dict(result.metrics or {}) for result in results]
