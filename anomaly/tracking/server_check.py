"""Is the tracking server in ``MLFLOW_TRACKING_URI`` there, and does it let this client in?

One cheap look before any work starts, so that an unreachable server, a missing login or a
refused one is a one-line :class:`~anomaly.errors.TrackingServerError` naming the server, what
was expected and what came back, instead of MLflow's retries (minutes) and a traceback. Standard
library only: it runs before MLflow talks to the server.
"""

from __future__ import annotations

import base64
import logging
import os
import socket
import urllib.error
import urllib.request

from anomaly.errors import TrackingServerError

logger = logging.getLogger(__name__)

_TIMEOUT = 10.0
_LOGIN_HINT = "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD of a user of that server"


def credentials() -> tuple[str | None, dict[str, str]]:
    """The user name MLflow will send (if any) and the matching request headers."""
    user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if user and password is not None:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        return user, {"Authorization": f"Basic {token}"}
    if os.environ.get("MLFLOW_TRACKING_TOKEN"):
        return "<token>", {"Authorization": f"Bearer {os.environ['MLFLOW_TRACKING_TOKEN']}"}
    return None, {}


def refusal_message(uri: str, status: int, user: str | None = None) -> str:
    """The one line for a 401/403 answer from the tracking server at ``uri``."""
    if status == 401 and user is None:
        return (
            f"the tracking server {uri} (MLFLOW_TRACKING_URI) asks for a login: expected {_LOGIN_HINT}; "
            "got neither variable set (401 Unauthorized)"
        )
    if status == 401:
        return (
            f"the tracking server {uri} (MLFLOW_TRACKING_URI) refused the login of user {user!r}: expected "
            f"{_LOGIN_HINT}; got 401 Unauthorized (wrong user name or password)"
        )
    who = f"user {user!r}" if user else "this client"
    return (
        f"the tracking server {uri} (MLFLOW_TRACKING_URI) does not let {who} do this: expected a user with "
        "permission on the experiment or model; got 403 Forbidden (ask the server's admin)"
    )


def check_tracking_server(uri: str, timeout: float = _TIMEOUT) -> None:
    """Raise :class:`TrackingServerError` when ``uri`` cannot be reached or refuses this client.

    Parameters
    ----------
    uri : str
        ``http://`` or ``https://`` tracking URI.
    timeout : float
        Seconds to wait for each answer.
    """
    base = uri.rstrip("/")
    try:
        with urllib.request.urlopen(f"{base}/health", timeout=timeout):
            pass
    except urllib.error.HTTPError:
        pass  # an answer: the server is there (an older or proxied server may lack /health)
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        if isinstance(reason, (ConnectionError, socket.gaierror, TimeoutError, socket.timeout)):
            raise TrackingServerError(
                f"cannot reach the tracking server {uri} (MLFLOW_TRACKING_URI): expected an MLflow server "
                f"answering there (`anomaly server`); got {reason}"
            ) from None
        logger.debug("could not check %s (%s); leaving it to MLflow", uri, reason)
        return
    user, headers = credentials()
    request = urllib.request.Request(f"{base}/api/2.0/mlflow/experiments/search?max_results=1", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            return
    except urllib.error.HTTPError as err:
        if err.code in (401, 403):
            raise TrackingServerError(refusal_message(uri, err.code, user)) from None
        logger.debug("%s answered %s to a search; leaving it to MLflow", uri, err.code)
    except (urllib.error.URLError, OSError) as err:
        logger.debug("could not check %s (%s); leaving it to MLflow", uri, err)
