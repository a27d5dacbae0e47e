"""``Fleet``: one fitted :class:`~anomaly.detector.Detector` per series, keyed by series id.

Saved as one directory, which is what the fleet's MLflow model ships: ``fleet.json`` (the series
column and, for each series id, the folder of its detector) and one ``Detector.save`` folder per
series. Detectors are loaded when a series is first scored, so a fleet of a thousand series
loads in milliseconds and holds only the detectors it has used.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from anomaly.detector import FLAG_COLUMN, SCORE_COLUMN, THRESHOLD_COLUMN, Z_PREFIX, Detector, read_state, saved_state
from anomaly.errors import DataError

FLEET_FILE = "fleet.json"
_FORMAT_VERSION = 1
_MAX_LISTED = 10


class UnknownSeriesError(DataError):
    """Rows of a series the fleet has no detector for."""


class Fleet:
    """The detectors of a fleet, one per series.

    Parameters
    ----------
    series_col : str
        The column that names each row's series in the tables the fleet scores.
    detectors : mapping of str to Detector or path
        Each series' fitted detector, or the folder :meth:`Detector.save` wrote it to (loaded
        on first use).
    """

    def __init__(self, series_col: str, detectors: Mapping[str, Detector | Path]) -> None:
        if not detectors:
            raise ValueError("a fleet needs at least one series")
        self.series_col = series_col
        self._detectors: dict[str, Detector | Path] = dict(detectors)

    @property
    def series(self) -> list[str]:
        """The series ids, in the order they were trained."""
        return list(self._detectors)

    def __contains__(self, name: object) -> bool:
        return name in self._detectors

    def __len__(self) -> int:
        return len(self._detectors)

    def detector(self, name: str) -> Detector:
        """The detector of series ``name``, loaded on first use."""
        found = self._detectors.get(name)
        if found is None:
            raise self.unknown([name])
        if not isinstance(found, Detector):
            found = self._detectors[name] = Detector.load(found)
        return found

    def detector_dir(self, name: str) -> Path | None:
        """The saved folder of series ``name``'s detector, if it was loaded from one."""
        found = self._detectors.get(name)
        return found if isinstance(found, Path) else None

    def unknown(self, names: list[str], where: str = "") -> UnknownSeriesError:
        """The error for rows of series this fleet has no detector for."""
        listed = ", ".join(map(repr, names[:_MAX_LISTED])) + (
            f" and {len(names) - _MAX_LISTED} more" if len(names) > _MAX_LISTED else ""
        )
        known = ", ".join(map(repr, self.series[:_MAX_LISTED])) + (" ..." if len(self) > _MAX_LISTED else "")
        prefix = f"{where}: " if where else ""
        return UnknownSeriesError(f"{prefix}series {listed} not in the fleet model (it has {len(self)} series: {known})")

    def result_columns(self) -> list[str]:
        """The columns of :meth:`score`'s result: the series column, then the union of every series' columns."""
        z: dict[str, None] = {}
        for name in self.series:
            saved = self._detectors[name]
            features = saved.feature_names_in_ if isinstance(saved, Detector) else saved_state(saved)["feature_names_in"]
            z.update(dict.fromkeys(Z_PREFIX + f for f in features))
        return [self.series_col, SCORE_COLUMN, THRESHOLD_COLUMN, FLAG_COLUMN, *z]

    def score(self, X: pd.DataFrame) -> pd.DataFrame:
        """Score rows of many series, each with its own detector.

        Parameters
        ----------
        X : DataFrame of shape (L, C)
            The series column and each series' features; the rows of one series in time order
            (the series may be interleaved). Each series is scored from a blank state.

        Returns
        -------
        DataFrame of shape (L, 4 + D)
            One row per input row, in input order, with a default index: the series column,
            ``score``, ``threshold``, ``is_anomaly`` and ``z_<feature>`` for the union of the
            fleet's features (NaN for a feature a series does not have).

        Raises
        ------
        DataError
            When the series column is missing or a series is unknown.
        """
        if self.series_col not in X.columns:
            raise DataError(f"expected the series column {self.series_col!r} in the input, but it has {list(X.columns)}")
        keys = X[self.series_col].astype(str).to_numpy()
        names = list(dict.fromkeys(keys))
        unknown = [n for n in names if n not in self]
        if unknown:
            raise self.unknown(unknown)
        columns = self.result_columns()
        out = pd.DataFrame(index=pd.RangeIndex(len(X)), columns=columns[1:], dtype=np.float64)
        out.insert(0, self.series_col, keys)
        for name in names:
            rows = np.flatnonzero(keys == name)
            scored = self.detector(name).score(X.iloc[rows].drop(columns=[self.series_col]))
            out.iloc[rows, [out.columns.get_loc(c) for c in scored.columns]] = scored.to_numpy(dtype=np.float64)
        out[FLAG_COLUMN] = out[FLAG_COLUMN].astype(bool)
        return out

    def save(self, path: str | Path) -> Path:
        """Write the fleet to a directory: ``fleet.json`` and one detector folder per series.

        Returns
        -------
        Path
            The directory.
        """
        directory = Path(path)
        directory.mkdir(parents=True, exist_ok=True)
        folders = {}
        for i, (name, saved) in enumerate(self._detectors.items()):
            folder = f"{i:05d}"
            if isinstance(saved, Detector):
                saved.save(directory / folder)
            elif saved.resolve() != (directory / folder).resolve():
                shutil.copytree(saved, directory / folder, dirs_exist_ok=True)
            folders[name] = folder
        state = {"format_version": _FORMAT_VERSION, "series_col": self.series_col, "series": folders}
        (directory / FLEET_FILE).write_text(json.dumps(state, indent=1))
        return directory

    @classmethod
    def load(cls, path: str | Path) -> Fleet:
        """Read a fleet written by :meth:`save` (its detectors load on first use).

        Raises
        ------
        DataError
            When the directory does not hold a readable fleet.
        """
        directory = Path(path)
        try:
            state = read_state(directory / FLEET_FILE, _FORMAT_VERSION)
            return cls(state["series_col"], {name: directory / folder for name, folder in state["series"].items()})
        except Exception as err:  # noqa: BLE001 - any failure here means "not a usable fleet"
            raise DataError(f"{directory}: not a readable anomaly fleet ({type(err).__name__}: {err})") from err
