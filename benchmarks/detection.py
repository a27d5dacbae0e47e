"""Detection quality on the dev data sets (SMD, SKAB, NAB): the product's defaults beside the field.

Usage (from the repository root):

    python benchmarks/detection.py smd|skab|nab|all [--quick] [--datasets PATH] [--seed N]
                                                   [--peers cached|run|off] [--output DIR] [--no-mlflow]
                                                   [--train-rows N]
    python benchmarks/detection.py all --record-peers   # cached peers' figures -> benchmarks/peers/record.json

The data sets are read where they lie (``--datasets``, else ``$ANOMALY_DATASETS``, else
``../shared/datasets`` beside the repository root) and never copied; when they are absent the
command says so in one line and exits 0.

Protocols
---------
SMD
    The seven dev machines 1-2 … 1-8: train on ``<machine>_train.parquet`` (published as
    normal), score ``<machine>_test.parquet`` on its own, from a cold start, exactly as
    ``anomaly train TRAIN`` then ``anomaly score TEST`` would.
SKAB
    The 34 experiment files: train on the first 400 rows of each file, test on the rest (the
    benchmark's own protocol; the whole file is scored in one pass and the rows after 400 are
    evaluated).
NAB
    The 58 files: train on NAB's probationary period, ``min(floor(0.15 L), 750)`` rows, test on
    the rest; a row is labelled when it lies in one of ``combined_windows.json``'s windows.
``--train-rows N``
    Any of them with a short training part, as TSB-AD's multivariate files give one (their
    ``tr_N``: 500 rows of CreditCard, 564–7,174 of SMD, 714 of MSL): each series trains on the
    last N rows of its training part only (those just before its test part), and the test part
    is unchanged; a training part already shorter is kept whole.

Methods (in the same run)
-------------------------
``anomaly``
    ``anomaly.Detector()`` with the product's defaults — the settings ``anomaly train FILE``
    uses with no options (``--quick``: 5 epochs). Its own ``is_anomaly`` flags and ``score``.
``TSB-AD PCA``, ``CNN``, ``LSTMAD``, ``IForest``
    TSB-AD's own implementations with its published settings (``benchmarks/peers``), in their
    own environment, cached by input. They give scores, not flags: the threshold-free metrics
    and the best-threshold F1 are theirs; F1 at a threshold of their own is not defined.
    ``--peers cached`` (default) uses what the cache holds (``benchmarks/peers/precompute.py``
    fills it), ``run`` computes what is missing (hours on 2 cores for LSTMAD), ``off`` skips.
    The cache is git-ignored and local, so each peer's per-series figures are also kept in the
    committed ``benchmarks/peers/record.json``, keyed by a hash of the split, labels, method
    and seed: where the cache lacks a result, the record's figures for that exact case are
    used (with a line saying how many), so a fresh clone reports the peers without rerunning
    hours of TSB-AD.
``random``, ``flag-all``
    Uniform random scores flagging as many rows as ``anomaly`` flags on the same series; every
    row flagged with a constant score.

Metrics
-------
Per data set and pooled over all three: point-wise precision, recall and F1 at the method's
own flags, pooled (true/false positives summed over series); ``best_f1``: the pooled F1 when
each series gets its best threshold, chosen with its labels (a diagnostic of the scores, never
a result), and ``f1_ratio`` = F1 / best_f1 (the threshold's quality); means over series with
anomalies of TSB-AD's AUC-PR, VUS-PR and VUS-ROC (``anomaly.evaluation.metrics``, equal to TSB-AD's
``get_metrics``; window ``find_length_rank`` of the test part's first feature, as TSB-AD's
benchmark picks it); event recall; ``silent``: series with anomalies and no flag although their
best F1 is at least 0.1; wall seconds (peers: as measured when their result was computed).

Results go to ``--output`` (default ``results/benchmark/detection-<dataset>[-quick]/``:
``table.md``, ``table.csv``, ``per_series.csv``) and to one MLflow run of the experiment
``anomaly-benchmark``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

REPO = Path(__file__).resolve().parent.parent

from anomaly.detection.scoring import find_events  # noqa: E402
from anomaly.evaluation import metrics  # noqa: E402  (pure numpy: light)

sys.path.insert(0, str(Path(__file__).resolve().parent))
DEFAULT_DATASETS = REPO.parent / "shared" / "datasets"
DEFAULT_OUTPUT = REPO / "results" / "benchmark"
EXPERIMENT = "anomaly-benchmark"

SKAB_TRAIN_ROWS = 400
SKAB_FOLDERS = ("valve1", "valve2", "other")
SKAB_QUICK = ("valve1/0.csv", "valve2/0.csv", "other/3.csv", "other/10.csv")
NAB_PROBATION_FRACTION = 0.15
NAB_PROBATION_CAP = 750  # NAB: min(floor(0.15 L), 0.15 * 5000)
NAB_QUICK = (
    "artificialWithAnomaly/art_daily_jumpsup.csv",
    "realAdExchange/exchange-2_cpc_results.csv",
    "realKnownCause/ambient_temperature_system_failure.csv",
    "realTraffic/speed_7578.csv",
    "realAWSCloudwatch/ec2_cpu_utilization_825cc2.csv",
    "artificialNoAnomaly/art_daily_small_noise.csv",
)
QUICK_EPOCHS = 5
PEER_METHODS = ("PCA", "CNN", "LSTMAD", "IForest")
# The peers' per-series figures, committed: TSB-AD's detectors take hours here (LSTMAD up to 40
# minutes per SMD machine), their score cache is git-ignored, and a session's disk does not
# outlive it. A figure is used only for the very split, labels, method and seed it was computed
# on (see peer_record_key); the record says which tsb-ad version and settings produced it.
PEER_RECORD = REPO / "benchmarks" / "peers" / "record.json"
PEER_RECORD_FIELDS = (
    "rows",
    "labelled",
    "seconds",
    "error",
    "auc_pr",
    "vus_pr",
    "vus_roc",
    "best_tp",
    "best_fp",
    "best_fn",
    "series_best_f1",
)


# --------------------------------------------------------------------------- data
@dataclass(frozen=True)
class Case:
    """One labelled series and its split.

    Attributes
    ----------
    name : str
        Path of the file relative to the data set's ``data/`` folder.
    frame : DataFrame of shape (L, D)
        Numeric features, time-ordered.
    labels : ndarray of shape (L,), bool
    train_end : int
        Rows ``[0, train_end)`` are the training part, ``[train_end, L)`` are scored.
    separate_test : bool
        The test part is a file of its own (SMD): it is scored on its own, from a cold start,
        as ``anomaly score TEST_FILE`` scores it; otherwise the whole file is scored in one pass
        and the rows after ``train_end`` are evaluated.
    """

    name: str
    frame: pd.DataFrame
    labels: np.ndarray
    train_end: int
    separate_test: bool = False


def datasets_root(arg: str | None) -> Path:
    """``--datasets``, else ``$ANOMALY_DATASETS``, else ``../shared/datasets`` beside the repo."""
    return Path(arg or os.environ.get("ANOMALY_DATASETS") or DEFAULT_DATASETS).expanduser()


def _skab_sort_key(path: Path) -> tuple[int, int]:
    return SKAB_FOLDERS.index(path.parent.name), int(path.stem) if path.stem.isdigit() else 10**6


def load_skab(root: Path, quick: bool = False) -> list[Case]:
    """The SKAB experiment files under ``root/skab/data`` (see the module docstring)."""
    data = root / "skab" / "data"
    paths = sorted((p for folder in SKAB_FOLDERS for p in (data / folder).glob("*.csv")), key=_skab_sort_key)
    if quick:
        paths = [p for p in paths if f"{p.parent.name}/{p.name}" in SKAB_QUICK]
    cases = []
    for path in paths:
        frame = pd.read_csv(path, sep=";", index_col="datetime", parse_dates=True)
        labels = frame.pop("anomaly").to_numpy() > 0
        frame = frame.drop(columns=["changepoint"]).astype(np.float64)
        cases.append(Case(f"{path.parent.name}/{path.name}", frame, labels, SKAB_TRAIN_ROWS))
    return cases


def nab_probation(length: int) -> int:
    """NAB's probationary period of a file of ``length`` rows (``nab/util.py``)."""
    return int(min(math.floor(NAB_PROBATION_FRACTION * length), NAB_PROBATION_CAP))


def load_nab(root: Path, quick: bool = False) -> list[Case]:
    """The NAB files under ``root/nab/data`` with labels from ``combined_windows.json``."""
    windows = json.loads((root / "nab" / "labels" / "combined_windows.json").read_text())
    names = sorted(windows)
    if quick:
        names = [n for n in names if n in NAB_QUICK]
    cases = []
    for name in names:
        frame = pd.read_csv(root / "nab" / "data" / name, index_col="timestamp", parse_dates=True).astype(np.float64)
        stamps = frame.index
        labels = np.zeros(len(frame), dtype=bool)
        for start, end in windows[name]:
            labels |= (stamps >= pd.Timestamp(start)) & (stamps <= pd.Timestamp(end))
        cases.append(Case(name, frame, labels, nab_probation(len(frame))))
    return cases


SMD_QUICK = ("machine-1-2", "machine-1-6")


def shorten_training(case: Case, rows: int) -> Case:
    """``case`` trained on the last ``rows`` rows of its training part; the test part unchanged."""
    drop = max(0, case.train_end - rows)
    return replace(case, frame=case.frame.iloc[drop:], labels=case.labels[drop:], train_end=case.train_end - drop)


def load_smd(root: Path, quick: bool = False) -> list[Case]:
    """The SMD machines under ``root/smd``: ``<machine>_train.parquet`` is the training part
    (published as normal), ``<machine>_test.parquet`` the scored part with its ``anomaly``
    labels. Features ``f00`` … ``f37``; the synthetic timestamps give row order only."""
    folder = root / "smd"
    machines = sorted(p.name[: -len("_train.parquet")] for p in folder.glob("*_train.parquet"))
    if quick:
        machines = [m for m in machines if m in SMD_QUICK]
    cases = []
    for machine in machines:
        train = pd.read_parquet(folder / f"{machine}_train.parquet").set_index("timestamp")
        test = pd.read_parquet(folder / f"{machine}_test.parquet").set_index("timestamp")
        labels = np.concatenate([np.zeros(len(train), dtype=bool), test.pop("anomaly").to_numpy() > 0])
        frame = pd.concat([train, test[train.columns]]).astype(np.float64)
        cases.append(Case(machine, frame, labels, len(train), separate_test=True))
    return cases


LOADERS: dict[str, Callable[[Path, bool], list[Case]]] = {"skab": load_skab, "nab": load_nab, "smd": load_smd}
DATA_DIRS = {"skab": Path("skab") / "data", "nab": Path("nab") / "data", "smd": Path("smd")}


# --------------------------------------------------------------------------- methods
@dataclass
class Result:
    """One method on one series' test part.

    Attributes
    ----------
    scores : ndarray of shape (N_test,)
        Higher = more anomalous; NaN where unscored (warm-up) or when the method failed.
    flags : ndarray of shape (N_test,), bool, or None
        The method's own flags; None for methods that only score (the peers).
    seconds : float
    error : str or None
    info : dict
        For a peer: the record of its run (TSB-AD function, hps, versions).
    """

    scores: np.ndarray
    flags: np.ndarray | None
    seconds: float
    error: str | None = None
    info: dict[str, Any] = field(default_factory=dict)


def detector_params(quick: bool, seed: int) -> dict[str, Any]:
    """The Detector's arguments: its own defaults, the seed, and fewer epochs with ``--quick``."""
    return {"random_state": seed, **({"epochs": QUICK_EPOCHS} if quick else {})}


def score_detector(case: Case, params: dict[str, Any]) -> Result:
    """Fit ``anomaly.Detector(**params)`` on the training part; score the test part.

    A separate test file is scored on its own from a cold start; otherwise the whole file is
    scored in one pass (the network is causal: no row sees a later one) and the test rows kept.
    """
    from anomaly.detector import FLAG_COLUMN, SCORE_COLUMN, Detector

    start = time.perf_counter()
    detector = Detector(**params).fit(case.frame.iloc[: case.train_end])
    out = detector.score(case.frame.iloc[case.train_end :] if case.separate_test else case.frame)
    if not case.separate_test:
        out = out.iloc[case.train_end :]
    return Result(
        out[SCORE_COLUMN].to_numpy(dtype=np.float64), out[FLAG_COLUMN].to_numpy(dtype=bool), time.perf_counter() - start
    )


def score_random(n: int, flag_rate: float, seed: int) -> Result:
    scores = np.random.default_rng(seed).random(n)
    return Result(scores, scores > 1.0 - flag_rate, 0.0)


def score_flag_all(n: int) -> Result:
    return Result(np.ones(n), np.ones(n, dtype=bool), 0.0)


def peer_results(cases: Sequence[Case], mode: str, seed: int, log: Callable[[str], None]) -> dict[tuple[str, str], Result]:
    """TSB-AD's detectors on every case: from the cache only (``cached``) or computing what is
    missing (``run``); nothing with ``off`` or when ``.venv-peers`` is missing (a line says so)."""
    if mode == "off":
        return {}
    from peers import client

    reason = client.peers_unavailable()
    if reason is not None:
        log(f"skipping the TSB-AD peers: {reason}")
        return {}
    split = [
        client.PeerCase(
            c.name, c.frame.iloc[: c.train_end].to_numpy(np.float64), c.frame.iloc[c.train_end :].to_numpy(np.float64)
        )
        for c in cases
    ]
    if mode == "run":
        found = client.run_peers(split, PEER_METHODS, seed=seed, progress=log)
    else:
        info = client.peers_info(client.PEERS_PYTHON, client.DEFAULT_METHODS)
        found = {}
        for case in split:
            for method in PEER_METHODS:
                key = client.cache_key(case.train, case.test, method, seed, info)
                hit = client._load(client.DEFAULT_CACHE_DIR, key, len(case.train), len(case.test), cached=True)
                if hit is not None:
                    found[(case.name, method)] = hit
    return {
        (name, f"TSB-AD {method}"): Result(r.scores, None, r.seconds, r.error, info=dict(r.info or {}))
        for (name, method), r in found.items()
    }


def peer_record_key(case: Case, method: str, seed: int) -> str:
    """sha256 of what a peer's figures depend on: the method, the seed, the split and the labels."""
    import hashlib

    digest = hashlib.sha256(f"{method}|{seed}|{case.train_end}|{case.frame.shape}".encode())
    digest.update(np.ascontiguousarray(case.frame.to_numpy(np.float64)).tobytes())
    digest.update(np.asarray(case.labels, dtype=bool).tobytes())
    return digest.hexdigest()


def read_peer_record(path: Path = PEER_RECORD) -> dict[str, dict[str, Any]]:
    return json.loads(path.read_text()) if path.exists() else {}


def write_peer_record(record: dict[str, dict[str, Any]], path: Path = PEER_RECORD) -> None:
    """Write the record whole (temporary file, then renamed into place)."""
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(dict(sorted(record.items())), indent=1, sort_keys=True) + "\n")
    os.replace(temporary, path)


def peer_rows(
    name: str,
    cases: Sequence[Case],
    windows: dict[str, int],
    mode: str,
    seed: int,
    log: Callable[[str], None],
    record_path: Path = PEER_RECORD,
) -> list[dict[str, Any]]:
    """The peers' per-series rows: computed from their scores where the cache has them (and then
    recorded), else taken from the committed record when it holds that exact case."""
    if mode == "off":
        return []
    by_name = {case.name: case for case in cases}
    record = read_peer_record(record_path)
    rows, updated = [], False
    found = peer_results(cases, mode, seed, log)
    for (series, method), result in found.items():
        case = by_name[series]
        row = {
            "dataset": name,
            "series": series,
            "method": method,
            "vus_window": windows[series],
            **series_row(case.labels[case.train_end :], result, windows[series]),
        }
        rows.append(row)
        info = result.info or {}
        record[peer_record_key(case, method, seed)] = {
            "dataset": name,
            "series": series,
            "method": method,
            "seed": seed,
            "vus_window": windows[series],
            **{k: row[k] for k in PEER_RECORD_FIELDS if k in row and not pd.isna(row[k])},
            "tsb_ad": {k: info.get(k) for k in ("function", "hps", "versions", "protocol", "threads") if k in info},
        }
        updated = True
    recorded = 0
    for case in cases:
        for method in PEER_METHODS:
            label = f"TSB-AD {method}"
            if (case.name, label) in found:
                continue
            entry = record.get(peer_record_key(case, label, seed))
            if entry is None or entry.get("vus_window") != windows[case.name]:
                continue
            rows.append(
                {
                    "dataset": name,
                    "series": case.name,
                    "method": label,
                    "vus_window": windows[case.name],
                    **{k: entry.get(k) for k in PEER_RECORD_FIELDS},
                    "from_record": True,
                }
            )
            recorded += 1
    if recorded:
        log(f"{name}: {recorded} peer results from {record_path.name} (computed in an earlier run; no cache here)")
    if updated:
        write_peer_record(record, record_path)
    return rows


# --------------------------------------------------------------------------- metrics
def best_threshold_counts(labels: np.ndarray, scores: np.ndarray) -> dict[str, int]:
    """Confusion counts at the series' best point-wise F1 threshold (chosen with its labels)."""
    s = metrics.prepare_scores(scores)
    order = np.argsort(-s, kind="mergesort")
    ranked, hits = s[order], labels[order]
    last = np.append(np.flatnonzero(ranked[1:] != ranked[:-1]), len(ranked) - 1)
    tp = np.cumsum(hits)[last]
    fp = last + 1 - tp
    positives = int(labels.sum())
    i = int(np.argmax(2 * tp / (positives + tp + fp)))
    return {"best_tp": int(tp[i]), "best_fp": int(fp[i]), "best_fn": positives - int(tp[i])}


def series_row(labels: np.ndarray, result: Result, window: int) -> dict[str, Any]:
    """Every per-series figure of one method."""
    labels = np.asarray(labels, dtype=bool)
    row: dict[str, Any] = {"rows": len(labels), "labelled": int(labels.sum()), "seconds": result.seconds, "error": result.error}
    if result.flags is not None:
        flags = result.flags
        events = find_events(labels)
        row.update(
            tp=int(np.sum(labels & flags)),
            fp=int(np.sum(~labels & flags)),
            fn=int(np.sum(labels & ~flags)),
            flagged=int(flags.sum()),
            events=len(events),
            events_found=sum(bool(flags[a : b + 1].any()) for a, b in events),
        )
    if labels.any() and not labels.all() and result.error is None:
        v = metrics.vus(labels, result.scores, window=window)
        row.update(
            auc_pr=metrics.average_precision(labels, result.scores),
            vus_pr=v.pr,
            vus_roc=v.roc,
            **best_threshold_counts(labels, result.scores),
        )
        row["series_best_f1"] = 2 * row["best_tp"] / max(1, 2 * row["best_tp"] + row["best_fp"] + row["best_fn"])
    return row


def _f1(tp: float, fp: float, fn: float) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")


def summarise(rows: pd.DataFrame) -> dict[str, float]:
    """One method's pooled figures over the series in ``rows`` (see the module docstring)."""
    out: dict[str, float] = {"series": float(len(rows))}
    if "tp" in rows and rows.tp.notna().any():
        tp, fp, fn = rows.tp.sum(), rows.fp.sum(), rows.fn.sum()
        out.update(
            precision=tp / (tp + fp) if tp + fp else 0.0,
            recall=tp / (tp + fn) if tp + fn else float("nan"),
            f1=_f1(tp, fp, fn),
            event_recall=rows.events_found.sum() / max(1, rows.events.sum()),
        )
        silent = rows[(rows.labelled > 0) & (rows.flagged == 0) & (rows.series_best_f1 >= 0.1)]
        out["silent"] = float(len(silent))
    scored = rows.dropna(subset=["vus_pr"]) if "vus_pr" in rows else rows.iloc[:0]
    if len(scored):
        out.update(
            best_f1=_f1(scored.best_tp.sum(), scored.best_fp.sum(), scored.best_fn.sum()),
            auc_pr=scored.auc_pr.mean(),
            vus_pr=scored.vus_pr.mean(),
            vus_roc=scored.vus_roc.mean(),
        )
        if "f1" in out:
            out["f1_ratio"] = out["f1"] / out["best_f1"] if out["best_f1"] else float("nan")
    out["scored_series"] = float(len(scored))
    out["seconds"] = float(rows.seconds.sum())
    return out


# --------------------------------------------------------------------------- the run
def run_dataset(
    name: str,
    cases: Sequence[Case],
    params: dict[str, Any],
    seed: int,
    peers: str = "cached",
    log: Callable[[str], None] = print,
) -> pd.DataFrame:
    """Every method on every case of one data set: one row per (series, method).

    The peers are read after the detector has run on every case, so a cache being filled in the
    background meanwhile (``benchmarks/peers/precompute.py``) is used as far as it got.
    """
    rows = []
    windows = {}
    for i, case in enumerate(cases, 1):
        labels = case.labels[case.train_end :]
        window = metrics.find_length_rank(case.frame.iloc[case.train_end :, :1].to_numpy(np.float64), rank=1)
        det = score_detector(case, params)
        windows[case.name] = window
        results = {
            "anomaly": det,
            "random": score_random(len(labels), float(det.flags.mean()), seed + i),
            "flag-all": score_flag_all(len(labels)),
        }
        for method, result in results.items():
            rows.append(
                {
                    "dataset": name,
                    "series": case.name,
                    "method": method,
                    "vus_window": window,
                    **series_row(labels, result, window),
                }
            )
        log(
            f"[{name} {i}/{len(cases)}] {case.name}: {len(labels)} test rows, {int(labels.sum())} labelled, "
            f"anomaly flagged {int(det.flags.sum())} in {det.seconds:.1f} s"
        )
    rows.extend(peer_rows(name, cases, windows, peers, seed, log))
    return pd.DataFrame(rows)


METHOD_ORDER = ("anomaly", *(f"TSB-AD {m}" for m in PEER_METHODS), "random", "flag-all")
COLUMNS = [
    "f1",
    "precision",
    "recall",
    "best_f1",
    "f1_ratio",
    "auc_pr",
    "vus_pr",
    "vus_roc",
    "event_recall",
    "silent",
    "scored_series",
    "seconds",
]


def tables(per_series: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """A methods × metrics table per data set, and ``pooled`` over all of them."""
    groups = {name: part for name, part in per_series.groupby("dataset", sort=False)}
    if len(groups) > 1:
        groups["pooled"] = per_series
    out = {}
    for name, part in groups.items():
        table = pd.DataFrame({m: summarise(g) for m, g in part.groupby("method", sort=False)}).T
        table = table.reindex([m for m in METHOD_ORDER if m in table.index])
        out[name] = table.reindex(columns=[c for c in COLUMNS if c in table.columns])
    return out


def _markdown(table: pd.DataFrame) -> str:
    cols = list(table.columns)
    lines = ["| method | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for method, row in table.iterrows():
        cells = [
            "" if pd.isna(row[c]) else f"{row[c]:.0f}" if c in ("silent", "scored_series", "seconds") else f"{row[c]:.3f}"
            for c in cols
        ]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def log_to_mlflow(
    dataset: str,
    quick: bool,
    seed: int,
    root: Path,
    params: dict[str, Any],
    results: dict[str, pd.DataFrame],
    output: Path,
    seconds: float,
    train_rows: int | None = None,
) -> str:
    """One MLflow run holding the whole benchmark; returns its id."""
    import mlflow

    from anomaly.detector import Detector
    from anomaly.tracking.runs import ensure_store

    ensure_store()
    experiment = mlflow.get_experiment_by_name(EXPERIMENT)
    experiment_id = experiment.experiment_id if experiment else mlflow.create_experiment(EXPERIMENT)
    with mlflow.start_run(
        experiment_id=experiment_id,
        run_name=f"detection-{dataset}" + ("-quick" if quick else "") + (f"-train{train_rows}" if train_rows else ""),
    ) as run:
        detector = {**Detector().get_params(), **params}
        mlflow.log_params(
            {
                "dataset": dataset,
                "quick": quick,
                "seed": seed,
                "train_rows": train_rows or "all",
                "datasets_path": str(root),
                **{f"detector.{k}": ",".join(map(str, v)) if isinstance(v, tuple) else v for k, v in detector.items()},
            }
        )
        values = {}
        for name, table in results.items():
            for method, row in table.iterrows():
                for metric, value in row.items():
                    if not pd.isna(value):
                        values[f"{name}.{method.replace(' ', '_')}.{metric}"] = float(value)
        values["total_seconds"] = seconds
        mlflow.log_metrics(values)
        for path in sorted(output.glob("*")):
            if path.is_file():
                mlflow.log_artifact(str(path))
        return run.info.run_id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", choices=["smd", "skab", "nab", "all"], help="which data set to run")
    parser.add_argument("--quick", action="store_true", help="two or a few series per data set, 5 epochs")
    parser.add_argument(
        "--datasets", help=f"folder holding smd/, skab/ and nab/ (default: $ANOMALY_DATASETS or {DEFAULT_DATASETS})"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the detector, the peers and the random baseline")
    parser.add_argument(
        "--peers",
        choices=["cached", "run", "off"],
        default="cached",
        help="TSB-AD's detectors: from the cache only (default), computing what is missing, or none",
    )
    parser.add_argument(
        "--output", type=Path, help="folder for the tables (default: results/benchmark/detection-<dataset>[-quick])"
    )
    parser.add_argument("--no-mlflow", action="store_true", help="do not log the run to MLflow")
    parser.add_argument(
        "--train-rows", type=int, help="train each series on the last N rows of its training part only (as TSB-AD's tr_N)"
    )
    parser.add_argument(
        "--record-peers",
        action="store_true",
        help=f"only write the cached peers' figures into {PEER_RECORD.relative_to(REPO)} (no detector run)",
    )
    args = parser.parse_args(argv)

    root = datasets_root(args.datasets)
    wanted = ["smd", "skab", "nab"] if args.dataset == "all" else [args.dataset]
    present = [d for d in wanted if (root / DATA_DIRS[d]).is_dir()]
    if not present:
        print(f"skipped: no {' or '.join(str(root / DATA_DIRS[d]) for d in wanted)} (set --datasets or ANOMALY_DATASETS)")
        return 0
    for missing in sorted(set(wanted) - set(present)):
        print(f"skipping {missing}: {root / DATA_DIRS[missing]} not found")

    if args.record_peers:
        for name in present:
            cases = LOADERS[name](root, args.quick)
            windows = {
                c.name: metrics.find_length_rank(c.frame.iloc[c.train_end :, :1].to_numpy(np.float64), rank=1) for c in cases
            }
            rows = [r for r in peer_rows(name, cases, windows, "cached", args.seed, print) if not r.get("from_record")]
            print(f"{name}: {len(rows)} peer results recorded in {PEER_RECORD}", flush=True)
        return 0

    if args.train_rows is not None and args.train_rows < 1:
        parser.error(f"--train-rows should be a positive number of rows, but got {args.train_rows}")
    short = f"-train{args.train_rows}" if args.train_rows else ""
    output = args.output or DEFAULT_OUTPUT / f"detection-{args.dataset}{'-quick' if args.quick else ''}{short}"
    output.mkdir(parents=True, exist_ok=True)
    params = detector_params(args.quick, args.seed)
    started = time.perf_counter()
    parts = []
    for name in present:
        cases = LOADERS[name](root, args.quick)
        if args.train_rows:
            cases = [shorten_training(case, args.train_rows) for case in cases]
        print(
            f"{name}: {len(cases)} series from {root / DATA_DIRS[name]}{short and f', trained on at most {args.train_rows} rows'}",
            flush=True,
        )
        parts.append(run_dataset(name, cases, params, args.seed, args.peers, log=lambda m: print(m, flush=True)))
    seconds = time.perf_counter() - started
    per_series = pd.concat(parts, ignore_index=True)
    results = tables(per_series)

    report = [
        f"Detector: anomaly.Detector() defaults{' (quick: ' + str(QUICK_EPOCHS) + ' epochs)' if args.quick else ''}, "
        f"seed {args.seed}{f'; each trained on at most the last {args.train_rows} rows of its training part' if short else ''}; "
        f"total {seconds / 60:.1f} min.\n"
    ]
    for name, table in results.items():
        count = per_series.series.nunique() if name == "pooled" else per_series[per_series.dataset == name].series.nunique()
        title = f"{name.upper()}{' (quick)' if args.quick else ''}: {count} series"
        report.append(f"## {title}\n\n{_markdown(table)}")
        table.to_csv(output / f"table_{name}.csv", float_format="%.4f")
        with pd.option_context("display.float_format", "{:.3f}".format, "display.width", 250, "display.max_columns", 30):
            print(f"\n{title}\n{table.to_string()}")
    (output / "table.md").write_text("\n".join(report))
    per_series.to_csv(output / "per_series.csv", index=False, float_format="%.6g")
    print(f"\ntotal {seconds / 60:.1f} min; tables in {output}")
    if not args.no_mlflow:
        run_id = log_to_mlflow(args.dataset, args.quick, args.seed, root, params, results, output, seconds, args.train_rows)
        print(f"MLflow run {run_id} in experiment {EXPERIMENT!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
