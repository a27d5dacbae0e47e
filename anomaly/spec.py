"""The pipeline spec: what to read, how to window, which network, how to train and threshold.

A spec is a YAML file (``pipelines/*.yaml``) with the sections declared in :mod:`anomaly.params`;
every field has a default, so a file only states what differs. CLI options override single
fields by their flat name (``--window-size`` -> ``window.window_size``). The result is one
frozen object, validated field by field, that names the field and the problem on any error.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anomaly import params
from anomaly.errors import SpecError
from anomaly.params import (  # noqa: F401 - the section types, importable from here as before
    DataSpec,
    ModelSpec,
    ScoringSpec,
    ThresholdSpec,
    TrackingSpec,
    TrainingSpec,
    WindowSpec,
)

_SECTIONS = tuple(params.SECTIONS)


@dataclass(frozen=True)
class Spec:
    """A validated pipeline spec. Build it with :func:`load_spec`, or ``Spec()`` for the defaults."""

    name: str = "default"
    data: DataSpec = field(default_factory=DataSpec)
    window: WindowSpec = field(default_factory=WindowSpec)
    model: ModelSpec = field(default_factory=ModelSpec)
    training: TrainingSpec = field(default_factory=TrainingSpec)
    threshold: ThresholdSpec = field(default_factory=ThresholdSpec)
    scoring: ScoringSpec = field(default_factory=ScoringSpec)
    tracking: TrackingSpec = field(default_factory=TrackingSpec)
    source: str | None = None  # where the spec was read from, for messages; not a user field
    # The flat names of the fields its file or an option set (not null), at whatever value: what
    # a user asked for, even at the default, is not open for a saved model's own reading options.
    given: frozenset[str] = field(default=frozenset(), compare=False)

    @property
    def experiment_name(self) -> str:
        return self.tracking.experiment or f"anomaly-{self.name}"

    @property
    def model_name(self) -> str:
        return self.tracking.model_name or f"anomaly-{self.name}"

    def value(self, flat: str) -> Any:
        """One field by its flat name (``window_size``)."""
        declared = params.SETTINGS[flat]
        return getattr(getattr(self, declared.section), declared.name)

    def detector_params(self) -> dict[str, Any]:
        """The spec's fields as :class:`~anomaly.detector.Detector` parameters."""
        return {param: self.value(declared.flat) for param, declared in params.DETECTOR.items()}

    def flat(self) -> dict[str, Any]:
        """Every user field as ``{"section.field": value}``, e.g. for logging as params."""
        return {"name": self.name, **{s.path: self.value(s.flat) for s in params.SETTINGS.values()}}

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain YAML-ready data (tuples as lists)."""
        out: dict[str, Any] = {"name": self.name}
        for s in params.SETTINGS.values():
            value = self.value(s.flat)
            out.setdefault(s.section, {})[s.name] = list(value) if isinstance(value, tuple) else value
        return out

    def override(self, **values: Any) -> Spec:
        """A copy with fields replaced by flat name (``window_size=32``); ``None`` means "keep".

        Raises
        ------
        SpecError
            For an unknown name or an invalid value, named as a CLI option (``--window-size``).
        """
        name = values.pop("name", None) or self.name
        sections = {s: dataclasses.asdict(getattr(self, s)) for s in _SECTIONS}
        given, from_options = set(self.given), set()
        for key, value in values.items():
            if key not in params.SETTINGS:
                raise SpecError(f"unknown spec field {key!r}")
            if value is not None:
                value = tuple(value) if isinstance(value, list) else value  # as a spec file's list is read
                sections[params.SETTINGS[key].section][params.SETTINGS[key].name] = value
                given.add(key)
                from_options.add(key)
        # A rule between an option and a field of the spec file names the field as the file has it.
        from_file = {key: self.source for key in self.given - from_options} if self.source else {}
        return _build(name, sections, None, "option", frozenset(given), from_file)


def _build(
    name: Any,
    sections: dict[str, dict[str, Any]],
    source: str | None,
    origin: str,
    given: frozenset[str],
    from_file: dict[str, str] | None = None,
) -> Spec:
    """Validate every section and the rules between fields; name the first problem.

    ``origin`` says how a field is named in messages: ``"spec"`` as in the YAML file
    (``window.window_size``, after the file name), ``"option"`` as the CLI option (``--window-size``),
    except the fields in ``from_file`` (flat name to the spec file that set them), named as that file has them.
    """
    where = f"{source}: " if source else ""

    def shown(declared: params.Setting) -> str:
        if from_file and declared.flat in from_file:
            return f"{declared.path} ({from_file[declared.flat]})"
        return declared.option if origin == "option" else declared.path

    def as_given(value: Any) -> str:
        """A value as the user wrote it: ``0,64`` after an option, ``[0, 64]`` in a spec."""
        if isinstance(value, tuple | list):
            items = [str(item) for item in value]
            return ",".join(items) if origin == "option" else f"[{', '.join(items)}]"
        return repr(value)

    if not params.is_name(name):
        raise SpecError(f"{where}name must be {params.NAME_EXPECTED}; got {name!r}")
    built = {}
    for section, values in sections.items():
        try:
            built[section] = params.build(section, values)
        except params.Invalid as err:
            if err.setting is None:
                known = ", ".join(sorted(f.name for f in dataclasses.fields(params.SECTIONS[section])))
                raise SpecError(f"{where}unknown field {section}.{err.key}; known fields of {section}: {known}") from None
            raise SpecError(f"{where}{shown(err.setting)} must be {err.setting.expected}; got {as_given(err.value)}") from None
    spec = Spec(name=name, source=source, given=given, **built)
    pair = params.broken_pair({flat: spec.value(flat) for flat in params.SETTINGS})
    if pair is not None:
        bad, other, expected = pair
        expected = expected.format(other=shown(other), true="true")
        raise SpecError(f"{where}{shown(bad)} must be {expected}; got {as_given(spec.value(bad.flat))}")
    return spec


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
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise SpecError(f"{where}expected a mapping with sections {', '.join(_SECTIONS)}; got {type(raw).__name__}")
    unknown = [k for k in raw if k not in ("name", *_SECTIONS)]
    if unknown:
        raise SpecError(f"{where}unknown section {unknown[0]!r}; expected name, {', '.join(_SECTIONS)}")
    sections = {}
    for section in _SECTIONS:
        values = raw.get(section) or {}
        if not isinstance(values, dict):
            raise SpecError(f"{where}{section} must be a mapping of fields; got {type(values).__name__} {values!r}")
        # YAML has lists, not tuples; and a single layer's units may be written as one int.
        sections[section] = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    if isinstance(sections["model"].get("units"), int):
        sections["model"]["units"] = (sections["model"]["units"],)
    path = sections["data"].get("path")
    if base_dir is not None and isinstance(path, str) and not Path(path).is_absolute():
        sections["data"]["path"] = str((base_dir / path).resolve())
    given = frozenset(  # null in a file is "the default", as None is in an override
        flat for flat, declared in params.SETTINGS.items() if sections.get(declared.section, {}).get(declared.name) is not None
    )
    return _build(raw.get("name", "default"), sections, source, "spec", given)


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
