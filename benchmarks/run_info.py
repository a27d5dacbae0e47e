"""What every benchmark report says about its run: progress lines, the load, the machine, the code measured.

Imported by the benchmark scripts, which run as ``python benchmarks/<name>.py`` (this folder is
then first on ``sys.path``).
"""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def log(message: str) -> None:
    """Progress, on stderr (stdout carries the tables)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def load() -> str:
    """The 1-minute load average, for a note beside a figure (the machines are shared)."""
    return f"load {os.getloadavg()[0]:.1f}"


def cpu_and_cores() -> tuple[str, int]:
    """The processor's model name, and the cores this process may run on (its affinity)."""
    cpu = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return cpu, usable


def code_version() -> str:
    """The checkout's commit, and the package files changed since it (figures depend on them)."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--", "anomaly"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        return "not a git checkout"
    files = [line[3:] for line in changed if line.strip()]
    return f"commit {commit}" + (f" with uncommitted changes to {', '.join(files)}" if files else "")
