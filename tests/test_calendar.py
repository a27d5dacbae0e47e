"""The time-of-day inputs: which series get them, what they are (anomaly.detection.calendar)."""

from pathlib import Path

import numpy as np
import pytest

from anomaly.detection.calendar import Calendar, lag_autocorrelation

MINUTE = 60 * 1_000_000_000


def _times(rows: int, step_minutes: int, start_ns: int = 1_767_225_600 * 1_000_000_000) -> np.ndarray:
    return start_ns + np.arange(rows, dtype=np.int64) * step_minutes * MINUTE


def _daily(rows: int, step_minutes: int, noise: float, seed: int = 0) -> np.ndarray:
    hours = (np.arange(rows) * step_minutes / 60) % 24
    rng = np.random.default_rng(seed)
    return np.column_stack([np.where((hours > 8) & (hours < 18), 80.0, 20.0) + rng.normal(0, noise, rows), rng.normal(size=rows)])


def test_a_daily_cycle_over_two_days_gets_the_day() -> None:
    assert Calendar.fit(_times(288 * 3, 5), _daily(288 * 3, 5, 2.0)).cycles == ("day",)


def test_two_weeks_of_hourly_rows_get_the_week_too() -> None:
    assert Calendar.fit(_times(24 * 15, 60), _daily(24 * 15, 60, 2.0)).cycles == ("day", "week")


@pytest.mark.parametrize(
    ("times", "values", "why"),
    [
        (None, _daily(288 * 3, 5, 2.0), "no times"),
        (_times(288 * 3, 5), np.random.default_rng(1).normal(size=(288 * 3, 2)), "no daily cycle"),
        (_times(288 + 100, 5), _daily(288 + 100, 5, 2.0), "less than two days"),
        (_times(30, 60 * 12), _daily(30, 60 * 12, 2.0), "a step coarser than 6 hours"),
    ],
)
def test_no_calendar(times: np.ndarray | None, values: np.ndarray, why: str) -> None:
    assert Calendar.fit(times, values).cycles == (), why


def test_columns_are_the_sine_and_cosine_of_the_time_of_day() -> None:
    times = _times(5, 6 * 60)  # midnight, 06:00, 12:00, 18:00, midnight (UTC)
    got = Calendar(("day",)).columns(times)
    np.testing.assert_allclose(got, [[0, 1], [1, 0], [0, -1], [-1, 0], [0, 1]], atol=1e-12)
    assert Calendar().columns(times).shape == (5, 0)


def test_lag_autocorrelation_takes_the_most_periodic_feature() -> None:
    values = _daily(288 * 4, 5, 0.0)
    assert lag_autocorrelation(values, 288) == pytest.approx(1.0)
    assert np.isnan(lag_autocorrelation(values, 288 * 2))  # not below half the rows
    assert np.isnan(lag_autocorrelation(np.ones((100, 2)), 10))  # nothing varies


# --------------------------------------------------------------------------- through the CLI


def _daily_file(path, days: int = 4, *, with_times: bool = True, seed: int = 0):
    import pandas as pd

    rows = 288 * days
    values = _daily(rows, 5, 2.0, seed)
    frame = pd.DataFrame(values, columns=["load", "noise"])
    if with_times:
        frame.insert(0, "timestamp", pd.date_range("2026-01-01", periods=rows, freq="5min").astype(str))
    frame.to_csv(path, index=False)
    return path


@pytest.mark.slow
def test_a_daily_series_trains_with_the_time_of_day_and_the_served_model_needs_the_times(mlflow_store) -> None:
    import mlflow
    import pandas as pd
    from click.testing import CliRunner
    from mlflow.tracking import MlflowClient

    from anomaly.cli import cli
    from tests.test_cli import TINY_OPTIONS, last_json

    _daily_file("daily.csv")
    result = CliRunner().invoke(cli, ["train", "daily.csv", *TINY_OPTIONS, "--json"])
    assert result.exit_code == 0, result.output
    assert "the network also gets each row's time of day as inputs" in result.stderr
    trained = last_json(result)
    assert MlflowClient().get_run(trained["run_id"]).data.tags["anomaly.calendar"] == "day"

    scored = CliRunner().invoke(cli, ["score", "daily.csv", "-o", "scores.csv"])
    assert scored.exit_code == 0, scored.output
    assert "time of day" not in scored.output
    # The same readings with UTC offsets: their time of day is UTC's, not the wall clock it learnt.
    offset = pd.read_csv("daily.csv").assign(timestamp=lambda f: f.timestamp + "+02:00")
    offset.to_csv("offset.csv", index=False)
    shifted = CliRunner().invoke(cli, ["score", "offset.csv", "-o", "offset_scores.csv"])
    assert shifted.exit_code == 0, shifted.output
    assert "offset.csv: the model learnt the time of day from the wall clock" in shifted.output
    scores = pd.read_csv("scores.csv", index_col=0)["score"]
    # The MLflow model takes the times as a column of its input and scores as the CLI does.
    frame = pd.read_csv("daily.csv", parse_dates=["timestamp"])
    model = mlflow.pyfunc.load_model(trained["model_uri"])
    served = model.predict(frame)
    np.testing.assert_allclose(served["score"].to_numpy(), scores.to_numpy(), rtol=1e-6)
    # Rows out of time order (their times a column, as a served model gets them) are refused as
    # MLflow's invalid-input error, whose message is the one line (a 400 when served).
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException, match=r"^the rows should be in time order.*row 2 .* is earlier than row 1"):
        model.predict(frame.iloc[::-1].reset_index(drop=True))
    with pytest.raises(MlflowException, match=r"^feature 'load' should hold finite numbers"):
        model.predict(frame.assign(load=np.where(np.arange(len(frame)) == 3, np.inf, frame["load"])))

    # A file without its times cannot be scored by it: one line naming the file, exit 2.
    _daily_file("untimed.csv", with_times=False)
    refused = CliRunner().invoke(cli, ["score", "untimed.csv", "-o", "untimed_scores.csv"])
    assert refused.exit_code == 2, refused.output
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "untimed.csv" in lines[0] and "time column, found none" in lines[0], refused.stderr
    assert not Path("untimed_scores.csv").exists()
    # Its time column holding step numbers instead of times: the error says what it found.
    numbered = pd.read_csv("daily.csv").assign(timestamp=lambda f: np.arange(len(f)))
    numbered.to_csv("numbered.csv", index=False)
    refused = CliRunner().invoke(cli, ["score", "numbered.csv", "-o", "numbered_scores.csv"])
    assert refused.exit_code == 2, refused.output
    assert "found 'timestamp' holding int64 values (0, 1, 2, ...), not times" in refused.stderr, refused.stderr


@pytest.mark.slow
def test_calendar_false_trains_without_it(mlflow_store) -> None:
    from click.testing import CliRunner

    from anomaly.cli import cli
    from tests.test_cli import TINY_OPTIONS

    _daily_file("daily.csv")
    result = CliRunner().invoke(cli, ["train", "daily.csv", *TINY_OPTIONS, "--calendar", "false"])
    assert result.exit_code == 0, result.output
    assert "time of day" not in result.stderr


def test_the_detector_streams_with_times_as_it_scores_whole_and_keeps_its_calendar(tmp_path, caplog) -> None:
    import pandas as pd

    from anomaly import DataError, Detector
    from anomaly.detection.scorer import ScoredChunk
    from anomaly.detector import row_times

    rows = 288 * 5
    index = pd.date_range("2026-01-01", periods=rows, freq="5min", tz="Europe/Berlin")
    frame = pd.DataFrame(_daily(rows, 5, 2.0), columns=["load", "noise"], index=index)
    detector = Detector(window_size=16, units=(8,), epochs=2, members=1).fit(frame.iloc[: 288 * 4])
    assert detector.calendar_.cycles == ("day",)
    test = frame.iloc[288 * 4 :]
    whole = detector.score(test)["score"].to_numpy()

    scorer = detector.stream()
    parts = [
        scorer.feed(test.iloc[a : a + 37].to_numpy(), times=row_times(test.iloc[a : a + 37])) for a in range(0, len(test), 37)
    ]
    streamed = ScoredChunk.concat([*parts, scorer.finish()]).scores
    np.testing.assert_allclose(streamed, whole, rtol=0, atol=1e-12)

    loaded = Detector.load(detector.save(tmp_path / "d"))
    assert loaded.calendar_ == detector.calendar_
    # It learnt the time of day in UTC: naive times are named as read otherwise.
    from anomaly.detector import zone_note

    assert loaded.times_zoned_ is True and zone_note(loaded, test.index) is None
    naive = test.tz_convert("UTC").tz_localize(None)
    assert "taken as UTC" in zone_note(loaded, naive.index)
    import logging

    with caplog.at_level(logging.WARNING, logger="anomaly.detector"):
        loaded.score(naive.iloc[:40])  # the Python API says so too
    assert "the model learnt the time of day in UTC" in caplog.text
    np.testing.assert_array_equal(loaded.score(test)["score"].to_numpy(), whole)
    with pytest.raises(DataError, match="need their times"):
        detector.score(test.to_numpy())
    with pytest.raises(DataError, match="expected the times of the 5 rows"):
        detector.stream().feed(test.iloc[:5].to_numpy())


def test_an_input_example_with_times_survives_its_json_round_trip() -> None:
    import pandas as pd

    from anomaly.detector import example_from_json, example_rows, example_to_json

    index = pd.date_range("2026-01-01", periods=20, freq="5min", tz="UTC", name="timestamp")
    frame = pd.DataFrame({"a": np.arange(20.0), "b": np.ones(20)}, index=index)
    example = example_rows(frame, 10, with_times=True)
    assert list(example.columns) == ["timestamp", "a", "b"]
    assert example["timestamp"].iloc[1] == pd.Timestamp("2026-01-01 00:05")  # naive, in UTC
    pd.testing.assert_frame_equal(example_from_json(example_to_json(example)), example, check_dtype=False)
    assert list(example_rows(frame, 10, with_times=False).columns) == ["a", "b"]


@pytest.mark.slow
def test_a_fleet_of_daily_series_trains_scores_and_serves_with_the_time_of_day(mlflow_store) -> None:
    import mlflow
    import pandas as pd
    from click.testing import CliRunner

    from anomaly.cli import cli
    from tests.test_cli import TINY_OPTIONS, last_json

    index = pd.date_range("2026-01-01", periods=288 * 4, freq="5min", name="timestamp")
    parts = [
        pd.DataFrame(_daily(len(index), 5, 2.0, seed), columns=["load", "noise"], index=index).reset_index().assign(machine=name)
        for seed, name in enumerate(("m1", "m2"))
    ]
    # A series without a daily cycle first, and another (it has no calendar), then the daily
    # ones: the model's signature keeps the times that only the daily series need.
    flat = np.random.default_rng(7).normal(size=(len(index), 2))
    for name in ("f1", "f2"):
        parts.insert(0, pd.DataFrame(flat, columns=["load", "noise"], index=index).reset_index().assign(machine=name))
    table = pd.concat(parts, ignore_index=True).sort_values("timestamp", kind="stable")
    table.to_csv("fleet.csv", index=False)
    trained = CliRunner().invoke(cli, ["train", "fleet.csv", "--series-col", "machine", *TINY_OPTIONS, "--jobs", "1", "--json"])
    assert trained.exit_code == 0, trained.output
    assert trained.stderr.count("time of day") == 2, trained.stderr
    model = last_json(trained)["model_uri"]
    scored = CliRunner().invoke(
        cli, ["score", "fleet.csv", "--series-col", "machine", "--model", model, "-o", "s.csv", "--jobs", "1"]
    )
    assert scored.exit_code == 0, scored.output
    expected = pd.read_csv("s.csv")
    served = mlflow.pyfunc.load_model(model).predict(pd.read_csv("fleet.csv", parse_dates=["timestamp"]))
    for name in ("f2", "f1", "m1", "m2"):
        mine = table["machine"].to_numpy() == name
        np.testing.assert_allclose(
            served.loc[mine, "score"].to_numpy(float),
            expected.loc[expected["machine"] == name, "score"].to_numpy(),
            rtol=1e-6,
            atol=1e-6,
            equal_nan=True,
        )
