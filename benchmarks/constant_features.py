"""The demo with features that never move added: how much their noise costs, with and without the rule.

    python benchmarks/constant_features.py [--columns 0,6,24]

Adds K columns of constant values (0, 1, 2, 3, 4, 0, ...) to the demo's training and test parts,
fits ``Detector()`` with the defaults (seed 0) and scores the test part, once as the product
does (a feature constant in training is measured against at least the other features' median
scale, :meth:`anomaly.detection.scoring.ResidualNormaliser.fit`) and once without that rule
(the rule as it was before 2026-12-07: each feature by its own calibration scale). Prints
point-wise precision, recall and F1 at the model's own flags, planted events found, and the
average precision of the score. The other dev sets hold no such feature but SMD, whose figures
come from ``benchmarks/detection.py smd`` (``benchmarks/DETECTION.md``, eleventh pass).
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd

from anomaly.detector import Detector
from anomaly.evaluation.metrics import average_precision, event_recall, point_metrics

DATA = Path(__file__).resolve().parent.parent / "data"


def with_constants(frame: pd.DataFrame, count: int) -> pd.DataFrame:
    """``frame`` with ``count`` constant columns ``constant0 ..`` of values 0 to 4 after it."""
    return frame.assign(**{f"constant{k}": float(k % 5) for k in range(count)})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--columns", default="0,6,24", help="comma list of how many constant columns to add")
    args = parser.parse_args(argv)
    train = pd.read_csv(DATA / "demo_train.csv", index_col="timestamp", parse_dates=True)
    test = pd.read_csv(DATA / "demo_test.csv", index_col="timestamp", parse_dates=True)
    labels = test.pop("anomaly").to_numpy().astype(bool)
    print("columns  rule     precision  recall     F1  events    AP")
    for count in (int(text) for text in args.columns.split(",")):
        for rule in ("on", "off"):
            # Off: no feature is known to be constant, so each keeps its own calibration scale.
            off = mock.patch("anomaly.detector.constant_features", lambda X: np.zeros(X.shape[1], dtype=bool))
            with off if rule == "off" else contextlib.nullcontext():
                detector = Detector().fit(with_constants(train, count))
            result = detector.score(with_constants(test, count))
            flags, scores = result["is_anomaly"].to_numpy(), result["score"].to_numpy()
            point = point_metrics(labels, flags)
            _, found = event_recall(labels, flags)
            scored = ~np.isnan(scores)
            print(
                f"{count:7d}  {rule:4s}  {point.precision:9.3f}  {point.recall:6.3f}  {point.f1:5.3f}  "
                f"{int(found.sum()):3d}/{len(found):<3d}  {average_precision(labels[scored], scores[scored]):.3f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
