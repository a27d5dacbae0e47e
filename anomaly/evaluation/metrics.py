"""Detection-quality metrics on labelled series. Pure numpy.

Point-wise metrics come first. Point-adjusted F1 (a whole labelled range counts as found when
any point in it is flagged) is provided because the literature reports it, but it is inflated —
even random flags score well on it — so it is only ever shown beside the point-wise figures,
and :func:`trivial_baselines` shows what flag-everything and random scores get on every metric.

Threshold-free metrics take scores (higher = more anomalous) and are those of TSB-AD 1.5's
``get_metrics`` (the code behind the TSB-AD leaderboard), tested against the package to 1e-9:
:func:`average_precision` (its AUC-PR), :func:`auc_roc`, :func:`vus` (VUS-ROC and VUS-PR,
Paparrizos et al., VLDB 2022), :func:`best_f1` (its Standard-F1: F1 at the best threshold,
chosen with the labels), and :func:`find_length_rank`, the window its benchmark gives VUS.
Unscored steps (NaN, or -inf) take the lowest finite score (:func:`prepare_scores`); TSB-AD
itself takes no NaN.

Labels and flags may be bool or 0/1 numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from anomaly.detection.events import event_ranges, true_runs
from anomaly.detection.scoring import find_events


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
    """Float scores of length n, unscored ones (NaN, -inf) set to the lowest (:func:`prepare_scores`)."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (n,):
        raise ValueError(f"scores must have shape ({n},) like the labels; got {scores.shape}")
    return prepare_scores(scores)


def _labels_flags(labels: np.ndarray, flags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels and flags as 1-D bool arrays of one length; anything else is refused."""
    labels, flags = _as_bool(labels, "labels"), _as_bool(flags, "flags")
    if len(labels) != len(flags):
        raise ValueError(f"labels and flags must have the same length; got {len(labels)} and {len(flags)}")
    return labels, flags


def _labels_scores(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels as a 1-D bool array, scores as :func:`prepare_scores` makes them, of one length."""
    labels = _as_bool(labels, "labels")
    return labels, _as_scores(scores, len(labels))


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
        Precision is 0 when nothing is flagged (TSB-AD's convention: a silent detector scores 0).
        Recall and F1 are NaN when nothing is labelled: there is nothing to find, so neither
        0 nor 1 would say anything about the detector.
    """
    labels, flags = _labels_flags(labels, flags)
    tp = int(np.sum(labels & flags))
    fp = int(np.sum(~labels & flags))
    fn = int(np.sum(labels & ~flags))
    precision = tp / (tp + fp) if tp + fp else 0.0
    if not tp + fn:
        return PointMetrics(precision, float("nan"), float("nan"), tp, fp, fn)
    recall = tp / (tp + fn)
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
    labels, flags = _labels_flags(labels, flags)
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
    labels, flags = _labels_flags(labels, flags)
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
    labels, flags = _labels_flags(labels, flags)
    events = find_events(labels)
    found = np.array([flags[s : e + 1].any() for s, e in events], dtype=bool)
    return (float(found.mean()) if len(found) else float("nan")), found


def event_precision(labels: np.ndarray, flags: np.ndarray, *, gap: int = 0) -> float:
    """Share of predicted events that overlap a labelled event.

    Predicted events are the runs of flags, with runs at most ``gap`` unflagged steps apart
    merged (as :func:`anomaly.detection.events.group_events` does), so one anomaly flagged with a
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
    hits = _stretch_hits(*_labels_flags(labels, flags), gap)
    return float(hits.mean()) if len(hits) else float("nan")


def _stretch_hits(labels: np.ndarray, flags: np.ndarray, gap: int) -> np.ndarray:
    """Per predicted event (runs of ``flags`` merged across ``gap``), whether it overlaps a
    labelled step: bool, shape (S,)."""
    stretches = event_ranges(flags, gap=gap)
    if not stretches:
        return np.zeros(0, dtype=bool)
    # Cumulative label counts give each stretch's overlap in O(1).
    counts = np.concatenate([[0], np.cumsum(labels, dtype=np.int64)])
    starts, ends = np.array(stretches).T
    return counts[ends + 1] - counts[starts] > 0


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
    return _event_f1(event_recall(labels, flags)[0], event_precision(labels, flags, gap=gap))


def _event_f1(recall: float, precision: float) -> float:
    if np.isnan(recall):
        return float("nan")
    return 0.0 if np.isnan(precision) else _f1(precision, recall)


def point_adjusted_f1(labels: np.ndarray, flags: np.ndarray) -> float:
    """F1 after point adjustment — INFLATED, report only beside point-wise F1.

    Every point of a labelled event counts as detected once any point in it is flagged.
    NaN when nothing is labelled, as :func:`point_metrics`' F1.
    """
    labels, flags = _labels_flags(labels, flags)
    return point_metrics(labels, _point_adjusted(labels, flags)).f1


def _point_adjusted(labels: np.ndarray, flags: np.ndarray) -> np.ndarray:
    """``flags`` (L,) with every labelled event that has a flag flagged whole."""
    adjusted = flags.copy()
    for s, e in find_events(labels):
        if adjusted[s : e + 1].any():
            adjusted[s : e + 1] = True
    return adjusted


# --------------------------------------------------------------------------------------------
# Threshold-free (on scores), as TSB-AD 1.5's get_metrics computes them
# --------------------------------------------------------------------------------------------


def _ranked_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """True and false positives at each distinct score taken as a threshold, highest first.

    Returns
    -------
    tp, fp : ndarray of shape (K,), float64
        Counts of labelled and unlabelled steps scoring ``>=`` the k-th highest distinct score
        (sklearn's ``_binary_clf_curve``: tied scores enter together).
    """
    order = np.argsort(-scores, kind="mergesort")
    ranked_scores, ranked_labels = scores[order], labels[order]
    last_of_tie = np.append(np.flatnonzero(ranked_scores[1:] != ranked_scores[:-1]), len(scores) - 1)
    tp = np.cumsum(ranked_labels, dtype=np.float64)[last_of_tie]
    return tp, (last_of_tie + 1) - tp


def _precision_recall(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Precision and recall, each of shape (K,), at each distinct score taken as a threshold,
    highest first; None when nothing is labelled."""
    labels, scores = _labels_scores(labels, scores)
    if not labels.any():
        return None
    tp, fp = _ranked_curve(labels, scores)
    return tp / (tp + fp), tp / tp[-1]


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """TSB-AD's AUC-PR: average precision, as sklearn's ``average_precision_score``.

    ``AP = sum_k (R_k - R_{k-1}) P_k`` over the distinct score values taken as thresholds,
    highest first; tied scores enter together. TSB-AD's ``metric_PR`` is sklearn's function.

    Parameters
    ----------
    labels : ndarray of shape (L,), bool or 0/1
    scores : ndarray of shape (L,)
        NaN or -inf (unscored) is replaced by the lowest finite score (see :func:`prepare_scores`).

    Returns
    -------
    float
        NaN when nothing is labelled.
    """
    curve = _precision_recall(labels, scores)
    if curve is None:
        return float("nan")
    precision, recall = curve
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))


def auc_roc(labels: np.ndarray, scores: np.ndarray) -> float:
    """TSB-AD's AUC-ROC: area under the ROC curve, as sklearn's ``roc_auc_score``.

    Trapezoids over the (false-positive rate, true-positive rate) points at each distinct score
    taken as a threshold, from (0, 0); tied scores enter together.

    Parameters
    ----------
    labels : ndarray of shape (L,), bool or 0/1
    scores : ndarray of shape (L,)
        NaN or -inf (unscored) is replaced by the lowest finite score (see :func:`prepare_scores`).

    Returns
    -------
    float
        NaN unless some steps are labelled and some are not.
    """
    labels, scores = _labels_scores(labels, scores)
    if labels.all() or not labels.any():
        return float("nan")
    tp, fp = _ranked_curve(labels, scores)
    tpr = np.concatenate([[0.0], tp / tp[-1]])
    fpr = np.concatenate([[0.0], fp / fp[-1]])
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))


def best_f1(labels: np.ndarray, scores: np.ndarray) -> float:
    """Point-wise F1 at the best threshold, chosen with the labels (an oracle): TSB-AD's Standard-F1.

    TSB-AD's ``metric_PointF1`` with ``preds=None``: over sklearn's ``precision_recall_curve``
    (every distinct score as a threshold, plus its closing point precision 1, recall 0) the
    largest ``2 P R / (P + R + 1e-5)``. The ``1e-5`` is TSB-AD's: the figure is up to about
    ``1e-5`` below the exact best F1. No detector can pick this threshold without the labels, so
    it is reported beside the F1 at the detector's own threshold: the gap between the two is
    what the threshold costs. Parameters and the NaN case as for :func:`average_precision`.
    """
    curve = _precision_recall(labels, scores)
    if curve is None:
        return float("nan")
    precision, recall = curve
    f1 = 2 * (precision * recall) / (precision + recall + 0.00001)
    return float(max(np.max(f1), 0.0))  # the closing point (1, 0) has F1 0


@dataclass(frozen=True)
class Vus:
    """Volumes under the range-based ROC and PR surfaces (see :func:`vus`)."""

    roc: float
    pr: float


def vus(labels: np.ndarray, scores: np.ndarray, window: int = 100, n_thresholds: int = 250) -> Vus:
    """VUS-ROC and VUS-PR exactly as TSB-AD 1.5 computes them (Paparrizos et al., VLDB 2022).

    TSB-AD's ``generate_curve(labels, score, slidingWindow=window, version='opt', thre=n_thresholds)``
    (``basic_metricor.RangeAUC_volume_opt``), which ``get_metrics`` reports as ``VUS-ROC`` and
    ``VUS-PR``, vectorised: one pass per buffer length instead of one per buffer length and
    threshold. For each buffer length ``w`` in ``0 .. window``:

    - **Soft labels.** Each labelled range ``[s, e]`` is widened by ``w // 2`` steps each side,
      the added steps labelled ``sqrt(1 - d / w)`` at distance ``d`` from the range (summed
      where two ranges' buffers meet, capped at 1). The widened ranges, merged where they meet
      or overlap, are the *segments*.
    - **Thresholds.** ``n_thresholds`` of the scores sorted descending, at positions
      ``linspace(0, L - 1, n_thresholds).astype(int)``; a step is predicted when its score is
      ``>=`` the threshold.
    - **Range counts.** ``S`` is the sum of the soft labels of the predicted unlabelled steps,
      ``P`` the number of labelled steps, ``A`` the predicted labelled ones; ``TP = A + S``,
      ``FP = predicted - TP``, ``P' = (2 P + S) / 2`` (TSB-AD's ``P_new``: it depends on the
      threshold). ``recall = min(TP / P', 1) * existence`` with ``existence`` the share of
      segments holding a predicted step, ``FPR = FP / (L - P')``, ``precision = TP / predicted``.
    - **Areas.** ROC: trapezoids over (FPR, recall) from (0, 0) through the thresholds to
      (1, 1). PR: ``sum_k (R_k - R_{k-1}) P_k`` over the thresholds from recall 0 (step-wise,
      as average precision).

    VUS-ROC and VUS-PR are the means of these areas over the ``window + 1`` buffer lengths.
    Results agree with TSB-AD's to about 1e-15 (sums are taken in another order).

    Parameters
    ----------
    labels : ndarray of shape (L,), bool or 0/1
    scores : ndarray of shape (L,)
        NaN or -inf (unscored) is replaced by the lowest finite score (see :func:`prepare_scores`),
        so unscored steps are predicted only at the lowest threshold. TSB-AD takes no NaN.
    window : int >= 0
        TSB-AD's ``slidingWindow``: the largest buffer length. ``get_metrics`` defaults to 100;
        TSB-AD's benchmark passes :func:`find_length_rank` of the series' first channel.
    n_thresholds : int >= 1
        TSB-AD's ``thre``.

    Returns
    -------
    Vus
        Both NaN when no step is labelled or every step is (TSB-AD fails on both).
    """
    if not (isinstance(window, (int, np.integer)) and window >= 0):
        raise ValueError(f"window must be an int >= 0; got {window!r}")
    if not (isinstance(n_thresholds, (int, np.integer)) and n_thresholds >= 1):
        raise ValueError(f"n_thresholds must be an int >= 1; got {n_thresholds!r}")
    labels, scores = _labels_scores(labels, scores)
    n = len(labels)
    if not labels.any() or labels.all():
        return Vus(float("nan"), float("nan"))
    window, n_thresholds = int(window), int(n_thresholds)
    starts, ends = true_runs(labels)
    n_labelled = float(labels.sum())

    thresholds = (-np.sort(-scores))[np.linspace(0, n - 1, n_thresholds).astype(int)]  # (T,), descending
    n_pred = (n - np.searchsorted(np.sort(scores), thresholds, side="left")).astype(np.float64)
    # The first threshold (index into `thresholds`) at which each step is predicted; T = never.
    first = np.searchsorted(-thresholds, -scores, side="left")  # (L,)

    def by_threshold(steps: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """Per threshold, the count (or sum of weights) of `steps` predicted there: shape (T,)."""
        return np.cumsum(np.bincount(first[steps], weights=weights, minlength=n_thresholds + 1))[:n_thresholds]

    tp_labelled = by_threshold(np.flatnonzero(labels))  # A, shape (T,)
    soft = np.zeros((window + 1, n_thresholds))  # S per buffer length and threshold
    existence = np.zeros((window + 1, n_thresholds))
    # Steps any buffer can reach, outside the labelled ranges, each with a slot.
    reach = _buffer_candidates(starts, ends, n, window // 2, window)[0]
    zone = np.unique(reach[~labels[reach]]) if len(reach) else reach
    slot = np.full(n, -1, dtype=np.int64)
    slot[zone] = np.arange(len(zone))
    first_sentinel = np.append(first, n_thresholds)  # reduceat may index one past the end
    found_by_half: dict[int, np.ndarray] = {}
    for w in range(window + 1):
        half = w // 2
        if half:
            positions, values = _buffer_candidates(starts, ends, n, half, w)
            outside = ~labels[positions]
            # bincount adds in input order: the order of TSB-AD's successive `+=` per range.
            totals = np.bincount(slot[positions[outside]], weights=values[outside], minlength=len(zone))
            soft[w] = by_threshold(zone, np.minimum(totals, 1.0))
        if half not in found_by_half:
            # Segments: ranges merged where their widened extents meet (TSB-AD's new_sequence).
            breaks = ends[:-1] + half < starts[1:] - half
            seg_start = np.concatenate([[max(starts[0] - half, 0)], starts[1:][breaks] - half])
            seg_end = np.concatenate([ends[:-1][breaks] + half, [min(ends[-1] + half, n - 1)]])
            bounds = np.stack([seg_start, seg_end + 1], axis=1).ravel()
            seg_first = np.minimum.reduceat(first_sentinel, bounds)[::2]
            found = np.cumsum(np.bincount(seg_first, minlength=n_thresholds + 1))[:n_thresholds]
            found_by_half[half] = found / len(seg_start)
        existence[w] = found_by_half[half]

    tp = tp_labelled + soft  # (W + 1, T)
    p_new = (n_labelled + (n_labelled + soft)) / 2
    tpr = np.minimum(tp / p_new, 1.0) * existence
    fpr = (n_pred - tp) / (n - p_new)
    precision = tp / n_pred
    edge = np.zeros((window + 1, 1))
    tpr_roc = np.hstack([edge, tpr, edge + 1.0])
    fpr_roc = np.hstack([edge, fpr, edge + 1.0])
    roc = np.sum(np.diff(fpr_roc, axis=1) * (tpr_roc[:, 1:] + tpr_roc[:, :-1]) / 2, axis=1)
    pr = np.sum(np.diff(np.hstack([edge, tpr]), axis=1) * precision, axis=1)
    return Vus(float(np.sum(roc) / (window + 1)), float(np.sum(pr) / (window + 1)))


def vus_pr(labels: np.ndarray, scores: np.ndarray, window: int = 100, n_thresholds: int = 250) -> float:
    """TSB-AD's VUS-PR: ``vus(labels, scores, window, n_thresholds).pr`` (see :func:`vus`)."""
    return vus(labels, scores, window, n_thresholds).pr


def vus_roc(labels: np.ndarray, scores: np.ndarray, window: int = 100, n_thresholds: int = 250) -> float:
    """TSB-AD's VUS-ROC: ``vus(labels, scores, window, n_thresholds).roc`` (see :func:`vus`)."""
    return vus(labels, scores, window, n_thresholds).roc


def _buffer_candidates(
    starts: np.ndarray,
    ends: np.ndarray,
    n: int,
    half: int,
    w: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The soft-label increments of TSB-AD's ``sequencing`` for buffer length ``w``, in its order.

    Range by range: the ``half`` steps after it (``sqrt(1 - d / w)`` at distance ``d``), then
    the ``half`` steps before it; steps outside ``0 .. n - 1`` dropped.

    Returns
    -------
    positions : ndarray of shape (K,), int
    values : ndarray of shape (K,), float64
    """
    if half == 0:
        return np.empty(0, dtype=np.int64), np.empty(0)
    d = np.arange(1, half + 1)
    ramp = np.sqrt(1 - d / w)  # (half,)
    after = ends[:, None] + d  # (E, half)
    before = starts[:, None] - d
    positions = np.concatenate([after, before], axis=1).ravel()
    values = np.broadcast_to(np.concatenate([ramp, ramp]), (len(starts), 2 * half)).ravel()
    inside = (positions >= 0) & (positions < n)
    return positions[inside], values[inside]


def prepare_scores(scores: np.ndarray) -> np.ndarray:
    """Scores as the threshold-free metrics take them: NaN and -inf set to the lowest finite score.

    Unscored steps (the detector's warm-up, gaps; NaN, or -inf as some callers mark them) so
    rank with the lowest score: predicted only at the lowest threshold. TSB-AD takes no NaN;
    pass it these scores to get the same figures. With no finite score at all, every score is 0.

    Parameters
    ----------
    scores : ndarray of shape (L,)

    Returns
    -------
    ndarray of shape (L,), float64

    Raises
    ------
    ValueError
        For +inf: a score above every other is a bug upstream, not an unscored step.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if np.isposinf(scores).any():
        raise ValueError("scores must not be +inf")
    unscored = ~np.isfinite(scores)
    if not unscored.any():
        return scores
    finite = scores[~unscored]
    return np.where(unscored, finite.min() if len(finite) else 0.0, scores)


# --------------------------------------------------------------------------------------------
# The window TSB-AD's benchmark gives VUS
# --------------------------------------------------------------------------------------------


def find_length_rank(data: np.ndarray, rank: int = 1) -> int:
    """The series' period from its autocorrelation: TSB-AD 1.5's ``find_length_rank``, exactly.

    TSB-AD's benchmark passes this, for the series' first channel, as ``slidingWindow`` to
    ``get_metrics`` (``find_length_rank(data[:, 0].reshape(-1, 1), rank=1)`` in
    ``benchmark_exp/Run_Detector_M.py``). On the first 20 000 values: the autocorrelation at
    lags 3 .. 400 (statsmodels' ``acf(fft=True)``, reimplemented here), its local maxima
    (strictly above both neighbours), ranked by height. ``rank=1``: the highest; ``rank=2``:
    the highest at a larger lag than that (TSB-AD orders by position in the list of maxima);
    ``rank=3``: TSB-AD's own rule for a third. That maximum's lag is returned, or 125 when there
    is no local maximum (a constant series, NaN in the data) or its lag is below 6 or above 303.

    Parameters
    ----------
    data : ndarray of shape (L,) or (L, 1)
        One channel. TSB-AD returns 0 for more than one channel (shape (L, D), D > 1), and so
        does this: pass the channel to measure.
    rank : int
        0 returns 1; 1, 2, 3 as above; TSB-AD treats any other value as 1.

    Returns
    -------
    int
        The window, in steps.
    """
    data = np.asarray(data, dtype=np.float64).squeeze()
    if data.ndim > 1:
        return 0
    if rank == 0:
        return 1
    if data.ndim == 0 or len(data) == 0:
        raise ValueError(f"find_length_rank needs a non-empty series; got shape {np.shape(data)}")
    base = 3
    with np.errstate(invalid="ignore", divide="ignore"):
        auto_corr = _acf(data[: min(20000, len(data))], nlags=400)[base:]
    inner = auto_corr[1:-1]
    local_max = np.flatnonzero((inner > auto_corr[:-2]) & (inner > auto_corr[2:])) + 1
    if not len(local_max):
        return 125
    ranked = np.argsort(auto_corr[local_max])[::-1]  # TSB-AD's sort: positions in local_max
    chosen = ranked[0]
    if rank == 2:
        chosen = next((i for i in ranked[1:] if i > ranked[0]), chosen)
    if rank == 3:
        second = next((i for i in ranked[1:] if i > ranked[0]), None)
        if second is None:
            return 125  # TSB-AD: a NameError, caught by its bare except
        # TSB-AD indexes its ranking by a position in local_max here; kept as it is.
        chosen = next((i for i in ranked[second:] if i > ranked[second]), chosen)
    lag = int(local_max[chosen])
    if lag < 3 or lag > 300:
        return 125
    return lag + base


def _acf(x: np.ndarray, nlags: int) -> np.ndarray:
    """statsmodels' ``acf(x, nlags=nlags, fft=True)`` (biased, demeaned): shape (min(nlags + 1, L),)."""
    nobs = len(x)
    xo = x - x.mean()
    spectrum = np.fft.fft(xo, n=_next_regular(2 * nobs + 1))
    divisor = nobs * np.ones(2 * nobs - 1)
    acov = (np.fft.ifft(spectrum * np.conjugate(spectrum))[:nobs] / divisor[nobs - 1 :]).real
    return acov[: nlags + 1] / acov[0]


def _next_regular(target: int) -> int:
    """The smallest 5-smooth number (2^a 3^b 5^c) >= target, as statsmodels/scipy pick FFT sizes."""
    if target <= 6 or not (target & (target - 1)):
        return target
    best = 2 ** (target - 1).bit_length()
    p5 = 1
    while p5 < target:
        p35 = p5
        while p35 < target:
            quotient = -(-target // p35)
            best = min(best, 2 ** (quotient - 1).bit_length() * p35)
            p35 *= 3
        best = min(best, p35)
        p5 *= 5
    return min(best, p5)


# --------------------------------------------------------------------------------------------
# All at once, and what trivial detectors get
# --------------------------------------------------------------------------------------------


def evaluate_scores(
    labels: np.ndarray,
    scores: np.ndarray,
    flags: np.ndarray,
    *,
    gap: int = 0,
    vus_window: int = 100,
    segments: Sequence[int] | None = None,
) -> dict[str, float]:
    """Every metric for one labelled series, or for several pooled (``segments``).

    Parameters
    ----------
    labels : ndarray of shape (L,), bool or 0/1
    scores : ndarray of shape (L,)
        NaN (or -inf) for unscored steps: the threshold-free metrics give them the lowest
        finite score (:func:`prepare_scores`).
    flags : ndarray of shape (L,), bool or 0/1
        The detector's own decisions, at its own threshold.
    gap : int >= 0
        Merging gap for predicted events (:func:`event_precision`).
    vus_window : int >= 0
        TSB-AD's ``slidingWindow`` for :func:`vus`. 100 is ``get_metrics``' default; TSB-AD's
        benchmark passes :func:`find_length_rank` of the series' first channel.
    segments : sequence of int, optional
        The lengths of the series whose rows ``labels`` holds one after another (summing to L):
        labelled and predicted events end where their series does, so that two series'
        events that meet at the seam count apart. Point-wise and threshold-free figures are
        those of the rows pooled (VUS's buffers may reach across a seam, by at most
        ``vus_window`` rows). Default: one series.

    Returns
    -------
    dict
        At the detector's threshold: ``point_precision``, ``point_recall``, ``point_f1``,
        ``event_recall``, ``event_precision``, ``event_f1``, ``point_adjusted_f1_inflated``,
        ``far``, ``mar`` (fractions, not percent) and ``flag_rate`` (share of steps flagged).
        From the scores, as TSB-AD's ``get_metrics``: ``best_f1`` (its Standard-F1, at the best
        threshold given the labels), ``average_precision`` (its AUC-PR), ``auc_roc``, ``vus_pr``
        and ``vus_roc``. Undefined values are NaN.
    """
    labels, flags = _labels_flags(labels, flags)
    point = point_metrics(labels, flags)
    volumes = vus(labels, scores, window=vus_window)
    ends = np.cumsum(segments) if segments is not None else np.array([len(labels)])
    if ends[-1] != len(labels) or (np.diff(ends, prepend=0) < 0).any():
        raise ValueError(f"segments must be lengths summing to the {len(labels)} labels; got {list(segments or ())}")
    parts = [slice(start, end) for start, end in zip([0, *ends[:-1]], ends)]
    found = np.concatenate([event_recall(labels[part], flags[part])[1] for part in parts])
    hits = np.concatenate([_stretch_hits(labels[part], flags[part], gap) for part in parts])
    recall = float(found.mean()) if len(found) else float("nan")
    precision = float(hits.mean()) if len(hits) else float("nan")
    adjusted = np.concatenate([_point_adjusted(labels[part], flags[part]) for part in parts])
    return {
        "point_precision": point.precision,
        "point_recall": point.recall,
        "point_f1": point.f1,
        "best_f1": best_f1(labels, scores),
        "event_recall": recall,
        "event_precision": precision,
        "event_f1": _event_f1(recall, precision),
        "average_precision": average_precision(labels, scores),
        "auc_roc": auc_roc(labels, scores),
        "vus_pr": volumes.pr,
        "vus_roc": volumes.roc,
        "point_adjusted_f1_inflated": point_metrics(labels, adjusted).f1,
        "far": false_alarm_rate(labels, flags),
        "mar": missed_alarm_rate(labels, flags),
        "flag_rate": float(flags.mean()) if len(flags) else float("nan"),
    }


def trivial_baselines(
    labels: np.ndarray,
    rng_seed: int = 0,
    flag_rate: float | None = None,
    *,
    gap: int = 0,
    vus_window: int = 100,
    segments: Sequence[int] | None = None,
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
    gap, vus_window, segments
        As for :func:`evaluate_scores`.

    Returns
    -------
    dict
        ``"flag_everything"``: constant scores, every step flagged (what TSB-AD gives a
        constant score). ``"random"``: i.i.d. uniform scores, the steps scoring above
        ``1 - flag_rate`` flagged.
    """
    labels = _as_bool(labels, "labels")
    n = len(labels)
    if flag_rate is None:
        flag_rate = float(labels.mean()) if n else 0.0
    if not 0.0 <= flag_rate <= 1.0:
        raise ValueError(f"flag_rate must be in [0, 1]; got {flag_rate}")
    random_scores = np.random.default_rng(rng_seed).random(n)
    # Exactly as many rows as the rate says (not a binomial draw of them): like for like.
    random_flags = np.zeros(n, dtype=bool)
    random_flags[np.argsort(-random_scores, kind="stable")[: int(round(flag_rate * n))]] = True
    options = dict(gap=gap, vus_window=vus_window, segments=segments)
    return {
        "flag_everything": evaluate_scores(labels, np.ones(n), np.ones(n, dtype=bool), **options),
        "random": evaluate_scores(labels, random_scores, random_flags, **options),
    }
