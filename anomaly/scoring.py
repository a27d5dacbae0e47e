"""From predictions to anomaly scores, events and attributions. Pure numpy.

A residual is ``X - X_hat`` per timestep and feature. Each feature's residuals are normalised
by robust statistics of the calibration residuals (median and MAD), so a z of 3 means "three
typical errors" whatever the feature's units or predictability. The per-timestep score is the
root mean square of those z over features: higher always means more anomalous.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from anomaly.events import true_runs

# MAD of a normal distribution times this is its standard deviation.
_MAD_TO_STD = 1.4826
# Floor for a feature's residual scale, in scaled units (the scaler makes features unit
# variance): no feature is trusted to be predicted better than 1% of its standard deviation.
# A constant or perfectly predicted feature would otherwise get a scale near 0, and float-level
# wobble in its predictions would become enormous z. (The demo's real scales are 0.17-0.24.)
MIN_SCALE = 1e-2


@dataclass(frozen=True)
class ResidualStats:
    """Per-feature location and scale of calibration residuals.

    Attributes
    ----------
    center : ndarray of shape (D,)
        Median residual per feature.
    scale : ndarray of shape (D,)
        Robust standard deviation (1.4826 × MAD, floored at ``MIN_SCALE``) per feature.
    """

    center: np.ndarray
    scale: np.ndarray

    def to_dict(self) -> dict[str, list[float]]:
        return {"center": self.center.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, list[float]]) -> "ResidualStats":
        return cls(center=np.asarray(data["center"], dtype=np.float64), scale=np.asarray(data["scale"], dtype=np.float64))


def residuals(X: np.ndarray, X_hat: np.ndarray) -> np.ndarray:
    """Prediction errors ``X - X_hat``.

    Parameters
    ----------
    X, X_hat : ndarray of shape (L, D)

    Returns
    -------
    residuals : ndarray of shape (L, D)
        NaN where ``X_hat`` is NaN (steps with no prediction).
    """
    return np.asarray(X, dtype=np.float64) - np.asarray(X_hat, dtype=np.float64)


def fit_residual_stats(calibration_residuals: np.ndarray) -> ResidualStats:
    """Robust per-feature statistics of calibration residuals.

    Parameters
    ----------
    calibration_residuals : ndarray of shape (L, D)
        Rows containing NaN (e.g. the first step, which has no prediction) are ignored.

    Returns
    -------
    ResidualStats
    """
    R = np.asarray(calibration_residuals, dtype=np.float64)
    R = R[~np.isnan(R).any(axis=1)]
    if len(R) == 0:
        raise ValueError("no calibration residuals without NaN")
    center = np.median(R, axis=0)
    scale = _MAD_TO_STD * np.median(np.abs(R - center), axis=0)
    return ResidualStats(center=center, scale=np.maximum(scale, MIN_SCALE))


def normalise(residuals: np.ndarray, stats: ResidualStats) -> np.ndarray:
    """Per-feature z of residuals.

    Parameters
    ----------
    residuals : ndarray of shape (L, D)
    stats : ResidualStats

    Returns
    -------
    z : ndarray of shape (L, D)
        ``(residuals - stats.center) / stats.scale``; signed, NaN stays NaN.
    """
    return (residuals - stats.center) / stats.scale


AGGREGATIONS = ("rms", "mean_abs", "max_abs")


def aggregate(z: np.ndarray, method: str = "rms") -> np.ndarray:
    """Per-timestep anomaly score from the features' normalised residuals.

    Parameters
    ----------
    z : ndarray of shape (L, D)
    method : {"rms", "mean_abs", "max_abs"}
        ``"rms"``: root mean square of z over features (default; a broad error across many
        features and a large error in one both count). ``"mean_abs"``: mean |z|, less swayed by
        one feature. ``"max_abs"``: the largest |z|, the most sensitive to a single feature.

    Returns
    -------
    scores : ndarray of shape (L,)
        NaN where any feature's z is NaN.
    """
    if method == "rms":
        return np.sqrt(np.mean(np.square(z), axis=1))
    if method == "mean_abs":
        return np.mean(np.abs(z), axis=1)
    if method == "max_abs":
        return np.max(np.abs(z), axis=1)
    raise ValueError(f"unknown aggregation {method!r}; expected one of {AGGREGATIONS}")


def find_events(flags: np.ndarray) -> list[tuple[int, int]]:
    """Runs of consecutive flagged timesteps.

    Parameters
    ----------
    flags : ndarray of shape (L,), bool

    Returns
    -------
    events : list of (start, end)
        Inclusive index ranges, in time order.
    """
    starts, ends = true_runs(flags)
    return [(int(s), int(e)) for s, e in zip(starts, ends)]


def feature_shares(z: np.ndarray) -> np.ndarray:
    """Each feature's share of a stretch's squared error.

    Parameters
    ----------
    z : ndarray of shape (K, D)
        The normalised residuals of the K timesteps of one event.

    Returns
    -------
    shares : ndarray of shape (D,)
        Non-negative, summing to 1 (all zero if the stretch has no error at all).
    """
    energy = np.nansum(np.square(z), axis=0)
    total = energy.sum()
    return energy / total if total > 0 else energy
