"""The registered model served by `mlflow models serve` answers as `anomaly score` does."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from anomaly.cli import cli
from tests.conftest import make_series, plant_spike
from tests.test_cli import TINY_OPTIONS, free_port


def wait_for_ping(url: str, process: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the model server exited with code {process.returncode}"
        try:
            with urllib.request.urlopen(f"{url}/ping", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    raise AssertionError(f"no answer from {url}/ping within {timeout} s")


def served_predictions(model_uri: str, rows: pd.DataFrame) -> pd.DataFrame:
    """What ``mlflow models serve -m model_uri`` answers for ``rows`` (sent as dataframe_split, ISO
    times), the server started on a free loopback port and stopped again."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(Path(__file__).parent.parent),
    }
    command = [str(bin_dir / "mlflow"), "models", "serve", "-m", model_uri, "--env-manager", "local"]
    server = subprocess.Popen(
        [*command, "-h", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for_ping(url, server)
        body = {"dataframe_split": json.loads(rows.to_json(orient="split", index=False, date_format="iso"))}
        request = urllib.request.Request(
            f"{url}/invocations", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return pd.DataFrame(json.loads(response.read())["predictions"])
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


@pytest.mark.slow
def test_served_model_gives_the_scores_and_flags_that_anomaly_score_writes(mlflow_store: Path):
    make_series(600, 0).to_csv("plant.csv")
    test = plant_spike(make_series(150, 8), at=90)
    test.to_csv("new.csv")
    runner = CliRunner()
    assert runner.invoke(cli, ["train", "plant.csv", *TINY_OPTIONS, "--alias", "champion"]).exit_code == 0
    assert (
        runner.invoke(cli, ["score", "new.csv", "--model", "models:/anomaly-plant@champion", "-o", "scores.csv"]).exit_code == 0
    )
    expected = pd.read_csv("scores.csv", index_col=0)
    served = served_predictions("models:/anomaly-plant@champion", test)

    assert list(served.columns) == list(expected.columns)
    np.testing.assert_allclose(
        served["score"].to_numpy(float), expected["score"].to_numpy(), rtol=1e-6, atol=1e-6, equal_nan=True
    )
    assert served["is_anomaly"].tolist() == expected["is_anomaly"].tolist()
    assert bool(served["is_anomaly"].iloc[90])  # the planted spike


@pytest.mark.slow
def test_served_fleet_model_routes_each_row_to_its_series_detector(mlflow_store: Path):
    from tests.test_fleet import fleet_table

    train = {"pump-a": make_series(500, 0), "pump-b": make_series(500, 1)}
    test = {"pump-a": plant_spike(make_series(120, 8), at=90), "pump-b": make_series(120, 9)}
    fleet_table(train).to_csv("fleet.csv", index=False)
    fleet_table(test).to_csv("new.csv", index=False)
    runner = CliRunner()
    trained = runner.invoke(cli, ["train", "fleet.csv", "--series-col", "machine", *TINY_OPTIONS, "--jobs", "1"])
    assert trained.exit_code == 0, trained.output
    scored = runner.invoke(
        cli, ["score", "new.csv", "--series-col", "machine", "--model", "models:/anomaly-fleet/1", "-o", "s.csv", "--jobs", "1"]
    )
    assert scored.exit_code == 0, scored.output
    expected = pd.read_csv("s.csv")
    rows = pd.read_csv("new.csv")  # the two series interleaved, as a client would send them
    served = served_predictions("models:/anomaly-fleet/1", rows.drop(columns=["timestamp"]))

    assert served["machine"].tolist() == rows["machine"].tolist()  # one answer per row, in input order
    for name in test:
        mine = served[served.machine == name].reset_index(drop=True)
        theirs = expected[expected.machine == name].reset_index(drop=True)
        np.testing.assert_allclose(
            mine["score"].to_numpy(float), theirs["score"].to_numpy(), rtol=1e-6, atol=1e-6, equal_nan=True
        )
        assert mine["is_anomaly"].tolist() == theirs["is_anomaly"].tolist()
    assert bool(served[served.machine == "pump-a"]["is_anomaly"].iloc[90])  # the planted spike


@pytest.mark.slow
def test_a_served_model_with_the_time_of_day_takes_the_times_as_a_column(mlflow_store: Path):
    from tests.test_calendar import _daily_file

    _daily_file("daily.csv")
    runner = CliRunner()
    assert runner.invoke(cli, ["train", "daily.csv", *TINY_OPTIONS, "--alias", "champion"]).exit_code == 0
    rows = pd.read_csv("daily.csv").iloc[-200:]  # the times as ISO text, as a client sends them
    rows.to_csv("tail.csv", index=False)
    assert runner.invoke(cli, ["score", "tail.csv", "-o", "scores.csv"]).exit_code == 0
    expected = pd.read_csv("scores.csv", index_col=0)
    served = served_predictions("models:/anomaly-daily@champion", rows)

    np.testing.assert_allclose(
        served["score"].to_numpy(float), expected["score"].to_numpy(), rtol=1e-6, atol=1e-6, equal_nan=True
    )
    assert served["is_anomaly"].tolist() == expected["is_anomaly"].tolist()
    assert np.isfinite(served["score"].to_numpy(float)).sum() > 150
