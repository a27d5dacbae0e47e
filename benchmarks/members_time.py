"""Training time of the default detector with one network and with K members, in turns.

    python benchmarks/members_time.py [--members 2] [--rounds 2]

Fits ``Detector(members=1)`` and ``Detector(members=K)`` on the demo's training part, taking
turns (these machines are shared and noisy: compare the two within a round), and prints each
fit's wall seconds, its epochs and the ratio per round.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from anomaly.detector import Detector

DEMO = Path(__file__).resolve().parent.parent / "data" / "demo_train.csv"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    train = pd.read_csv(DEMO, index_col="timestamp", parse_dates=True)
    for round_ in range(1, args.rounds + 1):
        seconds = {}
        for members in (1, args.members):
            started = time.perf_counter()
            detector = Detector(members=members).fit(train)
            seconds[members] = time.perf_counter() - started
            print(
                f"round {round_}: members {members}: {seconds[members]:.1f} s, {len(detector.history_['loss'])} epochs",
                flush=True,
            )
        print(f"round {round_}: members {args.members} / members 1 = {seconds[args.members] / seconds[1]:.2f}x", flush=True)


if __name__ == "__main__":
    main()
