"""A proposed product change, emulated for the benchmarks: a skip connection around the network.

The product's network (``anomaly.model.build_model``) ends in a Dense layer fed by
tanh-bounded recurrent states, so it cannot predict a level outside the range it has seen in
training: any slow drift beyond that range (SKAB's temperatures after an anomaly, NAB's level
changes) becomes a large, lasting residual and a false alarm. With a skip connection the network
predicts the change, ``x_hat[t+1] = x[t] + f(x[<=t])``: persistence costs nothing and the
recurrent part learns corrections (such as reversion towards a normal level), so a drifting
level is followed while a regime the network has not seen still leaves large residuals.

:func:`use_skip_network` swaps the network in for a run (it replaces
``anomaly.model.build_model``) and returns a ``Detector`` subclass that scores through Keras'
``predict`` in one pass, because the product's compiled recurrence (``anomaly.inference``) reads
only recurrent and Dense layers. Nothing under ``anomaly/`` is edited. Porting it means adding
the ``Add`` to ``build_model`` and to the compiled recurrence (``prediction += input``).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def build_skip_model(
    n_features: int, *, cell: str = "lstm", units: Any = (64, 64), dropout: float = 0.0, learning_rate: float = 1e-3,
) -> Any:
    """``anomaly.model.build_model`` with the prediction ``x[t] + Dense(h[t])``."""
    from anomaly import model as network

    keras = network._keras()
    layer_cls = {"simplernn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[cell]
    inputs = keras.Input(shape=(None, n_features), name="series")
    x = inputs
    for i, n_units in enumerate(units):
        x = layer_cls(n_units, return_sequences=True, dropout=dropout, name=f"{cell}_{i}")(x)
    change = keras.layers.Dense(n_features, name="next_change")(x)
    outputs = keras.layers.Add(name="next_step")([inputs, change])
    model = keras.Model(inputs, outputs, name=f"stacked_{cell}_skip")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss="mse")
    return model


def use_skip_network() -> type:
    """Make ``anomaly.Detector`` train the skip network; return the Detector class to use.

    Scoring runs in one Keras pass over the whole series (gap-free series only, as in the
    benchmarks) instead of the product's block-wise compiled recurrence; aggregation, smoothing
    and threshold are the product's.
    """
    from anomaly import model as network
    from anomaly.detector import Detector
    from anomaly.scoring import aggregate, normalise
    from anomaly.smoothing import ewma

    network.build_model = build_skip_model

    class SkipDetector(Detector):
        def _residuals(self, scaled: np.ndarray) -> np.ndarray:
            out = scaled - network.predict_sequence(self.model_, scaled)
            out[: self.warmup_steps + 1] = np.nan
            return out

        def _score_arrays(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            z = normalise(self._residuals(self.scaling_.transform(values)), self.residual_stats_)
            scores, _ = ewma(aggregate(z, self.aggregation), self.smoothing_span)
            return scores, z

    return SkipDetector
