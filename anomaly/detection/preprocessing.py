"""Scaling, the chronological split of a training series, and what its features are like.

The scaler is scikit-learn's StandardScaler, fitted on the training part only. What it learned
(mean and scale per feature) is stored as plain numbers, not a pickle, and applied with numpy,
so scoring never needs scikit-learn.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Scaling:
    """A fitted per-feature affine scaling.

    Attributes
    ----------
    mean : ndarray of shape (D,)
    scale : ndarray of shape (D,)
        Standard deviation per feature (1 for a constant feature, as scikit-learn does).
    """

    mean: np.ndarray
    scale: np.ndarray

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Scale a series.

        Parameters
        ----------
        X : ndarray of shape (L, D)

        Returns
        -------
        ndarray of shape (L, D), float32
            float32 because that is what the network computes in.
        """
        return ((np.asarray(X, dtype=np.float64) - self.mean) / self.scale).astype(np.float32)

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, list[float]]) -> Scaling:
        return cls(mean=np.asarray(data["mean"], dtype=np.float64), scale=np.asarray(data["scale"], dtype=np.float64))


def fit_scaling(X: np.ndarray) -> Scaling:
    """Fit a StandardScaler on the training part of a series.

    Parameters
    ----------
    X : ndarray of shape (L, D)

    Returns
    -------
    Scaling
    """
    from sklearn.preprocessing import StandardScaler  # 1.6 s import: only where fitting happens

    scaler = StandardScaler().fit(np.asarray(X, dtype=np.float64))
    return Scaling(mean=scaler.mean_.copy(), scale=scaler.scale_.copy())


def constant_features(X: np.ndarray) -> np.ndarray:
    """Features that hold one value in every row of a training series, missing rows aside.

    Parameters
    ----------
    X : ndarray of shape (L, D)
        Unscaled; NaN (missing) is ignored, and an all-missing column is not constant.

    Returns
    -------
    ndarray of shape (D,), bool
    """
    low, high = _value_bounds(np.asarray(X, dtype=np.float64))
    return high == low  # NaN bounds (all missing) compare unequal


# A feature that only rose (or only fell) through training with at least this many distinct
# values is a clock or a counter, not a level that varies (a flag switched on once also only
# rose, with two values). No dev series has one: SMD, SKAB and NAB have none with even 3.
MIN_MONOTONE_VALUES = 10


def monotone_features(X: np.ndarray) -> np.ndarray:
    """Features that only rose, or only fell, in every step of a training series, like a clock or a
    counter: their later values lie past the training range, so scoring would flag them all.

    Parameters
    ----------
    X : ndarray of shape (L, D)
        Unscaled; NaN (missing) is skipped, so a step across a gap compares the values around it.

    Returns
    -------
    ndarray of shape (D,), bool
        True where the feature's non-missing values never fell (or never rose) and hold at least
        ``MIN_MONOTONE_VALUES`` distinct values.
    """
    X = np.asarray(X, dtype=np.float64)
    out = np.zeros(X.shape[1], dtype=bool)
    for j in range(X.shape[1]):
        values = X[:, j][~np.isnan(X[:, j])]
        steps = np.diff(values)
        if ((steps >= 0).all() or (steps <= 0).all()) and len(np.unique(values)) >= MIN_MONOTONE_VALUES:
            out[j] = True
    return out


def _value_bounds(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each feature's smallest and largest value of X (L, D), missing ones ignored: (D,), (D,);
    NaN for a column with no value."""
    with warnings.catch_warnings():  # an all-missing column: NaN bounds, and numpy warns of them
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmin(X, axis=0), np.nanmax(X, axis=0)


# A two-valued feature is a switching channel when it switched at least this often in training
# (on and off twice). Chosen on the dev data (benchmarks/DETECTION.md, fourth pass): on SMD's
# machine-1-2 a metric that switched twice in 23,694 training rows switches four times in the
# test part, each inside a labelled anomaly, so a change that training has hardly seen must stay
# loud; and injected command channels in SKAB's 400 training rows switch only a few times, so a
# higher count leaves them loud too (SKAB F1 with three of them: 0.773 at 4, 0.766 at 10).
MIN_SWITCHES = 4


def value_steps(X: np.ndarray, scaling: Scaling) -> np.ndarray:
    """The step of each switching channel of a training series, in scaled units.

    A switching channel is a feature with two values in training (a flag, a command, an on/off
    state) that switched between them at least ``MIN_SWITCHES`` times. It changes only by whole
    steps, and a next-step model cannot foresee when: each ordinary switch leaves a residual of
    one step. The step is what its residuals should be measured against, not the MAD of the
    calibration residuals (about 0 for a feature at rest most of the time, which would make each
    ordinary switch a z in the hundreds). A feature that switched fewer times, or never, keeps
    the general rule: a change that training has hardly seen stands out.

    Parameters
    ----------
    X : ndarray of shape (L, D)
        The training series, unscaled; NaN (missing) is ignored.
    scaling : Scaling
        The scaling fitted on it.

    Returns
    -------
    ndarray of shape (D,)
        The step in scaled units for a switching channel, 0 for any other feature.
    """
    X = np.asarray(X, dtype=np.float64)
    present = ~np.isnan(X)
    low, high = _value_bounds(X)  # NaN for an all-missing column: not two-valued
    two_valued = (high > low) & np.all(~present | (X == low) | (X == high), axis=0)
    steps = np.zeros(X.shape[1])
    for f in np.flatnonzero(two_valued):
        values = X[present[:, f], f]
        if np.count_nonzero(np.diff(values)) >= MIN_SWITCHES:
            steps[f] = (high[f] - low[f]) / scaling.scale[f]
    return steps


def chronological_split(length: int, holdout_fraction: float, min_holdout: int) -> int:
    """Where to cut a series into a training part and a held-back tail.

    Parameters
    ----------
    length : int
        L, the number of timesteps.
    holdout_fraction : float in (0, 1)
        Share of the series, at its end, held back for early stopping and calibration.
    min_holdout : int
        The held-back tail is at least this long (it must hold at least one window).

    Returns
    -------
    cut : int
        Training part ``[:cut]``, held-back part ``[cut:]``. No shuffling: the held-back data
        come strictly after the training data, as they would in use.
    """
    holdout = max(int(round(length * holdout_fraction)), min_holdout)
    return length - holdout
