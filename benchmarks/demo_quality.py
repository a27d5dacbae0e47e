"""Detection quality of a scoring run on the demo test part, against its planted labels.

Usage (after `anomaly score data/demo_test.csv --output results/demo_test_scores.csv`):

    python benchmarks/demo_quality.py results/demo_test_scores.csv

Prints point-wise precision/recall/F1 first, event recall per kind of planted anomaly, average
precision of the raw score, and — labelled as inflated — point-adjusted F1; every figure beside
trivial baselines on the same labels (random flags at the same rate, random scores, flag
everything). The threshold came from calibration data only: no test label was used to set it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score

from anomaly.evaluation.metrics import event_precision, event_recall, point_adjusted_f1, point_metrics

DATA = Path(__file__).resolve().parent.parent / "data"
_RANDOM_REPEATS = 50


def _row(name: str, labels: np.ndarray, flags: np.ndarray, scores: np.ndarray) -> dict[str, float | str]:
    m = point_metrics(labels, flags)
    return {
        "method": name,
        "precision": m.precision,
        "recall": m.recall,
        "F1": m.f1,
        "event_recall": event_recall(labels, flags)[0],
        "event_precision": event_precision(labels, flags),
        "AP(score)": average_precision_score(labels, scores),
        "PA-F1 (inflated)": point_adjusted_f1(labels, flags),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path, help="results file written by `anomaly score`")
    parser.add_argument("--labels", type=Path, default=DATA / "demo_test.csv", help="labelled test file (column 'anomaly')")
    parser.add_argument("--events", type=Path, default=DATA / "demo_test_events.csv", help="planted events (kind, start, end)")
    args = parser.parse_args(argv)

    for path in (args.results, args.labels, args.events):
        if not path.is_file():
            print(
                f"error: {path} not found (run `anomaly score data/demo_test.csv --output {args.results}` first)", file=sys.stderr
            )
            return 2
    results = pd.read_csv(args.results, index_col=0, parse_dates=True)
    truth = pd.read_csv(args.labels, index_col="timestamp", parse_dates=True)
    if not results.index.equals(truth.index):
        print(f"error: {args.results} and {args.labels} do not have the same timestamps", file=sys.stderr)
        return 2
    labels = truth["anomaly"].to_numpy().astype(bool)
    flags = results["is_anomaly"].to_numpy().astype(bool)
    scores = results["score"].fillna(results["score"].min()).to_numpy()  # unscored warm-up rows rank lowest

    rng = np.random.default_rng(0)
    random_rows = [_row("random", labels, rng.permutation(flags), rng.random(len(labels))) for _ in range(_RANDOM_REPEATS)]
    random_mean = {k: float(np.nanmean([r[k] for r in random_rows])) for k in random_rows[0] if k != "method"}
    table = pd.DataFrame(
        [
            _row("anomaly (this run)", labels, flags, scores),
            {"method": f"random flags, same rate (mean of {_RANDOM_REPEATS})", **random_mean},
            _row("flag everything", labels, np.ones_like(flags), np.ones(len(flags))),
        ]
    ).set_index("method")

    print(
        f"Demo test part: {len(labels)} rows, {labels.sum()} labelled anomalous ({labels.mean():.1%}), "
        f"{flags.sum()} flagged. Threshold set on calibration data only."
    )
    with pd.option_context("display.float_format", "{:.3f}".format, "display.width", 160):
        print(table.to_string())

    events = pd.read_csv(args.events, parse_dates=["start", "end"])
    found = [bool(results.loc[e.start : e.end, "is_anomaly"].any()) for e in events.itertuples()]
    events["found"] = found
    per_kind = events.groupby("kind")["found"].agg(["sum", "count"])
    print("\nPlanted events found (at least one flagged point inside):")
    for kind, row in per_kind.iterrows():
        print(f"  {kind:20s} {int(row['sum'])}/{int(row['count'])}")
    print(f"  {'all':20s} {sum(found)}/{len(found)} ({np.mean(found):.0%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
