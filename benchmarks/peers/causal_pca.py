"""How much of TSB-AD's PCA VUS-PR on NAB comes from where it puts its scores? (issue 12, a diagnostic)

Usage (from the repository root, after ``bash benchmarks/peers/setup``; about a minute)::

    .venv-peers/bin/python benchmarks/peers/causal_pca.py [--datasets PATH]

TSB-AD's PCA on a univariate series (``run_Sub_PCA``) scores windows of the series' period
(``find_length_rank``) and puts each window's score on its *centre* row, so a row's score
already knows half a window of what comes after it. ``anomaly`` is causal: a row's score knows
only the rows up to it. NAB's labels are windows centred on each anomaly, which rewards knowing
the future. This script scores each NAB file four ways, with TSB-AD's own code and metric
(``get_metrics``' VUS-PR, the harness's window: ``find_length_rank`` of the scored part):

* ``whole, centred``: as the harness runs it (fitted on the whole series, scores at the centre);
* ``whole, causal``: the same scores moved to each window's *last* row;
* ``train, centred`` / ``train, causal``: fitted on the training part only (the first
  ``min(floor(0.15 L), 750)`` rows, as ``anomaly`` is), scoring the whole series.

Only files with labelled rows in the scored part count (as in the harness); a file whose
training part is shorter than two windows is left out of the train-only means (and named).
Prints one line per file and the four means.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

PROBATION_FRACTION, PROBATION_CAP = 0.15, 750


def _pca_class():
    import TSB_AD.models.PCA as tsb_pca

    # scikit-learn >= 1.6's check_is_fitted refuses TSB-AD's class (no __sklearn_tags__); it
    # is fitted when decision_function is called here.
    tsb_pca.check_is_fitted = lambda *args, **kwargs: None
    return tsb_pca.PCA


def to_last_row(scores: np.ndarray, window: int) -> np.ndarray:
    """Scores (L,) placed at each window's centre row, moved to its last row (first value repeated)."""
    shift = (window - 1) // 2
    return np.concatenate([np.full(shift, scores[0]), scores[:-shift]]) if shift else scores


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default=os.environ.get("ANOMALY_DATASETS", "../shared/datasets"))
    args = parser.parse_args(argv)
    root = Path(args.datasets) / "nab"
    if not root.exists():
        print(f"NAB not found under {args.datasets}: nothing to do")
        return 0
    from TSB_AD.evaluation.metrics import get_metrics
    from TSB_AD.model_wrapper import run_Sub_PCA
    from TSB_AD.utils.slidingWindows import find_length_rank

    PCA = _pca_class()
    windows = json.loads((root / "labels" / "combined_windows.json").read_text())
    rows = []
    for name in sorted(windows):
        frame = pd.read_csv(root / "data" / name, index_col="timestamp", parse_dates=True)
        labels = np.zeros(len(frame), dtype=int)
        for start, end in windows[name]:
            labels |= ((frame.index >= pd.Timestamp(start)) & (frame.index <= pd.Timestamp(end))).astype(int)
        cut = int(min(math.floor(PROBATION_FRACTION * len(frame)), PROBATION_CAP))
        if not labels[cut:].any():
            continue
        values = frame.to_numpy(np.float64)[:, :1]
        mean, std = values[:cut].mean(axis=0), values[:cut].std(axis=0)
        std[std == 0] = 1.0
        x = (values - mean) / std  # z-scored by the training rows, as benchmarks/peers/run_peers.py does
        vus_window = find_length_rank(x[cut:], rank=1)

        def vus(scores: np.ndarray) -> float:
            return float(get_metrics(scores[cut:], labels[cut:], slidingWindow=vus_window)["VUS-PR"])

        window = find_length_rank(x, rank=1)  # what run_Sub_PCA uses
        whole = run_Sub_PCA(x)
        result = {"name": name, "whole": vus(whole), "whole_causal": vus(to_last_row(whole, window))}
        if cut >= 2 * window:
            model = PCA(slidingWindow=window)
            model.fit(x[:cut])
            trained = np.asarray(model.decision_function(x), dtype=np.float64)
            result |= {"train": vus(trained), "train_causal": vus(to_last_row(trained, window))}
        rows.append(result)
        print(
            f"{name[:55]:55s} window {window:4d}  whole {result['whole']:.3f} / causal {result['whole_causal']:.3f}"
            + (
                f"  train {result['train']:.3f} / causal {result['train_causal']:.3f}"
                if "train" in result
                else "  train: too short"
            ),
            flush=True,
        )
    table = pd.DataFrame(rows)
    print(f"{len(table)} files with labelled scored rows; mean VUS-PR:")
    print(f"  fitted on the whole series: centred {table['whole'].mean():.3f}, causal {table['whole_causal'].mean():.3f}")
    trained = table.dropna(subset=["train"])
    short = ", ".join(table.loc[table["train"].isna(), "name"]) or "none"
    print(
        f"  fitted on the training part ({len(trained)} files; too short: {short}): "
        f"centred {trained['train'].mean():.3f}, causal {trained['train_causal'].mean():.3f}"
    )
    print(
        f"  the same {len(trained)} files, fitted on the whole series: centred {trained['whole'].mean():.3f}, "
        f"causal {trained['whole_causal'].mean():.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
