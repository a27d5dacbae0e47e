"""The pipeline spec: what to read, how to window, which network, how to train and threshold.

A spec is a YAML file (``pipelines/*.yaml``) with the sections below; every field has a
default, so a file only states what differs. CLI options override single fields by their
flat name (``--window-size`` -> ``window.window_size``). The result is one frozen object,
validated in one place, that names the field and the problem on any error.

Example
-------
.. code-block:: yaml

    name: demo
    data: {path: ../data/demo_train.csv, time_col: timestamp, label_col: anomaly}
    window: {window_size: 64, stride: 4}
    model: {cell: lstm, units: [32, 32], dropout: 0.1}
    training: {epochs: 30, batch_size: 64, seed: 0}
    threshold: {method: quantile, quantile: 0.99, follow: true}
    scoring: {aggregation: rms, smoothing_span: 15, event_gap: 0, event_min_length: 1}
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anomaly.autoregression import MAX_LAGS
from anomaly.errors import SpecError
from anomaly.model import CELLS
from anomaly.scoring import AGGREGATIONS
from anomaly.thresholds import THRESHOLD_METHODS


@dataclass(frozen=True)
class DataSpec:
    path: str | None = None
    time_col: str | None = None
    label_col: str | None = None
    columns: tuple[str, ...] | None = None
    max_gap: int = 3
    resample: str | None = None  # a pandas frequency, e.g. "5min": put rows on a regular grid


@dataclass(frozen=True)
class WindowSpec:
    window_size: int = 64
    stride: int = 4


@dataclass(frozen=True)
class ModelSpec:
    cell: str = "lstm"
    units: tuple[int, ...] = (32, 32)
    dropout: float = 0.0
    residual: bool = False  # predict the change from the last step: x_hat[t+1] = x[t] + f(x[<=t])
    autoregressive: int = 0  # p > 0: a linear VAR(p) predicts first, the network learns the rest


@dataclass(frozen=True)
class TrainingSpec:
    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 1e-3
    patience: int = 4
    validation_fraction: float = 0.2
    seed: int = 0


@dataclass(frozen=True)
class ThresholdSpec:
    method: str = "quantile"  # quantile | pot (SPOT, extreme values) | dynamic (telemanom)
    quantile: float = 0.99  # quantile: the calibration-score quantile used as the threshold
    level: float = 0.98  # pot: the quantile above which the tail is modelled
    risk: float = 1e-4  # pot: probability of a normal score above the threshold
    min_decrease: float = 0.13  # dynamic: telemanom's pruning ratio p
    margin: float = 1.0  # any method: median + margin * (threshold - median) of calibration scores
    follow: bool = True  # raise the threshold as the median of the latest 4,096 scores rises
    warmup_steps: int = 10


@dataclass(frozen=True)
class ScoringSpec:
    aggregation: str = "rms"  # rms | mean_abs | max_abs of the features' normalised residuals
    smoothing_span: float = 15.0  # EWMA span of the score; 1 = no smoothing
    event_gap: int = 0  # flagged runs at most this many steps apart form one event
    event_min_length: int = 1  # shorter events are not reported
    block: int = 512  # steps per block of the one-pass scorer (see anomaly.streaming)


@dataclass(frozen=True)
class TrackingSpec:
    experiment: str | None = None
    model_name: str | None = None
    alias: str | None = None  # set on each newly registered version, e.g. "champion"


@dataclass(frozen=True)
class Spec:
    """A validated pipeline spec. Build it with :func:`load_spec` or :func:`default_spec`."""

    name: str = "default"
    data: DataSpec = field(default_factory=DataSpec)
    window: WindowSpec = field(default_factory=WindowSpec)
    model: ModelSpec = field(default_factory=ModelSpec)
    training: TrainingSpec = field(default_factory=TrainingSpec)
    threshold: ThresholdSpec = field(default_factory=ThresholdSpec)
    scoring: ScoringSpec = field(default_factory=ScoringSpec)
    tracking: TrackingSpec = field(default_factory=TrackingSpec)
    source: str | None = None  # where the spec was read from, for messages; not a user field

    @property
    def experiment_name(self) -> str:
        return self.tracking.experiment or f"anomaly-{self.name}"

    @property
    def model_name(self) -> str:
        return self.tracking.model_name or f"anomaly-{self.name}"

    def detector_params(self) -> dict[str, Any]:
        """The spec's fields as :class:`~anomaly.detector.Detector` parameters."""
        return {
            "window_size": self.window.window_size,
            "stride": self.window.stride,
            "cell": self.model.cell,
            "units": self.model.units,
            "dropout": self.model.dropout,
            "residual": self.model.residual,
            "autoregressive": self.model.autoregressive,
            "epochs": self.training.epochs,
            "batch_size": self.training.batch_size,
            "learning_rate": self.training.learning_rate,
            "patience": self.training.patience,
            "validation_fraction": self.training.validation_fraction,
            "threshold_method": self.threshold.method,
            "threshold_quantile": self.threshold.quantile,
            "threshold_level": self.threshold.level,
            "threshold_risk": self.threshold.risk,
            "threshold_min_decrease": self.threshold.min_decrease,
            "threshold_margin": float(self.threshold.margin),
            "threshold_follow": self.threshold.follow,
            "aggregation": self.scoring.aggregation,
            "smoothing_span": float(self.scoring.smoothing_span),
            "event_gap": self.scoring.event_gap,
            "event_min_length": self.scoring.event_min_length,
            "block": self.scoring.block,
            "warmup_steps": self.threshold.warmup_steps,
            "random_state": self.training.seed,
        }

    def flat(self) -> dict[str, Any]:
        """Every user field as ``{"section.field": value}``, e.g. for logging as params."""
        out: dict[str, Any] = {"name": self.name}
        for section in _SECTIONS:
            for f in dataclasses.fields(getattr(self, section)):
                out[f"{section}.{f.name}"] = getattr(getattr(self, section), f.name)
        return out

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain YAML-ready data (tuples as lists)."""
        out: dict[str, Any] = {"name": self.name}
        for section in _SECTIONS:
            out[section] = {
                f.name: (list(v) if isinstance(v := getattr(getattr(self, section), f.name), tuple) else v)
                for f in dataclasses.fields(getattr(self, section))
            }
        return out

    def override(self, **values: Any) -> "Spec":
        """A copy with fields replaced by flat name (``window_size=32``); ``None`` means "keep".

        Raises
        ------
        SpecError
            For an unknown name or an invalid value.
        """
        sections: dict[str, dict[str, Any]] = {}
        name = self.name
        for key, value in values.items():
            if value is None:
                continue
            if key == "name":
                name = value
                continue
            if key not in _FLAT_INDEX:
                raise SpecError(f"unknown spec field {key!r}")
            section, fname = _FLAT_INDEX[key]
            sections.setdefault(section, {})[fname] = value
        replaced = {s: dataclasses.replace(getattr(self, s), **v) for s, v in sections.items()}
        spec = dataclasses.replace(self, name=name, **replaced)
        validate(spec, origin="option")
        return spec


_SECTIONS = ("data", "window", "model", "training", "threshold", "scoring", "tracking")
_SECTION_TYPES = {
    "data": DataSpec, "window": WindowSpec, "model": ModelSpec, "training": TrainingSpec,
    "threshold": ThresholdSpec, "scoring": ScoringSpec, "tracking": TrackingSpec,
}
# Flat name -> (section, field): the CLI option of each field is its flat name with dashes
# (``--window-size``). Every field has exactly one.
_FLAT_INDEX: dict[str, tuple[str, str]] = {
    "data_path": ("data", "path"),
    "time_col": ("data", "time_col"),
    "label_col": ("data", "label_col"),
    "columns": ("data", "columns"),
    "max_gap": ("data", "max_gap"),
    "resample": ("data", "resample"),
    "window_size": ("window", "window_size"),
    "stride": ("window", "stride"),
    "cell": ("model", "cell"),
    "units": ("model", "units"),
    "dropout": ("model", "dropout"),
    "residual": ("model", "residual"),
    "autoregressive": ("model", "autoregressive"),
    "epochs": ("training", "epochs"),
    "batch_size": ("training", "batch_size"),
    "learning_rate": ("training", "learning_rate"),
    "patience": ("training", "patience"),
    "validation_fraction": ("training", "validation_fraction"),
    "seed": ("training", "seed"),
    "threshold_method": ("threshold", "method"),
    "threshold_quantile": ("threshold", "quantile"),
    "threshold_level": ("threshold", "level"),
    "threshold_risk": ("threshold", "risk"),
    "threshold_min_decrease": ("threshold", "min_decrease"),
    "threshold_margin": ("threshold", "margin"),
    "threshold_follow": ("threshold", "follow"),
    "warmup_steps": ("threshold", "warmup_steps"),
    "aggregation": ("scoring", "aggregation"),
    "smoothing_span": ("scoring", "smoothing_span"),
    "event_gap": ("scoring", "event_gap"),
    "event_min_length": ("scoring", "event_min_length"),
    "block": ("scoring", "block"),
    "experiment": ("tracking", "experiment"),
    "model_name": ("tracking", "model_name"),
    "alias": ("tracking", "alias"),
}

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_ALIAS_RE = re.compile(r"^(?![vV]\d+$)[A-Za-z0-9][A-Za-z0-9_-]*$")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_frequency(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    from pandas.tseries.frequencies import to_offset

    try:
        to_offset(value)
    except (ValueError, TypeError):
        return False
    return True


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# (section, field) -> (check, what is expected). One table, so every rule is stated once.
_RULES: dict[tuple[str, str], tuple[Any, str]] = {
    ("data", "path"): (lambda v: v is None or isinstance(v, str), "a file path"),
    ("data", "time_col"): (lambda v: v is None or isinstance(v, str), "a column name"),
    ("data", "label_col"): (lambda v: v is None or isinstance(v, str), "a column name"),
    ("data", "columns"): (lambda v: v is None or (len(v) > 0 and all(isinstance(c, str) and c for c in v)), "a non-empty list of column names"),
    ("data", "max_gap"): (lambda v: _is_int(v) and 0 <= v <= 10_000, "an int in [0, 10000]"),
    ("data", "resample"): (lambda v: v is None or _is_frequency(v), "a frequency like 5min, 1h or 1D"),
    ("window", "window_size"): (lambda v: _is_int(v) and 2 <= v <= 10_000, "an int in [2, 10000]"),
    ("window", "stride"): (lambda v: _is_int(v) and 1 <= v <= 10_000, "an int in [1, 10000]"),
    ("model", "cell"): (lambda v: v in CELLS, f"one of {', '.join(CELLS)}"),
    ("model", "units"): (lambda v: len(v) >= 1 and all(_is_int(u) and 1 <= u <= 4096 for u in v), "a non-empty list of ints in [1, 4096]"),
    ("model", "dropout"): (lambda v: _is_number(v) and 0 <= v < 1, "a number in [0, 1)"),
    ("model", "residual"): (lambda v: isinstance(v, bool), "true or false"),
    ("model", "autoregressive"): (lambda v: _is_int(v) and 0 <= v <= MAX_LAGS, f"an int in [0, {MAX_LAGS}]"),
    ("training", "epochs"): (lambda v: _is_int(v) and 1 <= v <= 100_000, "an int in [1, 100000]"),
    ("training", "batch_size"): (lambda v: _is_int(v) and 1 <= v <= 1_000_000, "an int in [1, 1000000]"),
    ("training", "learning_rate"): (lambda v: _is_number(v) and 0 < v <= 1, "a number in (0, 1]"),
    ("training", "patience"): (lambda v: _is_int(v) and 0 <= v <= 100_000, "an int in [0, 100000]"),
    ("training", "validation_fraction"): (lambda v: _is_number(v) and 0.05 <= v <= 0.5, "a number in [0.05, 0.5]"),
    ("training", "seed"): (lambda v: _is_int(v) and 0 <= v < 2**32, "an int in [0, 2**32)"),
    ("threshold", "method"): (lambda v: v in THRESHOLD_METHODS, f"one of {', '.join(THRESHOLD_METHODS)}"),
    ("threshold", "quantile"): (lambda v: _is_number(v) and 0 < v < 1, "a number in (0, 1)"),
    ("threshold", "level"): (lambda v: _is_number(v) and 0.5 <= v < 1, "a number in [0.5, 1)"),
    ("threshold", "risk"): (lambda v: _is_number(v) and 0 < v < 0.5, "a number in (0, 0.5)"),
    ("threshold", "min_decrease"): (lambda v: _is_number(v) and 0 < v < 1, "a number in (0, 1)"),
    ("threshold", "margin"): (lambda v: _is_number(v) and 0 < v <= 100, "a number in (0, 100]"),
    ("threshold", "follow"): (lambda v: isinstance(v, bool), "true or false"),
    ("threshold", "warmup_steps"): (lambda v: _is_int(v) and 0 <= v <= 100_000, "an int in [0, 100000]"),
    ("scoring", "aggregation"): (lambda v: v in AGGREGATIONS, f"one of {', '.join(AGGREGATIONS)}"),
    ("scoring", "smoothing_span"): (lambda v: _is_number(v) and 1 <= v <= 1_000_000, "a number in [1, 1000000]"),
    ("scoring", "event_gap"): (lambda v: _is_int(v) and 0 <= v <= 1_000_000, "an int in [0, 1000000]"),
    ("scoring", "event_min_length"): (lambda v: _is_int(v) and 1 <= v <= 1_000_000, "an int in [1, 1000000]"),
    ("scoring", "block"): (lambda v: _is_int(v) and 1 <= v <= 1_000_000, "an int in [1, 1000000]"),
    ("tracking", "experiment"): (lambda v: v is None or (isinstance(v, str) and v.strip() != ""), "a non-empty name"),
    ("tracking", "model_name"): (lambda v: v is None or (isinstance(v, str) and _NAME_RE.match(v) is not None), "a name of letters, digits, '_', '.', '-'"),
    # MLflow reserves "latest" and version-like aliases ("v3").
    ("tracking", "alias"): (lambda v: v is None or (isinstance(v, str) and _ALIAS_RE.match(v) is not None and v.lower() != "latest"), "a name of letters, digits, '_', '-', not 'latest' or v<digits>"),
}


def _display(section: str, fname: str, origin: str) -> str:
    if origin == "option":
        flat = next(k for k, v in _FLAT_INDEX.items() if v == (section, fname))
        return "--" + flat.replace("_", "-")
    return f"{section}.{fname}"


def validate(spec: Spec, origin: str = "spec") -> None:
    """Check every field against its rule.

    Parameters
    ----------
    spec : Spec
    origin : {"spec", "option"}
        Whether to name fields as in the YAML file (``window.window_size``) or as CLI options
        (``--window-size``) in messages.

    Raises
    ------
    SpecError
        Naming the first invalid field, what it must be, and what it is.
    """
    where = f"{spec.source}: " if spec.source and origin == "spec" else ""
    if not isinstance(spec.name, str) or not _NAME_RE.match(spec.name):
        raise SpecError(f"{where}name must be {_RULES[('tracking', 'model_name')][1]}; got {spec.name!r}")
    for (section, fname), (check, expected) in _RULES.items():
        value = getattr(getattr(spec, section), fname)
        try:
            ok = bool(check(value))
        except TypeError:
            ok = False
        if not ok:
            raise SpecError(f"{where}{_display(section, fname, origin)} must be {expected}; got {value!r}")
    if spec.model.residual and spec.model.autoregressive:
        raise SpecError(
            f"{where}{_display('model', 'autoregressive', origin)} must be 0 when "
            f"{_display('model', 'residual', origin)} is true (two ways of predicting the level); "
            f"got {spec.model.autoregressive!r}"
        )


def _coerce_section(section: str, raw: Any, where: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise SpecError(f"{where}{section} must be a mapping of fields; got {type(raw).__name__} {raw!r}")
    known = {f.name for f in dataclasses.fields(_SECTION_TYPES[section])}
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in known:
            raise SpecError(f"{where}unknown field {section}.{key}; known fields of {section}: {', '.join(sorted(known))}")
        if key in ("columns", "units") and isinstance(value, list):
            value = tuple(value)
        elif key == "units" and _is_int(value):
            value = (value,)
        out[key] = value
    return out


def spec_from_dict(raw: Any, source: str | None = None, base_dir: Path | None = None) -> Spec:
    """Build and validate a spec from parsed YAML.

    Parameters
    ----------
    raw : mapping
    source : str, optional
        File name for messages.
    base_dir : Path, optional
        A relative ``data.path`` is resolved against this directory (the spec file's).
    """
    where = f"{source}: " if source else ""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise SpecError(f"{where}expected a mapping with sections {', '.join(_SECTIONS)}; got {type(raw).__name__}")
    unknown = [k for k in raw if k not in ("name", *_SECTIONS)]
    if unknown:
        raise SpecError(f"{where}unknown section {unknown[0]!r}; expected name, {', '.join(_SECTIONS)}")
    sections = {s: _SECTION_TYPES[s](**_coerce_section(s, raw.get(s), where)) for s in _SECTIONS}
    data = sections["data"]
    if base_dir is not None and isinstance(data.path, str) and not Path(data.path).is_absolute():
        sections["data"] = dataclasses.replace(data, path=str((base_dir / data.path).resolve()))
    spec = Spec(name=raw.get("name", "default"), source=source, **sections)
    validate(spec)
    return spec


def load_spec(path: str | Path) -> Spec:
    """Read a pipeline spec from a YAML file.

    Raises
    ------
    SpecError
        When the file is missing, is not YAML, or holds an invalid field.
    """
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{path}: pipeline spec not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise SpecError(f"{path}: cannot read pipeline spec ({err})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise SpecError(f"{path}: not valid YAML{at}: {problem}") from None
    return spec_from_dict(raw, source=str(path), base_dir=path.parent)


def default_spec_path() -> Path:
    """``pipelines/default.yaml`` of the checkout this package runs from."""
    return Path(__file__).resolve().parent.parent / "pipelines" / "default.yaml"


def dump_spec(spec: Spec) -> str:
    """The spec as YAML text (what a run logs as its resolved spec)."""
    import yaml

    return yaml.safe_dump(spec.to_dict(), sort_keys=False)
