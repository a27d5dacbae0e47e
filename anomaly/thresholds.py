"""Thresholds fitted once on calibration scores, then applied unchanged. Pure numpy.

The threshold is learned from held-back *normal* data only (never from test labels) and is
stored with the model, so every scoring call — whatever its chunk or batch size — flags with
the same cut.
"""

from __future__ import annotations

import numpy as np

THRESHOLD_METHODS = ("quantile",)


def fit_threshold(calibration_scores: np.ndarray, method: str = "quantile", quantile: float = 0.999) -> float:
    """Fit a score threshold on calibration scores.

    Parameters
    ----------
    calibration_scores : ndarray of shape (L,)
        Scores of held-back normal data. NaN entries (unscored steps) are ignored.
    method : {"quantile"}
        ``"quantile"``: the empirical ``quantile`` of the calibration scores, so about
        ``1 - quantile`` of normal timesteps are expected above it.
    quantile : float in (0, 1)

    Returns
    -------
    threshold : float
    """
    scores = np.asarray(calibration_scores, dtype=np.float64)
    scores = scores[~np.isnan(scores)]
    if len(scores) == 0:
        raise ValueError("no calibration scores to fit a threshold on")
    if method == "quantile":
        if not 0.0 < quantile < 1.0:
            raise ValueError(f"quantile must be in (0, 1); got {quantile}")
        return float(np.quantile(scores, quantile))
    raise ValueError(f"unknown threshold method {method!r}; expected one of {THRESHOLD_METHODS}")


def apply_threshold(scores: np.ndarray, threshold: float) -> np.ndarray:
    """Flag the timesteps whose score exceeds the threshold.

    Parameters
    ----------
    scores : ndarray of shape (L,)
    threshold : float

    Returns
    -------
    flags : ndarray of shape (L,), bool
        ``scores > threshold``; NaN scores (unscored steps) are never flagged.
    """
    scores = np.asarray(scores, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.nan_to_num(scores, nan=-np.inf) > threshold
