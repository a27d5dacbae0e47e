import numpy as np
import pytest

from anomaly.detection.events import Event, EventGrouper, EventMask, event_flags, event_ranges, group_events

# Hand-checked series: flags at 1, 2, 4, 9 and 10 (positions 0..11).
FLAGS = np.array([0, 1, 1, 0, 1, 0, 0, 0, 0, 1, 1, 0], dtype=bool)
SCORES = np.array([0.0, 3.0, 5.0, 1.0, 5.0, 0.0, 0.0, 0.0, 0.0, 4.0, 2.0, 0.0])
Z = np.array(
    [
        [0, 0],
        [1, 1],
        [2, 0],
        [9, 9],
        [0, 2],
        [9, 9],
        [9, 9],
        [9, 9],
        [9, 9],
        [3, 0],
        [0, 1],
        [9, 9],
    ],
    dtype=float,
)


def _key(e: Event) -> tuple:
    return (e.start, e.end, e.peak_score, e.peak_position, e.n_flagged)


def test_events_without_gap_by_hand():
    events = group_events(FLAGS, SCORES, Z)
    assert [(e.start, e.end) for e in events] == [(1, 2), (4, 4), (9, 10)]
    first = events[0]
    assert first.length == 2 and first.n_flagged == 2
    assert (first.peak_score, first.peak_position) == (5.0, 2)
    # z^2 over steps 1, 2: feature 0: 1 + 4 = 5, feature 1: 1 + 0 = 1 -> shares 5/6, 1/6
    np.testing.assert_allclose(first.feature_shares, [5 / 6, 1 / 6])
    # Step 9 and 10: feature 0: 9, feature 1: 1 -> 0.9, 0.1
    np.testing.assert_allclose(events[2].feature_shares, [0.9, 0.1])
    assert events[2].top_features(1) == [(0, pytest.approx(0.9))]


def test_gap_merges_runs_and_uses_only_flagged_steps_by_hand():
    events = group_events(FLAGS, SCORES, Z, gap=1)
    # One unflagged step (3) between runs [1, 2] and [4]; four (5..8) before [9, 10].
    assert [(e.start, e.end) for e in events] == [(1, 4), (9, 10)]
    merged = events[0]
    assert merged.length == 4 and merged.n_flagged == 3
    # Peak 5 is reached at 2 and 4: the first one counts.
    assert (merged.peak_score, merged.peak_position) == (5.0, 2)
    # Step 3 (unflagged, z = 9, 9) is left out: feature 0: 1 + 4 + 0 = 5, feature 1: 1 + 0 + 4 = 5
    np.testing.assert_allclose(merged.feature_shares, [0.5, 0.5])
    assert [(e.start, e.end) for e in group_events(FLAGS, SCORES, gap=4)] == [(1, 10)]


def test_min_length_drops_short_events_by_hand():
    # Lengths 2, 1, 2 without gap; 4 and 2 with gap 1.
    assert [(e.start, e.end) for e in group_events(FLAGS, SCORES, min_length=2)] == [(1, 2), (9, 10)]
    assert [(e.start, e.end) for e in group_events(FLAGS, SCORES, gap=1, min_length=3)] == [(1, 4)]
    assert event_ranges(FLAGS, gap=1, min_length=3) == [(1, 4)]


def test_shares_sum_to_one_and_to_zero_without_error():
    events = group_events(FLAGS, SCORES, Z)
    for e in events:
        assert e.feature_shares.sum() == pytest.approx(1.0)
    silent = group_events(np.array([True]), np.array([1.0]), np.zeros((1, 3)))[0]
    assert silent.feature_shares.tolist() == [0.0, 0.0, 0.0]
    assert group_events(FLAGS, SCORES)[0].feature_shares.shape == (0,)


def test_no_flags_no_events():
    assert group_events(np.zeros(5, bool), np.zeros(5)) == []
    assert group_events(np.zeros(0, bool), np.zeros(0)) == []


def test_streaming_emits_an_event_once_more_than_gap_steps_follow():
    grouper = EventGrouper(gap=1)
    assert grouper.feed(FLAGS[:5], SCORES[:5], Z[:5]) == []  # [1, 4] may still grow
    assert grouper.feed(FLAGS[5:6], SCORES[5:6], Z[5:6]) == []  # one unflagged step: still open
    closed = grouper.feed(FLAGS[6:7], SCORES[6:7], Z[6:7])  # two: closed
    assert [(e.start, e.end) for e in closed] == [(1, 4)]
    assert grouper.feed(FLAGS[7:], SCORES[7:], Z[7:]) == []  # [9, 10] then one step: open
    assert [(e.start, e.end) for e in grouper.finish()] == [(9, 10)]


@pytest.mark.parametrize("gap,min_length", [(0, 1), (1, 1), (2, 3), (5, 2)])
def test_chunked_equals_whole_for_any_chunk_size(gap, min_length):
    rng = np.random.default_rng(0)
    n = 500
    # Bursty flags, so there are long events, short ones and gaps of every size.
    flags = np.repeat(rng.random(n // 5) < 0.3, 5) & (rng.random(n) < 0.8)
    scores = rng.gamma(2.0, size=n)
    z = rng.normal(size=(n, 4))
    whole = group_events(flags, scores, z, gap=gap, min_length=min_length)
    assert len(whole) > 5
    for chunk in (1, 2, 7, n):
        grouper = EventGrouper(gap=gap, min_length=min_length)
        events = []
        for i in range(0, n, chunk):
            events += grouper.feed(flags[i : i + chunk], scores[i : i + chunk], z[i : i + chunk], start=i)
        events += grouper.finish()
        assert [_key(e) for e in events] == [_key(e) for e in whole]
        for a, b in zip(events, whole):
            np.testing.assert_allclose(a.feature_shares, b.feature_shares, rtol=1e-12)


def test_positions_are_absolute():
    events = group_events(FLAGS, SCORES, start=1_000)
    assert [(e.start, e.end, e.peak_position) for e in events] == [
        (1001, 1002, 1002),
        (1004, 1004, 1004),
        (1009, 1010, 1009),
    ]


def test_open_event_holds_only_running_sums():
    # A 100 000-step event: the grouper keeps O(D) numbers for it, not its rows.
    grouper = EventGrouper()
    for _i in range(0, 100_000, 1_000):
        assert grouper.feed(np.ones(1_000, bool), np.ones(1_000), np.ones((1_000, 3))) == []
    assert grouper._open.energy.shape == (3,)
    (event,) = grouper.finish()
    assert (event.start, event.end, event.n_flagged) == (0, 99_999, 100_000)
    np.testing.assert_allclose(event.feature_shares, [1 / 3] * 3)


def test_to_dict():
    d = group_events(FLAGS, SCORES, Z)[0].to_dict(k=1)
    assert d == {
        "start": 1,
        "end": 2,
        "length": 2,
        "peak_score": 5.0,
        "peak_position": 2,
        "n_flagged": 2,
        "top_features": [{"feature": 0, "share": pytest.approx(5 / 6)}],
    }


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="gap"):
        EventGrouper(gap=-1)
    with pytest.raises(ValueError, match="min_length"):
        EventGrouper(min_length=0)
    with pytest.raises(ValueError, match="same length"):
        group_events(np.ones(3, bool), np.ones(4))
    with pytest.raises(ValueError, match="shape"):
        group_events(np.ones(3, bool), np.ones(3), np.ones((4, 2)))
    grouper = EventGrouper()
    grouper.feed(np.ones(3, bool), np.ones(3))
    with pytest.raises(ValueError, match="contiguous"):
        grouper.feed(np.ones(3, bool), np.ones(3), start=10)


# ------------------------------------------------------------------ EventMask / event_flags


def _flags(text: str) -> np.ndarray:
    return np.array([c == "1" for c in text], dtype=bool)


@pytest.mark.parametrize(
    "raw, gap, min_length, expected",
    [
        # gap 0, min 1: the raw flags unchanged
        ("0110010", 0, 1, "0110010"),
        # gap 2 bridges 2 quiet steps, not 3
        ("1001000100", 2, 1, "1111000100"),
        # min_length 3 counts first to last flag, bridged steps included: 101 (3) stays, 11 (2) goes
        ("1010000110", 1, 3, "1110000000"),
        # an event open at the end of the series is closed by it
        ("000101", 1, 1, "000111"),
        ("000101", 1, 4, "000000"),
        ("", 3, 2, ""),
    ],
)
def test_event_flags_hand_checked(raw, gap, min_length, expected):
    assert event_flags(_flags(raw), gap=gap, min_length=min_length).tolist() == _flags(expected).tolist()


def test_event_flags_cover_exactly_the_grouped_events():
    rng = np.random.default_rng(3)
    raw = rng.random(3000) < 0.08
    for gap, min_length in [(0, 1), (3, 1), (5, 10), (40, 2)]:
        expected = np.zeros(len(raw), dtype=bool)
        for start, end in event_ranges(raw, gap=gap, min_length=min_length):
            expected[start : end + 1] = True
        np.testing.assert_array_equal(event_flags(raw, gap=gap, min_length=min_length), expected)


@pytest.mark.parametrize("chunk", [1, 2, 7, 64, 3000])
def test_event_mask_is_the_same_for_any_chunking_and_holds_back_little(chunk):
    rng = np.random.default_rng(chunk)
    raw = rng.random(3000) < 0.1
    gap, min_length = 4, 6
    mask = EventMask(gap=gap, min_length=min_length)
    parts = []
    for lo in range(0, len(raw), chunk):
        parts.append(mask.feed(raw[lo : lo + chunk]))
        assert mask.decided_ == sum(len(p) for p in parts)
        # Held back: the quiet steps after the last flag (<= gap), or a short event's steps and
        # the quiet ones after it (< min_length + gap).
        assert mask.position_ - mask.decided_ <= gap + min_length
    parts.append(mask.finish())
    np.testing.assert_array_equal(np.concatenate(parts), event_flags(raw, gap=gap, min_length=min_length))


def test_event_mask_releases_quiet_steps_once_the_gap_has_passed():
    mask = EventMask(gap=2)
    assert mask.feed(_flags("1")).tolist() == [True]
    assert mask.feed(_flags("0")).tolist() == []  # may still join the event
    assert mask.feed(_flags("0")).tolist() == []
    assert mask.feed(_flags("0")).tolist() == [False, False, False]  # 3 quiet steps > gap
    assert mask.finish().tolist() == []


def test_event_mask_confirms_an_event_when_it_reaches_min_length():
    mask = EventMask(gap=0, min_length=3)
    assert mask.feed(_flags("11")).tolist() == []  # too short so far
    assert mask.feed(_flags("1")).tolist() == [True, True, True]  # now 3 long: final
    assert mask.feed(_flags("1")).tolist() == [True]
    assert mask.feed(_flags("0")).tolist() == [False]
    assert mask.feed(_flags("11")).tolist() == []
    assert mask.finish().tolist() == [False, False]  # the series ended: too short


def test_the_events_table_leaves_out_shares_that_read_zero_and_its_names_parse_back():
    import pandas as pd

    from anomaly.results import ResultCollector, parse_top_features

    names = ["Unnamed: 0", "a;b", "quiet"]
    index = pd.date_range("2026-01-01", periods=4, freq="min")
    # One event over rows 1-2: squared errors 90, 9.96 and 0.04 of 100 in all.
    z = np.array([[0.0, 0.0, 0.0], [9.0, 2.0, 0.2], [3.0, 2.49, 0.0], [0.0, 0.0, 0.0]])
    results = pd.DataFrame(
        {"score": [0.0, 5.0, 4.0, 0.0], "threshold": 1.0, "is_anomaly": [False, True, True, False]}, index=index
    )
    results = pd.concat([results, pd.DataFrame(z, index=index, columns=[f"z_{n}" for n in names])], axis=1)
    collector = ResultCollector(names)
    collector.add(pd.DataFrame(np.zeros((4, 3)), index=index, columns=names), results, None)
    collector.finish()
    [text] = collector.event_table()["top_features"]
    assert text == "Unnamed: 0:0.90;a;b:0.10"  # quiet's 0.0004 would read 0.00
    assert parse_top_features(text) == [("Unnamed: 0", 0.9), ("a;b", 0.1)]
    # The JSON keeps four decimals, so the quiet feature's share is there.
    [record] = collector.event_records()
    assert [entry["feature"] for entry in record["top_features"]] == names


@pytest.mark.parametrize("chunk", [1, 3, 7, 64, 3000])
def test_no_event_spans_an_unscored_row_however_wide_the_gap_rule(chunk):
    # A long data gap is unscored (NaN): with event_gap wider than it, flags on both sides used to
    # merge into one event whose mask flagged the unscored rows too.
    rng = np.random.default_rng(chunk)
    scores = np.where(rng.random(3000) < 0.1, 5.0, 0.0)
    for lo, hi in ((400, 410), (1200, 1201), (2000, 2040)):
        scores[lo:hi] = np.nan
    scores[395:400] = scores[410:415] = 5.0  # flags right up to the gap and right after it
    flags, unscored = scores > 1.0, np.isnan(scores)
    gap, min_length = 30, 2
    mask, grouper = EventMask(gap=gap, min_length=min_length), EventGrouper(gap=gap, min_length=min_length)
    final, events = [], []
    for lo in range(0, len(scores), chunk):
        final.append(mask.feed(flags[lo : lo + chunk], unscored[lo : lo + chunk]))
        events += grouper.feed(flags[lo : lo + chunk], scores[lo : lo + chunk])
    final.append(mask.finish())
    events += grouper.finish()
    final = np.concatenate(final)
    assert not (final & unscored).any()
    np.testing.assert_array_equal(final, event_flags(flags, gap=gap, min_length=min_length, unscored=unscored))
    holes = np.flatnonzero(unscored)
    assert all(not ((holes > e.start) & (holes < e.end)).any() for e in events)
    # The events are the mask's stretches, one for one.
    expected = np.zeros(len(scores), dtype=bool)
    for e in events:
        expected[e.start : e.end + 1] = True
    np.testing.assert_array_equal(final, expected)
    assert any(e.end == 399 for e in events) and any(e.start == 410 for e in events)
