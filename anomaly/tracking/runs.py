"""Everything MLflow: runs, params, metrics, artifacts, the logged model and model URIs.

The only module of the package that imports mlflow (besides ``pyfunc.py``, the file
MLflow itself executes to load the model). With no ``MLFLOW_TRACKING_URI`` set, MLflow's own
default store is used: ``./mlflow.db`` with artifacts under ``./mlruns``, so ``mlflow ui`` in
the same directory shows every run.
"""

from __future__ import annotations

import io
import logging
import os
import re
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, redirect_stderr
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from anomaly.errors import ModelNotFoundError, Terminated, TrackingServerError
from anomaly.tracking import liveness

# Set before mlflow is imported: a command-line tool should not phone home unasked. A user's
# own setting wins.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import mlflow  # noqa: E402
from mlflow.data.pandas_dataset import PandasDataset  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

logger = logging.getLogger(__name__)

MODEL_ARTIFACT = "model"
DETECTOR_ARTIFACT = "detector"
FLEET_ARTIFACT = "fleet"  # a fleet model: anomaly.fleet.model.Fleet's folder
TAG_TRAINING_RUN = "anomaly.training_run_id"
TAG_MODEL_URI = "anomaly.model_uri"
TAG_MODEL_VERSION = "anomaly.model_version"
TAG_KIND = "anomaly.kind"
TAG_ERROR = "anomaly.error"
TAG_NOTES = "anomaly.notes"
# MLflow's UI reads this experiment tag to choose its mode: our runs belong in the model-training
# views, not beside GenAI traces and LLM judges ("Evaluations").
TAG_EXPERIMENT_KIND = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
# MLflow's datasets table holds digests of at most 36 characters: the first 36 hex digits of the
# data's sha256 (the whole one is the run's ``data.sha256`` param).
_DIGEST_CHARS = 36
_DATASET_ATTEMPTS = 5
_MODEL_CODE = {
    DETECTOR_ARTIFACT: Path(__file__).with_name("pyfunc.py"),
    FLEET_ARTIFACT: Path(__file__).with_name("fleet_pyfunc.py"),
}
_PACKAGE_DIR = Path(__file__).resolve().parent.parent  # the whole anomaly package travels with the model
# MLflow limits a param value to 6000 characters.
_MAX_PARAM = 6000


def tracking_uri() -> str:
    """The tracking URI in effect (``MLFLOW_TRACKING_URI`` or MLflow's default)."""
    return mlflow.get_tracking_uri()


_READY_STORES: set[str] = set()


def ensure_store() -> None:
    """Create or upgrade the tracking store's tables once, one process at a time.

    MLflow creates (and migrates) a sqlite store's tables on first use. Several processes doing
    that at once on a new store race each other (``ALTER TABLE ... duplicate column``), so the
    first access is serialised with an exclusive lock on ``<db>.lock`` beside the database.
    """
    uri = tracking_uri()
    if uri in _READY_STORES:
        return
    if uri.startswith(("http://", "https://")):
        from anomaly.tracking.server_check import check_tracking_server

        check_tracking_server(uri)
    elif uri.startswith("sqlite:///"):
        database = Path(uri[len("sqlite:///") :])
        database.parent.mkdir(parents=True, exist_ok=True)
        with open(f"{database}.lock", "a") as lock:
            _lock_exclusively(lock)
            _first_use(uri)  # creates/migrates the tables
    else:
        _first_use(uri)
    _READY_STORES.add(uri)


# The schemes MLflow's stores take (``mlflow.tracking.registry``'s own list, less Databricks').
_SCHEMES = ("", "file", "sqlite", "postgresql", "mysql", "mssql", "databricks", "databricks-uc", "uc")


def _first_use(uri: str) -> None:
    """Open the store at ``uri``; a :class:`TrackingServerError` in one line where it cannot be used."""
    from urllib.parse import urlsplit

    parts = urlsplit(uri)
    scheme = parts.scheme.split("+")[0]  # postgresql+psycopg2
    try:
        if len(scheme) > 1 and scheme not in _SCHEMES:  # one letter: a Windows drive, a path
            raise ValueError(f"the scheme {scheme}://, which no MLflow store takes")
        if scheme in ("postgresql", "mysql", "mssql") and parts.hostname:
            _reachable(parts.hostname, parts.port or {"postgresql": 5432, "mysql": 3306, "mssql": 1433}[scheme])
        MlflowClient().search_experiments(max_results=1)
    except Exception as err:  # MLflow's, SQLAlchemy's and the drivers' errors: any of them means unusable
        text = str(err)
        if "maintenance mode" in text:
            found = (
                "a file store, which MLflow 3 refuses (migrate it with `mlflow migrate-filestore`, or set "
                "MLFLOW_ALLOW_FILE_STORE=true)"
            )
        else:
            found = " ".join(text.split("\n")[0].split())[:300] or type(err).__name__
        shown = re.sub(r"//([^:/@]+):[^@/]*@", r"//\1:***@", uri)  # never print a password
        raise TrackingServerError(
            f"cannot use the tracking store {shown} (MLFLOW_TRACKING_URI): expected a database "
            f"(sqlite:///PATH, postgresql://USER@HOST/DB) or an MLflow server (http://HOST:PORT); got {found}"
        ) from None


def _reachable(host: str, port: int, timeout: float = 10.0) -> None:
    """Raise ValueError when nothing answers on ``host:port``: MLflow would retry for minutes."""
    import socket

    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as err:
        raise ValueError(f"no database answering on {host}:{port} ({err.strerror or err})") from None


def _lock_exclusively(handle: Any) -> None:
    """Block until this process holds an exclusive lock on ``handle`` (released on close)."""
    try:
        import fcntl
    except ImportError:  # Windows: no fcntl; concurrent first use is then not guarded
        return
    fcntl.flock(handle.fileno(), fcntl.LOCK_EX)


def library_versions() -> dict[str, str]:
    """Versions of the libraries a run depends on, read from package metadata (no imports)."""
    names = ["anomaly", "tensorflow", "tensorflow-cpu", "keras", "numpy", "pandas", "scikit-learn", "mlflow"]
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


@contextmanager
def run(
    *,
    experiment_name: str | None = None,
    experiment_id: str | None = None,
    run_name: str,
    tags: Mapping[str, str] | None = None,
    description: str | None = None,
    parent_run_id: str | None = None,
) -> Iterator[Any]:
    """Start an MLflow run; mark it FAILED (or KILLED on Ctrl-C) with the error as a tag.

    Parameters
    ----------
    experiment_name : str, optional
        Created if it does not exist. Ignored when ``experiment_id`` is given.
    experiment_id : str, optional
    run_name : str
    tags : mapping, optional
    description : str, optional
        Markdown shown at the top of the run page.
    parent_run_id : str, optional
        Nest the run under this one (a fleet's series under the fleet's run), which must be
        running; it may belong to another process.

    Yields
    ------
    mlflow.ActiveRun
    """
    ensure_store()
    experiment_id = model_training_experiment(experiment_name=experiment_name, experiment_id=experiment_id)
    # Who owns the run: `anomaly runs --reap` marks it FAILED if this process dies without ending it.
    all_tags = {**liveness.owner_tags(), **(tags or {})}
    if description:
        all_tags["mlflow.note.content"] = description
    # In the parent's own process (a fleet trained with one job) the parent is the active run.
    nested = parent_run_id is not None and mlflow.active_run() is not None
    active = mlflow.start_run(
        experiment_id=experiment_id, run_name=run_name, tags=all_tags, parent_run_id=parent_run_id, nested=nested
    )
    try:
        yield active
    except KeyboardInterrupt as err:
        how = "stopped by SIGTERM (kill)" if isinstance(err, Terminated) else "interrupted (Ctrl-C, SIGINT)"
        mlflow.set_tag(TAG_ERROR, how)
        mlflow.end_run(status="KILLED")
        raise
    except BaseException as err:
        mlflow.set_tag(TAG_ERROR, f"{type(err).__name__}: {err}"[:5000])
        mlflow.end_run(status="FAILED")
        raise
    else:
        mlflow.end_run(status="FINISHED")


class _FileDataset(PandasDataset):
    """A pandas dataset described by a sample of its rows and the row count of the whole file."""

    def __init__(self, df: pd.DataFrame, *, rows: int, **kwargs: Any) -> None:
        self._rows = int(rows)
        super().__init__(df=df, **kwargs)

    @property
    def profile(self) -> dict[str, int]:
        return {"num_rows": self._rows, "num_elements": self._rows * int(self._df.shape[1])}


def model_training_experiment(*, experiment_name: str | None = None, experiment_id: str | None = None) -> str | None:
    """The experiment's id, created if needed, tagged as a model-training experiment.

    The tag (:data:`TAG_EXPERIMENT_KIND` = :data:`EXPERIMENT_KIND`) makes MLflow's UI show the
    experiment's runs in its model-training views. It is set when the experiment is created, or
    added when an existing experiment lacks it; a store that refuses the tag (a server where this
    user may only read the experiment) is logged, not fatal.

    Parameters
    ----------
    experiment_name : str, optional
        Created if it does not exist. Ignored when ``experiment_id`` is given.
    experiment_id : str, optional

    Returns
    -------
    str or None
        None when neither is given (MLflow's default experiment is then used, untagged).
    """
    client = MlflowClient()
    if experiment_id is None:
        if experiment_name is None:
            return None
        experiment = client.get_experiment_by_name(experiment_name)
        if experiment is None:
            try:
                return client.create_experiment(experiment_name, tags={TAG_EXPERIMENT_KIND: EXPERIMENT_KIND})
            except MlflowException as err:  # created meanwhile by a concurrent process
                experiment = client.get_experiment_by_name(experiment_name)
                if experiment is None:
                    raise err from None
    else:
        experiment = client.get_experiment(experiment_id)
    if experiment.tags.get(TAG_EXPERIMENT_KIND) is None:
        try:
            client.set_experiment_tag(experiment.experiment_id, TAG_EXPERIMENT_KIND, EXPERIMENT_KIND)
        except MlflowException as err:
            logger.warning("could not tag experiment %r as %s: %s", experiment.name, EXPERIMENT_KIND, err.message)
    return experiment.experiment_id


def log_dataset(sample: pd.DataFrame, *, name: str, source: str, sha256: str, rows: int, context: str) -> None:
    """Record the run's input with MLflow's dataset tracking (the run page's Datasets panel).

    Parameters
    ----------
    sample : DataFrame
        A few rows of the data as read (time index and features): its schema is logged, not its
        values, so a long file is never held or read twice for this.
    name : str
        Shown as the dataset's name (the file name).
    source : str
        The file's path (made absolute), or ``<stdin>``.
    sha256 : str
        The data's fingerprint; its first 36 hex digits become the dataset's digest.
    rows : int
        Rows in the whole data (the profile's ``num_rows``).
    context : str
        ``training``, ``scoring`` or ``evaluation``.
    """
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.dataset_source_registry import resolve_dataset_source

    frame = sample.reset_index() if sample.index.name is not None else sample
    # Integers as float64, as the model reads them (STACK.md): MLflow warns about an integer
    # column in a schema, on the terminal, each time.
    frame = frame.astype({c: "float64" for c, kind in frame.dtypes.items() if pd.api.types.is_integer_dtype(kind)})
    if source == "<stdin>":
        resolved = CodeDatasetSource(tags={"source": source})
    else:
        with warnings.catch_warnings():
            # MLflow registers its local-file source for both "" and "file" and says so each time.
            warnings.filterwarnings(
                "ignore", message="The specified dataset source can be interpreted in multiple ways", category=UserWarning
            )
            resolved = resolve_dataset_source(str(Path(source).resolve()))
    dataset = _FileDataset(frame, source=resolved, name=name, digest=sha256[:_DIGEST_CHARS], rows=rows)
    for attempt in range(_DATASET_ATTEMPTS):
        try:
            mlflow.log_input(dataset, context=context)
            return
        except MlflowException as err:
            # Runs logging the same data at once race to create its row in MLflow's datasets table
            # (a unique-key violation on the server); once one has, the others find it.
            if attempt + 1 < _DATASET_ATTEMPTS and ("dataset_pk" in str(err) or "UNIQUE constraint" in str(err)):
                time.sleep(0.2 * (attempt + 1))
                continue
            logger.warning("could not record %s as the run's %s dataset: %s", name, context, " ".join(str(err).split())[:300])
            return


def log_params(params: Mapping[str, Any]) -> None:
    """Log params, turning tuples into comma lists and None into an empty string."""
    clean = {}
    for key, value in params.items():
        if isinstance(value, (tuple, list)):
            value = ",".join(map(str, value))
        text = "" if value is None else str(value)
        clean[key] = text if len(text) <= _MAX_PARAM else text[: _MAX_PARAM - 3] + "..."
    mlflow.log_params(clean)


def log_metrics(metrics: Mapping[str, float], step: int | None = None) -> None:
    mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, step=step)


def set_tags(tags: Mapping[str, str]) -> None:
    mlflow.set_tags(dict(tags))


def set_notes(notes: list[str], limit: int | None = None) -> None:
    """The notes, one a line (the first ``limit`` characters), as the run's notes tag; none: no tag."""
    if notes:
        mlflow.set_tags({TAG_NOTES: "\n".join(notes)[:limit]})


def log_text(text: str, artifact_file: str) -> None:
    mlflow.log_text(text, artifact_file)


def log_artifact(path: str | Path, artifact_path: str | None = None) -> None:
    mlflow.log_artifact(str(path), artifact_path=artifact_path)


def log_table(table: pd.DataFrame, artifact_file: str) -> None:
    """A table as a CSV artifact without its index, e.g. ``results/events.csv``."""
    with tempfile.TemporaryDirectory(prefix="anomaly-table-") as tmp:
        path = Path(tmp) / Path(artifact_file).name
        table.to_csv(path, index=False)
        mlflow.log_artifact(str(path), artifact_path=str(Path(artifact_file).parent))


def log_figure(figure: Any, artifact_file: str) -> None:
    mlflow.log_figure(figure, artifact_file)


# MLflow 3.17's UI picks GenAI or model-training views from a switch of its own (remembered by the
# browser, GenAI at first), not from the experiment's kind tag; in GenAI views a scoring run is
# filed under "Evaluations". A link with this parameter opens the model-training views.
MODEL_TRAINING_VIEW = "workflowType=machine_learning"


def run_url(experiment_id: str, run_id: str) -> str:
    """Where the run appears, in the UI's model-training views: on the tracking server in
    effect, or in ``anomaly ui`` (default host and port) for a local store."""
    uri = tracking_uri()
    base = uri.rstrip("/") if uri.startswith(("http://", "https://")) else "http://127.0.0.1:5000"
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}?{MODEL_TRAINING_VIEW}"


def _pip_requirements() -> list[str]:
    """What the logged model needs to load and predict (explicit: inference takes ~7 s)."""
    versions = library_versions()
    requirements = []
    for name in ("tensorflow-cpu", "tensorflow", "keras", "numpy", "pandas", "mlflow"):
        if name in versions:
            requirements.append(f"{name}=={versions[name]}")
    return requirements


@dataclass(frozen=True)
class LoggedModel:
    """A model logged by a training run and registered."""

    uri: str  # models:/<name>/<version>
    name: str
    version: str


def log_detector(
    detector_dir: Path,
    input_example: pd.DataFrame,
    output_example: pd.DataFrame,
    model_name: str,
    alias: str | None = None,
    *,
    artifact: str = DETECTOR_ARTIFACT,
) -> LoggedModel:
    """Log a saved detector (or fleet) as one pyfunc model (models from code) and register it.

    Parameters
    ----------
    detector_dir : Path
        Directory written by :meth:`anomaly.detector.Detector.save`, or with
        ``artifact=FLEET_ARTIFACT`` by :meth:`anomaly.fleet.model.Fleet.save`.
    input_example : DataFrame of shape (K, D)
        A few rows of the training features (cast to float64, see STACK.md).
    output_example : DataFrame of shape (K, 3 + D)
        What the model returns for ``input_example``.
    model_name : str
        Registered model name.
    alias : str, optional
        Alias moved to the new version (``models:/<name>@<alias>`` then resolves to it).
    artifact : str, default DETECTOR_ARTIFACT
        What the folder holds: one detector, or a fleet (:data:`FLEET_ARTIFACT`).
    """
    from mlflow.models import infer_signature

    # Numbers as float64 (see STACK.md); a fleet's series column stays text.
    numeric = {c: "float64" for c, kind in input_example.dtypes.items() if pd.api.types.is_numeric_dtype(kind)}
    input_example = input_example.astype(numeric).reset_index(drop=True)
    signature = infer_signature(input_example, output_example.reset_index(drop=True))
    # Registration announces itself with bare prints to stderr ("Successfully registered model
    # ..."); they go to the log instead, so only the CLI decides what the terminal shows.
    with redirect_stderr(io.StringIO()) as chatter:
        info = mlflow.pyfunc.log_model(
            name=MODEL_ARTIFACT,
            python_model=str(_MODEL_CODE[artifact]),
            artifacts={artifact: str(detector_dir)},
            code_paths=[str(_PACKAGE_DIR)],  # the model carries the code that reads it
            signature=signature,
            input_example=input_example,
            pip_requirements=_pip_requirements(),
            registered_model_name=model_name,
        )
    for line in chatter.getvalue().splitlines():
        if line.strip():
            logger.info("mlflow: %s", line.strip())
    version = str(info.registered_model_version)
    if alias:
        MlflowClient().set_registered_model_alias(model_name, alias, version)
    return LoggedModel(uri=f"models:/{model_name}/{version}", name=model_name, version=version)


@dataclass(frozen=True)
class ResolvedModel:
    """A model URI resolved to local files and the run that produced it."""

    uri: str
    detector_dir: Path  # a detector's folder, or a fleet's when ``fleet``
    training_run_id: str | None
    experiment_id: str | None
    version: str | None
    fleet: bool = False


_MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>[^/]+)|@(?P<alias>.+))?$")


def _latest_version_uri(name: str | None) -> str:
    client = MlflowClient()
    filter_string = f"name = '{name}'" if name else ""
    try:
        versions = client.search_model_versions(filter_string, order_by=["creation_timestamp DESC"], max_results=1)
    except MlflowException as err:
        raise ModelNotFoundError(f"cannot search the model registry at {tracking_uri()}: {err.message}") from None
    if not versions:
        what = f"no registered model named {name!r}" if name else "no registered model"
        raise ModelNotFoundError(
            f"--model not given and {what} in the tracking store {tracking_uri()}; run 'anomaly train' first or pass --model URI"
        )
    return f"models:/{versions[0].name}/{versions[0].version}"


def resolve_model(uri: str | None, default_name: str | None = None) -> ResolvedModel:
    """Find a model logged by ``anomaly train`` and fetch its files.

    Parameters
    ----------
    uri : str or None
        ``runs:/<run_id>/model``, ``models:/<name>/<version>``, ``models:/<name>@<alias>`` or
        ``models:/<name>/latest``. None: the latest version of ``default_name``, or of any
        registered model when that is None too.
    default_name : str, optional

    Raises
    ------
    ModelNotFoundError
        When the URI is malformed, unknown in this store, or not an `anomaly` model.
    """
    ensure_store()
    if uri is None:
        uri = _latest_version_uri(default_name)
        logger.info("using the latest registered model: %s", uri)
    elif not uri.startswith(("runs:/", "models:/")):
        raise ModelNotFoundError(
            f"--model must be a URI like runs:/<run_id>/model, models:/<name>/<version> or models:/<name>@<alias>; got {uri!r}"
        )
    match = _MODELS_URI.match(uri)
    if match and match["version"] == "latest":
        uri = _latest_version_uri(match["name"])
        match = _MODELS_URI.match(uri)
    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri))
        info = mlflow.models.Model.load(local)  # the MLmodel file just fetched: no second round trip
    except (MlflowException, OSError) as err:
        message = getattr(err, "message", str(err)).splitlines()[0]
        raise ModelNotFoundError(f"model {uri!r} not found in the tracking store {tracking_uri()}: {message}") from None
    artifacts = info.flavors.get("python_function", {}).get("artifacts", {})
    found = next((name for name in (DETECTOR_ARTIFACT, FLEET_ARTIFACT) if name in artifacts), None)
    if found is None:
        raise ModelNotFoundError(f"model {uri!r} was not logged by 'anomaly train' (it has no {DETECTOR_ARTIFACT!r} artifact)")
    version = None
    if match and match["name"] and not match["name"].startswith("m-"):
        client = MlflowClient()
        if match["alias"]:
            version = client.get_model_version_by_alias(match["name"], match["alias"]).version
        elif match["version"]:
            version = match["version"]
    experiment_id = None
    if info.run_id:
        try:
            experiment_id = MlflowClient().get_run(info.run_id).info.experiment_id
        except MlflowException:
            logger.warning("training run %s of model %s is gone from the store", info.run_id, uri)
    return ResolvedModel(
        uri=uri,
        detector_dir=local / artifacts[found]["path"],
        training_run_id=info.run_id,
        experiment_id=experiment_id,
        version=str(version) if version is not None else None,
        fleet=found == FLEET_ARTIFACT,
    )


def _experiment_ids(client: MlflowClient) -> dict[str, str]:
    """Every active experiment of the store: id -> name."""
    experiments, token = {}, None
    while True:
        page = client.search_experiments(max_results=1000, page_token=token)
        experiments.update({e.experiment_id: e.name for e in page})
        token = page.token
        if not token:
            return experiments


def reap_dead_runs() -> list[liveness.ReapedRun]:
    """Mark every RUNNING run of this host whose process is gone as FAILED (see :mod:`anomaly.tracking.liveness`).

    Returns
    -------
    list of ReapedRun
    """
    ensure_store()
    client = MlflowClient()
    return liveness.reap_dead_runs(client, list(_experiment_ids(client)))


@dataclass(frozen=True)
class RunSummary:
    """One line of ``anomaly runs``."""

    run_id: str
    experiment: str
    kind: str
    status: str
    start: float  # seconds since the epoch
    seconds: float | None  # how long it ran; None while RUNNING
    data: str
    model_version: str | None
    host: str | None
    pid: str | None
    reason: str | None  # why it FAILED: the error, or why it was reaped
    dead: str | None = None  # RUNNING, but its process on this host is known to be gone: why

    def to_json(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in self.__dataclass_fields__}


def recent_runs(limit: int = 20) -> list[RunSummary]:
    """The latest ``limit`` runs of ``anomaly train``, ``score`` and ``evaluate``, newest first."""
    ensure_store()
    client = MlflowClient()
    experiments = _experiment_ids(client)
    if not experiments:
        return []
    found = client.search_runs(
        list(experiments),
        f"tags.`{TAG_KIND}` IS NOT NULL",
        max_results=limit,
        order_by=["attributes.start_time DESC"],
    )
    summaries = []
    for item in found:
        info, tags, params = item.info, item.data.tags, item.data.params
        end = info.end_time if info.status != "RUNNING" else None
        summaries.append(
            RunSummary(
                run_id=info.run_id,
                experiment=experiments.get(info.experiment_id, info.experiment_id),
                kind=tags.get(TAG_KIND, "?"),
                status=info.status,
                start=info.start_time / 1000,
                seconds=None if end is None else max(0.0, (end - info.start_time) / 1000),
                data=params.get("data.file", ""),
                model_version=tags.get(TAG_MODEL_VERSION),
                host=tags.get(liveness.TAG_HOST),
                pid=tags.get(liveness.TAG_PID),
                reason=tags.get(liveness.TAG_REAPED) or tags.get(TAG_ERROR),
                # Only this host can tell whether a run's process lives (see reap_dead_runs).
                dead=liveness.death_reason(tags) if info.status == "RUNNING" and liveness.is_this_host(tags) else None,
            )
        )
    return summaries


def user_error(err: BaseException) -> TrackingServerError | None:
    """A tracking server's refusal met mid-command, as a one-line user error (else None)."""
    if not isinstance(err, MlflowException):
        return None
    uri = tracking_uri()
    if not uri.startswith(("http://", "https://")):
        return None
    from anomaly.tracking.server_check import credentials, refusal_message

    text = str(err)
    for status, codes in ((401, ("UNAUTHENTICATED", "error code 401")), (403, ("PERMISSION_DENIED", "error code 403"))):
        if err.error_code in codes or any(code in text for code in codes):
            return TrackingServerError(refusal_message(uri, status, credentials()[0]))
    return None
