"""Threshold and scale rules that adapt to the scored stream, emulated on the defaults' own residuals.

    python benchmarks/stream_rules.py cache smd|skab|nab [--train-rows N] [--seed S]   # fit and score once
    python benchmarks/stream_rules.py sweep smd,smd-train1000,skab,nab RULE ...   # seconds to minutes

``cache`` fits ``Detector()`` with the product's defaults (seed 0, or ``--seed``) on each dev
series' training part (``benchmarks/detection.py``'s loaders and split; ``--train-rows N``: its
last N rows, as TSB-AD's ``tr_N``) and keeps, per series, the scored rows' normalised residuals
z (L, D) as the normaliser gives them (scored with ``scale_follow`` off), those of the
calibration tail (K, D), the product's scores, the fitted threshold and the calibration scores,
under ``results/benchmark/stream-rules/<set>[-trainN][-seedS].npz`` (git-ignored; no seed
suffix for seed 0). Caches written before ``scale_follow`` existed hold the same z.

``sweep`` rebuilds each series' score from z with the product's own stages (``Aggregator``,
``EwmaSmoother``, ``LevelFollower``) under a rule, flags ``score > threshold`` (the event grouping
aside) and prints pooled point-wise F1, precision and recall over the set's test rows, and the
mean average precision over its series with anomalies. Rules (as many as given):

``product``
    The defaults: each feature's error level followed by the product's own
    :class:`~anomaly.detection.error_level.ErrorLevelFollower` (``scale_follow``), the score as
    the product computes it, the level follower on it. Reproduces the product's own flags
    (``benchmarks/DETECTION.md``, thirteenth and fourteenth passes, check it).
``fixed``
    The same without ``scale_follow`` (the defaults before the fourteenth pass). The rules below
    change these.
``window:W``
    The level follower over the last W rows instead of 4,096.
``spread:Q:CAP[:gated]``
    The threshold also follows the spread of the window's scores: fitted + rise of the median +
    (fitted - calibration median) x (r - 1), r = (quantile Q - median) of the window over that of
    the calibration, clipped to [1, CAP]; ``gated``: only while the window's median is above the
    fitted threshold.
``follow:CAP[:full]``
    Each feature's z divided by max(1, median |z| of the last 4,096 rows / its calibration median
    |z|), at most CAP, read every 64 rows (the calibration fills the window as in the level
    follower); ``full``: only once 4,096 rows have been scored, with the scored rows alone.
    Exact medians (slow); ``follow:1.5:full`` is what ``scale_follow`` does, read every 64 rows
    rather than every 256.
``rate:Q``
    The defaults (``product``), with the threshold at least the Q-quantile of the last 4,096
    scores once that many rows are scored (read every 64 rows): at most about 1 - Q of a long
    stream's rows flagged.
``spot:LEVEL:RISK[:DEPTH]``
    SPOT (Siffer et al. 2017, algorithm "SPOT") on the product's score (``scale_follow`` on) in
    place of the quantile and the level follower: initialised on the calibration scores (t
    their LEVEL quantile, the GPD fitted to the excesses above it), then causal over the
    scored rows: a row above the threshold is flagged and kept out of the fit, a row above t
    adds a peak, and the GPD is refitted every 64 rows (at fixed positions, so chunk-invariant).
    With DEPTH: DSPOT, the same on each score less the mean of the last DEPTH unflagged scores
    (the drift). Until 10 peaks are known the fitted threshold stands.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/detection.py

import detection  # noqa: E402

from anomaly.detection.error_level import ErrorLevelFollower, calibration_levels  # noqa: E402
from anomaly.detection.level import UPDATE_EVERY, WINDOW, LevelFollower, histogram  # noqa: E402
from anomaly.detection.scoring import Aggregator  # noqa: E402
from anomaly.detection.smoothing import EwmaSmoother  # noqa: E402
from anomaly.evaluation.metrics import average_precision  # noqa: E402

CACHE = detection.DEFAULT_OUTPUT / "stream-rules"


def cache(dataset: str, train_rows: int | None, seed: int = 0) -> Path:
    """Fit and score every series of ``dataset`` once; the path of the cache written."""
    from anomaly.detector import FLAG_COLUMN, SCORE_COLUMN, THRESHOLD_COLUMN, Detector

    cases = detection.LOADERS[dataset](detection.datasets_root(None), False)
    if train_rows:
        cases = [detection.shorten_training(case, train_rows) for case in cases]
    out: dict[str, np.ndarray] = {}
    started = time.perf_counter()
    for i, case in enumerate(cases):
        train = case.frame.iloc[: case.train_end]
        detector = Detector(random_state=seed).fit(train).set_params(scale_follow=False)  # z as normalised
        calibration_rows = len(detector.calibration_scores_)

        def residuals(frame):
            scored = detector.score(frame)
            return scored, scored[[c for c in scored.columns if c.startswith("z_")]].to_numpy(np.float32)

        if case.separate_test:
            scored, z = residuals(case.frame.iloc[case.train_end :])
            # Scoring the training part from its start reproduces the calibration pass (warm state).
            calibration = residuals(train)[1][-calibration_rows:]
            start, labels = 0, case.labels[case.train_end :]
        else:
            scored, z = residuals(case.frame)
            calibration = z[case.train_end - calibration_rows : case.train_end]
            start, labels = case.train_end, case.labels
        key = f"{i:03d}"
        out.update(
            {
                f"{key}_name": np.array(case.name),
                f"{key}_z": z,
                f"{key}_zcal": calibration,
                f"{key}_score": scored[SCORE_COLUMN].to_numpy(np.float64),
                f"{key}_thr": scored[THRESHOLD_COLUMN].to_numpy(np.float64),
                f"{key}_flag": scored[FLAG_COLUMN].to_numpy(bool),
                f"{key}_labels": np.asarray(labels, dtype=bool),
                f"{key}_start": np.array(start),
                f"{key}_calib": np.asarray(detector.calibration_scores_, np.float64),
                f"{key}_t0": np.array(detector.threshold_),
            }
        )
        print(f"{dataset} {i + 1}/{len(cases)} {case.name} {time.perf_counter() - started:.0f} s", flush=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"{dataset}{f'-train{train_rows}' if train_rows else ''}{f'-seed{seed}' if seed else ''}.npz"
    np.savez_compressed(path, **out)
    return path


def _weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """The q-quantile of non-NaN ``values`` (n,) with ``weights`` (n,); NaN when none."""
    present = ~np.isnan(values)
    values, weights = values[present], weights[present]
    if not len(values):
        return float("nan")
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    return float(values[order][min(np.searchsorted(cumulative, q * cumulative[-1]), len(values) - 1)])


def _window(recent: np.ndarray, calibration: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The follower's window: the recent rows, the calibration filling what they leave, in proportion."""
    if len(recent) >= size:
        return recent, np.ones(len(recent))
    weight = min(len(calibration), size - len(recent)) / len(calibration)
    values = np.concatenate([calibration, recent])
    return values, np.concatenate([np.full(len(calibration), weight), np.ones(len(recent))])


def spread_thresholds(
    scores: np.ndarray, calibration: np.ndarray, fitted: float, q: float, cap: float, gated: bool
) -> np.ndarray:
    """Per-row thresholds (L,) of the ``spread`` rule for scores (L,) and calibration scores (K,)."""
    calibration = calibration[~np.isnan(calibration)]
    median_c = float(np.median(calibration))
    spread_c = float(np.quantile(calibration, q)) - median_c
    out = np.full(len(scores), fitted)
    for t in range(UPDATE_EVERY, len(scores), UPDATE_EVERY):
        values, weights = _window(scores[max(0, t - WINDOW) : t], calibration, WINDOW)
        median = _weighted_quantile(values, weights, 0.5)
        ratio = (_weighted_quantile(values, weights, q) - median) / spread_c if spread_c > 0 else 1.0
        ratio = 1.0 if gated and median <= fitted else min(max(1.0, ratio), cap)
        out[t : t + UPDATE_EVERY] = fitted + max(0.0, median - median_c) + (fitted - median_c) * (ratio - 1.0)
    return out


def follow_scales(z: np.ndarray, calibration: np.ndarray, cap: float, full_only: bool) -> np.ndarray:
    """Per-row, per-feature divisors (L, D) of the ``follow`` rule for z (L, D) and calibration z (K, D)."""
    size = np.abs(z)
    base = np.nanmedian(np.abs(calibration), axis=0)
    scales = np.ones(z.shape)
    for t in range(UPDATE_EVERY, len(z), UPDATE_EVERY):
        if full_only and t < WINDOW:
            continue
        recent = size[max(0, t - WINDOW) : t]
        if full_only:
            medians = np.nanmedian(recent, axis=0)
        else:
            values, weights = _window(recent, np.abs(calibration), WINDOW)
            medians = np.array([_weighted_quantile(values[:, j], weights, 0.5) for j in range(z.shape[1])])
        ratio = np.where((base > 0) & np.isfinite(medians), medians / np.where(base > 0, base, 1.0), 1.0)
        scales[t : t + UPDATE_EVERY] = np.clip(ratio, 1.0, cap)
    return scales


def rate_floors(scores: np.ndarray, q: float) -> np.ndarray:
    """Per-row floors (L,) of the ``rate`` rule: the q-quantile of the last WINDOW scores, once
    that many rows are scored (read every 64 rows); 0 before."""
    out = np.zeros(len(scores))
    for t in range(WINDOW, len(scores), UPDATE_EVERY):
        recent = scores[t - WINDOW : t]
        recent = recent[~np.isnan(recent)]
        if len(recent):
            out[t : t + UPDATE_EVERY] = np.quantile(recent, q)
    return out


def spot_thresholds(
    scores: np.ndarray, calibration: np.ndarray, fitted: float, level: float, risk: float, depth: int
) -> np.ndarray:
    """Per-row thresholds (L,) of the ``spot`` rule for scores (L,) and calibration scores (K,)."""
    from collections import deque

    from anomaly.detection.thresholds import MIN_PEAKS, _gpd_tail_quantile, fit_gpd_grimshaw

    calibration = calibration[~np.isnan(calibration)]
    normal: deque[float] = deque(maxlen=max(depth, 1))
    if depth:  # the calibration's own drift-removed values start the fit, as DSPOT's init does
        start = min(depth, len(calibration) // 2)  # a calibration shorter than 2 DEPTH: a shorter mean
        drift = np.convolve(calibration, np.ones(start) / start, mode="valid")[:-1]
        base = calibration[start:] - drift
        normal.extend(calibration[-depth:])
    else:
        base = calibration
    t = float(np.quantile(base, level))
    peaks = list(base[base > t] - t)
    n = len(base)

    def cut() -> float:
        if len(peaks) < MIN_PEAKS or risk * n / len(peaks) >= 1.0:
            return fitted if not depth else fitted - float(np.mean(calibration))
        gamma, sigma = fit_gpd_grimshaw(np.asarray(peaks))
        return _gpd_tail_quantile(t, gamma, sigma, risk * n / len(peaks))

    z = cut()
    out = np.full(len(scores), np.inf)
    for i, x in enumerate(scores):
        if i and i % UPDATE_EVERY == 0:
            z = cut()
        drift = float(np.mean(normal)) if depth else 0.0
        out[i] = z + drift
        if np.isnan(x) or x - drift > z:
            continue  # flagged rows (and gaps) are kept out of the fit
        if x - drift > t:
            peaks.append(x - drift - t)
        n += 1
        if depth:
            normal.append(float(x))
    return out


def evaluate(path: Path, rule: str) -> dict[str, float]:
    """Pooled F1, precision, recall and mean average precision of one rule over a cache's series."""
    data = np.load(path)
    keys = sorted({name[:3] for name in data.files})
    kind, *args = rule.split(":")
    tp = fp = fn = 0
    precisions = []
    for key in keys:
        z = data[f"{key}_z"].astype(np.float64)
        fitted, calibration = float(data[f"{key}_t0"]), data[f"{key}_calib"]
        window = int(args[0]) if kind == "window" else WINDOW
        if kind == "follow":
            z = z / follow_scales(z, data[f"{key}_zcal"].astype(np.float64), float(args[0]), args[1:] == ["full"])
        elif kind in ("product", "rate", "spot"):
            z = ErrorLevelFollower(calibration_levels(data[f"{key}_zcal"])).feed(z)
        scores = EwmaSmoother(15).feed(Aggregator("rms").transform(z))
        if kind == "spot":
            depth = int(args[2]) if len(args) > 2 else 0
            thresholds = spot_thresholds(scores, calibration, fitted, float(args[0]), float(args[1]), depth)
        elif kind == "spread":
            thresholds = spread_thresholds(scores, calibration, fitted, float(args[0]), float(args[1]), args[2:] == ["gated"])
        else:
            thresholds = LevelFollower(fitted, histogram(calibration), window=window).feed(scores)
        if kind == "rate":
            thresholds = np.maximum(thresholds, rate_floors(scores, float(args[0])))
        start, labels = int(data[f"{key}_start"]), data[f"{key}_labels"]
        flags = (np.nan_to_num(scores, nan=-np.inf) > thresholds)[start:]
        labels, scores = labels[start:], scores[start:]
        tp += int(np.sum(flags & labels))
        fp += int(np.sum(flags & ~labels))
        fn += int(np.sum(~flags & labels))
        if labels.any() and not labels.all():
            precisions.append(average_precision(labels, scores))
    return {
        "f1": 2 * tp / max(1, 2 * tp + fp + fn),
        "precision": tp / max(1, tp + fp),
        "recall": tp / max(1, tp + fn),
        "auc_pr": float(np.mean(precisions)) if precisions else float("nan"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    fill = commands.add_parser("cache", help="fit and score every series of a dev set once")
    fill.add_argument("dataset", choices=sorted(detection.LOADERS))
    fill.add_argument("--train-rows", type=int, help="train on the last N rows of each training part")
    fill.add_argument("--seed", type=int, default=0, help="the detector's seed")
    sweep = commands.add_parser("sweep", help="rules on cached residuals")
    sweep.add_argument("sets", help="comma list of caches, e.g. smd,smd-train1000,skab,nab")
    sweep.add_argument(
        "rules",
        nargs="+",
        help="product, fixed, window:W, spread:Q:CAP[:gated], follow:CAP[:full], rate:Q, spot:LEVEL:RISK[:DEPTH]",
    )
    args = parser.parse_args(argv)
    if args.command == "cache":
        print(f"cache in {cache(args.dataset, args.train_rows, args.seed)}")
        return 0
    for name in args.sets.split(","):
        path = CACHE / f"{name}.npz"
        if not path.exists():
            parser.error(f"no cache {path}: run `python benchmarks/stream_rules.py cache` for it first")
        for rule in args.rules:
            m = evaluate(path, rule)
            print(
                f"{name:16s} {rule:22s} F1 {m['f1']:.3f} (P {m['precision']:.3f}, R {m['recall']:.3f})  AUC-PR {m['auc_pr']:.3f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
