"""TSB-AD's detectors for the benchmark harness, run in their own environment, cached on disk.

Runs in the product's environment (numpy only). TSB-AD needs numpy < 2, so its detectors live
in ``.venv-peers`` (``bash benchmarks/peers/setup``); :func:`run_peers` writes a job, runs
``benchmarks/peers/run_peers.py`` there in a subprocess, and reads the scores back. What is
run, and how exactly it follows TSB-AD's own benchmark, is in ``run_peers.py``'s docstring.

Usage::

    from benchmarks.peers.client import PeerCase, peers_unavailable, run_peers

    reason = peers_unavailable()
    if reason is None:
        results = run_peers([PeerCase(name, train, test), ...])   # {(name, method): PeerResult}

Cache
-----
One result per (series data, method, seed): ``<cache_dir>/<key>.npz`` (``scores`` (N_test,),
``train_scores`` (N_train,)) and ``<cache_dir>/<key>.json`` (name, method, TSB-AD function,
hps, seconds, error, shapes, seed, threads, versions, protocol). ``key`` is the sha256 of
the method, TSB-AD's function and hyper-parameters for it, the seed, the tsb-ad version,
``run_peers.PROTOCOL`` (what the script does around TSB-AD), and the float64 C-order bytes
and shape of ``train`` and of ``test`` (:func:`cache_key`). The series name is not part of
it: the same arrays under another name hit the same entry. A result is written as soon as
its task finishes, so an interrupted run keeps what it did. Errors TSB-AD raised are cached
too (``retry_errors=True`` runs them again); a task the subprocess never finished is not.
``<cache_dir>/logs/`` keeps each run's stderr (TSB-AD's own prints).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
PEERS_PYTHON = REPO_ROOT / ".venv-peers" / "bin" / "python"
RUN_PEERS = Path(__file__).resolve().with_name("run_peers.py")
DEFAULT_METHODS: tuple[str, ...] = ("PCA", "CNN", "LSTMAD", "IForest")
DEFAULT_CACHE_DIR = Path("results/benchmark/peers-cache")


class PeersUnavailable(RuntimeError):
    """``.venv-peers`` is missing or broken; the message is one line saying what to do."""


@dataclass(frozen=True)
class PeerCase:
    """One series split as the harness splits it.

    Attributes
    ----------
    name : str
    train : ndarray of shape (N_train, D)
        The training rows, in file column order.
    test : ndarray of shape (N_test, D)
        The remaining (scored) rows, same columns.
    """

    name: str
    train: np.ndarray
    test: np.ndarray


@dataclass
class PeerResult:
    """One TSB-AD detector on one case.

    Attributes
    ----------
    scores : ndarray of shape (N_test,)
        Higher = more anomalous; all NaN when ``error`` is set.
    seconds : float
        Wall seconds of TSB-AD's ``run_*`` call (fit and score), as measured when the result
        was computed (also when it is read from the cache); NaN when it did not finish.
    error : str or None
        ``"<Type>: <message>"`` when the detector failed.
    train_scores : ndarray of shape (N_train,)
        The same pass's scores of the training rows (all NaN on error): in-sample for PCA and
        IForest (fitted on the whole series) and for the first 80 % of the training rows of
        CNN and LSTMAD, whose last 20 % only steer early stopping.
    cached : bool
        Read from the cache rather than computed in this call.
    info : dict
        The result's JSON record (function, hps, versions, threads, sliding_window, ...).
    """

    scores: np.ndarray
    seconds: float
    error: str | None
    train_scores: np.ndarray = field(default_factory=lambda: np.empty(0))
    cached: bool = False
    info: dict[str, Any] = field(default_factory=dict)


def peers_unavailable(python: Path = PEERS_PYTHON) -> str | None:
    """None when TSB-AD's environment answers; else one line saying why not and what to do."""
    if not Path(python).exists():
        return f"TSB-AD peers unavailable: {python} not found; run `bash benchmarks/peers/setup`"
    try:
        peers_info(python)
    except PeersUnavailable as exc:
        return str(exc)
    return None


@functools.cache
def peers_info(python: Path = PEERS_PYTHON, methods: tuple[str, ...] = DEFAULT_METHODS) -> dict[str, Any]:
    """``run_peers.py --info``: versions, protocol, and per method TSB-AD's function and hps
    for ``"multi"`` (D > 1) and ``"uni"`` (D = 1) series. Raises :class:`PeersUnavailable`."""
    if not Path(python).exists():
        raise PeersUnavailable(f"TSB-AD peers unavailable: {python} not found; run `bash benchmarks/peers/setup`")
    proc = subprocess.run(
        [str(python), str(RUN_PEERS), "--info", "--methods", ",".join(methods), "--threads", "1"],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise PeersUnavailable(
            f"TSB-AD peers unavailable: {python} {RUN_PEERS.name} --info failed ({last}); run `bash benchmarks/peers/setup`"
        )
    return json.loads(proc.stdout)


def _as_float64(values: np.ndarray) -> np.ndarray:
    array = np.ascontiguousarray(values, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"expected a 2-D (rows, features) array, got shape {array.shape}")
    return array


def cache_key(train: np.ndarray, test: np.ndarray, method: str, seed: int, info: dict[str, Any]) -> str:
    """The cache key of one (split, method, seed): a sha256 hex digest.

    Parameters
    ----------
    train : ndarray of shape (N_train, D)
    test : ndarray of shape (N_test, D)
    method : str
    seed : int
    info : dict
        :func:`peers_info` (tsb-ad version, protocol, function and hps per method).
    """
    train, test = _as_float64(train), _as_float64(test)
    setting = info["methods"][method]["uni" if train.shape[1] == 1 else "multi"]
    header = {
        "method": method,
        "function": setting["function"],
        "hps": setting["hps"],
        "seed": int(seed),
        "tsb_ad": info["tsb_ad"],
        "protocol": info["protocol"],
    }
    digest = hashlib.sha256(json.dumps(header, sort_keys=True).encode())
    for part, array in (("train", train), ("test", test)):
        digest.update(f"|{part}:{array.dtype.str}:{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _load(cache_dir: Path, key: str, n_train: int, n_test: int, cached: bool) -> PeerResult | None:
    meta_path, npz_path = cache_dir / f"{key}.json", cache_dir / f"{key}.npz"
    if not (meta_path.exists() and npz_path.exists()):
        return None
    meta = json.loads(meta_path.read_text())
    error = meta.get("error")
    if error is None:
        with np.load(npz_path) as stored:
            scores, train_scores = stored["scores"], stored["train_scores"]
        if scores.shape != (n_test,) or train_scores.shape != (n_train,):
            return None  # not ours (a truncated or foreign entry): recompute
    else:
        scores, train_scores = np.full(n_test, np.nan), np.full(n_train, np.nan)
    seconds = meta.get("seconds")
    return PeerResult(
        scores=scores,
        seconds=float("nan") if seconds is None else float(seconds),
        error=error,
        train_scores=train_scores,
        cached=cached,
        info=meta,
    )


def run_peers(
    cases: Iterable[PeerCase],
    methods: Sequence[str] = DEFAULT_METHODS,
    seed: int = 0,
    cache_dir: Path = DEFAULT_CACHE_DIR,
    *,
    threads: int = 2,
    retry_errors: bool = False,
    progress: Callable[[str], None] | None = None,
    python: Path = PEERS_PYTHON,
) -> dict[tuple[str, str], PeerResult]:
    """TSB-AD's ``methods`` on every case, from the cache where the inputs did not change.

    Parameters
    ----------
    cases : iterable of PeerCase
        Anything with ``name``, ``train`` (N_train × D) and ``test`` (N_test × D); names unique.
    methods : sequence of str
        TSB-AD method names (default PCA, CNN, LSTMAD, IForest).
    seed : int
        Seeds random, numpy and torch before every task.
    cache_dir : Path
        Where results are kept (relative paths: to the working directory).
    threads : int
        torch and BLAS threads of the subprocess.
    retry_errors : bool
        Run again the tasks whose cached result is an error.
    progress : callable, optional
        Called with one line per task (cached or finished); default: print to stderr.
    python : Path
        The peers' interpreter (default ``.venv-peers/bin/python`` at the repository root).

    Returns
    -------
    dict mapping (case name, method) to PeerResult

    Raises
    ------
    PeersUnavailable
        When ``.venv-peers`` is missing or does not start (check first with
        :func:`peers_unavailable` to skip the peers cleanly).
    """
    say = progress or (lambda line: print(line, file=sys.stderr, flush=True))
    cases = list(cases)
    names = [c.name for c in cases]
    if len(set(names)) != len(names):
        raise ValueError("case names must be unique")
    methods = tuple(methods)
    info = peers_info(Path(python), methods)
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)

    results: dict[tuple[str, str], PeerResult] = {}
    todo: list[tuple[int, str, str]] = []  # (case index, method, key)
    arrays = [(_as_float64(c.train), _as_float64(c.test)) for c in cases]
    for i, case in enumerate(cases):
        train, test = arrays[i]
        if train.shape[1] != test.shape[1]:
            raise ValueError(f"{case.name}: train has {train.shape[1]} columns, test {test.shape[1]}")
        for method in methods:
            key = cache_key(train, test, method, seed, info)
            hit = _load(cache_dir, key, len(train), len(test), cached=True)
            if hit is not None and not (retry_errors and hit.error is not None):
                results[(case.name, method)] = hit
                say(f"cached {case.name} {method} {hit.seconds:.1f} s" + (f" error: {hit.error}" if hit.error else ""))
            else:
                todo.append((i, method, key))
    if not todo:
        return results

    needed = sorted({i for i, _, _ in todo})
    slot = {i: j for j, i in enumerate(needed)}
    job: dict[str, Any] = {}
    for i in needed:
        j = slot[i]
        job[f"name_{j}"] = np.array(cases[i].name)
        job[f"train_{j}"], job[f"test_{j}"] = arrays[i]
    job["spec"] = np.array(json.dumps({"tasks": [{"id": k, "series": slot[i], "method": m} for i, m, k in todo]}))
    (cache_dir / "logs").mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    log_path = cache_dir / "logs" / f"{stamp}-{os.getpid()}.log"
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix="job-") as tmp:
        job_path = Path(tmp) / "job.npz"
        np.savez(job_path, **job)
        command = [str(python), str(RUN_PEERS), str(job_path), str(cache_dir), "--seed", str(seed), "--threads", str(threads)]
        with open(log_path, "w") as log:
            proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True)
            assert proc.stdout is not None
            for line in proc.stdout:
                say(line.rstrip("\n"))
            code = proc.wait()

    for i, method, key in todo:
        train, test = arrays[i]
        done = _load(cache_dir, key, len(train), len(test), cached=False)
        if done is None:
            done = PeerResult(
                scores=np.full(len(test), np.nan),
                seconds=float("nan"),
                error=f"run_peers.py exited with code {code} before this task finished (log: {log_path})",
                train_scores=np.full(len(train), np.nan),
            )
        results[(cases[i].name, method)] = done
    return results
