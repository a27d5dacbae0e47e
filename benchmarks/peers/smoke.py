"""By-hand check of the peers: a tiny synthetic job through the client, AUC-PR per method.

Usage (from the repository root, in the product's environment)::

    .venv/bin/python benchmarks/peers/smoke.py [--cache-dir DIR] [--seed N]

Two series of 2,000 rows and 5 features (noisy sinusoids, different periods and phases);
the first 1,000 rows are the training part, and one spike (+6 standard deviations on two
features over 5 rows) is planted in each test part. Prints, per series and method, the
AUC-PR of the test scores against the spike's rows (sklearn's ``average_precision_score``;
a random score gets the anomaly share, 0.005) and the wall seconds. The default cache folder
is a fresh temporary one, so the methods really run; this is not part of the test suite
(CI has no ``.venv-peers``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from client import DEFAULT_METHODS, PeerCase, peers_unavailable, run_peers  # noqa: E402

ROWS, FEATURES, TRAIN_ROWS, SPIKE_ROWS = 2000, 5, 1000, 5


def synthetic(seed: int) -> tuple[list[PeerCase], dict[str, np.ndarray]]:
    """The two cases and, per case, the test part's labels (N_test,) bool."""
    rng = np.random.default_rng(seed)
    cases, labels = [], {}
    t = np.arange(ROWS)[:, None]
    for k, period in enumerate((50.0, 80.0)):
        phase = rng.uniform(0, 2 * np.pi, FEATURES)
        values = np.sin(2 * np.pi * t / period + phase) + 0.1 * rng.standard_normal((ROWS, FEATURES))
        start = TRAIN_ROWS + int(rng.integers(200, 800))
        values[start : start + SPIKE_ROWS, :2] += 6.0 * values[:TRAIN_ROWS, :2].std(axis=0)
        label = np.zeros(ROWS, dtype=bool)
        label[start : start + SPIKE_ROWS] = True
        name = f"synthetic-{k}"
        cases.append(PeerCase(name, values[:TRAIN_ROWS], values[TRAIN_ROWS:]))
        labels[name] = label[TRAIN_ROWS:]
    return cases, labels


def main(argv: list[str] | None = None) -> int:
    from sklearn.metrics import average_precision_score

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", type=Path, default=None, help="default: a fresh temporary folder")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    reason = peers_unavailable()
    if reason is not None:
        print(reason)
        return 0
    cases, labels = synthetic(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        cache_dir = args.cache_dir or Path(tmp)
        start = time.perf_counter()
        results = run_peers(cases, DEFAULT_METHODS, seed=args.seed, cache_dir=cache_dir)
        total = time.perf_counter() - start
    print("| series | method | AUC-PR | seconds | error |")
    print("|---|---|---|---|---|")
    for (name, method), result in results.items():
        auc = float("nan") if result.error else average_precision_score(labels[name], result.scores)
        print(f"| {name} | {method} | {auc:.3f} | {result.seconds:.1f} | {result.error or ''} |")
    print(f"\nwhole call (job, subprocess start-up, {len(results)} tasks): {total:.1f} s wall")
    return 0


if __name__ == "__main__":
    sys.exit(main())
