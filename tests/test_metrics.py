import importlib.util
import json
import time
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

from anomaly.evaluation.metrics import (
    auc_roc,
    average_precision,
    best_f1,
    evaluate_scores,
    event_f1,
    event_precision,
    event_recall,
    false_alarm_rate,
    find_length_rank,
    missed_alarm_rate,
    point_adjusted_f1,
    point_metrics,
    prepare_scores,
    trivial_baselines,
    vus,
    vus_pr,
    vus_roc,
)

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "tsb_ad_metrics.json"

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
    unlabelled = point_metrics(none, FLAGS)  # nothing to find: recall and F1 say nothing
    assert unlabelled.precision == 0.0 and np.isnan(unlabelled.recall) and np.isnan(unlabelled.f1)
    assert np.isnan(point_adjusted_f1(none, FLAGS))
    assert np.isnan(false_alarm_rate(~none, FLAGS)) and np.isnan(missed_alarm_rate(none, FLAGS))
    assert np.isnan(average_precision(none, np.arange(10.0)))
    assert np.isnan(best_f1(none, np.arange(10.0)))
    # TSB-AD fails on a series with no labelled step, or with every step labelled.
    for labels in (none, ~none):
        assert np.isnan(vus_pr(labels, np.arange(10.0))) and np.isnan(vus_roc(labels, np.arange(10.0)))
        assert np.isnan(auc_roc(labels, np.arange(10.0)))


def test_labels_may_be_ints_or_bools_but_nothing_else():
    ints = LABELS.astype(int)
    assert point_metrics(ints, FLAGS.astype(int)) == point_metrics(LABELS, FLAGS)
    assert evaluate_scores(ints, np.arange(10.0), FLAGS.astype(float)) == pytest.approx(
        evaluate_scores(LABELS, np.arange(10.0), FLAGS), nan_ok=True
    )
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
    # NaN takes the lowest finite score, 0.2: 0.5 (+), then 0.2 (-) and NaN (+) tied -> 1/2 * 1 + 1/2 * 2/3.
    assert average_precision(np.array([1, 0, 1]), np.array([0.5, 0.2, np.nan])) == pytest.approx(5 / 6)


@pytest.mark.parametrize("seed", range(10))
def test_auc_pr_roc_and_best_f1_equal_sklearn_as_tsb_ad_uses_it(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 2_000))
    labels = rng.random(n) < rng.uniform(0.01, 0.5)
    labels[rng.integers(n)] = True
    labels[rng.integers(n)] = False
    # Rounded scores make many ties; NaN is set to the lowest finite score first.
    scores = np.round(rng.random(n), 2 if seed % 2 else 8)
    scores[rng.random(n) < 0.05] = np.nan
    given = np.where(np.isnan(scores), np.nanmin(scores), scores)
    assert average_precision(labels, scores) == pytest.approx(average_precision_score(labels, given), abs=1e-12)
    assert auc_roc(labels, scores) == pytest.approx(roc_auc_score(labels, given), abs=1e-12)
    # TSB-AD's metric_PointF1 with preds=None, word for word.
    precision, recall, _ = precision_recall_curve(labels, given)
    expected_f1 = np.max(2 * (precision * recall) / (precision + recall + 0.00001))
    assert best_f1(labels, scores) == pytest.approx(expected_f1, abs=1e-12)


def test_unscored_steps_take_the_lowest_finite_score():
    assert prepare_scores(np.array([0.5, np.nan, -np.inf, 0.2])).tolist() == [0.5, 0.2, 0.2, 0.2]
    assert prepare_scores(np.array([np.nan, np.nan])).tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="inf"):
        prepare_scores(np.array([0.5, np.inf]))
    rng = np.random.default_rng(0)
    labels = np.zeros(300, dtype=bool)
    labels[[3, 4, 5, 100, 101, 250]] = True
    scores = rng.random(300) + labels
    scores[:40] = np.nan  # a warm-up
    filled = np.where(np.isnan(scores), np.nanmin(scores), scores)
    marked = np.where(np.isnan(scores), -np.inf, scores)
    for metric in (average_precision, auc_roc, best_f1, vus_pr, vus_roc):
        assert metric(labels, scores) == metric(labels, filled) == metric(labels, marked)


# ---- VUS and the window, against TSB-AD ------------------------------------------------------


def _fixture_builders():
    """The fixture's generator (benchmarks/peers/make_metric_fixtures.py): it rebuilds the
    inputs with numpy alone; tsb-ad is only imported when it writes the fixture."""
    spec = importlib.util.spec_from_file_location(
        "make_metric_fixtures", ROOT / "benchmarks" / "peers" / "make_metric_fixtures.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FIXTURES = json.loads(FIXTURE.read_text())
BUILDERS = _fixture_builders()
CASES = {case["name"]: case for case in BUILDERS.metric_cases(FIXTURES["demo_window"])}
SERIES = {item["name"]: item for item in BUILDERS.period_series()}


def test_the_fixture_covers_what_it_should():
    names = [case["name"] for case in FIXTURES["cases"]]
    assert sorted(names) == sorted(CASES) and len(names) >= 10
    assert sorted(item["name"] for item in FIXTURES["series"]) == sorted(SERIES)
    assert FIXTURES["tsb_ad"] == "1.5"
    rows = {case["name"]: case["rows"] for case in FIXTURES["cases"]}
    assert min(rows.values()) <= 50 and max(rows.values()) >= 2880


@pytest.mark.parametrize("name", [case["name"] for case in FIXTURES["cases"]])
def test_threshold_free_metrics_equal_tsb_ad_get_metrics(name):
    stored = next(case for case in FIXTURES["cases"] if case["name"] == name)
    case = CASES[name]
    # The rebuilt inputs are the ones TSB-AD measured (else the generator or numpy changed).
    assert BUILDERS.digest(case["labels"]) == stored["labels_sha256"]
    assert BUILDERS.digest(case["scores"]) == stored["scores_sha256"]
    labels, scores = case["labels"], case["scores"]
    assert sorted(int(w) for w in stored["windows"]) == sorted(case["windows"])
    for window, expected in stored["windows"].items():
        volumes = vus(labels, scores, window=int(window), n_thresholds=stored["thre"])
        ours = {
            "AUC-PR": average_precision(labels, scores),
            "AUC-ROC": auc_roc(labels, scores),
            "VUS-PR": volumes.pr,
            "VUS-ROC": volumes.roc,
            "Standard-F1": best_f1(labels, scores),
        }
        for metric, value in expected.items():
            assert ours[metric] == pytest.approx(value, abs=1e-9, rel=0), (name, window, metric)


@pytest.mark.parametrize("name", [item["name"] for item in FIXTURES["series"]])
def test_find_length_rank_equals_tsb_ad(name):
    stored = next(item for item in FIXTURES["series"] if item["name"] == name)
    data = SERIES[name]["data"]
    assert BUILDERS.digest(data) == stored["sha256"] and list(data.shape) == stored["shape"]
    for rank, expected in stored["find_length_rank"].items():
        assert find_length_rank(data, rank=int(rank)) == expected, (name, rank)


def test_the_demo_window_is_find_length_rank_of_its_first_column():
    features, _ = BUILDERS.read_demo()
    assert find_length_rank(features[:, 0]) == FIXTURES["demo_window"] == 290
    with pytest.raises(ValueError, match="non-empty"):
        find_length_rank(np.array([]))


def test_flag_everything_gets_what_tsb_ad_gives_a_constant_score():
    stored = {case["name"]: case for case in FIXTURES["cases"]}
    labels = CASES["demo_constant"]["labels"]
    for window in (100, FIXTURES["demo_window"]):
        result = trivial_baselines(labels, vus_window=window)["flag_everything"]
        expected = stored["demo_constant"]["windows"][str(window)]
        assert result["vus_pr"] == pytest.approx(expected["VUS-PR"], abs=1e-9)
        assert result["vus_roc"] == pytest.approx(expected["VUS-ROC"], abs=1e-9)
        assert result["average_precision"] == pytest.approx(expected["AUC-PR"], abs=1e-9)
        assert result["best_f1"] == pytest.approx(expected["Standard-F1"], abs=1e-9)
    assert stored["demo_constant"]["windows"]["100"]["VUS-PR"] == pytest.approx(0.364, abs=5e-4)  # the figure


def test_vus_by_hand():
    labels = np.array([0, 1, 1, 0, 0])
    scores = np.array([0.1, 0.9, 0.3, 0.5, 0.0])
    # Buffers 0 and 1 (1 // 2 = 0) widen nothing. One labelled range, so existence is 1 once
    # a step of it is predicted; thresholds 0.9, 0.5, 0.3, 0.1, 0.0 give (R, P) = (1/2, 1),
    # (1/2, 1/2), (1, 2/3), (1, 1/2), (1, 2/5): step-wise area 1/2 * 1 + 1/2 * 2/3 = 5/6, as AP.
    assert vus_pr(labels, scores, window=0) == pytest.approx(5 / 6)
    assert vus_pr(labels, scores, window=1) == pytest.approx(5 / 6)
    assert vus_roc(labels, scores, window=0) == pytest.approx(auc_roc(labels, scores))
    # Buffer 2 widens [1, 2] by one step each side, soft label s = sqrt(1 - 1/2) at 0 and 3.
    # P' = (2 P + S) / 2 with S the soft labels of the predicted unlabelled steps:
    # 0.9 -> {1}: TP 1, P' 2, R 1/2, P 1; 0.5 -> {1, 3}: TP 1 + s, P' (4 + s) / 2, P (1 + s) / 2;
    # 0.3 -> {1, 2, 3}: TP 2 + s > P', R 1, P (2 + s) / 3; then R stays 1.
    s = np.sqrt(0.5)
    r = (1 + s) / ((4 + s) / 2)
    area2 = 0.5 * 1 + (r - 0.5) * (1 + s) / 2 + (1 - r) * (2 + s) / 3
    assert vus_pr(labels, scores, window=2) == pytest.approx((2 * 5 / 6 + area2) / 3)


def test_vus_of_a_constant_score_in_closed_form():
    # Every step predicted at every threshold: TP = P + S, P' = P + S / 2 < TP, so R = 1 and the
    # area is the precision (P + S_w) / L, S_w the sum of buffer w's soft labels.
    labels = np.zeros(60, dtype=bool)
    labels[[0, 1, 20, 24, 25, 58, 59]] = True
    window = 9
    total = 0.0
    for w in range(window + 1):
        soft = labels.astype(float)
        for start, end in ((0, 1), (20, 20), (24, 25), (58, 59)):
            for x in range(end + 1, min(end + w // 2 + 1, 60)):
                soft[x] += np.sqrt(1 - (x - end) / w)
            for x in range(max(start - w // 2, 0), start):
                soft[x] += np.sqrt(1 - (start - x) / w)
        total += np.minimum(soft, 1.0).sum() / 60
    assert vus_pr(labels, np.ones(60), window=window) == pytest.approx(total / (window + 1), abs=1e-12)


def test_vus_rewards_scores_near_the_labelled_range():
    # A detector whose score peaks just after the labelled range gets nothing from point-wise
    # AP but a good VUS-PR: the buffer is what VUS adds.
    labels = np.zeros(300, dtype=bool)
    labels[100:110] = True
    late = np.zeros(300)
    late[110:113] = 1.0
    assert average_precision(labels, late) == pytest.approx(1 / 30) == vus_pr(labels, late, window=0)
    assert vus_pr(labels, late, window=20) > 0.2 > 3 * vus_pr(labels, np.zeros(300), window=20)


def test_vus_takes_well_under_a_second_on_30k_rows():
    # TSB-AD's own loop takes about 16 s here (window 100); the vectorised one a few hundredths.
    rng = np.random.default_rng(0)
    labels = np.zeros(30_000, dtype=bool)
    for start in rng.choice(29_800, 50, replace=False):
        labels[start : start + rng.integers(1, 150)] = True
    scores = rng.random(30_000) + labels * rng.random(30_000)
    start = time.perf_counter()
    vus(labels, scores, window=125)
    assert time.perf_counter() - start < 3.0


def test_vus_refuses_bad_windows():
    with pytest.raises(ValueError, match="window"):
        vus(LABELS, np.arange(10.0), window=-1)
    with pytest.raises(ValueError, match="n_thresholds"):
        vus(LABELS, np.arange(10.0), n_thresholds=0)


# ---- everything at once, and trivial baselines --------------------------------------------------


def test_evaluate_scores_by_hand():
    scores = np.array([0.9, 0.1, 0.2, 0.8, 0.3, 0.0, 0.0, 0.0, 0.1, 0.1])
    result = evaluate_scores(LABELS, scores, FLAGS)
    assert set(result) == {
        "point_precision",
        "point_recall",
        "point_f1",
        "best_f1",
        "event_recall",
        "event_precision",
        "event_f1",
        "average_precision",
        "auc_roc",
        "vus_pr",
        "vus_roc",
        "point_adjusted_f1_inflated",
        "far",
        "mar",
        "flag_rate",
    }
    assert result["point_precision"] == pytest.approx(0.5) and result["point_recall"] == pytest.approx(0.2)
    assert result["event_recall"] == 0.5 and result["event_precision"] == 0.5 and result["event_f1"] == 0.5
    assert result["far"] == pytest.approx(0.2) and result["mar"] == pytest.approx(0.8)
    assert result["flag_rate"] == pytest.approx(0.2)
    assert result["point_adjusted_f1_inflated"] == pytest.approx(point_adjusted_f1(LABELS, FLAGS))
    assert result["average_precision"] == pytest.approx(average_precision_score(LABELS, scores))
    assert result["auc_roc"] == pytest.approx(roc_auc_score(LABELS, scores))
    # The best threshold is 0.1: 5 of 7 flagged steps labelled, all 5 labelled found (TSB-AD's
    # 1e-5 in the denominator). At the detector's own flags, point F1 is 2 * 0.5 * 0.2 / 0.7.
    assert result["best_f1"] == pytest.approx((10 / 7) / (12 / 7 + 1e-5), abs=1e-12)
    assert result["point_f1"] < result["best_f1"]
    assert result["vus_pr"] == vus_pr(LABELS, scores, window=100)
    assert evaluate_scores(LABELS, scores, FLAGS, vus_window=3)["vus_roc"] == vus_roc(LABELS, scores, window=3)


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
    assert result["auc_roc"] == 0.5
    assert result["best_f1"] == pytest.approx(1 / (1.5 + 1e-5))  # the only threshold: P 1/2, R 1
    assert result["flag_rate"] == 1.0


def test_random_baseline_flags_at_the_requested_rate_and_is_reproducible():
    rng = np.random.default_rng(5)
    labels = np.zeros(20_000, dtype=bool)
    for start in rng.choice(19_900, 40, replace=False):
        labels[start : start + 20] = True
    baselines = trivial_baselines(labels, rng_seed=1, flag_rate=0.05)
    random = baselines["random"]
    assert random["flag_rate"] == 0.05  # exactly as many rows as the rate: 1,000 of 20,000
    # No skill: AP near the share of labelled steps; point-adjusted F1 far above point F1.
    assert random["average_precision"] == pytest.approx(labels.mean(), abs=0.02)
    assert random["point_adjusted_f1_inflated"] > 2 * random["point_f1"]
    assert trivial_baselines(labels, rng_seed=1, flag_rate=0.05)["random"] == pytest.approx(random)
    # Without a flag rate, the random detector flags as often as steps are labelled.
    assert trivial_baselines(labels)["random"]["flag_rate"] == labels.mean()
    with pytest.raises(ValueError, match="flag_rate"):
        trivial_baselines(labels, flag_rate=1.5)


def test_pooled_series_keep_their_events_apart_at_the_seam():
    # Series 1 ends in a labelled, flagged event; series 2 starts with a labelled event that is
    # missed. Joined end to end they would make one event, found: recall 1.0 instead of 0.5.
    first_labels, first_flags = np.array([0, 0, 0, 1, 1], bool), np.array([0, 0, 0, 0, 1], bool)
    second_labels, second_flags = np.array([1, 1, 0, 0, 0], bool), np.zeros(5, bool)
    labels, flags = np.concatenate([first_labels, second_labels]), np.concatenate([first_flags, second_flags])
    scores = flags.astype(float)
    pooled = evaluate_scores(labels, scores, flags, segments=[5, 5])
    assert pooled["event_recall"] == 0.5 and pooled["event_precision"] == 1.0
    assert pooled["event_f1"] == pytest.approx(2 / 3)
    # Point adjustment fills the first series' event only: 2 of 4 labelled steps, no false flag.
    assert pooled["point_adjusted_f1_inflated"] == pytest.approx(2 * 1.0 * 0.5 / 1.5)
    joined = evaluate_scores(labels, scores, flags)
    assert joined["event_recall"] == 1.0
    assert {k: v for k, v in pooled.items() if not k.startswith(("event", "point_adjusted"))} == {
        k: v for k, v in joined.items() if not k.startswith(("event", "point_adjusted"))
    }
    # Flagging everything makes one predicted event per series, both true.
    everything = trivial_baselines(labels, segments=[5, 5])["flag_everything"]
    assert everything["event_precision"] == 1.0 and everything["event_recall"] == 1.0
    with pytest.raises(ValueError, match="segments must be lengths summing to the 10 labels"):
        evaluate_scores(labels, scores, flags, segments=[5, 4])
