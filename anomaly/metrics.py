"""Detection-quality metrics on labelled series. Pure numpy.

Point-wise metrics come first. Point-adjusted F1 (a whole labelled range counts as found when
any point in it is flagged) is provided because the literature reports it, but it is inflated —
even random flags score well on it — so it is only ever shown beside the point-wise figures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from anomaly.scoring import find_events


@dataclass(frozen=True)
class PointMetrics:
    precision: float
    recall: float
    f1: float
    true_positives: int
    false_positives: int
    false_negatives: int


def _f1(precision: float, recall: float) -> float:
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def point_metrics(labels: np.ndarray, flags: np.ndarray) -> PointMetrics:
    """Point-wise precision, recall and F1.

    Parameters
    ----------
    labels, flags : ndarray of shape (L,), bool

    Returns
    -------
    PointMetrics
        Precision is 0 when nothing is flagged; recall is 0 when nothing is labelled.
    """
    labels = np.asarray(labels, dtype=bool)
    flags = np.asarray(flags, dtype=bool)
    tp = int(np.sum(labels & flags))
    fp = int(np.sum(~labels & flags))
    fn = int(np.sum(labels & ~flags))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return PointMetrics(precision, recall, _f1(precision, recall), tp, fp, fn)


def event_recall(labels: np.ndarray, flags: np.ndarray) -> tuple[float, np.ndarray]:
    """Share of labelled events (runs of label 1) with at least one flagged point inside.

    Parameters
    ----------
    labels, flags : ndarray of shape (L,), bool

    Returns
    -------
    recall : float
        NaN when there is no labelled event.
    found : ndarray of shape (E,), bool
        Per labelled event, in time order.
    """
    flags = np.asarray(flags, dtype=bool)
    events = find_events(labels)
    found = np.array([flags[s : e + 1].any() for s, e in events], dtype=bool)
    return (float(found.mean()) if len(found) else float("nan")), found


def event_precision(labels: np.ndarray, flags: np.ndarray) -> float:
    """Share of flagged stretches (runs of flags) that touch a labelled event.

    Returns
    -------
    float
        NaN when nothing is flagged.
    """
    labels = np.asarray(labels, dtype=bool)
    stretches = find_events(flags)
    if not stretches:
        return float("nan")
    return float(np.mean([labels[s : e + 1].any() for s, e in stretches]))


def point_adjusted_f1(labels: np.ndarray, flags: np.ndarray) -> float:
    """F1 after point adjustment — INFLATED, report only beside point-wise F1.

    Every point of a labelled event counts as detected once any point in it is flagged.
    """
    labels = np.asarray(labels, dtype=bool)
    adjusted = np.asarray(flags, dtype=bool).copy()
    for s, e in find_events(labels):
        if adjusted[s : e + 1].any():
            adjusted[s : e + 1] = True
    return point_metrics(labels, adjusted).f1
