"""Exponentially weighted moving average of per-timestep scores, streamable. Pure numpy/scipy.

``s_t = alpha * x_t + (1 - alpha) * s_{t-1}`` with ``alpha = 2 / (span + 1)``; ``span = 1`` is
no smoothing. Smoothing damps one-step spikes of the score, so that sustained errors stand out
(telemanom smooths its errors the same way before thresholding).

NaN rule: a NaN score (an unscored step: warm-up or a data gap) stays NaN in the output and
*resets* the average, so the first valid score after a gap starts afresh (``s_t = x_t``), as
the very first score does. Smoothing restarts after a gap instead of carrying a stale level
across it, and NaN never leaks into later values.

The only state is the last smoothed value (NaN when there is none), so a series smoothed in
chunks of any size, passing the state along, equals the series smoothed whole. Thresholds must
then be fitted on calibration scores smoothed with the same span.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter


def span_to_alpha(span: float) -> float:
    """Smoothing factor of an EWMA with the given span (pandas' ``ewm(span=...)`` convention).

    Parameters
    ----------
    span : float >= 1

    Returns
    -------
    alpha : float in (0, 1]
        ``2 / (span + 1)``.
    """
    if not (isinstance(span, (int, float, np.integer, np.floating)) and np.isfinite(span) and span >= 1):
        raise ValueError(f"span must be a finite number >= 1 (1 means no smoothing); got {span!r}")
    return 2.0 / (float(span) + 1.0)


def ewma(scores: np.ndarray, span: float, state: float = np.nan) -> tuple[np.ndarray, float]:
    """Smooth one chunk of scores, continuing from a carried state.

    Parameters
    ----------
    scores : ndarray of shape (L,)
        The chunk's scores in time order; NaN marks unscored steps.
    span : float >= 1
        ``alpha = 2 / (span + 1)``; 1 returns the scores unchanged.
    state : float
        The smoothed value of the step just before this chunk, as returned for the previous
        chunk; NaN (the default) for the first chunk or when that step was unscored.

    Returns
    -------
    smoothed : ndarray of shape (L,)
        NaN exactly where ``scores`` is NaN.
    state : float
        The smoothed value of the chunk's last step (NaN if it is unscored); the input
        ``state`` again for an empty chunk.

    Notes
    -----
    One ``lfilter`` pass runs the recursion over the whole chunk with NaN read as 0 and no
    resets, giving ``y`` (a fresh start at step 0 is that recursion from ``s_{-1} = x_0``).
    Inside a run of valid scores starting at ``r`` after a NaN, the restarted average differs
    from ``y`` only through the value it started from, which decays geometrically::

        s_t = y_t + (1 - alpha) ** (t - r + 1) * (x_r - y_{r-1})

    so resets cost O(L) vectorised work however many gaps there are.
    """
    alpha = span_to_alpha(span)
    x = np.asarray(scores, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"scores must be 1-D; got shape {x.shape}")
    state = float(state)
    n = len(x)
    if n == 0:
        return x.copy(), state
    valid = ~np.isnan(x)
    if np.isnan(state) and valid[0]:
        state = float(x[0])  # a fresh start at step 0 is the plain recursion from s_{-1} = x_0
    y_before = 0.0 if np.isnan(state) else state
    y = lfilter([alpha], [1.0, alpha - 1.0], np.where(valid, x, 0.0), zi=[(1.0 - alpha) * y_before])[0]

    # Restarts after a NaN inside the chunk. Only the part from the first one on is touched,
    # so a chunk without gaps costs one lfilter pass.
    restarts = np.flatnonzero(valid[1:] & ~valid[:-1]) + 1
    if len(restarts) and alpha < 1.0:  # span 1 has no memory: y is already x
        first = restarts[0]
        seg_len = np.diff(np.append(restarts, n))  # each restart's stretch, up to the next one
        k = np.arange(1, n - first + 1) - np.repeat(restarts - first, seg_len)  # t - r + 1
        # (1 - alpha)**k from a small table: exp is the costly part, and past the point where
        # it underflows to 0 (k_max) there is nothing left to correct.
        log_decay = np.log1p(-alpha)
        k_max = int(min(seg_len.max(), np.ceil(-746.0 / log_decay)))
        table = np.append(np.exp(np.arange(1, k_max + 1) * log_decay), 0.0)
        decay = table[np.minimum(k, k_max + 1) - 1]
        y[first:] += decay * np.repeat(x[restarts] - y[restarts - 1], seg_len)
    y[~valid] = np.nan
    return y, float(y[-1])


class EwmaSmoother:
    """Streaming EWMA: feed chunks in time order, get each chunk smoothed.

    Parameters
    ----------
    span : float >= 1
        See :func:`ewma`.

    Attributes
    ----------
    state_ : float
        Smoothed value of the last step seen (NaN before any, or after an unscored step).

    Examples
    --------
    >>> smoother = EwmaSmoother(span=3)
    >>> smoother.feed(np.array([1.0, 3.0])).tolist()
    [1.0, 2.0]
    >>> smoother.feed(np.array([np.nan, 4.0])).tolist()
    [nan, 4.0]
    """

    def __init__(self, span: float = 1.0) -> None:
        self.span = span
        self.state_ = np.nan

    def feed(self, scores: np.ndarray) -> np.ndarray:
        """Smooth the next chunk, shape (L,) -> (L,), and carry the state to the next call."""
        smoothed, self.state_ = ewma(scores, self.span, self.state_)
        return smoothed
