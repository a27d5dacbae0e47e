"""Speed of this checkout beside an earlier commit, on the same machine, in alternating rounds.

    python benchmarks/versus_commit.py REV [--rounds 3] [--rows 1000000]

Checks ``REV`` out into a temporary git worktree and times, in fresh subprocesses that import
one package or the other (``PYTHONPATH``) from the same environment, taking turns so that a
change of load hits both: the compiled forward pass alone (``StreamPredictor``, LSTM 2×64 on 38
features, chunks of 65,536 rows), ``Detector.score`` of the same number of rows (a 2×64
detector fitted for one epoch in the same process; the checkout's own defaults otherwise, and
here also with ``threshold_follow=False``), each the best of 3 repetitions inside its
subprocess, and ``Detector().fit`` on the demo's training part (``data/demo_train.csv``, the
checkout's defaults; one fit, its seconds). The
package moved in the redesign of issue 13; both layouts are handled. Prints one line per
measurement; the worktree is removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Runs in the subprocess: one measurement, one JSON line.
CHILD = r"""
import json, sys, time
import numpy as np
kind, rows, follow = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
try:
    from anomaly.nn.inference import Recurrence
    from anomaly.nn.model import build_model
    from anomaly.nn.predictor import StreamPredictor
except ImportError:  # before the redesign
    from anomaly.inference import Recurrence
    from anomaly.model import build_model
    from anomaly.streaming import StreamPredictor
from anomaly.detector import Detector
import pandas as pd

rng = np.random.default_rng(1)
chunk = 65536
values = rng.standard_normal((rows, 38))
best = cpu = float("inf")
if kind == "forward":
    series = values.astype(np.float32)
    recurrence = Recurrence(build_model(38, cell="lstm", units=(64, 64)), "lstm")
    new = lambda: StreamPredictor(recurrence, block=512, burn_in=64, warmup_steps=10)
    new().feed(series[:chunk]), new().feed(series[: rows % chunk or chunk])  # compile both shapes
    for _ in range(3):
        predictor, t, c = new(), time.perf_counter(), time.process_time()
        for i in range(0, rows, chunk):
            predictor.feed(series[i : i + chunk])
        best, cpu = min(best, time.perf_counter() - t), min(cpu, time.process_time() - c)
elif kind == "fit":
    train = pd.read_csv("data/demo_train.csv", index_col="timestamp", parse_dates=True)
    t, c = time.perf_counter(), time.process_time()
    Detector().fit(train)
    best, cpu = time.perf_counter() - t, time.process_time() - c
else:
    columns = [f"f{i}" for i in range(38)]
    settings = dict(window_size=64, stride=4, cell="lstm", units=(64, 64), epochs=1, random_state=0)
    if "members" in Detector().get_params():  # one 2x64 network, not two side by side (a 2x128 one)
        settings["members"] = 1
    if not follow:
        if "threshold_follow" not in Detector().get_params():  # before issue 12: nothing to switch off
            print(json.dumps(None))
            sys.exit(0)
        settings["threshold_follow"] = False
    detector = Detector(**settings).fit(pd.DataFrame(rng.standard_normal((4000, 38)), columns=columns))
    frame = pd.DataFrame(values, columns=columns)
    detector.score(frame.iloc[:chunk])
    for _ in range(3):
        t, c = time.perf_counter(), time.process_time()
        detector.score(frame)
        best, cpu = min(best, time.perf_counter() - t), min(cpu, time.process_time() - c)
print(json.dumps({"seconds": best, "cpu": cpu}))
"""


def measure(package_root: Path, kind: str, rows: int, follow: bool) -> dict[str, float] | None:
    """One measurement in a fresh interpreter importing ``anomaly`` from ``package_root``
    (None: that checkout has no such setting)."""
    env = {**os.environ, "PYTHONPATH": str(package_root), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, kind, str(rows), "1" if follow else "0"],
        cwd=package_root,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rev", help="the earlier commit (any git revision)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="anomaly-versus-") as tmp:
        other = Path(tmp) / "tree"
        added = subprocess.run(
            ["git", "worktree", "add", "--detach", "-q", str(other), args.rev], cwd=ROOT, capture_output=True, text=True
        )
        if added.returncode != 0:
            print(f"versus_commit: cannot check out {args.rev!r}: {added.stderr.strip().splitlines()[-1]}", file=sys.stderr)
            return 2
        try:
            cases = [("forward", True), ("score", True), ("score", False), ("fit", True)]
            for round_ in range(1, args.rounds + 1):
                for kind, follow in cases:
                    for name, root in ((args.rev, other), (f"{head} (this checkout)", ROOT)):
                        m = measure(root, kind, args.rows, follow)
                        if m is None:
                            continue
                        what = {
                            "forward": "forward pass",
                            "fit": "Detector().fit, demo",
                            "score": "Detector.score, defaults" if follow else "Detector.score, no follower",
                        }[kind]
                        rate = "" if kind == "fit" else f"{args.rows / m['seconds'] / 1e3:6.0f}k rows/s"
                        print(
                            f"round {round_}  {what:30s} {name:24s} {rate:14s}  "
                            f"{m['seconds']:.2f} s, {m['cpu']:.2f} CPU-s  load {os.getloadavg()[0]:.1f}",
                            flush=True,
                        )
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(other)], cwd=ROOT, check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
