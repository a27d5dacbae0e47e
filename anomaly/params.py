"""Every setting, declared once: name, type, range, default, help text and spec section.

Each section of a pipeline spec is a frozen dataclass below, and each of its fields a
:func:`setting`. From these declarations come the spec (:mod:`anomaly.spec`: YAML sections,
overrides by flat name, the logged params), the :class:`~anomaly.detector.Detector`'s parameters
(defaults, ``get_params``, validation) and the options of ``anomaly train``/``score`` with their
``--help`` (:mod:`anomaly.cli`).

Values are validated by pydantic (v2), strictly (``'5'`` is not an int, ``true`` not a number),
with one model per section built from these declarations on first use: the CLI imports this
module to build its options, and ``anomaly --help`` must not pay for importing pydantic.
pydantic's own messages never reach a user: :class:`Invalid` names the setting and the value,
and each caller words the message for its audience (``spec.yaml: window.window_size``,
``--window-size``, the ``'window_size'`` parameter), with :attr:`Setting.expected`.
"""

import dataclasses
import functools
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Optional

# The algorithms' own lists (anomaly.nn.model.CELLS, anomaly.detection.thresholds.THRESHOLD_METHODS,
# anomaly.detection.scoring.AGGREGATIONS, anomaly.detection.autoregression.MAX_LAGS) are repeated here because those
# modules import numpy, which --help must not wait for; tests/test_params.py keeps them equal.
MAX_LAGS = 64

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_ALIAS_RE = re.compile(r"^(?![vV]\d+$)[A-Za-z0-9][A-Za-z0-9_-]*$")
NAME_EXPECTED = "a name of letters, digits, '_', '.', '-'"

TRAIN = "train"  # an option of `anomaly train` only
READ = "read"  # an option of every command that reads a series (train, score, evaluate)


@dataclass
class Setting:
    """One setting's declaration: the field's metadata, completed by :func:`_section`."""

    default: Any
    help: str
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    check: Callable[[Any], bool] | None = None  # a rule beyond type and range
    text: str | None = None  # what a value must be, where the type and range do not say it
    flat: str | None = None  # the name in overrides and options, if not the field's name
    param: str | None = None  # the Detector parameter, if not the flat name
    cli: str | None = TRAIN  # which commands have it as an option (TRAIN, READ or None)
    # Filled in from the dataclass field:
    section: str = ""
    name: str = ""
    hint: Any = None

    @property
    def option(self) -> str:
        """The CLI option, e.g. ``--window-size``."""
        return "--" + self.flat.replace("_", "-")

    @property
    def path(self) -> str:
        """The name in a spec file, e.g. ``window.window_size``."""
        return f"{self.section}.{self.name}"

    @property
    def base(self) -> Any:
        """The type without ``None``: ``str`` for ``str | None``."""
        if _is_union(self.hint):
            return next(a for a in typing.get_args(self.hint) if a is not type(None))
        return self.hint

    @property
    def expected(self) -> str:
        """What a value must be, e.g. ``an int in [2, 10000]``."""
        if self.text:
            return self.text
        base = self.base
        if base is bool:
            return "true or false"
        if typing.get_origin(base) is Literal:
            return "one of " + ", ".join(typing.get_args(base))
        kind = {int: "an int", float: "a number", tuple: "a non-empty list of ints"}[typing.get_origin(base) or base]
        low = f"[{self.ge}" if self.ge is not None else f"({self.gt}"
        high = f"{self.le}]" if self.le is not None else f"{self.lt})"
        return f"{kind} in {low}, {high}"


def setting(default: Any, help: str, **declared: Any) -> Any:
    """A spec field: its default, its ``--help`` text, and the rest of :class:`Setting`."""
    return dataclasses.field(default=default, metadata={"setting": Setting(default, help, **declared)})


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def _is_frequency(value: str) -> bool:
    from pandas.tseries.frequencies import to_offset  # only when a spec sets resample

    try:
        return to_offset(value).n > 0  # "0min" and "-5min" parse, and would divide by zero
    except (ValueError, TypeError):
        return False


SECTIONS: dict[str, type] = {}
SETTINGS: dict[str, Setting] = {}  # by flat name, in declaration order


def _section(name: str) -> Callable[[type], type]:
    def register(cls: type) -> type:
        cls = dataclass(frozen=True)(cls)
        for f in dataclasses.fields(cls):
            declared: Setting = f.metadata["setting"]
            declared.section, declared.name, declared.hint = name, f.name, f.type
            declared.flat = declared.flat or f.name
            SETTINGS[declared.flat] = declared
        SECTIONS[name] = cls
        return cls

    return register


@_section("data")
class DataSpec:
    path: str | None = setting(
        None, "The series to train on (the FILE argument).", text="a file path", flat="data_path", cli=None
    )
    time_col: str | None = setting(
        None,
        "Time column (default: detected by name or content; none: no time column, rows in file order).",
        text="a column name",
        cli=READ,
    )
    label_col: str | None = setting(
        None, "Column of 0/1 anomaly labels: never used as a feature.", text="a column name", cli=READ
    )
    series_col: str | None = setting(
        None,
        "Column naming each row's series: a fleet, one detector per series (or give a folder of files).",
        text="a column name",
        cli=READ,
    )
    columns: tuple[str, ...] | None = setting(
        None,
        "Feature columns, comma-separated (default: every numeric column).",
        check=all,
        text="a non-empty list of column names",
    )
    exclude_columns: tuple[str, ...] | None = setting(
        None,
        "Columns left out of the default features, comma-separated (an ID, a counter, a clock); "
        "never taken as the time column either.",
        check=all,
        text="a non-empty list of column names",
        cli=READ,
    )
    max_gap: int = setting(
        3, "Longest run of missing values filled by interpolation; longer gaps are not scored.", ge=0, le=10_000, cli=READ
    )
    resample: str | None = setting(
        None,
        "Put rows on a regular time grid first, e.g. 5min (bin means).",
        check=_is_frequency,
        text="a positive frequency like 5min, 1h or 1D",
        cli=READ,
    )


@_section("window")
class WindowSpec:
    window_size: int = setting(64, "Timesteps per training window (T).", ge=2, le=10_000)
    stride: int = setting(4, "Steps between training windows.", ge=1, le=10_000)


@_section("model")
class ModelSpec:
    cell: Literal["simplernn", "lstm", "gru"] = setting("lstm", "Recurrent cell.")
    units: tuple[int, ...] = setting((32, 32), "Units per stacked recurrent layer, e.g. 64,64.", ge=1, le=4096)
    dropout: float = setting(0.0, "Dropout on recurrent layer inputs.", ge=0, lt=1)
    residual: bool = setting(False, "true: predict each step's change from the one before (follows drifting levels).")
    autoregressive: int = setting(
        0,
        "p > 0: a linear VAR(p) fitted on the training part predicts first; the network learns the rest (0: off).",
        ge=0,
        le=MAX_LAGS,
    )
    calendar: bool = setting(
        True,
        "true: where the training series has a daily cycle, the network also gets each row's time of day "
        "(and of week, from two weeks of rows) as inputs.",
    )
    members: int = setting(
        2,
        "Networks trained side by side, each started as a network of its own; the score uses the mean of their "
        "predictions (2: about 1.2x the training time).",
        ge=1,
        le=16,
    )


@_section("training")
class TrainingSpec:
    epochs: int = setting(30, "Maximum training epochs (early stopping may end sooner).", ge=1, le=100_000)
    batch_size: int = setting(64, "Windows per training batch.", ge=1, le=1_000_000)
    learning_rate: float = setting(1e-3, "Adam learning rate.", gt=0, le=1)
    patience: int = setting(4, "Epochs without val_loss improvement before stopping.", ge=0, le=100_000)
    validation_fraction: float = setting(
        0.2, "Tail of the training series held back for early stopping and calibration.", ge=0.05, le=0.5
    )
    seed: int = setting(
        0, "Random seed (weights, shuffling, dropout).", ge=0, lt=2**32, text="an int in [0, 2**32)", param="random_state"
    )


@_section("threshold")
class ThresholdSpec:
    method: Literal["quantile", "pot", "dynamic"] = setting(
        "quantile",
        "How the threshold is fitted on calibration scores: quantile, pot (extreme values, SPOT) or dynamic (telemanom).",
        flat="threshold_method",
    )
    quantile: float = setting(
        0.99, "quantile: the calibration-score quantile used as the threshold.", gt=0, lt=1, flat="threshold_quantile"
    )
    level: float = setting(0.98, "pot: the quantile above which the tail is modelled.", ge=0.5, lt=1, flat="threshold_level")
    risk: float = setting(1e-4, "pot: the chance of a normal score above the threshold.", gt=0, lt=0.5, flat="threshold_risk")
    min_decrease: float = setting(0.13, "dynamic: telemanom's pruning ratio.", gt=0, lt=1, flat="threshold_min_decrease")
    margin: float = setting(
        1.0,
        "Any method: the threshold's distance above the median calibration score, times this (1: as fitted).",
        gt=0,
        le=100,
        flat="threshold_margin",
    )
    follow: bool = setting(
        True,
        "true: the threshold rises with the median of the latest 4,096 scores (a drifting normal level is not flagged "
        "throughout).",
        flat="threshold_follow",
    )
    warmup_steps: int = setting(10, "Leading steps of a scored series left unscored (network warm-up).", ge=0, le=100_000)


@_section("scoring")
class ScoringSpec:
    aggregation: Literal["rms", "mean_abs", "max_abs"] = setting(
        "rms", "How features' normalised residuals combine into a score."
    )
    scale_follow: bool = setting(
        True,
        "true: once 4,096 rows are scored, each feature's z is divided by the rise of its median |z| over the latest "
        "4,096 rows above calibration's, at most 1.5x (errors that grew on normal data are not flagged throughout).",
    )
    smoothing_span: float = setting(15.0, "EWMA span of the score (1: no smoothing).", ge=1, le=1_000_000)
    event_gap: int = setting(
        0, "Runs above the threshold at most this many steps apart form one event; is_anomaly covers the gap.", ge=0, le=1_000_000
    )
    event_min_length: int = setting(1, "Events shorter than this many steps are dropped (and not flagged).", ge=1, le=1_000_000)
    # Scoring mechanics, not modelling choices: settable in a spec, no option of their own.
    block: int = setting(512, "Steps per block of the one-pass scorer; blocks run side by side.", ge=1, le=1_000_000, cli=None)
    burn_in: int | None = setting(
        None,
        "Steps before each block that rebuild its state (default: window_size).",
        ge=0,
        le=1_000_000,
        text="an int in [0, 1000000] or null",
        cli=None,
    )


def _is_alias(value: str) -> bool:
    # MLflow reserves "latest" and version-like aliases ("v3").
    return _ALIAS_RE.match(value) is not None and value.lower() != "latest"


@_section("tracking")
class TrackingSpec:
    experiment: str | None = setting(
        None, "MLflow experiment (default: anomaly-<pipeline name>).", check=lambda v: v.strip() != "", text="a non-empty name"
    )
    model_name: str | None = setting(
        None,
        "Registered model name (default: anomaly-<pipeline name>).",
        check=lambda v: _NAME_RE.match(v) is not None,
        text=NAME_EXPECTED,
    )
    alias: str | None = setting(
        None,
        "Alias to point at the new model version, e.g. champion (models:/<name>@champion).",
        check=_is_alias,
        text="a name of letters, digits, '_', '-', not 'latest' or v<digits>",
    )


def is_name(value: Any) -> bool:
    """Whether ``value`` is a valid pipeline or model name."""
    return isinstance(value, str) and _NAME_RE.match(value) is not None


# The Detector's parameters: the settings of these sections, under their flat names (seed as
# scikit-learn's random_state). The data and tracking sections are the pipeline's, not the model's.
DETECTOR: dict[str, Setting] = {
    (s.param or s.flat): s for s in SETTINGS.values() if s.section in ("window", "model", "training", "threshold", "scoring")
}

# Rules between two settings, by flat name: (setting, other, broken(value, other's value),
# what the setting must be, with {other} and {true} filled in for the reader).
PAIRS: tuple[tuple[str, str, Callable[[Any, Any], bool], str], ...] = (
    (
        "autoregressive",
        "residual",
        lambda lags, residual: bool(lags) and residual is True,
        "0 when {other} is {true} (two ways of predicting the level)",
    ),
    # POT models the tail above the level quantile: its risk must be rarer than that tail's share.
    ("threshold_risk", "threshold_level", lambda risk, level: risk >= 1 - level, "below 1 - {other}"),
)


class Invalid(ValueError):
    """A value that breaks its setting's declaration (``setting`` None: an unknown field)."""

    def __init__(self, setting: Setting | None, key: str, value: Any) -> None:
        super().__init__(f"invalid {key}: {value!r}")
        self.setting, self.key, self.value = setting, key, value


@functools.cache
def _model(section: str) -> Any:
    """The pydantic model that validates one section, built from its declarations."""
    from typing import Annotated

    import pydantic

    def rule(declared: Setting) -> Any:
        def enforce(value: Any) -> Any:
            if not declared.check(value):
                raise ValueError(declared.expected)
            return value

        return pydantic.AfterValidator(enforce)

    fields = {}
    for declared in SETTINGS.values():
        if declared.section != section:
            continue
        base = declared.base
        bounds = pydantic.Field(ge=declared.ge, gt=declared.gt, le=declared.le, lt=declared.lt)
        if typing.get_origin(base) is tuple:  # the bounds are the items', and a list holds one at least
            base = Annotated[tuple[Annotated[typing.get_args(base)[0], bounds], ...], pydantic.Field(min_length=1)]
        else:
            base = Annotated[base, bounds]
        if declared.check is not None:
            base = Annotated[base, rule(declared)]
        fields[declared.name] = (Optional[base] if _is_union(declared.hint) else base, declared.default)  # noqa: UP045 - built at run time
    config = pydantic.ConfigDict(strict=True, extra="forbid")
    return pydantic.create_model(f"{section}_settings", __config__=config, **fields)


def build(section: str, values: Mapping[str, Any]) -> Any:
    """One section's dataclass from field values, every value validated.

    Raises
    ------
    Invalid
        For the first unknown field or invalid value, in declaration order.
    """
    import pydantic

    try:
        checked = _model(section).model_validate(dict(values))
    except pydantic.ValidationError as err:
        key = str(err.errors()[0]["loc"][0])
        declared = next((s for s in SETTINGS.values() if s.section == section and s.name == key), None)
        raise Invalid(declared, key, values.get(key)) from None
    return SECTIONS[section](**dict(checked))


def broken_pair(values: Mapping[str, Any]) -> tuple[Setting, Setting, str] | None:
    """The first rule of :data:`PAIRS` that ``values`` (by flat name) break, if any."""
    for name, other, broken, expected in PAIRS:
        if broken(values[name], values[other]):
            return SETTINGS[name], SETTINGS[other], expected
    return None


def check_detector(params: Mapping[str, Any]) -> None:
    """Validate Detector parameters against the schema.

    Raises
    ------
    ValueError
        ``The 'name' parameter must be <expected>. Got <value> instead.``, naming the first
        invalid parameter (scikit-learn's wording).
    """
    by_flat = {declared.flat: params[param] for param, declared in DETECTOR.items()}
    bad = _first_invalid(by_flat)
    if bad is None:
        return
    param_of = {declared.flat: param for param, declared in DETECTOR.items()}
    expected = bad.expected
    for name, other, _, also in PAIRS:  # a parameter's whole contract, its pair's rule included
        if name == bad.flat:
            expected += ", and " + also.format(other=param_of[other], true="True")
    raise ValueError(f"The {param_of[bad.flat]!r} parameter must be {expected}. Got {by_flat[bad.flat]!r} instead.")


def _first_invalid(by_flat: Mapping[str, Any]) -> Setting | None:
    sections: dict[str, dict[str, Any]] = {}
    for flat, value in by_flat.items():
        sections.setdefault(SETTINGS[flat].section, {})[SETTINGS[flat].name] = value
    try:
        for section, values in sections.items():
            build(section, values)
    except Invalid as err:
        return err.setting
    pair = broken_pair(by_flat)
    return None if pair is None else pair[0]
