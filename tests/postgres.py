"""A real PostgreSQL server for the tests, and a fresh database in it for each test that asks.

CI (.ci/run) starts one with scripts/postgres and exports its URI in ``ANOMALY_TEST_POSTGRES_URI``.
Without that variable, the first test that needs it starts its own cluster the same way (and
stops it at the end of the session); only when PostgreSQL's programs are not installed at all is
the test skipped — and under CI it fails instead, since CI must run it.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
URI_ENV = "ANOMALY_TEST_POSTGRES_URI"


def _installed() -> bool:
    return shutil.which("pg_ctl") is not None or bool(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The URI of a running PostgreSQL server (``postgresql://user@127.0.0.1:PORT/db``)."""
    uri = os.environ.get(URI_ENV)
    if uri:
        yield uri
        return
    if not _installed():
        message = "PostgreSQL's server programs (initdb, pg_ctl) are not installed (apt-get install postgresql)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; .ci/run should have started one and set {URI_ENV}")
        pytest.skip(message)
    directory = tempfile.mkdtemp(prefix="anomaly-test-pg-")
    started = subprocess.run(
        ["bash", str(ROOT / "scripts" / "postgres"), "start", directory], capture_output=True, text=True, timeout=120
    )
    assert started.returncode == 0, started.stderr
    try:
        yield started.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run(["bash", str(ROOT / "scripts" / "postgres"), "stop", directory], capture_output=True, timeout=60)
        shutil.rmtree(directory, ignore_errors=True)


def new_database(server_uri: str) -> str:
    """Create a new, empty database on the server at ``server_uri``; return its URI."""
    import psycopg

    name = f"anomaly_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_uri, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return server_uri.rsplit("/", 1)[0] + f"/{name}"
