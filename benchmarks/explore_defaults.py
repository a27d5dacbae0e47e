"""Exploration behind the product's default scoring settings (issue 12) — not a benchmark.

A network is trained once per dev series and its raw next-step residuals are cached; scoring
choices (normalisation, aggregation, smoothing, threshold rule) are then compared on the cached
residuals in seconds:

    python benchmarks/explore_defaults.py cache smd --config lstm2x32 [--set units=32,32 ...]
    python benchmarks/explore_defaults.py sweep smd,skab,nab --config lstm2x32

Caches: ``results/benchmark/defaults-cache/<dataset>/<config>/<series>.npz`` (git-ignored).
Every sweep is appended to ``results/benchmark/explore_defaults_log.jsonl`` and summarised in
``benchmarks/DETECTION.md``. Only the dev data sets (SMD machines 1-2 … 1-8, SKAB, NAB) are
used. ``best_f1`` (each series at its own best threshold, chosen with its labels) is a
diagnostic of how good the scores are, never a result.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from detection import DEFAULT_OUTPUT, LOADERS, Case, datasets_root  # noqa: E402
from seasonal_residual import autocorrelation, local_peaks  # noqa: E402

CACHE = DEFAULT_OUTPUT / "defaults-cache"


def load_demo(root: Path, quick: bool = False) -> list[Case]:
    """The bundled demo: trained on data/demo_train.csv, scored on data/demo_test.csv."""
    import pandas as pd

    data = Path(__file__).resolve().parent.parent / "data"
    train = pd.read_csv(data / "demo_train.csv", index_col="timestamp", parse_dates=True)
    test = pd.read_csv(data / "demo_test.csv", index_col="timestamp", parse_dates=True)
    labels = np.concatenate([np.zeros(len(train), dtype=bool), test.pop("anomaly").to_numpy() > 0])
    return [Case("demo", pd.concat([train, test[train.columns]]).astype(np.float64), labels, len(train), separate_test=True)]


LOADERS = {**LOADERS, "demo": load_demo}
# One JSON object per setting and line: rows of sweeps over other data sets or with keys added
# later keep their own fields (the CSV log before it, explore_defaults_log.csv, kept the header of
# its first write, so later rows with other columns no longer lined up with it).
LOG = DEFAULT_OUTPUT / "explore_defaults_log.jsonl"


def _parse_value(text: str) -> Any:
    if "," in text:
        return tuple(_parse_value(t) for t in text.split(",") if t)
    if text in ("true", "false"):
        return text == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def calendar_columns(index: pd.Index, train_end: int) -> pd.DataFrame:
    """Time-of-day and day-of-week covariates (L, 0, 2 or 4): a lead for issue 12, not in the product.

    ``sin``/``cos`` of the time of day where the training part spans at least two days at a
    step of at most 6 hours, and of the time of week where it spans at least two weeks at a step
    of at most a day; none for an index without times. The network then sees each row's place in
    a day and a week beside its values (cached with ``--calendar``; the sweep scores the data's
    own features only).
    """
    columns = {}
    if isinstance(index, pd.DatetimeIndex) and train_end > 1:
        span = index[train_end - 1] - index[0]
        step = pd.Series(index[:train_end]).diff().median()
        seconds = (index - index[0].normalize()).total_seconds().to_numpy()
        for name, period, least, finest in (("day", 86_400, "2D", "6h"), ("week", 7 * 86_400, "14D", "1D")):
            if span >= pd.Timedelta(least) and step <= pd.Timedelta(finest):
                phase = 2 * np.pi * (seconds % period) / period
                columns |= {f"_sin_{name}": np.sin(phase), f"_cos_{name}": np.cos(phase)}
    return pd.DataFrame(columns, index=index)


def daily_autocorrelation(frame: pd.DataFrame, train_end: int) -> float:
    """The largest autocorrelation of a feature of the training part at the lag of one day (its
    median step), or NaN where the index holds no times or the lag exceeds half the part: the
    product's gate (:func:`anomaly.detection.calendar.lag_autocorrelation`)."""
    from anomaly.detection.calendar import lag_autocorrelation

    index = frame.index[:train_end]
    if not isinstance(index, pd.DatetimeIndex) or train_end < 4:
        return float("nan")
    lag = int(round(pd.Timedelta("1D") / pd.Series(index).diff().median()))
    return lag_autocorrelation(frame.iloc[:train_end].to_numpy(np.float64), lag)


def cache(dataset: str, config: str, overrides: dict[str, Any], root: Path, quick: bool, calendar: bool = False) -> None:
    """Fit a Detector on every series' training part; save its residuals over the whole series
    (``calendar``: with :func:`calendar_columns` beside the features; only the features'
    residuals are saved)."""
    from anomaly.detector import Detector, row_times
    from anomaly.errors import DataError

    folder = CACHE / dataset / config
    folder.mkdir(parents=True, exist_ok=True)
    # --calendar: the emulation's own time columns, as features (before the product had them)
    params = {**Detector().get_params(), **({"calendar": False} if calendar else {}), **overrides}
    params["units"] = tuple(params["units"]) if isinstance(params["units"], tuple) else (params["units"],)
    (folder / "params.json").write_text(json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}))
    for i, case in enumerate(LOADERS[dataset](root, quick), 1):
        target = folder / f"{case.name.replace('/', '__')}.npz"
        if target.exists():
            continue
        started = time.perf_counter()
        features = case.frame.shape[1]
        frame = case.frame
        if calendar:
            frame = pd.concat([frame, calendar_columns(frame.index, case.train_end)], axis=1)
        try:
            detector = Detector(**params).fit(frame.iloc[: case.train_end])
        except DataError as err:  # e.g. a window longer than a short training part allows
            print(f"[{dataset} {config} {i}] {case.name}: skipped ({err})", flush=True)
            continue
        fitted = time.perf_counter() - started
        scaled = detector._network_inputs(frame.to_numpy(dtype=np.float64), row_times(frame))
        if case.separate_test:
            residuals = np.concatenate(
                [detector._residuals(scaled[: case.train_end]), detector._residuals(scaled[case.train_end :])]
            )
        else:
            residuals = detector._residuals(scaled)
        np.savez_compressed(
            target,
            residuals=residuals[:, :features].astype(np.float32),
            covariates=frame.shape[1] - features,
            labels=case.labels,
            train_end=case.train_end,
            calibration_start=case.train_end - len(detector.calibration_scores_),
            fit_seconds=fitted,
            seconds=time.perf_counter() - started,
            epochs=len(detector.history_["loss"]),
        )
        print(
            f"[{dataset} {config} {i}] {case.name}: {len(case.labels)} rows, fit {fitted:.1f} s, "
            f"{len(detector.history_['loss'])} epochs",
            flush=True,
        )


# --------------------------------------------------------------------------- sweep
def _load(dataset: str, config: str) -> list[dict[str, Any]]:
    out = []
    for path in sorted((CACHE / dataset / config).glob("*.npz")):
        data = np.load(path)
        out.append({"name": path.stem, **{k: data[k] for k in data.files}})
    return out


def normalise(R: np.ndarray, cal: slice, method: str, cap: float) -> np.ndarray:
    """Per-feature z of residuals R (L, D) from the calibration rows ``cal``."""
    C = R[cal]
    C = C[~np.isnan(C).any(axis=1)]
    if method.endswith("T"):  # the tail statistics from every training-part residual (in-sample rows too)
        method = method[:-1]
        C = R[: cal.stop]
        C = C[~np.isnan(C).any(axis=1)]
    center = np.median(C, axis=0)
    dev = np.abs(C - center)
    mad = 1.4826 * np.median(dev, axis=0)
    if method == "mad":
        scale = np.maximum(mad, 1e-2)
    elif method.startswith("mads"):  # mads0.5: MAD, floored at c times the standard deviation
        c = float(method[4:])
        scale = np.maximum(np.maximum(mad, c * np.std(C - center, axis=0)), 1e-2)
    elif method.startswith("tail"):  # tail0.9: exponential tail above each feature's q-quantile of |dev|
        q = float(method[4:])
        u = np.quantile(dev, q, axis=0)
        excess = np.where(dev > u, dev - u, np.nan)
        beta = np.maximum(np.nanmean(excess, axis=0), np.maximum(1e-2, 0.1 * mad))
        beta = np.where(np.isnan(beta), np.maximum(1e-2, mad), beta)
        z = np.maximum(0.0, (np.abs(R - center) - u) / beta) * np.sign(R - center)
        return np.clip(z, -cap, cap) if cap > 0 else z
    elif method.startswith("hyb"):  # hyb5: a feature whose residual std exceeds 5 MAD-sigmas is scaled by its std
        ratio = float(method[3:])
        std = np.std(C - center, axis=0)
        scale = np.maximum(np.where(std > ratio * mad, std, mad), 1e-2)
    elif method.startswith("qmap"):  # qmap / qmapN: each feature's |dev| through its own calibration quantiles
        # Knots: |dev| quantiles at fixed levels p (those the calibration rows can resolve) mapped to
        # the Gaussian z with the same two-sided tail, (0, 0) first; beyond the largest calibration
        # |dev| the z grows in proportion. Never above the MAD z ("min"), so it only ever tames.
        from scipy.stats import norm as gauss

        n = len(C)
        levels = [p for p in (0.5, 0.75, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999) if p < n / (n + 1)]
        z = np.empty_like(R)
        absdev = np.abs(R - center)
        mad_z = absdev / np.maximum(mad, 1e-2)
        for f in range(R.shape[1]):
            xs = np.concatenate([[0.0], np.quantile(dev[:, f], levels), [dev[:, f].max()]])
            ys = np.concatenate([[0.0], gauss.ppf(0.5 + np.asarray(levels) / 2), [gauss.ppf(0.5 + n / (n + 1) / 2)]])
            xs = np.maximum.accumulate(xs)
            keep = np.concatenate([[True], np.diff(xs) > 1e-12])  # ties (a feature mostly at 0) keep the first knot
            xs, ys = xs[keep], ys[keep]
            x = absdev[:, f]
            inside = np.interp(x, xs, ys)
            if method == "qmap":
                beyond = ys[-1] * x / max(xs[-1], 1e-12)
            else:  # qmapm / qmapc0.1: beyond the largest calibration |dev|, MAD units (or max(MAD, c std)) from there
                c_std = float(method[5:]) * np.std(C[:, f] - center[f]) if method.startswith("qmapc") else 0.0
                beyond = ys[-1] + (x - xs[-1]) / max(mad[f], c_std, 1e-2)
            g = np.where(x <= xs[-1], inside, beyond)
            z[:, f] = np.minimum(g, mad_z[:, f]) * np.sign(R[:, f] - center[f])
        return np.clip(z, -cap, cap) if cap > 0 else z
    elif method == "std":
        scale = np.maximum(np.std(C, axis=0), 1e-2)
    elif method.startswith("madq"):  # madq99: MAD, floored by the q-quantile of |deviation| in Gaussian units
        q = float(method[4:]) / 100 if len(method) > 4 else 0.99
        from scipy.stats import norm

        scale = np.maximum(np.maximum(mad, np.quantile(dev, q, axis=0) / norm.ppf(0.5 + q / 2)), 1e-2)
    elif method.startswith("q"):  # q999: each feature's |deviation| quantile set to 1
        q = float("0." + method[1:])
        scale = np.maximum(np.quantile(dev, q, axis=0), 1e-2)
    else:
        raise ValueError(method)
    z = (R - center) / scale
    if cap > 0:
        z = np.clip(z, -cap, cap)
    return z


def aggregate(z: np.ndarray, method: str) -> np.ndarray:
    a = np.abs(z)
    if method == "rms":
        return np.sqrt(np.mean(a * a, axis=1))
    if method == "mean_abs":
        return np.mean(a, axis=1)
    if method == "max_abs":
        return np.max(a, axis=1)
    if method.startswith("top"):
        k = min(int(method[3:]), a.shape[1])
        part = -np.partition(-np.nan_to_num(a, nan=np.inf), k - 1, axis=1)[:, :k]
        s = part.mean(axis=1)
        s[np.isnan(a).any(axis=1)] = np.nan
        return s
    raise ValueError(method)


def ewma_nan(x: np.ndarray, span: float | str) -> np.ndarray:
    """EWMA of ``x`` (L,) skipping NaN. ``span`` ``"a+b"``: the mean of the two EWMAs; ``"a|b"``:
    their maximum (a short span for spikes beside a long one for stretches); ``"a&b"``: their
    minimum (a stretch must be high in both: a short span's fast fall ends the long one's tail);
    ``"a>b"``: one EWMA that rises with span a and falls with span b (attack and release)."""
    if isinstance(span, str):
        if ">" in span:
            rise, fall = (2 / (float(v) + 1) for v in span.split(">"))
            out = np.full_like(x, np.nan)
            level = np.nan
            for i, v in enumerate(x):
                if np.isnan(v):
                    continue
                level = v if np.isnan(level) else level + (rise if v > level else fall) * (v - level)
                out[i] = level
            return out
        for sep, combine in (("+", lambda a, b: (a + b) / 2), ("|", np.fmax), ("&", np.fmin)):
            if sep in span:
                short, long = (float(v) for v in span.split(sep))
                return combine(ewma_nan(x, short), ewma_nan(x, long))
        raise ValueError(span)
    if span <= 1:
        return x
    from scipy.signal import lfilter

    out = np.full_like(x, np.nan)
    ok = ~np.isnan(x)
    v = x[ok]
    if len(v):
        a = 2 / (span + 1)
        out[ok], _ = lfilter([a], [1, a - 1], v, zi=[(1 - a) * v[0]])
    return out


def hold_max(x: np.ndarray, rows: int) -> np.ndarray:
    """Trailing maximum of ``x`` (L,) over the last ``rows`` rows, the row itself included; NaN
    rows are skipped (a row whose window is all NaN stays NaN)."""
    import pandas as pd

    out = pd.Series(x).rolling(rows, min_periods=1).max().to_numpy().copy()
    out[np.isnan(x)] = np.nan
    return out


def peak_decay(x: np.ndarray, half_life: int) -> np.ndarray:
    """``s_t = max(x_t, s_{t-1} * 2 ** (-1 / |half_life|))`` over ``x`` (L,); NaN rows stay NaN and
    keep the running peak."""
    factor = 2.0 ** (-1.0 / abs(half_life))
    out = np.full_like(x, np.nan)
    peak = -np.inf
    for i, v in enumerate(x):
        if np.isnan(v):
            continue
        peak = max(v, peak * factor) if np.isfinite(peak) else v
        out[i] = peak
    return out


def lead_rows(x: np.ndarray, spec: str) -> np.ndarray:
    """``"cW"``: a centred moving mean of width ``W`` over ``x`` (L,) (W // 2 rows of lookahead;
    truncated at the ends); NaN rows skipped in the mean and kept NaN."""
    import pandas as pd

    width = int(spec[1:])
    out = pd.Series(x).rolling(width, center=True, min_periods=1).mean().to_numpy().copy()
    out[np.isnan(x)] = np.nan
    return out


def score_period(x: np.ndarray, min_acf: float, min_period: int, jitter: int, max_lag: int = 2000) -> int:
    """The period (rows) of a score series ``x`` (L,), or 0: the autocorrelation of its rolling
    maximum over ±``jitter`` rows (NaN read as the median), the shortest local peak between 4
    and ``min(L // 2, max_lag)`` rows at least 0.9 of the highest, if it reaches ``min_acf``
    and ``min_period``."""
    if not np.isfinite(x).any():
        return 0
    v = np.where(np.isnan(x), np.nanmedian(x), x)
    if jitter > 0:
        v = np.lib.stride_tricks.sliding_window_view(np.pad(v, jitter, mode="edge"), 2 * jitter + 1).max(axis=1)
    v = v - v.mean()
    top = min(len(v) // 2, max_lag)
    if top < max(min_period, 4) + 2 or not v.any():
        return 0
    acf = autocorrelation(v, top, per_lag=False)
    peaks = local_peaks(acf, np.arange(4, top))
    if not len(peaks):
        return 0
    best = int(peaks[np.argmax(acf[peaks] >= 0.9 * acf[peaks].max())])
    return best if acf[best] >= min_acf and best >= min_period else 0


def seasonal_excuse(raw: np.ndarray, train_end: int, spec: str, separate: bool, level_rows: int = 16) -> tuple[int, np.ndarray]:
    """A seasonal baseline tried for issue 12 and not taken (benchmarks/DETECTION.md, seventh pass).

    ``spec`` ``"K:w:r:P[:q]"``: the period of the training part's raw scores ``raw[:train_end]``
    (:func:`score_period` with ``min_acf`` r, ``min_period`` P, ``jitter`` w); each raw score
    (L,) then less ``b_t``, the smallest over the last K cycles of the largest score within w
    rows of the same moment, capped at the training part's largest score (``q`` 0: no cap);
    an unknown moment (before the stream's start, unscored) excuses up to the cap. Prefix
    ``p``: ``b_t`` is how far that moment's peak stood above the mean of the ±``level_rows``
    rows around it (a recurring peak excused, a recurring level not), capped at the training
    part's largest such peak. With ``separate`` the training and test parts are two streams.
    Causal and chunk-invariant as written, but a sweep-only emulation: the product has no such stage.
    """
    prominent = spec.startswith("p")
    parts = [float(v) for v in spec.lstrip("p").split(":")]
    cycles, jitter, min_acf, min_period = int(parts[0]), int(parts[1]), parts[2], int(parts[3])
    capped = len(parts) < 5 or parts[4] != 0
    period = score_period(raw[:train_end], min_acf, min_period, jitter)
    if period <= (level_rows if prominent else jitter):
        return 0, raw

    def peaks(h: np.ndarray) -> np.ndarray:  # element k is about h[k + pad]
        if not prominent:
            return np.lib.stride_tricks.sliding_window_view(h, 2 * jitter + 1).max(axis=1)
        windows = np.lib.stride_tricks.sliding_window_view(h, 2 * level_rows + 1)
        return np.maximum(0.0, windows[:, level_rows - jitter : level_rows + jitter + 1].max(axis=1) - windows.mean(axis=1))

    pad = level_rows if prominent else jitter
    ceiling = float(np.nanmax(peaks(raw[:train_end]))) if capped else np.inf

    def stream(x: np.ndarray) -> np.ndarray:
        reach = cycles * period + pad
        p = peaks(np.concatenate([np.full(reach, np.nan), x]))
        base = np.full(len(x), np.inf)
        for j in range(1, cycles + 1):
            start = reach - j * period - pad
            base = np.minimum(base, p[start : start + len(x)])
        base = np.where(np.isnan(base), ceiling if np.isfinite(ceiling) else 0.0, np.minimum(base, ceiling))
        out = np.maximum(0.0, x - base)
        out[np.isnan(x)] = np.nan
        return out

    if separate:
        return period, np.concatenate([stream(raw[:train_end]), stream(raw[train_end:])])
    return period, stream(raw)


def seasonal_autoregression(
    R: np.ndarray, train_end: int, fit_end: int, spec: str, separate: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Each feature's residual (L, D) less what a ridge regression on its own residuals one
    period earlier predicts: a seasonal autoregression of the signed residuals (issue 12, ninth pass).

    ``spec`` ``"[acn]w:h:r:P[:v][:a]"``. Per feature, the period: the highest local peak of the
    autocorrelation of the fitting rows' residuals (NaN as 0; each lag's sum divided by its own
    number of products) between P rows and two thirds of those rows, kept if it reaches r. The
    regressors: the residuals at ``t - period + j``, ``|j| <= w``, each less the centred mean of
    the ``2h + 1`` residuals around it (h 0: not; h < 0: half the period, so the mean is that of
    the period centred on it); with h > 0 a lasting bias (a drift, a level the network does not
    reach) recurs in no regressor and is not excused, only a recurring shape is. Fitted by ridge (penalty ``a``, default 1; ``a`` < 0: ``|a|`` times the
    regressors' mean sum of squares, free of the residuals' scale) on the rows
    before ``fit_end`` (the network's training rows), kept if it lowers the mean square of
    the residuals on the held-back rows ``fit_end:train_end`` by the share ``v`` (default 0:
    any lowering; ``v`` < 0: kept without that check). Prefix letters: ``a``, period and fit from the
    whole training part, kept without that check; ``c``, each regressor clipped to the fitting
    rows' largest absolute regressor, so that an anomaly a period ago excuses no more than a
    normal moment would; ``n``, a correction that would make a residual larger is not made
    (no echo of a past spike). Rows whose regressors are unknown (the
    first period of a stream, gaps) are left as they are. Causal (``h`` < period - w) and
    chunk-invariant with a buffer of period + w + h residuals; a sweep-only emulation.

    Returns
    -------
    (ndarray of shape (L, D), ndarray of shape (D,))
        The corrected residuals and each feature's period (0: no correction).
    """
    flags = re.match(r"[a-z]*", spec).group(0)
    whole = "a" in flags  # fitted on the whole training part, no held-back check
    clip = "c" in flags  # regressors clipped to the fitting rows' largest |regressor|
    shrink_only = "n" in flags  # a correction never makes a residual larger
    parts = [float(v) for v in spec[len(flags) :].split(":")]
    w, h, min_acf, min_period = int(parts[0]), int(parts[1]), parts[2], int(parts[3])
    if whole:
        fit_end = train_end
    min_gain = parts[4] if len(parts) > 4 else 0.0
    ridge = parts[5] if len(parts) > 5 else 1.0
    L, D = R.shape
    out = R.copy()
    periods = np.zeros(D, dtype=int)
    streams = [(0, train_end), (train_end, L)] if separate else [(0, L)]
    for f in range(D):
        r = R[:, f]
        train = np.nan_to_num(r[:fit_end])
        train = train - train.mean()
        top = 2 * len(train) // 3
        if top < min_period + w + 2 or not train.any():
            continue
        # Each lag's sum divided by its own number of products, so that a lag of half the rows is
        # not shrunk by half.
        acf = autocorrelation(train, top)
        peaks = local_peaks(acf, np.arange(max(min_period, 2 * w + 2, 2 * max(h, 0) + 2), top))
        if not len(peaks):
            continue
        period = int(peaks[np.argmax(acf[peaks])])
        if acf[period] < min_acf:
            continue

        def design(x: np.ndarray, h: int = h if h >= 0 else period // 2) -> np.ndarray:
            # (len(x), 2w + 1): the high-passed residuals a period before (h < 0: half a period)
            high = x.copy()
            if h > 0:
                padded = np.pad(x, h, mode="edge")
                valid = np.lib.stride_tricks.sliding_window_view(~np.isnan(padded), 2 * h + 1)
                total = np.lib.stride_tricks.sliding_window_view(np.nan_to_num(padded), 2 * h + 1).sum(axis=1)
                with np.errstate(invalid="ignore", divide="ignore"):
                    high = x - total / valid.sum(axis=1)
            X = np.full((len(x), 2 * w + 1), np.nan)
            for k, j in enumerate(range(-w, w + 1)):
                lag = period - j
                X[lag:, k] = high[: len(x) - lag]
            return X

        def rows(a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
            X = design(r[a:b])
            ok = ~np.isnan(X).any(axis=1) & ~np.isnan(r[a:b])
            return X, ok

        X, ok = rows(0, fit_end)
        if ok.sum() < 4 * (2 * w + 1):
            continue
        A, y = X[ok], r[:fit_end][ok]
        # ridge < 0: a penalty of |ridge| times the regressors' own sum of squares (scale-free)
        penalty = -ridge * float((A**2).sum()) / A.shape[1] if ridge < 0 else ridge
        coef = np.linalg.solve(A.T @ A + penalty * np.eye(A.shape[1]), A.T @ y)
        bound = float(np.abs(A).max()) if clip else np.inf
        corrected = []
        for a, b in streams:
            Xs, oks = rows(a, b)
            c = r[a:b].copy()
            fixed = c[oks] - np.clip(Xs[oks], -bound, bound) @ coef
            c[oks] = np.where(np.abs(fixed) <= np.abs(c[oks]), fixed, c[oks]) if shrink_only else fixed
            corrected.append(c)
        c = np.concatenate(corrected)
        if min_gain >= 0 and not whole:
            before = np.nanmean(r[fit_end:train_end] ** 2)
            after = np.nanmean(c[fit_end:train_end] ** 2)
            if not after < (1 - min_gain) * before:
                continue
        out[:, f] = c
        periods[f] = period
    return out, periods


def linear_window_error(
    values: np.ndarray,
    train_end: int,
    spec: str,
    separate: bool,
    fit_end: int | None = None,
    network_z: np.ndarray | None = None,
) -> np.ndarray:
    """A linear window model's error per row (L,): a lead for issue 12, not in the product.

    ``spec`` ``"V:Wmax"``: each row's trailing window of W rows (W the period of the training
    part's first feature, ``find_length_rank``, at most Wmax), z-scored by the training part,
    reconstructed by a PCA keeping the share V of the variance of the training part's windows
    (fitted on them: in-sample); the root mean square of the reconstruction error. NaN for the
    first W - 1 rows of each stream, and everywhere when the training part holds fewer than
    three windows' rows. Causal: a row's window ends at it. Letters after it:

    - ``l``: instead, each window's newest row's signed reconstruction error per feature (L, D);
    - ``h``: the PCA fitted on the rows before ``fit_end`` only (the network's training rows), so
      that the held-back calibration rows see it out of sample, as the scored rows do;
    - ``x``: the held-back rows' errors from that fit, every other row's from the whole one;
    - ``c``: each window less its own mean per feature (its shape, not its level);
    - ``m<k>``: the training part must hold k windows' rows, not 3 (``m1.25``: W / 4 + 1 windows);
    - ``d<n>``: W also at most n // D (at most n values per window);
    - ``k<C>``: a value whose network z (``network_z``, (L, D)) exceeds C in size is replaced by
      the last value before it that did not (causal), in training and scoring alike, so that a
      row the network already flags on its own does not stay in the next W windows' errors.

    Read by :func:`evaluate_setting`, they rescale the column: ``s`` by its calibration standard
    deviation instead of the normaliser's scale; ``r<C>`` by its rise over its calibration
    median, a rise by the share C counting as one z (``r<C>+``: never below 0); ``f<C>`` the
    normaliser's MAD floored at C times that median. Where the column is NaN (no complete
    window yet), it adds 0 and the network's z alone score the row.
    """
    from sklearn.decomposition import PCA

    from anomaly.evaluation.metrics import find_length_rank

    held_back = "h" in spec
    cross = "x" in spec and fit_end is not None  # calibration rows from the held-back fit, the rest from the whole one
    last_row = "l" in spec  # the reconstruction error of each window's newest row, per feature (L, D)
    model = re.split("[rf]", spec)[0]
    min_windows = float(m.group(1)) if (m := re.search(r"m([\d.]+)", model)) else 3.0
    max_values = int(m.group(1)) if (m := re.search(r"d(\d+)", model)) else None
    share, most = (float(v) for v in re.match(r"([\d.]+):(\d+)", model).groups())
    fit_rows = fit_end if (held_back or cross) and fit_end is not None else train_end
    X = np.asarray(values, dtype=np.float64)
    if (m := re.search(r"k([\d.]+)", model)) and network_z is not None:
        X = _replace_flagged(X, np.abs(network_z) > float(m.group(1)))
    mean, std = np.nanmean(X[:train_end], axis=0), np.nanstd(X[:train_end], axis=0)
    X = (X - mean) / np.where(std > 0, std, 1.0)
    D = X.shape[1]
    W = min(find_length_rank(X[:train_end, :1], rank=1), int(most), max(1, max_values // D) if max_values else int(most))
    if fit_rows < min_windows * W:
        return np.full((len(X), D) if last_row else len(X), np.nan)

    centre = "c" in spec  # each window's own mean per feature taken out: its shape, not its level

    def windows(Y: np.ndarray) -> np.ndarray:  # row k: the window ending at row k + W - 1
        v = np.lib.stride_tricks.sliding_window_view(np.nan_to_num(Y), (W, D))[:, 0]
        if centre:
            v = v - v.mean(axis=1, keepdims=True)
        return v.reshape(-1, W * D)

    pca = PCA(n_components=share, svd_solver="full").fit(windows(X[:fit_rows]))
    if cross:
        held_pca, pca = pca, PCA(n_components=share, svd_solver="full").fit(windows(X[:train_end]))

    def error(Y: np.ndarray) -> np.ndarray:
        v = windows(Y)
        gap = v - pca.inverse_transform(pca.transform(v))
        if last_row:
            out = np.full((len(Y), D), np.nan)
            out[W - 1 :] = gap[:, -D:]
            return out
        out = np.full(len(Y), np.nan)
        out[W - 1 :] = np.sqrt((gap**2).mean(axis=1))
        return out

    out = np.concatenate([error(X[:train_end]), error(X[train_end:])]) if separate else error(X)
    if cross:
        pca = held_pca
        out[fit_end:train_end] = error(X[:train_end])[fit_end:]
    return out


def _replace_flagged(X: np.ndarray, flagged: np.ndarray) -> np.ndarray:
    """X (L, D) with each flagged value replaced by the last unflagged value of its column before
    it (the column's first unflagged value where none is before it)."""
    out = X.copy()
    for j in range(X.shape[1]):
        keep = ~flagged[:, j]
        if not keep.any():
            continue
        index = np.where(keep, np.arange(len(X)), -1)
        index = np.maximum.accumulate(index)
        index[index < 0] = np.argmax(keep)
        out[:, j] = X[index, j]
    return out


def median_shift(values: np.ndarray, train_end: int, spec: str, separate: bool) -> np.ndarray:
    """How far each feature's level moved (L, D): a lead for issue 12, not in the product.

    ``spec`` ``"k"``: the median of each feature's last k values less the median of the k before
    them, the values z-scored by the training part; NaN for a stream's first 2k - 1 rows. A
    single spike moves neither median, so it is not held; a lasting change of level raises the
    column for the 2k rows after it. Causal: a row's medians end at it.
    """
    import pandas as pd

    k = int(spec)
    X = np.asarray(values, dtype=np.float64)
    mean, std = np.nanmean(X[:train_end], axis=0), np.nanstd(X[:train_end], axis=0)
    X = (X - mean) / np.where(std > 0, std, 1.0)

    def shift(Y: np.ndarray) -> np.ndarray:
        med = pd.DataFrame(Y).rolling(k, min_periods=k).median().to_numpy()
        out = np.full_like(med, np.nan)
        out[k:] = med[k:] - med[:-k]
        return out

    return np.concatenate([shift(X[:train_end]), shift(X[train_end:])]) if separate else shift(X)


def best_f1_counts(labels: np.ndarray, scores: np.ndarray) -> tuple[float, dict[str, int]]:
    """The series' best point-wise F1 over thresholds and its counts (chosen with labels)."""
    s = np.where(np.isnan(scores), -np.inf, scores)
    order = np.argsort(-s, kind="mergesort")
    ls, ss = labels[order], s[order]
    last = np.append(np.flatnonzero(ss[1:] != ss[:-1]), len(ss) - 1)
    tp = np.cumsum(ls)[last]
    fp = last + 1 - tp
    P = labels.sum()
    f1 = 2 * tp / (P + tp + fp)
    i = int(np.argmax(f1))
    return float(f1[i]), {"tp": int(tp[i]), "fp": int(fp[i]), "fn": int(P - tp[i]), "threshold": float(ss[last[i]])}


def _ap(labels: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import average_precision_score

    low = np.nanmin(scores) - 1.0 if np.isfinite(scores).any() else 0.0
    return float(average_precision_score(labels, np.where(np.isnan(scores), low, scores)))


def _window_rise(c: np.ndarray, stream: np.ndarray, window: int, keep_size: bool) -> np.ndarray:
    """Rise (L,) of the weighted median of the last ``window`` stream rows plus the calibration
    scores ``c`` (K,) over the calibration median, updated every 64 rows. The calibration weighs
    what the scored rows leave of the window: at most its own size (``keep_size``, rule pswin)
    or all of it (rule pwin)."""
    med = np.median(c)
    cs = np.sort(c)
    rise = np.zeros(len(stream))
    for b in range(64, len(stream), 64):
        recent = stream[max(0, b - window) : b]
        room = window - len(recent)
        prior = min(len(cs), room) if keep_size else max(0, room)
        values = np.concatenate([cs, recent])
        weights = np.concatenate([np.full(len(cs), prior / len(cs)), np.ones(len(recent))])
        order = np.argsort(values, kind="stable")
        cumulative = np.cumsum(weights[order])
        rise[b : b + 64] = max(0.0, float(values[order][np.searchsorted(cumulative, cumulative[-1] / 2)]) - med)
    return rise


def fit_cut(c: np.ndarray, fit: str, quantile: float, margin: float) -> float:
    """The fitted threshold from calibration scores ``c`` (K,).

    ``q``: the product's rule, median + margin × (quantile − median). ``logmad<k>``: median +
    k robust sigmas of the log scores, so that a contaminated tail (training data holding
    unlabelled anomalies) cannot lift it as it lifts a high quantile.
    """
    if fit == "q":
        t = np.quantile(c, quantile)
        med = np.median(c)
        return float(med + margin * (t - med))
    if fit.startswith("logmad"):
        k = float(fit[6:])
        lc = np.log(np.maximum(c, 1e-12))
        m = np.median(lc)
        return float(np.exp(m + k * 1.4826 * np.median(np.abs(lc - m))))
    raise ValueError(fit)


def _rescale_window_columns(R: np.ndarray, z: np.ndarray, cal: slice, first: int, spec: str) -> np.ndarray:
    """z (L, D') with the linear window columns ``first:`` of R (L, D') measured as ``spec``'s
    suffix says (:func:`linear_window_error`): ``s``, ``r<C>[+]``, ``f<C>``, or else the
    normaliser's z left as they are. A row with no complete window yet (a stream's first W - 1)
    gets 0 there, so the network's z alone score it, as a product would (before 2026-12-06 such
    rows went unscored)."""
    extra = slice(first, R.shape[1])
    C = R[cal, extra][~np.isnan(R[cal, extra]).any(axis=1)]
    center = np.median(C, axis=0)
    z = z.copy()
    if "s" in spec:  # the calibration standard deviation, not the MAD (a smooth, averaged error has a MAD far below its spread)
        z[:, extra] = (R[:, extra] - center) / np.maximum(np.std(C, axis=0), 1e-2)
    elif "r" in spec:  # the rise over the calibration median, the share C of it one z (an averaged error's
        # MAD is far below its out-of-sample shift); "+": only a rise counts
        z[:, extra] = (R[:, extra] / np.maximum(center, 1e-12) - 1.0) / float(spec.split("r")[1].rstrip("+"))
        if spec.endswith("+"):
            z[:, extra] = np.maximum(z[:, extra], 0.0)
    elif "f" in spec:  # the normaliser's MAD, floored at the share C of the calibration median
        scale = np.maximum(1.4826 * np.median(np.abs(C - center), axis=0), float(spec.split("f")[1]) * center)
        z[:, extra] = (R[:, extra] - center) / np.maximum(scale, 1e-12)
    network_scored = ~np.isnan(R[:, :first]).any(axis=1, keepdims=True)
    z[:, extra] = np.where(np.isnan(R[:, extra]) & network_scored, 0.0, z[:, extra])
    return z


def evaluate_setting(
    series: list[dict[str, Any]],
    norm: str,
    cap: float,
    agg: str,
    span: float,
    rule: str,
    quantile: float,
    margin: float,
    fit: str = "q",
    gap: int = 0,
    minlen: int = 1,
    inject: str = "",
    min_switches: int = 0,
    hold: int = 0,
    lead: int | str = 0,
    season: str = "",
    linwin: str = "",
    seasres: str = "",
    shift: int | str = 0,
    verbose: bool = False,
) -> dict[str, float]:
    def f1(c: dict[str, int]) -> float:
        return 2 * c["tp"] / max(1, 2 * c["tp"] + c["fp"] + c["fn"])

    tot = {"tp": 0, "fp": 0, "fn": 0}
    series_f1 = []
    ev_found = ev_total = 0
    best = {"tp": 0, "fp": 0, "fn": 0}
    aps, vuses, silent = [], [], 0
    for item in series:
        R = item["residuals"].astype(np.float64)
        if linwin:  # one more "residual": the linear window model's error (linear_window_error)
            cached = item.setdefault("linwin", {})
            model = re.split("[rf]", str(linwin))[0].rstrip("s")  # the suffixes after it only rescale the column
            if model not in cached:
                network_z = None
                if "k" in model:  # the cleaning needs the network's own z, as the defaults normalise them
                    cal = slice(int(item["calibration_start"]), int(item["train_end"]))
                    network_z = normalise(R, cal, "mads0.1", 0.0)
                cached[model] = linear_window_error(
                    item["values"],
                    int(item["train_end"]),
                    model,
                    item.get("separate", False),
                    int(item["calibration_start"]),
                    network_z,
                )
            column = cached[model] if cached[model].ndim == 2 else cached[model][:, None]
            if np.isfinite(column[int(item["calibration_start"]) : int(item["train_end"])]).all():
                R = np.concatenate([R, column], axis=1)  # else (too short a training part) left out
        if shift:  # more residual columns: how far each feature's level moved (median_shift)
            cached = item.setdefault("shift", {})
            if shift not in cached:
                cached[shift] = median_shift(item["values"], int(item["train_end"]), str(shift), item.get("separate", False))
            R = np.concatenate([R, cached[shift]], axis=1)
        if seasres:  # each feature's residual less its seasonal autoregression (seasonal_autoregression)
            cached = item.setdefault("seasres", {})
            key = (seasres, linwin)
            if key not in cached and str(seasres).startswith("stage"):
                # The stage as it was built (seasonal_residual.py): "stage[:tolerance[:min_acf]]"; the
                # uncorrectable rows measured as uncorrected, by the product's normaliser (no steps)
                from seasonal_residual import SeasonalResidual

                from anomaly.detection.scoring import ResidualNormaliser

                te, extra = int(item["train_end"]), [float(v) for v in str(seasres).split(":")[1:]]
                options = dict(zip(("tolerance", "min_acf"), extra))
                stage = SeasonalResidual.fit(R[:te], **options)
                cal = slice(int(item["calibration_start"]), te)
                raw, fixed = ResidualNormaliser.fit(R[cal]), ResidualNormaliser.fit(stage.stream().feed(R[:te])[cal])
                stage = stage.calibrated(raw.center, raw.scale, fixed.center, fixed.scale)
                streams = [R[:te], R[te:]] if item.get("separate", False) else [R]
                corrected = np.concatenate([stage.stream().feed(part) for part in streams])
                cached[key] = (corrected, stage.periods)
            if key not in cached:
                cached[key] = seasonal_autoregression(
                    R, int(item["train_end"]), int(item["calibration_start"]), str(seasres), item.get("separate", False)
                )
            R, periods = cached[key]
            item.setdefault("seasres_periods", {})[seasres] = periods
        labels = item["labels"].astype(bool)
        te = int(item["train_end"])
        steps = np.zeros(R.shape[1])
        if inject:
            extra = command_residuals(item["name"], len(R), te, inject, np.isnan(R).any(axis=1))
            R = np.concatenate([R, extra], axis=1)
            # As the product's value_steps: a pulse channel's step (1/std) where it switched at
            # least MIN_SWITCHES times in training (each nonzero residual is one switch), else 0.
            from anomaly.detection.preprocessing import MIN_SWITCHES

            switches = np.count_nonzero(np.nan_to_num(extra[:te]), axis=0)
            step = np.nanmax(np.abs(extra[:te]), axis=0, initial=0.0)
            steps = np.concatenate([steps, np.where(switches >= (min_switches or MIN_SWITCHES), step, 0.0)])
        cal = slice(int(item["calibration_start"]), te)
        binary_aware = norm.endswith("b")  # a two-valued channel's scale is at least its step (as the product does)
        z = normalise(R, cal, norm[:-1] if binary_aware else norm, cap)
        if linwin and R.shape[1] > item["residuals"].shape[1] and not shift:
            z = _rescale_window_columns(R, z, cal, item["residuals"].shape[1], str(linwin))
        if shift:  # a row with no complete pair of windows yet: the shift columns add 0
            network_scored = ~np.isnan(R[:, : item["residuals"].shape[1]]).any(axis=1, keepdims=True)
            z = np.where(np.isnan(z) & network_scored, 0.0, z)
        if binary_aware and steps.any():
            C = R[cal][~np.isnan(R[cal]).any(axis=1)]
            center = np.median(C, axis=0)
            with np.errstate(invalid="ignore", divide="ignore"):
                z = np.where(steps > 0, (R - center) / np.maximum(steps, 1e-12), z)
        raw = aggregate(z, agg)
        if season:  # "[p]K:w:r:P[:q]": each raw score less what the same moment a cycle ago scored (seasonal_excuse)
            period, raw = seasonal_excuse(raw, te, str(season), item.get("separate", False))
            item.setdefault("periods", {})[season] = period
        if "smd" in item["name"] or item.get("separate", False):
            score = np.concatenate([ewma_nan(raw[:te], span), ewma_nan(raw[te:], span)])
        else:
            score = ewma_nan(raw, span)
        if hold > 1 or hold < 0:  # > 1: each row's score the largest smoothed score of its last
            # `hold` rows (causal); < 0: a peak decaying with a half-life of -hold rows (peak_decay)
            held = hold_max if hold > 1 else peak_decay
            if item.get("separate", False):
                score = np.concatenate([held(score[:te], hold), held(score[te:], hold)])
            else:
                score = held(score, hold)
        if lead:  # each row takes the smoothed score of `lead` rows later (the EWMA's lag undone;
            # the last rows keep the last score): the alarm comes when it would, on the rows that caused it
            shift = lead_rows if isinstance(lead, str) else (lambda v, k: np.concatenate([v[k:], np.repeat(v[-1:], k)]))
            if item.get("separate", False):
                score = np.concatenate([shift(score[:te], lead), shift(score[te:], lead)])
            else:
                score = shift(score, lead)
        c = score[cal]
        c = c[~np.isnan(c)]
        med = np.median(c)
        if fit == "qall":  # the cut from every training-part score, in-sample rows included
            whole = score[:te][~np.isnan(score[:te])]
            t = fit_cut(whole, "q", quantile, margin)
        else:
            t = fit_cut(c, fit, quantile, margin)
        test = slice(te, len(labels))
        y, sc = labels[test], score[test]
        if rule == "quantile":
            pass
        elif rule.startswith("level"):  # threshold follows the running median of the scored stream
            import pandas as pd

            running = pd.Series(np.concatenate([c, sc])).expanding().median().to_numpy()[len(c) - 1 : -1]
            t = t * np.maximum(1.0, running / med)
        elif rule == "product":  # the product's follower as it ships (histogram, window WINDOW), fed as the harness feeds it
            from anomaly.detection.level import LevelFollower, histogram

            start = te if item.get("separate", False) else 0
            t = LevelFollower(float(t), histogram(c)).feed(score[start:])[te - start :]
        elif rule == "follow":  # the rule before the window: median of everything (anomaly.detection.level, window=None)
            from anomaly.detection.level import LevelFollower, histogram

            t = LevelFollower(float(t), histogram(c), window=None).feed(sc)
        elif rule == "followall":  # as the harness scores: the follower sees the whole scored pass
            from anomaly.detection.level import LevelFollower, histogram

            start = te if item.get("separate", False) else 0
            t = LevelFollower(float(t), histogram(c), window=None).feed(score[start:])[te - start :]
        elif rule.startswith("win"):  # followall, but the median over the calibration and the last W scored rows
            W = int(rule[3:])
            start = te if item.get("separate", False) else 0
            stream = np.nan_to_num(score[start:], nan=med)
            rise = np.zeros(len(stream))
            for b in range(64, len(stream), 64):  # updated every 64 rows, as the product's follower is
                rise[b : b + 64] = max(0.0, float(np.median(np.concatenate([c, stream[max(0, b - W) : b]]))) - med)
            t = t + rise[te - start :]
        elif rule.startswith("pwin"):  # median over the last W scored rows; the calibration fills the window until W are scored
            start = te if item.get("separate", False) else 0
            t = t + _window_rise(c, np.nan_to_num(score[start:], nan=med), int(rule[4:]), keep_size=False)[te - start :]
        elif rule.startswith("swin"):  # median of the last W rows of calibration ++ scored stream
            W = int(rule[4:])
            start = te if item.get("separate", False) else 0
            stream = np.nan_to_num(score[start:], nan=med)
            seq = np.concatenate([c, stream])
            rise = np.zeros(len(stream))
            for b in range(64, len(stream), 64):
                end = len(c) + b
                rise[b : b + 64] = max(0.0, float(np.median(seq[max(0, end - W) : end])) - med)
            t = t + rise[te - start :]
        elif rule.startswith("pswin"):  # swin, but the calibration leaves the window proportionally (the product's rule)
            start = te if item.get("separate", False) else 0
            t = t + _window_rise(c, np.nan_to_num(score[start:], nan=med), int(rule[5:]), keep_size=True)[te - start :]
        elif rule.startswith("shift"):  # threshold moves up with a running low quantile of the stream
            import pandas as pd

            q = float("0." + rule[5:])
            running = pd.Series(np.concatenate([c, sc])).expanding().quantile(q).to_numpy()[len(c) - 1 : -1]
            t = t + np.maximum(0.0, running - np.quantile(c, q))
        elif rule.startswith("tshift"):  # the same from the test stream alone (after 100 rows)
            import pandas as pd

            q = float("0." + rule[6:])
            running = pd.Series(sc).expanding(min_periods=1).quantile(q).shift(1).to_numpy().copy()
            running[:100] = np.quantile(c, q)
            t = t + np.maximum(0.0, np.nan_to_num(running - np.quantile(c, q)))
        elif rule.startswith("rq"):  # at least the running quantile of everything scored so far
            import pandas as pd

            q = float("0." + rule[2:])
            running = pd.Series(np.concatenate([c, sc])).expanding().quantile(q).to_numpy()[len(c) - 1 : -1]
            t = np.maximum(t, running)
        else:
            raise ValueError(rule)
        flags = np.nan_to_num(sc, nan=-np.inf) > t
        if gap or minlen > 1:  # the product's event grouping (event_gap, event_min_length)
            from anomaly.detection.events import event_flags

            flags = event_flags(flags, gap, minlen)
        tot["tp"] += int((y & flags).sum())
        tot["fp"] += int((~y & flags).sum())
        tot["fn"] += int((y & ~flags).sum())
        if y.any():
            from anomaly.detection.scoring import find_events

            evs = find_events(y)
            ev_total += len(evs)
            ev_found += sum(bool(flags[a : b + 1].any()) for a, b in evs)
            series_f1.append(f1(dict(tp=int((y & flags).sum()), fp=int((~y & flags).sum()), fn=int((y & ~flags).sum()))))
            bf1, bc = best_f1_counts(y, sc)
            for k in best:
                best[k] += bc[k]
            if "vus_window" in item:  # TSB-AD's VUS-PR (slow: only with --vus)
                from anomaly.evaluation.metrics import vus_pr

                vuses.append(vus_pr(y, np.nan_to_num(sc, nan=float(np.nanmin(sc))), window=int(item["vus_window"])))
            if verbose:
                seasonal = item.get("seasres_periods", {}).get(seasres, np.zeros(0, dtype=int))
                print(
                    f"    {item['name']} period {item.get('periods', {}).get(season, 0)}"
                    f"{' seasres ' + ','.join(str(v) for v in seasonal[seasonal > 0]) if seasonal.any() else ''}: labelled {y.mean():.3f} flagged {flags.mean():.4f} F1 {f1(dict(tp=int((y & flags).sum()), fp=int((~y & flags).sum()), fn=int((y & ~flags).sum()))):.3f} "
                    f"best F1 {bf1:.3f} at cal-quantile {np.mean(c <= bc['threshold']):.4f} (t {bc['threshold']:.3g} vs {np.median(t):.3g}, test median {np.nanmedian(sc):.3g} cal median {med:.3g}) AP {_ap(y, sc):.3f}"
                    + (f" VUS-PR {vuses[-1]:.3f}" if "vus_window" in item else "")
                )
            aps.append(_ap(y, sc))
            if not flags.any() and bf1 >= 0.1:
                silent += 1
    p = tot["tp"] / max(1, tot["tp"] + tot["fp"])
    r = tot["tp"] / max(1, tot["tp"] + tot["fn"])
    return {
        "f1": f1(tot),
        "precision": p,
        "recall": r,
        "best_f1": f1(best),
        "ratio": f1(tot) / max(1e-9, f1(best)),
        "mean_ap": float(np.mean(aps)) if aps else float("nan"),
        "silent": silent,
        "vus_pr": float(np.mean(vuses)) if vuses else float("nan"),
        "mean_f1": float(np.mean(series_f1)) if series_f1 else float("nan"),
        "events": f"{ev_found}/{ev_total}",
    }


def command_residuals(name: str, length: int, train_end: int, spec: str, gaps: np.ndarray) -> np.ndarray:
    """Next-step residuals of injected command-like channels, unrelated to the labels (a stress test).

    ``spec`` "p3": three binary channels of pulses (start rates 0.003, 0.01, 0.03 per row,
    1-5 rows long) in the training and test parts; "p3z": the same plus one channel that is 0
    throughout the training part and pulses (rate 0.01) in the test part only. A pulse of a
    binary channel of training rate p is a step of 1/std in scaled units; a next-step predictor
    that cannot foresee it (persistence) errs by +step at the rising edge and -step at the falling
    edge, and by 0 in between.
    """
    import zlib

    rng = np.random.default_rng(zlib.crc32(name.encode()))
    rates = [0.003, 0.01, 0.03]
    cols = []

    def pulses(rate: float, start: int) -> np.ndarray:
        x = np.zeros(length)
        t = start
        while True:
            t += int(rng.geometric(rate))
            if t >= length:
                return x
            x[t : t + int(rng.integers(1, 6))] = 1.0
            t += 5

    for rate in rates[: int(spec[1])]:
        x = pulses(rate, 0)
        std = x[:train_end].std() or 1.0
        cols.append(np.diff(x, prepend=x[0]) / std)
    if spec.endswith("z"):
        x = pulses(0.01, train_end)
        cols.append(np.diff(x, prepend=x[0]))
    out = np.stack(cols, axis=1)
    out[gaps] = np.nan
    return out


def vus_windows(dataset: str, root: Path) -> dict[str, int]:
    """The harness's VUS window per series (``find_length_rank`` of the test part's first feature)."""
    from anomaly.evaluation.metrics import find_length_rank

    loader = load_demo if dataset == "demo" else LOADERS[dataset]
    return {
        c.name.replace("/", "__"): find_length_rank(c.frame.iloc[c.train_end :, :1].to_numpy(np.float64), rank=1)
        for c in loader(root)
    }


def sweep(
    datasets: list[str],
    config: str,
    grid: dict[str, list[Any]],
    verbose: bool = False,
    vus: bool = False,
    calendar: str = "",
) -> None:
    """Every setting of ``grid`` on the cached residuals of ``config``; ``calendar``
    ``"CONFIG:R"``: a series whose training part has a daily autocorrelation of at least R
    (:func:`daily_autocorrelation`) takes its residuals from ``CONFIG`` instead (a cache made with
    ``--calendar``)."""
    import itertools

    data = {d: _load(d, config) for d in datasets}
    if calendar:
        other, least = calendar.rsplit(":", 1)
        for d, items in data.items():
            loader = load_demo if d == "demo" else LOADERS[d]
            daily = {c.name.replace("/", "__"): daily_autocorrelation(c.frame, c.train_end) for c in loader(datasets_root(None))}
            swapped = {item["name"]: item for item in _load(d, other)}
            for i, item in enumerate(items):
                if daily.get(item["name"], float("nan")) >= float(least) and item["name"] in swapped:
                    items[i] = swapped[item["name"]]
            print(
                f"{d}: {sum(daily.get(i['name'], float('nan')) >= float(least) for i in items)} of {len(items)} series from {other}"
            )
    for d, items in data.items():
        windows = vus_windows(d, datasets_root(None)) if vus else {}
        frames = {}
        if any(grid.get("linwin", [""])) or any(grid.get("shift", [0])):  # these columns need the series' values
            loader = load_demo if d == "demo" else LOADERS[d]
            frames = {c.name.replace("/", "__"): c.frame.to_numpy(np.float64) for c in loader(datasets_root(None))}
        for item in items:
            item["separate"] = d in ("smd", "demo")
            if item["name"] in windows:
                item["vus_window"] = windows[item["name"]]
            if item["name"] in frames:
                item["values"] = frames[item["name"]]
    keys = list(grid)
    rows = []
    for values in itertools.product(*(grid[k] for k in keys)):
        setting = dict(zip(keys, values))
        row = {"config": config, **setting}
        for d, items in data.items():
            m = evaluate_setting(items, **setting, verbose=verbose)
            row.update({f"{d}.{k}": v for k, v in m.items()})
        rows.append(row)
        print(
            " ".join(f"{k}={v}" for k, v in setting.items()),
            "|",
            "  ".join(
                f"{d}: F1 {row[f'{d}.f1']:.3f} (P {row[f'{d}.precision']:.2f} R {row[f'{d}.recall']:.2f}) best {row[f'{d}.best_f1']:.3f} "
                f"AP {row[f'{d}.mean_ap']:.3f} VUS {row[f'{d}.vus_pr']:.3f} mF1 {row[f'{d}.mean_f1']:.3f} ev {row[f'{d}.events']} silent {row[f'{d}.silent']}"
                for d in data
            ),
            flush=True,
        )
    LOG.parent.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    with LOG.open("a") as log:
        for row in rows:
            log.write(json.dumps({"time": stamp, **row}, default=float) + "\n")


DEFAULT_GRID: dict[str, list[Any]] = {
    "norm": ["mad"],
    "cap": [0.0],
    "agg": ["rms"],
    "span": [1.0],
    "rule": ["quantile"],
    "quantile": [0.999],
    "margin": [1.0],
    "fit": ["q"],
    "gap": [0],
    "minlen": [1],
    "inject": [""],
    "min_switches": [0],  # 0: the product's MIN_SWITCHES (with a norm ending in "b")
    "lead": [0],  # k > 0: each row takes the smoothed score of k rows later; "cW": a centred mean of width W
    "season": [""],  # "[p]K:w:r:P[:q]": a seasonal baseline (seasonal_excuse; tried for issue 12, not taken)
    # "V:Wmax[chlx][m<k>][d<n>][s|r<C>[+]|f<C>]": a linear window model's error as more residual columns (linear_window_error)
    "linwin": [""],
    # "[acn]w:h:r:P[:v][:a]": each residual less its seasonal autoregression (seasonal_autoregression);
    # "stage[:tolerance[:min_acf]]": the stage as built into the product and taken out (seasonal_residual.py)
    "seasres": [""],
    "shift": [0],  # k > 0: how far each feature's median moved over k rows, more residual columns (median_shift)
    "hold": [0],  # > 1: each score the largest smoothed score of its last `hold` rows; < 0: a decaying peak
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["cache", "sweep"])
    parser.add_argument("dataset", help="one data set for cache; comma-separated for sweep")
    parser.add_argument("--grid", action="append", default=[], help="KEY=V1,V2 for sweep (keys: " + ", ".join(DEFAULT_GRID) + ")")
    parser.add_argument("--config", required=True)
    parser.add_argument("--set", action="append", default=[], help="PARAM=VALUE: a Detector parameter")
    parser.add_argument("--datasets")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--calendar", action="store_true", help="cache: time-of-day and -week covariates beside the features")
    parser.add_argument(
        "--calendar-from", default="", help="sweep CONFIG:R: series with a daily autocorrelation >= R from CONFIG"
    )
    parser.add_argument("--verbose", action="store_true", help="sweep: one line per series")
    parser.add_argument("--vus", action="store_true", help="sweep: also TSB-AD's VUS-PR per series (slow)")
    args = parser.parse_args(argv)
    if args.command == "sweep":
        grid = dict(DEFAULT_GRID)
        for item in args.grid:
            key, values = item.split("=", 1)
            grid[key] = [_parse_value(v) for v in values.split(",")]
        sweep(args.dataset.split(","), args.config, grid, args.verbose, args.vus, args.calendar_from)
        return 0
    overrides = {k: _parse_value(v) for k, v in (item.split("=", 1) for item in args.set)}
    cache(args.dataset, args.config, overrides, datasets_root(args.datasets), args.quick, args.calendar)
    return 0


if __name__ == "__main__":
    sys.exit(main())
