"""`anomaly server`'s options: what it refuses, with one line and exit code 2, before starting anything."""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from anomaly.cli import cli
from anomaly.errors import ServerError
from anomaly.tracking import server


def run_server(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, ["server", *args], env=env)


def one_error_line(result, *needles: str) -> str:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_auth_without_an_admin_password_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_AUTH_ADMIN_PASSWORD", raising=False)
    one_error_line(run_server("--auth"), "--auth", "MLFLOW_AUTH_ADMIN_PASSWORD", "no default password", "got it unset")
    one_error_line(run_server("--auth", env={"MLFLOW_AUTH_ADMIN_PASSWORD": ""}), "got it unset or empty")


def test_an_unreachable_database_is_one_line_naming_it_without_its_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    line = one_error_line(
        run_server("--backend-store-uri", f"postgresql://team:hunter2@127.0.0.1:{port}/mlflow"),
        f"--backend-store-uri postgresql+psycopg://team:***@127.0.0.1:{port}/mlflow",
        "expected a PostgreSQL database that accepts this login; got:",
    )
    assert "hunter2" not in line


def test_a_busy_port_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        one_error_line(run_server("--port", str(port)), f"--port {port}", "choose another port")


def test_postgresql_uris_use_psycopg_3_and_the_default_is_the_local_store(tmp_path: Path):
    assert server.backend_store_uri("postgresql://u:p@db:5432/x") == "postgresql+psycopg://u:p@db:5432/x"
    assert server.backend_store_uri("postgres://db/x") == "postgresql+psycopg://db/x"
    assert server.backend_store_uri("postgresql+psycopg2://db/x") == "postgresql+psycopg2://db/x"  # the user's choice
    assert server.backend_store_uri(None, tmp_path) == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    assert server.artifacts_destination(None, tmp_path) == str(tmp_path.resolve() / "mlartifacts")
    assert server.artifacts_destination("s3://bucket/runs") == "s3://bucket/runs"
    assert server.hide_password("postgresql+psycopg://u:secret@db/x") == "postgresql+psycopg://u:***@db/x"


def test_the_auth_settings_file_is_private_and_holds_no_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MLFLOW_AUTH_ADMIN_PASSWORD", "do-not-write-me")
    config = server.ServerConfig(
        backend_store_uri="postgresql+psycopg://u@db/x",
        artifacts_destination=str(tmp_path),
        auth=True,
        default_permission="READ",
        auth_cache_seconds=30,
    )
    path = server.write_auth_config(tmp_path, config)
    text = path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "do-not-write-me" not in text and "admin_password" not in text
    assert "default_permission = READ" in text and "database_uri = postgresql+psycopg://u@db/x" in text
    assert "auth_cache_ttl_seconds = 30" in text
    command = server.server_command(config)
    assert command[command.index("--app-name") + 1] == "basic-auth" and "--serve-artifacts" in command
    assert command[command.index("--host") + 1] == "127.0.0.1"
    with pytest.raises(ServerError, match="--default-permission must be one of"):
        server.write_auth_config(tmp_path, server.ServerConfig("sqlite:///x", str(tmp_path), default_permission="ALL"))


@pytest.mark.parametrize(
    "store, found",
    [
        ("file://{tmp}/mlruns", "got a file store, which MLflow 3 refuses"),
        ("{tmp}/mlruns", "got a file store, which MLflow 3 refuses"),
        ("bogus://x", "got the scheme bogus://, which no MLflow store takes"),
        ("postgresql://u:secret@127.0.0.1:{port}/x", "got no database answering on 127.0.0.1:{port}"),
    ],
)
def test_a_store_that_cannot_be_used_gets_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: str, found: str):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    uri = store.format(tmp=tmp_path, port=port)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    line = one_error_line(
        CliRunner().invoke(cli, ["runs"]),
        "(MLFLOW_TRACKING_URI): expected a database (sqlite:///PATH",
        found.format(port=port),
    )
    assert "secret" not in line


def test_a_client_of_a_server_that_is_not_there_gets_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    result = CliRunner().invoke(cli, ["runs"])
    one_error_line(
        result,
        f"cannot reach the tracking server http://127.0.0.1:{port} (MLFLOW_TRACKING_URI)",
        "expected an MLflow server answering there",
        "got",
    )
