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

# Points per line beyond which a series is thinned for drawing.
_MAX_POINTS = 5000
_FLAG_COLOR = "tab:red"


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


def _shade(ax: object, index: pd.Index, events: Sequence[tuple[int, int]]) -> None:
    for first, last in events:
        ax.axvspan(index[first], index[last], color=_FLAG_COLOR, alpha=0.25, lw=0)


def scoring_figure(
    frame: pd.DataFrame, results: pd.DataFrame, events: Sequence[tuple[int, int]], max_features: int = 6
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
    max_features : int
        With more features, the ones with the largest share of flagged error are drawn.
    """
    features = list(frame.columns)
    if len(features) > max_features:
        z = results[[f"z_{f}" for f in features]].to_numpy()
        flagged = results["is_anomaly"].to_numpy()
        weight = np.nansum(np.square(z[flagged]), axis=0) if flagged.any() else np.nanmean(np.square(z), axis=0)
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
    score_ax.axhline(float(results["threshold"].iloc[0]), color=_FLAG_COLOR, ls="--", label="threshold")
    _shade(score_ax, index, events)
    score_ax.set_ylabel("score", rotation=0, ha="right", va="center")
    score_ax.legend(loc="upper right")
    score_ax.set_xlabel(index.name or "step")
    flagged = int(results["is_anomaly"].sum())
    fig.suptitle(f"{len(frame)} steps, {flagged} flagged in {len(events)} stretches (shaded)")
    return fig
