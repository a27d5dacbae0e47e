"""The stacked recurrent network: build, train, and predict over a long sequence.

The only module that imports TensorFlow/Keras, and only inside functions, so that importing
`anomaly` (or running ``anomaly --help``) stays fast.

The network is many-to-many: every recurrent layer returns its whole sequence and a Dense head
is applied at every timestep, so for an input of shape (N, T, D) it returns (N, T, D) where
output step t is the prediction of input step t + 1 made from steps <= t. Because nothing in it
depends on T, the same network scores a series of any length in one pass.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import keras

logger = logging.getLogger(__name__)

CELLS = ("simplernn", "lstm", "gru")

EpochCallback = Callable[[int, dict[str, float]], None]
# (epoch from 1, batch from 1, batches per epoch or None, the running training loss)
BatchCallback = Callable[[int, int, "int | None", float], None]


def _keras() -> Any:
    """Import Keras with TensorFlow's start-up noise silenced."""
    # Must be set before TensorFlow is first imported; respect a user's own setting.
    # Level 3: TF 2.21 also logs a harmless C++ "ERROR" (use_unbounded_threadpool) on every
    # tf.data pipeline; real failures still arrive as Python exceptions.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "keras" not in sys.modules:
        with _known_noise_dropped():
            import keras
    import keras

    # Keras' progress bars would otherwise leak into logs and pyfunc predictions.
    keras.config.disable_interactive_logging()
    return keras


# Lines TensorFlow 2.21's C++ start-up writes to the stderr file descriptor whatever
# TF_CPP_MIN_LOG_LEVEL says (absl logs before its own initialisation): noise on every command.
_STARTUP_NOISE = ("All log messages before absl::InitializeLog() is called", "oneDNN custom operations are on")


@contextlib.contextmanager
def _known_noise_dropped() -> Iterator[None]:
    """Capture file descriptor 2 while TensorFlow loads; pass on every line but the known noise."""
    try:
        saved = os.dup(2)
    except OSError:  # no stderr descriptor: nothing to protect
        yield
        return
    with tempfile.TemporaryFile() as captured:
        sys.stderr.flush()
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode(errors="replace").splitlines(keepends=True):
                if not any(noise in line for noise in _STARTUP_NOISE):
                    sys.stderr.write(line)


def use_threads(threads: int) -> None:
    """Run TensorFlow's ops and the compiled forward pass on ``threads`` threads.

    For a worker process of a fleet, before TensorFlow runs its first op: workers that share the
    cores each take their part of them instead of all of them. Results do not change (measured:
    the same scores with 1 and 2 threads, op determinism on).
    """
    os.environ["ANOMALY_FORWARD_THREADS"] = str(threads)
    _keras()
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)


def build_model(
    n_features: int,
    *,
    cell: str = "lstm",
    units: Sequence[int] = (64, 64),
    dropout: float = 0.0,
    learning_rate: float = 1e-3,
    residual: bool = False,
) -> keras.Model:
    """Build and compile the stacked many-to-many RNN.

    Parameters
    ----------
    n_features : int
        D, features per timestep (input and output).
    cell : {"simplernn", "lstm", "gru"}
    units : sequence of int
        Units of each stacked recurrent layer, first to last.
    dropout : float in [0, 1)
        Dropout on each recurrent layer's inputs (training only).
    learning_rate : float
        Adam's learning rate.
    residual : bool
        Predict the change from the current step: ``x_hat[t+1] = x[t] + Dense(h[t])``. A level
        the series drifts to is then followed (persistence costs nothing), while a pattern the
        network has not learned still leaves large residuals. Without it the Dense head, fed by
        tanh-bounded states, cannot predict levels outside those seen in training.

    Returns
    -------
    keras.Model
        Maps (N, T, D) to (N, T, D) for any T; compiled with MSE loss.
    """
    keras = _keras()
    layer_cls = {"simplernn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[cell]
    inputs = keras.Input(shape=(None, n_features), name="series")
    x = inputs
    for i, n_units in enumerate(units):
        x = layer_cls(n_units, return_sequences=True, dropout=dropout, name=f"{cell}_{i}")(x)
    # Dense on a 3-D tensor acts on the last axis: the same weights at every timestep.
    if residual:
        change = keras.layers.Dense(n_features, name="next_change")(x)
        outputs = keras.layers.Add(name="next_step")([inputs, change])
    else:
        outputs = keras.layers.Dense(n_features, name="next_step")(x)
    model = keras.Model(inputs, outputs, name=f"stacked_{cell}{'_residual' if residual else ''}")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss="mse")
    return model


def merge_members(members: Sequence[keras.Model], *, cell: str, units: Sequence[int], residual: bool) -> keras.Model:
    """One network whose next-step prediction is the mean of the members' predictions.

    Member k's recurrent layers become the k-th block of layers K times as wide: the first
    layer's input weights side by side (every member reads the same input), every other weight
    block-diagonal per gate, so no member's state reaches another's; the head averages the
    members' heads. The result is an ordinary network of :func:`build_model` (the compiled pass,
    saving and serving see nothing new), whose outputs equal the members' mean to float32
    rounding.

    Parameters
    ----------
    members : sequence of K keras.Model
        Networks of :func:`build_model` with the same ``cell``, ``units`` and ``residual``.
    cell : {"simplernn", "lstm", "gru"}
    units : sequence of int
        Each member's units per layer, U_1 … U_n; the merged network has K·U_i.
    residual : bool

    Returns
    -------
    keras.Model
        Maps (N, T, D) to (N, T, D), compiled as :func:`build_model` compiles it.
    """
    if len(members) == 1:
        return members[0]
    count = len(members)
    n_features = int(members[0].inputs[0].shape[-1])
    merged = build_model(n_features, cell=cell, units=[count * u for u in units], residual=residual)
    previous = None  # the layer below's units per member (None: the shared input)
    for i, width in enumerate(units):
        name = f"{cell}_{i}"
        parts = [m.get_layer(name).get_weights() for m in members]  # kernel, recurrent, bias
        gates = parts[0][0].shape[-1] // width
        kernel, recurrent, bias = (
            np.zeros_like(w).reshape(*w.shape[:-1], gates, count, width) for w in merged.get_layer(name).get_weights()
        )
        for k, (w_in, w_rec, b) in enumerate(parts):
            rows = slice(None) if previous is None else slice(k * previous, (k + 1) * previous)
            kernel[rows, :, k, :] = w_in.reshape(*w_in.shape[:-1], gates, width)
            recurrent[k * width : (k + 1) * width, :, k, :] = w_rec.reshape(width, gates, width)
            bias[..., :, k, :] = b.reshape(*b.shape[:-1], gates, width)
        merged.get_layer(name).set_weights([w.reshape(*w.shape[:-3], -1) for w in (kernel, recurrent, bias)])
        previous = width
    head = "next_change" if residual else "next_step"
    heads = [m.get_layer(head).get_weights() for m in members]
    merged.get_layer(head).set_weights([np.concatenate([w for w, _ in heads]) / count, np.mean([b for _, b in heads], axis=0)])
    return merged


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and TensorFlow, and make TensorFlow's ops deterministic.

    Called at the start of training, never in a constructor.
    """
    keras = _keras()
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    # Multi-threaded reductions are otherwise free to sum in any order; on CPU the cost is small.
    tf.config.experimental.enable_op_determinism()


def _window_batches(inputs: np.ndarray, targets: np.ndarray, usable: np.ndarray, batch_size: int, seed: int) -> Any:
    """A Keras PyDataset serving shuffled batches straight from the strided window views.

    Only one batch of windows is materialised at a time, so a long series is never copied
    T times in memory. Only the windows listed in ``usable`` are served.
    """
    keras = _keras()

    class WindowBatches(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__()
            self._rng = np.random.default_rng(seed)
            self._order = self._rng.permutation(usable)

        def __len__(self) -> int:
            return int(np.ceil(len(usable) / batch_size))

        def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
            rows = np.sort(self._order[index * batch_size : (index + 1) * batch_size])
            return inputs[rows], targets[rows]

        def on_epoch_end(self) -> None:
            self._order = self._rng.permutation(usable)

    return WindowBatches()


def fit_model(
    model: keras.Model,
    inputs: np.ndarray,
    targets: np.ndarray,
    *,
    validation: tuple[np.ndarray, np.ndarray],
    epochs: int,
    batch_size: int,
    patience: int,
    seed: int,
    usable: np.ndarray | None = None,
    on_epoch_end: EpochCallback | None = None,
    on_batch_end: BatchCallback | None = None,
) -> dict[str, list[float]]:
    """Train with early stopping on the held-back windows, keeping the best weights.

    Parameters
    ----------
    model : keras.Model
    inputs, targets : ndarray of shape (N, T, D)
        Training windows and their next-step targets (views are fine; batches are copied).
    validation : (ndarray of shape (M, T, D), ndarray of shape (M, T, D))
        Held-back windows for early stopping.
    epochs, batch_size, patience, seed : int
    usable : ndarray of shape (K,), int, optional
        Indices of the training windows to learn from (e.g. those without missing values);
        default all N.
    on_epoch_end : callable(epoch, logs), optional
        Called after each epoch with ``{"loss", "val_loss", "seconds"}``; epochs count from 1.
    on_batch_end : callable(epoch, batch, batches, loss), optional
        Called after each training batch (counted from 1) with the epoch's running loss.

    Returns
    -------
    history : dict of str to list of float
        ``loss`` and ``val_loss`` per epoch run.
    """
    keras = _keras()

    class Report(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self._start = time.perf_counter()
            self._epoch = epoch + 1

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            if on_batch_end is not None:
                loss = (logs or {}).get("loss", np.nan)
                on_batch_end(self._epoch, batch + 1, self.params.get("steps"), float(loss))

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            logs = {k: float(v) for k, v in (logs or {}).items()}
            logs["seconds"] = time.perf_counter() - self._start
            logger.info(
                "epoch %d/%d loss %.5f val_loss %.5f", epoch + 1, epochs, logs.get("loss", np.nan), logs.get("val_loss", np.nan)
            )
            if on_epoch_end is not None:
                on_epoch_end(epoch + 1, logs)

    callbacks = [
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True),
        Report(),
    ]
    val_inputs, val_targets = validation
    history = model.fit(
        _window_batches(inputs, targets, np.arange(len(inputs)) if usable is None else usable, batch_size, seed),
        validation_data=(np.ascontiguousarray(val_inputs), np.ascontiguousarray(val_targets)),
        validation_batch_size=batch_size,
        epochs=epochs,
        callbacks=callbacks,
        verbose=0,
    )
    return {k: [float(v) for v in vals] for k, vals in history.history.items() if k in ("loss", "val_loss")}


def predict_sequence(model: keras.Model, X: np.ndarray) -> np.ndarray:
    """Next-step predictions along a whole series, in one recurrent pass.

    Parameters
    ----------
    model : keras.Model
        A many-to-many next-step predictor from :func:`build_model`.
    X : ndarray of shape (L, D), float32
        The scaled series.

    Returns
    -------
    X_hat : ndarray of shape (L, D), float64
        ``X_hat[t]`` is the prediction of ``X[t]`` from ``X[:t]``; ``X_hat[0]`` is NaN (nothing
        precedes it). Each timestep is processed once: O(L) work.
    """
    X = np.asarray(X, dtype=np.float32)
    X_hat = np.full(X.shape, np.nan)
    if len(X) < 2:
        return X_hat
    predictions = model.predict(X[None, :-1], batch_size=1, verbose=0)
    X_hat[1:] = predictions[0]
    return X_hat


def save_model(model: keras.Model, path: Path) -> None:
    """Save in Keras' native ``.keras`` format (no pickle)."""
    model.save(path)


def load_model(path: Path) -> keras.Model:
    """Load a ``.keras`` file with ``safe_mode=True``: no arbitrary code from the file runs."""
    keras = _keras()
    return keras.saving.load_model(path, compile=False, safe_mode=True)
