"""Shared fixtures: small seeded series with planted anomalies, and a real MLflow store."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def make_series(length: int, seed: int, n_features: int = 3, start: str = "2026-01-01") -> pd.DataFrame:
    """A smooth, correlated, noisy multivariate series with a 5-minute time index.

    Returns
    -------
    DataFrame of shape (length, n_features)
        Columns ``f0..f{D-1}``: mixtures of two sinusoids plus small noise.
    """
    # The process (the mixing of latent cycles into features) is the same for every seed, so a
    # test series comes from the process the detector was trained on; the seed moves the phase
    # and draws the noise.
    mixing = np.random.default_rng(12345).uniform(0.5, 1.5, size=(2, n_features)) * np.array([[1], [-1]])
    rng = np.random.default_rng(seed)
    t = np.arange(length) + rng.integers(0, 240)
    latent = np.stack([np.sin(2 * np.pi * t / 48), np.cos(2 * np.pi * t / 30)], axis=1)
    values = latent @ mixing + 0.05 * rng.normal(size=(length, n_features))
    index = pd.date_range(start, periods=length, freq="5min", name="timestamp")
    return pd.DataFrame(values, index=index, columns=[f"f{j}" for j in range(n_features)])


def plant_spike(frame: pd.DataFrame, at: int, feature: int = 1, size: float = 4.0) -> pd.DataFrame:
    """A copy of ``frame`` with one value pushed ``size`` (several signal amplitudes) away."""
    out = frame.copy()
    out.iloc[at, feature] += size
    return out


def use_store(patch: pytest.MonkeyPatch, directory: Path) -> Path:
    """Work in ``directory`` with its sqlite MLflow store, as the CLI run there would."""
    patch.chdir(directory)
    patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{directory / 'mlflow.db'}")
    return directory


@pytest.fixture
def mlflow_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh sqlite MLflow store in a temporary working directory, as the CLI sees it."""
    return use_store(monkeypatch, tmp_path)


def need_binary(name: str, install: str) -> str:
    """The path of a program a test needs. Without it the test is skipped, except under CI,
    where it fails: CI (.ci/run) installs it, so its absence there is a broken set-up."""
    import shutil

    found = shutil.which(name)
    if found is None:
        message = f"{name} is not installed ({install})"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; .ci/run should have installed it")
        pytest.skip(message)
    return found


def write_file(tmp_path: Path, name: str, text: str | bytes, *, encoding: str = "utf-8") -> Path:
    """``text`` (encoded) or ``bytes`` written to ``tmp_path / name``."""
    path = tmp_path / name
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return path


def read_error(path: Path, *contains: str, **kwargs) -> str:
    """read_series must fail with a one-line DataError naming the file and ``contains``."""
    from anomaly.data.reading import read_series
    from anomaly.errors import DataError

    with pytest.raises(DataError) as info:
        read_series(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message, message
    assert path.name in message, message
    for part in contains:
        assert part in message, message
    return message
