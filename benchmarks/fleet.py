"""Fleet benchmark: training and scoring many series three ways, all measured in one run.

Usage (from the repository root):

    python benchmarks/fleet.py [--quick] [--series N] [--smd-machines K] [--per-process-jobs 1,2]
                               [--ways per-process,fleet,spark] [--fleets synthetic,smd]
                               [--output results/benchmark/fleet.md]

Two fleets, each trained and then scored by every way, one way after the other:

- **synthetic**: ``--series`` (100) short series of ``--features`` (6) features, ``--train-rows``
  (600) rows to train on and ``--score-rows`` (300) rows to score each, one row a minute. Each
  series mixes three sines of its own periods and phases into its features, with its own levels,
  scales and noise (seeded by ``--seed`` and the series' number), and its scored part carries three
  planted anomalies (a 3-row spike on one feature, a 20-row level shift of two features, a 30-row
  frozen feature), which the benchmark does not evaluate: they make the scoring do what it does on
  real data (events, attributions). Written to the system temporary directory both as one table
  with a ``machine`` column (Parquet, series after series) and as one Parquet file per series.
- **smd**: the seven SMD machines (``machine-1-2`` ... ``machine-1-8``, 38 metrics a minute, about
  23,700 rows to train on and as many to score each), read from ``$ANOMALY_DATASETS/smd`` or
  ``--datasets`` (default ``../shared/datasets`` beside the repository; the fleet is skipped with
  a note when it is absent). ``machine-1-K_train.parquet`` (``timestamp``, ``f00`` ... ``f37``) is
  trained on and ``machine-1-K_test.parquet`` (the same columns plus the operators' ``anomaly``
  labels) is scored: the label column is not a feature of the model, so scoring ignores it (with
  a note), and no way is given ``--label-col``. The one-process-per-machine way reads the
  published files where they lie; the fleet command reads one table per part (the machines'
  rows one after the other, a ``machine`` column first) written to the temporary directory. With
  ``--smd-machines K`` the first K machines are used, and with ``--smd-rows R`` the first R rows
  of each part (written to the temporary directory for every way).

The ways (``--ways``), each in a fresh temporary directory as its working directory with its own
MLflow store (``MLFLOW_TRACKING_URI=sqlite:///<that directory>/mlflow.db``), so no way pays for or
profits from another's runs:

1. **one process per series** (today's loop): ``anomaly train <series file> --json`` for every
   series, then ``anomaly score <series file> --model <its model URI> -o <series>.parquet --json``
   for every series, one process at a time. Running them two at a time (one per core) is another
   baseline: ``--per-process-jobs 1,2`` measures both (each value one way; the speed-ups are
   against the first value).
2. **the fleet command**: ``anomaly train <train table> --series-col machine --json`` and
   ``anomaly score <score table> --series-col machine --model <fleet model URI> -o scores.parquet
   --json``, with the command's own ``--jobs`` default (one worker process per core) unless
   ``--jobs`` is given here.
3. **Spark**: the same two fleet commands with ``--engine spark --spark-master local[2]``
   (``--spark-master``); measured only when ``import anomaly.spark`` and ``import pyspark``
   succeed in the benchmark's environment, else its rows say why it is not measured.

Every command runs in a fresh process as ``python -m anomaly`` from this checkout (the checkout
is put first on ``PYTHONPATH``), with the same training settings for every way of a fleet, given
as options: ``--epochs`` (3; ``--smd-epochs``, 2, for SMD), ``--units`` (16), ``--window-size``
(32) and ``--seed`` (0), all other settings the product's defaults. The defaults themselves
(2x32 LSTM, up to 30 epochs) would take hours for 100 series one process each on 2 cores; these
settings keep the per-series work small, so the figures show mostly what a fleet saves:
starting Python, importing TensorFlow and MLflow, opening the store, tracing the network.

Figures, one row per fleet, stage and way (train, score, and train + score end to end):

- **Wall**: seconds from starting the first process of the stage to the exit of the last one
  (waiting for the process to exit included; writing the inputs and checking the outputs are
  not included).
- **Series/s**, **rows/s**: series, and rows of the stage's input (training rows for train,
  scored rows for score, both for train + score), over the wall time.
- **Peak RSS**: *tree*, the largest sum of the resident set sizes of every process descended
  from the benchmark at one moment, sampled every 0.2 s from ``/proc/<pid>/stat`` (parent
  links) and ``/proc/<pid>/statm`` (resident pages); pages shared between processes (libraries)
  count once per process, and a peak shorter than 0.2 s can be missed. *largest*, the largest
  ``ru_maxrss`` that ``wait4`` reports for one of the stage's processes: the kernel's own peak of
  that process or of any descendant it waited for (e.g. a fleet's worker processes), exact but
  per process, not a sum. (``getrusage(RUSAGE_CHILDREN)`` deltas would be neither; psutil is not
  in the environment; ``/usr/bin/time -v`` reports the same number as *largest*.)
- **CPU**: user + system seconds of the stage's processes and of the descendants they waited
  for (from ``wait4``; a Spark JVM that is not waited for is not counted).
- **Speed-up**: the wall time of the first one-process-per-series way of the same fleet and
  stage over this way's, from this run.
- **Results**: whether the way did the work, checked after its stage, outside the timing: for
  train, every model exists in the way's store (the registered version of each series' model;
  for a fleet model, its ``fleet.json`` lists exactly the fleet's series); for score, every
  command exited 0 and the results hold one row per input row (per series, and the fleet table
  names every series). A way that fails shows FAILED and gets no speed-up, so it cannot look fast.
- **Notes**: the 1-minute load average when the stage ended (the machine is shared: compare
  figures within one run), and where the time went (below).

"Where the time goes" breaks each command's wall time down from its own output, read line by
line as it is written (``PYTHONUNBUFFERED=1``): *before the job*, from the start of the process to
the start of the job the command reports (its "Trained ... in Ns" / "Scored ... in Ns" line; for
train, its first "Training" line): interpreter, imports (click, pandas, MLflow), opening the store,
reaping dead runs, and for score resolving and fetching the model; *the job*, as the command
reports it; *exit*, from its final JSON line to the process's exit (interpreter and library
teardown). For the fleet command, the mean seconds per series its workers report, and the time
from the last series' line to the final line (the fleet's own work after its series: the
fleet model, its input example, figures, artifacts, merging results).

The "Targets" table takes ratios from this run (each met only when both ways' results check):
training and scoring the synthetic fleet of 100 with the fleet command at least 5x faster than
one process per series, the SMD machines trained and scored end to end at least 1.5x faster,
and Spark within 2x of the local fleet command's wall time. They hold for the sizes named; a
shrunken run (``--quick``, ``--series``, ``--smd-machines``, ``--smd-rows``) says so.

``--quick`` (about 7 minutes on 2 cores) runs 4 synthetic series, 2 SMD machines of 2,000 rows
per part, 1 epoch each. The full run takes about an hour and a half on 2 cores, most of it the
one-process-per-series baseline (about 20 s to train and 13 s to score a tiny series). The
markdown tables are printed as each stage finishes and written to ``--output`` (rewritten after
every stage, so a run cut short still leaves what it measured). Temporary files go to the system
temporary directory and are deleted at the end; nothing is written into the repository except the
output file.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Before MLflow or TensorFlow is imported anywhere (here or in the subprocesses).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from run_info import code_version, cpu_and_cores, load, log  # noqa: E402 - this folder, first on sys.path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATASETS = ROOT.parent / "shared" / "datasets"
SERIES_COL = "machine"
SAMPLE_SECONDS = 0.2
PROCESS_TIMEOUT = 1800.0  # seconds, one command
FULL = {"series": 100, "smd_machines": 7}  # the sizes the targets are stated for
QUICK = {"series": 4, "epochs": 1, "smd_machines": 2, "smd_rows": 2000, "smd_epochs": 1}


# ------------------------------------------------------------------------------------------------
# The report
# ------------------------------------------------------------------------------------------------


@dataclass
class Report:
    """The main table, the breakdown and the targets, rewritten to ``output`` after every stage."""

    output: Path
    header: list[str]
    rows: list[tuple[str, ...]] = field(default_factory=list)
    breakdown: list[tuple[str, ...]] = field(default_factory=list)
    targets: list[tuple[str, ...]] = field(default_factory=list)
    footer: list[str] = field(default_factory=list)
    _printed_head: bool = False

    COLUMNS = ("Fleet", "Stage", "Way", "Wall", "Series/s", "Rows/s", "Peak RSS", "CPU", "Speed-up", "Results", "Notes")
    BREAKDOWN = (
        "Fleet",
        "Stage",
        "Way",
        "Processes",
        "Wall per process",
        "Before the job",
        "The job (reported)",
        "Exit",
        "Per series (reported)",
        "After the last series",
    )
    TARGETS = ("Target", "Measured", "Goal", "Met", "Notes")

    def add(self, row: tuple[str, ...]) -> None:
        self.rows.append(row)
        if not self._printed_head:
            print(_md_row(self.COLUMNS))
            print("|" + "---|" * len(self.COLUMNS), flush=True)
            self._printed_head = True
        print(_md_row(row), flush=True)
        self.write()

    def markdown(self) -> str:
        parts = ["\n".join(self.header), _md_table(self.COLUMNS, self.rows)]
        if self.breakdown:
            parts += ["### Where the time goes (seconds; means per process)", _md_table(self.BREAKDOWN, self.breakdown)]
        if self.targets:
            parts += ["### Targets (ratios from this run)", _md_table(self.TARGETS, self.targets)]
        parts += self.footer
        return "\n\n".join(parts) + "\n"

    def write(self) -> None:
        self.output.parent.mkdir(parents=True, exist_ok=True)
        self.output.write_text(self.markdown())


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


def _md_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    return "\n".join([_md_row(columns), "|" + "---|" * len(columns), *(_md_row(r) for r in rows)])


def machine_header(args: argparse.Namespace, argv: list[str], package: str) -> list[str]:
    import mlflow
    import pyarrow

    cpu, usable = cpu_and_cores()
    shrunk = shrunk_sizes(args)
    return [
        f"# Fleet benchmark{' (--quick)' if args.quick else ''}",
        "",
        f"- Date: {dt.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- Machine: {cpu}, {os.cpu_count()} logical cores ({usable} usable), "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB RAM; "
        f"load average at start {', '.join(f'{v:.1f}' for v in os.getloadavg())} (shared machine: figures are noisy)",
        f"- Python {platform.python_version()}, numpy {np.__version__}, pandas {pd.__version__}, "
        f"pyarrow {pyarrow.__version__}, mlflow {mlflow.__version__}",
        f"- Code: {code_version()}; the commands import `anomaly` from {package}",
        f"- Command: `{' '.join(['python benchmarks/fleet.py', *argv])}`",
        f"- Synthetic fleet: {args.series} series x {args.features} features, {args.train_rows} rows to train on and "
        f"{args.score_rows} to score each (seed {args.seed}); training options for every way: "
        f"`{' '.join(training_options(args, args.epochs))}`",
        f"- SMD fleet: {args.smd_machines} machines, "
        f"{'all rows' if args.smd_rows is None else f'the first {args.smd_rows:,} rows of each part'}; "
        f"training options for every way: `{' '.join(training_options(args, args.smd_epochs))}`",
        f"- Ways: {', '.join(args.ways)}; one process per series {' and '.join(f'{j} at a time' for j in args.per_process_jobs)}; "
        f"fleet command {'--jobs ' + str(args.jobs) if args.jobs else 'with its default --jobs (one worker per core)'}; "
        f"Spark `--spark-master {args.spark_master}`",
        "- Peak RSS: *tree* = largest sampled sum of the RSS of all descendant processes (every "
        f"{SAMPLE_SECONDS} s, /proc), *largest* = largest `ru_maxrss` of one process (wait4). Speed-ups and ratios "
        "compare figures from this run.",
    ] + ([f"- **Shrunk run** ({shrunk}): the targets are stated for 100 synthetic series and 7 SMD machines"] if shrunk else [])


def shrunk_sizes(args: argparse.Namespace) -> str:
    parts = []
    if args.series < FULL["series"]:
        parts.append(f"{args.series} synthetic series")
    if args.smd_machines < FULL["smd_machines"]:
        parts.append(f"{args.smd_machines} SMD machines")
    if args.smd_rows is not None:
        parts.append(f"SMD cut to {args.smd_rows:,} rows per part")
    return ", ".join(parts)


# ------------------------------------------------------------------------------------------------
# Measuring processes
# ------------------------------------------------------------------------------------------------


def _descendants_rss(root: int, page: int) -> tuple[int, int]:
    """(sum of RSS in bytes, number of processes) of every process descended from ``root``."""
    children: dict[int, list[int]] = defaultdict(list)
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:  # gone meanwhile
            continue
        ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        children[ppid].append(int(entry.name))
    total = count = 0
    stack = list(children.get(root, ()))
    while stack:
        pid = stack.pop()
        stack.extend(children.get(pid, ()))
        try:
            with open(f"/proc/{pid}/statm", "rb") as handle:
                total += int(handle.read().split()[1]) * page
            count += 1
        except (OSError, IndexError, ValueError):
            continue
    return total, count


class TreeSampler:
    """Samples the summed RSS of this process's descendants in a thread; ``peak`` is the largest sum."""

    def __init__(self, interval: float = SAMPLE_SECONDS) -> None:
        self.interval = interval
        self.available = Path("/proc/self/statm").exists()
        self.peak = 0
        self.peak_processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._page = os.sysconf("SC_PAGE_SIZE") if self.available else 0

    def __enter__(self) -> TreeSampler:
        if self.available:
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self.available:
            self._thread.join()

    def _run(self) -> None:
        me = os.getpid()
        while not self._stop.wait(self.interval):
            total, count = _descendants_rss(me, self._page)
            if total > self.peak:
                self.peak, self.peak_processes = total, count


@dataclass
class Proc:
    """One finished command: exit code, wall and CPU seconds, peak RSS, its output lines with times."""

    name: str
    command: list[str]
    rc: int
    wall: float
    cpu: float
    maxrss_kb: int
    lines: list[tuple[float, str]]
    timed_out: bool = False

    @property
    def output(self) -> str:
        return "\n".join(text for _, text in self.lines)

    def result(self) -> tuple[float, dict[str, Any]] | None:
        """The final JSON line (``--json``) and when it was written."""
        for t, text in reversed(self.lines):
            if text.startswith("{"):
                with contextlib.suppress(ValueError):
                    return t, json.loads(text)
        return None

    def first(self, pattern: str) -> tuple[float, re.Match[str]] | None:
        regex = re.compile(pattern)
        for t, text in self.lines:
            if match := regex.search(text):
                return t, match
        return None

    def every(self, pattern: str) -> list[tuple[float, re.Match[str]]]:
        regex = re.compile(pattern)
        return [(t, m) for t, text in self.lines if (m := regex.search(text))]

    def failure(self) -> str:
        if self.timed_out:
            return f"{self.name}: killed after {PROCESS_TIMEOUT:.0f} s"
        tail = [text for _, text in self.lines if text.strip()][-3:]
        return f"{self.name}: exit {self.rc}: " + " / ".join(tail)[-400:]


def run_process(name: str, command: list[str], cwd: Path, env: dict[str, str], timeout: float = PROCESS_TIMEOUT) -> Proc:
    """Run a command, reading its output (stderr merged) line by line with the time each arrives.

    ``wait4`` gives this process's own CPU time and peak RSS, with those of the descendants it
    waited for (``RUSAGE_CHILDREN`` of the benchmark would mix every command run so far).
    """
    start = time.perf_counter()
    proc = subprocess.Popen(
        command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[tuple[float, str]] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append((time.perf_counter() - start, line.rstrip("\n")))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    killed = threading.Event()

    def kill() -> None:
        killed.set()
        proc.kill()

    timer = threading.Timer(timeout, kill)
    timer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    reader.join()
    assert proc.stdout is not None
    proc.stdout.close()
    return Proc(
        name=name,
        command=command,
        rc=proc.returncode,
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        maxrss_kb=usage.ru_maxrss,
        lines=lines,
        timed_out=killed.is_set(),
    )


@dataclass
class Stage:
    """One way's stage: its processes, wall time, peak RSS, and the check of what it produced."""

    processes: list[Proc]
    wall: float
    tree_peak: int  # bytes; 0 when /proc is not there
    tree_processes: int
    ok: bool = False
    check: str = ""
    models: dict[str, str] = field(default_factory=dict)  # series -> model URI (per process) or {"": fleet URI}

    @property
    def cpu(self) -> float:
        return sum(p.cpu for p in self.processes)

    @property
    def largest_kb(self) -> int:
        return max((p.maxrss_kb for p in self.processes), default=0)


def measured(commands: list[tuple[str, list[str]]], cwd: Path, env: dict[str, str], jobs: int = 1) -> Stage:
    """Run the commands, ``jobs`` at a time, with the process tree's RSS sampled throughout."""
    with TreeSampler() as sampler:
        start = time.perf_counter()
        if jobs <= 1:
            processes = [run_process(name, command, cwd, env) for name, command in commands]
        else:
            with ThreadPoolExecutor(max_workers=jobs) as pool:
                processes = list(pool.map(lambda nc: run_process(nc[0], nc[1], cwd, env), commands))
        wall = time.perf_counter() - start
    return Stage(processes, wall, sampler.peak, sampler.peak_processes)


# ------------------------------------------------------------------------------------------------
# The fleets
# ------------------------------------------------------------------------------------------------


@dataclass
class FleetData:
    """A fleet on disk, both ways: one table per part with a series column, and one file per series."""

    key: str
    title: str
    names: list[str]
    train_files: dict[str, Path]
    score_files: dict[str, Path]
    train_table: Path
    score_table: Path
    train_rows: dict[str, int]
    score_rows: dict[str, int]
    options: list[str]

    def rows(self, stage: str) -> int:
        return sum((self.train_rows if stage == "train" else self.score_rows).values())


def training_options(args: argparse.Namespace, epochs: int) -> list[str]:
    return ["--epochs", str(epochs), "--units", args.units, "--window-size", str(args.window_size), "--seed", str(args.seed)]


def synthetic_series(i: int, train_rows: int, score_rows: int, features: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Series ``i``: its training part and its scored part (with three planted anomalies)."""
    rng = np.random.default_rng([seed, i])
    n = train_rows + score_rows
    t = np.arange(n, dtype=np.float64)[:, None]
    periods = rng.uniform(20.0, 150.0, size=3)
    phases = rng.uniform(0.0, 2 * np.pi, size=3)
    latent = np.sin(2 * np.pi * t / periods + phases)
    values = latent @ rng.normal(size=(3, features)) + rng.normal(scale=0.1, size=(n, features))
    values = values * rng.uniform(0.5, 3.0, size=features) + rng.normal(scale=2.0, size=features)
    std = values[:train_rows].std(axis=0)
    s = train_rows
    for kind, fraction in (("spike", 0.2), ("shift", 0.5), ("frozen", 0.8)):
        at = s + int(fraction * score_rows) + int(rng.integers(0, max(1, score_rows // 20)))
        j = int(rng.integers(0, features))
        if kind == "spike":
            values[at : at + 3, j] += 6 * std[j]
        elif kind == "shift":
            k = (j + 1) % features
            values[at : at + 20, [j, k]] += 3 * std[[j, k]]
        else:
            values[at : at + 30, j] = values[at, j]
    frame = pd.DataFrame(values, columns=[f"f{j}" for j in range(features)])
    frame.insert(0, "timestamp", pd.date_range("2026-01-01", periods=n, freq="min"))
    return frame.iloc[:train_rows].reset_index(drop=True), frame.iloc[train_rows:].reset_index(drop=True)


def with_series_col(parts: dict[str, Any]) -> Any:
    """Arrow tables of each series, one after the other, with the series column first."""
    import pyarrow as pa

    tables = []
    for name, table in parts.items():
        tables.append(table.add_column(0, SERIES_COL, pa.array([name] * table.num_rows, type=pa.string())))
    return pa.concat_tables(tables)


def make_synthetic(args: argparse.Namespace, tmp: Path) -> FleetData:
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp / "synthetic"
    (folder / "train").mkdir(parents=True)
    (folder / "score").mkdir()
    names = [f"m{i:03d}" for i in range(args.series)]
    trains, scores = {}, {}
    for i, name in enumerate(names):
        train, score = synthetic_series(i, args.train_rows, args.score_rows, args.features, args.seed)
        trains[name] = pa.Table.from_pandas(train, preserve_index=False)
        scores[name] = pa.Table.from_pandas(score, preserve_index=False)
        pq.write_table(trains[name], folder / "train" / f"{name}.parquet")
        pq.write_table(scores[name], folder / "score" / f"{name}.parquet")
    pq.write_table(with_series_col(trains), folder / "train.parquet")
    pq.write_table(with_series_col(scores), folder / "score.parquet")
    return FleetData(
        key="synthetic",
        title=f"synthetic {args.series}x({args.train_rows}+{args.score_rows})",
        names=names,
        train_files={n: folder / "train" / f"{n}.parquet" for n in names},
        score_files={n: folder / "score" / f"{n}.parquet" for n in names},
        train_table=folder / "train.parquet",
        score_table=folder / "score.parquet",
        train_rows={n: args.train_rows for n in names},
        score_rows={n: args.score_rows for n in names},
        options=training_options(args, args.epochs),
    )


def make_smd(args: argparse.Namespace, tmp: Path, source: Path) -> FleetData:
    """The SMD machines: the published files (or their first ``--smd-rows`` rows), and one table per part."""
    import pyarrow.parquet as pq

    machines = sorted(p.name[: -len("_train.parquet")] for p in source.glob("*_train.parquet"))[: args.smd_machines]
    folder = tmp / "smd"
    folder.mkdir()
    files: dict[str, dict[str, Path]] = {"train": {}, "test": {}}
    tables: dict[str, dict[str, Any]] = {"train": {}, "test": {}}
    for machine in machines:
        for part in ("train", "test"):
            path = source / f"{machine}_{part}.parquet"
            table = pq.read_table(path)
            if args.smd_rows is not None:
                table = table.slice(0, args.smd_rows)
                path = folder / f"{machine}_{part}.parquet"
                pq.write_table(table, path)
            files[part][machine] = path
            tables[part][machine] = table
    pq.write_table(with_series_col(tables["train"]), folder / "train.parquet")
    pq.write_table(with_series_col(tables["test"]), folder / "test.parquet")
    return FleetData(
        key="smd",
        title=f"SMD {len(machines)} machines" + ("" if args.smd_rows is None else f" x {args.smd_rows:,} rows"),
        names=machines,
        train_files=files["train"],
        score_files=files["test"],
        train_table=folder / "train.parquet",
        score_table=folder / "test.parquet",
        train_rows={m: t.num_rows for m, t in tables["train"].items()},
        score_rows={m: t.num_rows for m, t in tables["test"].items()},
        options=training_options(args, args.smd_epochs),
    )


# ------------------------------------------------------------------------------------------------
# The ways
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Way:
    key: str
    label: str
    kind: str  # "per-process" | "fleet" | "spark"
    jobs: int = 1


def anomaly_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "anomaly", *args]


def child_env(store: Path) -> dict[str, str]:
    path = os.environ.get("PYTHONPATH")
    inherited = {k: v for k, v in os.environ.items() if k != "MLFLOW_REGISTRY_URI"}  # the registry is the way's store
    return {
        **inherited,
        "PYTHONPATH": str(ROOT) + (os.pathsep + path if path else ""),
        "PYTHONUNBUFFERED": "1",
        "MLFLOW_TRACKING_URI": f"sqlite:///{store / 'mlflow.db'}",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }


def fleet_extra(way: Way, args: argparse.Namespace) -> list[str]:
    if way.kind == "spark":
        return ["--engine", "spark", "--spark-master", args.spark_master]
    return ["--jobs", str(args.jobs)] if args.jobs else []


def run_train(way: Way, fleet: FleetData, store: Path, args: argparse.Namespace) -> Stage:
    env = child_env(store)
    if way.kind == "per-process":
        commands = [(n, anomaly_command("train", str(fleet.train_files[n]), *fleet.options, "--json")) for n in fleet.names]
        stage = measured(commands, store, env, way.jobs)
        for proc in stage.processes:
            found = proc.result()
            if proc.rc == 0 and found and found[1].get("model_uri"):
                stage.models[proc.name] = found[1]["model_uri"]
    else:
        command = anomaly_command(
            "train", str(fleet.train_table), "--series-col", SERIES_COL, *fleet.options, *fleet_extra(way, args), "--json"
        )
        stage = measured([("fleet", command)], store, env)
        found = stage.processes[0].result()
        if stage.processes[0].rc == 0 and found and found[1].get("model_uri"):
            stage.models[""] = found[1]["model_uri"]
    check_models(stage, way, fleet, store)
    return stage


def run_score(way: Way, fleet: FleetData, store: Path, models: dict[str, str], args: argparse.Namespace) -> Stage:
    env = child_env(store)
    out = store / "scores"
    out.mkdir(exist_ok=True)
    if way.kind == "per-process":
        commands = [
            (
                n,
                anomaly_command(
                    "score", str(fleet.score_files[n]), "--model", models[n], "-o", str(out / f"{n}.parquet"), "--json"
                ),
            )
            for n in fleet.names
            if n in models
        ]
        stage = measured(commands, store, env, way.jobs)
    else:
        command = anomaly_command(
            "score",
            str(fleet.score_table),
            "--series-col",
            SERIES_COL,
            "--model",
            models[""],
            "-o",
            str(out / "scores.parquet"),
            *fleet_extra(way, args),
            "--json",
        )
        stage = measured([("fleet", command)], store, env)
    check_scores(stage, way, fleet, out)
    return stage


# ------------------------------------------------------------------------------------------------
# Checks: did the way produce what it should (outside the timing)
# ------------------------------------------------------------------------------------------------


def _failed_processes(stage: Stage) -> list[str]:
    return [p.failure() for p in stage.processes if p.rc != 0]


def check_models(stage: Stage, way: Way, fleet: FleetData, store: Path) -> None:
    import mlflow

    uri = f"sqlite:///{store / 'mlflow.db'}"
    failed = _failed_processes(stage)
    if failed:
        stage.ok, stage.check = False, f"**FAILED**: {len(failed)} command(s) failed; first: {failed[0]}"
        return
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    if way.kind == "per-process":
        found, errors = 0, []
        for name in fleet.names:
            model = stage.models.get(name, "")
            match = re.fullmatch(r"models:/(.+)/(\d+)", model)
            try:
                if match and client.get_model_version(match[1], match[2]).status == "READY":
                    found += 1
                else:
                    errors.append(f"{name}: {model or 'no model URI'}")
            except Exception as err:  # noqa: BLE001 - any failure means the model is not there
                errors.append(f"{name}: {type(err).__name__}: {str(err)[:200]}")
        stage.ok = found == len(fleet.names)
        stage.check = ("ok" if stage.ok else "**FAILED**") + f": {found}/{len(fleet.names)} models in the store"
        if errors:
            stage.check += f"; first missing: {errors[0]}"
        return
    model = stage.models.get("")
    match = re.fullmatch(r"models:/(.+)/(\d+)", model or "")
    if not match:
        stage.ok, stage.check = False, f"**FAILED**: no registered model URI in the command's JSON line ({model!r})"
        return
    try:  # the registered version's files, read where the store keeps them (no global MLflow state touched)
        location = client.get_model_version_download_uri(match[1], match[2])
        local = Path(location.removeprefix("file://"))
        state = json.loads(next(local.rglob("fleet.json")).read_text())
    except Exception as err:  # noqa: BLE001 - any failure means the model is not there
        stage.ok, stage.check = False, f"**FAILED**: {model} not readable: {type(err).__name__}: {str(err)[:200]}"
        return
    series = set(state.get("series", {}))
    stage.ok = series == set(fleet.names)
    stage.check = ("ok" if stage.ok else "**FAILED**") + f": fleet model with {len(series)}/{len(fleet.names)} series"


def _parquet_rows(path: Path, column: str | None = None) -> tuple[int, dict[str, int]]:
    """Rows of a Parquet file (or folder of parts), and rows per value of ``column``."""
    import pyarrow.dataset as ds

    data = ds.dataset(str(path), format="parquet")
    if column is None:
        return data.count_rows(), {}
    counts = data.to_table(columns=[column]).column(column).value_counts()
    return int(sum(c.as_py() for c in counts.field("counts"))), {
        str(v.as_py()): int(c.as_py()) for v, c in zip(counts.field("values"), counts.field("counts"))
    }


def check_scores(stage: Stage, way: Way, fleet: FleetData, out: Path) -> None:
    expected = fleet.rows("score")
    failed = _failed_processes(stage)
    if failed:
        stage.ok, stage.check = False, f"**FAILED**: {len(failed)} command(s) failed; first: {failed[0]}"
        return
    try:
        if way.kind == "per-process":
            per = {n: _parquet_rows(out / f"{n}.parquet")[0] if (out / f"{n}.parquet").exists() else 0 for n in fleet.names}
        else:
            _, per = _parquet_rows(out / "scores.parquet", SERIES_COL)
    except Exception as err:  # noqa: BLE001 - an unreadable output is a failed way
        stage.ok, stage.check = False, f"**FAILED**: results not readable: {type(err).__name__}: {str(err)[:200]}"
        return
    rows = sum(per.values())
    wrong = [n for n in fleet.names if per.get(n, 0) != fleet.score_rows[n]]
    stage.ok = rows == expected and not wrong
    stage.check = ("ok" if stage.ok else "**FAILED**") + f": {rows:,}/{expected:,} result rows, {len(per)} series"
    if wrong:
        stage.check += f"; wrong row counts for {len(wrong)} series, e.g. {wrong[0]}"


# ------------------------------------------------------------------------------------------------
# Rows of the report
# ------------------------------------------------------------------------------------------------


def _mb(n_bytes: float) -> str:
    return f"{n_bytes / 2**20:,.0f} MB"


def stage_row(
    fleet: FleetData,
    stage_name: str,
    way: Way,
    wall: float,
    rows: int,
    stage: Stage | None,
    base: float | None,
    is_base: bool,
    ok: bool,
    check: str,
    notes: str,
) -> tuple[str, ...]:
    n = len(fleet.names)
    if stage is not None:
        tree = _mb(stage.tree_peak) + f" tree ({stage.tree_processes} proc)" if stage.tree_peak else "n/a tree"
        rss = f"{tree}, {_mb(stage.largest_kb * 1024)} largest"
        cpu = f"{stage.cpu:,.0f} s"
    else:
        rss = cpu = ""
    speed = "1.0x (baseline)" if is_base else (f"{base / wall:.1f}x" if base and ok else "—")
    return (
        fleet.title,
        stage_name,
        way.label,
        f"{wall:,.1f} s",
        f"{n / wall:.2f}",
        f"{rows / wall:,.0f}",
        rss,
        cpu,
        speed,
        check,
        notes,
    )


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def _fmt(value: float) -> str:
    return "—" if value != value else f"{value:.1f}"  # NaN -> dash


def breakdown_row(fleet: FleetData, stage_name: str, way: Way, stage: Stage) -> tuple[str, ...]:
    """Where one stage's time went, from the commands' own lines (see the module docstring)."""
    before, job, exits, per_series, after = [], [], [], [], []
    for proc in stage.processes:
        result = proc.result()
        report = proc.first(r"^(?:Trained|Scored) .* in ([\d.]+)s")
        started = proc.first(r"^Training ")
        if result is None or report is None:
            continue
        reported = float(report[1][1])
        job.append(reported)
        before.append(started[0] if started else report[0] - reported)
        exits.append(proc.wall - result[0])
        if way.kind == "fleet":
            series = proc.every(r"^\s+\[\d+\] \S+ .* (\d+(?:\.\d+)?)s$")
            per_series += [float(m[1]) for _, m in series]
            if series:
                after.append(report[0] - series[-1][0])
    if way.kind == "fleet":
        per = f"{_fmt(_mean(per_series))} (sum {sum(per_series):,.1f})" if per_series else "—"
    else:
        per = "= the job" if way.kind == "per-process" else "—"
    return (
        fleet.title,
        stage_name,
        way.label,
        str(len(stage.processes)),
        _fmt(_mean([p.wall for p in stage.processes])),
        _fmt(_mean(before)),
        _fmt(_mean(job)),
        _fmt(_mean(exits)),
        per,
        _fmt(_mean(after)) if after else "—",
    )


# ------------------------------------------------------------------------------------------------


@dataclass
class Measured:
    """Per fleet, per way: the train and score stages (None: not measured), and why not."""

    stages: dict[tuple[str, str, str], Stage] = field(default_factory=dict)  # (fleet, way, stage)
    skipped: dict[tuple[str, str], str] = field(default_factory=dict)  # (fleet, way) -> reason


def spark_missing(store: Path) -> str | None:
    """Why the Spark way cannot run here, or None.

    ``anomaly.spark`` must come from the same package folder as ``anomaly``: an editable install
    of another checkout can supply a module this checkout lacks, which is not this code.
    """
    probe = (
        "import importlib.util, os, anomaly\n"
        "here = os.path.dirname(anomaly.__file__)\n"
        "spec = importlib.util.find_spec('anomaly.spark')\n"
        "where = os.path.dirname(spec.origin) if spec and spec.origin else None\n"
        "print('missing' if where is None else 'elsewhere ' + spec.origin if where != here else\n"
        "      'ok' if importlib.util.find_spec('pyspark') else 'nopyspark')\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], env=child_env(store), capture_output=True, text=True, cwd=store)
    answer = proc.stdout.strip()
    if answer == "ok":
        return None
    if answer.startswith("elsewhere"):
        return f"not measured: anomaly.spark missing (this checkout has none; {answer.split(' ', 1)[1]} is another checkout's)"
    if answer == "nopyspark":
        return "not measured: pyspark not installed"
    return "not measured: anomaly.spark missing"


def run_fleet(
    fleet: FleetData,
    ways: list[Way],
    args: argparse.Namespace,
    tmp: Path,
    report: Report,
    found: Measured,
    spark_reason: str | None,
) -> None:
    base: dict[str, float] = {}
    for way in ways:
        reason = spark_reason if way.kind == "spark" else None
        if reason:
            found.skipped[(fleet.key, way.key)] = reason
            for stage_name in ("train", "score"):
                report.add((fleet.title, stage_name, way.label, "", "", "", "", "", "—", reason, ""))
            continue
        store = tmp / f"{fleet.key}-{way.key}"
        store.mkdir()
        log(f"{fleet.title}: {way.label}: train")
        train = run_train(way, fleet, store, args)
        found.stages[(fleet.key, way.key, "train")] = train
        stages = {"train": train}
        if train.ok:
            log(f"{fleet.title}: {way.label}: score")
            stages["score"] = found.stages[(fleet.key, way.key, "score")] = run_score(way, fleet, store, train.models, args)
        for stage_name, stage in stages.items():
            is_base = way.kind == "per-process" and stage_name not in base and stage.ok
            if is_base:
                base[stage_name] = stage.wall
            report.breakdown.append(breakdown_row(fleet, stage_name, way, stage))
            report.add(
                stage_row(
                    fleet,
                    stage_name,
                    way,
                    stage.wall,
                    fleet.rows(stage_name),
                    stage,
                    base.get(stage_name),
                    is_base,
                    stage.ok,
                    stage.check,
                    f"{load()}; {way_notes(stage, way)}",
                )
            )
        if "score" not in stages:
            report.add((fleet.title, "score", way.label, "", "", "", "", "", "—", "not run: training failed", load()))
            shutil.rmtree(store, ignore_errors=True)
            continue
        wall = train.wall + stages["score"].wall
        ok = train.ok and stages["score"].ok
        is_base = way.kind == "per-process" and "e2e" not in base and ok
        if is_base:
            base["e2e"] = wall
        report.add(
            stage_row(
                fleet,
                "train + score",
                way,
                wall,
                fleet.rows("train") + fleet.rows("score"),
                None,
                base.get("e2e"),
                is_base,
                ok,
                "ok" if ok else "**FAILED**",
                "",
            )
        )
        shutil.rmtree(store, ignore_errors=True)


def way_notes(stage: Stage, way: Way) -> str:
    if way.kind == "per-process":
        walls = [p.wall for p in stage.processes]
        return (
            f"{len(walls)} processes, {np.mean(walls):.1f} s each (min {min(walls):.1f}, max {max(walls):.1f})" if walls else ""
        )
    return f"command wall {stage.processes[0].wall:.1f} s"


def ratio_row(target: str, goal: str, ratio: float | None, met: bool | None, notes: str) -> tuple[str, ...]:
    mark = "" if met is None else ("yes" if met else "**NO**")
    return (target, "not measured" if ratio is None else f"{ratio:.2f}x", goal, mark, notes)


def targets(found: Measured, ways: list[Way], report: Report, args: argparse.Namespace) -> None:
    """The targets table from this run's stages (rewritten as stages finish)."""
    per = next((w for w in ways if w.kind == "per-process"), None)
    shrunk = shrunk_sizes(args)
    rows = []

    def walls(fleet: str, way: Way | None, stages: Sequence[str]) -> float | None:
        if way is None:
            return None
        got = [found.stages.get((fleet, way.key, s)) for s in stages]
        if any(g is None or not g.ok for g in got):
            return None
        return sum(g.wall for g in got if g is not None)

    def speedup(fleet: str, stages: Sequence[str], label: str, goal: float) -> None:
        fast, slow = walls(fleet, Way("fleet", "", "fleet"), stages), walls(fleet, per, stages)
        if fast is None or slow is None:
            rows.append(ratio_row(label, f">= {goal}x", None, None, "a way was not run or did not check"))
            return
        rows.append(
            ratio_row(
                label,
                f">= {goal}x",
                slow / fast,
                slow / fast >= goal,
                f"{slow:.1f} s vs {fast:.1f} s" + (f"; shrunk run ({shrunk})" if shrunk else ""),
            )
        )

    speedup("synthetic", ["train"], "synthetic fleet: train, fleet command vs one process per series", 5)
    speedup("synthetic", ["score"], "synthetic fleet: score, fleet command vs one process per series", 5)
    speedup("smd", ["train", "score"], "SMD: train + score end to end, fleet command vs one process per machine", 1.5)
    for fleet, stages, label in (
        ("synthetic", ["train"], "synthetic: train"),
        ("synthetic", ["score"], "synthetic: score"),
        ("smd", ["train", "score"], "SMD: train + score"),
    ):
        fast, spark = walls(fleet, Way("fleet", "", "fleet"), stages), walls(fleet, Way("spark", "", "spark"), stages)
        skipped = found.skipped.get((fleet, "spark"))
        if fast is None or spark is None:
            rows.append(
                ratio_row(
                    f"{label}, Spark {args.spark_master} / fleet command wall",
                    "<= 2x",
                    None,
                    None,
                    skipped or "a way was not run or did not check",
                )
            )
        else:
            rows.append(
                ratio_row(
                    f"{label}, Spark {args.spark_master} / fleet command wall",
                    "<= 2x",
                    spark / fast,
                    spark / fast <= 2,
                    f"{spark:.1f} s vs {fast:.1f} s",
                )
            )
    report.targets = rows
    report.write()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="4 series, 2 SMD machines of 2,000 rows, 1 epoch (~7 min)")
    parser.add_argument("--series", type=int, default=None, help="synthetic series (default 100; 4 with --quick)")
    parser.add_argument("--train-rows", type=int, default=600, help="training rows per synthetic series (default 600)")
    parser.add_argument("--score-rows", type=int, default=300, help="scored rows per synthetic series (default 300)")
    parser.add_argument("--features", type=int, default=6, help="features of the synthetic series (default 6)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs, synthetic fleet (default 3; 1 with --quick)")
    parser.add_argument("--units", default="16", help="--units of every training (default 16)")
    parser.add_argument("--window-size", type=int, default=32, help="--window-size of every training (default 32)")
    parser.add_argument("--seed", type=int, default=0, help="data and training seed (default 0)")
    parser.add_argument("--smd-machines", type=int, default=None, help="SMD machines, the first K (default 7; 2 with --quick)")
    parser.add_argument("--smd-rows", type=int, default=None, help="first rows of each SMD part (default all; 2000 with --quick)")
    parser.add_argument("--smd-epochs", type=int, default=None, help="epochs, SMD (default 2; 1 with --quick)")
    parser.add_argument("--datasets", default=None, help="folder holding smd/ (default $ANOMALY_DATASETS or ../shared/datasets)")
    parser.add_argument("--ways", default="per-process,fleet,spark", help="comma-separated: per-process, fleet, spark")
    parser.add_argument("--fleets", default="synthetic,smd", help="comma-separated: synthetic, smd")
    parser.add_argument(
        "--per-process-jobs", default="1", help="one-process-per-series processes at a time, e.g. 1,2 (each value one way)"
    )
    parser.add_argument("--jobs", type=int, default=None, help="--jobs of the fleet command (default: the command's own)")
    parser.add_argument("--spark-master", default="local[2]", help="--spark-master of the Spark way (default local[2])")
    parser.add_argument(
        "--output",
        type=Path,
        default=ROOT / "results" / "benchmark" / "fleet.md",
        help="markdown file to write (default: results/benchmark/fleet.md)",
    )
    args = parser.parse_args(argv)
    defaults = {"series": 100, "epochs": 3, "smd_machines": 7, "smd_epochs": 2}
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, QUICK[name] if args.quick else value)
    if args.smd_rows is None and args.quick:
        args.smd_rows = QUICK["smd_rows"]
    args.ways = [w.strip() for w in args.ways.split(",") if w.strip()]
    args.fleets = [f.strip() for f in args.fleets.split(",") if f.strip()]
    try:
        args.per_process_jobs = [int(j) for j in args.per_process_jobs.split(",")]
    except ValueError:
        parser.error(f"--per-process-jobs must be comma-separated integers; got {args.per_process_jobs!r}")
    if bad := (set(args.ways) - {"per-process", "fleet", "spark"}) | (set(args.fleets) - {"synthetic", "smd"}):
        parser.error(f"unknown way or fleet: {', '.join(sorted(bad))}")
    if args.series < 1 or args.smd_machines < 1 or min(args.per_process_jobs) < 1 or args.score_rows < 100:
        parser.error("--series, --smd-machines and --per-process-jobs must be >= 1, --score-rows >= 100")
    if args.train_rows < 4 * args.window_size:
        parser.error(f"--train-rows must be at least 4 x --window-size ({4 * args.window_size})")

    ways: list[Way] = []
    if "per-process" in args.ways:
        for jobs in args.per_process_jobs:
            at = "one at a time" if jobs == 1 else f"{jobs} at a time"
            ways.append(Way(f"per-process-{jobs}", f"one process per series, {at}", "per-process", jobs))
    if "fleet" in args.ways:
        ways.append(Way("fleet", f"fleet command ({'--jobs ' + str(args.jobs) if args.jobs else 'default --jobs'})", "fleet"))
    if "spark" in args.ways:
        ways.append(Way("spark", f"fleet command, Spark {args.spark_master}", "spark"))

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="anomaly-fleet-bench-") as tmp_name:
        tmp = Path(tmp_name)
        probe = tmp / "probe"
        probe.mkdir()
        package = subprocess.run(
            [sys.executable, "-c", "import anomaly, os; print(os.path.dirname(anomaly.__file__))"],
            env=child_env(probe),
            capture_output=True,
            text=True,
            cwd=probe,
        ).stdout.strip()
        report = Report(output=args.output, header=machine_header(args, argv, package or "?"))
        print("\n".join(report.header) + "\n", flush=True)
        spark_reason = spark_missing(probe) if "spark" in args.ways else None
        found = Measured()
        fleets: list[Callable[[], FleetData | str]] = []
        if "synthetic" in args.fleets:
            fleets.append(lambda: make_synthetic(args, tmp))
        if "smd" in args.fleets:
            smd = Path(args.datasets or os.environ.get("ANOMALY_DATASETS") or DEFAULT_DATASETS).expanduser() / "smd"
            fleets.append(
                lambda: (
                    make_smd(args, tmp, smd)
                    if any(smd.glob("*_train.parquet"))
                    else f"SMD: not measured: no *_train.parquet under {smd}"
                )
            )
        for make in fleets:
            log("writing the fleet's files")
            fleet = make()
            if isinstance(fleet, str):
                report.footer.append(f"- {fleet}")
                report.write()
                log(fleet)
                continue
            run_fleet(fleet, ways, args, tmp, report, found, spark_reason)
            targets(found, ways, report, args)
    report.footer.append(f"Total benchmark time {time.perf_counter() - started:.0f} s.")
    report.write()
    for title, columns, rows in (
        ("Where the time goes", Report.BREAKDOWN, report.breakdown),
        ("Targets", Report.TARGETS, report.targets),
    ):
        print(f"\n### {title}\n\n{_md_table(columns, rows)}", flush=True)
    print("\n" + "\n".join(report.footer), flush=True)
    log(f"written {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
