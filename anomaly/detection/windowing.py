"""Sliding windows over a series, and the map from windows back to timesteps.

Pure numpy. ``make_windows`` returns a strided *view*: N windows of T steps cost no more memory
than the series itself, so the training set is never copied T times.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def n_windows(length: int, window_size: int, stride: int = 1) -> int:
    """Number of whole windows of ``window_size`` steps, ``stride`` apart, in ``length`` steps."""
    if length < window_size:
        return 0
    return (length - window_size) // stride + 1


def make_windows(X: np.ndarray, window_size: int, stride: int = 1) -> np.ndarray:
    """Cut a series into overlapping windows, as a read-only view (no copy).

    Parameters
    ----------
    X : ndarray of shape (L, D)
        The series, time along axis 0.
    window_size : int
        T, the number of steps in each window (1 <= T <= L).
    stride : int, default 1
        Steps between the starts of consecutive windows.

    Returns
    -------
    windows : ndarray of shape (N, T, D)
        ``windows[n, k] == X[n * stride + k]``, with ``N = (L - T) // stride + 1``. The windows
        that would run past the end of the series are left out.
    """
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must have shape (L, D); got {X.shape}")
    if not 1 <= window_size <= len(X):
        raise ValueError(f"window_size must be in [1, {len(X)}] for a series of {len(X)} steps; got {window_size}")
    if stride < 1:
        raise ValueError(f"stride must be >= 1; got {stride}")
    # sliding_window_view puts the window axis last: (L - T + 1, D, T) -> (N, T, D).
    return sliding_window_view(X, window_size, axis=0)[::stride].transpose(0, 2, 1)


def next_step_pairs(
    X: np.ndarray, window_size: int, stride: int = 1, targets: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and next-step targets for a many-to-many predictor, both views (no copy).

    Parameters
    ----------
    X : ndarray of shape (L, D)
    window_size : int
        T, the number of input steps per window.
    stride : int, default 1
    targets : ndarray of shape (L, D'), optional
        The series the targets come from, aligned with ``X`` (default ``X`` itself).

    Returns
    -------
    inputs : ndarray of shape (N, T, D)
        ``inputs[n, k] == X[n * stride + k]``.
    targets : ndarray of shape (N, T, D')
        ``targets[n, k] == targets[n * stride + k + 1]``: at every step the model predicts the
        next one.
    """
    windows = make_windows(X, window_size + 1, stride)
    if targets is None:
        return windows[:, :-1], windows[:, 1:]
    if len(targets) != len(X):
        raise ValueError(f"targets must have {len(X)} rows like X; got {len(targets)}")
    return windows[:, :-1], make_windows(targets, window_size + 1, stride)[:, 1:]


def windows_to_timesteps(values: np.ndarray, length: int, stride: int = 1, agg: str = "mean") -> tuple[np.ndarray, np.ndarray]:
    """Map per-window, per-step values back onto the timesteps they came from.

    The inverse of :func:`make_windows`: window ``n``, step ``k`` belongs to timestep
    ``n * stride + k``. A timestep covered by several windows gets their mean (or max); one
    covered by none (past the last whole window) gets NaN and ``covered == False``.

    Parameters
    ----------
    values : ndarray of shape (N, T) or (N, T, D)
    length : int
        L, the length of the series the windows were cut from.
    stride : int, default 1
    agg : {"mean", "max"}

    Returns
    -------
    per_step : ndarray of shape (L,) or (L, D)
    covered : ndarray of shape (L,), bool
    """
    values = np.asarray(values, dtype=np.float64)
    n, window_size = values.shape[:2]
    if n and (n - 1) * stride + window_size > length:
        raise ValueError(f"{n} windows of {window_size} steps, stride {stride}, do not fit in {length} steps")
    if agg not in ("mean", "max"):
        raise ValueError(f"agg must be 'mean' or 'max'; got {agg!r}")
    starts = np.arange(n) * stride
    counts = np.zeros(length, dtype=np.int64)
    if agg == "mean":
        out = np.zeros((length,) + values.shape[2:])
    else:
        out = np.full((length,) + values.shape[2:], -np.inf)
    # One vectorised update per step offset k: within one k the target indices starts + k are
    # distinct, so plain fancy-index assignment is exact (no np.add.at needed).
    for k in range(window_size):
        idx = starts + k
        counts[idx] += 1
        if agg == "mean":
            out[idx] += values[:, k]
        else:
            out[idx] = np.maximum(out[idx], values[:, k])
    covered = counts > 0
    shape = (-1,) + (1,) * (out.ndim - 1)
    if agg == "mean":
        out = out / np.maximum(counts, 1).reshape(shape)
    out[~covered] = np.nan
    return out, covered


def valid_windows(bad_rows: np.ndarray, window_size: int, stride: int = 1) -> np.ndarray:
    """Which windows of :func:`make_windows` contain no bad row (e.g. a missing value).

    Parameters
    ----------
    bad_rows : ndarray of shape (L,), bool
    window_size : int
        T, as passed to :func:`make_windows`.
    stride : int, default 1

    Returns
    -------
    ok : ndarray of shape (N,), bool
        ``ok[n]`` is True when rows ``n * stride .. n * stride + T - 1`` are all good.
    """
    bad = np.concatenate([[0], np.cumsum(np.asarray(bad_rows, dtype=np.int64))])
    starts = np.arange(n_windows(len(bad_rows), window_size, stride)) * stride
    return bad[starts + window_size] - bad[starts] == 0
