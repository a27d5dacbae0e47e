import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from anomaly.metrics import (
    average_precision,
    evaluate_scores,
    event_f1,
    event_precision,
    event_recall,
    false_alarm_rate,
    missed_alarm_rate,
    point_adjusted_f1,
    point_metrics,
    trivial_baselines,
    vus_pr,
)

# Hand-checked case: labels mark two events, [2..4] and [8..9].
LABELS = np.array([0, 0, 1, 1, 1, 0, 0, 0, 1, 1], dtype=bool)
FLAGS = np.array([1, 0, 0, 1, 0, 0, 0, 0, 0, 0], dtype=bool)


def test_point_metrics_by_hand():
    m = point_metrics(LABELS, FLAGS)  # tp = 1 (step 3), fp = 1 (step 0), fn = 4
    assert (m.true_positives, m.false_positives, m.false_negatives) == (1, 1, 4)
    assert m.precision == pytest.approx(0.5) and m.recall == pytest.approx(0.2)
    assert m.f1 == pytest.approx(2 * 0.5 * 0.2 / 0.7)


def test_event_recall_and_precision_by_hand():
    recall, found = event_recall(LABELS, FLAGS)
    assert recall == 0.5 and found.tolist() == [True, False]
    assert event_precision(LABELS, FLAGS) == 0.5  # stretches [0] (false) and [3] (true)


def test_event_f1_by_hand():
    # Recall 1/2 (event [2..4] found, [8..9] missed), precision 1/2 -> F1 1/2.
    assert event_f1(LABELS, FLAGS) == pytest.approx(0.5)
    # gap 2 merges the flags at 0 and 3 (steps 1, 2 between) into one predicted event [0..3],
    # which overlaps [2..4]: precision 1, recall 1/2 -> F1 = 2 * 1 * 0.5 / 1.5 = 2/3.
    assert event_precision(LABELS, FLAGS, gap=2) == 1.0
    assert event_f1(LABELS, FLAGS, gap=2) == pytest.approx(2 / 3)


def test_far_and_mar_by_hand():
    # Normal steps 0, 1, 5, 6, 7: step 0 flagged -> FAR = FP / (FP + TN) = 1 / 5.
    assert false_alarm_rate(LABELS, FLAGS) == pytest.approx(0.2)
    # Anomalous steps 2, 3, 4, 8, 9: only 3 flagged -> MAR = FN / (FN + TP) = 4 / 5.
    assert missed_alarm_rate(LABELS, FLAGS) == pytest.approx(0.8)


def test_point_adjustment_inflates():
    # Adjusted flags: step 0 and all of [2..4] -> tp 3, fp 1, fn 2 -> P 0.75, R 0.6
    assert point_adjusted_f1(LABELS, FLAGS) == pytest.approx(2 * 0.75 * 0.6 / 1.35)
    assert point_adjusted_f1(LABELS, FLAGS) > point_metrics(LABELS, FLAGS).f1


def test_degenerate_cases():
    none = np.zeros(10, dtype=bool)
    assert point_metrics(LABELS, none).precision == 0.0
    assert np.isnan(event_precision(LABELS, none))
    assert np.isnan(event_recall(none, FLAGS)[0])
    assert point_metrics(LABELS, ~none).recall == 1.0  # flag everything
    assert event_f1(LABELS, none) == 0.0  # events labelled, none flagged
    assert np.isnan(event_f1(none, FLAGS))  # nothing labelled
    assert np.isnan(false_alarm_rate(~none, FLAGS)) and np.isnan(missed_alarm_rate(none, FLAGS))
    assert np.isnan(average_precision(none, np.arange(10.0)))
    assert np.isnan(vus_pr(none, np.arange(10.0)))


def test_labels_may_be_ints_or_bools_but_nothing_else():
    ints = LABELS.astype(int)
    assert point_metrics(ints, FLAGS.astype(int)) == point_metrics(LABELS, FLAGS)
    assert evaluate_scores(ints, np.arange(10.0), FLAGS.astype(float)) == pytest.approx(
        evaluate_scores(LABELS, np.arange(10.0), FLAGS), nan_ok=True)
    with pytest.raises(ValueError, match="0/1"):
        point_metrics(np.array([0, 2, 1]), np.array([0, 1, 1]))
    with pytest.raises(ValueError, match="same length"):
        point_metrics(LABELS, FLAGS[:5])


# ---- average precision -----------------------------------------------------------------------


def test_average_precision_by_hand():
    labels = np.array([0, 1, 1, 0, 0])
    scores = np.array([0.1, 0.9, 0.3, 0.5, 0.0])
    # Ranked: 0.9 (+), 0.5 (-), 0.3 (+), 0.1, 0.0. Thresholds give (R, P): (1/2, 1), (1/2, 1/2),
    # (1, 2/3), (1, 1/2), (1, 2/5). AP = 1/2 * 1 + 0 * 1/2 + 1/2 * 2/3 + 0 + 0 = 5/6.
    assert average_precision(labels, scores) == pytest.approx(5 / 6)
    # Ties enter together: one threshold, P = 1/2, R = 1 -> AP = 1/2.
    assert average_precision(np.array([1, 0, 0]), np.array([1.0, 1.0, 0.0])) == pytest.approx(0.5)
    # NaN ranks lowest: 0.5 (+), 0.2 (-), NaN (+) -> 1/2 * 1 + 0 + 1/2 * 2/3 = 5/6.
    assert average_precision(np.array([1, 0, 1]), np.array([0.5, 0.2, np.nan])) == pytest.approx(5 / 6)


@pytest.mark.parametrize("seed", range(10))
def test_average_precision_equals_sklearn(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 2_000))
    labels = rng.random(n) < rng.uniform(0.01, 0.5)
    labels[rng.integers(n)] = True
    # Rounded scores make many ties; NaN is ranked lowest, as -1 is for sklearn.
    scores = np.round(rng.random(n), 2 if seed % 2 else 8)
    scores[rng.random(n) < 0.05] = np.nan
    expected = average_precision_score(labels, np.nan_to_num(scores, nan=-1.0))
    assert average_precision(labels, scores) == pytest.approx(expected, abs=1e-12)


# ---- VUS-PR ----------------------------------------------------------------------------------


def _naive_vus_pr(labels: np.ndarray, scores: np.ndarray, max_buffer: int, n_thresholds: int = 250) -> float:
    """VUS-PR step by step, one threshold and one labelled range at a time, as the reference
    code (TheDatumOrg/VUS ``RangeAUC_volume_opt``) computes it."""
    labels = labels.astype(float)
    scores = np.where(np.isnan(scores), -np.inf, scores)
    n = len(labels)
    ranges, i = [], 0
    while i < n:
        if labels[i]:
            j = i
            while j + 1 < n and labels[j + 1]:
                j += 1
            ranges.append((i, j))
            i = j + 1
        else:
            i += 1
    ordered = -np.sort(-scores)
    areas = []
    for w in range(max_buffer + 1):
        half = w // 2
        soft = labels.copy()
        for s, e in ranges:
            for x in range(e + 1, min(e + half + 1, n)):
                soft[x] += np.sqrt(1 - (x - e) / w)
            for x in range(max(s - half, 0), s):
                soft[x] += np.sqrt(1 - (s - x) / w)
        soft = np.minimum(soft, 1.0)
        widened, a = [], max(ranges[0][0] - half, 0)
        for k in range(len(ranges) - 1):
            if ranges[k][1] + half < ranges[k + 1][0] - half:
                widened.append((a, ranges[k][1] + half))
                a = ranges[k + 1][0] - half
        widened.append((a, min(ranges[-1][1] + half, n - 1)))
        p_new = (labels.sum() + soft.sum()) / 2
        points = [(0.0, 1.0)]
        for i in np.linspace(0, n - 1, n_thresholds).astype(int):
            predicted = scores >= ordered[i]
            tp = float(np.dot(soft, predicted))
            existence = sum(np.dot(soft[a : b + 1], predicted[a : b + 1]) > 0 for a, b in widened) / len(widened)
            points.append((min(tp / p_new, 1.0) * existence, tp / predicted.sum()))
        areas.append(sum((r1 - r0) * (p1 + p0) / 2 for (r0, p0), (r1, p1) in zip(points, points[1:])))
    return float(np.mean(areas))


def test_vus_pr_by_hand():
    labels = np.array([0, 1, 1, 0, 0])
    scores = np.array([0.1, 0.9, 0.3, 0.5, 0.0])
    # Buffer 0 (and 1: 1 // 2 = 0, no widening). Range recall = TP / P * existence (1 range):
    # thresholds 0.9, 0.5, 0.3, 0.1, 0.0 give (R, P) = (1/2, 1), (1/2, 1/2), (1, 2/3), (1, 1/2),
    # (1, 2/5); trapezoids from (0, 1): 1/2 * (1 + 1) / 2 + 0 + 1/2 * (1/2 + 2/3) / 2 = 19/24.
    assert vus_pr(labels, scores, max_buffer=0) == pytest.approx(19 / 24)
    # Buffer 2 widens [1, 2] by 1: soft labels [0.70711, 1, 1, 0.70711, 0] (sqrt(1 - 1/2)),
    # sum 3.41421, P_new = (2 + 3.41421) / 2 = 2.70711.
    # (R, P): {1}: TP 1 -> (0.36940, 1); {1, 3}: TP 1.70711 -> (0.63060, 0.85355);
    # {1, 3, 2}: TP 2.70711 -> (1, 0.90237); then R stays 1.
    # Area = 0.36940 * (1 + 1) / 2 + 0.26120 * (1 + 0.85355) / 2 + 0.36940 * (0.85355 + 0.90237) / 2
    #      = 0.36940 + 0.24208 + 0.32432 = 0.93579.  VUS-PR = (19/24 + 19/24 + 0.93579) / 3.
    ap2 = 0.36940 + 0.24208 + 0.32432
    assert vus_pr(labels, scores, max_buffer=2) == pytest.approx((2 * 19 / 24 + ap2) / 3, abs=1e-4)


@pytest.mark.parametrize("seed", range(12))
def test_vus_pr_equals_the_step_by_step_reference_computation(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 400))
    labels = np.repeat(rng.random(n) < 0.05, rng.integers(1, 6))[:n]  # ranges of varied length
    labels[rng.integers(n)] = True
    scores = np.round(rng.random(n), 1 if seed % 3 == 0 else 6) + 0.5 * labels * rng.random()
    scores[rng.random(n) < 0.05] = np.nan
    max_buffer = int(rng.integers(0, 20))
    assert vus_pr(labels, scores, max_buffer=max_buffer) == pytest.approx(
        _naive_vus_pr(labels, scores, max_buffer), abs=1e-12)


def test_vus_pr_rewards_scores_near_the_labelled_range():
    # A detector whose score peaks just after the labelled range gets nothing from point-wise
    # AP but a good VUS-PR: the buffer is what VUS adds.
    labels = np.zeros(300, dtype=bool)
    labels[100:110] = True
    late = np.zeros(300)
    late[110:113] = 1.0
    assert average_precision(labels, late) < 0.1
    assert vus_pr(labels, late, max_buffer=20) > 0.3


# ---- everything at once, and trivial baselines --------------------------------------------------


def test_evaluate_scores_by_hand():
    scores = np.array([0.9, 0.1, 0.2, 0.8, 0.3, 0.0, 0.0, 0.0, 0.1, 0.1])
    result = evaluate_scores(LABELS, scores, FLAGS)
    assert set(result) == {
        "point_precision", "point_recall", "point_f1", "event_recall", "event_precision", "event_f1",
        "average_precision", "vus_pr", "point_adjusted_f1_inflated", "far", "mar", "flag_rate",
    }
    assert result["point_precision"] == pytest.approx(0.5) and result["point_recall"] == pytest.approx(0.2)
    assert result["event_recall"] == 0.5 and result["event_precision"] == 0.5 and result["event_f1"] == 0.5
    assert result["far"] == pytest.approx(0.2) and result["mar"] == pytest.approx(0.8)
    assert result["flag_rate"] == pytest.approx(0.2)
    assert result["point_adjusted_f1_inflated"] == pytest.approx(point_adjusted_f1(LABELS, FLAGS))
    assert result["average_precision"] == pytest.approx(average_precision_score(LABELS, scores))


def test_flag_everything_baseline_by_hand():
    result = trivial_baselines(LABELS)["flag_everything"]
    # 5 of 10 steps labelled: P = 0.5, R = 1, F1 = 2/3; one predicted event overlapping both
    # labelled ones; every normal step flagged (FAR 1), none missed (MAR 0); constant scores
    # are one threshold: AP = P = 0.5.
    assert result["point_precision"] == 0.5 and result["point_recall"] == 1.0
    assert result["point_f1"] == pytest.approx(2 / 3)
    assert result["event_recall"] == 1.0 and result["event_precision"] == 1.0 and result["event_f1"] == 1.0
    assert result["far"] == 1.0 and result["mar"] == 0.0
    assert result["average_precision"] == pytest.approx(0.5)
    assert result["flag_rate"] == 1.0


def test_random_baseline_flags_at_the_requested_rate_and_is_reproducible():
    rng = np.random.default_rng(5)
    labels = np.zeros(20_000, dtype=bool)
    for start in rng.choice(19_900, 40, replace=False):
        labels[start : start + 20] = True
    baselines = trivial_baselines(labels, rng_seed=1, flag_rate=0.05)
    random = baselines["random"]
    assert random["flag_rate"] == pytest.approx(0.05, abs=0.005)
    # No skill: AP near the share of labelled steps; point-adjusted F1 far above point F1.
    assert random["average_precision"] == pytest.approx(labels.mean(), abs=0.02)
    assert random["point_adjusted_f1_inflated"] > 2 * random["point_f1"]
    assert trivial_baselines(labels, rng_seed=1, flag_rate=0.05)["random"] == pytest.approx(random)
    # Without a flag rate, the random detector flags as often as steps are labelled.
    assert trivial_baselines(labels)["random"]["flag_rate"] == pytest.approx(labels.mean(), abs=0.005)
    with pytest.raises(ValueError, match="flag_rate"):
        trivial_baselines(labels, flag_rate=1.5)


def test_vus_pr_with_ranges_at_both_ends_and_close_together():
    # Buffers clipped at the series' ends, and buffers of neighbouring ranges that overlap
    # (summed, capped at 1) and merge the widened ranges.
    labels = np.zeros(60, dtype=bool)
    labels[[0, 1, 20, 24, 25, 58, 59]] = True
    scores = np.random.default_rng(0).random(60)
    for max_buffer in (0, 3, 8, 30):
        assert vus_pr(labels, scores, max_buffer=max_buffer) == pytest.approx(
            _naive_vus_pr(labels, scores, max_buffer), abs=1e-12)
