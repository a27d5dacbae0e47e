"""One declaration (anomaly.params) drives the spec, the Detector and the CLI."""

from __future__ import annotations

import inspect
import typing

import pytest
from click.testing import CliRunner

from anomaly import params
from anomaly.cli import cli
from anomaly.detector import Detector
from anomaly.errors import SpecError
from anomaly.spec import Spec, spec_from_dict
from tests.conftest import make_series

DECLARED = list(params.SETTINGS.values())
_PYDANTIC = ("pydantic", "validation error", "Input should", "errors.pydantic.dev")


def out_of_range(declared: params.Setting) -> list:
    """Values just outside a numeric setting's range (both ends where it has two)."""
    step = 1 if typing.get_origin(declared.base) is tuple or declared.base is int else 0.01
    low = [declared.ge - step] if declared.ge is not None else [declared.gt] if declared.gt is not None else []
    high = [declared.le + step] if declared.le is not None else [declared.lt] if declared.lt is not None else []
    values = [float(v) for v in low + high] if declared.base is float else low + high
    return [(v,) for v in values] if typing.get_origin(declared.base) is tuple else values


RANGED = [(s, v) for s in DECLARED for v in out_of_range(s)]


@pytest.mark.parametrize("declared", DECLARED, ids=lambda s: s.flat)
def test_every_setting_has_its_default_in_the_spec_the_detector_and_the_help(declared):
    assert Spec().value(declared.flat) == declared.default
    assert getattr(params.build(declared.section, {}), declared.name) == declared.default  # the default is valid
    param = declared.param or declared.flat
    if declared.section in ("window", "model", "training", "threshold", "scoring"):
        assert Detector().get_params()[param] == declared.default
        assert inspect.signature(Detector).parameters[param].default == declared.default
    else:
        assert param not in Detector().get_params()
    commands = {"train": (params.READ, params.TRAIN), "score": (params.READ,), "evaluate": (params.READ,)}
    own = {("evaluate", "label_col"), ("evaluate", "seed")}  # evaluate's own options of these names
    for command, kinds in commands.items():
        options = {p.name: p for p in cli.commands[command].params}
        if (command, declared.flat) in own:
            continue
        if declared.cli in kinds:
            assert options[declared.flat].opts == [declared.option]
            assert options[declared.flat].help.startswith(declared.help), (command, declared.flat)
        else:
            assert declared.flat not in options, (command, declared.flat)


@pytest.mark.parametrize("declared, value", RANGED, ids=[f"{s.flat}={v}" for s, v in RANGED])
def test_an_out_of_range_value_is_refused_alike_by_spec_option_and_detector(declared, value, tmp_path):
    # A list is shown as it was written: [0, 4] in a spec file, 0,4 after an option.
    listed = isinstance(value, tuple)
    shown = ",".join(map(str, value)) if listed else str(value)
    with pytest.raises(SpecError) as info:
        spec_from_dict({declared.section: {declared.name: value}}, source="spec.yaml")
    got = f"[{', '.join(map(str, value))}]" if listed else repr(value)
    assert str(info.value) == f"spec.yaml: {declared.path} must be {declared.expected}; got {got}"
    with pytest.raises(SpecError) as info:
        Spec().override(**{declared.flat: value})
    assert str(info.value) == f"{declared.option} must be {declared.expected}; got {shown if listed else repr(value)}"
    if declared.cli is not None:
        result = CliRunner().invoke(cli, ["train", declared.option, shown])
        assert result.exit_code == 2 and result.stderr.strip().splitlines() == [f"error: {str(info.value)}"], result.output
    if declared.param or declared.flat in Detector().get_params():
        param = declared.param or declared.flat
        with pytest.raises(ValueError) as info:
            Detector(**{param: value}).fit(make_series(200, 0))
        assert f"The {param!r} parameter must be {declared.expected}" in str(info.value)
        assert not any(text in str(info.value) for text in _PYDANTIC)


@pytest.mark.parametrize(
    "raw, expected",
    [
        ({"training": {"validation_fraction": 0.7}}, "training.validation_fraction must be a number in [0.05, 0.5]; got 0.7"),
        ({"threshold": {"risk": 0.05}}, "threshold.risk must be below 1 - threshold.level; got 0.05"),
        ({"scoring": {"burn_in": -1}}, "scoring.burn_in must be an int in [0, 1000000] or null; got -1"),
        ({"data": {"columns": []}}, "data.columns must be a non-empty list of column names; got []"),
        ({"data": {"resample": "soon"}}, "data.resample must be a positive frequency like 5min, 1h or 1D; got 'soon'"),
        ({"tracking": {"alias": "latest"}}, "tracking.alias must be a name of letters"),
        ({"model": {"dropout": True}}, "model.dropout must be a number in [0, 1); got True"),
        ({"model": {"residual": "yes"}}, "model.residual must be true or false; got 'yes'"),
        ({"name": "a b"}, "name must be a name of letters, digits"),
    ],
)
def test_other_bad_values_name_the_field_in_our_words(raw, expected):
    with pytest.raises(SpecError) as info:
        spec_from_dict(raw, source="spec.yaml")
    assert str(info.value).startswith(f"spec.yaml: {expected}"), str(info.value)
    assert not any(text in str(info.value) for text in _PYDANTIC)


def test_the_detector_refuses_what_the_spec_refuses():
    # Detector-only ranges used to be wider, e.g. validation_fraction (0, 1) against the spec's [0.05, 0.5].
    for param, value in [("validation_fraction", 0.7), ("threshold_level", 0.3), ("threshold_risk", 0.05), ("burn_in", -1)]:
        with pytest.raises(ValueError, match=f"The '{param}' parameter must be"):
            Detector(**{param: value}).fit(make_series(200, 0))
    with pytest.raises(SpecError, match=r"^--threshold-risk must be below 1 - --threshold-level; got 0.05$"):
        Spec().override(threshold_risk=0.05)


def test_unknown_parameters_are_refused_as_python_and_scikit_learn_do():
    with pytest.raises(ValueError, match="Invalid parameter 'window'"):
        Detector(window=3)
    with pytest.raises(ValueError, match="Invalid parameter 'seed'"):
        Detector().set_params(seed=3)  # the spec's training.seed is the Detector's random_state
    assert Detector().set_params(units=[8, 4]).units == (8, 4)


def test_the_library_lists_of_choices_are_the_schemas():
    from anomaly.detection.autoregression import MAX_LAGS
    from anomaly.detection.scoring import AGGREGATIONS
    from anomaly.detection.thresholds import THRESHOLD_METHODS
    from anomaly.nn.model import CELLS

    choices = {s.flat: typing.get_args(s.base) for s in DECLARED if typing.get_origin(s.base) is typing.Literal}
    assert choices == {"cell": CELLS, "threshold_method": THRESHOLD_METHODS, "aggregation": AGGREGATIONS}
    assert params.SETTINGS["autoregressive"].le == MAX_LAGS


def test_sklearn_clone_gives_an_unfitted_detector_with_equal_params():
    from sklearn.base import clone

    detector = Detector(window_size=16, units=(8,), threshold_method="pot", random_state=7)
    detector.threshold_ = 1.0  # as if fitted
    copy = clone(detector)
    assert copy is not detector and copy.get_params() == detector.get_params()
    assert not hasattr(copy, "threshold_")
    assert repr(copy) == "Detector(window_size=16, units=(8,), random_state=7, threshold_method='pot')"
