"""`anomaly runs` and reaping: a run whose process died is marked FAILED, a live one never is."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from anomaly.cli import cli
from anomaly.tracking import liveness
from tests.conftest import make_series
from tests.test_cli import TINY_OPTIONS
from tests.test_reliability import anomaly


def runs_json(*args: str) -> dict:
    result = CliRunner().invoke(cli, ["runs", *args, "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def a_dead_pid() -> int:
    """The pid of a process that has just exited (and been waited for)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    assert not Path(f"/proc/{process.pid}").exists() or liveness.process_start(process.pid) is None
    return process.pid


@pytest.fixture
def client(mlflow_store: Path):
    from mlflow.tracking import MlflowClient

    from anomaly.tracking import runs as tracking

    tracking.ensure_store()
    return MlflowClient()


def running_run(client, tags: dict[str, str]) -> str:
    """A RUNNING run in experiment anomaly-plant with these owner tags, as `anomaly train` would leave."""
    experiment = client.get_experiment_by_name("anomaly-plant")
    experiment_id = experiment.experiment_id if experiment else client.create_experiment("anomaly-plant")
    return client.create_run(experiment_id, tags={"anomaly.kind": "train", **tags}).info.run_id


@pytest.mark.slow
def test_a_training_killed_with_sigkill_is_reaped_and_a_live_one_is_left_alone(mlflow_store: Path, client):
    make_series(600, 0).to_csv(mlflow_store / "plant.csv")
    options = [*TINY_OPTIONS]
    options[options.index("--epochs") + 1] = "500"
    victim = anomaly("train", "plant.csv", *options, "--patience", "500", cwd=mlflow_store)
    try:
        for line in victim.stdout:  # progress lines: training is under way, its run RUNNING
            if "epoch   3/" in line:
                break
        else:
            pytest.fail(f"training ended before epoch 3: {victim.stderr.read()}")
        (run,) = client.search_runs([client.get_experiment_by_name("anomaly-plant").experiment_id])
        assert run.data.tags[liveness.TAG_PID] == str(victim.pid)
        assert run.data.tags[liveness.TAG_HOST] == liveness.host_name()

        alive = runs_json("--reap")  # the process is alive: nothing to reap
        assert alive["reaped"] == []
        assert client.get_run(run.info.run_id).info.status == "RUNNING"
        assert [(r["run_id"], r["status"], r["kind"]) for r in alive["runs"]] == [(run.info.run_id, "RUNNING", "train")]
    finally:
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=30)
    assert client.get_run(run.info.run_id).info.status == "RUNNING"  # what SIGKILL leaves behind

    reaped = runs_json("--reap")
    assert [(r["run_id"], r["marked"]) for r in reaped["reaped"]] == [(run.info.run_id, True)]
    after = client.get_run(run.info.run_id)
    assert after.info.status == "FAILED" and after.info.end_time is not None
    reason = after.data.tags[liveness.TAG_REAPED]
    assert f"process {victim.pid} on host {liveness.host_name()} is gone" in reason and "marked FAILED at" in reason
    listed = reaped["runs"][0]
    assert listed["status"] == "FAILED" and listed["reason"] == reason and listed["data"] == "plant.csv"
    assert runs_json("--reap")["reaped"] == []  # reaping twice changes nothing


def test_reaping_judges_only_this_hosts_runs_by_pid_and_process_start(client):
    here = liveness.owner_tags()  # this test process: alive
    assert here[liveness.TAG_PID] == str(os.getpid())
    live = running_run(client, here)
    elsewhere = running_run(client, {**here, liveness.TAG_HOST: "another-host", liveness.TAG_PID: str(a_dead_pid())})
    gone = running_run(client, {**here, liveness.TAG_PID: str(a_dead_pid())})
    no_owner = running_run(client, {})  # a run not started by anomaly, or by an older version
    expected = {gone}
    if liveness.TAG_PROCESS_START in here:  # Linux: a reused pid is told apart by its start time
        reused = running_run(client, {**here, liveness.TAG_PROCESS_START: str(int(here[liveness.TAG_PROCESS_START]) - 1)})
        expected.add(reused)
    if liveness.TAG_BOOT_ID in here:
        rebooted = running_run(client, {**here, liveness.TAG_BOOT_ID: "00000000-0000-0000-0000-000000000000"})
        expected.add(rebooted)

    # Listed without --reap, the dead ones stay RUNNING and say why they are dead.
    listed = {r["run_id"]: r for r in runs_json("--limit", "50")["runs"]}
    assert {run_id for run_id, r in listed.items() if r["dead"]} == expected
    assert all(r["status"] == "RUNNING" for r in listed.values())
    assert "is gone (killed or crashed" in listed[gone]["dead"]
    shown = CliRunner().invoke(cli, ["runs", "--limit", "50"], catch_exceptions=False).stdout
    assert shown.count("; anomaly runs --reap marks it FAILED") == len(expected)

    result = runs_json("--reap", "--limit", "50")
    assert {r["run_id"] for r in result["reaped"]} == expected and all(r["marked"] for r in result["reaped"])
    status = {r["run_id"]: r["status"] for r in result["runs"]}
    assert status[live] == status[elsewhere] == status[no_owner] == "RUNNING"
    assert all(status[run_id] == "FAILED" for run_id in expected)
    reasons = {run_id: client.get_run(run_id).data.tags[liveness.TAG_REAPED] for run_id in expected}
    assert "is gone (killed or crashed" in reasons[gone]
    if liveness.TAG_PROCESS_START in here:
        assert f"process {os.getpid()}" in reasons[reused] and "now belongs to a process started at tick" in reasons[reused]
    if liveness.TAG_BOOT_ID in here:
        assert "has rebooted since" in reasons[rebooted]
    for run_id in (live, elsewhere, no_owner):
        assert liveness.TAG_REAPED not in client.get_run(run_id).data.tags


def test_a_run_recorded_by_another_machine_with_this_host_name_is_not_touched(client):
    here = liveness.owner_tags()
    if liveness.TAG_MACHINE_ID not in here:
        pytest.skip("this machine has no /etc/machine-id to tell machines of the same name apart")
    twin = running_run(client, {**here, liveness.TAG_PID: str(a_dead_pid()), liveness.TAG_MACHINE_ID: "f" * 32})
    assert runs_json("--reap")["reaped"] == []
    assert client.get_run(twin).info.status == "RUNNING"


@pytest.mark.slow
def test_runs_lists_training_and_scoring_with_data_model_version_and_duration(mlflow_store: Path):
    make_series(400, 0).to_csv(mlflow_store / "plant.csv")
    make_series(120, 1).to_csv(mlflow_store / "new.csv")
    runner = CliRunner()
    assert runner.invoke(cli, ["train", "plant.csv", *TINY_OPTIONS], catch_exceptions=False).exit_code == 0
    assert runner.invoke(cli, ["score", "new.csv"], catch_exceptions=False).exit_code == 0

    listed = runs_json()["runs"]
    assert [(r["kind"], r["status"], r["data"], r["model_version"]) for r in listed] == [
        ("score", "FINISHED", "new.csv", "1"),
        ("train", "FINISHED", "plant.csv", "1"),
    ]
    assert all(r["seconds"] > 0 and r["experiment"] == "anomaly-plant" for r in listed)
    assert runs_json("--limit", "1")["runs"] == listed[:1]

    text = runner.invoke(cli, ["runs"], catch_exceptions=False)
    assert text.exit_code == 0
    header, score_line, train_line = (line.split() for line in text.stdout.strip().splitlines())
    assert header == ["started", "kind", "status", "took", "data", "model", "run", "experiment"]
    for line, kind, data, run in ((score_line, "score", "new.csv", listed[0]), (train_line, "train", "plant.csv", listed[1])):
        assert line[2:4] == [kind, "FINISHED"] and line[5:] == [data, "v1", run["run_id"], "anomaly-plant"]


def test_runs_on_an_empty_store_says_so(mlflow_store: Path):
    result = CliRunner().invoke(cli, ["runs"], catch_exceptions=False)
    assert result.exit_code == 0 and "No runs of anomaly in the tracking store" in result.stdout
