"""Fill the peers' cache for the real data sets, so the harness later reads TSB-AD's results.

Usage (from the repository root, in the product's environment; hours on 2 cores, so niced)::

    nohup nice -n 15 .venv/bin/python benchmarks/peers/precompute.py [smd skab nab]
        [--datasets PATH] [--methods PCA,IForest,CNN,LSTMAD] [--seed 0] [--threads 2]
        [--cache-dir results/benchmark/peers-cache] &

The splits are the harness's (``benchmarks/detection.py``), built the same way so the cache
keys match what it will pass — ``train`` and ``test`` as float64 arrays in file column order:

SMD
    ``smd/machine-1-K_train.parquet`` is ``train``, ``machine-1-K_test.parquet`` is ``test``
    (columns ``f00`` … ``f37`` in the train file's order; ``timestamp`` and ``anomaly`` dropped).
SKAB
    The 34 files of ``skab/data/{valve1,valve2,other}`` (``;``-separated, index ``datetime``,
    ``anomaly`` and ``changepoint`` dropped: 8 columns); ``train`` = the first 400 rows.
NAB
    The 58 files ``nab/data/<category>/*.csv`` (column ``value``); ``train`` = the first
    ``min(floor(0.15 L), 750)`` rows (NAB's probationary period).

Data sets run in the order given (default SMD, SKAB, NAB); within one, method by method
(cheapest first), so each method's results for a whole data set land early. Progress, one
line per task, and a per-method summary (total, median and largest seconds, errors) go to
``<cache-dir>/progress.log`` and to stdout; each summary also to
``<cache-dir>/timings-<dataset>.json``. Cached results are not recomputed, so the script can be
stopped and started again.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from client import DEFAULT_CACHE_DIR, REPO_ROOT, PeerCase, peers_unavailable, run_peers  # noqa: E402

DATASETS = ("smd", "skab", "nab")
METHOD_ORDER = ("PCA", "IForest", "CNN", "LSTMAD")
SKAB_FOLDERS = ("valve1", "valve2", "other")
SKAB_TRAIN_ROWS = 400
NAB_PROBATION_FRACTION, NAB_PROBATION_CAP = 0.15, 750


def smd_cases(root: Path) -> list[PeerCase]:
    """One case per machine: train (≈23,700 × 38), test (≈23,700 × 38)."""
    folder = root / "smd"
    cases = []
    for path in sorted(folder.glob("*_train.parquet")):
        machine = path.name[: -len("_train.parquet")]
        train = pd.read_parquet(path).set_index("timestamp")
        test = pd.read_parquet(folder / f"{machine}_test.parquet").set_index("timestamp")
        test = test.drop(columns=["anomaly"])[train.columns]
        cases.append(PeerCase(machine, train.to_numpy(np.float64), test.to_numpy(np.float64)))
    return cases


def _skab_key(path: Path) -> tuple[int, int]:
    return SKAB_FOLDERS.index(path.parent.name), int(path.stem) if path.stem.isdigit() else 10**6


def skab_cases(root: Path) -> list[PeerCase]:
    """One case per experiment file: train (400 × 8), test (345–927 × 8)."""
    data = root / "skab" / "data"
    paths = sorted((p for folder in SKAB_FOLDERS for p in (data / folder).glob("*.csv")), key=_skab_key)
    cases = []
    for path in paths:
        frame = pd.read_csv(path, sep=";", index_col="datetime", parse_dates=True)
        values = frame.drop(columns=["anomaly", "changepoint"]).to_numpy(np.float64)
        name = f"{path.parent.name}/{path.name}"
        cases.append(PeerCase(name, values[:SKAB_TRAIN_ROWS], values[SKAB_TRAIN_ROWS:]))
    return cases


def nab_cases(root: Path) -> list[PeerCase]:
    """One case per file: train (probationary period × 1), test (the rest × 1)."""
    data = root / "nab" / "data"
    cases = []
    for path in sorted(data.glob("*/*.csv")):
        values = pd.read_csv(path, index_col="timestamp", parse_dates=True).to_numpy(np.float64)
        cut = int(min(math.floor(NAB_PROBATION_FRACTION * len(values)), NAB_PROBATION_CAP))
        cases.append(PeerCase(path.relative_to(data).as_posix(), values[:cut], values[cut:]))
    return cases


LOADERS = {"smd": smd_cases, "skab": skab_cases, "nab": nab_cases}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="*", help=f"any of {', '.join(DATASETS)} (default: all, in that order)")
    parser.add_argument(
        "--datasets",
        dest="root",
        type=Path,
        default=None,
        help="data root (default $ANOMALY_DATASETS, else ../shared/datasets beside the repo)",
    )
    parser.add_argument("--methods", default=",".join(METHOD_ORDER))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR)
    args = parser.parse_args(argv)
    args.datasets = args.datasets or list(DATASETS)
    unknown = sorted(set(args.datasets) - set(DATASETS))
    if unknown:
        parser.error(f"unknown data set(s) {', '.join(unknown)}; choose from {', '.join(DATASETS)}")
    root = args.root or Path(os.environ.get("ANOMALY_DATASETS") or REPO_ROOT.parent / "shared" / "datasets")
    reason = peers_unavailable()
    if reason is not None:
        print(reason)
        return 2
    if not root.is_dir():
        print(f"no data sets at {root}: nothing to precompute")
        return 0
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    log_file = open(args.cache_dir / "progress.log", "a", buffering=1)

    def log(line: str) -> None:
        stamped = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}"
        print(stamped, flush=True)
        log_file.write(stamped + "\n")

    methods = [m for m in args.methods.split(",") if m]
    log(
        f"precompute {' '.join(args.datasets)} methods={','.join(methods)} seed={args.seed} "
        f"threads={args.threads} pid={os.getpid()} nice={os.nice(0)}"
    )
    for dataset in args.datasets:
        cases = LOADERS[dataset](root)
        log(f"{dataset}: {len(cases)} series")
        summary = {}
        for method in methods:
            start = time.perf_counter()
            results = run_peers(
                cases,
                [method],
                seed=args.seed,
                cache_dir=args.cache_dir,
                threads=args.threads,
                progress=lambda line, d=dataset: log(f"{d} {line}"),
            )
            seconds = [r.seconds for r in results.values() if r.error is None]
            errors = {name: r.error for (name, _), r in results.items() if r.error is not None}
            summary[method] = {
                "series": len(results),
                "ok": len(seconds),
                "total_s": round(sum(seconds), 1),
                "median_s": round(statistics.median(seconds), 1) if seconds else None,
                "max_s": round(max(seconds), 1) if seconds else None,
                "errors": errors,
                "wall_s_this_call": round(time.perf_counter() - start, 1),
            }
            s = summary[method]
            log(
                f"{dataset} {method} done: {s['ok']}/{s['series']} ok, run_* seconds total {s['total_s']} "
                f"median {s['median_s']} max {s['max_s']}; errors {len(errors)}"
            )
        (args.cache_dir / f"timings-{dataset}.json").write_text(
            json.dumps({"seed": args.seed, "threads": args.threads, "methods": summary}, indent=1)
        )
    log("precompute finished")
    return 0


if __name__ == "__main__":
    sys.exit(main())
