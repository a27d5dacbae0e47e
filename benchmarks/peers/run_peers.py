"""Run TSB-AD's own detectors on a job of train/test splits (inside ``.venv-peers``).

Usage (from the repository root; ``bash benchmarks/peers/setup`` makes the environment):

    .venv-peers/bin/python benchmarks/peers/run_peers.py JOB.npz OUT_DIR
        [--methods PCA,CNN,LSTMAD,IForest] [--seed 0] [--threads 2]
    .venv-peers/bin/python benchmarks/peers/run_peers.py --info

The product's environment cannot import TSB-AD (it pins numpy < 2), so
``benchmarks/peers/client.py`` writes a job, starts this script in ``.venv-peers`` and reads
the results back; the harness never imports this module.

Job file
--------
An ``.npz`` with, for each series ``i`` = 0, 1, ...: ``name_i`` (0-d str), ``train_i``
(N_train × D float) and ``test_i`` (N_test × D float, same D). Optionally ``spec``: a 0-d str
holding JSON ``{"tasks": [{"id": str, "series": int, "method": str}, ...]}``; without it every
series is run with every ``--methods`` method, task ids ``<i>-<method>``.

What is run, and how (TSB-AD's ``benchmark_exp/Run_Detector_M.py`` / ``_U.py``)
------------------------------------------------------------------------------
TSB-AD's benchmark reads a file whose first ``train_index`` rows are its training part and
gives it to the detectors whole: a semi-supervised detector (``Semisupervise_AD_Pool``: CNN,
LSTMAD) is fitted on the training rows and scores the whole series; an unsupervised one
(``Unsupervise_AD_Pool``: PCA, IForest) is fitted on, and scores, the whole series. The
hyper-parameters are ``HP_list.Optimal_Multi_algo_HP_dict[method]`` (TSB-AD-M) and, for a
univariate series, ``Optimal_Uni_algo_HP_dict`` (TSB-AD-U). This script does the same with
``series = vstack(train, test)`` and returns the scores of the last N_test rows (and of the
training rows, separately), calling ``TSB_AD.model_wrapper.run_<function>`` directly — its
``run_Semisupervise_AD`` / ``run_Unsupervise_AD`` dispatchers swallow exceptions and return a
string, which would hide the real error.

* Univariate PCA: TSB-AD-U has no plain ``PCA``; its PCA is ``Sub_PCA`` (windows of the
  length ``find_length_rank`` finds), so ``PCA`` on a D = 1 series runs ``run_Sub_PCA`` with
  ``Optimal_Uni_algo_HP_dict['Sub_PCA']``. The other three have a univariate entry of their own.
* Standardisation: TSB-AD's run scripts do not standardise, but its published series are
  z-scored beforehand ("All time series are normalized by z-score by default",
  ``benchmark_exp/README.md``), and the models rely on it (``ForecastDataset`` computes a
  normalised copy but windows the raw values). Here each column is z-scored with the mean and
  standard deviation of the training rows only (a constant column: std 1), so that no
  statistic of the scored rows enters, as the harness does for its own methods.
* ``find_length_rank(series[:, 0], rank=1)``, which TSB-AD's script computes only for its
  VUS metrics, is reported as ``sliding_window`` for the harness's use; the detectors above do
  not take it (``Sub_PCA`` finds its own).
* Seeding: before every task, ``random``, ``numpy`` and ``torch`` are seeded with ``--seed``
  (TSB-AD's IForest draws from numpy's global state), so a task's result does not depend on
  which tasks ran before it in the same process — the client caches tasks one by one.

Output
------
For each task, ``OUT_DIR/<id>.npz`` (``scores``: (N_test,) float64, ``train_scores``:
(N_train,) float64; both empty on error) and then ``OUT_DIR/<id>.json`` (name, method,
function, hps, seconds, error, shapes, seed, threads, versions), each written to a temporary
name and renamed, so a JSON file is there only for a finished task. An error in one task is
recorded (``error``: ``"<Type>: <message>"``) and the run goes on. Wall seconds cover the
``run_*`` call alone (fit and score, as TSB-AD's ``run_time``), not standardisation or I/O.
One progress line per task goes to stdout; TSB-AD's own prints go to stderr (tqdm bars are
turned off).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

DEFAULT_METHODS = ("PCA", "CNN", "LSTMAD", "IForest")

# What this script does to a split besides calling TSB-AD: part of every cache key (client.py),
# so changing it invalidates the cached results. Bump "version" when the protocol changes.
PROTOCOL: dict[str, Any] = {
    "version": 1,
    "series": "vstack(train, test); scores of the last N_test rows",
    "standardise": "z-score per column with the training rows' mean and std (ddof=0; std 0 -> 1)",
    "seeding": "random, numpy, torch seeded with the seed before every task",
}

# TSB-AD-U's name for a method whose multivariate function does not exist for D = 1.
UNIVARIATE_FUNCTION = {"PCA": "Sub_PCA"}


def _set_threads(threads: int) -> None:
    """Cap BLAS/OpenMP threads; must run before numpy is imported."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        os.environ[var] = str(threads)
    os.environ["TQDM_DISABLE"] = "1"


def resolve(method: str, n_features: int) -> tuple[str, dict[str, Any], bool]:
    """TSB-AD's function, hyper-parameters and mode for ``method`` on a D-feature series.

    Returns
    -------
    function : str
        ``run_<function>`` in ``TSB_AD.model_wrapper``.
    hps : dict
        From ``Optimal_Multi_algo_HP_dict`` (D > 1) or ``Optimal_Uni_algo_HP_dict`` (D = 1).
    semi_supervised : bool
        True when ``function`` is in ``Semisupervise_AD_Pool`` (fitted on the training rows).
    """
    from TSB_AD import model_wrapper
    from TSB_AD.HP_list import Optimal_Multi_algo_HP_dict, Optimal_Uni_algo_HP_dict

    if n_features == 1:
        function = UNIVARIATE_FUNCTION.get(method, method)
        table = Optimal_Uni_algo_HP_dict
    else:
        function = method
        table = Optimal_Multi_algo_HP_dict
    if function not in table:
        raise KeyError(f"TSB-AD has no {'univariate' if n_features == 1 else 'multivariate'} settings for {function}")
    if function in model_wrapper.Semisupervise_AD_Pool:
        semi = True
    elif function in model_wrapper.Unsupervise_AD_Pool:
        semi = False
    else:
        raise KeyError(f"{function} is in neither of TSB-AD's pools")
    return function, dict(table[function]), semi


def info(methods: tuple[str, ...] = DEFAULT_METHODS) -> dict[str, Any]:
    """Versions, protocol and, per method, the (function, hps) for D > 1 and D = 1."""
    from importlib.metadata import version

    import numpy
    import torch

    return {
        "tsb_ad": version("TSB_AD"),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "protocol": PROTOCOL,
        "methods": {
            m: {kind: dict(zip(("function", "hps", "semi_supervised"), resolve(m, d))) for kind, d in (("multi", 2), ("uni", 1))}
            for m in methods
        },
    }


def standardise(train: Any, test: Any) -> tuple[Any, Any]:
    """Z-score both parts per column with the training rows' statistics.

    Parameters
    ----------
    train : ndarray of shape (N_train, D)
    test : ndarray of shape (N_test, D)

    Returns
    -------
    train, test : ndarrays of the same shapes, float64
    """
    import numpy as np

    mean = train.mean(axis=0)
    std = train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return (train - mean) / std, (test - mean) / std


def run_task(method: str, train: Any, test: Any, seed: int) -> dict[str, Any]:
    """One TSB-AD detector on one split, as TSB-AD's benchmark runs it.

    Parameters
    ----------
    method : str
        ``PCA``, ``CNN``, ``LSTMAD``, ``IForest`` (or any method both HP tables know).
    train : ndarray of shape (N_train, D)
    test : ndarray of shape (N_test, D)
    seed : int

    Returns
    -------
    dict with ``scores`` (N_test,), ``train_scores`` (N_train,), ``seconds``, ``function``,
    ``hps``, ``semi_supervised``, ``sliding_window``.
    """
    import random

    import numpy as np
    import torch
    from TSB_AD import model_wrapper
    from TSB_AD.utils.slidingWindows import find_length_rank

    function, hps, semi = resolve(method, train.shape[1])
    train, test = standardise(np.asarray(train, dtype=np.float64), np.asarray(test, dtype=np.float64))
    series = np.vstack([train, test])
    window = int(find_length_rank(series[:, 0].reshape(-1, 1), rank=1))
    run = getattr(model_wrapper, f"run_{function}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    start = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):
        output = run(train, series, **hps) if semi else run(series, **hps)
    seconds = time.perf_counter() - start
    if not isinstance(output, np.ndarray):
        raise RuntimeError(f"run_{function} returned {type(output).__name__}: {str(output)[:200]}")
    output = np.asarray(output, dtype=np.float64).ravel()
    if output.shape != (len(series),):
        raise RuntimeError(f"run_{function} returned {output.shape[0]} scores for {len(series)} rows")
    if not np.isfinite(output).all():
        raise RuntimeError(f"run_{function} returned {int((~np.isfinite(output)).sum())} non-finite scores")
    n_train = len(train)
    return {
        "scores": output[n_train:],
        "train_scores": output[:n_train],
        "seconds": seconds,
        "function": function,
        "hps": hps,
        "semi_supervised": semi,
        "sliding_window": window,
    }


def _write_atomic(path: Path, write: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("job", nargs="?", type=Path, help="job .npz (see the module docstring)")
    parser.add_argument("out", nargs="?", type=Path, help="folder for <id>.npz / <id>.json")
    parser.add_argument("--methods", default=",".join(DEFAULT_METHODS), help="comma-separated (without a spec)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch and BLAS threads (default 2)")
    parser.add_argument("--info", action="store_true", help="print versions, protocol and HPs as JSON; exit")
    args = parser.parse_args(argv)
    _set_threads(args.threads)

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    with contextlib.suppress(RuntimeError):  # already set (only when called twice in-process)
        torch.set_num_interop_threads(1)
    methods = tuple(m for m in args.methods.split(",") if m)
    if args.info:
        json.dump(info(methods), sys.stdout)
        print()
        return 0
    if args.job is None or args.out is None:
        parser.error("JOB and OUT_DIR are needed (or --info)")

    from importlib.metadata import version

    versions = {"tsb_ad": version("TSB_AD"), "torch": torch.__version__, "numpy": np.__version__}
    job = np.load(args.job, allow_pickle=False)
    n_series = sum(1 for k in job.files if k.startswith("name_"))
    if "spec" in job.files:
        tasks = json.loads(str(job["spec"]))["tasks"]
    else:
        tasks = [{"id": f"{i}-{m}", "series": i, "method": m} for i in range(n_series) for m in methods]
    args.out.mkdir(parents=True, exist_ok=True)

    for k, task in enumerate(tasks, 1):
        i, method = int(task["series"]), task["method"]
        name = str(job[f"name_{i}"])
        train, test = job[f"train_{i}"], job[f"test_{i}"]
        record: dict[str, Any] = {
            "name": name,
            "method": method,
            "n_train": int(train.shape[0]),
            "n_test": int(test.shape[0]),
            "n_features": int(train.shape[1]),
            "seed": args.seed,
            "threads": args.threads,
            "versions": versions,
            "protocol": PROTOCOL,
            "error": None,
        }
        scores = train_scores = np.empty(0)
        try:
            if train.ndim != 2 or test.ndim != 2 or train.shape[1] != test.shape[1]:
                raise ValueError(f"train {train.shape} and test {test.shape} must be 2-D with the same columns")
            result = run_task(method, train, test, args.seed)
            scores, train_scores = result.pop("scores"), result.pop("train_scores")
            record.update(result)
        except Exception as exc:  # noqa: BLE001 - recorded per task; the run goes on
            record["error"] = f"{type(exc).__name__}: {exc}".strip()[:2000]
            with contextlib.suppress(KeyError, ImportError):
                record["function"], record["hps"], _ = resolve(method, int(train.shape[1]))
            traceback.print_exc(file=sys.stderr)
        record.setdefault("seconds", None)

        def write_npz(path: Path) -> None:
            with open(path, "wb") as fh:
                np.savez(fh, scores=scores, train_scores=train_scores)

        _write_atomic(args.out / f"{task['id']}.npz", write_npz)
        _write_atomic(args.out / f"{task['id']}.json", lambda path: path.write_text(json.dumps(record, indent=1)))
        secs = f"{record['seconds']:.1f} s" if record["seconds"] is not None else "-"
        status = "ok" if record["error"] is None else f"error: {record['error'].splitlines()[0][:200]}"
        print(f"[{k}/{len(tasks)}] {name} {method} {secs} {status}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
