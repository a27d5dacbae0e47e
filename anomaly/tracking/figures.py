"""Figures logged with runs, so the MLflow UI shows what was learned and what was flagged.

Figures are built with ``matplotlib.figure.Figure`` directly (no pyplot, no global state, no
display needed). Long series are thinned for drawing, but flagged stretches are drawn as spans
from the full-resolution flags, so thinning never hides a flag.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from anomaly.detection.scoring import feature_shares, find_events

# Points per line beyond which a series is thinned for drawing.
_MAX_POINTS = 5000
_FLAG_COLOR = "tab:red"
_LABEL_COLOR = "tab:green"


def _thin(n: int) -> slice:
    return slice(None, None, max(1, int(np.ceil(n / _MAX_POINTS))))


def training_figure(history: dict[str, list[float]], calibration_scores: np.ndarray, threshold: float) -> Figure:
    """Loss curves and the calibration score distribution with the threshold.

    Parameters
    ----------
    history : dict with ``loss`` and ``val_loss``, lists of length E
    calibration_scores : ndarray of shape (K,)
        Scores of the held-back calibration part (NaN ignored).
    threshold : float
    """
    fig = Figure(figsize=(11, 4), layout="constrained")
    ax_loss, ax_hist = fig.subplots(1, 2)
    epochs = np.arange(1, len(history["loss"]) + 1)
    ax_loss.plot(epochs, history["loss"], marker="o", ms=3, label="loss (training windows)")
    ax_loss.plot(epochs, history["val_loss"], marker="o", ms=3, label="val_loss (held back)")
    best = int(np.argmin(history["val_loss"]))
    ax_loss.axvline(best + 1, color="grey", ls=":", label=f"best epoch {best + 1}")
    ax_loss.set(title="Training", xlabel="epoch", ylabel="MSE (scaled units)")
    ax_loss.legend()
    scores = np.asarray(calibration_scores, dtype=float)
    scores = scores[~np.isnan(scores)]
    ax_hist.hist(scores, bins=60, color="tab:blue", alpha=0.8)
    ax_hist.axvline(threshold, color=_FLAG_COLOR, lw=2, label=f"threshold {threshold:.3f}")
    ax_hist.set(title=f"Calibration scores ({len(scores)} held-back steps)", xlabel="score", ylabel="steps")
    ax_hist.legend()
    return fig


def _span(index: pd.Index, first: int, last: int) -> tuple[object, object]:
    """Drawing extent of steps ``first..last``: through the start of the next step, so that a
    one-step stretch has a width too."""
    if last + 1 < len(index):
        return index[first], index[last + 1]
    step = index[last] - index[last - 1] if len(index) > 1 else 1
    return index[first], index[last] + step


# Most shaded spans per panel: matplotlib draws each as its own artist, and thousands of them (a
# long series with many short flags) took over 30 s to draw. Spans closer than a few pixels are
# merged until at most this many remain; on the page they look the same.
_MAX_SPANS = 300


def _for_drawing(events: Sequence[tuple[int, int]], n: int) -> list[tuple[int, int]]:
    """Merge spans whose gaps are too small to see, until at most ``_MAX_SPANS`` remain."""
    spans = list(events)
    tolerance = max(1, n // 2000)  # about a pixel at the figure's width
    while len(spans) > _MAX_SPANS:
        merged = [spans[0]]
        for first, last in spans[1:]:
            if first - merged[-1][1] - 1 <= tolerance:
                merged[-1] = (merged[-1][0], last)
            else:
                merged.append((first, last))
        spans, tolerance = merged, tolerance * 2
    return spans


def _shade(ax: object, index: pd.Index, events: Sequence[tuple[int, int]]) -> None:
    for first, last in _for_drawing(events, len(index)):
        ax.axvspan(*_span(index, first, last), color=_FLAG_COLOR, alpha=0.25, lw=0)


def scoring_figure(
    frame: pd.DataFrame,
    results: pd.DataFrame,
    events: Sequence[tuple[int, int]],
    labels: pd.Series | None = None,
    max_features: int = 6,
    flagged: int | None = None,
    total_rows: int | None = None,
) -> Figure:
    """The series with flagged stretches shaded, and the score against the threshold.

    Parameters
    ----------
    frame : DataFrame of shape (L, D)
        The scored features, in their own units.
    results : DataFrame of shape (L, 3 + D)
        Output of :meth:`Detector.score`, same index.
    events : sequence of (first, last)
        Flagged stretches as inclusive positions.
    labels : Series of shape (L,), bool, optional
        Known anomalies: drawn as a band under the score, beside the flags.
    max_features : int
        With more features, the ones with the largest share of flagged error are drawn.
    flagged, total_rows : int, optional
        Counts for the title when ``frame`` and ``results`` are already thinned (default:
        counted from them).
    """
    features = list(frame.columns)
    if len(features) > max_features:
        z = results[[f"z_{f}" for f in features]].to_numpy()
        flag_rows = results["is_anomaly"].to_numpy(dtype=bool)
        weight = np.nansum(np.square(z[flag_rows]), axis=0) if flag_rows.any() else np.nanmean(np.square(z), axis=0)
        features = [features[j] for j in np.argsort(-weight)[:max_features]]
    fig = Figure(figsize=(12, 1.6 * (len(features) + 1) + 1), layout="constrained")
    axes = fig.subplots(len(features) + 1, 1, sharex=True)
    step = _thin(len(frame))
    index = frame.index
    for ax, name in zip(axes, features):
        ax.plot(index[step], frame[name].to_numpy()[step], lw=0.7)
        _shade(ax, index, events)
        ax.set_ylabel(name, rotation=0, ha="right", va="center")
    score_ax = axes[-1]
    score_ax.plot(index[step], results["score"].to_numpy()[step], lw=0.7, color="black")
    # The threshold is the fitted one, raised where the scored stream's level rose (anomaly.detection.level).
    score_ax.plot(
        index[step],
        results["threshold"].to_numpy(dtype=float)[step],
        color=_FLAG_COLOR,
        ls="--",
        drawstyle="steps-post",
        label="threshold",
    )
    _shade(score_ax, index, events)
    score_ax.set_ylabel("score", rotation=0, ha="right", va="center")
    if labels is not None:
        # Labelled ranges as a band along the bottom of the score panel, so flags and labels can
        # be compared at a glance without hiding each other.
        for first, last in _for_drawing(find_events(labels.to_numpy(dtype=bool)), len(index)):
            score_ax.axvspan(*_span(index, first, last), ymin=0, ymax=0.08, color=_LABEL_COLOR, lw=0)
        score_ax.plot([], [], color=_LABEL_COLOR, lw=6, label="labelled anomaly")
    score_ax.legend(loc="upper right")
    score_ax.set_xlabel(index.name or "step")
    flagged = int(results["is_anomaly"].sum()) if flagged is None else flagged
    total_rows = len(frame) if total_rows is None else total_rows
    stretches = "1 stretch" if len(events) == 1 else f"{len(events)} stretches"
    fig.suptitle(f"{total_rows} steps, {flagged} flagged in {stretches} (shaded)")
    return fig


def events_figure(
    frame: pd.DataFrame, results: pd.DataFrame, events: Sequence[tuple[int, int]], top_events: int = 4, top_features: int = 3
) -> Figure | None:
    """Close-ups of the strongest flagged stretches and the features that drove them.

    Parameters
    ----------
    frame, results, events
        As for :func:`scoring_figure`.
    top_events, top_features : int
        How many stretches (highest peak score first) and features per stretch to draw.

    Returns
    -------
    Figure or None
        None when nothing was flagged.
    """
    if not events:
        return None
    scores = results["score"].to_numpy()
    strongest = sorted(events, key=lambda e: -np.nanmax(scores[e[0] : e[1] + 1]))[:top_events]
    fig = Figure(figsize=(12, 2.8 * len(strongest)), layout="constrained")
    axes = np.atleast_1d(fig.subplots(len(strongest), 1))
    names = list(frame.columns)
    z = results[[f"z_{n}" for n in names]].to_numpy()
    for ax, (first, last) in zip(axes, sorted(strongest)):
        shares = feature_shares(z[first : last + 1])
        chosen = np.argsort(-shares)[:top_features]
        margin = max(3 * (last - first + 1), 24)
        lo, hi = max(0, first - margin), min(len(frame), last + margin + 1)
        window = frame.iloc[lo:hi]
        for j in chosen:
            values = window.iloc[:, j].to_numpy(dtype=float)
            spread = np.nanstd(values) or 1.0
            ax.plot(
                window.index, (values - np.nanmean(values)) / spread, lw=1, label=f"{names[j]} ({shares[j]:.0%} of the error)"
            )
        ax.axvspan(*_span(frame.index, first, last), color=_FLAG_COLOR, alpha=0.2, lw=0, label="flagged")
        peak = first + int(np.nanargmax(scores[first : last + 1]))
        ax.set_title(
            f"{frame.index[first]} to {frame.index[last]} ({last - first + 1} steps), peak score {scores[peak]:.2f}", fontsize=10
        )
        ax.set_ylabel("standardised\nover the window")
        ax.legend(loc="upper left", fontsize=8)
    axes[-1].set_xlabel(frame.index.name or "step")
    fig.suptitle(
        "The strongest flagged stretch and its top features"
        if len(strongest) == 1
        else f"The {len(strongest)} strongest flagged stretches and their top features"
    )
    return fig


def fleet_figure(table: pd.DataFrame, columns: Sequence[tuple[str, str]], title: str, limit: int = 40) -> Figure:
    """One bar chart per column of a fleet's per-series table, series side by side.

    Parameters
    ----------
    table : DataFrame of shape (S, C)
        One row per series, with a ``series`` column; drawn in its order, the first ``limit``.
    columns : sequence of (column, axis label)
    title : str
    limit : int, default 40
        Series drawn at most (the table artifact holds them all).
    """
    shown = table.iloc[:limit]
    fig = Figure(figsize=(max(6.0, 0.25 * len(shown) + 3), 2.2 * len(columns) + 0.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(len(columns), 1, sharex=True))
    positions = np.arange(len(shown))
    for ax, (column, label) in zip(axes, columns):
        ax.bar(positions, shown[column].to_numpy(dtype=float), color="tab:blue")
        ax.set_ylabel(label)
    axes[-1].set_xticks(positions, shown["series"].astype(str), rotation=90, fontsize=7)
    more = f" (first {limit} of {len(table)})" if len(table) > limit else ""
    fig.suptitle(f"{title}{more}")
    return fig
