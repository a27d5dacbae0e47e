"""The compiled forward pass alone: timesteps per wall second and per CPU second, 1 vs N threads.

    python benchmarks/forward_threads.py [--rounds 3] [--batch 128] [--length 576]

Beside the forward pass it measures, in the same run, what this machine's cores reach on one
large float32 matrix product (numpy's BLAS, 2048 × 2048 × 2048, best of 3, one thread and all
threads): the practical peak the forward pass's GFLOP/s should be read against. To see where a
core's time goes, profile it (Linux ``perf``)::

    perf record -F 999 -g -o /tmp/forward.perf .venv/bin/python benchmarks/forward_threads.py --rounds 5
    perf report -i /tmp/forward.perf --no-children -g none --sort dso,symbol

On a shared machine wall-clock rates move with other jobs; the rate per CPU second (process
time) shows what one core achieves whatever the load, and the ratio of CPU to wall time shows
how many cores the pass actually got. The network is the issue's reference: LSTM 2×64 on 38
features (random weights: speed does not depend on them). One call runs ``batch`` independent
stretches of ``length`` steps (the scorer's default: 128 blocks of 512 steps plus 64 of burn-in).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def sgemm_gflops(threads: int, size: int = 2048, rounds: int = 3) -> float:
    """GFLOP/s of numpy's float32 matrix product of two size × size matrices on ``threads`` threads."""
    from threadpoolctl import threadpool_limits

    a = np.random.default_rng(0).random((size, size), dtype=np.float32)
    best = float("inf")
    with threadpool_limits(limits=threads):
        a @ a
        for _ in range(rounds):
            start = time.perf_counter()
            a @ a
            best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--length", type=int, default=576)
    args = parser.parse_args()

    from anomaly.nn.inference import Recurrence
    from anomaly.nn.model import build_model

    recurrence = Recurrence(build_model(38, cell="lstm", units=(64, 64)))
    cores = len(os.sched_getaffinity(0))
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(args.batch, args.length, 38)).astype(np.float32)
    reset = np.zeros(inputs.shape[:2], dtype=bool)
    active = np.ones(inputs.shape[:2], dtype=bool)
    state = recurrence.zero_state(args.batch)
    steps = inputs.shape[0] * inputs.shape[1]
    best: dict[int, tuple[float, float]] = {}
    for _ in range(args.rounds):
        for threads in sorted({1, cores}):
            recurrence.threads = threads
            recurrence(inputs, reset, state, active)  # compile / warm up this split
            cpu, wall = time.process_time(), time.perf_counter()
            recurrence(inputs, reset, state, active)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            old = best.get(threads, (0.0, 0.0))
            best[threads] = (max(old[0], steps / wall), max(old[1], steps / max(cpu, 1e-9)))
    print(
        f"load average {os.getloadavg()[0]:.1f}, {cores} cores; batch {args.batch} x {args.length} steps; best of {args.rounds}"
    )
    print("| threads | timesteps/s (wall) | timesteps per CPU second | GFLOP/s per core |")
    print("|---|---|---|---|")
    for threads, (per_wall, per_cpu) in sorted(best.items()):
        print(f"| {threads} | {per_wall:,.0f} | {per_cpu:,.0f} | {per_cpu * 122.6e3 / 1e9:.1f} |")
    one, every = sgemm_gflops(1), sgemm_gflops(cores)
    print(
        f"\nlarge float32 matrix product (numpy BLAS, 2048^3), the practical peak: {one:.1f} GFLOP/s on 1 thread, "
        f"{every:.1f} on {cores}; the forward pass reaches {max(b[1] for b in best.values()) * 122.6e3 / 1e9 / one:.0%} "
        f"of the one-thread figure per CPU second"
    )


if __name__ == "__main__":
    main()
