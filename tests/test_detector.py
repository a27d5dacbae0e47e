"""Detector on tiny seeded series: quality, persistence, input handling."""

import re

import numpy as np
import pandas as pd
import pytest

from anomaly.detector import FLAG_COLUMN, SCORE_COLUMN, Detector
from anomaly.errors import DataError, NotFittedError
from tests.conftest import make_series, plant_spike

# smoothing_span 1: these tests locate single-step spikes at their exact step (the default EWMA
# of span 15 spreads a spike over the steps after it). members 1: the scenarios below were set
# for one tiny network; the default's two members have their own test.
TINY = dict(
    members=1,
    window_size=16,
    stride=2,
    units=(8,),
    epochs=4,
    batch_size=16,
    learning_rate=0.01,
    patience=2,
    warmup_steps=2,
    smoothing_span=1.0,
)


@pytest.fixture(scope="module", params=[0, 1])
def fitted(request):
    seed = request.param
    return seed, Detector(random_state=seed, **TINY).fit(make_series(600, seed))


def test_a_planted_spike_is_the_top_score_and_is_flagged(fitted):
    seed, detector = fitted
    test = plant_spike(make_series(300, seed + 100), at=150)
    result = detector.score(test)
    assert list(result.columns) == [SCORE_COLUMN, "threshold", FLAG_COLUMN, "z_f0", "z_f1", "z_f2"]
    assert result.index.equals(test.index)
    assert int(np.nanargmax(result[SCORE_COLUMN])) == 150
    assert result[FLAG_COLUMN].iloc[150]
    # The spiked feature carries the event: largest |z| at that step.
    assert int(np.argmax(np.abs(result.iloc[150, 3:].to_numpy()))) == 1


def test_warmup_steps_are_unscored_and_unflagged(fitted):
    _, detector = fitted
    result = detector.score(make_series(50, 7))
    assert result[SCORE_COLUMN].iloc[:3].isna().all() and result[SCORE_COLUMN].iloc[3:].notna().all()
    assert not result[FLAG_COLUMN].iloc[:3].any()


def test_decision_function_and_predict_are_the_score_frames_columns(fitted):
    from sklearn.base import clone

    _, detector = fitted
    test = plant_spike(make_series(300, 42), at=150)
    frame = detector.score(test)
    scores, flags = detector.decision_function(test), detector.predict(test)
    assert scores.shape == flags.shape == (len(test),) and flags.dtype.kind == "i"
    np.testing.assert_array_equal(scores, frame[SCORE_COLUMN].to_numpy())
    np.testing.assert_array_equal(flags, frame[FLAG_COLUMN].to_numpy().astype(int))
    assert set(np.unique(flags)) <= {0, 1} and flags[150] == 1
    # An array holds the training columns in order.
    np.testing.assert_array_equal(detector.decision_function(test.to_numpy()), scores)
    # A clone is unfitted, with the same parameters.
    copy = clone(detector)
    assert copy.get_params() == detector.get_params() and not hasattr(copy, "threshold_")


def test_fit_takes_scikit_learns_y_and_ignores_it():
    train = make_series(400, 3)
    a = Detector(random_state=1, **{**TINY, "epochs": 1}).fit(train, None)
    b = Detector(random_state=1, **{**TINY, "epochs": 1}).fit(train)
    assert a.threshold_ == b.threshold_


def test_a_detector_json_saved_with_fewer_params_loads_with_the_defaults(fitted, tmp_path):
    import json

    _, detector = fitted
    directory = detector.save(tmp_path / "older")
    state = json.loads((directory / "detector.json").read_text())
    for name in ("autoregressive", "residual", "burn_in", "threshold_margin"):  # params added over time
        del state["params"][name]
    (directory / "detector.json").write_text(json.dumps(state))
    loaded = Detector.load(directory)
    assert (loaded.autoregressive, loaded.residual, loaded.burn_in, loaded.threshold_margin) == (0, False, None, 1.0)
    test = make_series(200, 5)
    np.testing.assert_allclose(loaded.score(test)[SCORE_COLUMN], detector.score(test)[SCORE_COLUMN], rtol=1e-6)


def test_save_load_round_trip_gives_identical_scores(fitted, tmp_path):
    _, detector = fitted
    test = make_series(200, 5)
    loaded = Detector.load(detector.save(tmp_path / "det"))
    assert loaded.feature_names_in_ == detector.feature_names_in_ and loaded.threshold_ == detector.threshold_
    np.testing.assert_allclose(loaded.score(test)[SCORE_COLUMN], detector.score(test)[SCORE_COLUMN], rtol=1e-6)


def test_columns_are_matched_by_name_and_extras_ignored(fitted):
    _, detector = fitted
    test = make_series(120, 9)
    shuffled = test[["f2", "f0", "f1"]].assign(extra=1.0)
    np.testing.assert_allclose(detector.score(shuffled)[SCORE_COLUMN], detector.score(test)[SCORE_COLUMN], rtol=1e-6)


def test_missing_column_is_named(fitted):
    _, detector = fitted
    with pytest.raises(DataError, match="'f1' that the model was trained on are missing"):
        detector.score(make_series(60, 1).drop(columns="f1"))


def test_rows_that_cannot_be_scored_are_refused_naming_the_column_and_row(fitted):
    _, detector = fitted
    test = make_series(120, 9)
    infinite = test.copy()
    infinite.iloc[40, 1] = np.inf  # left in, it would leave every later row of the stream unscored
    refused = {
        r"feature 'f1' should hold finite numbers \(NaN for a missing value\), but row 41 holds inf": infinite,
        "column 'f2' should hold numbers, but row 3 holds 'n/a'": test.astype({"f2": object}).assign(
            f2=lambda f: f["f2"].where(np.arange(len(f)) != 2, "n/a")
        ),
        r"row 2 \(.*\) is earlier than row 1": test.iloc[::-1],
        r"row 61 \(.*\) repeats row 60": pd.concat([test.iloc[:60], test.iloc[59:]]),
        r"expected rows of 3 features, an array of shape \(n, 3\), but got shape \(120, 2\)": test.to_numpy()[:, :2],
    }
    for message, rows in refused.items():
        with pytest.raises(DataError, match=message):
            detector.score(rows)
    with pytest.raises(DataError, match="feature 'f1' should hold finite numbers"):
        Detector(**TINY).fit(pd.concat([make_series(300, 1), infinite]).reset_index(drop=True))
    scorer = detector.stream()
    scorer.feed(test.to_numpy()[:10])
    with pytest.raises(DataError, match="feature 'f1' should hold finite numbers .* row 41 holds inf"):
        scorer.feed(infinite.to_numpy()[10:])  # rows are counted from the stream's start
    with pytest.raises(DataError, match=r"an array of shape \(n, 3\), but got shape \(3,\)"):
        scorer.feed(np.ones(3))
    # Unnamed row labels in another order are not times (a frame sorted by a time column).
    relabelled = test.reset_index(drop=True).set_axis(np.arange(len(test))[::-1])
    np.testing.assert_array_equal(detector.score(relabelled)[SCORE_COLUMN], detector.score(test)[SCORE_COLUMN])
    # Numbers held as objects (as a frame built from mixed sources may) are numbers.
    as_objects = test.astype({"f0": object})
    np.testing.assert_array_equal(detector.score(as_objects)[SCORE_COLUMN], detector.score(test)[SCORE_COLUMN])


def test_unfitted_detector_says_how_to_fix_it():
    with pytest.raises(NotFittedError, match="call fit"):
        Detector().score(make_series(50, 0))


def test_too_short_training_series_is_a_data_error():
    with pytest.raises(DataError, match="at least 34 are needed for window_size 16"):
        Detector(**TINY).fit(make_series(30, 0))


def test_a_warm_up_that_leaves_nothing_to_calibrate_on_is_named_before_training():
    with pytest.raises(DataError, match=r"warmup_steps 400 leaves no row of the 300-row training series scored.*at most 298"):
        Detector(**{**TINY, "warmup_steps": 400}).fit(make_series(300, 0))


def test_invalid_parameter_is_named_at_fit_time():
    with pytest.raises(ValueError, match="The 'cell' parameter must be one of"):
        Detector(cell="transformer").fit(make_series(300, 0))


def test_same_seed_same_model():
    train = make_series(400, 3)
    a = Detector(random_state=11, **TINY).fit(train)
    b = Detector(random_state=11, **TINY).fit(train)
    assert a.threshold_ == b.threshold_
    assert a.history_ == b.history_


def test_corrupted_saved_detector_is_a_clear_error(fitted, tmp_path):
    _, detector = fitted
    directory = detector.save(tmp_path / "det")
    (directory / "network.keras").write_bytes(b"not a zip file")
    with pytest.raises(DataError, match="not a readable anomaly detector"):
        Detector.load(directory)


def test_gaps_are_skipped_in_training_and_left_unscored(fitted):
    _, detector = fitted
    train = make_series(600, 4)
    train.iloc[300:340] = np.nan  # a long gap in the middle of the training part
    Detector(random_state=0, **TINY).fit(train)  # trains on the windows around it

    test = plant_spike(make_series(200, 6), at=150)
    gapped = test.copy()
    gapped.iloc[80:100, 0] = np.nan  # one feature missing for 20 rows
    result = detector.score(gapped)
    scores = result[SCORE_COLUMN].to_numpy()
    assert np.isnan(scores[80:100]).all() and not result[FLAG_COLUMN].iloc[80:100].any()
    # The segment after the gap starts afresh: its warm-up is unscored too, then it scores as
    # that segment would on its own.
    assert np.isnan(scores[100:103]).all() and np.isfinite(scores[103:]).all()
    alone = detector.score(test.iloc[100:])[SCORE_COLUMN].to_numpy()
    np.testing.assert_allclose(scores[100:], alone, rtol=1e-6, equal_nan=True)
    np.testing.assert_allclose(scores[:80], detector.score(test.iloc[:80])[SCORE_COLUMN], rtol=1e-6, equal_nan=True)
    assert int(np.nanargmax(scores)) == 150 and result[FLAG_COLUMN].iloc[150]


def test_a_training_series_that_is_all_gaps_is_a_clear_error():
    train = make_series(400, 0)
    train.iloc[::10] = np.nan  # no 17 consecutive complete rows anywhere
    with pytest.raises(DataError, match="has no 17 consecutive complete rows"):
        Detector(**TINY).fit(train)


@pytest.mark.parametrize("method", ["pot", "dynamic"])
def test_every_threshold_method_is_fitted_on_calibration_scores_and_saved(method, tmp_path):
    # 120 calibration scores: the tail above the 0.9 quantile holds the 10 that POT needs.
    params = {
        **TINY,
        "threshold_method": method,
        "threshold_level": 0.9,
        "threshold_risk": 0.01,
        "smoothing_span": 3.0,
        "aggregation": "max_abs",
    }
    detector = Detector(random_state=0, **params).fit(make_series(600, 0))
    calibration = detector.calibration_scores_[~np.isnan(detector.calibration_scores_)]
    assert np.quantile(calibration, 0.5) < detector.threshold_ <= calibration.max() * 10
    loaded = Detector.load(detector.save(tmp_path / "d"))
    assert loaded.threshold_ == detector.threshold_ and loaded.get_params() == detector.get_params()
    test = plant_spike(make_series(300, 100), at=150, size=8.0)
    np.testing.assert_allclose(loaded.score(test)[SCORE_COLUMN], detector.score(test)[SCORE_COLUMN], equal_nan=True)


def test_a_residual_network_follows_a_level_it_never_saw_but_flags_a_spike(tmp_path):
    detector = Detector(random_state=0, residual=True, **TINY).fit(make_series(600, 0))
    assert detector.model_.get_layer("next_step").__class__.__name__ == "Add"
    loaded = Detector.load(detector.save(tmp_path / "d"))
    assert loaded.residual is True
    test = plant_spike(make_series(300, 100), at=150, size=8.0)
    scores = loaded.score(test)[SCORE_COLUMN]
    np.testing.assert_allclose(scores, detector.score(test)[SCORE_COLUMN], equal_nan=True)
    assert int(np.nanargmax(scores)) in (150, 151)  # the spike, or the step back down from it


def _drifting(length: int) -> "object":
    """make_series plus a feature that drifts steadily upwards (a slowly heating sensor)."""
    series = make_series(length, 0)
    series["drift"] = np.linspace(0.0, 6.0 * length / 900, length) + np.cumsum(np.random.default_rng(3).normal(0, 0.02, length))
    return series


def test_an_autoregressive_detector_follows_a_drift_past_its_training_range_but_flags_a_spike(tmp_path):
    series = _drifting(900)
    train, test = series.iloc[:600], plant_spike(series.iloc[600:], at=150, feature=1, size=8.0)
    plain = Detector(random_state=0, **TINY).fit(train)
    detector = Detector(random_state=0, autoregressive=2, **TINY).fit(train)
    assert detector.autoregression_.coef.shape == (2 * 4, 4)
    result = detector.score(test)
    # The network alone cannot predict a level it never saw: most of the test part is flagged.
    # The linear part follows the drift, so the spike is the only event.
    assert plain.score(test)[FLAG_COLUMN].mean() > 0.5
    assert int(np.nanargmax(result[SCORE_COLUMN])) == 150
    assert result[FLAG_COLUMN].sum() <= 5 and result[FLAG_COLUMN].iloc[150]

    loaded = Detector.load(detector.save(tmp_path / "d"))
    assert loaded.autoregressive == 2
    np.testing.assert_array_equal(loaded.autoregression_.coef, detector.autoregression_.coef)
    np.testing.assert_allclose(loaded.score(test)[SCORE_COLUMN], result[SCORE_COLUMN], equal_nan=True)
    # Chunk by chunk, the linear part's last rows are carried: the same scores as in one go.
    stream = loaded.stream()
    values = test.to_numpy()
    streamed = np.concatenate([stream.feed(values[i : i + 7]).scores for i in range(0, len(values), 7)])
    np.testing.assert_allclose(streamed, result[SCORE_COLUMN], rtol=1e-5, equal_nan=True)


def test_an_autoregressive_detector_leaves_rows_without_their_lags_unscored():
    series = _drifting(700)
    detector = Detector(random_state=0, autoregressive=3, **{**TINY, "warmup_steps": 0}).fit(series.iloc[:600])
    test = series.iloc[600:].copy()
    test.iloc[40:45, 0] = np.nan
    scores = detector.score(test)[SCORE_COLUMN].to_numpy()
    # No warm-up, but the linear part needs 3 complete rows before a row: 0-2 and 45-47 are unscored.
    assert np.isnan(scores[[0, 1, 2, 45, 46, 47]]).all() and np.isfinite(scores[[3, 39, 48]]).all()


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"autoregressive": -1}, "The 'autoregressive' parameter must be an int in [0, 64], and 0 when residual is True"),
        ({"autoregressive": True}, "The 'autoregressive' parameter must be an int"),
        ({"autoregressive": 2, "residual": True}, "Got 2 instead"),
    ],
)
def test_invalid_autoregressive_settings_are_named(params, expected):
    with pytest.raises(ValueError, match=re.escape(expected)):
        Detector(**params).fit(make_series(300, 0))


def test_the_threshold_follows_a_lasting_level_change_and_still_flags_a_spike():
    train = make_series(600, 0)
    # One sensor reads one training standard deviation high from row 200 on (recalibrated, say),
    # and nothing else happens: most later steps score above the fitted threshold. One spike at 500.
    test = make_series(800, 9)
    test.iloc[200:, 2] += train.iloc[:, 2].std()
    test = plant_spike(test, at=500, feature=0, size=12.0)
    fixed = Detector(random_state=0, **{**TINY, "threshold_follow": False}).fit(train)
    following = Detector(random_state=0, **TINY).fit(train)
    assert following.threshold_ == fixed.threshold_  # the same fit; only scoring differs
    fixed_out, following_out = fixed.score(test), following.score(test)
    np.testing.assert_allclose(fixed_out[SCORE_COLUMN], following_out[SCORE_COLUMN], equal_nan=True)
    assert (fixed_out["threshold"] == fixed.threshold_).all()
    thresholds = following_out["threshold"].to_numpy()
    assert (thresholds >= following.threshold_).all() and thresholds[-1] > following.threshold_
    assert thresholds[:200].max() < 1.05 * following.threshold_  # before the change: about the fitted one
    late = slice(300, 800)
    assert fixed_out[FLAG_COLUMN].iloc[late].mean() > 0.5
    assert following_out[FLAG_COLUMN].iloc[late].mean() < 0.5 * fixed_out[FLAG_COLUMN].iloc[late].mean()
    assert following_out[FLAG_COLUMN].iloc[500]


def test_errors_that_grow_for_good_are_followed_once_a_window_is_scored_and_a_spike_still_flags():
    from anomaly.detection.error_level import MAX_RISE
    from anomaly.detection.level import WINDOW

    train = make_series(600, 0)
    # Every feature gets noisier for good (a worn bearing, a busier server), and a
    # spike comes late, once the features' error levels are followed.
    test = make_series(7000, 9)
    test += 0.3 * np.random.default_rng(1).normal(size=test.shape)
    test = plant_spike(test, at=6500, feature=0, size=12.0)
    plain = Detector(random_state=0, **{**TINY, "scale_follow": False}).fit(train)
    following = Detector(random_state=0, **TINY).fit(train)
    np.testing.assert_array_equal(plain.error_levels_, following.error_levels_)  # the same fit
    plain_out, following_out = plain.score(test), following.score(test)
    z = [c for c in plain_out.columns if c.startswith("z_")]
    early, late = slice(0, WINDOW), slice(WINDOW, None)
    np.testing.assert_array_equal(plain_out[z].iloc[early], following_out[z].iloc[early])
    divisors = (plain_out[z].iloc[late] / following_out[z].iloc[late]).to_numpy()
    assert np.nanmin(divisors) >= 1.0 and np.nanmax(divisors) <= MAX_RISE + 1e-9 and np.nanmedian(divisors) > 1.1
    assert following_out[FLAG_COLUMN].iloc[late].mean() < 0.5 * plain_out[FLAG_COLUMN].iloc[late].mean()
    assert following_out[FLAG_COLUMN].iloc[6500]


def test_the_error_levels_are_saved_and_a_detector_saved_without_them_does_not_follow(fitted, tmp_path):
    import json

    _, detector = fitted
    assert detector.scale_follow and detector.error_levels_.shape == (3,)
    directory = detector.save(tmp_path / "levels")
    np.testing.assert_array_equal(Detector.load(directory).error_levels_, detector.error_levels_)
    state = json.loads((directory / "detector.json").read_text())
    del state["error_levels"]  # as saved before scale_follow existed
    del state["params"]["scale_follow"]
    (directory / "detector.json").write_text(json.dumps(state))
    old = Detector.load(directory)
    assert old.error_levels_ is None and old.scale_follow is False
    series = make_series(5000, 3)
    plain = Detector.load(detector.save(tmp_path / "plain")).set_params(scale_follow=False)
    pd.testing.assert_frame_equal(old.score(series), plain.score(series))


def test_a_detector_saved_before_the_level_follower_scores_with_its_fixed_threshold(fitted, tmp_path):
    import json

    _, detector = fitted
    directory = detector.save(tmp_path / "old")
    state = json.loads((directory / "detector.json").read_text())
    del state["calibration_histogram"]
    del state["params"]["threshold_follow"]
    (directory / "detector.json").write_text(json.dumps(state))
    loaded = Detector.load(directory)
    assert loaded.threshold_follow is False
    assert (loaded.score(make_series(300, 3))["threshold"] == detector.threshold_).all()


def test_the_level_window_is_saved_and_a_detector_saved_without_one_keeps_the_median_of_everything(fitted, tmp_path):
    import json

    from anomaly.detection.level import WINDOW, LevelFollower

    _, detector = fitted
    assert detector.level_window_ == WINDOW
    directory = detector.save(tmp_path / "windowed")
    assert Detector.load(directory).level_window_ == WINDOW
    state = json.loads((directory / "detector.json").read_text())
    del state["level_window"]  # as saved before the window existed
    (directory / "detector.json").write_text(json.dumps(state))
    old = Detector.load(directory)
    assert old.level_window_ is None and old.threshold_follow
    # Its thresholds are those of the unwindowed rule fed with its own scores.
    out = old.score(make_series(300, 3))
    scores = out[SCORE_COLUMN].to_numpy()
    expected = LevelFollower(old.threshold_, old.calibration_histogram_, None).feed(scores)
    np.testing.assert_array_equal(out["threshold"].to_numpy(), expected)


def test_the_demo_spec_and_a_bare_spec_hold_the_detectors_own_defaults():
    from pathlib import Path

    from anomaly.spec import Spec, load_spec

    defaults = Detector().get_params()
    demo = load_spec(Path(__file__).resolve().parent.parent / "pipelines" / "default.yaml")
    for spec in (Spec(), demo):
        params = spec.detector_params()
        assert params == {k: defaults[k] for k in params}, spec.name


def test_a_command_channel_that_flips_now_and_then_does_not_hide_a_spike():
    # A spacecraft-like series: smooth telemetry beside a 0/1 command flag that is set for a few
    # steps at random, in training and in scoring alike. The model cannot foresee a command, so
    # each one leaves a residual of one step; measured by the flag's MAD (0: it is at rest most of
    # the time) that would be a z in the hundreds, and the threshold would sit above any real
    # anomaly. Measured against its step, a command is one typical error. (Without the step, a
    # command is this series' top score and the spike goes unflagged.)
    def with_commands(frame, seed):
        rng = np.random.default_rng(seed)
        flag = np.zeros(len(frame))
        for start in rng.choice(len(frame) - 5, size=len(frame) // 100, replace=False):
            flag[start : start + 3] = 1.0
        return frame.assign(command=flag)

    train = with_commands(make_series(600, 0), 1)
    detector = Detector(random_state=0, **TINY).fit(train)
    assert detector.residual_stats_.scale[-1] > 1.0  # its step in scaled units (about 1 / its std)
    test = plant_spike(with_commands(make_series(400, 5), 2), at=250, feature=1, size=2.0)
    result = detector.score(test)
    assert int(np.nanargmax(result[SCORE_COLUMN])) == 250
    assert result[FLAG_COLUMN].iloc[250]
    assert result[FLAG_COLUMN].mean() < 0.05


def test_stuck_sensors_add_no_noise_to_the_score_and_a_change_of_one_still_counts(tmp_path):
    # Eight features that never moved in training (stuck sensors, counters at zero, commands
    # never sent). Measured by its own tiny calibration scale, the network's wobble on each would
    # be a z of about 1 on every row, a unit of noise each in the score; measured against the
    # other features' median scale it is next to nothing, and a change of the feature is not.
    stuck = {f"stuck{k}": float(k) for k in range(8)}
    train = make_series(600, 0).assign(**stuck)
    detector = Detector(random_state=0, **TINY).fit(train)
    assert detector.constant_features_ == list(stuck)
    scales = detector.residual_stats_.scale
    np.testing.assert_allclose(scales[3:], np.median(scales[:3]))
    test = plant_spike(make_series(400, 5).assign(**stuck), at=250, feature=1, size=2.0)
    test.iloc[350:355, test.columns.get_loc("stuck0")] = 3.0  # a stuck sensor moves
    result = detector.score(test)
    z_stuck = result[[f"z_{name}" for name in stuck]].abs()
    unchanged = z_stuck.drop(z_stuck.index[350:355]).to_numpy()
    assert np.nanmedian(unchanged) < 0.2 and np.nanmax(unchanged) < 2
    assert (z_stuck["z_stuck0"].iloc[350:355] > 10).all()
    assert int(np.nanargmax(result[SCORE_COLUMN].iloc[:300])) == 250
    assert result[FLAG_COLUMN].iloc[250] and result[FLAG_COLUMN].iloc[350:355].all()
    assert result[FLAG_COLUMN].mean() < 0.05
    loaded = Detector.load(detector.save(tmp_path / "stuck"))
    np.testing.assert_allclose(loaded.score(test)[SCORE_COLUMN], result[SCORE_COLUMN], rtol=1e-6, equal_nan=True)


def test_members_average_into_one_network_that_scores_saves_and_clones(tmp_path):
    from sklearn.base import clone

    series = make_series(400, 5)
    settings = {**TINY, "epochs": 2, "members": 2}
    pair = Detector(random_state=3, **settings).fit(series)
    alone = Detector(random_state=3, **{**settings, "members": 1}).fit(series)
    # One network of twice the units (the members side by side), trained as long as one.
    assert [w.shape for w in pair.model_.get_weights()][:2] == [(3, 64), (16, 64)]
    assert len(pair.history_["loss"]) == len(pair.history_["val_loss"]) <= settings["epochs"]
    assert not np.allclose(pair.score(series)[SCORE_COLUMN], alone.score(series)[SCORE_COLUMN], equal_nan=True)
    assert clone(pair).get_params()["members"] == 2
    loaded = Detector.load(pair.save(tmp_path / "pair"))
    assert loaded.members == 2
    np.testing.assert_allclose(loaded.score(series)[SCORE_COLUMN], pair.score(series)[SCORE_COLUMN], rtol=1e-6, equal_nan=True)


def test_a_detector_saved_before_members_existed_loads_as_one_network(fitted, tmp_path):
    import json

    _, detector = fitted
    directory = detector.save(tmp_path / "old")
    state = json.loads((directory / "detector.json").read_text())
    del state["params"]["members"]
    (directory / "detector.json").write_text(json.dumps(state))
    loaded = Detector.load(directory)
    assert loaded.members == 1
    np.testing.assert_allclose(
        loaded.score(make_series(300, 3))[SCORE_COLUMN], detector.score(make_series(300, 3))[SCORE_COLUMN], equal_nan=True
    )
