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
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from precompute import nab_cases  # noqa: E402 - the harness's split, as the peers' cache uses it
from run_peers import standardise  # noqa: E402 - the peers' z-scoring by the training rows


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
    # The labels as benchmarks/detection.py's load_nab reads them (that module needs the
    # product's environment, which this one is not).
    windows = json.loads((root / "labels" / "combined_windows.json").read_text())
    rows = []
    for case in nab_cases(Path(args.datasets)):
        name = case.name
        stamps = pd.read_csv(root / "data" / name, usecols=["timestamp"], parse_dates=["timestamp"])["timestamp"]
        labels = np.zeros(len(stamps), dtype=int)
        for start, end in windows.get(name, []):
            labels |= ((stamps >= pd.Timestamp(start)) & (stamps <= pd.Timestamp(end))).to_numpy(int)
        cut = len(case.train)
        if not labels[cut:].any():
            continue
        x = np.concatenate(standardise(case.train[:, :1], case.test[:, :1]))
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
