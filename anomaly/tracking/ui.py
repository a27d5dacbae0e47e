"""Start and stop the MLflow UI against the store that ``train`` and ``score`` use.

A lean server: one worker, no job runner (about 6 s to start, 0.5 GB; see STACK.md), bound to
127.0.0.1 unless told otherwise. It runs in its own process group so that stopping it stops
the whole tree it starts.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from anomaly.errors import AnomalyError

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


def check_port_free(host: str, port: int) -> None:
    """Raise a one-line AnomalyError when ``host:port`` cannot be bound."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as err:
            raise AnomalyError(
                f"--port {port}: cannot listen on {host}:{port} ({err.strerror}); choose another port with --port"
            ) from None


def start_ui(backend_store_uri: str, host: str = LOOPBACK, port: int = 5000) -> subprocess.Popen:
    """Start ``mlflow ui`` for ``backend_store_uri`` in its own process group.

    Returns
    -------
    subprocess.Popen
        The server process; its output goes to the caller's stderr.
    """
    check_port_free(host, port)
    env = dict(os.environ)
    env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    # The server launches uvicorn by name: the interpreter's own bin/ must be on PATH.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        backend_store_uri,
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        "1",
        # A line per request would bury the messages that matter.
        "--uvicorn-opts",
        "--no-access-log",
    ]
    logger.info("starting: %s", " ".join(command))
    # The server's own messages go to stderr: stdout carries only what the CLI says.
    return subprocess.Popen(command, env=env, start_new_session=True, stdin=subprocess.DEVNULL, stdout=sys.stderr)


def wait_until_ready(process: subprocess.Popen, url: str, timeout: float = 60.0, what: str = "the MLflow UI") -> None:
    """Poll ``url/health`` until the server answers; raise if it exits or times out.

    ``what`` names the server in the messages.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AnomalyError(f"{what} exited with code {process.returncode} before it was ready (see its messages above)")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    stop_ui(process)
    raise AnomalyError(f"{what} did not answer at {url}/health within {timeout:.0f} s")


def stop_ui(process: subprocess.Popen, grace: float = 10.0) -> None:
    """Stop the server and everything it started: SIGTERM to its group, SIGKILL after ``grace`` s."""
    if process.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue
