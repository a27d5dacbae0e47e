"""From residuals to anomaly scores, and attributions: two scoring stages. Pure numpy.

A residual is ``X - X_hat`` per timestep and feature. :class:`ResidualNormaliser` divides each
feature's residuals by robust statistics of the calibration residuals (median and MAD, the MAD
floored at a tenth of the standard deviation), so a z of 3 means "three typical errors"
whatever the feature's units or predictability.
:class:`Aggregator` combines the z of a timestep into its score (by default their root mean
square): higher always means more anomalous.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from anomaly.detection.events import true_runs

# MAD of a normal distribution times this is its standard deviation.
_MAD_TO_STD = 1.4826
# Floor for a feature's residual scale, in scaled units (the scaler makes features unit
# variance): no feature is trusted to be predicted better than 1% of its standard deviation.
# A constant or perfectly predicted feature would otherwise get a scale near 0, and float-level
# wobble in its predictions would become enormous z. (The demo's real scales are 0.17-0.24.)
MIN_SCALE = 1e-2
# A feature's scale is also at least this share of its calibration residuals' standard
# deviation. A mostly-constant feature (a command flag, a counter at zero, a disk rarely written)
# has a MAD near 0 while its rare ordinary changes carry its whole spread; by MAD alone those
# changes become z in the hundreds, swamp the features that hold the anomalies and set the
# threshold. Chosen on the dev data (benchmarks/DETECTION.md, issue 12): with three injected
# command-like channels SMD's pooled F1 fell from 0.535 to 0.085 by MAD alone and stays at
# 0.549 with this floor, which leaves the clean SMD, SKAB, NAB and demo figures as they were
# (larger shares cost SKAB: 0.2 -> 0.781, 0.3 -> 0.769).
STD_SHARE = 0.1


@dataclass(frozen=True)
class ResidualNormaliser:
    """Turns residuals into per-feature z, by robust statistics of the calibration residuals.

    Attributes
    ----------
    center : ndarray of shape (D,)
        Median calibration residual per feature.
    scale : ndarray of shape (D,)
        Robust standard deviation per feature: 1.4826 × MAD, but at least ``STD_SHARE`` × the
        residuals' standard deviation, at least its step where it is a switching channel, at
        least the other features' median where it was constant in training, and at least
        ``MIN_SCALE``.
    """

    center: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(
        cls, calibration_residuals: np.ndarray, min_scale: np.ndarray | None = None, constant: np.ndarray | None = None
    ) -> ResidualNormaliser:
        """Fit on calibration residuals of shape (L, D); rows with a NaN (unscored) are ignored.

        ``min_scale`` (D,), optional: a per-feature floor on the scale, such as the step of a
        switching channel (:func:`anomaly.detection.preprocessing.value_steps`).

        ``constant`` (D,) bool, optional: features that held one value throughout training
        (:func:`anomaly.detection.preprocessing.constant_features`). Their residuals are only
        the network's wobble, and by its own tiny scale the wobble would be a z of about 1 on
        every row: a unit of noise per such feature in the score, which drowns the features
        that hold the anomalies where many are constant (a command never sent, a counter at
        zero, a stuck sensor). So their scale is at least the median scale of the other
        features: ordinary wobble counts for almost nothing, while the network's reaction to
        inputs it never saw, and any change of the feature itself, still count.
        """
        R = np.asarray(calibration_residuals, dtype=np.float64)
        R = R[~np.isnan(R).any(axis=1)]
        if len(R) == 0:
            raise ValueError("no calibration residuals without NaN")
        center = np.median(R, axis=0)
        scale = _MAD_TO_STD * np.median(np.abs(R - center), axis=0)
        scale = np.maximum(scale, STD_SHARE * np.std(R, axis=0))
        if min_scale is not None:
            scale = np.maximum(scale, min_scale)
        scale = np.maximum(scale, MIN_SCALE)
        if constant is not None and 0 < np.count_nonzero(constant) < len(scale):
            scale[constant] = np.maximum(scale[constant], np.median(scale[~constant]))
        return cls(center=center, scale=scale)

    def transform(self, residuals: np.ndarray) -> np.ndarray:
        """Signed z ``(residuals - center) / scale``, shape (L, D) -> (L, D); NaN stays NaN."""
        return (residuals - self.center) / self.scale

    def to_dict(self) -> dict[str, list[float]]:
        return {"center": self.center.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, list[float]]) -> ResidualNormaliser:
        return cls(center=np.asarray(data["center"], dtype=np.float64), scale=np.asarray(data["scale"], dtype=np.float64))


AGGREGATIONS = ("rms", "mean_abs", "max_abs")


@dataclass(frozen=True)
class Aggregator:
    """Combines the features' z of each timestep into one score.

    Attributes
    ----------
    method : {"rms", "mean_abs", "max_abs"}
        ``"rms"``: root mean square of z over features (a broad error across many features and
        a large error in one both count). ``"mean_abs"``: mean |z|, less swayed by one feature.
        ``"max_abs"``: the largest |z|, the most sensitive to a single feature.
    """

    method: str = "rms"

    def __post_init__(self) -> None:
        if self.method not in AGGREGATIONS:
            raise ValueError(f"unknown aggregation {self.method!r}; expected one of {AGGREGATIONS}")

    def transform(self, z: np.ndarray) -> np.ndarray:
        """Scores of shape (L,) from z of shape (L, D); NaN where any feature's z is NaN."""
        if self.method == "rms":
            return np.sqrt(np.mean(np.square(z), axis=1))
        if self.method == "mean_abs":
            return np.mean(np.abs(z), axis=1)
        return np.max(np.abs(z), axis=1)


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
