"""A team's set-up, for real: `anomaly server --auth` on PostgreSQL, clients as logged-in users.

One server (two workers) on a fresh PostgreSQL database; alice trains four models at once, bob
scores with each of them at once (the default EDIT permission lets a teammate log into alice's
experiment); then the checks, a client without or with a wrong login, and a restart on the same
database. Models are tiny (8 units, 3 epochs, 250 rows) so that this takes about two minutes on
two cores.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import make_series
from tests.postgres import new_database, postgres_server  # noqa: F401 - a fixture
from tests.test_cli import TINY_OPTIONS

ROOT = Path(__file__).resolve().parent.parent
ADMIN_PASSWORD = "admin-pw-for-this-test-only"
USERS = {"alice": "alice-pw-1234567", "bob": "bob-pw-1234567"}

pytestmark = pytest.mark.slow


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def client_env(url: str | None, user: str | None = None, password: str | None = None) -> dict[str, str]:
    """The environment of a client process: the server's URL and, optionally, a login."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_TRACKING_", "MLFLOW_AUTH_"))}
    env["PYTHONPATH"] = str(ROOT)
    if url:
        env["MLFLOW_TRACKING_URI"] = url
    if user:
        env["MLFLOW_TRACKING_USERNAME"] = user
    if password is not None:
        env["MLFLOW_TRACKING_PASSWORD"] = password
    return env


class Server:
    """`anomaly server --auth` as a team would start it."""

    def __init__(self, database: str, artifacts: Path, cwd: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**client_env(None), "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD}
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "anomaly",
                "server",
                "--backend-store-uri",
                database,
                "--artifacts-destination",
                str(artifacts),
                "--auth",
                "--port",
                str(self.port),
                "--workers",
                "2",
                # Each password check is a PBKDF2 hash: cached, the eight clients cost the server far less.
                "--auth-cache-seconds",
                "60",
            ],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        self.ready = self.process.stdout.readline()  # printed once /health answers

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=60)
        finally:
            if self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGKILL)


def anomaly(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "anomaly", *args], cwd=cwd, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def finish(processes: list[subprocess.Popen]) -> list[dict]:
    """Wait for every process; each must succeed and end with its --json line."""
    results = []
    for process in processes:
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def add_user(url: str, name: str, password: str) -> None:
    import base64
    import urllib.request

    token = base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()
    request = urllib.request.Request(
        f"{url}/api/2.0/mlflow/users/create",
        data=json.dumps({"username": name, "password": password}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Basic {token}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert json.load(response)["user"]["username"] == name


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory, postgres_server: str) -> Iterator[dict]:  # noqa: F811
    work = tmp_path_factory.mktemp("team")
    database, artifacts = new_database(postgres_server), work / "artifacts"
    make_series(250, 0).to_csv(work / "plant.csv")
    for v in range(1, 5):
        make_series(150, 10 + v).to_csv(work / f"new{v}.csv")
    server = Server(database, artifacts, work)
    try:
        assert server.ready.startswith(f"MLflow tracking server: {server.url}"), server.ready
        for name, password in USERS.items():
            add_user(server.url, name, password)
        alice, bob = (client_env(server.url, name, password) for name, password in USERS.items())
        trained = finish(
            [
                anomaly("train", "plant.csv", *TINY_OPTIONS, "--seed", str(seed), "--json", cwd=work, env=alice)
                for seed in range(4)
            ]
        )
        scored = finish(
            [
                anomaly("score", f"new{v}.csv", "--model", f"models:/anomaly-plant/{v}", "--json", cwd=work, env=bob)
                for v in range(1, 5)
            ]
        )
        yield {"server": server, "database": database, "artifacts": artifacts, "work": work, "trained": trained, "scored": scored}
    finally:
        if server.process.poll() is None:
            server.stop()


def as_user(monkeypatch: pytest.MonkeyPatch, url: str, user: str = "alice") -> object:
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", USERS[user])
    return MlflowClient()


def test_four_concurrent_trainings_and_four_scorings_all_finish_linked_to_their_models(team, monkeypatch):
    client = as_user(monkeypatch, team["server"].url)
    assert sorted(r["model_uri"] for r in team["trained"]) == [f"models:/anomaly-plant/{v}" for v in range(1, 5)]
    versions = {v.version: v for v in client.search_model_versions("name = 'anomaly-plant'")}
    assert sorted(versions, key=int) == ["1", "2", "3", "4"]
    training_of = {f"models:/anomaly-plant/{v}": versions[str(v)].run_id for v in range(1, 5)}
    assert {r["model_uri"]: r["run_id"] for r in team["trained"]} == training_of
    for v, result in enumerate(team["scored"], start=1):
        run = client.get_run(result["run_id"])
        assert run.info.status == "FINISHED" and result["rows"] == 150
        assert run.data.tags["anomaly.model_version"] == str(v)
        assert run.data.tags["anomaly.model_uri"] == f"models:/anomaly-plant/{v}"
        assert run.data.tags["anomaly.training_run_id"] == versions[str(v)].run_id
        assert run.info.user_id == "bob"
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "results")}
        assert {"results/events.csv", f"results/new{v}_scores.csv"} <= artifacts
    for result in team["trained"]:
        run = client.get_run(result["run_id"])
        assert run.info.status == "FINISHED" and run.info.user_id == "alice"
    experiment = client.get_experiment_by_name("anomaly-plant")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert experiment.artifact_location.startswith("mlflow-artifacts:")  # proxied: clients need no storage access
    assert list(team["artifacts"].rglob("MLmodel")), "the server keeps the models in --artifacts-destination"
    all_runs = client.search_runs([experiment.experiment_id])
    assert len(all_runs) == 8 and {r.info.status for r in all_runs} == {"FINISHED"}


@pytest.mark.parametrize("login", [None, ("alice", "not-her-password")])
def test_a_client_without_the_right_login_gets_one_line_and_exit_code_2(team, login):
    env = client_env(team["server"].url, *(login or (None, None)))
    for args in (["runs"], ["score", "new1.csv", "--model", "models:/anomaly-plant/1"]):
        done = subprocess.run(
            [sys.executable, "-m", "anomaly", *args], cwd=team["work"], env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
        assert lines[0].startswith(f"error: the tracking server {team['server'].url} (MLFLOW_TRACKING_URI) ")
        if login is None:
            assert "asks for a login: expected MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD" in lines[0]
            assert "got neither variable set (401 Unauthorized)" in lines[0]
        else:
            assert "refused the login of user 'alice'" in lines[0] and "got 401 Unauthorized" in lines[0]


def test_the_server_restarted_on_the_same_database_shows_the_same_runs_and_models(team, monkeypatch):
    before = team["server"]
    if before.process.poll() is None:
        assert before.stop() == 0  # SIGTERM: stops cleanly, with everything it started
    again = Server(team["database"], team["artifacts"], team["work"])
    try:
        assert again.ready.startswith(f"MLflow tracking server: {again.url}"), again.ready
        client = as_user(monkeypatch, again.url, "bob")  # users, too, live in the database
        experiment = client.get_experiment_by_name("anomaly-plant")
        runs = client.search_runs([experiment.experiment_id])
        expected = {r["run_id"] for r in team["trained"] + team["scored"]}
        assert {r.info.run_id for r in runs} == expected and {r.info.status for r in runs} == {"FINISHED"}
        assert sorted(v.version for v in client.search_model_versions("name = 'anomaly-plant'")) == ["1", "2", "3", "4"]
        listed = subprocess.run(
            [sys.executable, "-m", "anomaly", "runs", "--json"],
            cwd=team["work"],
            env=client_env(again.url, "bob", USERS["bob"]),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert listed.returncode == 0, listed.stderr
        kinds = sorted(r["kind"] for r in json.loads(listed.stdout.strip().splitlines()[-1])["runs"])
        assert kinds == ["score"] * 4 + ["train"] * 4
        # A model logged before the restart still loads through the new server.
        from anomaly.tracking import runs as tracking

        monkeypatch.setattr(tracking, "_READY_STORES", set())
        resolved = tracking.resolve_model("models:/anomaly-plant/3")
        assert (
            resolved.training_run_id
            == team["trained"][[r["model_uri"] for r in team["trained"]].index("models:/anomaly-plant/3")]["run_id"]
        )
    finally:
        assert again.stop() == 0
