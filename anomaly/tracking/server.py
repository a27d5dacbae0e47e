"""A tracking server for a team: ``mlflow server`` on PostgreSQL (or SQLite), with logins.

Everything ``anomaly server`` decides before it starts MLflow's own server: the backend URI
(``postgresql://`` mapped to SQLAlchemy's psycopg 3 driver, which MLflow 3.17 needs), where
artifacts go (proxied by the server, so clients need no access to the storage), the address
(127.0.0.1 unless told otherwise), and, with ``--auth``, MLflow's basic-auth app with its users
in the same database. The admin password is read by MLflow from ``MLFLOW_AUTH_ADMIN_PASSWORD``;
it is never written to a file and there is no default.

Starting, waiting for ``/health`` and stopping reuse :mod:`anomaly.tracking.ui`.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

from anomaly.errors import ServerError
from anomaly.tracking.ui import LOOPBACK, check_port_free

logger = logging.getLogger(__name__)

ADMIN_PASSWORD_ENV = "MLFLOW_AUTH_ADMIN_PASSWORD"
ADMIN_USERNAME_ENV = "MLFLOW_AUTH_ADMIN_USERNAME"
SECRET_KEY_ENV = "MLFLOW_FLASK_SERVER_SECRET_KEY"
PERMISSIONS = ("READ", "EDIT", "MANAGE", "NO_PERMISSIONS")
_POSTGRES = re.compile(r"^(postgres|postgresql)(\+(?P<driver>[a-z0-9_]+))?://", re.I)


def hide_password(uri: str) -> str:
    """``uri`` with the password of its user (if any) replaced by ``***``, for messages."""
    return re.sub(r"^([a-z0-9+]+://[^:/@]+):[^@/]*@", r"\1:***@", uri, flags=re.I)


def backend_store_uri(uri: str | None, cwd: Path | None = None) -> str:
    """The SQLAlchemy URI MLflow should use.

    Parameters
    ----------
    uri : str or None
        ``--backend-store-uri``. None: MLflow's local default, ``sqlite:///<cwd>/mlflow.db``,
        the store ``anomaly train`` uses in that directory. ``postgresql://`` (or
        ``postgres://``) becomes ``postgresql+psycopg://``: MLflow 3.17 needs psycopg 3.

    Raises
    ------
    ServerError
        For PostgreSQL when psycopg 3 is not installed.
    """
    if uri is None:
        return f"sqlite:///{(cwd or Path.cwd()).resolve() / 'mlflow.db'}"
    match = _POSTGRES.match(uri)
    if match is None:
        return uri
    driver = match["driver"]
    if driver in (None, "psycopg"):
        if find_spec("psycopg") is None:
            raise ServerError(
                f"--backend-store-uri {hide_password(uri)}: PostgreSQL needs the psycopg 3 driver on the server; "
                "got none installed: pip install 'anomaly[server]'"
            )
        return "postgresql+psycopg://" + uri[match.end() :]
    return uri  # an explicit driver (psycopg2, pg8000, ...) is the user's choice


def check_database(uri: str, timeout: int = 10) -> None:
    """Connect once to a PostgreSQL backend, so that a wrong URI is one clear line, not a server crash."""
    if not uri.startswith("postgresql+psycopg://"):
        return
    import psycopg

    try:
        psycopg.connect("postgresql://" + uri[len("postgresql+psycopg://") :], connect_timeout=timeout).close()
    except psycopg.Error as err:
        reason = " ".join(str(err).split())
        raise ServerError(
            f"--backend-store-uri {hide_password(uri)}: expected a PostgreSQL database that accepts this login; got: {reason}"
        ) from None


@dataclass(frozen=True)
class ServerConfig:
    """What ``anomaly server`` starts.

    Attributes
    ----------
    backend_store_uri : str
        As returned by :func:`backend_store_uri`.
    artifacts_destination : str
        Where the server keeps artifacts (a directory or an object-store URI); clients reach
        them through the server.
    host, port : str, int
    workers : int
    auth : bool
        MLflow's basic-auth app, users in ``backend_store_uri``.
    default_permission : str
        What every logged-in user may do with experiments and models not their own.
    allowed_hosts : str, optional
        Host headers the server answers (MLflow's default: localhost and private addresses).
    auth_cache_seconds : int
        How long each worker may reuse a successful password check (MLflow's default 0: every
        request hashes the password again, a costly PBKDF2; a changed password may be accepted
        by a worker that cached the old one for this long).
    """

    backend_store_uri: str
    artifacts_destination: str
    host: str = LOOPBACK
    port: int = 5000
    workers: int = 4
    auth: bool = False
    default_permission: str = "EDIT"
    allowed_hosts: str | None = None
    auth_cache_seconds: int = 0

    @property
    def url(self) -> str:
        shown = LOOPBACK if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{shown}:{self.port}"


def artifacts_destination(destination: str | None, cwd: Path | None = None) -> str:
    """``--artifacts-destination``, a local directory made absolute (default ``./mlartifacts``)."""
    if destination is None:
        return str((cwd or Path.cwd()).resolve() / "mlartifacts")
    if re.match(r"^[a-z][a-z0-9+.-]*://", destination, re.I) and not destination.startswith("file://"):
        return destination  # s3://, gs://, ...: MLflow's business
    path = Path(destination[len("file://") :] if destination.startswith("file://") else destination).expanduser()
    return str(path.resolve())


def write_auth_config(directory: Path, config: ServerConfig) -> Path:
    """The basic-auth app's settings file (no password in it), readable by this user only."""
    if config.default_permission not in PERMISSIONS:
        raise ServerError(f"--default-permission must be one of {', '.join(PERMISSIONS)}; got {config.default_permission!r}")
    path = directory / "basic_auth.ini"
    text = "\n".join(
        [
            "[mlflow]",
            f"default_permission = {config.default_permission}",
            # The users live beside the runs, in tables of their own (alembic_version_auth).
            f"database_uri = {config.backend_store_uri.replace('%', '%%')}",
            f"admin_username = {os.environ.get(ADMIN_USERNAME_ENV) or 'admin'}",
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth",
            f"auth_cache_ttl_seconds = {int(config.auth_cache_seconds)}",
            "",
        ]
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


def server_command(config: ServerConfig) -> list[str]:
    """The ``mlflow server`` command line for ``config``."""
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        config.backend_store_uri,
        "--serve-artifacts",
        "--artifacts-destination",
        config.artifacts_destination,
        "--host",
        config.host,
        "--port",
        str(config.port),
        "--workers",
        str(config.workers),
        "--uvicorn-opts",
        "--no-access-log",
    ]
    if config.allowed_hosts:
        command += ["--allowed-hosts", config.allowed_hosts]
    if config.auth:
        command += ["--app-name", "basic-auth"]
    return command


@dataclass
class RunningServer:
    """A started server: its process, and the private directory of its settings."""

    process: subprocess.Popen
    config: ServerConfig
    settings: tempfile.TemporaryDirectory | None = None

    def cleanup(self) -> None:
        if self.settings is not None:
            self.settings.cleanup()
            self.settings = None


def start_server(config: ServerConfig) -> RunningServer:
    """Check the options, then start ``mlflow server`` in its own process group.

    Raises
    ------
    ServerError
        ``--auth`` without :data:`ADMIN_PASSWORD_ENV`, a busy port, an unreachable database.
    """
    if config.auth and not os.environ.get(ADMIN_PASSWORD_ENV):
        raise ServerError(
            f"--auth: expected the admin's password in the environment variable {ADMIN_PASSWORD_ENV} "
            "(there is no default password); got it unset or empty"
        )
    check_port_free(config.host, config.port)
    check_database(config.backend_store_uri)
    if "://" not in config.artifacts_destination:
        Path(config.artifacts_destination).mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    settings = None
    if config.auth:
        # The auth app signs its CSRF tokens with this key; every worker of one server must share
        # it. A key of the user's own keeps sessions valid across restarts and several servers.
        if not env.get(SECRET_KEY_ENV):
            env[SECRET_KEY_ENV] = secrets.token_hex(32)
        settings = tempfile.TemporaryDirectory(prefix="anomaly-server-")
        env["MLFLOW_AUTH_CONFIG_PATH"] = str(write_auth_config(Path(settings.name), config))
    command = server_command(config)
    logger.info("starting: %s", " ".join(hide_password(part) for part in command))
    process = subprocess.Popen(command, env=env, start_new_session=True, stdin=subprocess.DEVNULL, stdout=sys.stderr)
    return RunningServer(process=process, config=config, settings=settings)
