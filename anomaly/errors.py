"""Errors raised by `anomaly` for problems a user can fix.

Every error here is about the user's input (data, spec, options, model URI), carries a
one-line message that names the file, column or option, what was expected and what was
found, and maps to exit code 2 in the CLI. Anything else that escapes is a bug.
"""

from __future__ import annotations


class AnomalyError(Exception):
    """Base class: a problem with the user's input, reported without a traceback.

    Attributes
    ----------
    exit_code : int
        Process exit code the CLI uses for this error (2: bad input or usage).
    """

    exit_code: int = 2


class DataError(AnomalyError):
    """The data file is missing, unreadable, or its content is unusable."""


class SpecError(AnomalyError):
    """The pipeline spec (YAML file or CLI override) is invalid."""


class ModelNotFoundError(AnomalyError):
    """The model URI does not resolve to a model logged by `anomaly`."""


class NotFittedError(AnomalyError):
    """A detector was used for scoring before it was fitted."""


class TrackingServerError(AnomalyError):
    """The MLflow tracking server cannot be reached, asks for a login, or refuses this user."""


class ServerError(AnomalyError):
    """An ``anomaly server`` option, or what it needs around it, is unusable."""


class Terminated(KeyboardInterrupt):
    """A command stopped by SIGTERM (``kill PID``): handled as Ctrl-C is, and told apart in the run's tags."""
