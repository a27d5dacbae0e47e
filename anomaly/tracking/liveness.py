"""Which process owns a run, and whether it is still alive: runs that never stay falsely RUNNING.

Every run records who started it (:func:`owner_tags`): the host name, the process id, and —
where Linux tells them — the process's start time (clock ticks since boot, from
``/proc/<pid>/stat``), the boot id and the machine id. A run left RUNNING by a process that was
killed outright (``kill -9``, the OOM killer, a closed laptop) is found by
:func:`reap_dead_runs`, which marks it FAILED with the reason in :data:`TAG_REAPED`:

- only runs recorded by *this* host (same host name, and same machine id when both are known)
  are judged; a run of another host is never touched, whatever its state;
- a run is dead when the machine has rebooted since it started (the boot id changed), when no
  process has its pid, or when the process that has its pid started at another time (the pid was
  reused by a later process);
- a run whose process is alive is left alone.

Where ``/proc`` is missing (macOS, Windows), only "no process has this pid" is detected.

This module does not import mlflow: :func:`reap_dead_runs` takes a tracking client
(``mlflow.tracking.MlflowClient`` or anything with its ``search_runs``, ``set_tag`` and
``set_terminated``).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

TAG_HOST = "anomaly.host"
TAG_PID = "anomaly.pid"
TAG_PROCESS_START = "anomaly.process_start"
TAG_BOOT_ID = "anomaly.boot_id"
TAG_MACHINE_ID = "anomaly.machine_id"
TAG_REAPED = "anomaly.reaped_reason"

_PROC = Path("/proc")


def host_name() -> str:
    """This machine's host name, as recorded in :data:`TAG_HOST`."""
    return socket.gethostname()


def _read_first_line(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def boot_id() -> str | None:
    """The kernel's id of the current boot (Linux), or None."""
    return _read_first_line(_PROC / "sys" / "kernel" / "random" / "boot_id")


def machine_id() -> str | None:
    """The systemd/D-Bus machine id (``/etc/machine-id``), or None where there is none."""
    return _read_first_line(Path("/etc/machine-id")) or _read_first_line(Path("/var/lib/dbus/machine-id"))


def process_start(pid: int) -> str | None:
    """When process ``pid`` started, in clock ticks since boot (``/proc/<pid>/stat`` field 22).

    Returns
    -------
    str or None
        None when the process does not exist or ``/proc`` is not there.
    """
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may itself contain spaces or ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else None


def owner_tags(pid: int | None = None) -> dict[str, str]:
    """The tags that name the process owning a run (this process by default)."""
    pid = os.getpid() if pid is None else pid
    tags = {TAG_HOST: host_name(), TAG_PID: str(pid)}
    for key, value in ((TAG_PROCESS_START, process_start(pid)), (TAG_BOOT_ID, boot_id()), (TAG_MACHINE_ID, machine_id())):
        if value is not None:
            tags[key] = value
    return tags


def _pid_exists(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    except OSError:
        return False
    return True


def is_this_host(tags: Mapping[str, str]) -> bool:
    """Whether a run's owner tags name this machine (host name, and machine id when both known)."""
    if tags.get(TAG_HOST) != host_name():
        return False
    recorded, here = tags.get(TAG_MACHINE_ID), machine_id()
    return recorded is None or here is None or recorded == here


def death_reason(tags: Mapping[str, str]) -> str | None:
    """Why the process that owns a run of this host is known to be gone, or None if it may live.

    Parameters
    ----------
    tags : mapping
        The run's tags, with :data:`TAG_PID` and optionally :data:`TAG_PROCESS_START` and
        :data:`TAG_BOOT_ID`.

    Returns
    -------
    str or None
        A sentence for :data:`TAG_REAPED`; None when the process is alive (or when the tags do
        not say which process owns the run: nothing is then known to be dead).
    """
    try:
        pid = int(tags[TAG_PID])
    except (KeyError, ValueError):
        return None
    host = tags.get(TAG_HOST, "?")
    recorded_boot, current_boot = tags.get(TAG_BOOT_ID), boot_id()
    if recorded_boot and current_boot and recorded_boot != current_boot:
        return f"host {host} has rebooted since process {pid} started this run"
    if not _pid_exists(pid):
        return f"process {pid} on host {host} is gone (killed or crashed without ending the run)"
    recorded_start, current_start = tags.get(TAG_PROCESS_START), process_start(pid)
    if recorded_start and current_start and recorded_start != current_start:
        return (
            f"process {pid} on host {host} is gone: that pid now belongs to a process started at tick "
            f"{current_start}, not {recorded_start}"
        )
    return None


@dataclass(frozen=True)
class ReapedRun:
    """A RUNNING run found dead: what :func:`reap_dead_runs` did with it."""

    run_id: str
    experiment_id: str
    run_name: str
    reason: str
    marked: bool  # False when the store refused the change (``error`` says why)
    error: str | None = None


def reap_dead_runs(client: Any, experiment_ids: Iterable[str], host: str | None = None) -> list[ReapedRun]:
    """Mark the RUNNING runs of this host whose process is gone as FAILED, with the reason.

    Parameters
    ----------
    client : MlflowClient
        Anything with MLflow's ``search_runs``, ``set_tag`` and ``set_terminated``.
    experiment_ids : iterable of str
        Where to look.
    host : str, optional
        Only this host's runs are looked at (default: this machine); it must be this machine's
        name for anything to be reaped, since only local processes can be checked.

    Returns
    -------
    list of ReapedRun
        The dead runs found, each marked FAILED unless the store refused (``marked`` False).
    """
    host = host_name() if host is None else host
    experiment_ids = list(experiment_ids)
    if not experiment_ids or host != host_name():
        return []
    filter_string = f"attributes.status = 'RUNNING' and tags.`{TAG_HOST}` = '{host.replace(chr(39), '')}'"
    reaped = []
    page_token = None
    while True:
        page = client.search_runs(experiment_ids, filter_string, max_results=1000, page_token=page_token)
        for found in page:
            tags = found.data.tags
            if not is_this_host(tags):
                continue
            reason = death_reason(tags)
            if reason is None:
                continue
            when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
            try:
                client.set_tag(found.info.run_id, TAG_REAPED, f"{reason}; marked FAILED at {when}")
                client.set_terminated(found.info.run_id, status="FAILED")
            except Exception as err:  # e.g. a server that lets this user read the run, not edit it
                message = " ".join(str(err).split())[:300]
                logger.warning("run %s is dead (%s) but could not be marked FAILED: %s", found.info.run_id, reason, message)
                reaped.append(ReapedRun(found.info.run_id, found.info.experiment_id, found.info.run_name, reason, False, message))
                continue
            logger.info("run %s marked FAILED: %s", found.info.run_id, reason)
            reaped.append(ReapedRun(found.info.run_id, found.info.experiment_id, found.info.run_name, reason, True))
        page_token = getattr(page, "token", None)
        if not page_token:
            return reaped
