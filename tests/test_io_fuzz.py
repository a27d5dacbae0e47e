"""Fuzzing the reader: whatever the text and the column choices, only DataError comes out."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anomaly.errors import DataError
from anomaly.io import read_series

CELLS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-10**6, 10**6).map(str),
    st.sampled_from(["", "nan", "NaN", "inf", "-inf", "true", "0", "1", "1,5", "abc", '"x"', '"', "2026-01-01",
                     "2026-01-01 00:05:00", "2026-13-45", "1e309", " ", "N/A", "é", "\u00a0"]),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=6),
)
NAMES = st.sampled_from(["time", "timestamp", "a", "b", "label", "", "a", "é", "x y"])
SEPARATORS = st.sampled_from([",", ";", "\t", "|"])


@st.composite
def tables(draw):
    sep = draw(SEPARATORS)
    n_cols = draw(st.integers(1, 4))
    header = [draw(NAMES) for _ in range(n_cols)]
    rows = draw(st.lists(st.lists(CELLS, min_size=n_cols - 1, max_size=n_cols + 1), max_size=8))
    lines = [sep.join(header)] + [sep.join(row) for row in rows]
    return "\n".join(lines) + draw(st.sampled_from(["", "\n", "\n\n"])), header


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    table=tables(),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "latin-1"]),
    choice=st.data(),
    max_gap=st.integers(-1, 4),
)
def test_reader_raises_only_data_errors_and_returns_clean_series(tmp_path, table, encoding, choice, max_gap):
    text, header = table
    path = tmp_path / "fuzz.csv"
    try:
        path.write_bytes(text.encode(encoding))
    except UnicodeEncodeError:
        path.write_bytes(text.encode("utf-8"))
    options = choice.draw(st.fixed_dictionaries({
        "time_col": st.none() | st.sampled_from(header + ["missing"]),
        "label_col": st.none() | st.sampled_from(header + ["missing"]),
        "columns": st.none() | st.lists(st.sampled_from(header + ["missing"]), min_size=1, max_size=3),
    }))
    try:
        series = read_series(path, max_gap=max_gap, **options)
    except DataError as err:
        message = str(err)
        assert message and "\n" not in message  # one line, and it says something
        return
    values = series.frame.to_numpy()
    assert values.dtype == np.float64 and values.ndim == 2 and values.shape[1] >= 1
    assert not np.isinf(values).any()
    in_gap = np.zeros(len(values), dtype=bool)
    for first, last in series.gaps:
        in_gap[first : last + 1] = True
    assert np.isfinite(values[~in_gap]).all() and np.isnan(values[in_gap]).any(axis=1).all()  # NaN only in reported gaps
    assert series.frame.index.is_unique and series.frame.index.is_monotonic_increasing
    if series.labels is not None:
        assert len(series.labels) == len(series.frame) and series.labels.dtype == bool
