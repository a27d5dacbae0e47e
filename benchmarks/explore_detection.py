"""Exploration behind the defaults of ``benchmarks/detection.py`` — not a benchmark itself.

Three steps, so that a model is trained once and its scores post-processed many ways:

    # 1. fit one Detector configuration on every file; cache raw scores, z and calibration rows
    python benchmarks/explore_detection.py cache skab --config lstm-w32-u32-s4 --set stride=4 --set autoregressive=0
    python benchmarks/explore_detection.py cache nab --config skip-lstm-w32-u32-s4 --model skip --set stride=4
    # 2. sweep post-processing settings over one data set's caches (and the cached baselines)
    python benchmarks/explore_detection.py sweep skab --config lstm-w32-u32-s4 --baselines \
        --grid span=1,10,30 --grid factor=1,2,3
    # 2b. two cached networks' z combined per feature (mean, min_abs or geo), then swept
    python benchmarks/explore_detection.py sweep skab --config lstm-w32-u32-s4+skip-lstm-w32-u32-s4:geo \
        --grid aggregation=max_abs --grid span=30 --grid quantile=0.99 --grid factor=2,3 --grid merge_gap=100
    # 3. one setting for both data sets at once, as the harness applies it
    python benchmarks/explore_detection.py joint both --config skab:skip-lstm-w32-u32-s4 \
        --config nab:skip-lstm-w32-u32-s4 --grid aggregation=max_abs --grid span=10,30 \
        --grid factor=1.5,2,3 --grid merge_gap=0,30,100

``--set PARAM=VALUE`` overrides a Detector parameter of ``DETECTOR_SETTINGS`` (which now include
``autoregressive=2``: give ``--set autoregressive=0`` for the network alone, as the caches made
before it were), ``--model skip`` is ``--set residual=true --set autoregressive=0`` (the
product's residual network: it predicts each step's change), ``--transform diff`` feeds first
differences instead of levels. The linear-part caches of DETECTION.md:
``cache skab --config ar2-lstm-w32-u32-s4 --set stride=4 --set autoregressive=2``.
Caches live in ``results/benchmark/cache/<dataset>/<config>/`` (git-ignored); ``sweep`` appends
to ``results/benchmark/explore_log.csv``, ``joint`` to ``explore_joint_log.csv``. What was
tried and what came out is written up in ``benchmarks/DETECTION.md``.

CAVEAT. The sweeps print test-set metrics for many settings. Choosing the setting with the best
test figure is tuning on test labels; the choice is disclosed and the same choice applies to
every data set. ``oracle_f1`` (best pooled F1 over all thresholds) and ``file_oracle_f1`` (each
file at its own best threshold) are chosen WITH test labels: diagnostics of how separable the
scores are, never results.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from detection import (
    DEFAULT_OUTPUT,
    LOADERS,
    Case,
    PostProcessing,
    Scores,
    case_counts,
    datasets_root,
    detector_params,
    pooled_metrics,
    postprocess,
    score_detector,
    score_iforest,
    score_pca,
    score_random,
)

CACHE = DEFAULT_OUTPUT / "cache"
LOG = DEFAULT_OUTPUT / "explore_log.csv"


def _parse_value(text: str) -> Any:
    if "," in text:
        return tuple(_parse_value(t) for t in text.split(",") if t)
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _save(path: Path, case: Case, result: Scores) -> None:
    np.savez_compressed(
        path,
        scores=result.scores,
        z=result.z if result.z is not None else np.empty((0, 0)),
        flags=result.flags if result.flags is not None else np.empty(0, dtype=bool),
        labels=case.labels,
        train_end=case.train_end,
        calibration=np.array([result.calibration.start, result.calibration.stop]),
        seconds=result.seconds,
        info=json.dumps(result.info),
        residual_scale=result.residual_scale if result.residual_scale is not None else np.empty(0),
    )


def _load(path: Path) -> tuple[np.ndarray, int, Scores]:
    data = np.load(path)
    z = data["z"]
    result = Scores(
        scores=data["scores"],
        calibration=slice(*map(int, data["calibration"])),
        z=z if z.size else None,
        flags=data["flags"] if data["flags"].size else None,
        seconds=float(data["seconds"]),
        info=json.loads(str(data["info"])),
        residual_scale=data["residual_scale"] if "residual_scale" in data and data["residual_scale"].size else None,
    )
    return data["labels"], int(data["train_end"]), result


TRANSFORMS = {
    "none": lambda frame: frame,
    "diff": lambda frame: frame.diff(),
}


def cache(dataset: str, config: str, overrides: dict[str, Any], seed: int, root: Path, quick: bool, transform: str = "none",
          model: str = "product") -> None:
    """Fit the Detector (and, once per data set, the baselines) on every file; save raw outputs."""
    if model == "skip":
        overrides = {**overrides, "residual": True, "autoregressive": 0}
    cases = LOADERS[dataset](root, quick)
    folder = CACHE / dataset / config
    folder.mkdir(parents=True, exist_ok=True)
    params = detector_params(False, seed, overrides)
    (folder / "params.json").write_text(json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}, indent=1))
    base = CACHE / dataset / "_baselines"
    base.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    for i, case in enumerate(cases, 1):
        stem = case.name.replace("/", "__")
        target = folder / f"{stem}.npz"
        if not target.exists():
            result = score_detector(replace(case, frame=TRANSFORMS[transform](case.frame)), params)
            _save(target, case, result)
            print(f"[{dataset} {config} {i}/{len(cases)}] {case.name} {result.seconds:.1f} s "
                  f"{result.info['epochs_run']:.0f} epochs", flush=True)
        for name, fn in (("pca", score_pca), ("iforest", score_iforest), ("random", score_random)):
            path = base / f"{name}__{stem}.npz"
            if not path.exists():
                _save(path, case, fn(case, seed + i if name == "random" else seed))
    print(f"cached {dataset}/{config} in {time.perf_counter() - started:.0f} s")


def _oracle_f1(labels: list[np.ndarray], scores: list[np.ndarray]) -> float:
    """Best pooled point-wise F1 over all thresholds — uses test labels: diagnostic only."""
    y = np.concatenate(labels)
    s = np.concatenate(scores)
    s = np.nan_to_num(s, nan=-np.inf)
    order = np.argsort(-s, kind="stable")
    tp = np.cumsum(y[order])
    k = np.arange(1, len(y) + 1)
    f1 = 2 * tp / (k + y.sum())
    return float(f1.max())


def _per_file_oracle_f1(labels: list[np.ndarray], scores: list[np.ndarray]) -> float:
    """Pooled F1 when every file gets its own best threshold — uses test labels: ceiling only."""
    tp = fp = fn = 0
    for y, s in zip(labels, scores):
        s = np.nan_to_num(s, nan=-np.inf)
        order = np.argsort(-s, kind="stable")
        hits = np.concatenate([[0], np.cumsum(y[order])])
        k = np.arange(len(y) + 1)
        with np.errstate(invalid="ignore"):
            best = int(np.nanargmax(2 * hits / (k + y.sum()))) if y.any() else 0
        tp += hits[best]
        fp += best - hits[best]
        fn += y.sum() - hits[best]
    return float(2 * tp / (2 * tp + fp + fn))


def evaluate(dataset: str, method: str, loaded: list[tuple[np.ndarray, int, Scores]], pp: PostProcessing) -> dict[str, float]:
    counts, test_scores, test_labels = [], [], []
    for labels, train_end, result in loaded:
        smooth, flags, _ = postprocess(result, pp)
        counts.append(case_counts(labels[train_end:], flags[train_end:]))
        test_scores.append(smooth[train_end:])
        test_labels.append(labels[train_end:])
    return {**pooled_metrics(counts), "oracle_f1": _oracle_f1(test_labels, test_scores),
            "file_oracle_f1": _per_file_oracle_f1(test_labels, test_scores)}


GRID = {
    "aggregation": ["rms", "mean_abs", "max_abs"],
    "span": [1, 5, 10, 20, 40],
    "threshold": ["quantile"],
    "quantile": [0.9, 0.95, 0.99, 0.999],
}


# Per-feature ways to combine two cached networks' z into one (``--config A+B:how``).
COMBINE = {
    "mean": lambda a, b: (a + b) / 2,
    "min_abs": lambda a, b: np.where(np.abs(a) < np.abs(b), a, b),  # surprising to both networks
    "geo": lambda a, b: np.sign(a) * np.sqrt(np.abs(a * b)),
}


def _load_config(dataset: str, config: str) -> list[tuple[np.ndarray, int, Scores]]:
    """A cached configuration's files, or two combined: ``A+B:how`` (how: a key of COMBINE)
    takes A's calibration rows and ``COMBINE[how](z_A, z_B)`` as the z of every file."""
    if "+" not in config:
        return [_load(p) for p in sorted((CACHE / dataset / config).glob("*.npz"))]
    pair, _, how = config.partition(":")
    first, second = pair.split("+", 1)
    combined = []
    for (labels, train_end, a), (_, _, b) in zip(_load_config(dataset, first), _load_config(dataset, second)):
        combined.append((labels, train_end, replace(a, z=COMBINE[how](a.z, b.z), residual_scale=None)))
    return combined


def sweep(dataset: str, configs: list[str], grid: dict[str, list[Any]], baselines: bool) -> pd.DataFrame:
    rows = []
    keys = list(grid)
    targets = [(c, _load_config(dataset, c)) for c in configs]
    if baselines:
        for name in ("pca", "iforest", "random"):
            targets.append((name, [_load(p) for p in sorted((CACHE / dataset / "_baselines").glob(f"{name}__*.npz"))]))
    for config, loaded in targets:
        seconds = sum(r.seconds for _, _, r in loaded)
        is_detector = loaded[0][2].z is not None
        for values in itertools.product(*(grid[k] for k in keys)):
            settings = dict(zip(keys, values))
            if not is_detector and settings.get("aggregation", "rms") != "rms":
                continue
            pp = PostProcessing(**settings)
            rows.append({"dataset": dataset, "config": config, "files": len(loaded), **asdict(pp),
                         **evaluate(dataset, config, loaded, pp), "fit_seconds": seconds})
    table = pd.DataFrame(rows)
    LOG.parent.mkdir(parents=True, exist_ok=True)
    table.assign(logged=pd.Timestamp.now().isoformat(timespec="seconds")).to_csv(
        LOG, mode="a", header=not LOG.exists(), index=False, float_format="%.4f")
    return table


def joint(configs: dict[str, str], grid: dict[str, list[Any]]) -> pd.DataFrame:
    """One post-processing setting applied to every data set at once (the rule the harness
    follows): SKAB point-wise F1 and NAB event-wise F1 of the Detector and of the baselines."""
    loaded = {}
    for dataset, config in configs.items():
        for method in (config, "pca", "iforest"):
            folder = CACHE / dataset / (config if method == config else "_baselines")
            pattern = "*.npz" if method == config else f"{method}__*.npz"
            loaded[dataset, "detector" if method == config else method] = [_load(p) for p in sorted(folder.glob(pattern))]
    rows = []
    keys = list(grid)
    for values in itertools.product(*(grid[k] for k in keys)):
        pp = PostProcessing(**dict(zip(keys, values)))
        row = {"configs": ",".join(f"{d}:{c}" for d, c in configs.items()), **asdict(pp)}
        for (dataset, method), items in loaded.items():
            m = evaluate(dataset, method, items, pp)
            if dataset == "skab":
                row.update({f"skab.{method}.f1": m["f1"], f"skab.{method}.far": m["far_pct"], f"skab.{method}.mar": m["mar_pct"]})
            else:
                row.update({f"nab.{method}.event_f1": m["event_f1"], f"nab.{method}.f1": m["f1"]})
        rows.append(row)
    table = pd.DataFrame(rows)
    table.assign(logged=pd.Timestamp.now().isoformat(timespec="seconds")).to_csv(
        DEFAULT_OUTPUT / "explore_joint_log.csv", mode="a", header=not (DEFAULT_OUTPUT / "explore_joint_log.csv").exists(),
        index=False, float_format="%.4f")
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("step", choices=["cache", "sweep", "joint"])
    parser.add_argument("dataset", choices=["skab", "nab", "both"], help="for joint: both (give --config skab:NAME --config nab:NAME)")
    parser.add_argument("--config", action="append", required=True, help="name of the cached configuration (repeatable for sweep)")
    parser.add_argument("--set", action="append", default=[], metavar="PARAM=VALUE", help="Detector parameter override (cache)")
    parser.add_argument("--transform", choices=sorted(TRANSFORMS), default="none", help="applied to each series before the Detector sees it (cache)")
    parser.add_argument("--model", choices=["product", "skip"], default="product", help="network: the default, or the residual option (cache)")
    parser.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2", help="post-processing grid override (sweep)")
    parser.add_argument("--baselines", action="store_true", help="sweep the cached baselines too")
    parser.add_argument("--datasets")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sort", default=None, help="column to sort the printed sweep by")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    root = datasets_root(args.datasets)
    if args.step == "cache":
        overrides = {}
        for item in args.set:
            key, _, value = item.partition("=")
            overrides[key] = _parse_value(value)
            if key == "units" and not isinstance(overrides[key], tuple):
                overrides[key] = (overrides[key],)
        for config in args.config:
            cache(args.dataset, config, overrides, args.seed, root, args.quick, args.transform, args.model)
        return 0
    grid = dict(GRID)
    for item in args.grid:
        key, _, value = item.partition("=")
        parsed = _parse_value(value + ("," if "," not in value else ""))
        grid[key] = list(parsed)
    if args.step == "joint":
        table = joint(dict(c.split(":", 1) for c in args.config), grid)
        sort = args.sort or "skab.detector.f1"
        with pd.option_context("display.float_format", "{:.3f}".format, "display.width", 300, "display.max_rows", 500):
            shown = [c for c in table.columns if c not in ("configs", "threshold", "pot_level", "scale_floor")]
            print(table.sort_values(sort, ascending=False)[shown].head(args.top).to_string(index=False))
        return 0
    table = sweep(args.dataset, args.config, grid, args.baselines)
    sort = args.sort or ("f1" if args.dataset == "skab" else "event_f1")
    cols = ["config", *grid.keys(), "f1", "precision", "recall", "far_pct", "mar_pct", "event_recall",
            "event_precision", "event_f1", "oracle_f1", "file_oracle_f1"]
    with pd.option_context("display.float_format", "{:.3f}".format, "display.width", 250, "display.max_rows", 500):
        print(table.sort_values(sort, ascending=False)[cols].head(args.top).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
