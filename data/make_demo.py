"""Generate the demo data set: a simulated chiller / pump plant with planted anomalies.

Run ``python data/make_demo.py [--seed 7]`` from anywhere; it writes next to itself:

``demo_train.csv``
    21 days of normal operation (6048 rows at 5-minute sampling): ``timestamp`` then the six
    sensor columns.
``demo_test.csv``
    The following 10 days (2880 rows, timestamps continue), the same sensor columns plus an
    ``anomaly`` column (0/1) that is 1 on exactly the rows changed by a planted event.
``demo_test_events.csv``
    One row per planted event: ``event_id,kind,start,end,features``. ``start`` and ``end``
    are timestamps, both inclusive; ``features`` is the ``;``-joined list of columns
    involved. For ``broken_correlation`` it names the pair, the altered column first.

The same seed gives byte-identical files.

Generative model
----------------
The detector predicts ``x[t+1]`` from ``x[<=t]``. If every sensor were a smooth curve, a
predictor could get away with "the next value is the last value" and would then miss a slow
drift or a level shift after its first step. So the sensors here are noisy views of a few
*smooth, predictable latent factors*, and the only way to predict a sensor well is to estimate
the shared latent state from all sensors together. The latents, over one continuous 31-day
process (train and test are split from it afterwards, so the test part continues seamlessly):

``daily``
    A 24 h cycle with a 12 h harmonic (cooling load peaks mid-afternoon, lowest before dawn);
    its amplitude varies smoothly from day to day (lognormal, ~10 %).
``occupancy``
    The weekday/weekend effect: a smooth 07:00-19:00 bump on Monday to Friday, zero at
    weekends.
``load``
    A slow random load (weather, process demand): unit-variance Gaussian noise passed twice
    through a first-order low-pass (an AR(1) whose output drives a second AR(1)), each with a
    3-hour time constant, scaled to unit standard deviation. The double filter makes it smooth
    from one 5-minute step to the next, so it is predictable from its recent past.
``trend``
    A gentle linear trend from 0 to 1 over the 31 days (fouling and wear), continuing into
    the test part.

Each sensor is a physically plausible mix of the latents (signs chosen so that the plant
behaves like a chilled-water loop), in realistic units:

=============  =====  ===============================================================
column         unit   clean signal
=============  =====  ===============================================================
supply_temp    degC   chilled-water supply; rises a little with demand (chiller lags)
return_temp    degC   supply_temp + a demand-dependent coil delta-T
flow_rate      m3/h   follows cooling demand (daily, occupancy, load)
pump_power     kW     hydraulic power flow_rate * pressure / efficiency, plus slow wear
pressure       bar    loop differential pressure, system curve ~ flow_rate**2 (open zone
                      valves in occupied hours lower it a little), plus filter fouling
vibration      mm/s   follows pump_power, plus bearing wear; the noisiest sensor
=============  =====  ===============================================================

plus independent white Gaussian measurement noise on every sensor, with standard deviation
``sigma`` equal to 15-25 % of that sensor's clean standard deviation over the 31 days
(``NOISE_FRACTION``). Anomaly magnitudes below are in units of that ``sigma``.

Planted anomalies (test part only)
----------------------------------
Fifteen events, three of each kind, each group of five consecutive events holding one of
each kind; none in the first 50 test rows, each at least 100 normal rows after the previous
one, so about 14 % of the test rows are anomalous. Lengths are in rows (1 row = 5 minutes),
see ``EVENT_LENGTHS``:

``spike``
    1-3 consecutive rows of one sensor jump by 8-12 sigma (random sign).
``level_shift``
    One sensor is offset by 5-7 sigma (random sign) for 18-30 rows.
``drift``
    One sensor ramps linearly from ~0 to 8-12 sigma (random sign) over 36-48 rows, then
    snaps back.
``flatline``
    One sensor is stuck at its last reading before the event (no noise) for 24-36 rows.
    Only starts where the clean signal moves away from the stuck value by several sigma
    during the event (the morning ramp or the evening fall) are used.
``broken_correlation``
    For 30-42 rows, of a pair of sensors that normally move together, one follows its
    time-of-day latents (daily and occupancy) shifted by 6-12 hours, with its own load,
    trend and noise kept and a 30-minute cross-fade at both ends. Each sensor stays in its
    usual range, but the pair disagrees. Only starts where the shifted signal departs from
    the true one by several sigma on average are used.

Only ``numpy`` and ``pandas`` are needed.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

START = "2026-01-01 00:00:00"  # a Thursday
STEP_MINUTES = 5
ROWS_PER_HOUR = 60 // STEP_MINUTES
ROWS_PER_DAY = 24 * ROWS_PER_HOUR
TRAIN_DAYS = 21
TEST_DAYS = 10
N_TRAIN = TRAIN_DAYS * ROWS_PER_DAY
N_TEST = TEST_DAYS * ROWS_PER_DAY
N_TOTAL = N_TRAIN + N_TEST

FEATURES = ("supply_temp", "return_temp", "flow_rate", "pump_power", "pressure", "vibration")

#: Measurement-noise standard deviation as a fraction of each sensor's clean standard deviation.
NOISE_FRACTION = {
    "supply_temp": 0.20,
    "return_temp": 0.18,
    "flow_rate": 0.15,
    "pump_power": 0.18,
    "pressure": 0.20,
    "vibration": 0.25,
}

LOAD_TIME_CONSTANT_HOURS = 3.0

KINDS = ("spike", "level_shift", "drift", "flatline", "broken_correlation")
EVENTS_PER_KIND = 3

#: Inclusive (min, max) event length in rows, per kind.
EVENT_LENGTHS = {
    "spike": (1, 3),
    "level_shift": (18, 30),
    "drift": (36, 48),
    "flatline": (24, 36),
    "broken_correlation": (30, 42),
}
#: Inclusive (min, max) magnitude in units of the sensor's noise sigma, per kind.
EVENT_MAGNITUDES = {
    "spike": (8.0, 12.0),
    "level_shift": (5.0, 7.0),
    "drift": (8.0, 12.0),
}
#: Pairs for ``broken_correlation``; one of each pair is altered.
CORRELATED_PAIRS = (("flow_rate", "pump_power"), ("supply_temp", "return_temp"), ("pump_power", "vibration"))
#: Range of the time-of-day shift for ``broken_correlation``, in hours.
BROKEN_SHIFT_HOURS = (6, 12)
#: Rows of cross-fade at each end of a ``broken_correlation`` event.
BROKEN_FADE_ROWS = 6

TEST_LEAD_ROWS = 50  # no event starts in the first rows of the test part
TEST_TAIL_ROWS = 12  # nor ends in the last ones
MIN_GAP_ROWS = 100  # normal rows between consecutive events
FLATLINE_MIN_MEAN_SIGMA = 4.0  # mean |stuck - clean| / sigma over the event, at least
FLATLINE_MIN_MAX_SIGMA = 6.0  # and at the worst row, at least
BROKEN_MIN_MEAN_SIGMA = 4.0  # mean |altered - clean| / sigma over the event, at least
MAX_PLAN_TRIES = 1000


@dataclass(frozen=True)
class Event:
    """One planted anomaly.

    Attributes
    ----------
    kind : str
        One of ``KINDS``.
    start, end : int
        First and last affected row, as indices into the test part (both inclusive).
    features : tuple of str
        Columns involved; for ``broken_correlation`` the altered column comes first.
    magnitude : float
        Signed size in sigma (``spike``, ``level_shift``, ``drift``); 0 otherwise.
    shift_rows : int
        Time-of-day shift in rows (``broken_correlation``); 0 otherwise.
    """

    kind: str
    start: int
    end: int
    features: tuple[str, ...]
    magnitude: float = 0.0
    shift_rows: int = 0


def make_latents(rng: np.random.Generator, n: int = N_TOTAL) -> dict[str, np.ndarray]:
    """Draw the latent factors of the plant.

    Parameters
    ----------
    rng : numpy.random.Generator
    n : int
        Number of 5-minute steps, starting at ``START``.

    Returns
    -------
    latents : dict of str to ndarray of shape (n,)
        ``daily``, ``occupancy``, ``load`` and ``trend``, as described in the module docstring.
    """
    t = np.arange(n)
    hour = (t % ROWS_PER_DAY) / ROWS_PER_HOUR
    day = t // ROWS_PER_DAY

    # Daily cycle: peak mid-afternoon, trough before dawn; the 12 h harmonic steepens the
    # morning ramp and flattens the night. Amplitude varies smoothly from day to day.
    shape = np.cos(2 * np.pi * (hour - 15.0) / 24.0) + 0.3 * np.cos(2 * np.pi * (hour - 13.0) / 12.0)
    n_days = int(day[-1]) + 1
    day_amplitude = np.exp(0.1 * rng.standard_normal(n_days + 1))
    noons = np.arange(n_days + 1) * ROWS_PER_DAY + ROWS_PER_DAY // 2
    amplitude = np.interp(t, noons, day_amplitude)
    daily = amplitude * shape

    # Weekday occupancy: a smooth 07:00-19:00 bump, Monday (0) to Friday (4) only.
    weekday = pd.Timestamp(START).weekday()
    is_workday = ((weekday + day) % 7) < 5
    bump = 1.0 / (1.0 + np.exp(-(hour - 7.0) / 0.6)) / (1.0 + np.exp(-(19.0 - hour) / 0.8))
    occupancy = is_workday * bump

    # Slow load: white noise through two first-order low-passes, then unit variance.
    phi = np.exp(-1.0 / (LOAD_TIME_CONSTANT_HOURS * ROWS_PER_HOUR))
    burn_in = 10 * int(LOAD_TIME_CONSTANT_HOURS * ROWS_PER_HOUR)
    shocks = rng.standard_normal(n + burn_in)
    first = np.empty_like(shocks)
    second = np.empty_like(shocks)
    first[0] = second[0] = 0.0
    for i in range(1, len(shocks)):
        first[i] = phi * first[i - 1] + shocks[i]
        second[i] = phi * second[i - 1] + (1.0 - phi) * first[i]
    load = second[burn_in:]
    load = (load - load.mean()) / load.std()

    trend = t / (n - 1)
    return {"daily": daily, "occupancy": occupancy, "load": load, "trend": trend}


def clean_signals(latents: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Map the latent factors to noise-free sensor values.

    Parameters
    ----------
    latents : dict of str to ndarray
        ``daily``, ``occupancy``, ``load`` and ``trend``, all of the same shape.

    Returns
    -------
    signals : dict of str to ndarray
        One array per name in ``FEATURES``, in physical units.
    """
    d, o, load, trend = latents["daily"], latents["occupancy"], latents["load"], latents["trend"]
    flow = 95.0 + 26.0 * d + 18.0 * o + 8.0 * load + 3.0 * trend  # m3/h
    # Under high load the chiller lags behind (supply rises a little) and the coil delta-T
    # widens; both follow the same demand as the flow, in their own proportions.
    supply = 6.6 + 0.40 * d + 0.20 * o + 0.12 * load + 0.08 * trend  # degC
    delta_t = 4.2 + 1.4 * d + 0.5 * o + 0.30 * load + 0.05 * trend  # K
    # Loop differential pressure follows the system curve k * Q**2; open zone valves
    # (occupied hours) lower k, filter fouling raises it.
    ratio = flow / 110.0
    pressure = 1.1 + 1.3 * ratio**2 * (1.0 - 0.12 * o) + 0.08 * trend  # bar
    # Shaft power = hydraulic power Q * dp / efficiency (m3/s * kPa = kW), plus slow wear.
    power = 0.5 + (flow / 3600.0) * (pressure * 100.0) / 0.70 + 0.3 * trend  # kW
    vibration = 1.4 + 0.12 * (power - 9.0) + 0.08 * trend  # mm/s
    return {
        "supply_temp": supply,
        "return_temp": supply + delta_t,
        "flow_rate": flow,
        "pump_power": power,
        "pressure": pressure,
        "vibration": vibration,
    }


def _shifted_latents(latents: dict[str, np.ndarray], shift_rows: int) -> dict[str, np.ndarray]:
    """Latents with the time-of-day factors delayed by ``shift_rows`` steps."""
    shifted = dict(latents)
    for name in ("daily", "occupancy"):
        shifted[name] = np.roll(latents[name], shift_rows)
    return shifted


def _fade(length: int) -> np.ndarray:
    """Cross-fade weights in (0, 1] for a ``broken_correlation`` event of ``length`` rows."""
    i = np.arange(length)
    ramp = BROKEN_FADE_ROWS + 1
    return np.minimum(1.0, np.minimum((i + 1) / ramp, (length - i) / ramp))


def _valid_starts(
    kind: str,
    length: int,
    feature: str,
    observed: np.ndarray,
    clean: np.ndarray,
    altered: np.ndarray | None,
    sigma: float,
    lo: int,
    hi: int,
) -> np.ndarray:
    """Test-part start rows in ``[lo, hi]`` where an event of this kind is clearly visible."""
    starts = np.arange(lo, hi + 1)
    if kind not in ("flatline", "broken_correlation") or len(starts) == 0:
        return starts
    rows = N_TRAIN + starts[:, None] + np.arange(length)[None, :]
    if kind == "flatline":
        stuck = observed[N_TRAIN + starts - 1][:, None]
        gap = np.abs(stuck - clean[rows]) / sigma
        ok = (gap.mean(axis=1) >= FLATLINE_MIN_MEAN_SIGMA) & (gap.max(axis=1) >= FLATLINE_MIN_MAX_SIGMA)
    else:
        assert altered is not None
        gap = np.abs(altered[rows] - clean[rows]) * _fade(length)[None, :] / sigma
        ok = gap.mean(axis=1) >= BROKEN_MIN_MEAN_SIGMA
    return starts[ok]


def plan_events(
    rng: np.random.Generator,
    observed: dict[str, np.ndarray],
    clean: dict[str, np.ndarray],
    latents: dict[str, np.ndarray],
    sigma: dict[str, float],
) -> list[Event]:
    """Choose kinds, places, sensors and sizes of the planted anomalies.

    Parameters
    ----------
    rng : numpy.random.Generator
    observed : dict of str to ndarray of shape (N_TOTAL,)
        Noisy sensor values of the whole 31 days.
    clean : dict of str to ndarray of shape (N_TOTAL,)
        Noise-free sensor values.
    latents : dict of str to ndarray of shape (N_TOTAL,)
    sigma : dict of str to float
        Noise standard deviation of each sensor.

    Returns
    -------
    events : list of Event
        ``EVENTS_PER_KIND`` events of each kind in time order, non-overlapping, with at least
        ``MIN_GAP_ROWS`` normal rows between them, all inside the test part.

    Raises
    ------
    RuntimeError
        If no valid plan is found in ``MAX_PLAN_TRIES`` attempts.
    """
    altered_cache: dict[tuple[str, int], np.ndarray] = {}

    def altered_signal(feature: str, shift_rows: int) -> np.ndarray:
        key = (feature, shift_rows)
        if key not in altered_cache:
            altered_cache[key] = clean_signals(_shifted_latents(latents, shift_rows))[feature]
        return altered_cache[key]

    for _ in range(MAX_PLAN_TRIES):
        # Each group of five consecutive events holds one event of each kind.
        order = [kind for _ in range(EVENTS_PER_KIND) for kind in rng.permutation(KINDS)]
        # Distinct sensors (or pairs) for the events of one kind.
        picks: dict[str, list[tuple[str, ...]]] = {}
        for kind in KINDS:
            if kind == "broken_correlation":
                pairs = [CORRELATED_PAIRS[i] for i in rng.permutation(len(CORRELATED_PAIRS))]
                picks[kind] = [pair if rng.random() < 0.5 else pair[::-1] for pair in pairs]
            else:
                picks[kind] = [(str(f),) for f in rng.choice(FEATURES, EVENTS_PER_KIND, replace=False)]
        lengths = [int(rng.integers(EVENT_LENGTHS[k][0], EVENT_LENGTHS[k][1] + 1)) for k in order]

        events: list[Event] = []
        used = dict.fromkeys(KINDS, 0)
        cursor = TEST_LEAD_ROWS
        for i, kind in enumerate(order):
            features = picks[kind][used[kind]]
            used[kind] += 1
            length = lengths[i]
            remaining = len(order) - i - 1
            latest = N_TEST - TEST_TAIL_ROWS - length - sum(lengths[i + 1 :]) - MIN_GAP_ROWS * remaining
            if latest < cursor:
                break
            # Spread the slack evenly: look in a window twice the fair share.
            window_end = min(latest, cursor + 2 * (latest - cursor) // (remaining + 1))
            magnitude, shift_rows, altered = 0.0, 0, None
            if kind in EVENT_MAGNITUDES:
                low, high = EVENT_MAGNITUDES[kind]
                magnitude = float(rng.uniform(low, high)) * (1.0 if rng.random() < 0.5 else -1.0)
            if kind == "broken_correlation":
                low_h, high_h = BROKEN_SHIFT_HOURS
                shift_rows = int(rng.integers(low_h * ROWS_PER_HOUR, high_h * ROWS_PER_HOUR + 1))
                altered = altered_signal(features[0], shift_rows)
            f = features[0]
            args = (kind, length, f, observed[f], clean[f], altered, sigma[f])
            starts = _valid_starts(*args, cursor, window_end)
            if len(starts) == 0:
                # Nothing suitable in the fair window: take the earliest suitable place later on.
                starts = _valid_starts(*args, cursor, latest)[:ROWS_PER_HOUR]
            if len(starts) == 0:
                break
            start = int(rng.choice(starts))
            events.append(Event(kind, start, start + length - 1, features, magnitude, shift_rows))
            cursor = start + length + MIN_GAP_ROWS
        if len(events) == len(order):
            return events
    raise RuntimeError(f"no valid anomaly plan found in {MAX_PLAN_TRIES} tries")


def apply_events(
    test: pd.DataFrame,
    events: list[Event],
    clean: dict[str, np.ndarray],
    noise: dict[str, np.ndarray],
    latents: dict[str, np.ndarray],
    sigma: dict[str, float],
) -> None:
    """Plant the events into the test part, in place, and fill its ``anomaly`` column.

    Parameters
    ----------
    test : DataFrame
        The test part: the sensor columns, indexed 0..N_TEST-1, with an integer ``anomaly``
        column of zeros.
    events : list of Event
    clean, noise : dict of str to ndarray of shape (N_TOTAL,)
        Noise-free values and the noise that was added to them.
    latents : dict of str to ndarray of shape (N_TOTAL,)
    sigma : dict of str to float
    """
    for ev in events:
        rows = np.arange(ev.start, ev.end + 1)
        length = len(rows)
        f = ev.features[0]
        values = test[f].to_numpy(copy=True)
        if ev.kind in ("spike", "level_shift"):
            values[rows] += ev.magnitude * sigma[f]
        elif ev.kind == "drift":
            values[rows] += ev.magnitude * sigma[f] * np.arange(1, length + 1) / length
        elif ev.kind == "flatline":
            values[rows] = values[ev.start - 1]
        elif ev.kind == "broken_correlation":
            altered = clean_signals(_shifted_latents(latents, ev.shift_rows))[f]
            full = N_TRAIN + rows
            w = _fade(length)
            values[rows] = (1.0 - w) * clean[f][full] + w * altered[full] + noise[f][full]
        else:  # pragma: no cover - KINDS is closed
            raise ValueError(f"unknown event kind {ev.kind!r}")
        test[f] = values
        test.loc[rows, "anomaly"] = 1


def generate(seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Build the demo train set, test set and event table.

    Parameters
    ----------
    seed : int, default 7

    Returns
    -------
    train : DataFrame
        ``timestamp`` (str) and the ``FEATURES`` columns, ``N_TRAIN`` rows.
    test : DataFrame
        ``timestamp``, the ``FEATURES`` columns and ``anomaly`` (int), ``N_TEST`` rows.
    events : DataFrame
        ``event_id, kind, start, end, features``, one row per event, in time order.
    """
    rng = np.random.default_rng(seed)
    latents = make_latents(rng)
    clean = clean_signals(latents)
    sigma = {f: NOISE_FRACTION[f] * float(clean[f].std()) for f in FEATURES}
    noise = {f: sigma[f] * rng.standard_normal(N_TOTAL) for f in FEATURES}
    observed = {f: clean[f] + noise[f] for f in FEATURES}

    stamps = pd.date_range(START, periods=N_TOTAL, freq=f"{STEP_MINUTES}min").strftime("%Y-%m-%d %H:%M:%S")
    frame = pd.DataFrame({"timestamp": stamps, **observed})
    train = frame.iloc[:N_TRAIN].reset_index(drop=True)
    test = frame.iloc[N_TRAIN:].reset_index(drop=True)
    test["anomaly"] = 0

    events = plan_events(rng, observed, clean, latents, sigma)
    apply_events(test, events, clean, noise, latents, sigma)

    table = pd.DataFrame(
        {
            "event_id": np.arange(1, len(events) + 1),
            "kind": [ev.kind for ev in events],
            "start": [test.at[ev.start, "timestamp"] for ev in events],
            "end": [test.at[ev.end, "timestamp"] for ev in events],
            "features": [";".join(ev.features) for ev in events],
        }
    )
    return train, test, table


def write(train: pd.DataFrame, test: pd.DataFrame, events: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Write the three CSV files.

    Parameters
    ----------
    train, test, events : DataFrame
        As returned by :func:`generate`.
    out_dir : Path
        Directory to write into (created if missing).

    Returns
    -------
    paths : list of Path
        The files written.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "demo_train.csv", out_dir / "demo_test.csv", out_dir / "demo_test_events.csv"]
    for frame, path in zip((train, test, events), paths):
        frame.to_csv(path, index=False, float_format="%.4f", lineterminator="\n")
    return paths


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    status : int
        0 on success.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seed", type=int, default=7, help="random seed (default: 7)")
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=Path(__file__).resolve().parent,
        help="where to write the files (default: the directory of this script)",
    )
    args = parser.parse_args(argv)
    train, test, events = generate(args.seed)
    for path in write(train, test, events, args.out_dir):
        print(f"wrote {path} ({path.stat().st_size:,} bytes)")
    n_anomalous = int(test["anomaly"].sum())
    print(f"{len(train)} train rows, {len(test)} test rows, {len(events)} events, "
          f"{n_anomalous} anomalous test rows ({n_anomalous / len(test):.1%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
