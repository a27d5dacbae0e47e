"""Reference values of TSB-AD's metrics, for tests/test_metrics.py (issue: VUS-PR as TSB-AD's).

Usage (from the repository root, in the peers' environment: tsb-ad pins numpy < 2)::

    .venv-peers/bin/python benchmarks/peers/make_metric_fixtures.py [--output PATH]

Builds seeded cases (:func:`metric_cases`: short and 5,000-row series, one and many labelled
ranges, ranges at the series' ends, tied scores, constant scores, random scores, unscored
NaN rows, the bundled demo's labels with a seeded score) and series (:func:`period_series`),
and writes to ``tests/fixtures/tsb_ad_metrics.json`` what TSB-AD 1.5 gives for them:
``get_metrics(score, labels, slidingWindow=w, thre=t)``'s ``AUC-PR``, ``AUC-ROC``, ``VUS-PR``,
``VUS-ROC`` and ``Standard-F1`` per case and window, and ``find_length_rank(data, rank)`` per
series and rank.

The inputs are not stored: the test rebuilds them with the builders below (numpy and the
standard library only, so they import without tsb-ad) and checks them against the SHA-256
digests stored beside the values, so a change in the generator or in numpy's random
streams fails loudly instead of comparing against the wrong inputs.

TSB-AD takes no NaN: where a case's scores have NaN (rows a detector leaves unscored), the
reference is computed on the scores with NaN set to the lowest finite score, which is what
``anomaly.evaluation.metrics`` documents it does; the test passes the NaN scores.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUTPUT = ROOT / "tests" / "fixtures" / "tsb_ad_metrics.json"
DEMO = ROOT / "data" / "demo_test.csv"
METRICS = ["AUC-PR", "AUC-ROC", "VUS-PR", "VUS-ROC", "Standard-F1"]
RANKS = [0, 1, 2, 3]


def digest(values: np.ndarray) -> str:
    """SHA-256 of the array as little-endian float64 (labels too), shape (L,) or (L, D)."""
    return hashlib.sha256(np.ascontiguousarray(values, dtype="<f8").tobytes()).hexdigest()


def read_demo() -> tuple[np.ndarray, np.ndarray]:
    """The demo test file, parsed with the standard library (identical in any environment).

    Returns
    -------
    features : ndarray of shape (L, D), float64
        The numeric columns in file order (no timestamp, no label).
    labels : ndarray of shape (L,), int64
        The ``anomaly`` column.
    """
    with open(DEMO, newline="") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1:]
    label_at = header.index("anomaly")
    feature_at = [i for i, name in enumerate(header) if name not in ("timestamp", "anomaly")]
    features = np.array([[float(row[i]) for i in feature_at] for row in body])
    labels = np.array([int(row[label_at]) for row in body], dtype=np.int64)
    return features, labels


def _ranges(n: int, spans: list[tuple[int, int]]) -> np.ndarray:
    """0/1 labels of length n, 1 on each inclusive ``(start, end)``."""
    labels = np.zeros(n, dtype=np.int64)
    for start, end in spans:
        labels[start : end + 1] = 1
    return labels


def _random_ranges(rng: np.random.Generator, n: int, count: int, longest: int) -> np.ndarray:
    labels = np.zeros(n, dtype=np.int64)
    for start in rng.choice(n - 1, count, replace=False):
        labels[start : start + int(rng.integers(1, longest + 1))] = 1
    return labels


def _detector_like(rng: np.random.Generator, labels: np.ndarray, lag: int, strength: float) -> np.ndarray:
    """Noise plus the labels smoothed over 15 steps and delayed by ``lag``: scores that rise
    near the labelled ranges, a little late, as a detector's do."""
    bump = np.convolve(labels.astype(np.float64), np.ones(15) / 15, mode="same")
    return rng.random(len(labels)) + strength * np.roll(bump, lag)


def metric_cases(demo_window: int) -> list[dict]:
    """The labelled cases: name, labels (L,) int, scores (L,) float (NaN = unscored),
    windows (the ``slidingWindow`` values to measure at) and ``thre``.

    ``demo_window`` is TSB-AD's ``find_length_rank`` of the demo's first column (stored in the
    fixture as ``demo_window``), one of the windows the demo cases are measured at."""
    cases = []

    def add(name: str, labels: np.ndarray, scores: np.ndarray, windows: list[int], thre: int = 250) -> None:
        cases.append(
            {"name": name, "labels": labels, "scores": np.asarray(scores, dtype=np.float64), "windows": windows, "thre": thre}
        )

    rng = np.random.default_rng(1)
    add("short_one_range", _ranges(50, [(20, 27)]), rng.random(50), [0, 1, 2, 5, 100])
    rng = np.random.default_rng(2)
    add("short_ranges_at_both_ends", _ranges(60, [(0, 1), (20, 20), (24, 25), (58, 59)]), rng.random(60), [0, 3, 8, 30])
    rng = np.random.default_rng(3)
    labels = _ranges(80, [(10, 13), (40, 40), (60, 69)])
    add("short_tied_scores", labels, np.round(rng.random(80) + 0.3 * labels, 1), [4, 100])
    rng = np.random.default_rng(4)
    labels = _ranges(80, [(10, 13), (40, 40), (60, 69)])
    add("short_seven_thresholds", labels, rng.random(80) + 0.5 * labels, [12], thre=7)
    add("short_constant", _ranges(40, [(5, 8), (30, 31)]), np.full(40, 0.5), [10, 100])
    rng = np.random.default_rng(6)
    add("first_step_only", _ranges(30, [(0, 0)]), rng.random(30), [6])
    rng = np.random.default_rng(7)
    add("last_step_only", _ranges(30, [(29, 29)]), rng.random(30), [6])

    n = 5000
    rng = np.random.default_rng(10)
    labels = _ranges(n, [(2400, 2459)])
    add("long_one_range", labels, _detector_like(rng, labels, 5, 1.5), [100, 125])
    rng = np.random.default_rng(11)
    labels = _random_ranges(rng, n, 40, 80)
    labels[:7] = 1
    labels[-3:] = 1
    scores = _detector_like(rng, labels, 3, 1.0)
    scores[rng.random(n) < 0.05] = np.nan
    scores[:20] = np.nan  # a warm-up
    add("long_many_ranges_edges_and_nan", labels, scores, [100])
    rng = np.random.default_rng(12)
    labels = _random_ranges(rng, n, 15, 50)
    add("long_tied_scores", labels, np.round(_detector_like(rng, labels, 0, 0.8) * 20) / 20, [60])
    rng = np.random.default_rng(13)
    add("long_constant", _random_ranges(rng, n, 10, 60), np.ones(n), [100])
    rng = np.random.default_rng(14)
    add("long_random_scores", _random_ranges(rng, n, 25, 40), rng.random(n), [100])
    rng = np.random.default_rng(15)
    labels = np.zeros(n, dtype=np.int64)
    labels[rng.choice(n, 30, replace=False)] = 1
    add("long_single_points", labels, _detector_like(rng, labels, 1, 4.0), [50])

    features, labels = read_demo()
    rng = np.random.default_rng(20)
    scores = _detector_like(rng, labels, 4, 1.2)
    scores[:30] = np.nan
    add("demo", labels, scores, [100, demo_window])
    add("demo_constant", labels, np.ones(len(labels)), [100, demo_window])
    return cases


def period_series() -> list[dict]:
    """Series for ``find_length_rank``: name and data, shape (L,), (L, 1) or (L, D)."""
    series = []
    for seed, (n, period, noise) in enumerate(
        [(3000, 24, 0.3), (5000, 50, 1.0), (30000, 288, 0.5), (6000, 350, 0.2), (2000, 7, 0.1), (4000, 130, 2.0)]
    ):
        rng = np.random.default_rng(100 + seed)
        t = np.arange(n)
        data = np.sin(2 * np.pi * t / period) + 0.5 * np.sin(2 * np.pi * t / (period * 3.1)) + rng.normal(0, noise, n)
        series.append({"name": f"sine_period_{period}_rows_{n}", "data": data})
    rng = np.random.default_rng(200)
    series.append({"name": "white_noise", "data": rng.normal(size=5000)})
    rng = np.random.default_rng(201)
    series.append({"name": "random_walk", "data": np.cumsum(rng.normal(size=5000))})
    series.append({"name": "constant", "data": np.full(1000, 3.0)})
    rng = np.random.default_rng(202)
    series.append({"name": "short_50", "data": np.sin(np.arange(50) / 2.0) + 0.1 * rng.normal(size=50)})
    series.append({"name": "short_5", "data": np.array([1.0, 3.0, 2.0, 5.0, 4.0])})
    rng = np.random.default_rng(203)
    series.append(
        {"name": "column_vector", "data": np.sin(np.arange(3000) / 6.0).reshape(-1, 1) + 0.2 * rng.normal(size=(3000, 1))}
    )
    series.append({"name": "two_channels", "data": np.column_stack([np.arange(500.0), np.ones(500)])})
    features, _ = read_demo()
    for i in range(features.shape[1]):
        series.append({"name": f"demo_column_{i}", "data": features[:, i]})
    return series


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args()

    import TSB_AD
    from TSB_AD.evaluation.metrics import get_metrics
    from TSB_AD.utils.slidingWindows import find_length_rank

    warnings.filterwarnings("ignore")  # TSB-AD's and statsmodels' own warnings
    version = getattr(TSB_AD, "__version__", None)
    if version is None:
        from importlib.metadata import version as package_version

        version = package_version("tsb-ad")
    features, _ = read_demo()
    out: dict = {
        "generator": "benchmarks/peers/make_metric_fixtures.py",
        "tsb_ad": version,
        "numpy": np.__version__,
        "demo_window": int(find_length_rank(features[:, 0].reshape(-1, 1), rank=1)),
        "cases": [],
        "series": [],
    }
    for case in metric_cases(out["demo_window"]):
        labels, scores = case["labels"], case["scores"]
        finite = scores[np.isfinite(scores)]
        given = np.where(np.isnan(scores), finite.min(), scores)  # TSB-AD takes no NaN
        entry = {
            "name": case["name"],
            "rows": len(labels),
            "labelled": int(labels.sum()),
            "labels_sha256": digest(labels),
            "scores_sha256": digest(scores),
            "thre": case["thre"],
            "windows": {},
        }
        for window in case["windows"]:
            start = time.perf_counter()
            measured = get_metrics(given, labels, slidingWindow=window, thre=case["thre"])
            seconds = time.perf_counter() - start
            entry["windows"][str(window)] = {name: float(measured[name]) for name in METRICS}
            print(
                f"{case['name']:<32} window {window:>3}: "
                + "  ".join(f"{name} {measured[name]:.4f}" for name in METRICS)
                + f"  ({seconds:.1f}s)"
            )
        out["cases"].append(entry)
    for item in period_series():
        data = item["data"]
        ranks = {str(rank): int(find_length_rank(data, rank=rank)) for rank in RANKS}
        out["series"].append(
            {"name": item["name"], "shape": list(np.shape(data)), "sha256": digest(data), "find_length_rank": ranks}
        )
        print(f"{item['name']:<32} find_length_rank by rank {ranks}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
