"""Thresholds fitted once on calibration scores, then streamed. Pure numpy.

The threshold is learned from held-back *normal* data only (never from test labels) and is
stored with the model, so every scoring call — whatever its chunk or batch size — flags with
the same cut (raised where the scored stream's level rises, see :mod:`anomaly.detection.level`).
A :class:`ThresholdConfig` names the method and its settings; its :class:`Thresholder` (one
subclass per method) fits the cut, applies the margin, and streams the per-row thresholds.

Three methods, each giving one float:

``"quantile"``
    The empirical quantile of the calibration scores.
``"pot"``
    Peaks over threshold with a Generalised Pareto tail fitted by Grimshaw's trick, as in SPOT
    (Siffer et al., KDD 2017, "Anomaly Detection in Streams with Extreme Value Theory"). It
    extrapolates past the largest calibration score, so a small risk (1e-4) needs no more
    calibration data than a 98% quantile does.
``"dynamic"``
    Telemanom's nonparametric threshold and pruning (Hundman et al., KDD 2018, "Detecting
    Spacecraft Anomalies Using LSTMs and Nonparametric Dynamic Thresholding"), fitted once on
    the whole calibration set instead of on a moving window of test errors (see
    :func:`dynamic_threshold` for every difference from the reference code).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import brentq

from anomaly.detection.events import true_runs
from anomaly.detection.level import WINDOW, LevelFollower, histogram

logger = logging.getLogger(__name__)

THRESHOLD_METHODS = ("quantile", "pot", "dynamic")

# Fewest peaks over the initial threshold a GPD is fitted on: two parameters from fewer
# points than this give a tail quantile that is mostly noise.
MIN_PEAKS = 10


@dataclass(frozen=True)
class ThresholdConfig:
    """How the threshold is fitted and applied: a detector's ``threshold_*`` parameters.

    Attributes
    ----------
    method : {"quantile", "pot", "dynamic"}
        Which :class:`Thresholder` fits it.
    quantile : float in (0, 1)
        ``"quantile"``: about ``1 - quantile`` of normal timesteps are expected above it.
    level, risk : float
        ``"pot"``: see :func:`pot_threshold`.
    min_decrease : float in (0, 1)
        ``"dynamic"``: telemanom's pruning ratio p, see :func:`dynamic_threshold`.
    margin : float > 0
        Widens (> 1) or narrows (< 1) the method's threshold about the median calibration
        score: ``median + margin * (threshold - median)``. Calibration data is scarce and
        cleaner than what will be scored; a margin of 2-3 keeps a 0.99 quantile's cut from
        flagging the ordinary drift that a short calibration part did not show. 1: unchanged.
    follow : bool
        Scoring raises the threshold with the level of the scored stream
        (:class:`anomaly.detection.level.LevelFollower`); False: the fitted threshold on every row.
    """

    method: str = "quantile"
    quantile: float = 0.99
    level: float = 0.98
    risk: float = 1e-4
    min_decrease: float = 0.13
    margin: float = 1.0
    follow: bool = True

    def thresholder(self, **fitted: Any) -> Thresholder:
        """The method's thresholder: to fit, or holding a saved one's ``fitted`` state."""
        if self.method not in _THRESHOLDERS:
            raise ValueError(f"unknown threshold method {self.method!r}; expected one of {THRESHOLD_METHODS}")
        return _THRESHOLDERS[self.method](self, **fitted)


@dataclass(frozen=True)
class FixedThreshold:
    """The streaming part of a thresholder that does not follow the level: the fitted cut."""

    threshold: float

    def feed(self, scores: np.ndarray) -> np.ndarray:
        """Thresholds of the next rows, shape (n,) -> (n,)."""
        return np.full(len(scores), self.threshold)


@dataclass
class Thresholder:
    """Fits a threshold on calibration scores (one subclass per method) and streams it.

    Attributes
    ----------
    config : ThresholdConfig
    threshold_ : float
        The fitted threshold, the margin applied: a step is flagged when its score is above it.
    calibration_counts_ : ndarray of shape (anomaly.detection.level.N_BINS,) or None
        :func:`anomaly.detection.level.histogram` of the calibration scores: where the level follower starts.
    window_ : int or None
        The level follower's window (None: the median of everything scored).
    """

    config: ThresholdConfig
    threshold_: float = float("nan")
    calibration_counts_: np.ndarray | None = None
    window_: int | None = WINDOW

    def fit(self, calibration_scores: np.ndarray) -> Thresholder:
        """Fit on the scores of held-back normal data, shape (L,); NaN entries are ignored."""
        scores = np.asarray(calibration_scores, dtype=np.float64).ravel()
        scores = scores[~np.isnan(scores)]
        if len(scores) == 0:
            raise ValueError("no calibration scores to fit a threshold on")
        margin = self.config.margin
        if not margin > 0:
            raise ValueError(f"margin must be > 0; got {margin}")
        threshold = self._cut(scores)
        if margin != 1.0:
            median = float(np.median(scores))
            threshold = float(median + margin * (threshold - median))
        self.threshold_ = threshold
        self.calibration_counts_ = histogram(scores)
        self.window_ = WINDOW  # saved with the model: a later default must not change it
        return self

    def _cut(self, scores: np.ndarray) -> float:
        """The method's threshold of NaN-free calibration scores (K,), before the margin."""
        raise NotImplementedError

    def stream(self) -> LevelFollower | FixedThreshold:
        """The per-row thresholds of a scored stream, fed chunk by chunk."""
        if self.config.follow:
            return LevelFollower(self.threshold_, self.calibration_counts_, self.window_)
        return FixedThreshold(self.threshold_)


class QuantileThreshold(Thresholder):
    """The empirical ``quantile`` of the calibration scores."""

    def _cut(self, scores: np.ndarray) -> float:
        if not 0.0 < self.config.quantile < 1.0:
            raise ValueError(f"quantile must be in (0, 1); got {self.config.quantile}")
        return float(np.quantile(scores, self.config.quantile))


class PotThreshold(Thresholder):
    """SPOT's peaks-over-threshold tail quantile (see :func:`pot_threshold`)."""

    def _cut(self, scores: np.ndarray) -> float:
        return pot_threshold(scores, level=self.config.level, risk=self.config.risk)


class DynamicThreshold(Thresholder):
    """Telemanom's nonparametric threshold with pruning (see :func:`dynamic_threshold`)."""

    def _cut(self, scores: np.ndarray) -> float:
        return dynamic_threshold(scores, min_decrease=self.config.min_decrease)


_THRESHOLDERS: dict[str, type[Thresholder]] = {
    "quantile": QuantileThreshold,
    "pot": PotThreshold,
    "dynamic": DynamicThreshold,
}


def apply_threshold(scores: np.ndarray, threshold: float | np.ndarray) -> np.ndarray:
    """Flag the timesteps whose score exceeds the threshold.

    Parameters
    ----------
    scores : ndarray of shape (L,)
    threshold : float or ndarray of shape (L,)
        One cut, or each row's (as a :class:`Thresholder`'s stream gives them).

    Returns
    -------
    flags : ndarray of shape (L,), bool
        ``scores > threshold``; NaN scores (unscored steps) are never flagged.
    """
    scores = np.asarray(scores, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.nan_to_num(scores, nan=-np.inf) > threshold


# --------------------------------------------------------------------------------------------
# Peaks over threshold (SPOT's initialisation step)
# --------------------------------------------------------------------------------------------


def pot_threshold(calibration_scores: np.ndarray, level: float = 0.98, risk: float = 1e-4) -> float:
    """SPOT's peaks-over-threshold quantile (Siffer et al. 2017, algorithm 1 "SPOT" init).

    The initial threshold ``t`` is the empirical ``level`` quantile of the ``n`` scores. The
    ``N_t`` excesses ``Y = X - t`` of the scores above it are fitted with a Generalised Pareto
    Distribution by :func:`fit_gpd_grimshaw`, and the threshold is the score exceeded with
    probability ``risk``::

        z_q = t + sigma / gamma * ((risk * n / N_t) ** -gamma - 1)      gamma != 0
        z_q = t - sigma * log(risk * n / N_t)                             gamma == 0

    Parameters
    ----------
    calibration_scores : ndarray of shape (L,)
        NaN entries are ignored.
    level : float in (0, 1)
        Quantile used as the initial threshold (the paper uses about 0.98).
    risk : float in (0, 1 - level)
        Probability of a normal score exceeding the returned threshold. It must be below the
        share of peaks ``N_t / n`` (about ``1 - level``): the GPD only describes the tail beyond
        ``t``, so a quantile below ``t`` cannot come from it.

    Returns
    -------
    threshold : float
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"pot_level must be in (0, 1); got {level}")
    if not 0.0 < risk < 1.0 - level:
        raise ValueError(f"risk must be in (0, 1 - pot_level) = (0, {1.0 - level:g}); got {risk}")
    scores = np.asarray(calibration_scores, dtype=np.float64).ravel()
    scores = scores[~np.isnan(scores)]
    n = len(scores)
    t = float(np.quantile(scores, level))
    excesses = scores[scores > t] - t
    n_peaks = len(excesses)
    if n_peaks < MIN_PEAKS:
        raise ValueError(
            f"pot needs at least {MIN_PEAKS} calibration scores above the initial threshold "
            f"(the {level:g} quantile, {t:.6g}); got {n_peaks} of {n}. Use more calibration data "
            "or a lower threshold_level (--threshold-level)."
        )
    r = risk * n / n_peaks
    if r >= 1.0:  # ties at t leave fewer peaks than 1 - level would suggest
        raise ValueError(
            f"risk {risk} is not below the share of calibration scores above the initial "
            f"threshold ({n_peaks}/{n}); lower threshold_risk or threshold_level (--threshold-risk, --threshold-level)"
        )
    gamma, sigma = fit_gpd_grimshaw(excesses)
    threshold = _gpd_tail_quantile(t, gamma, sigma, r)
    logger.debug("pot: t=%.6g, %d peaks of %d, gamma=%.4g, sigma=%.4g -> %.6g", t, n_peaks, n, gamma, sigma, threshold)
    return threshold


def _gpd_tail_quantile(t: float, gamma: float, sigma: float, r: float) -> float:
    """``t`` plus the GPD(gamma, sigma) excess exceeded with probability ``r`` (= q n / N_t)."""
    if gamma == 0.0:
        return float(t - sigma * np.log(r))
    return float(t + sigma / gamma * (r ** (-gamma) - 1.0))


def gpd_log_likelihood(excesses: np.ndarray, gamma: float, sigma: float) -> float:
    """Log-likelihood of a Generalised Pareto Distribution with location 0.

    Parameters
    ----------
    excesses : ndarray of shape (N,)
        Positive excesses over the initial threshold.
    gamma, sigma : float
        Shape and scale (``sigma > 0``). ``gamma == 0`` is the exponential distribution.

    Returns
    -------
    float
        ``-inf`` outside the support (``1 + gamma * y / sigma <= 0`` for some y).
    """
    y = np.asarray(excesses, dtype=np.float64)
    n = len(y)
    if sigma <= 0:
        return -np.inf
    if gamma == 0.0:
        # The exponential limit. (SPOT's reference code returns n * (1 + log mean) here, the
        # wrong sign; this is the true -n log(sigma) - sum(y) / sigma.)
        return float(-n * np.log(sigma) - y.sum() / sigma)
    s = 1.0 + gamma * y / sigma
    if np.any(s <= 0):
        return -np.inf
    return float(-n * np.log(sigma) - (1.0 + 1.0 / gamma) * np.log(s).sum())


def fit_gpd_grimshaw(excesses: np.ndarray, n_grid: int = 200) -> tuple[float, float]:
    """Maximum-likelihood GPD fit by Grimshaw's trick (as in Siffer et al. 2017, section 3.3).

    The likelihood's stationary points satisfy, with ``x = gamma / sigma``,
    ``u(x) v(x) = 1`` where ``u(x) = mean(1 / (1 + x Y))`` and ``v(x) = 1 + mean(log(1 + x Y))``;
    each root ``x*`` gives ``gamma = v(x*) - 1`` and ``sigma = gamma / x*``. Roots lie in
    ``(-1 / Y_max, 0)`` and ``(0, 2 (mean(Y) - Y_min) / Y_min**2]`` (Grimshaw 1993). Every root
    found there, plus the exponential fit (``gamma = 0, sigma = mean(Y)``), is a candidate;
    the one with the largest log-likelihood wins.

    The reference code (Siffer's ``spot.py``) finds roots by L-BFGS-B minimisation of
    ``w(x)**2`` from a few starting points; here they are bracketed by sign changes of
    ``w = u v - 1`` on a grid (geometric towards both ends of each interval, where roots
    crowd) and refined with Brent's method, which finds the same roots without depending on
    an optimiser's convergence.

    Parameters
    ----------
    excesses : ndarray of shape (N,)
        Positive excesses ``Y = X - t`` over the initial threshold.
    n_grid : int
        Grid points per interval used to bracket roots.

    Returns
    -------
    gamma, sigma : float
        Shape (``0.0`` exactly when the exponential fit wins) and scale.
    """
    y = np.asarray(excesses, dtype=np.float64).ravel()
    if len(y) == 0 or np.any(~np.isfinite(y)) or np.any(y <= 0):
        raise ValueError("excesses must be a non-empty array of finite positive values")
    y_min, y_max, y_mean = float(y.min()), float(y.max()), float(y.mean())

    def w(x: float) -> float:
        s = 1.0 + x * y
        return float(np.mean(1.0 / s) * (1.0 + np.mean(np.log(s))) - 1.0)

    # x = 0 is always a (trivial) root, so both intervals stop just short of it; the
    # exponential candidate stands for the fits that crowd towards it.
    tiny = 1e-8
    towards_ends = np.geomspace(tiny, 0.5, n_grid // 2)
    fractions = np.unique(np.concatenate([towards_ends, 1.0 - towards_ends]))
    left = -fractions / y_max  # from just below 0 to just above -1 / y_max
    upper = 2.0 * (y_mean - y_min) / y_min**2
    lower = tiny / y_mean
    right = np.geomspace(lower, upper, n_grid) if upper > lower else np.empty(0)

    roots = []
    for grid in (np.sort(left), right):
        if len(grid) < 2:
            continue
        values = np.array([w(x) for x in grid])
        for i in np.flatnonzero(np.sign(values[:-1]) * np.sign(values[1:]) < 0):
            roots.append(brentq(w, grid[i], grid[i + 1], xtol=1e-14 * abs(grid[i + 1]) + 1e-300))
        roots.extend(grid[values == 0.0])

    best = (0.0, y_mean, gpd_log_likelihood(y, 0.0, y_mean))
    for x in roots:
        gamma = float(np.mean(np.log1p(x * y)))
        sigma = gamma / x
        ll = gpd_log_likelihood(y, gamma, sigma)
        if ll > best[2]:
            best = (gamma, sigma, ll)
    return best[0], best[1]


# --------------------------------------------------------------------------------------------
# Telemanom's nonparametric dynamic threshold
# --------------------------------------------------------------------------------------------


def dynamic_threshold(
    calibration_scores: np.ndarray,
    *,
    z_min: float = 2.5,
    z_max: float = 12.0,
    z_step: float = 0.5,
    error_buffer: int = 100,
    min_decrease: float = 0.13,
    max_sequences: int = 5,
    max_anomalous_share: float = 0.5,
) -> float:
    """Telemanom's nonparametric threshold with its pruning step, fitted once.

    Follows ``ErrorWindow.find_epsilon``, ``compare_to_epsilon`` and ``prune_anoms`` of the
    reference code (khundman/telemanom, ``telemanom/errors.py``), with ``e`` the calibration
    scores, ``mu`` and ``sd`` their mean and (population) standard deviation:

    1. **Epsilon.** For ``z`` in ``arange(z_min, z_max, z_step)`` (2.5, 3, …, 11.5 — the
       reference's ``np.arange(2.5, 12.0, 0.5)``), ``eps = mu + z sd``. The anomalous indices
       ``i_anom`` are the steps with ``e >= eps`` widened by ``error_buffer - 1`` steps each
       side (the reference's ``np.arange(1, error_buffer)``); ``E_seq`` are the runs of
       ``i_anom`` longer than one step. The candidate's score is::

           (( mu - mean(e[e < eps])) / mu + (sd - std(e[e < eps])) / sd) / (len(E_seq)**2 + len(i_anom))

       The candidate is kept when its score is ``>=`` the best so far (so ties go to the larger
       ``z``), ``len(E_seq) <= max_sequences`` and ``len(i_anom) < max_anomalous_share * len(e)``.
       When no candidate qualifies, ``eps = mu + z_max sd`` (the reference's ``sd_lim``).
    2. **Sequences.** Steps with ``e >= eps`` are widened by ``error_buffer`` steps each side
       (``np.arange(1, error_buffer + 1)`` in the reference); runs longer than one step are the
       anomalous sequences, and ``non_anom_max`` is the largest score outside them.
    3. **Pruning.** The sequences' maxima, sorted descending, with ``non_anom_max`` appended,
       give decreases ``d_i = (x_i - x_{i+1}) / x_i``. Sequences after the last ``i`` with
       ``d_i >= min_decrease`` are dropped (all of them when there is no such ``i``).
    4. **One number.** The threshold must be a single float applied unchanged at scoring time,
       so it is set where it flags exactly the kept sequences' peaks:

       - no sequence dropped: ``eps``;
       - some dropped: the largest dropped sequence's maximum (kept maxima are strictly
         above it, because the decrease right after the last kept one is ``>= min_decrease``);
       - no sequence at all (nothing reaches ``eps``, or the scores are constant): the largest
         calibration score, so nothing seen in calibration would be flagged.

    Simplifications against the reference, all forced by fitting once on normal calibration
    data rather than re-fitting on each window of test errors: no moving window (the whole
    calibration set is one window); no inverted errors (a *drop* in prediction error is not
    an anomaly score here: higher score = more anomalous); no ``0.05 * inter_range`` /
    ``0.05 * sd(y)`` checks against the raw telemetry values (only scores are available); no
    warm-up skipping (NaN scores are removed before fitting, which joins the steps either
    side of a gap). Flags are ``score > threshold`` (the reference uses ``>=`` against eps).

    Parameters
    ----------
    calibration_scores : ndarray of shape (L,)
        Non-negative scores in time order (order matters: sequences are runs in time).
        NaN entries are removed.
    z_min, z_max, z_step : float
        The grid of ``z`` (``z_max`` excluded, and the fallback when no candidate qualifies).
    error_buffer : int >= 1
        Steps added each side of an above-eps step when forming sequences.
    min_decrease : float in (0, 1)
        Telemanom's ``p``: the smallest relative drop between successive sequence maxima that
        separates kept sequences from pruned ones.
    max_sequences : int >= 1
    max_anomalous_share : float in (0, 1]
        The reference's sanity checks on a candidate eps.

    Returns
    -------
    threshold : float
    """
    if not (np.isfinite(z_min) and np.isfinite(z_max) and z_step > 0 and z_min < z_max):
        raise ValueError(f"need finite z_min < z_max and z_step > 0; got z_min={z_min}, z_max={z_max}, z_step={z_step}")
    if not (isinstance(error_buffer, (int, np.integer)) and error_buffer >= 1):
        raise ValueError(f"error_buffer must be an int >= 1; got {error_buffer!r}")
    if not 0.0 < min_decrease < 1.0:
        raise ValueError(f"min_decrease must be in (0, 1); got {min_decrease}")
    if not (isinstance(max_sequences, (int, np.integer)) and max_sequences >= 1):
        raise ValueError(f"max_sequences must be an int >= 1; got {max_sequences!r}")
    if not 0.0 < max_anomalous_share <= 1.0:
        raise ValueError(f"max_anomalous_share must be in (0, 1]; got {max_anomalous_share}")
    e = np.asarray(calibration_scores, dtype=np.float64).ravel()
    e = e[~np.isnan(e)]
    if len(e) == 0:
        raise ValueError("no calibration scores to fit a threshold on")
    mean, sd = float(np.mean(e)), float(np.std(e))
    if sd == 0.0 or mean <= 0.0:
        # Relative decreases are undefined; nothing stands out from the rest anyway.
        logger.debug("dynamic: constant or non-positive scores; threshold = max score")
        return float(e.max())

    epsilon = _find_epsilon(
        e, mean, sd, np.arange(z_min, z_max, z_step), float(z_max), error_buffer, max_sequences, max_anomalous_share
    )
    above = e >= epsilon
    if not above.any():
        logger.debug("dynamic: nothing reaches eps=%.6g; threshold = max score", epsilon)
        return float(e.max())
    in_anom = _widen(above, error_buffer)
    starts, ends = true_runs(in_anom)
    keep = ends > starts  # the reference drops one-step "sequences"
    starts, ends = starts[keep], ends[keep]
    if len(starts) == 0:
        return float(e.max())
    # reduceat's slice runs from one start to the next; the steps between two runs are all
    # below eps while each run holds a step >= eps, so the slice's maximum is the run's.
    seq_max = np.maximum.reduceat(e, starts)
    outside = e[~in_anom]
    # With every step inside a sequence there is nothing to compare the smallest one with;
    # 0 keeps it (the first reference version started non_anom_max at 0 too).
    non_anom_max = float(outside.max()) if len(outside) else 0.0
    n_kept = _n_kept_after_pruning(seq_max, non_anom_max, min_decrease)
    ordered = np.sort(seq_max)[::-1]
    threshold = float(epsilon) if n_kept == len(ordered) else float(ordered[n_kept])
    logger.debug("dynamic: eps=%.6g, %d sequences, %d kept -> %.6g", epsilon, len(ordered), n_kept, threshold)
    return threshold


def _find_epsilon(
    e: np.ndarray,
    mean: float,
    sd: float,
    zs: np.ndarray,
    z_fallback: float,
    error_buffer: int,
    max_sequences: int,
    max_anomalous_share: float,
) -> float:
    """Telemanom's ``find_epsilon``: the eps = mean + z sd maximising its trade-off score."""
    best_score, epsilon = -np.inf, mean + z_fallback * sd
    for z in zs:
        eps = mean + z * sd
        above = e >= eps
        if not above.any():
            continue
        # np.arange(1, error_buffer) in find_epsilon: error_buffer - 1 steps each side.
        i_anom = _widen(above, error_buffer - 1)
        starts, ends = true_runs(i_anom)
        n_seq = int(np.sum(ends > starts))
        n_anom = int(i_anom.sum())
        below = e[e < eps]
        score = ((mean - below.mean()) / mean + (sd - below.std()) / sd) / (n_seq**2 + n_anom)
        if score >= best_score and n_seq <= max_sequences and n_anom < len(e) * max_anomalous_share:
            best_score, epsilon = score, eps
    return float(epsilon)


def _widen(mask: np.ndarray, radius: int) -> np.ndarray:
    """Steps within ``radius`` of a True step of ``mask`` (a 1-D binary dilation), shape (L,)."""
    if radius <= 0:
        return mask.copy()
    counts = np.concatenate([[0], np.cumsum(mask, dtype=np.int64)])
    idx = np.arange(len(mask))
    hi = np.minimum(idx + radius + 1, len(mask))
    lo = np.maximum(idx - radius, 0)
    return (counts[hi] - counts[lo]) > 0


def _n_kept_after_pruning(seq_max: np.ndarray, non_anom_max: float, min_decrease: float) -> int:
    """Telemanom's ``prune_anoms``: how many of the largest sequences survive.

    Parameters
    ----------
    seq_max : ndarray of shape (S,)
        Maximum score of each anomalous sequence.
    non_anom_max : float
        Largest score outside every sequence.
    min_decrease : float

    Returns
    -------
    n_kept : int
        The sequences with the ``n_kept`` largest maxima are kept.
    """
    x = np.append(np.sort(np.asarray(seq_max, dtype=np.float64))[::-1], non_anom_max)
    decreases = (x[:-1] - x[1:]) / x[:-1]
    big = np.flatnonzero(decreases >= min_decrease)
    # The reference resets its removal list at each big decrease, so everything after the
    # last big one is removed, and everything when there is none.
    return int(big[-1]) + 1 if len(big) else 0
