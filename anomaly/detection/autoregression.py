"""A linear autoregressive baseline that the recurrent network learns on top of.

With ``autoregressive = p > 0`` a detector predicts each step as

    x_hat[t] = c + A_1 x[t-1] + ... + A_p x[t-p]  +  f(x[<t])

where the linear part (a vector autoregression, VAR(p), over all features) is fitted first by
ridge least squares on the training part, and the recurrent network ``f`` is then trained on
what the linear part leaves unexplained. This is LSTNet's "autoregressive highway" (Lai et al.,
SIGIR 2018), added for the reason it gives: the network's output goes through a Dense head fed
by tanh-bounded states, so its scale does not follow the input's. The linear part extrapolates
levels the training part never reached, in the proportion the training data supports: a smooth,
slowly drifting feature gets coefficients near 1 and is followed, while a noisy or quantised
feature gets small ones, so a shift of its level still leaves a residual. A fixed persistence
term (``residual``) follows every feature's level alike.

Pure numpy; the coefficients are saved as JSON with the detector.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Ridge penalty per fitted row, in scaled units (features have unit variance on the training
# part, so the lag matrix's Gram matrix / n has a diagonal near 1): light shrinkage that keeps
# the solve well conditioned when features are collinear or constant.
RIDGE = 1e-2
# Lags a detector may use: each adds D x D coefficients, fitted on the training part alone.
MAX_LAGS = 64


@dataclass(frozen=True)
class LinearAR:
    """A fitted VAR(p) on scaled values.

    Attributes
    ----------
    coef : ndarray of shape (p * D, D)
        Row block k (rows ``k*D`` to ``(k+1)*D``) multiplies ``x[t-1-k]``.
    intercept : ndarray of shape (D,)
    """

    coef: np.ndarray
    intercept: np.ndarray

    @property
    def n_features(self) -> int:
        return self.coef.shape[1]

    @property
    def lags(self) -> int:
        return self.coef.shape[0] // self.coef.shape[1]

    def predict(self, X: np.ndarray) -> np.ndarray:
        """One-step predictions along a series.

        Parameters
        ----------
        X : ndarray of shape (L, D)
            Scaled values; NaN marks a gap.

        Returns
        -------
        ndarray of shape (L, D)
            Row t is the prediction of ``X[t]`` from ``X[t-p:t]``; NaN where any of those rows
            is missing or before the series' start (the first p rows).
        """
        # Lag by lag rather than through the (L, p*D) lag matrix: no p-fold copy of the series.
        X = np.asarray(X, dtype=np.float64)
        width, length = self.n_features, len(X)
        out = np.full((length, width), np.nan)
        if length > self.lags:
            out[self.lags :] = self.intercept
            for k in range(1, self.lags + 1):
                out[self.lags :] += X[self.lags - k : length - k] @ self.coef[(k - 1) * width : k * width]
        return out

    def stream(self) -> ArStream:
        """Predictions for a series fed in chunks (see :class:`ArStream`)."""
        return ArStream(self)

    def to_dict(self) -> dict[str, list]:
        return {"coef": self.coef.tolist(), "intercept": self.intercept.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, list]) -> LinearAR:
        return cls(np.asarray(data["coef"], dtype=np.float64), np.asarray(data["intercept"], dtype=np.float64))


def lagged(X: np.ndarray, lags: int) -> np.ndarray:
    """The lag matrix of a series.

    Parameters
    ----------
    X : ndarray of shape (L, D)
    lags : int
        p >= 1.

    Returns
    -------
    ndarray of shape (L, p * D)
        Row t is ``[X[t-1], X[t-2], ..., X[t-p]]``; NaN where t - k < 0.
    """
    X = np.asarray(X, dtype=np.float64)
    length, width = X.shape
    out = np.full((length, lags * width), np.nan)
    for k in range(1, lags + 1):
        out[k:, (k - 1) * width : k * width] = X[: length - k]
    return out


def fit_linear_ar(X: np.ndarray, lags: int, ridge: float = RIDGE) -> LinearAR:
    """Fit a VAR(p) by ridge least squares (the intercept unpenalised).

    Parameters
    ----------
    X : ndarray of shape (L, D)
        Scaled training values; rows with a NaN (gaps) are neither targets nor lags.
    lags : int
        p >= 1.
    ridge : float
        Penalty per fitted row on the squared coefficients.

    Returns
    -------
    LinearAR

    Raises
    ------
    ValueError
        When fewer than p + 1 complete consecutive rows exist.
    """
    X = np.asarray(X, dtype=np.float64)
    design = lagged(X, lags)
    rows = ~np.isnan(design).any(axis=1) & ~np.isnan(X).any(axis=1)
    if not rows.any():
        raise ValueError(f"no run of {lags + 1} complete consecutive rows to fit the autoregression on")
    A, y = design[rows], X[rows]
    # Centring both sides makes the unpenalised intercept the difference of the means.
    a_mean, y_mean = A.mean(axis=0), y.mean(axis=0)
    A, y = A - a_mean, y - y_mean
    # Ridge as least squares on rows [A; sqrt(ridge n) I] against [y; 0]: the same solution as
    # the normal equations, and with ridge = 0 the minimum-norm one when lags are collinear.
    penalty = np.sqrt(ridge * len(A)) * np.eye(A.shape[1])
    coef = np.linalg.lstsq(np.vstack([A, penalty]), np.vstack([y, np.zeros((A.shape[1], y.shape[1]))]), rcond=None)[0]
    return LinearAR(coef=coef, intercept=y_mean - a_mean @ coef)


class ArStream:
    """A :class:`LinearAR`'s predictions for a series fed chunk by chunk.

    The last p rows are carried from one chunk to the next, so the predictions do not depend on
    where chunks end.
    """

    def __init__(self, model: LinearAR) -> None:
        self._model = model
        self._history = np.full((model.lags, model.n_features), np.nan)  # rows before the chunk

    def feed(self, X: np.ndarray) -> np.ndarray:
        """Predictions of the chunk's rows.

        Parameters
        ----------
        X : ndarray of shape (n, D)
            The next scaled rows; NaN marks a gap.

        Returns
        -------
        ndarray of shape (n, D)
            As :meth:`LinearAR.predict` over the whole series so far.
        """
        X = np.asarray(X, dtype=np.float64)
        p = self._model.lags
        extended = np.concatenate([self._history, X])
        predictions = self._model.predict(extended)[p:]
        self._history = extended[len(extended) - p :]
        return predictions
