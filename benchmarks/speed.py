"""Speed of one-pass recurrent scoring, beside the overlapping-window way, all in one run.

Usage (from the repository root):

    python benchmarks/speed.py [--quick] [--rows N] [--output results/benchmark/speed.md]

``--quick`` (about 3 minutes on 2 cores) shrinks every series and skips the two slow CLI
runs (``anomaly score`` of stage 3, the full demo training of stage 6); the full run takes
about 4 (3.3 minutes on 2026-12-07). ``--rows N`` sets the length of the end-to-end
files (stage 3; default 1,000,000, 200,000 with ``--quick``). The markdown tables are printed
row by row as each stage finishes and written to ``--output`` (rewritten after every stage, so
a run cut short still leaves what it measured). Temporary files go to the system temporary
directory and are deleted at the end; nothing is written into the repository except the
output file.

The machine is shared and noisy: every comparison is a ratio of figures measured in the same
run, each figure is the best of a few repetitions, and the 1-minute load average is noted
beside each stage. Besides wall-clock rates, the in-process stages report CPU seconds per
million timesteps (user + system time of this process), which moves less with the load.

Stages and what their figures mean
----------------------------------
1. **Forward pass.** Timesteps per second of :class:`anomaly.nn.predictor.StreamPredictor` (the
   compiled one-pass forward with carried state, blocks of 512 steps run side by side with a
   64-step burn-in, the Detector's defaults) over a long in-memory series (2M rows; 200k with
   ``--quick``) fed in chunks of 65,536 rows, for a 2x64 LSTM on D = 38 features with random
   weights (speed does not depend on the weights). The FLOPs per timestep are the multiply-adds
   of the matrix products (2 per weight: input and recurrent kernels, Dense head), about
   122.6 kFLOP; the implied GFLOP/s counts useful timesteps only (the burn-in adds 64/512 =
   12.5 % more work that is not counted). The share of time spent in the compiled call itself
   (the rest is numpy: packing blocks, converting) is noted.
2. **Overlapping-window baseline.** The same network predicting every timestep inside each of
   the T = 64 windows that contain it (stride 1), as telemanom and the keras-io tutorial do:
   ``model.predict`` on the (N, 64, D) window view of a 20k-step series, at the faster of
   batch sizes 256 and 1024 (10k steps and batch 1024 with ``--quick``), not counting the
   averaging back onto timesteps (both favour the baseline). Timesteps/s is series timesteps
   per second; the ratio is stage 1's rate over this one (target >= 30x).
3. **End to end.** read -> score -> write of a Parquet and a CSV file of the same synthetic series
   (1M rows x 38 features and a time column; ``--rows``): :func:`anomaly.data.reading.iter_series`
   (65,536-row chunks), ``Detector.stream().feed``, :meth:`anomaly.detector.Detector.result_frame`,
   :class:`anomaly.data.writing.ResultsSink` (Parquet out for Parquet in, CSV for CSV): the loop of
   ``pipelines._score_chunks`` without MLflow. The Detector is the default network (two 2x32
   LSTM members, folded into one 2x64 LSTM: stage 1's arithmetic) fitted for 1 epoch on
   a small synthetic series, saved and loaded back. Timesteps/s counts all rows (target >=
   250k/s from Parquet; best of 2, the CSV file once in the full run). The Parquet file is
   scored a second time with reading and writing in the scoring thread instead of background
   threads (:mod:`anomaly.overlap`), and the ratio of the two is reported. The breakdown table
   shows where the time goes: reading (parse, checks, gap filling), the compiled forward call,
   the rest of ``feed`` (scaling, packing blocks, normalising, EWMA), building the result
   DataFrame, and writing. Then the actual CLI,
   ``anomaly score big.parquet -o out.parquet``, in a temporary directory with a temporary
   MLflow store (model logged by ``anomaly train``): its wall time minus rows / (in-process
   rate) is the overhead (imports, model loading, compilation, MLflow run, events, plots,
   the results file logged as an artifact). Skipped with ``--quick``.
4. **Peak RSS on a long file.** A 10,000,000 x 38 float32 Parquet file (1M rows with
   ``--quick``), written in 1M-row row groups, scored by the stage-3 loop in a fresh
   subprocess; its peak resident memory (``ru_maxrss``; target < 2 GB), the memory it had
   before the first chunk (imports and model), and its rows/s.
5. **Chunk-size invariance.** The largest |score difference| between chunk sizes 1, 1000 and
   65,536 over 2,000 rows (should be < 1e-5), and whether the flags agree. Chunks of one row
   also give the per-row latency of a live feed.
6. **Training throughput.** Windows/s of ``Detector.fit`` on ``data/demo_train.csv`` with the
   demo spec (``pipelines/default.yaml``) for 2 epochs: training windows per epoch x epochs / fit
   time (set-up, tracing and calibration included), and the second epoch alone. Then the full
   demo training as a user runs it, ``anomaly train`` in a temporary directory with its own
   MLflow store (target < 60 s; skipped with ``--quick``).
7. **Start-up.** Wall time of ``anomaly --help`` and of an argument error (``anomaly score``
   of a missing file) in fresh subprocesses, best of 5 (target < 0.5 s).
8. **Detection quality, one pass vs overlapping windows, on the demo.** One Detector fitted
   on ``data/demo_train.csv`` with the demo spec (5 epochs with ``--quick``) scores
   ``data/demo_test.csv`` (a) in one pass (``Detector.score``) and (b) with overlapping windows:
   each timestep's prediction is the mean of the predictions of the T windows (stride 1) that
   contain it; the residual goes through the same steps (robust normalisation fitted on the
   held-back calibration part with the same floors, RMS aggregation, EWMA, threshold fitted by
   the same rule on the calibration part's scores and followed along the stream as one pass
   follows it, all computed with overlapping-window predictions), and the same
   first ``warmup_steps`` + 1 rows are left unscored. Point-wise precision, recall and F1,
   average precision and event recall come from :func:`anomaly.evaluation.metrics.evaluate_scores`. One
   pass counts as no worse when its point F1 and event recall are at least the overlapping
   path's and its average precision is at most 0.01 below (a tolerance for training noise);
   the notes give every difference, so the reader can judge.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Before TensorFlow or MLflow is imported anywhere (here or in the subprocesses).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from run_info import code_version, cpu_and_cores, load, log  # noqa: E402 - this folder, first on sys.path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
N_FEATURES = 38
UNITS = (64, 64)  # the reference network of stages 1 and 2: the arithmetic of the default detector
# The fitted detectors of stages 3 and 4 and the CLI's: the product's default network, two 2x32
# LSTMs side by side (units and members left at their defaults), folded into one 2x64 LSTM.
DETECTOR_UNITS = (32, 32)
DETECTOR_MEMBERS = 2
WINDOW = 64
CHUNK_ROWS = 65536
BLOCK = 512  # Detector's default
WARMUP_STEPS = 10  # Detector's default
ANOMALY_CLI = Path(sys.executable).parent / "anomaly"
# Stage 8: one pass's average precision may be this much below the overlapping path's and still
# count as "no worse" (point F1 and event recall may not be lower at all).
AP_TOLERANCE = 0.01

# Runs a command and writes its wall time, CPU time and peak RSS to the file named first, so each
# figure belongs to that one child (RUSAGE_CHILDREN of this process would be the peak of all of them).
_MEASURE = (
    "import json, resource, subprocess, sys, time\n"
    "start = time.perf_counter()\n"
    "rc = subprocess.call(sys.argv[2:])\n"
    "wall = time.perf_counter() - start\n"
    "usage = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "cpu = usage.ru_utime + usage.ru_stime\n"
    "open(sys.argv[1], 'w').write(json.dumps({'rc': rc, 'wall': wall, 'cpu': cpu, 'maxrss_kb': usage.ru_maxrss}))\n"
    "sys.exit(rc)\n"
)


# ------------------------------------------------------------------------------------------------
# The report
# ------------------------------------------------------------------------------------------------


@dataclass
class Report:
    """Rows of the main table, extra tables, and where to write them."""

    output: Path
    header: list[str]
    rows: list[tuple[str, ...]] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    _printed_head: bool = False

    COLUMNS = ("Stage", "Measure", "Result", "Target", "Met", "Notes")

    def add(self, stage: str, measure: str, result: str, target: str = "", met: bool | None = None, notes: str = "") -> None:
        mark = "" if met is None else ("yes" if met else "**NO**")
        row = (stage, measure, result, target, mark, notes)
        self.rows.append(row)
        if not self._printed_head:
            print("| " + " | ".join(self.COLUMNS) + " |")
            print("|" + "---|" * len(self.COLUMNS), flush=True)
            self._printed_head = True
        print("| " + " | ".join(row) + " |", flush=True)
        self.write()

    def table(self, title: str, text: str) -> None:
        self.extra.append(f"### {title}\n\n{text}\n")
        self.write()

    def markdown(self) -> str:
        lines = list(self.header) + [""]
        lines.append("| " + " | ".join(self.COLUMNS) + " |")
        lines.append("|" + "---|" * len(self.COLUMNS))
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines) + "\n\n" + "\n".join(self.extra)

    def write(self) -> None:
        self.output.parent.mkdir(parents=True, exist_ok=True)
        self.output.write_text(self.markdown())


def md_table(frame: pd.DataFrame, floatfmt: str = "{:.3f}") -> str:
    """A small DataFrame as a markdown table (no tabulate dependency)."""
    cols = [str(frame.index.name or "")] + [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for name, row in frame.iterrows():
        cells = [floatfmt.format(v) if isinstance(v, (float, np.floating)) else str(v) for v in row]
        lines.append("| " + " | ".join([str(name)] + cells) + " |")
    return "\n".join(lines)


def machine_header(quick: bool, argv: list[str]) -> list[str]:
    import keras
    import pyarrow
    import tensorflow as tf

    cpu, usable = cpu_and_cores()
    threads = tf.config.threading.get_intra_op_parallelism_threads()
    return [
        f"# One-pass scoring speed{' (--quick)' if quick else ''}",
        "",
        f"- Date: {dt.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- Machine: {cpu}, {os.cpu_count()} logical cores ({usable} usable), "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB RAM; "
        f"load average at start {', '.join(f'{v:.1f}' for v in os.getloadavg())} (shared machine: figures are noisy)",
        f"- Python {platform.python_version()}, tensorflow {tf.__version__} (intra-op threads {threads or 'auto'}), "
        f"keras {keras.__version__}, numpy {np.__version__}, pandas {pd.__version__}, pyarrow {pyarrow.__version__}",
        f"- Code: {code_version()}",
        f"- Command: `{' '.join(['python benchmarks/speed.py', *argv])}`",
        "- Each rate is the best of the repetitions noted; ratios compare figures from this run.",
    ]


# ------------------------------------------------------------------------------------------------
# Timing helpers
# ------------------------------------------------------------------------------------------------


def cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


@dataclass(frozen=True)
class Timing:
    wall: float
    cpu: float


def best_of(reps: int, run: Callable[[], Any]) -> tuple[Timing, Any]:
    """The fastest of ``reps`` runs (wall and CPU time of that run) and its return value."""
    best: Timing | None = None
    value = None
    for _ in range(reps):
        wall, cpu = time.perf_counter(), cpu_seconds()
        out = run()
        timing = Timing(time.perf_counter() - wall, cpu_seconds() - cpu)
        if best is None or timing.wall < best.wall:
            best, value = timing, out
    assert best is not None
    return best, value


class Phases:
    """Wall seconds spent in named phases of a loop."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start


class TimedRecurrence:
    """Stands in for an :class:`anomaly.nn.inference.Recurrence`, adding its call time to a phase."""

    def __init__(self, inner: Any, phases: Phases, name: str = "forward") -> None:
        self._inner, self._phases, self._name = inner, phases, name

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._inner, attr)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self._phases(self._name):
            return self._inner(*args, **kwargs)


def run_measured(
    command: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float | None = None
) -> tuple[dict[str, Any], str]:
    """Run a command in a fresh process: ({rc, wall, cpu, maxrss_kb}, its stdout + stderr)."""
    with tempfile.NamedTemporaryFile("r", suffix=".json", delete=False) as handle:
        stats_file = handle.name
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _MEASURE, stats_file, *command],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        stats = json.loads(Path(stats_file).read_text() or "{}")
        stats.setdefault("rc", proc.returncode)
        return stats, proc.stdout + proc.stderr
    finally:
        Path(stats_file).unlink(missing_ok=True)


def cli_env(store: Path) -> dict[str, str]:
    return {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{store / 'mlflow.db'}", "MLFLOW_DISABLE_TELEMETRY": "true"}


def rate(n: float, seconds: float) -> str:
    return f"{n / seconds / 1000:,.1f}k/s"


# ------------------------------------------------------------------------------------------------
# Data
# ------------------------------------------------------------------------------------------------


def synthetic(rows: int, seed: int, offset: int = 0, dtype: Any = np.float64) -> np.ndarray:
    """A smooth multivariate series (rows, 38): a few sines mixed into 38 features, plus noise.

    ``offset`` continues the same series (for writing a long file in pieces).
    """
    mixing = np.random.default_rng(1234).normal(size=(4, N_FEATURES))
    t = np.arange(offset, offset + rows, dtype=np.float64)[:, None]
    latent = np.concatenate(
        [np.sin(2 * np.pi * t / 48), np.cos(2 * np.pi * t / 30), np.sin(2 * np.pi * t / 300), np.cos(2 * np.pi * t / 1000)],
        axis=1,
    )
    noise = np.random.default_rng([seed, offset]).normal(scale=0.1, size=(rows, N_FEATURES))
    return (latent @ mixing + noise).astype(dtype)


def feature_names() -> list[str]:
    return [f"f{j:02d}" for j in range(N_FEATURES)]


def arrow_piece(rows: int, seed: int, offset: int, dtype: Any, decimals: int | None = None) -> Any:
    """Rows [offset, offset + rows) as an Arrow table: ``timestamp`` (1 s apart) and f00..f37."""
    import pyarrow as pa

    values = synthetic(rows, seed, offset, dtype)
    if decimals is not None:
        values = np.round(values, decimals)
    start = np.datetime64("2026-01-01T00:00:00", "s") + offset
    times = pa.array(start + np.arange(rows), type=pa.timestamp("s"))
    columns = {"timestamp": times} | {name: values[:, j] for j, name in enumerate(feature_names())}
    return pa.table(columns)


def write_parquet(path: Path, rows: int, *, seed: int, dtype: Any = np.float64, piece: int = 1 << 20) -> Path:
    """A Parquet file of the synthetic series, written piece by piece (one row group each)."""
    import pyarrow.parquet as pq

    writer = None
    try:
        for offset in range(0, rows, piece):
            table = arrow_piece(min(piece, rows - offset), seed, offset, dtype, decimals=4 if dtype == np.float64 else None)
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    return path


def write_csv(path: Path, rows: int, *, seed: int, piece: int = 1 << 18) -> Path:
    """The same series as CSV (4 decimals, times as ``2026-01-01 00:00:00``)."""
    import pyarrow.csv as pa_csv

    with open(path, "wb") as handle:
        handle.write((",".join(["timestamp", *feature_names()]) + "\n").encode())  # unquoted, as pandas writes it
        for offset in range(0, rows, piece):
            table = arrow_piece(min(piece, rows - offset), seed, offset, np.float64, decimals=4)
            pa_csv.write_csv(table, handle, write_options=pa_csv.WriteOptions(include_header=False, quoting_style="none"))
    return path


# ------------------------------------------------------------------------------------------------
# The end-to-end loop (stage 3, and stage 4's subprocess)
# ------------------------------------------------------------------------------------------------


def score_file(detector: Any, source: Path, output: Path, phases: Phases | None = None, overlap: bool = True) -> int:
    """read -> score -> write, as ``pipelines._score_chunks`` does without MLflow. Returns rows.

    ``overlap=False`` reads, scores and writes one after the other in this thread: the loop as
    it was before reading and writing moved to background threads, for a same-run comparison.
    """
    from anomaly.data.reading import iter_series
    from anomaly.data.writing import ResultsSink
    from anomaly.overlap import BackgroundWriter, Prefetch

    phases = phases or Phases()
    with phases("read"):
        stream = iter_series(
            source, columns=detector.feature_names_in_, chunk_rows=CHUNK_ROWS, columns_role="the model's feature"
        )
    scorer = detector.stream()
    predictor = scorer._predictor  # timing hook only: the compiled call, apart from the numpy around it
    predictor._recurrence = TimedRecurrence(predictor._recurrence, phases)
    sink = ResultsSink(output)
    rows = 0
    try:
        # As in the product: reading ahead and writing behind in background threads, so "read"
        # and "write" below are the time the scoring thread waited for them.
        reader = Prefetch(stream, name="anomaly-read") if overlap else contextlib.nullcontext(stream)
        writing = BackgroundWriter(sink.write, name="anomaly-write") if overlap else contextlib.nullcontext(_Inline(sink.write))
        with stream, reader as chunks, writing as writer:
            while True:
                with phases("read"):
                    chunk = next(chunks, None)
                if chunk is None:
                    break
                frame = chunk.frame
                with phases("feed"):
                    scored = scorer.feed(frame.to_numpy(dtype=np.float64))
                with phases("result frame"):
                    results = detector.result_frame(scored, frame.index)
                with phases("write"):
                    writer.submit(results)
                rows += len(frame)
            with phases("write"):
                writer.flush()
                sink.commit()
    except BaseException:
        sink.abort()
        raise
    return rows


class _Inline:
    """``BackgroundWriter``'s interface, writing in the calling thread."""

    def __init__(self, write: Callable[[Any], None]) -> None:
        self.submit = write

    def flush(self) -> None:
        pass


def warm_up(detector: Any, tail_rows: int) -> None:
    """Compile the forward pass for the shapes a file's chunks will have (a full chunk, the last one)."""
    values = synthetic(CHUNK_ROWS, seed=99)
    detector.stream().feed(values)
    if tail_rows:
        detector.stream().feed(values[:tail_rows])


def child_e2e(source: str, output: str, detector_dir: str) -> None:
    """Stage 4's subprocess: load the detector, score the file, print one JSON line."""
    from anomaly.detector import Detector

    start = time.perf_counter()
    detector = Detector.load(detector_dir)
    detector.stream()  # build the compiled pass before measuring the memory at rest
    rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    loop = time.perf_counter()
    phases = Phases()
    rows = score_file(detector, Path(source), Path(output), phases)
    end = time.perf_counter()
    print(
        json.dumps(
            {
                "rows": rows,
                "loop_seconds": end - loop,
                "seconds": end - start,
                "phases": phases.seconds,
                "maxrss_loaded_kb": rss_loaded,
                "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            }
        ),
        flush=True,
    )


# ------------------------------------------------------------------------------------------------
# Overlapping windows (stages 2 and 8)
# ------------------------------------------------------------------------------------------------


def overlapping_predictions(model: Any, scaled: np.ndarray, window: int, batch_size: int = 1024) -> np.ndarray:
    """Next-step predictions (L, D), each the mean over the T windows (stride 1) that predict it.

    Window n holds rows n .. n + T - 1 and its output k predicts row n + k + 1; row 0 has no
    prediction (NaN). Needs a gap-free series.
    """
    from anomaly.detection.windowing import make_windows, windows_to_timesteps

    scaled = np.asarray(scaled, dtype=np.float32)
    if np.isnan(scaled).any():
        raise ValueError("overlapping_predictions needs a series without gaps")
    inputs = make_windows(scaled[:-1], window)  # (L - T, T, D), a view
    outputs = model.predict(inputs, batch_size=batch_size, verbose=0)
    per_step, _ = windows_to_timesteps(outputs, len(scaled) - 1, stride=1, agg="mean")
    predictions = np.full(scaled.shape, np.nan)
    predictions[1:] = per_step
    return predictions


def flops_per_step(model: Any) -> int:
    """Multiply-add FLOPs of one timestep: 2 per weight of every kernel (input, recurrent, Dense)."""
    return int(sum(2 * w.size for layer in model.layers for w in layer.get_weights() if w.ndim == 2))


# ------------------------------------------------------------------------------------------------
# Stages
# ------------------------------------------------------------------------------------------------


@dataclass
class Context:
    quick: bool
    report: Report
    tmp: Path
    e2e_rows: int
    detector_dir: Path | None = None
    forward_rate: float | None = None
    e2e_rate: float | None = None


def stage_forward(ctx: Context, model: Any) -> None:
    from anomaly.nn.inference import Recurrence
    from anomaly.nn.predictor import StreamPredictor

    rows = 200_000 if ctx.quick else 2_000_000
    reps = 3 if ctx.quick else 2
    log(f"stage 1: one-pass forward over {rows:,} rows x {N_FEATURES}, 2x64 LSTM")
    series = synthetic(rows, seed=1, dtype=np.float32)
    recurrence = Recurrence(model, "lstm")

    def new_predictor(phases: Phases | None = None) -> StreamPredictor:
        predictor = StreamPredictor(recurrence, block=BLOCK, burn_in=WINDOW, warmup_steps=WARMUP_STEPS)
        if phases is not None:
            predictor._recurrence = TimedRecurrence(recurrence, phases)
        return predictor

    cold = time.perf_counter()
    new_predictor().feed(series[:CHUNK_ROWS])  # traces and XLA-compiles the full-chunk shape
    cold = time.perf_counter() - cold
    tail = rows % CHUNK_ROWS
    if tail:
        new_predictor().feed(series[:tail])  # and the last chunk's

    def one_pass() -> Phases:
        phases = Phases()
        predictor = new_predictor(phases)
        for i in range(0, rows, CHUNK_ROWS):
            predictor.feed(series[i : i + CHUNK_ROWS])
        return phases

    timing, phases = best_of(reps, one_pass)
    steps_per_s = rows / timing.wall
    ctx.forward_rate = steps_per_s
    flops = flops_per_step(model)
    share = phases.seconds.get("forward", 0.0) / timing.wall
    ctx.report.add(
        "1 forward",
        "one-pass timesteps/s (StreamPredictor, chunks of 65,536)",
        rate(rows, timing.wall),
        "",
        None,
        f"{rows:,} rows, best of {reps}; {getattr(recurrence, 'threads', 1)} forward thread(s); "
        f"{timing.cpu / rows * 1e6:.1f} CPU-s per 1M steps; "
        f"{share:.0%} of wall in the compiled call; first chunk incl. compile {cold:.1f} s; {load()}",
    )
    ctx.report.add(
        "1 forward",
        "FLOPs per timestep (matrix products)",
        f"{flops / 1e3:.1f} kFLOP",
        "~122 kFLOP",
        None,
        "2 x (38+64) x 256 + 2 x (64+64) x 256 + 2 x 64 x 38; gates' elementwise work not counted",
    )
    ctx.report.add(
        "1 forward",
        "implied compute rate",
        f"{steps_per_s * flops / 1e9:.1f} GFLOP/s",
        "",
        None,
        f"useful steps only; x {(BLOCK + WINDOW) / BLOCK:.3f} with the burn-in actually run",
    )


def stage_overlapping(ctx: Context, model: Any) -> None:
    from anomaly.detection.windowing import make_windows

    steps = 10_000 if ctx.quick else 20_000
    batches = (1024,) if ctx.quick else (256, 1024)
    log(f"stage 2: overlapping windows (T={WINDOW}, stride 1) over {steps:,} timesteps, model.predict")
    series = synthetic(steps, seed=2, dtype=np.float32)
    windows = make_windows(series, WINDOW)  # (N, T, D) view
    best: tuple[float, int] | None = None
    for batch in batches:
        model.predict(windows[: 2 * batch], batch_size=batch, verbose=0)  # trace
        timing, _ = best_of(2, lambda: model.predict(windows, batch_size=batch, verbose=0))
        if best is None or timing.wall < best[0]:
            best = (timing.wall, batch)
    assert best is not None
    seconds, batch = best
    overlap_rate = steps / seconds
    ctx.report.add(
        "2 overlapping",
        f"timesteps/s, each predicted in {WINDOW} windows",
        rate(steps, seconds),
        "",
        None,
        f"model.predict, batch {batch}{' (faster of 256/1024)' if len(batches) > 1 else ''}, best of 2; "
        f"{len(windows) * WINDOW / seconds / 1e6:.2f}M window-steps/s; {load()}",
    )
    assert ctx.forward_rate is not None
    ratio = ctx.forward_rate / overlap_rate
    ctx.report.add(
        "2 overlapping",
        "one-pass / overlapping (timesteps/s)",
        f"{ratio:.0f}x",
        ">= 30x",
        ratio >= 30,
        "stage 1's rate over this one",
    )


def fit_small_detector(ctx: Context) -> Any:
    """The default Detector (two 2x32 LSTMs, folded into one 2x64) on 38 synthetic features, 1 epoch,
    saved and loaded back."""
    from anomaly.detector import Detector

    frame = pd.DataFrame(synthetic(3000, seed=3), columns=feature_names())
    detector = Detector(
        window_size=WINDOW, stride=4, cell="lstm", epochs=1, batch_size=64, warmup_steps=WARMUP_STEPS, random_state=0
    )
    if (detector.units, detector.members) != (DETECTOR_UNITS, DETECTOR_MEMBERS):
        raise RuntimeError(f"the defaults changed: units {detector.units}, members {detector.members}; update speed.py")
    detector.fit(frame)
    ctx.detector_dir = detector.save(ctx.tmp / "detector")
    loaded = Detector.load(ctx.detector_dir)
    check_reference_shape(loaded.model_)
    return loaded


def check_reference_shape(model: Any) -> None:
    """Fail unless ``model`` is an LSTM with the reference's layer widths (UNITS)."""
    widths = tuple(layer.units for layer in model.layers if hasattr(layer, "units") and "lstm" in type(layer).__name__.lower())
    if widths != UNITS:
        raise RuntimeError(f"the fitted detector's LSTM layers are {widths} wide, not the reference's {UNITS}")


def stage_end_to_end(ctx: Context) -> None:
    rows = ctx.e2e_rows
    log(f"stage 3: end to end, {rows:,} rows x {N_FEATURES}; fitting the default detector (1 epoch)")
    detector = fit_small_detector(ctx)
    log("stage 3: writing the Parquet and CSV inputs")
    parquet = write_parquet(ctx.tmp / "big.parquet", rows, seed=4)
    csv = write_csv(ctx.tmp / "big.csv", rows, seed=4)
    warm_up(detector, rows % CHUNK_ROWS)
    breakdown = {}
    for name, source, out in (("Parquet", parquet, ctx.tmp / "out.parquet"), ("CSV", csv, ctx.tmp / "out.csv")):
        reps = 2 if ctx.quick or name == "Parquet" else 1
        log(f"stage 3: scoring {source.name} -> {out.name}")
        timing, phases = best_of(reps, lambda: _scored_phases(detector, source, out, rows))
        r = rows / timing.wall
        if name == "Parquet":
            ctx.e2e_rate = r
        mb = source.stat().st_size / 2**20
        ctx.report.add(
            "3 end to end",
            f"read -> score -> write timesteps/s, {name} -> {name}",
            rate(rows, timing.wall),
            ">= 250k/s" if name == "Parquet" else "",
            (r >= 250_000) if name == "Parquet" else None,
            f"{rows:,} rows, {mb:.0f} MB in, {out.stat().st_size / 2**20:.0f} MB out; "
            f"{f'best of {reps}' if reps > 1 else '1 run'}; "
            f"{timing.cpu / rows * 1e6:.1f} CPU-s per 1M rows; {load()}",
        )
        seconds = dict(phases.seconds)
        seconds["feed"] -= seconds.get("forward", 0.0)
        breakdown[name] = seconds
        if name == "Parquet":
            log("stage 3: the same, reading and writing in the scoring thread (no background threads)")
            serial, _ = best_of(reps, lambda: _scored_phases(detector, source, out, rows, overlap=False))
            ctx.report.add(
                "3 end to end",
                "background reading/writing ÷ all in one thread, Parquet",
                f"{serial.wall / timing.wall:.2f}x",
                "",
                None,
                f"serial loop {rate(rows, serial.wall)}, {serial.cpu / rows * 1e6:.1f} CPU-s per 1M rows; "
                f"{f'best of {reps}' if reps > 1 else '1 run'}; {load()}",
            )
        out.unlink(missing_ok=True)
    order = ["read", "forward", "feed", "result frame", "write"]
    labels = {
        "read": "read (parse, check, fill)",
        "forward": "forward (compiled call)",
        "feed": "rest of feed (scale, pack, normalise, EWMA)",
        "result frame": "result DataFrame",
        "write": "write",
    }
    table = pd.DataFrame(
        {f"{name} s": [seconds.get(k, 0.0) for k in order] for name, seconds in breakdown.items()},
        index=[labels[k] for k in order],
    )
    for name, seconds in breakdown.items():
        total = sum(seconds.values())
        table[f"{name} %"] = [f"{seconds.get(k, 0.0) / total:.0%}" for k in order]
        table[f"{name} rows/s alone"] = [f"{rows / seconds[k] / 1000:,.0f}k" if seconds.get(k) else "" for k in order]
    table.index.name = "phase"
    ctx.report.table(f"Stage 3: where the end-to-end time goes ({rows:,} rows, fastest repetition)", md_table(table, "{:.2f}"))
    csv.unlink(missing_ok=True)
    if ctx.quick:
        ctx.report.add("3 end to end", "CLI `anomaly score big.parquet -o out.parquet`", "skipped (--quick)", "", None, "")
    else:
        stage_cli_score(ctx, parquet, rows)
    parquet.unlink(missing_ok=True)


def _scored_phases(detector: Any, source: Path, out: Path, rows: int, overlap: bool = True) -> Phases:
    phases = Phases()
    got = score_file(detector, source, out, phases, overlap=overlap)
    if got != rows:
        raise RuntimeError(f"scored {got} rows of {source}, expected {rows}")
    return phases


def stage_cli_score(ctx: Context, parquet: Path, rows: int) -> None:
    """``anomaly train`` the default network (two 2x32 members, one 2x64 LSTM) into a temporary store,
    then time ``anomaly score``."""
    store = ctx.tmp / "cli-store"
    store.mkdir()
    env = cli_env(store)
    train_csv = store / "train.csv"
    write_csv(train_csv, 3000, seed=3)
    log("stage 3: `anomaly train` (the default network, 1 epoch) into a temporary MLflow store")
    stats, output = run_measured(
        [
            str(ANOMALY_CLI),
            "train",
            str(train_csv),
            "--window-size",
            str(WINDOW),
            "--stride",
            "4",
            "--epochs",
            "1",
            "--json",
        ],
        cwd=store,
        env=env,
        timeout=600,
    )
    if stats["rc"] != 0:
        ctx.report.add(
            "3 end to end", "CLI `anomaly score`", "failed", "", False, f"`anomaly train` exit {stats['rc']}: {output[-300:]!r}"
        )
        return
    log(f"stage 3: `anomaly score {parquet.name} -o out.parquet`")
    out = store / "out.parquet"
    stats, output = run_measured(
        [str(ANOMALY_CLI), "score", str(parquet), "-o", str(out), "--json"], cwd=store, env=env, timeout=900
    )
    if stats["rc"] != 0:
        ctx.report.add("3 end to end", "CLI `anomaly score`", "failed", "", False, f"exit {stats['rc']}: {output[-300:]!r}")
        return
    match = re.search(r"Scored \d+ rows .* in ([\d.]+)s", output)
    inside = float(match.group(1)) if match else float("nan")
    stretches = re.search(r"in (\d+) stretches", output)
    assert ctx.e2e_rate is not None
    overhead = stats["wall"] - rows / ctx.e2e_rate
    ctx.report.add(
        "3 end to end",
        f"CLI `anomaly score big.parquet -o out.parquet`, {rows:,} rows",
        f"{stats['wall']:.1f} s",
        "",
        None,
        f"{rate(rows, stats['wall'])} overall, {stats['cpu']:.0f} CPU-s; score_pipeline itself {inside:.1f} s; "
        f"overhead vs the in-process loop ~{overhead:.1f} s (imports, model load, compile, MLflow run, events, "
        f"figures of {stretches.group(1) if stretches else '?'} flagged stretches, artifact copy); "
        f"peak RSS {stats['maxrss_kb'] / 2**10:,.0f} MB; {load()}",
    )
    shutil.rmtree(store, ignore_errors=True)


def stage_long_file(ctx: Context) -> None:
    rows = 1_000_000 if ctx.quick else 10_000_000
    path = ctx.tmp / "long.parquet"
    log(f"stage 4: writing a {rows:,} x {N_FEATURES} float32 Parquet file")
    start = time.perf_counter()
    write_parquet(path, rows, seed=5, dtype=np.float32)
    log(
        f"stage 4: written ({path.stat().st_size / 2**30:.2f} GiB in {time.perf_counter() - start:.0f} s); scoring it in a subprocess"
    )
    out = ctx.tmp / "long_scores.parquet"
    assert ctx.detector_dir is not None
    try:
        stats, output = run_measured(
            [sys.executable, str(Path(__file__).resolve()), "--child-e2e", str(path), str(out), str(ctx.detector_dir)],
            timeout=1800,
        )
        out_size = out.stat().st_size / 2**30 if out.exists() else float("nan")
    finally:
        path.unlink(missing_ok=True)
        out.unlink(missing_ok=True)
    if stats["rc"] != 0:
        ctx.report.add("4 long file", "peak RSS", "failed", "< 2 GB", False, f"exit {stats['rc']}: {output[-300:]!r}")
        return
    child = json.loads(output.strip().splitlines()[-1])
    peak_mb = stats["maxrss_kb"] / 2**10
    ctx.report.add(
        "4 long file",
        f"peak RSS scoring {rows:,} x {N_FEATURES} Parquet (subprocess)",
        f"{peak_mb:,.0f} MB",
        "< 2 GB",
        peak_mb < 2048,
        f"{child['maxrss_loaded_kb'] / 2**10:,.0f} MB after imports + model load, before the first chunk; "
        f"output {out_size:.2f} GiB",
    )
    phases = child["phases"]
    total = sum(phases.values()) or 1.0
    ctx.report.add(
        "4 long file",
        "timesteps/s of that run",
        rate(rows, child["loop_seconds"]),
        "",
        None,
        f"first chunk's compile included; {rate(rows, stats['wall'])} incl. start-up ({stats['wall']:.0f} s wall, "
        f"{stats['cpu']:.0f} CPU-s); read {phases.get('read', 0) / total:.0%}, "
        f"forward {phases.get('forward', 0) / total:.0%}, write {phases.get('write', 0) / total:.0%}; {load()}",
    )


def stage_invariance(ctx: Context) -> None:
    from anomaly.detector import Detector

    assert ctx.detector_dir is not None
    rows = 2000
    log(f"stage 5: chunk sizes 1, 1000, 65536 over {rows:,} rows")
    detector = Detector.load(ctx.detector_dir)
    values = synthetic(rows, seed=6)
    values[700:705] += 3.0  # something to flag
    scores, flags, seconds = {}, {}, {}
    for size in (65536, 1000, 1):
        scorer = detector.stream()
        start = time.perf_counter()
        parts = [scorer.feed(values[i : i + size]) for i in range(0, rows, size)]
        seconds[size] = time.perf_counter() - start
        scores[size] = np.concatenate([p.scores for p in parts])
        flags[size] = np.concatenate([p.flags for p in parts])
    reference = scores[65536]
    worst = 0.0
    same_nan = True
    for size in (1000, 1):
        same_nan &= bool(np.array_equal(np.isnan(scores[size]), np.isnan(reference)))
        worst = max(worst, float(np.nanmax(np.abs(scores[size] - reference))))
    same_flags = all(np.array_equal(flags[s], flags[65536]) for s in (1000, 1))
    ctx.report.add(
        "5 invariance",
        "max |score difference|, chunks of 1 / 1000 vs 65,536",
        f"{worst:.1e}",
        "< 1e-5",
        worst < 1e-5 and same_nan,
        f"{rows:,} rows; unscored rows identical: {same_nan}; flags identical: {same_flags} ({int(flags[65536].sum())} flagged)",
    )
    ctx.report.add(
        "5 invariance",
        "live feed, one row per call",
        f"{seconds[1] / rows * 1e3:.2f} ms/row",
        "",
        None,
        f"{rows / seconds[1]:,.0f} rows/s (chunks of 1000: {rows / seconds[1000]:,.0f} rows/s); {load()}",
    )


def demo_spec() -> Any:
    from anomaly.spec import default_spec_path, load_spec

    return load_spec(default_spec_path())


def read_demo(spec: Any, path: Path, label_col: str | None = None, columns: list[str] | None = None) -> Any:
    from anomaly.data.reading import read_series

    return read_series(
        path,
        time_col=spec.data.time_col,
        label_col=label_col,
        columns=columns if columns is not None else spec.data.columns,
        max_gap=spec.data.max_gap,
    )


def stage_training(ctx: Context) -> None:
    from anomaly.detection.preprocessing import chronological_split
    from anomaly.detection.windowing import n_windows
    from anomaly.detector import Detector

    spec = demo_spec()
    epochs = 2
    params = {**spec.detector_params(), "epochs": epochs}
    frame = read_demo(spec, Path(spec.data.path)).frame
    log(f"stage 6: Detector.fit on the demo ({len(frame)} rows), {epochs} epochs, {params['units']} {params['cell']}")
    t, stride = params["window_size"], params["stride"]
    cut = max(chronological_split(len(frame), params["validation_fraction"], t + 1), t + 1)
    windows = n_windows(cut, t + 1, stride)
    epoch_seconds: list[float] = []
    start = time.perf_counter()
    Detector(**params).fit(frame, on_epoch_end=lambda epoch, logs: epoch_seconds.append(logs["seconds"]))
    seconds = time.perf_counter() - start
    ctx.report.add(
        "6 training",
        f"Detector.fit windows/s, demo spec ({'x'.join(map(str, params['units']))} {params['cell']}, "
        f"T={t}, batch {params['batch_size']})",
        f"{windows * epochs / seconds:,.0f}/s",
        "",
        None,
        f"{windows} windows/epoch x {epochs} epochs in {seconds:.1f} s (set-up, tracing, calibration included); "
        f"epoch 2 alone {windows / epoch_seconds[-1]:,.0f}/s (its validation pass included); epoch 1 {epoch_seconds[0]:.1f} s; {load()}",
    )
    if ctx.quick:
        ctx.report.add("6 training", "full demo training (`anomaly train`)", "skipped (--quick)", "< 60 s", None, "")
        return
    store = ctx.tmp / "demo-store"
    store.mkdir()
    log("stage 6: full demo training, `anomaly train` in a temporary store")
    stats, output = run_measured([str(ANOMALY_CLI), "train"], cwd=store, env=cli_env(store), timeout=900)
    match = re.search(r"after (\d+) epochs", output)
    inside = re.search(r"features \(.*\) in (\d+)s", output)
    ctx.report.add(
        "6 training",
        "full demo training, `anomaly train` wall time",
        f"{stats['wall']:.1f} s",
        "< 60 s",
        stats["rc"] == 0 and stats["wall"] < 60,
        (
            f"{match.group(1) if match else '?'} of {demo_spec().training.epochs} epochs run; train_pipeline itself "
            f"{inside.group(1) if inside else '?'} s; {stats['cpu']:.0f} CPU-s; peak RSS {stats['maxrss_kb'] / 2**10:,.0f} MB; {load()}"
        )
        if stats["rc"] == 0
        else f"exit {stats['rc']}: {output[-300:]!r}",
    )
    shutil.rmtree(store, ignore_errors=True)


def stage_startup(ctx: Context) -> None:
    log("stage 7: start-up of `anomaly --help` and of an argument error, best of 5")
    missing = ctx.tmp / "no-such-file.csv"
    for label, args, expected_rc in (
        ("`anomaly --help`", ["--help"], 0),
        ("`anomaly score missing.csv` (argument error)", ["score", str(missing)], 2),
    ):
        walls, codes = [], set()
        for _ in range(5):
            stats, _ = run_measured([str(ANOMALY_CLI), *args], cwd=ctx.tmp)
            walls.append(stats["wall"])
            codes.add(stats["rc"])
        best = min(walls)
        ok = best < 0.5 and codes == {expected_rc}
        ctx.report.add(
            "7 start-up",
            label,
            f"{best:.2f} s",
            "< 0.5 s",
            ok,
            f"best of 5 (median {np.median(walls):.2f} s); exit code {sorted(codes)}; {load()}",
        )


def stage_quality(ctx: Context) -> None:
    from anomaly.detection.preprocessing import chronological_split, constant_features, value_steps
    from anomaly.detection.scoring import Aggregator, ResidualNormaliser
    from anomaly.detection.smoothing import EwmaSmoother
    from anomaly.detection.thresholds import apply_threshold
    from anomaly.detector import Detector, row_times
    from anomaly.evaluation.metrics import evaluate_scores

    spec = demo_spec()
    params = spec.detector_params()
    if ctx.quick:
        params["epochs"] = 5
    train = read_demo(spec, Path(spec.data.path)).frame
    log(f"stage 8: fitting the demo detector ({params['epochs']} epochs max) for one pass vs overlapping windows")
    detector = Detector(**params)
    start = time.perf_counter()
    detector.fit(train)
    fit_seconds = time.perf_counter() - start
    test = read_demo(spec, DATA / "demo_test.csv", label_col="anomaly", columns=detector.feature_names_in_)
    labels = test.labels.to_numpy(dtype=bool)

    # (a) one pass, as the product scores.
    one = detector.score(test.frame)
    one_scores, one_flags = one["score"].to_numpy(), one["is_anomaly"].to_numpy(dtype=bool)

    # (b) overlapping windows: the same steps from residuals on, with its own calibration.
    window = detector.window_size
    # The network's inputs: the scaled features and, where it has them, the time of day.
    features = detector.n_features_in_
    train_scaled = detector._network_inputs(train[detector.feature_names_in_].to_numpy(dtype=np.float64), row_times(train))
    cut = max(chronological_split(len(train_scaled), detector.validation_fraction, window + 1), window + 1)
    calibration = (train_scaled - overlapping_predictions(detector.model_, train_scaled, window))[cut:, :features]
    # Fitted as the Detector fits its own: switching channels and constant features floored alike.
    values = train[detector.feature_names_in_].to_numpy(dtype=np.float64)
    stats = ResidualNormaliser.fit(
        calibration, min_scale=value_steps(values, detector.scaling_), constant=constant_features(values)
    )
    aggregator = Aggregator(detector.aggregation)
    calibration_scores = EwmaSmoother(detector.smoothing_span).feed(aggregator.transform(stats.transform(calibration)))
    thresholder = detector._threshold_config().thresholder().fit(calibration_scores)
    threshold = thresholder.threshold_
    test_scaled = detector._network_inputs(
        test.frame[detector.feature_names_in_].to_numpy(dtype=np.float64), row_times(test.frame)
    )
    z = stats.transform((test_scaled - overlapping_predictions(detector.model_, test_scaled, window))[:, :features])
    z[: detector.warmup_steps + 1] = np.nan  # the rows one pass leaves unscored
    over_scores = EwmaSmoother(detector.smoothing_span).feed(aggregator.transform(z))
    # The threshold streamed as one pass streams it (the level follower). The demo's 2,880 test
    # rows never fill scale_follow's 4,096-row window, so one pass scores them without it too.
    over_flags = apply_threshold(over_scores, thresholder.stream().feed(over_scores))

    columns = ["point_precision", "point_recall", "point_f1", "average_precision", "event_recall", "flag_rate"]
    rows = {}
    for name, scores, flags, thr in (
        ("one pass", one_scores, one_flags, detector.threshold_),
        (f"overlapping windows (T={window})", over_scores, over_flags, threshold),
    ):
        ranked = np.where(np.isnan(scores), -np.inf, scores)
        metrics = evaluate_scores(labels, ranked, flags, gap=detector.event_gap)
        rows[name] = {**{c: metrics[c] for c in columns}, "threshold": thr}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "scoring"
    ctx.report.table(
        f"Stage 8: detection quality on data/demo_test.csv ({len(labels):,} rows, {int(labels.sum())} labelled), "
        f"same network ({params['epochs']} epochs max, {len(detector.history_['loss'])} run, fitted in {fit_seconds:.0f} s)",
        md_table(table),
    )
    a, b = table.iloc[0], table.iloc[1]
    no_worse = bool(
        a["point_f1"] >= b["point_f1"]
        and a["event_recall"] >= b["event_recall"]
        and a["average_precision"] >= b["average_precision"] - AP_TOLERANCE
    )
    delta = a - b
    ctx.report.add(
        "8 quality",
        "one pass vs overlapping windows: F1 / AP / event recall",
        f"{a['point_f1']:.3f} / {a['average_precision']:.3f} / {a['event_recall']:.2f} vs "
        f"{b['point_f1']:.3f} / {b['average_precision']:.3f} / {b['event_recall']:.2f}",
        f"one pass no worse (AP within {AP_TOLERANCE})",
        no_worse,
        f"one pass minus overlapping: precision {delta['point_precision']:+.3f}, recall {delta['point_recall']:+.3f}, "
        f"F1 {delta['point_f1']:+.3f}, AP {delta['average_precision']:+.3f}, event recall {delta['event_recall']:+.2f}",
    )


# ------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller series, no full demo training (~3 min)")
    parser.add_argument(
        "--rows", type=int, default=None, help="rows of the end-to-end files of stage 3 (default 1,000,000; 200,000 with --quick)"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=ROOT / "results" / "benchmark" / "speed.md",
        help="markdown file to write (default: results/benchmark/speed.md)",
    )
    parser.add_argument("--child-e2e", nargs=3, metavar=("INPUT", "OUTPUT", "DETECTOR"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_e2e:
        child_e2e(*args.child_e2e)
        return 0
    if args.rows is not None and args.rows < CHUNK_ROWS:
        parser.error(f"--rows must be at least {CHUNK_ROWS}; got {args.rows}")
    if not ANOMALY_CLI.exists():
        parser.error(f"the `anomaly` command is not installed beside {sys.executable}")

    from anomaly.nn.model import build_model

    started = time.perf_counter()
    report = Report(output=args.output, header=machine_header(args.quick, argv))
    print("\n".join(report.header) + "\n", flush=True)
    with tempfile.TemporaryDirectory(prefix="anomaly-speed-") as tmp:
        ctx = Context(
            quick=args.quick, report=report, tmp=Path(tmp), e2e_rows=args.rows or (200_000 if args.quick else 1_000_000)
        )
        model = build_model(N_FEATURES, cell="lstm", units=UNITS)
        stage_forward(ctx, model)
        stage_overlapping(ctx, model)
        stage_end_to_end(ctx)
        stage_long_file(ctx)
        stage_invariance(ctx)
        stage_training(ctx)
        stage_startup(ctx)
        stage_quality(ctx)
    report.extra.append(f"Total benchmark time {time.perf_counter() - started:.0f} s.\n")
    report.write()
    for block in report.extra:
        print("\n" + block, flush=True)
    log(f"written {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
