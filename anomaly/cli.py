"""The ``anomaly`` command line: options -> spec, logging set-up, errors -> exit codes.

Exit codes: 0 success; 2 bad input or usage (a one-line ``error:`` message, no traceback);
1 an internal error (a bug: the traceback is shown so it can be reported); 130 interrupted.

Only this module imports click and writes to the terminal. It imports nothing heavy at start-up:
TensorFlow and MLflow load inside the commands that need them, so ``anomaly --help`` is instant.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import signal
import sys
import threading
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from anomaly import __version__, params
from anomaly.errors import AnomalyError


class _UserError(click.ClickException):
    """An AnomalyError on its way out: one line on stderr, the error's exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


class _Group(click.Group):
    def main(
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Click's main, with every error reduced to one ``error:`` line and a documented code."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        if threading.current_thread() is threading.main_thread():  # signals can only be set there
            _stop_on_signals()  # `kill` stops a training or scoring as Ctrl-C does: KILLED, exit 130
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as err:
            command = err.ctx.command_path if err.ctx else (prog_name or "anomaly")
            click.echo(f"error: {err.format_message()} (see '{command} --help')", err=True)
            sys.exit(err.exit_code)
        except click.ClickException as err:
            err.show()
            sys.exit(err.exit_code)
        except click.Abort:
            click.echo("error: interrupted", err=True)
            sys.exit(130)
        sys.exit(rv if isinstance(rv, int) else 0)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AnomalyError as err:
            # One line even when a message quotes a multi-line library error.
            message = " ".join(str(err).split())
            raise _UserError(message, err.exit_code) from None
        except Exception as err:
            # A tracking server that refuses this user mid-command is the user's to fix, not a bug.
            tracking = sys.modules.get("anomaly.tracking.runs")
            refused = tracking.user_error(err) if tracking is not None else None
            if refused is None:
                raise
            raise _UserError(" ".join(str(refused).split()), refused.exit_code) from None


class _IntList(click.ParamType):
    """Comma-separated positive ints, e.g. ``64,64``."""

    name = "INTS"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[int, ...]:
        if isinstance(value, tuple):
            return value
        try:
            return tuple(int(part) for part in str(value).split(","))
        except ValueError:
            self.fail(f"expected comma-separated integers like 64,64; got {value!r}", param, ctx)


class _NameList(click.ParamType):
    """Comma-separated column names, e.g. ``a,b,c``."""

    name = "COLUMNS"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[str, ...]:
        if isinstance(value, tuple):
            return value
        names = tuple(part.strip() for part in str(value).split(","))
        if not all(names):
            self.fail(f"expected comma-separated column names like a,b,c; got {value!r}", param, ctx)
        return names


class _DataPath(click.Path):
    """A data file, as click.Path checks it; or, for a fleet, a folder or a glob pattern of files."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if _names_many(str(value)):
            return str(value) if self.type is str else Path(str(value))
        return super().convert(value, param, ctx)


class _ResultsPath(click.Path):
    """Where ``score`` writes its results: a .csv or Parquet file, or - for stdout.

    Any other name is refused before the model is loaded, rather than written as CSV under a
    name (``.json``, ``.tsv``) that promises another format.
    """

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from anomaly.data.formats import PARQUET_SUFFIXES

        if not str(value).strip():
            self.fail("expected a .csv, .parquet or .pq file, or - for stdout; found an empty name", param, ctx)
        value = super().convert(value, param, ctx)
        suffix = Path(str(value)).suffix
        if str(value) != "-" and suffix.lower() not in {".csv", *PARQUET_SUFFIXES}:
            found = f"{suffix!r}" if suffix else "no extension"
            self.fail(f"{value}: expected a .csv, .parquet or .pq file, or - for stdout; found {found}", param, ctx)
        return value


def _found_label_col(file: str, series_col: str | None, say: Callable[[str], None]) -> str:
    """The label column of FILE's first rows (a fleet's first file), when --label-col is not given."""
    from contextlib import closing

    from anomaly.data.columns import find_label_column
    from anomaly.data.formats import open_reader

    if file == "-":
        raise _UserError("standard input: evaluate reads its labels from --label-col COLUMN; give it", 2)
    path = file
    if _names_many(file):
        from anomaly.data.fleet import find_series

        path = str(find_series(file, series_col, Path("."))[0].path)
    with closing(open_reader(path, path, 4096)) as reader:
        sample = reader.read(4096)
    found, others = find_label_column(sample) if sample is not None else (None, [])
    if found is None:
        from anomaly.data.columns import label_like_columns

        named = label_like_columns(sample) if sample is not None else []
        what = f"{', '.join(map(repr, named))} holding other values too" if named else "none"
        raise _UserError(
            f"{path}: evaluate needs labels: expected a 0/1 column named like labels (label, anomaly, "
            f"is_anomaly, ...), found {what}; give --label-col COLUMN",
            2,
        )
    also = f"; also like labels: {', '.join(others)}" if others else ""
    say(f"note: {path}: using column {found!r} as the labels (--label-col to choose another{also})")
    return found


def _names_many(text: str) -> bool:
    """Whether a FILE argument names a fleet of files: a folder, or a glob that is not a file's name."""
    return text != "-" and (os.path.isdir(text) or (bool(set("*?[") & set(text)) and not os.path.exists(text)))


_jobs_option = click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Fleets: worker processes training or scoring series side by side (default: one per core).",
)
_engine_option = click.option(
    "--engine",
    type=click.Choice(["local", "spark"]),
    default="local",
    show_default=True,
    help="Fleets: worker processes on this machine, or Spark (pip install 'anomaly[spark]'; needs --series-col).",
)
_spark_master_option = click.option(
    "--spark-master", default="local[*]", show_default=True, metavar="URL", help="Spark master for --engine spark."
)
_skip_unknown_option = click.option(
    "--skip-unknown",
    is_flag=True,
    help="Fleets: leave out series the model does not know (a note lists them) instead of failing.",
)


class _UserFormatter(logging.Formatter):
    """``warning: ...`` for this package's own warnings, as the CLI writes ``note:`` and
    ``error:``; other libraries' records (and every record under -v) name their level and logger."""

    def __init__(self, verbose: int) -> None:
        super().__init__("%(levelname)s %(name)s: %(message)s")
        self._verbose = verbose

    def format(self, record: logging.LogRecord) -> str:
        if not self._verbose and record.name.split(".")[0] == "anomaly":
            return f"{record.levelname.lower()}: {record.getMessage()}"
        return super().format(record)


def _setup_logging(verbose: int) -> None:
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose == 1 else logging.WARNING
    root = logging.getLogger()
    if not root.handlers:  # as logging.basicConfig: a host that configured logging keeps its own
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_UserFormatter(verbose))
        root.addHandler(handler)
        root.setLevel(logging.WARNING)
    logging.getLogger("anomaly").setLevel(level)
    # MLflow's INFO lines (table creation, signature validation) are noise unless asked for. MLflow
    # configures its logger when imported, from this variable, so a level set before that import
    # would be lost; where it is already imported (the Python API, tests), its logger is set here.
    if verbose < 2:
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    logging.getLogger("mlflow").setLevel(logging.WARNING if verbose < 2 else logging.INFO)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="anomaly")
@click.option("-v", "--verbose", count=True, help="More detail on stderr (-v: steps, -vv: debug and MLflow).")
def cli(verbose: int) -> None:
    """Find anomalies in multivariate time series with recurrent networks.

    \b
    Train on a normal series, then score new data:
      anomaly train                      # the bundled demo (pipelines/default.yaml)
      anomaly train normal.csv           # your own CSV or Parquet file
      anomaly score new.csv              # with the latest trained model
    Runs are logged to MLflow: `anomaly ui` (or `mlflow ui`) in the same directory shows them.
    """
    _setup_logging(verbose)


def _option_type(declared: params.Setting) -> Any:
    """A setting's click type: its choices, a comma-separated list, or its Python type."""
    base = declared.base
    if typing.get_origin(base) is typing.Literal:
        return click.Choice(typing.get_args(base))
    if typing.get_origin(base) is tuple:
        return _IntList() if typing.get_args(base)[0] is int else _NameList()
    return click.BOOL if base is bool else base


def _help(declared: params.Setting) -> str:
    """The schema's help, with its default as click would show it (the option's own default is None)."""
    value = declared.default
    if value is None:
        return declared.help
    shown = ",".join(map(str, value)) if isinstance(value, tuple) else str(value).lower() if isinstance(value, bool) else value
    return f"{declared.help}  [default: {shown}]"


def _spec_options(*commands: str, leave_out: tuple[str, ...] = ()) -> Any:
    """The options that override spec fields (anomaly.params): ``--window-size`` sets ``window.window_size``.

    Their default is None ("keep the spec's value"); ``--help`` shows the schema's default, which
    is the value of a FILE trained without -p.
    """
    declared = [s for s in params.SETTINGS.values() if s.cli in commands and s.flat not in leave_out]

    def decorate(func: Any) -> Any:
        for s in reversed(declared):
            func = click.option(s.option, s.flat, type=_option_type(s), default=None, help=_help(s))(func)
        return func

    return decorate


_pipeline_option = click.option(
    "-p",
    "--pipeline",
    "pipeline",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Pipeline spec (YAML). Options given on the command line override its fields.",
)
_json_option = click.option(
    "--json", "as_json", is_flag=True, help="End with one machine-readable JSON line on stdout (the rest goes to stderr)."
)


def _name_from_file(file: Path) -> str:
    stem = file.stem
    if _names_many(str(file)):
        from anomaly.data.fleet import fleet_stem

        stem = fleet_stem(str(file))
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-.") or "default"


def _build_spec(pipeline: Path | None, file: Path | None, overrides: dict[str, Any]) -> Any:
    from anomaly.spec import Spec, default_spec_path, load_spec

    if pipeline is not None:
        spec = load_spec(pipeline)
    elif file is None:
        default = default_spec_path()
        if not default.exists():
            raise AnomalyError(f"no FILE given and the demo spec {default} is missing; pass a CSV/Parquet file or -p SPEC.yaml")
        spec = load_spec(default)
    else:
        spec = Spec(name=_name_from_file(file))
    if file is not None:
        overrides = {**overrides, "data_path": str(file)}
    return spec.override(**overrides)


def _say(as_json: bool) -> Any:
    """Human-readable output: stdout normally, stderr when stdout is reserved for JSON."""
    return lambda message="": click.echo(message, err=as_json)


def _reap(say: Any) -> None:
    """Mark this host's runs whose process died as FAILED (see `anomaly runs --reap`), saying so."""
    from anomaly.tracking import runs as tracking

    for reaped in tracking.reap_dead_runs():
        done = "marked FAILED" if reaped.marked else f"could not be marked FAILED ({reaped.error})"
        say(f"note: run {reaped.run_id} ({reaped.run_name}) was left RUNNING by a dead process and {done}: {reaped.reason}")


def _store_hint(result: Any) -> str:
    """Where to review ``result``'s run (it has ``experiment_id`` and ``run_id``)."""
    # `anomaly ui` serves the store in effect here, default or MLFLOW_TRACKING_URI alike; a
    # tracking server serves its own UI.
    from anomaly.tracking import runs as tracking

    run_url = tracking.run_url(result.experiment_id, result.run_id)
    if tracking.tracking_uri().startswith(("http://", "https://")):
        return f"Review it: open {run_url}"
    return f"Review it: run `anomaly ui` here ({Path.cwd()}), then open {run_url}"


@cli.command()
@click.argument("file", required=False, type=_DataPath(exists=True, dir_okay=False, path_type=Path))
@_pipeline_option
@_spec_options(params.READ, params.TRAIN)
@_jobs_option
@_engine_option
@_spark_master_option
@_json_option
def train(
    file: Path | None,
    pipeline: Path | None,
    jobs: int | None,
    engine: str,
    spark_master: str,
    as_json: bool,
    **overrides: Any,
) -> None:
    """Train a detector on FILE (a normal series, CSV or Parquet) and log it to MLflow.

    With no FILE and no -p, trains the bundled demo pipeline (pipelines/default.yaml).

    A fleet, one detector per series, from one table with --series-col COLUMN or from a folder
    (or quoted glob) of files, one series each: the series train side by side on --jobs worker
    processes, each in its own MLflow run nested under the fleet's, and one fleet model is
    registered that scores every series with its own detector.
    """
    say = _say(as_json)
    spec = _build_spec(pipeline, file, overrides)
    if not spec.data.path:
        raise _UserError(f"no training data: give a FILE argument or set data.path in {pipeline or 'the pipeline spec'}", 2)
    if engine == "spark":
        _check_spark(spec.data.series_col, spec.data.path)
    if spec.data.series_col or (spec.data.path and _names_many(spec.data.path)):
        _train_fleet(spec, jobs, as_json, say, spark_master if engine == "spark" else None)
        return
    from anomaly import pipelines

    _reap(say)
    say(f"Training '{spec.name}' on {spec.data.path}")
    _say_network(say, spec, base=True)

    from anomaly import progress

    # On a terminal, the epoch under way shows its batches; each finished epoch keeps its line.
    batches = progress.TrainProgress(sys.stdout, spec.training.epochs) if progress.wanted(sys.stdout, as_json=as_json) else None

    def on_epoch_end(epoch: int, logs: dict[str, float]) -> None:
        if batches is not None:
            batches.clear()
        say(
            f"  epoch {epoch:3d}/{spec.training.epochs}  loss {logs.get('loss', float('nan')):.4f}  val_loss {logs.get('val_loss', float('nan')):.4f}  {logs['seconds']:.1f}s"
        )

    try:
        result = pipelines.train_pipeline(spec, on_epoch_end=on_epoch_end, on_batch_end=batches.batch if batches else None)
    finally:
        if batches is not None:
            batches.clear()
    for note in result.notes:
        say(f"note: {note}")
    from anomaly.data.formats import list_names

    say(
        f"Trained on {result.rows} rows x {len(result.features)} features ({list_names(result.features, quoted=False)}) in {result.seconds:.0f}s"
    )
    say(f"  best val_loss {result.best_val_loss:.4f} after {result.epochs_run} epochs; threshold {result.threshold:.3f}")
    _say_model(say, spec, result, "run")
    if as_json:
        click.echo(json.dumps({"run_id": result.run_id, "model_uri": result.model_uri}))


def _say_network(say: Callable[[str], None], spec: Any, *, base: bool) -> None:
    """The network to be trained, in one line; with ``base``, what it is stacked on."""
    network = f"{spec.model.cell} {'x'.join(map(str, spec.model.units))}"
    if base and spec.model.autoregressive:
        network += f" on a linear VAR({spec.model.autoregressive})"
    elif base and spec.model.residual:
        network += " (residual)"
    if spec.model.members > 1:
        network = f"{spec.model.members} x {network}"
    say(f"  {network}, windows of {spec.window.window_size}, up to {spec.training.epochs} epochs, seed {spec.training.seed}")


def _say_model(say: Callable[[str], None], spec: Any, result: Any, run: str) -> None:
    """The closing lines of a training command: the model, its alias, where to review the ``run``."""
    say(f"Model: {result.model_uri}  ({run} {result.run_id}, experiment '{spec.experiment_name}')")
    if spec.tracking.alias:
        say(f"  also models:/{spec.model_name}@{spec.tracking.alias}")
    say(_store_hint(result))


def _say_series(say: Callable[[str], None], ok_line: Callable[[Any], str], *, notes: bool = False) -> Callable[[Any], None]:
    """An ``on_series`` hook: each series' outcome as it finishes, numbered, ``ok_line(outcome)``
    or its error; with ``notes``, its notes after it."""
    done = itertools.count(1)

    def on_series(outcome: Any) -> None:
        say(f"  [{next(done)}] {outcome.name}  {ok_line(outcome) if outcome.ok else f'FAILED: {outcome.error}'}")
        for note in outcome.notes if notes else ():
            say(f"    note: {note}")

    return on_series


def _check_failed(result: Any, what: str = "") -> None:
    """A fleet's failed series as an error with the job's exit code; ``what`` says what that means."""
    if result.failed:
        from anomaly.data.formats import list_names

        names = list_names([s.name for s in result.failed], quoted=False)
        raise _UserError(f"{len(result.failed)} of {len(result.series)} series failed{what}: {names}", result.exit_code)


def _check_spark(series_col: str | None, path: str | None) -> None:
    if not series_col:
        raise _UserError("--engine spark reads one table with a series column: give --series-col COLUMN", 2)
    if path is not None and (path == "-" or _names_many(path)):
        raise _UserError(f"--engine spark reads one CSV or Parquet table, not {path!r}", 2)


def _spark_input(master: str, path: str, spec: Any) -> tuple[Any, str]:
    """The table as a Spark DataFrame, and its time column (as the one reader finds it)."""
    from contextlib import closing

    from anomaly import spark
    from anomaly.data.formats import open_reader
    from anomaly.data.reading import iter_series

    time_col = spec.data.time_col
    if time_col is not None and time_col.lower() == "none":
        raise _UserError(f"{path}: --engine spark needs a time column to order each series by; got --time-col {time_col}", 2)
    if time_col is None:
        # The time column as the one reader finds it in the first series' first rows (the whole
        # table repeats its times, one run of them per series, in any order).
        with closing(open_reader(path, path, 4096)) as reader:
            head = reader.read(4096)
        series_col = spec.data.series_col
        if head is None or head.empty:
            raise _UserError(f"{path}: expected rows, but the table has none", 2)
        if series_col not in head.columns:
            raise _UserError(f"{path}: --series-col {series_col!r} is not a column; the columns are {list(head.columns)}", 2)
        if head[series_col].isna().iloc[0]:
            raise _UserError(f"{path}: row 1 (line 2) has no series id in column {series_col!r}", 2)
        first = head[head[series_col] == head[series_col].iloc[0]].drop(columns=[series_col])
        with iter_series(first, label_col=spec.data.label_col, chunk_rows=64, sample_rows=64, sort=True, shown=path) as peek:
            time_col = peek.time_col
        if time_col is None:
            raise _UserError(f"{path}: --engine spark needs a time column to order each series by: give --time-col", 2)
    return spark.read_table(spark.session(master, quiet=True), path, text_columns=[spec.data.series_col]), time_col


def _train_fleet(spec: Any, jobs: int | None, as_json: bool, say: Any, spark_master: str | None = None) -> None:
    from anomaly.fleet import jobs as fleet_jobs
    from anomaly.fleet import workers

    _reap(say)
    jobs = jobs or workers.default_jobs()
    by = f" by {spec.data.series_col!r}" if spec.data.series_col else ", one series per file"
    where = f"Spark ({spark_master})" if spark_master else f"{jobs} worker(s)"
    say(f"Training fleet '{spec.name}' on {spec.data.path}{by}, {where}")
    _say_network(say, spec, base=False)
    on_series = _say_series(
        say,
        lambda o: (
            f"{o.rows} rows  {o.epochs_run} epochs  val_loss {o.best_val_loss:.4f}  threshold {o.threshold:.3f}  {o.seconds:.0f}s"
        ),
        notes=True,
    )

    if spark_master:
        from anomaly import spark

        frame, time_col = _spark_input(spark_master, spec.data.path, spec)
        result = spark.train(frame, spec, series_col=spec.data.series_col, time_col=time_col, shown=spec.data.path)
        for outcome in result.series:
            on_series(outcome)
    else:
        result = fleet_jobs.train_fleet(spec, spec.data.path, jobs=jobs, on_series=on_series)
    trained = len(result.series) - len(result.failed)
    say(f"Trained {trained} of {len(result.series)} series in {result.seconds:.0f}s")
    _say_model(say, spec, result, "fleet run")
    if as_json:
        click.echo(
            json.dumps({"run_id": result.run_id, "model_uri": result.model_uri, "failed": [s.name for s in result.failed]})
        )
    _check_failed(result, " and are not in the model")


_model_option = click.option(
    "--model",
    "model_uri",
    default=None,
    metavar="URI",
    help="runs:/<run_id>/model, models:/<name>/<version>, models:/<name>@<alias> (default: the latest registered version).",
)


@cli.command()
@click.argument("file", type=_DataPath(exists=True, dir_okay=False, allow_dash=True, path_type=str))
@_model_option
@click.option(
    "-o",
    "--output",
    type=_ResultsPath(dir_okay=False, allow_dash=True, path_type=str),
    default=None,
    help="Results file, .csv or .parquet, or - for CSV on stdout (default: results/<FILE stem>_scores.csv; "
    "stdout when FILE is -). Events go beside it as <stem>_events.csv and .json.",
)
@click.option(
    "--chunk-rows",
    type=click.IntRange(min=1),
    default=None,
    help="Rows read and scored at a time (default 65536; 1 when FILE is -, so each line is answered at once). "
    "Scores do not depend on it.",
)
@_pipeline_option
@_spec_options(params.READ)
@_jobs_option
@_engine_option
@_spark_master_option
@_skip_unknown_option
@_json_option
def score(
    file: str,
    model_uri: str | None,
    output: str | None,
    chunk_rows: int | None,
    pipeline: Path | None,
    jobs: int | None,
    engine: str,
    spark_master: str,
    skip_unknown: bool,
    as_json: bool,
    **overrides: Any,
) -> None:
    """Score every timestep of FILE (CSV or Parquet; - reads CSV from stdin) with a trained model.

    Reads, scores and writes in chunks, so memory stays bounded however long FILE is. The run
    is logged to MLflow with the results, the events and the figures.

    A fleet (--series-col COLUMN, or a folder or quoted glob of files) is scored with a fleet
    model, each series with its own detector and its own carried state, side by side on --jobs
    workers, into one results table whose first column names the series.
    """
    from anomaly.spec import Spec, load_spec

    if as_json and (output == "-" or (output is None and file == "-")):
        raise _UserError(
            "--json writes its line on standard output, where the results go here (--output -, or FILE -): "
            "give --output FILE, or leave out --json",
            2,
        )
    spec = (load_spec(pipeline) if pipeline else Spec()).override(**overrides)
    if engine == "spark":
        _check_spark(spec.data.series_col, file)
        _score_spark(spec, file, model_uri, output, spark_master, skip_unknown, as_json)
        return
    if spec.data.series_col or _names_many(file):
        _score_fleet(spec, file, model_uri, output, chunk_rows, jobs, skip_unknown, as_json, pipeline is not None)
        return
    from_stdin = file == "-"
    if output is None and from_stdin:
        output = "-"
    # With results on stdout, everything meant for people goes to stderr.
    say = _say(as_json or output == "-")
    from anomaly import pipelines
    from anomaly.results import parse_top_features

    if chunk_rows is None:
        chunk_rows = 1 if from_stdin else pipelines.DEFAULT_CHUNK_ROWS
    _reap(say)
    from anomaly import progress

    bar = None
    if not from_stdin and output != "-" and progress.wanted(sys.stdout, as_json=as_json):
        bar = progress.ScoreProgress(sys.stdout, *progress.expected_rows(file))
    completed = False
    try:
        result = pipelines.score_pipeline(
            spec,
            file,
            model_uri=model_uri,
            output=output,
            default_model_name=spec.model_name if pipeline else None,
            chunk_rows=chunk_rows,
            on_rows=bar,
        )
        completed = True
    except pipelines.FleetModelGiven as err:
        if not err.in_file:
            raise
        fleet_spec, fleet_uri = _as_fleet(spec, err, file, say), err.uri
    finally:
        if bar is not None:
            bar.close(completed=completed)
    if not completed:  # a fleet model, and the file has its series column
        _score_fleet(fleet_spec, file, fleet_uri, output, chunk_rows, jobs, skip_unknown, as_json, pipeline is not None)
        return
    for note in result.notes:
        say(f"note: {note}")
    share = result.flagged / max(result.scored, 1)
    raised = (
        f", raised to {result.max_threshold:.3f} as the level rose" if result.max_threshold > result.threshold + 1e-12 else ""
    )
    say(
        f"Scored {result.rows} rows of {'<stdin>' if from_stdin else file} with {result.model_uri} (threshold {result.threshold:.3f}{raised}) in {result.seconds:.1f}s"
    )
    say(f"  flagged {result.flagged} points ({share:.1%} of {result.scored} scored) in {_stretches(len(result.events))}")
    top = result.events.sort_values("peak_score", ascending=False).head(10).sort_values("start")
    for event in top.itertuples():
        # The events table already leaves out the shares that would print as 0 (results.py).
        features = ", ".join(f"{name} {share:.0%}" for name, share in parse_top_features(event.top_features))
        say(f"    {event.start} .. {event.end}  {event.steps:4d} steps  peak {event.peak_score:6.2f}  {features}")
    if len(result.events) > len(top):
        more = len(result.events) - len(top)
        say(f"    ... {more} more {'stretch' if more == 1 else 'stretches'} in the run's results/events.csv")
    _say_scored(say, result, result.rows, result.flagged, as_json)


def _as_fleet(spec: Any, given: Any, file: str, say: Callable[[str], None]) -> Any:
    """The spec with the fleet model's series column, said in a note, for a table that has it."""
    say(f"note: {given.uri} is a fleet model by {given.series_col!r}, a column of {file}: read as its series (--series-col)")
    return spec.override(series_col=given.series_col)


def _stretches(count: int) -> str:
    return f"{count} stretch" if count == 1 else f"{count} stretches"


def _say_scored(
    say: Callable[[str], None], result: Any, rows: int, flagged: int, as_json: bool, extra: dict[str, Any] | None = None
) -> None:
    """The closing lines of a scoring command: where the results went, the run, and the JSON line."""

    say(f"Results: {'stdout' if str(result.output) == '-' else result.output}")
    say(_store_hint(result))
    if as_json:
        payload = {"run_id": result.run_id, "rows": rows, "flagged": flagged, "output": str(result.output)}
        click.echo(json.dumps({**payload, **(extra or {})}))


def _score_spark(
    spec: Any, file: str, model_uri: str | None, output: str | None, master: str, skip_unknown: bool, as_json: bool
) -> None:
    from anomaly import spark
    from anomaly.pipelines import default_output

    say = _say(as_json or output == "-")
    if model_uri is None:
        raise _UserError("--engine spark needs --model URI (a fleet model that the executors can reach)", 2)
    frame, time_col = _spark_input(master, file, spec)
    result = spark.score_to_file(
        frame,
        model_uri,
        output or str(default_output(Path(file))),
        series_col=spec.data.series_col,
        time_col=time_col,
        spec=spec,
        skip_unknown=skip_unknown,
        shown=file,
    )
    say(
        f"Scored {result.series} series ({result.rows} rows) of {file} on Spark ({master}) with {model_uri} "
        f"in {result.seconds:.1f}s; flagged {result.flagged} points"
    )
    # On Spark a series that cannot be scored fails the job: none is left failed beside the others.
    _say_scored(say, result, result.rows, result.flagged, as_json, {"failed": []})


def _score_fleet(
    spec: Any,
    file: str,
    model_uri: str | None,
    output: str | None,
    chunk_rows: int | None,
    jobs: int | None,
    skip_unknown: bool,
    as_json: bool,
    from_spec: bool,
) -> None:
    from anomaly import pipelines
    from anomaly.fleet import jobs as fleet_jobs

    if file == "-":
        raise _UserError("a fleet is read from a file, folder or glob, not from standard input", 2)
    say = _say(as_json or output == "-")
    _reap(say)
    on_series = _say_series(say, lambda o: f"{o.rows} rows  flagged {o.flagged} in {_stretches(len(o.events))}  {o.seconds:.1f}s")
    result = fleet_jobs.score_fleet(
        spec,
        file,
        model_uri=model_uri,
        output=output,
        default_model_name=spec.model_name if from_spec else None,
        chunk_rows=chunk_rows or pipelines.DEFAULT_CHUNK_ROWS,
        jobs=jobs,
        skip_unknown=skip_unknown,
        on_series=on_series,
    )
    for note in result.notes:
        say(f"note: {note}")
    scored = [s for s in result.series if s.ok]
    rows, flagged = sum(s.rows for s in scored), sum(s.flagged for s in scored)
    say(f"Scored {len(scored)} series ({rows} rows) of {file} with {result.model_uri} in {result.seconds:.1f}s")
    say(f"  flagged {flagged} points in {_stretches(len(result.events))}; the series with the most flagged stretches:")
    top = result.table[result.table.status == "scored"].head(10)
    width = max(len(str(n)) for n in top.series)
    for row in top.itertuples():
        say(
            f"    {row.series:<{width}}  {_stretches(row.events):>13}  {row.flagged:6d} flagged of {row.scored:7d} scored  "
            f"max score {row.max_score:6.2f}"
        )
    if len(scored) > len(top):
        say(f"    ... {len(scored) - len(top)} more series in the run's results/series.csv")
    extra = {"failed": [s.name for s in result.failed]}
    _say_scored(say, result, rows, flagged, as_json, extra)
    _check_failed(result)


@cli.command()
@click.argument("file", type=_DataPath(exists=True, dir_okay=False, path_type=str))
@_model_option
@click.option(
    "--label-col",
    "label_col",
    default=None,
    help="Column of 0/1 or true/false anomaly labels (default: the column named like labels, e.g. "
    "label, anomaly, is_anomaly, holding only 0/1; the first file's for a fleet).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random-scores baseline.")
@click.option(
    "--vus-window",
    "vus_window",
    type=click.IntRange(min=0),
    default=None,
    metavar="N",
    help="TSB-AD's slidingWindow for VUS-PR and VUS-ROC (default: find_length_rank of the first "
    "feature, as TSB-AD's benchmark picks it).",
)
@_pipeline_option
@_spec_options(params.READ, leave_out=("label_col",))
@_jobs_option
@_skip_unknown_option
@_json_option
def evaluate(
    file: str,
    model_uri: str | None,
    label_col: str | None,
    seed: int,
    vus_window: int | None,
    pipeline: Path | None,
    jobs: int | None,
    skip_unknown: bool,
    as_json: bool,
    **overrides: Any,
) -> None:
    """Measure how well a trained model finds the labelled anomalies in FILE.

    Point-wise precision, recall and F1 at the model's own threshold come first, with the F1
    of the best threshold (chosen with the labels) beside it; event-wise recall and precision;
    AUC-PR, AUC-ROC, VUS-PR and VUS-ROC as TSB-AD's get_metrics computes them; point-adjusted
    F1 last, marked inflated. Random scores (flagging as many rows) and flag-everything are
    measured on the same labels. The threshold is the model's own, fitted without labels.

    A fleet (--series-col COLUMN, or a folder or quoted glob of files) is measured per series,
    pooled over every series' rows (with the baselines) and as the mean over series.
    """
    from anomaly.spec import Spec, load_spec

    say = _say(as_json)
    spec = (load_spec(pipeline) if pipeline else Spec()).override(**overrides)
    if label_col is not None:
        spec = spec.override(label_col=label_col)
    if spec.data.label_col is None:
        spec = spec.override(label_col=_found_label_col(file, spec.data.series_col, say))
    from anomaly import pipelines

    options = dict(
        model_uri=model_uri, default_model_name=spec.model_name if pipeline else None, seed=seed, vus_window=vus_window
    )
    if spec.data.series_col or _names_many(file):
        _evaluate_fleet(spec, file, options, jobs, skip_unknown, as_json, say)
        return

    try:
        result = pipelines.evaluate_pipeline(spec, file, **options)
    except pipelines.FleetModelGiven as err:
        if not err.in_file:
            raise
        _evaluate_fleet(
            _as_fleet(spec, err, file, say), file, {**options, "model_uri": err.uri}, jobs, skip_unknown, as_json, say
        )
        return
    for note in result.notes:
        say(f"note: {note}")
    say(
        f"Evaluated {result.model_uri} on {result.rows} rows of {file} ({result.labelled} labelled anomalous) "
        f"in {result.seconds:.1f}s"
    )
    say(_format_table(result.table))
    say(
        "Point-wise metrics first, at the model's threshold; best_f1: point-wise F1 at the best threshold, "
        "chosen with the labels (TSB-AD's Standard-F1): the gap to point_f1 is what the model's threshold costs."
    )
    say("event_* count each labelled range once; far/mar: false-alarm and missed-alarm rates.")
    say(
        f"AUC-PR, AUC-ROC, VUS-PR, VUS-ROC as TSB-AD 1.5's get_metrics; VUS window {result.vus_window} "
        f"({'--vus-window' if vus_window is not None else result.vus_window_from})."
    )
    say("point_adjusted_f1_inflated credits a whole labelled range for one flag: inflated, even random flags score well on it.")
    say(_store_hint(result))
    if as_json:
        click.echo(
            json.dumps(
                {
                    "run_id": result.run_id,
                    "rows": result.rows,
                    "vus_window": result.vus_window,
                    "metrics": {m: _json_metrics(row) for m, row in result.table.iterrows()},
                }
            )
        )


def _evaluate_fleet(
    spec: Any,
    file: str,
    options: dict[str, Any],
    jobs: int | None,
    skip_unknown: bool,
    as_json: bool,
    say: Callable[[str], None],
) -> None:
    """Evaluate a fleet model on every series of FILE and print the per-series table."""
    from anomaly.fleet import jobs as fleet_jobs

    on_series = _say_series(say, lambda o: f"{o.rows} rows  {int(o.labels.sum())} labelled  {o.seconds:.1f}s")
    fleet = fleet_jobs.evaluate_fleet(spec, file, jobs=jobs, skip_unknown=skip_unknown, on_series=on_series, **options)
    for note in fleet.notes:
        say(f"note: {note}")
    scored = len(fleet.series) - len(fleet.failed)
    say(f"Evaluated {fleet.model_uri} on {scored} series of {file} in {fleet.seconds:.1f}s")
    table = fleet.table.copy()
    table.index = [f"{series} {method}" if method != "anomaly" else str(series) for series, method in table.index]
    say(_format_table(table))
    say(
        "One row per series at the model's threshold; (pooled): every series' rows together, beside the "
        "random and flag-everything baselines; (mean): the mean over series, as TSB-AD reports a benchmark."
    )
    if options.get("vus_window") is not None:
        say(f"VUS window {fleet.vus_window} (--vus-window) for every series and the pooled rows.")
    else:
        own = sorted({s.vus_window or 100 for s in fleet.series if s.ok})
        span = f"{own[0]}" if len(own) == 1 else f"{own[0]} to {own[-1]}"
        say(
            f"VUS windows: each series its own ({span}: find_length_rank of its first feature, as TSB-AD's "
            f"benchmark), the pooled rows {fleet.vus_window} (the median)."
        )
    say(_store_hint(fleet))
    if as_json:
        click.echo(
            json.dumps(
                {
                    "run_id": fleet.run_id,
                    "rows": sum(s.rows for s in fleet.series if s.ok),
                    "vus_window": fleet.vus_window,
                    "metrics": {f"{series}/{method}": _json_metrics(row) for (series, method), row in fleet.table.iterrows()},
                    "failed": [s.name for s in fleet.failed],
                }
            )
        )
    _check_failed(fleet)


def _json_metrics(row: Any) -> dict[str, float | None]:
    """A row of the evaluation table for JSON: NaN (undefined) as null."""
    return {k: (None if v != v else v) for k, v in row.items()}


def _format_table(table: Any) -> str:
    names = {
        "point_adjusted_f1_inflated": "pa_f1 (inflated)",
        "average_precision": "AUC-PR",
        "auc_roc": "AUC-ROC",
        "vus_pr": "VUS-PR",
        "vus_roc": "VUS-ROC",
    }
    columns = [names.get(c, c) for c in table.columns]
    width = max(len(str(m)) for m in table.index)
    lines = ["  " + " " * width + "  " + "  ".join(f"{c:>{max(9, len(c))}}" for c in columns)]
    for method, row in table.iterrows():
        cells = "  ".join(f"{v:>{max(9, len(c))}.3f}" for v, c in zip(row, columns))
        lines.append(f"  {method:<{width}}  {cells}")
    return "\n".join(lines)


@cli.command()
@click.option(
    "--reap",
    is_flag=True,
    help="First mark this host's RUNNING runs whose process is gone (killed, crashed, rebooted) as FAILED.",
)
@click.option(
    "--limit", type=click.IntRange(1, 10000), default=20, show_default=True, help="How many runs to list, newest first."
)
@_json_option
def runs(reap: bool, limit: int, as_json: bool) -> None:
    """List the latest train, score and evaluate runs of the tracking store in effect.

    Each line: when it started, kind, status, how long it ran, the data file, the model version,
    the run id and its experiment. A RUNNING run is alive or was left by a process that died:
    --reap checks the runs started on this host (pid gone or reused, or the machine rebooted)
    and marks the dead ones FAILED with the reason in their anomaly.reaped_reason tag. Runs
    started on other hosts are never touched.
    """
    say = _say(as_json)
    from anomaly.tracking import runs as tracking

    reaped = tracking.reap_dead_runs() if reap else []
    for item in reaped:
        done = "marked FAILED" if item.marked else f"NOT marked ({item.error})"
        say(f"reaped {item.run_id} ({item.run_name}): {done}: {item.reason}")
    if reap:
        say(f"{sum(r.marked for r in reaped)} dead run(s) of this host marked FAILED")
    found = tracking.recent_runs(limit)
    if not found:
        say(f"No runs of anomaly in the tracking store {tracking.tracking_uri()}")
    else:
        say(_format_runs(found))
    if as_json:
        click.echo(
            json.dumps(
                {
                    "reaped": [{"run_id": r.run_id, "marked": r.marked, "reason": r.reason} for r in reaped],
                    "runs": [r.to_json() for r in found],
                }
            )
        )


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _format_runs(found: list[Any]) -> str:
    import time

    rows = [("started", "kind", "status", "took", "data", "model", "run", "experiment")]
    for r in found:
        rows.append(
            (
                time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.start)),
                r.kind,
                r.status,
                _duration(r.seconds),
                Path(r.data).name if r.data and r.data != "<stdin>" else (r.data or "-"),
                f"v{r.model_version}" if r.model_version else "-",
                r.run_id,
                r.experiment,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    for r, line_index in zip(found, range(1, len(rows))):
        if r.status == "FAILED" and r.reason:
            lines[line_index] += f"\n    {' '.join(r.reason.split())[:200]}"
        elif r.dead:
            lines[line_index] += f"\n    dead: {r.dead}; anomaly runs --reap marks it FAILED"
    return "\n".join(lines)


def _interrupt(signum: int, frame: Any) -> None:
    from anomaly.errors import Terminated

    raise Terminated


def _stop_on_signals() -> None:
    # `kill PID` (SIGTERM) stops a command as cleanly as Ctrl-C does. SIGINT's handler is set too:
    # a process started in the background by a non-interactive shell inherits SIGINT ignored,
    # and Python then never turns Ctrl-C (or `kill -INT`) into KeyboardInterrupt.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)


_port_option = click.option("--port", type=click.IntRange(1, 65535), default=5000, show_default=True, help="Port to serve on.")


@cli.command()
@_port_option
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Interface to bind. Anything but 127.0.0.1 exposes every run to your network.",
)
def ui(port: int, host: str) -> None:
    """Open the MLflow UI on the runs of this directory (the store train and score use).

    Stops on Ctrl-C.
    """
    from anomaly.tracking import ui as mlflow_ui
    from anomaly.tracking.runs import tracking_uri

    uri = tracking_uri()
    if uri.startswith(("http://", "https://")):
        click.echo(f"Runs are on the tracking server {uri}: open it in a browser.")
        return
    if host != mlflow_ui.LOOPBACK:
        click.echo(f"warning: binding {host}: anyone who can reach this machine can read every run", err=True)
    _stop_on_signals()
    process = mlflow_ui.start_ui(uri, host, port)
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    try:
        mlflow_ui.wait_until_ready(process, url)
        click.echo(f"MLflow UI: {url}  (store {uri}; Ctrl-C to stop)")
        process.wait()
        raise AnomalyError(f"the MLflow UI stopped by itself with code {process.returncode}")
    except KeyboardInterrupt:
        click.echo("Stopping the MLflow UI...", err=True)
    finally:
        mlflow_ui.stop_ui(process)


_PERMISSIONS = ("READ", "EDIT", "MANAGE", "NO_PERMISSIONS")  # mirror of anomaly.tracking.server.PERMISSIONS


@cli.command()
@click.option(
    "--backend-store-uri",
    metavar="URI",
    default=None,
    help="Where runs and models (and with --auth the users) are kept: postgresql://USER:PASSWORD@HOST:PORT/DB "
    "or sqlite:///PATH (default: ./mlflow.db, the store `anomaly train` uses in this directory).",
)
@click.option(
    "--artifacts-destination",
    metavar="DIR|URI",
    default=None,
    help="Where the server keeps artifacts (models, results, figures); clients upload and download them "
    "through the server (default: ./mlartifacts).",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Interface to bind. Anything but 127.0.0.1 lets the network in: use it with --auth.",
)
@_port_option
@click.option("--workers", type=click.IntRange(1, 64), default=4, show_default=True, help="Server worker processes.")
@click.option(
    "--auth",
    is_flag=True,
    help="Logins (MLflow's basic-auth app; users kept in the backend store). The admin's password comes from "
    "MLFLOW_AUTH_ADMIN_PASSWORD, its name from MLFLOW_AUTH_ADMIN_USERNAME (default admin).",
)
@click.option(
    "--default-permission",
    type=click.Choice(_PERMISSIONS),
    default="EDIT",
    show_default=True,
    help="With --auth: what every user may do with experiments and models others created "
    "(EDIT: log runs and register versions in them; READ: only look).",
)
@click.option(
    "--auth-cache-seconds",
    type=click.IntRange(0, 3600),
    default=0,
    show_default=True,
    help="With --auth: how long a server worker may reuse a checked password (each check is a slow "
    "PBKDF2 hash); a changed password may still work that long on a worker that cached it.",
)
@click.option(
    "--allowed-hosts",
    default=None,
    metavar="HOSTS",
    help="Host headers to answer, comma-separated, e.g. mlflow.example.com:5000 "
    "(MLflow's default: localhost and private addresses).",
)
def server(
    backend_store_uri: str | None,
    artifacts_destination: str | None,
    host: str,
    port: int,
    workers: int,
    auth: bool,
    default_permission: str,
    auth_cache_seconds: int,
    allowed_hosts: str | None,
) -> None:
    """Start an MLflow tracking server for a team, on PostgreSQL or SQLite, with logins by --auth.

    \b
    Clients point at it with nothing but environment variables:
      export MLFLOW_TRACKING_URI=http://HOST:PORT
      export MLFLOW_TRACKING_USERNAME=NAME MLFLOW_TRACKING_PASSWORD=PASSWORD   # with --auth
    Prints the URL once the server answers its health check; stops on Ctrl-C (or kill).
    """
    from anomaly.tracking import server as team
    from anomaly.tracking import ui as mlflow_ui

    config = team.ServerConfig(
        backend_store_uri=team.backend_store_uri(backend_store_uri),
        artifacts_destination=team.artifacts_destination(artifacts_destination),
        host=host,
        port=port,
        workers=workers,
        auth=auth,
        default_permission=default_permission,
        allowed_hosts=allowed_hosts,
        auth_cache_seconds=auth_cache_seconds,
    )
    if host != mlflow_ui.LOOPBACK:
        exposed = "log in to it" if auth else "read and change every run and model: add --auth"
        click.echo(f"warning: binding {host}: anyone who can reach this machine can {exposed}", err=True)
    _stop_on_signals()
    running = team.start_server(config)
    try:
        # The first start on a new database creates the tables (PostgreSQL: about 25 s).
        mlflow_ui.wait_until_ready(running.process, config.url, timeout=300, what="the MLflow tracking server")
        logins = f"logins on, users may {default_permission} others' experiments" if auth else "no logins"
        click.echo(
            f"MLflow tracking server: {config.url}  (store {team.hide_password(config.backend_store_uri)}, "
            f"artifacts {config.artifacts_destination}, {logins}; Ctrl-C to stop)"
        )
        client_env = f"MLFLOW_TRACKING_URI={config.url}"
        if auth:
            client_env += " MLFLOW_TRACKING_USERNAME=<user> MLFLOW_TRACKING_PASSWORD=<password>"
        click.echo(f"Clients: export {client_env}")
        running.process.wait()
        raise AnomalyError(f"the MLflow tracking server stopped by itself with code {running.process.returncode}")
    except KeyboardInterrupt:
        click.echo("Stopping the MLflow tracking server...", err=True)
    finally:
        mlflow_ui.stop_ui(running.process)
        running.cleanup()


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="anomaly")
