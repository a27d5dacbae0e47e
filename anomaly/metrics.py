"""Detection-quality metrics on labelled series. Pure numpy.

Point-wise metrics come first. Point-adjusted F1 (a whole labelled range counts as found when
any point in it is flagged) is provided because the literature reports it, but it is inflated —
even random flags score well on it — so it is only ever shown beside the point-wise figures,
and :func:`trivial_baselines` shows what flag-everything and random scores get on every metric.

Threshold-free metrics take scores (higher = more anomalous; NaN = unscored, ranked lowest):
:func:`average_precision` (PR-AUC) and :func:`vus_pr` (Paparrizos et al., VLDB 2022).

Labels and flags may be bool or 0/1 numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from anomaly.events import event_ranges
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


def _as_bool(values: np.ndarray, name: str) -> np.ndarray:
    """A 1-D bool array from bools or 0/1 numbers; anything else is refused."""
    values = np.asarray(values)
    if values.ndim != 1:
        raise ValueError(f"{name} must be 1-D; got shape {values.shape}")
    if values.dtype != bool:
        if not np.isin(values, (0, 1)).all():
            raise ValueError(f"{name} must be bool or 0/1; got values {np.unique(values)[:5].tolist()}")
        values = values.astype(bool)
    return values


def _as_scores(scores: np.ndarray, n: int) -> np.ndarray:
    """Float scores of length n with NaN (unscored) replaced by -inf, so it ranks lowest."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (n,):
        raise ValueError(f"scores must have shape ({n},) like the labels; got {scores.shape}")
    return np.where(np.isnan(scores), -np.inf, scores)


def _check_same_length(labels: np.ndarray, other: np.ndarray, name: str) -> None:
    if len(labels) != len(other):
        raise ValueError(f"labels and {name} must have the same length; got {len(labels)} and {len(other)}")


# --------------------------------------------------------------------------------------------
# Point-wise
# --------------------------------------------------------------------------------------------


def point_metrics(labels: np.ndarray, flags: np.ndarray) -> PointMetrics:
    """Point-wise precision, recall and F1.

    Parameters
    ----------
    labels, flags : ndarray of shape (L,), bool or 0/1

    Returns
    -------
    PointMetrics
        Precision is 0 when nothing is flagged; recall is 0 when nothing is labelled.
    """
    labels = _as_bool(labels, "labels")
    flags = _as_bool(flags, "flags")
    _check_same_length(labels, flags, "flags")
    tp = int(np.sum(labels & flags))
    fp = int(np.sum(~labels & flags))
    fn = int(np.sum(labels & ~flags))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return PointMetrics(precision, recall, _f1(precision, recall), tp, fp, fn)


def false_alarm_rate(labels: np.ndarray, flags: np.ndarray) -> float:
    """SKAB's FAR: share of normal steps that are flagged, ``FP / (FP + TN)``.

    A fraction in [0, 1]; SKAB's leaderboard shows it in percent (× 100).

    Parameters
    ----------
    labels, flags : ndarray of shape (L,), bool or 0/1

    Returns
    -------
    float
        NaN when no step is normal.
    """
    labels = _as_bool(labels, "labels")
    flags = _as_bool(flags, "flags")
    _check_same_length(labels, flags, "flags")
    normal = ~labels
    return float(flags[normal].mean()) if normal.any() else float("nan")


def missed_alarm_rate(labels: np.ndarray, flags: np.ndarray) -> float:
    """SKAB's MAR: share of anomalous steps that are not flagged, ``FN / (FN + TP)``.

    A fraction in [0, 1] (``1 - point recall``); SKAB's leaderboard shows it in percent (× 100).

    Parameters
    ----------
    labels, flags : ndarray of shape (L,), bool or 0/1

    Returns
    -------
    float
        NaN when no step is anomalous.
    """
    labels = _as_bool(labels, "labels")
    flags = _as_bool(flags, "flags")
    _check_same_length(labels, flags, "flags")
    return float((~flags[labels]).mean()) if labels.any() else float("nan")


# --------------------------------------------------------------------------------------------
# Event-wise
# --------------------------------------------------------------------------------------------


def event_recall(labels: np.ndarray, flags: np.ndarray) -> tuple[float, np.ndarray]:
    """Share of labelled events (runs of label 1) with at least one flagged point inside.

    Parameters
    ----------
    labels, flags : ndarray of shape (L,), bool or 0/1

    Returns
    -------
    recall : float
        NaN when there is no labelled event.
    found : ndarray of shape (E,), bool
        Per labelled event, in time order.
    """
    labels = _as_bool(labels, "labels")
    flags = _as_bool(flags, "flags")
    _check_same_length(labels, flags, "flags")
    events = find_events(labels)
    found = np.array([flags[s : e + 1].any() for s, e in events], dtype=bool)
    return (float(found.mean()) if len(found) else float("nan")), found


def event_precision(labels: np.ndarray, flags: np.ndarray, *, gap: int = 0) -> float:
    """Share of predicted events that overlap a labelled event.

    Predicted events are the runs of flags, with runs at most ``gap`` unflagged steps apart
    merged (as :func:`anomaly.events.group_events` does), so one anomaly flagged with a
    flicker counts once, not as several true events.

    Parameters
    ----------
    labels, flags : ndarray of shape (L,), bool or 0/1
    gap : int >= 0

    Returns
    -------
    float
        NaN when nothing is flagged.
    """
    labels = _as_bool(labels, "labels")
    flags = _as_bool(flags, "flags")
    _check_same_length(labels, flags, "flags")
    stretches = event_ranges(flags, gap=gap)
    if not stretches:
        return float("nan")
    # Cumulative label counts give each stretch's overlap in O(1).
    counts = np.concatenate([[0], np.cumsum(labels, dtype=np.int64)])
    starts, ends = np.array(stretches).T
    return float(np.mean(counts[ends + 1] - counts[starts] > 0))


def event_f1(labels: np.ndarray, flags: np.ndarray, *, gap: int = 0) -> float:
    """Harmonic mean of :func:`event_recall` and :func:`event_precision`.

    Parameters
    ----------
    labels, flags : ndarray of shape (L,), bool or 0/1
    gap : int >= 0
        Passed to :func:`event_precision`.

    Returns
    -------
    float
        NaN when there is no labelled event; 0 when events are labelled but nothing is
        flagged (recall is then 0, and the undefined precision does not matter).
    """
    recall, _ = event_recall(labels, flags)
    if np.isnan(recall):
        return float("nan")
    precision = event_precision(labels, flags, gap=gap)
    if np.isnan(precision):
        return 0.0
    return _f1(precision, recall)


def point_adjusted_f1(labels: np.ndarray, flags: np.ndarray) -> float:
    """F1 after point adjustment — INFLATED, report only beside point-wise F1.

    Every point of a labelled event counts as detected once any point in it is flagged.
    """
    labels = _as_bool(labels, "labels")
    adjusted = _as_bool(flags, "flags").copy()
    _check_same_length(labels, adjusted, "flags")
    for s, e in find_events(labels):
        if adjusted[s : e + 1].any():
            adjusted[s : e + 1] = True
    return point_metrics(labels, adjusted).f1


# --------------------------------------------------------------------------------------------
# Threshold-free (on scores)
# --------------------------------------------------------------------------------------------


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the precision-recall curve, step-wise (as sklearn's ``average_precision_score``).

    ``AP = sum_k (R_k - R_{k-1}) P_k`` over the distinct score values taken as thresholds,
    highest first; tied scores enter together.

    Parameters
    ----------
    labels : ndarray of shape (L,), bool or 0/1
    scores : ndarray of shape (L,)
        NaN (unscored) ranks below every score.

    Returns
    -------
    float
        NaN when nothing is labelled.
    """
    labels = _as_bool(labels, "labels")
    scores = _as_scores(scores, len(labels))
    if not labels.any():
        return float("nan")
    order = np.argsort(-scores, kind="mergesort")
    ranked_scores, ranked_labels = scores[order], labels[order]
    # Last index of each block of tied scores (-inf == -inf, so unscored steps tie too).
    last_of_tie = np.append(np.flatnonzero(ranked_scores[1:] != ranked_scores[:-1]), len(scores) - 1)
    tp = np.cumsum(ranked_labels)[last_of_tie]
    precision = tp / (last_of_tie + 1)
    recall = tp / tp[-1]
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))


def vus_pr(labels: np.ndarray, scores: np.ndarray, max_buffer: int = 100, n_thresholds: int = 250) -> float:
    """Volume under the range-based PR surface, VUS-PR (Paparrizos et al., VLDB 2022).

    A faithful vectorised port of ``RangeAUC_volume_opt`` in the authors' reference code
    (TheDatumOrg/VUS, ``vus/utils/metrics.py``; the same as in TSB-UAD). For each buffer
    length ``w`` in ``0 .. max_buffer``:

    - **Soft labels.** Each labelled range ``[s, e]`` is widened by ``w // 2`` steps each
      side, the added steps labelled ``sqrt(1 - d / w)`` at distance ``d`` from the range
      (summed where two ranges' buffers meet, capped at 1).
    - **Thresholds.** ``n_thresholds`` of the scores sorted descending, at positions
      ``linspace(0, L - 1, n_thresholds).astype(int)``; a step is predicted when its score is
      ``>=`` the threshold.
    - **Range recall and precision.** ``TP`` is the sum of soft labels over predicted steps;
      ``recall = min(TP / ((P + sum(soft labels)) / 2), 1) * existence`` with ``P`` the number
      of labelled steps and ``existence`` the share of widened ranges (merged where they meet)
      holding a predicted step with a positive soft label; ``precision = TP / predicted``.
    - **Area.** Trapezoids over the (recall, precision) points in threshold order, starting
      from (0, 1).

    VUS-PR is the mean of these areas over the ``max_buffer + 1`` buffer lengths.

    Parameters
    ----------
    labels : ndarray of shape (L,), bool or 0/1
    scores : ndarray of shape (L,)
        NaN (unscored) ranks below every score.
    max_buffer : int >= 0
        The reference's ``windowSize``: the largest buffer length. TSB-AD's ``get_metrics``
        defaults to 100; TSB-UAD passes twice the series' estimated period.
    n_thresholds : int >= 2
        The reference's ``thre``.

    Returns
    -------
    float
        NaN when nothing is labelled.
    """
    if not (isinstance(max_buffer, (int, np.integer)) and max_buffer >= 0):
        raise ValueError(f"max_buffer must be an int >= 0; got {max_buffer!r}")
    if not (isinstance(n_thresholds, (int, np.integer)) and n_thresholds >= 2):
        raise ValueError(f"n_thresholds must be an int >= 2; got {n_thresholds!r}")
    labels = _as_bool(labels, "labels")
    n = len(labels)
    scores = _as_scores(scores, n)
    if not labels.any():
        return float("nan")
    starts, ends = _label_runs(labels)
    n_labelled = float(labels.sum())

    order = np.argsort(-scores, kind="mergesort")
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    thresholds = scores[order][np.linspace(0, n - 1, n_thresholds).astype(int)]
    # Steps predicted at each threshold: all scores >= it, which are the first n_pred in `order`.
    n_pred = n - np.searchsorted(np.sort(scores), thresholds, side="left")
    # The 0/1 labels' part of TP, and each labelled range's best (smallest) rank.
    tp_labelled = np.cumsum(labels[order])[n_pred - 1]
    bounds = np.stack([starts, ends + 1], axis=1).ravel()
    range_best = np.minimum.reduceat(rank, bounds[bounds < n])[::2]

    # Each buffer length only changes the labels near the labelled ranges, so the work per
    # length is proportional to those (E x w), not to the series length.
    areas = np.empty(max_buffer + 1)
    for w in range(max_buffer + 1):
        positions, extra, owner = _buffer_labels(labels, starts, ends, w)
        by_rank = np.argsort(rank[positions], kind="stable")
        extra_ranks = rank[positions][by_rank]
        extra_tp = np.concatenate([[0.0], np.cumsum(extra[by_rank])])
        tp = tp_labelled + extra_tp[np.searchsorted(extra_ranks, n_pred, side="left")]
        soft_total = n_labelled + extra.sum()

        # Widened ranges that meet are merged. One is found at a threshold once its best-ranked
        # step is predicted (every step of a widened range has a positive soft label).
        half = w // 2
        group = np.concatenate([[0], np.cumsum(ends[:-1] + half < starts[1:] - half)])
        best = np.full(group[-1] + 1, n, dtype=np.int64)
        np.minimum.at(best, group, range_best)
        np.minimum.at(best, group[owner], rank[positions])
        existence = np.searchsorted(np.sort(best), n_pred, side="left") / len(best)

        recall = np.minimum(tp / ((n_labelled + soft_total) / 2.0), 1.0) * existence
        precision = tp / n_pred
        recall = np.concatenate([[0.0], recall])
        precision = np.concatenate([[1.0], precision])
        areas[w] = np.sum(np.diff(recall) * (precision[1:] + precision[:-1]) / 2.0)
    return float(areas.mean())


def _label_runs(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inclusive (starts, ends) of the runs of True, each of shape (E,)."""
    padded = np.concatenate([[False], labels, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return edges[::2], edges[1::2] - 1


def _buffer_labels(
    labels: np.ndarray, starts: np.ndarray, ends: np.ndarray, w: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where VUS's buffer of length ``w`` raises the labels (the reference's ``sequencing``).

    Each labelled range's ``w // 2`` steps either side get ``sqrt(1 - d / w)`` at distance
    ``d``; where buffers overlap the values add up (as the reference's successive ``+=`` do),
    and every label is then capped at 1.

    Returns
    -------
    positions : ndarray of shape (K,)
        Distinct buffered steps.
    extra : ndarray of shape (K,)
        Soft label minus 0/1 label there (0 where the buffer falls on a labelled step).
    owner : ndarray of shape (K,)
        Index of a labelled range whose buffer holds the step.
    """
    half, n = w // 2, len(labels)
    if half == 0:
        empty = np.empty(0, dtype=np.int64)
        return empty, np.empty(0), empty
    d = np.arange(1, half + 1)
    ramp = np.broadcast_to(np.sqrt(1.0 - d / w), (len(starts), half))
    owners = np.broadcast_to(np.arange(len(starts))[:, None], (len(starts), half))
    candidates = np.concatenate([(ends[:, None] + d).ravel(), (starts[:, None] - d).ravel()])
    values = np.concatenate([ramp.ravel(), ramp.ravel()])
    owner = np.concatenate([owners.ravel(), owners.ravel()])
    inside = (candidates >= 0) & (candidates < n)
    positions, first, inverse = np.unique(candidates[inside], return_index=True, return_inverse=True)
    raised = np.bincount(inverse, weights=values[inside], minlength=len(positions))
    base = labels[positions].astype(np.float64)
    return positions, np.minimum(base + raised, 1.0) - base, owner[inside][first]


# --------------------------------------------------------------------------------------------
# All at once, and what trivial detectors get
# --------------------------------------------------------------------------------------------


def evaluate_scores(
    labels: np.ndarray, scores: np.ndarray, flags: np.ndarray, *, gap: int = 0, max_buffer: int = 100,
) -> dict[str, float]:
    """Every metric for one labelled series.

    Parameters
    ----------
    labels : ndarray of shape (L,), bool or 0/1
    scores : ndarray of shape (L,)
        NaN for unscored steps.
    flags : ndarray of shape (L,), bool or 0/1
    gap : int >= 0
        Merging gap for predicted events (:func:`event_precision`).
    max_buffer : int >= 0
        For :func:`vus_pr`.

    Returns
    -------
    dict
        ``point_precision``, ``point_recall``, ``point_f1``, ``event_recall``,
        ``event_precision``, ``event_f1``, ``average_precision``, ``vus_pr``,
        ``point_adjusted_f1_inflated``, ``far``, ``mar`` (fractions, not percent) and
        ``flag_rate`` (share of steps flagged). Undefined values are NaN.
    """
    labels = _as_bool(labels, "labels")
    flags = _as_bool(flags, "flags")
    _check_same_length(labels, flags, "flags")
    point = point_metrics(labels, flags)
    return {
        "point_precision": point.precision,
        "point_recall": point.recall,
        "point_f1": point.f1,
        "event_recall": event_recall(labels, flags)[0],
        "event_precision": event_precision(labels, flags, gap=gap),
        "event_f1": event_f1(labels, flags, gap=gap),
        "average_precision": average_precision(labels, scores),
        "vus_pr": vus_pr(labels, scores, max_buffer=max_buffer),
        "point_adjusted_f1_inflated": point_adjusted_f1(labels, flags),
        "far": false_alarm_rate(labels, flags),
        "mar": missed_alarm_rate(labels, flags),
        "flag_rate": float(flags.mean()) if len(flags) else float("nan"),
    }


def trivial_baselines(
    labels: np.ndarray, rng_seed: int = 0, flag_rate: float | None = None, *, gap: int = 0, max_buffer: int = 100,
) -> dict[str, dict[str, float]]:
    """What detectors with no skill score, on the metrics of :func:`evaluate_scores`.

    Parameters
    ----------
    labels : ndarray of shape (L,), bool or 0/1
    rng_seed : int
        Seed of the random scores.
    flag_rate : float in [0, 1], optional
        Share of steps the random detector flags: give the real detector's flag rate so the
        comparison is like for like. Default: the share of labelled steps.
    gap, max_buffer : int
        As for :func:`evaluate_scores`.

    Returns
    -------
    dict
        ``"flag_everything"``: constant scores, every step flagged.
        ``"random"``: i.i.d. uniform scores, the steps scoring above ``1 - flag_rate`` flagged.
    """
    labels = _as_bool(labels, "labels")
    n = len(labels)
    if flag_rate is None:
        flag_rate = float(labels.mean()) if n else 0.0
    if not 0.0 <= flag_rate <= 1.0:
        raise ValueError(f"flag_rate must be in [0, 1]; got {flag_rate}")
    random_scores = np.random.default_rng(rng_seed).random(n)
    options = dict(gap=gap, max_buffer=max_buffer)
    return {
        "flag_everything": evaluate_scores(labels, np.ones(n), np.ones(n, dtype=bool), **options),
        "random": evaluate_scores(labels, random_scores, random_scores > 1.0 - flag_rate, **options),
    }
