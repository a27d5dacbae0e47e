from pathlib import Path

import pytest

from anomaly.errors import SpecError
from anomaly.spec import Spec, default_spec_path, dump_spec, load_spec, spec_from_dict


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


def test_default_demo_spec_loads_and_resolves_data_path_next_to_it():
    spec = load_spec(default_spec_path())
    assert spec.name == "demo"
    assert Path(spec.data.path).is_file()
    assert spec.model.units == (32, 32) and spec.window.window_size == 64 and spec.window.stride == 4
    assert spec.experiment_name == "anomaly-demo" and spec.model_name == "anomaly-demo"


def test_partial_spec_keeps_defaults_and_round_trips_through_yaml(tmp_path):
    spec = load_spec(write(tmp_path, "name: plant\nmodel: {cell: gru, units: 16}\n"))
    assert spec.model.cell == "gru" and spec.model.units == (16,)
    assert spec.window == Spec().window
    again = spec_from_dict(__import__("yaml").safe_load(dump_spec(spec)))
    assert again.flat() == spec.flat()


@pytest.mark.parametrize(
    "text, expected",
    [
        ("window: {window_size: 1}\n", "window.window_size must be an int in [2, 10000]; got 1"),
        ("model: {cell: transformer}\n", "model.cell must be one of simplernn, lstm, gru; got 'transformer'"),
        ("training: {epochs: -3}\n", "training.epochs must be an int in [1, 100000]; got -3"),
        ("training: {epochs: '5'}\n", "training.epochs must be an int in [1, 100000]; got '5'"),
        ("model: {units: [64, 0]}\n", "model.units must be a non-empty list of ints in [1, 4096]; got [64, 0]"),
        ("model: {unitz: [4]}\n", "unknown field model.unitz"),
        ("model: {autoregressive: 65}\n", "model.autoregressive must be an int in [0, 64]; got 65"),
        (
            "model: {autoregressive: 2, residual: true}\n",
            "model.autoregressive must be 0 when model.residual is true (two ways of predicting the level); got 2",
        ),
        ("modle: {}\n", "unknown section 'modle'"),
        ("window: 5\n", "window must be a mapping of fields; got int 5"),
        ("window: {window_size: [\n", "not valid YAML at line"),
    ],
)
def test_bad_spec_names_the_field_and_the_problem(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    message = str(info.value)
    assert expected in message and str(path) in message and "\n" not in message


def test_missing_spec_file(tmp_path):
    with pytest.raises(SpecError, match="pipeline spec not found"):
        load_spec(tmp_path / "nope.yaml")


def test_overrides_replace_single_fields_and_validate_as_options():
    spec = Spec().override(window_size=16, units=(8, 4), threshold_quantile=0.99, epochs=None)
    assert (spec.window.window_size, spec.model.units, spec.threshold.quantile) == (16, (8, 4), 0.99)
    assert spec.training.epochs == Spec().training.epochs  # None keeps the value
    with pytest.raises(SpecError, match=r"^--window-size must be an int in \[2, 10000\]; got 0$"):
        Spec().override(window_size=0)
    with pytest.raises(SpecError, match=r"^--units must be a non-empty list of ints in \[1, 4096\]; got 8,0$"):
        Spec().override(units=(8, 0))  # as the option was written
    with pytest.raises(SpecError, match="--epochs must be"):
        Spec().override(epochs=-1)
    with pytest.raises(SpecError, match=r"^--autoregressive must be 0 when --residual is true"):
        Spec().override(autoregressive=4, residual=True)
    assert Spec().override(autoregressive=4).detector_params()["autoregressive"] == 4
    # A rule broken between an option and a spec file's field names the field as the file has it.
    from_file = spec_from_dict({"model": {"residual": True}}, source="plant.yaml")
    with pytest.raises(SpecError, match=r"^--autoregressive must be 0 when model\.residual \(plant\.yaml\) is true"):
        from_file.override(autoregressive=4)
    # A list, as Python code writes one, is taken as a spec file's list is.
    assert Spec().override(exclude_columns=["id", "clock"], units=[16]).data.exclude_columns == ("id", "clock")


def test_a_spec_knows_which_fields_were_asked_for_even_at_their_defaults(tmp_path):
    assert Spec().given == frozenset()
    spec = load_spec(write(tmp_path, "data: {max_gap: 3, resample: null}\nwindow: {stride: 4}\n"))
    assert spec.data.max_gap == Spec().data.max_gap and spec.given == {"max_gap", "stride"}  # null: the default
    spec = spec.override(time_col="none", epochs=None)
    assert spec.given == {"max_gap", "stride", "time_col"} and spec == Spec().override(time_col="none")


def test_detector_params_cover_every_model_and_training_field():
    params = Spec().detector_params()
    assert params["random_state"] == Spec().training.seed
    assert set(params) >= {"window_size", "stride", "cell", "units", "epochs", "threshold_quantile"}
