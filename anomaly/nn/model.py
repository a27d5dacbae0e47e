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


def cell_layers() -> dict[str, Any]:
    """The Keras layer class of each cell name in :data:`CELLS`."""
    keras = _keras()
    return {"simplernn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM, "gru": keras.layers.GRU}


def _head_name(residual: bool) -> str:
    """The Dense head's layer name: it predicts the next change in a residual network, else the next step."""
    return "next_change" if residual else "next_step"


def build_model(
    n_features: int,
    *,
    cell: str = "lstm",
    units: Sequence[int] = (64, 64),
    dropout: float = 0.0,
    learning_rate: float = 1e-3,
    residual: bool = False,
    members: int = 1,
) -> keras.Model:
    """Build and compile the stacked many-to-many RNN (or K of them side by side).

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
    members : int
        K > 1: K such networks side by side in one, to be trained together (see
        :func:`_side_by_side`); it maps (N, T, D) to (N, T, K·D), and :func:`fold_members`
        makes the trained one an ordinary network averaging them.

    Returns
    -------
    keras.Model
        Maps (N, T, D) to (N, T, D) for any T; compiled with MSE loss.
    """
    keras = _keras()
    if members > 1:
        lone = [build_model(n_features, cell=cell, units=units, dropout=dropout, residual=residual) for _ in range(members)]
        return _side_by_side(lone, cell, units, dropout, learning_rate, residual)
    layer_cls = cell_layers()[cell]
    inputs = keras.Input(shape=(None, n_features), name="series")
    x = inputs
    for i, n_units in enumerate(units):
        x = layer_cls(n_units, return_sequences=True, dropout=dropout, name=f"{cell}_{i}")(x)
    # Dense on a 3-D tensor acts on the last axis: the same weights at every timestep.
    if residual:
        change = keras.layers.Dense(n_features, name=_head_name(residual))(x)
        outputs = keras.layers.Add(name="next_step")([inputs, change])
    else:
        outputs = keras.layers.Dense(n_features, name=_head_name(residual))(x)
    model = keras.Model(inputs, outputs, name=f"stacked_{cell}{'_residual' if residual else ''}")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss="mse")
    return model


def _side_by_side(
    members: list[keras.Model], cell: str, units: Sequence[int], dropout: float, learning_rate: float, residual: bool
) -> keras.Model:
    """K networks of :func:`build_model` side by side in one network, to be trained together.

    Each member keeps the weights it was built with (one after the other from the seeded
    generator, as a lone network starts) and becomes the k-th block of layers K times as wide:
    the first layer's input weights side by side (every member reads the same input), every
    other weight block-diagonal per gate, kept so by a constraint after every update, so no
    member's state reaches another's. The head has K·D outputs, member k's prediction at
    [k·D, (k+1)·D); trained on the targets repeated K times (``fit_model(..., members=K)``) the
    loss is the members' mean loss, so each member learns as it would alone, but from the same
    batches and with one early stop, in one pass of K·U-wide products instead of K passes.

    Parameters
    ----------
    members : list of K keras.Model
        Networks of :func:`build_model` with these ``cell``, ``units`` and ``residual``.
    cell, units, dropout, learning_rate, residual
        As :func:`build_model`, per member.

    Returns
    -------
    keras.Model
        Maps (N, T, D) to (N, T, K·D); compiled with MSE loss.
    """
    keras = _keras()
    count = len(members)
    n_features = int(members[0].inputs[0].shape[-1])
    layer_cls = cell_layers()[cell]

    class BlockMask(keras.constraints.Constraint):
        def __init__(self, mask: np.ndarray) -> None:
            self.mask = mask

        def __call__(self, w: Any) -> Any:
            return w * self.mask

    def block_mask(rows_each: int, columns_each: int, gates: int = 1) -> np.ndarray:
        # 1 where a row and a column belong to the same member; columns gate-major, as Keras lays them out.
        rows = np.repeat(np.arange(count), rows_each)
        columns = np.tile(np.repeat(np.arange(count), columns_each), gates)
        return (rows[:, None] == columns).astype(np.float32)

    inputs = keras.Input(shape=(None, n_features), name="series")
    x, previous, placed = inputs, None, []
    for i, width in enumerate(units):
        weights = [m.get_layer(f"{cell}_{i}").get_weights() for m in members]  # kernel, recurrent, bias
        gates = weights[0][0].shape[-1] // width
        kernel_mask = None if previous is None else block_mask(previous, width, gates)
        x = layer_cls(
            count * width,
            return_sequences=True,
            dropout=dropout,
            name=f"{cell}_{i}",
            kernel_constraint=None if kernel_mask is None else BlockMask(kernel_mask),
            recurrent_constraint=BlockMask(block_mask(width, width, gates)),
        )(x)
        kernel = np.zeros((n_features if previous is None else count * previous, gates, count, width), np.float32)
        recurrent = np.zeros((count * width, gates, count, width), np.float32)
        bias = np.zeros((*weights[0][2].shape[:-1], gates, count, width), np.float32)
        for k, (w_in, w_rec, b) in enumerate(weights):
            rows = slice(None) if previous is None else slice(k * previous, (k + 1) * previous)
            kernel[rows, :, k, :] = w_in.reshape(*w_in.shape[:-1], gates, width)
            recurrent[k * width : (k + 1) * width, :, k, :] = w_rec.reshape(width, gates, width)
            bias[..., :, k, :] = b.reshape(*b.shape[:-1], gates, width)
        placed.append((f"{cell}_{i}", [w.reshape(*w.shape[:-3], -1) for w in (kernel, recurrent, bias)]))
        previous = width
    head_name = _head_name(residual)
    heads = [m.get_layer(head_name).get_weights() for m in members]
    head_kernel = np.zeros((count * previous, count * n_features), np.float32)
    for k, (w, _) in enumerate(heads):
        head_kernel[k * previous : (k + 1) * previous, k * n_features : (k + 1) * n_features] = w
    head = keras.layers.Dense(count * n_features, name=head_name, kernel_constraint=BlockMask(block_mask(previous, n_features)))
    if residual:
        outputs = keras.layers.Add(name="next_step")([keras.layers.Concatenate()([inputs] * count), head(x)])
    else:
        outputs = head(x)
    model = keras.Model(inputs, outputs, name=f"members_{count}_{cell}{'_residual' if residual else ''}")
    for name, weights in placed:
        model.get_layer(name).set_weights(weights)
    model.get_layer(head_name).set_weights([head_kernel, np.concatenate([b for _, b in heads])])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss="mse")
    return model


def fold_members(trained: keras.Model, count: int, *, cell: str, units: Sequence[int], residual: bool) -> keras.Model:
    """The network of :func:`build_model` whose prediction is the mean of the members of ``trained``.

    Parameters
    ----------
    trained : keras.Model
        A network of ``build_model(..., members=count)``, (N, T, D) to (N, T, K·D).
    count : int
        K.
    cell, units, residual
        As given to :func:`build_model` (``units`` per member).

    Returns
    -------
    keras.Model
        Maps (N, T, D) to (N, T, D): layers of K·U units (the members' blocks, as trained) and a
        head that averages the members' heads, so the compiled pass, saving and serving see an
        ordinary network; its outputs equal the members' mean to float32 rounding.
    """
    n_features = int(trained.inputs[0].shape[-1])
    folded = build_model(n_features, cell=cell, units=[count * u for u in units], residual=residual)
    for i in range(len(units)):
        folded.get_layer(f"{cell}_{i}").set_weights(trained.get_layer(f"{cell}_{i}").get_weights())
    head = _head_name(residual)
    kernel, bias = trained.get_layer(head).get_weights()
    folded.get_layer(head).set_weights(
        [kernel.reshape(len(kernel), count, n_features).sum(axis=1) / count, bias.reshape(count, n_features).mean(axis=0)]
    )
    return folded


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and TensorFlow, and make TensorFlow's ops deterministic.

    Called at the start of training, never in a constructor.
    """
    keras = _keras()
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    # Multi-threaded reductions are otherwise free to sum in any order; on CPU the cost is small.
    tf.config.experimental.enable_op_determinism()


def _repeat_targets(targets: np.ndarray, members: int) -> np.ndarray:
    """Targets (N, T, D) repeated along the feature axis, (N, T, K·D), one copy per member; as
    given when K is 1 (no copy)."""
    return targets if members == 1 else np.tile(targets, (1, 1, members))


def _window_batches(
    inputs: np.ndarray,
    targets: np.ndarray,
    usable: np.ndarray,
    batch_size: int,
    seed: int,
    epochs: int,
    members: int = 1,
) -> tuple[Any, int]:
    """Shuffled training batches for every epoch, gathered straight from the strided window views.

    Only one batch of windows is materialised at a time, so a long series is never copied T times
    in memory. Only the windows listed in ``usable`` are served; targets are repeated ``members``
    times along the feature axis (one copy per member, see :func:`build_model`).

    Each epoch takes a new permutation of ``usable`` from ``numpy.random.default_rng(seed)``, cuts
    it into batches (each batch's rows in series order) and visits the batches in an order from
    Python's ``random``: the batches, and their order, that the Keras ``PyDataset`` this replaces
    gave (Keras drew one permutation before the first epoch and shuffled the batch order so), so
    a seeded run trains exactly as before. The batches come through ``tf.data`` with a
    ``numpy_function``, not a ``PyDataset``: Keras feeds a ``PyDataset`` through
    ``tf.data.Dataset.from_generator``, and once a process has run one, every later compiled
    forward pass in it ran 1.5-2.5x slower (measured on TensorFlow 2.21: fitting and then
    scoring in one process).

    Returns
    -------
    dataset : tf.data.Dataset
        ``epochs`` x ``steps`` batches, (inputs (B, T, D), targets (B, T, K·D)) with B <= ``batch_size``.
    steps : int
        Batches per epoch.
    """
    import random

    import tensorflow as tf

    steps = int(np.ceil(len(usable) / batch_size))
    rng = np.random.default_rng(seed)
    rng.permutation(usable)  # the PyDataset's first permutation, never trained on
    epoch_order: dict[int, tuple[np.ndarray, list[int]]] = {}

    def batch(step: np.int64) -> tuple[np.ndarray, np.ndarray]:
        epoch, position = divmod(int(step), steps)
        if epoch not in epoch_order:  # batches are made in step order, so epochs start in order
            epoch_order.clear()
            visit = list(range(steps))
            random.shuffle(visit)
            epoch_order[epoch] = (rng.permutation(usable), visit)
        order, visit = epoch_order[epoch]
        index = visit[position]
        rows = np.sort(order[index * batch_size : (index + 1) * batch_size])
        return inputs[rows], _repeat_targets(targets[rows], members)

    window, features = inputs.shape[1], targets.shape[2] * members

    def gathered(step: Any) -> tuple[Any, Any]:
        x, y = tf.numpy_function(batch, [step], (tf.as_dtype(inputs.dtype), tf.as_dtype(targets.dtype)), stateful=True)
        x.set_shape([None, window, inputs.shape[2]])
        y.set_shape([None, window, features])
        return x, y

    return tf.data.Dataset.range(epochs * steps).map(gathered), steps


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
    members: int = 1,
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
    members : int
        K for a network of ``build_model(..., members=K)`` (targets repeated K times; losses
        are the members' mean).

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
    batches, steps = _window_batches(
        inputs, targets, np.arange(len(inputs)) if usable is None else usable, batch_size, seed, epochs, members
    )
    history = model.fit(
        batches,
        steps_per_epoch=steps,
        shuffle=False,  # the batches come shuffled (see _window_batches)
        validation_data=(np.ascontiguousarray(val_inputs), np.ascontiguousarray(_repeat_targets(val_targets, members))),
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
