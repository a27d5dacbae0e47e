"""A compiled forward pass of the trained network with explicit, carried recurrent state.

Keras runs the recurrent layers of :mod:`anomaly.nn.model` well for training, but scoring a long
series needs three things ``model.predict`` does not give: the state must be passed in and
taken out (so a stream can be scored chunk by chunk), the state must be reset at chosen steps
(after a gap in the data), and many independent stretches of the series must run side by side
(one recurrence over a single stretch of batch size 1 is dominated by per-step overhead, not by
arithmetic).

:class:`Recurrence` reads the weights out of the Keras model and runs the same arithmetic in one
``tf.function``: for each layer, the input projection of every step at once (one large matrix
product), then a loop over time that only does the recurrent product and the gates, then the
Dense head at every step at once. Its outputs match ``model.predict`` to float32 rounding (see
``tests/test_streaming.py``).

Only this module and :mod:`anomaly.nn.model` import TensorFlow, and only when first used.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from anomaly.nn.model import CELLS, _keras, cell_layers

if TYPE_CHECKING:
    import keras

logger = logging.getLogger(__name__)

# Batches of at least this many steps (B × L) run the XLA-compiled pass, smaller ones the plain
# graph: below it the compile time would not pay for itself.
XLA_MIN_STEPS = 32768


@dataclass(frozen=True)
class _Layer:
    """Weights of one recurrent layer, in Keras' layout.

    ``kernel`` is (D_in, G·U), ``recurrent`` (U, G·U) and ``bias`` (G·U,) — or (2, G·U) for a GRU
    with ``reset_after`` — with G = 4 gates for an LSTM (i, f, c, o), 3 for a GRU (z, r, h) and 1
    for a SimpleRNN.
    """

    kernel: np.ndarray
    recurrent: np.ndarray
    bias: np.ndarray

    @property
    def units(self) -> int:
        return self.recurrent.shape[0]


def _layers_of(model: keras.Model, cell: str) -> tuple[list[_Layer], np.ndarray, np.ndarray, bool]:
    """The recurrent layers' weights, the Dense head's (kernel (U, D), bias (D,)), and whether the
    head's output is added to the input (a residual network, see :func:`anomaly.nn.model.build_model`)."""
    keras = _keras()
    kinds = cell_layers()
    layers: list[_Layer] = []
    head = None
    residual = False
    for layer in model.layers:
        if isinstance(layer, keras.layers.Add) and head is not None and not residual:
            residual = True
            continue
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, kinds[cell]):
            if head is not None:
                raise ValueError("a recurrent layer after the Dense head is not supported")
            config = layer.get_config()
            # Guard the arithmetic below: it hard-codes Keras' default activations.
            if config.get("activation") != "tanh" or config.get("recurrent_activation", "sigmoid") != "sigmoid":
                raise ValueError(f"layer {layer.name}: only tanh/sigmoid activations are supported")
            if cell == "gru" and not config.get("reset_after", True):
                raise ValueError(f"layer {layer.name}: only GRUs with reset_after=True are supported")
            if not config.get("use_bias", True):
                raise ValueError(f"layer {layer.name}: recurrent layers without bias are not supported")
            kernel, recurrent, bias = (np.asarray(w, dtype=np.float32) for w in layer.get_weights())
            layers.append(_Layer(kernel, recurrent, bias))
        elif isinstance(layer, keras.layers.Dense) and head is None:
            kernel, bias = (np.asarray(w, dtype=np.float32) for w in layer.get_weights())
            head = (kernel, bias)
        else:
            raise ValueError(f"unexpected layer {layer.name!r} ({type(layer).__name__}) in the network")
    if not layers or head is None:
        raise ValueError("the network must be stacked recurrent layers followed by a Dense head")
    return layers, head[0], head[1], residual


def infer_cell(model: keras.Model) -> str:
    """The recurrent cell kind ("simplernn", "lstm" or "gru") of a network from :func:`anomaly.nn.model.build_model`."""
    keras = _keras()
    for layer in model.layers:
        for cell, cls in (("lstm", keras.layers.LSTM), ("gru", keras.layers.GRU), ("simplernn", keras.layers.SimpleRNN)):
            if isinstance(layer, cls):
                return cell
    raise ValueError("the network has no recurrent layer")


def _halve_sigmoid_gates(layer: _Layer, cell: str) -> _Layer:
    """The layer with the columns of its sigmoid gates halved, in every weight and bias.

    The LSTM's i, f, o gates (its g gate is a tanh) and the GRU's z, r gates (its h gate is a
    tanh) then need ``(1 + tanh(a)) / 2`` of their halved pre-activation ``a``, which is their
    sigmoid. Halving is exact in binary floating point.
    """
    units = layer.units
    scale = {
        "lstm": np.repeat(np.array([0.5, 0.5, 1.0, 0.5], dtype=np.float32), units),
        "gru": np.repeat(np.array([0.5, 0.5, 1.0], dtype=np.float32), units),
    }.get(cell)
    if scale is None:  # SimpleRNN: a tanh only
        return layer
    return _Layer(layer.kernel * scale, layer.recurrent * scale, layer.bias * scale)


class Recurrence:
    """The network's forward pass over a batch of stretches, with state in and out.

    Parameters
    ----------
    model : keras.Model
        A network from :func:`anomaly.nn.model.build_model`.
    cell : {"simplernn", "lstm", "gru"}, optional
        Default: read from the model.

    Notes
    -----
    The state of the whole stack is one float32 array of shape (B, S) with S the sum over layers
    of U (SimpleRNN, GRU) or 2·U (LSTM: h then c), so callers can carry it without knowing the
    cell. ``tf.function`` traces once per distinct input shape; callers keep shapes to a few
    sizes (see :mod:`anomaly.detection.scorer`).
    """

    def __init__(self, model: keras.Model, cell: str | None = None) -> None:
        self.cell = cell or infer_cell(model)
        if self.cell not in CELLS:
            raise ValueError(f"unknown cell {self.cell!r}; expected one of {CELLS}")
        self._layers, head_kernel, head_bias, self.residual = _layers_of(model, self.cell)
        self.n_features = self._layers[0].kernel.shape[0]
        per_layer = 2 if self.cell == "lstm" else 1
        self._state_sizes = [per_layer * layer.units for layer in self._layers]
        self.state_size = int(sum(self._state_sizes))
        # Threads for large batches: one per usable core (ANOMALY_FORWARD_THREADS overrides).
        self.threads = max(1, int(os.environ.get("ANOMALY_FORWARD_THREADS", 0)) or len(os.sched_getaffinity(0)))
        self._executor: Any = None
        self._build(head_kernel, head_bias)

    def zero_state(self, batch: int) -> np.ndarray:
        """A blank state for ``batch`` stretches: ndarray of shape (batch, state_size), float32."""
        return np.zeros((batch, self.state_size), dtype=np.float32)

    def _build(self, head_kernel: np.ndarray, head_bias: np.ndarray) -> None:
        _keras()  # silences TensorFlow before its first import
        import tensorflow as tf

        # Each fitted or loaded network gets its own traced function; TensorFlow counts those
        # traces together and warns about "retracing", which here is expected, not a problem.
        logging.getLogger("tensorflow").setLevel(logging.ERROR)
        cell = self.cell
        # sigmoid(x) = (1 + tanh(x / 2)) / 2: with the sigmoid gates' columns of every weight and
        # bias halved here (exact in float32), one fused tanh serves all of a layer's gates. XLA
        # evaluates tanh in fewer instructions than the logistic: the pass got 3-5 % faster in
        # benchmarks/forward_threads.py (the gates are about a third of a step's time, the
        # matrix products the rest); outputs still match Keras to float32 rounding.
        layers = [_halve_sigmoid_gates(layer, cell) for layer in self._layers]
        first = layers[0]
        # Layer 0's input projection does not depend on the state: one large product for all
        # steps. Deeper layers take [h_below, h_own] @ [[kernel], [recurrent]] in one product per
        # step: all layers advance together inside a single loop, which halves the loop overhead
        # and gives the matrix units a deeper operand than two separate products would.
        first_kernel = tf.constant(first.kernel)
        first_recurrent = tf.constant(first.recurrent)
        first_bias = tf.constant(first.bias[0] if cell == "gru" else first.bias)
        first_recurrent_bias = tf.constant(first.bias[1]) if cell == "gru" else None
        deeper = [
            (
                tf.constant(np.concatenate([layer.kernel, layer.recurrent], axis=0)),
                tf.constant(layer.bias),
                layer.units,
            )
            for layer in layers[1:]
        ]
        head_w, head_b = tf.constant(head_kernel), tf.constant(head_bias)
        sizes = self._state_sizes
        residual = self.residual

        def gate(t):
            """sigmoid of a pre-activation, given tanh of its half (see _halve_sigmoid_gates)."""
            return 0.5 * t + 0.5

        def lstm(gates, c):
            i, f, g, o = tf.split(tf.tanh(gates), 4, axis=1)
            c = gate(f) * c + gate(i) * g
            return gate(o) * tf.tanh(c), c

        def gru(x_part, h_part, h):
            # Keras' reset_after GRU: the reset gate scales the recurrent part after its product.
            x_z, x_r, x_h = tf.split(x_part, 3, axis=1)
            r_z, r_r, r_h = tf.split(h_part, 3, axis=1)
            z = gate(tf.tanh(x_z + r_z))
            r = gate(tf.tanh(x_r + r_r))
            return z * h + (1.0 - z) * tf.tanh(x_h + r * r_h)

        def advance(projected_t, states, k, active):
            """One step of every layer. ``states``: per layer, (h,) or (h, c) of shape (B, U)."""
            stepped = step_layers(projected_t, states, k)
            # Padding steps (inactive) leave the state as it was, so a padded stretch ends with
            # the state after its last real step.
            return [tuple(tf.where(active, a, b) for a, b in zip(new, old)) for new, old in zip(stepped, states)]

        def step_layers(projected_t, states, k):
            new = []
            below = None
            for depth, state in enumerate(states):
                h = state[0] * k
                if depth == 0:
                    if cell == "lstm":
                        h, c = lstm(projected_t + tf.matmul(h, first_recurrent), state[1] * k)
                        new.append((h, c))
                    elif cell == "gru":
                        h = gru(projected_t, tf.matmul(h, first_recurrent) + first_recurrent_bias, h)
                        new.append((h,))
                    else:
                        h = tf.tanh(projected_t + tf.matmul(h, first_recurrent))
                        new.append((h,))
                else:
                    weights, bias, units = deeper[depth - 1]
                    if cell == "gru":
                        x_part = tf.matmul(below, weights[:-units]) + bias[0]
                        h_part = tf.matmul(h, weights[-units:]) + bias[1]
                        h = gru(x_part, h_part, h)
                        new.append((h,))
                    else:
                        gates = tf.matmul(tf.concat([below, h], axis=1), weights) + bias
                        if cell == "lstm":
                            h, c = lstm(gates, state[1] * k)
                            new.append((h, c))
                        else:
                            h = tf.tanh(gates)
                            new.append((h,))
                below = h
            return new

        def forward(inputs, reset, active, state):
            length = tf.shape(inputs)[1]
            keep = tf.transpose(1.0 - tf.cast(reset, tf.float32))[:, :, None]  # (L, B, 1)
            running = tf.transpose(active)[:, :, None]  # (L, B, 1)
            projected = tf.einsum("bld,dg->lbg", inputs, first_kernel) + first_bias  # (L, B, G·U)
            flat = tf.split(state, sizes, axis=1)
            if cell == "lstm":
                states = [tuple(tf.split(part, 2, axis=1)) for part in flat]
            else:
                states = [(part,) for part in flat]
            top = tf.TensorArray(tf.float32, size=length)

            def step(t, states, top):
                states = advance(projected[t], states, keep[t], running[t])
                return t + 1, states, top.write(t, states[-1][0])

            _, states, top = tf.while_loop(lambda t, *_: t < length, step, (0, states, top))
            outputs = tf.einsum("lbu,ud->bld", top.stack(), head_w) + head_b
            if residual:
                outputs = outputs + inputs
            return outputs, tf.concat([part for layer in states for part in layer], axis=1)

        signature = [
            tf.TensorSpec([None, None, self.n_features], tf.float32),
            tf.TensorSpec([None, None], tf.bool),
            tf.TensorSpec([None, None], tf.bool),
            tf.TensorSpec([None, self.state_size], tf.float32),
        ]
        # Two compilations of the same function. XLA fuses the gates' elementwise work and is the
        # faster one on large batches, but it compiles anew for each concrete shape (1-2.5 s
        # each), so it only runs the large, shape-bucketed batches of long series; everything
        # smaller runs as a plain graph, traced once for all shapes.
        self._graph = tf.function(forward, input_signature=signature, jit_compile=False)
        self._xla = tf.function(forward, input_signature=signature, jit_compile=True)

    def __call__(
        self, inputs: np.ndarray, reset: np.ndarray, state: np.ndarray, active: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Run B stretches of L steps.

        Parameters
        ----------
        inputs : ndarray of shape (B, L, D)
            Scaled inputs; must be finite (callers put 0 in rows they do not use).
        reset : ndarray of shape (B, L), bool
            True where the state is set to zero *before* the step (a stretch's start, or the first
            row after a gap).
        state : ndarray of shape (B, state_size), float32
            The state before step 0 of each stretch.
        active : ndarray of shape (B, L), bool, optional
            False on padding steps, which leave the state unchanged (their outputs are
            meaningless). Default: all True.

        Returns
        -------
        outputs : ndarray of shape (B, L, D), float32
            ``outputs[b, t]`` is the prediction of the step after ``inputs[b, t]``.
        state : ndarray of shape (B, state_size), float32
            The state after the last step.
        """
        reset = np.asarray(reset, dtype=bool)
        inputs = np.ascontiguousarray(inputs, dtype=np.float32)
        active = np.ones_like(reset) if active is None else np.asarray(active, dtype=bool)
        state = np.ascontiguousarray(state, dtype=np.float32)
        if reset.size < XLA_MIN_STEPS:
            outputs, final = self._graph(inputs, reset, active, state)
            return outputs.numpy(), final.numpy()
        # XLA runs one compiled loop on one core; independent stretches are split between
        # threads (TensorFlow releases the GIL while it computes), one part per core.
        parts = min(self.threads, len(inputs))
        if parts <= 1:
            outputs, final = self._xla(inputs, reset, active, state)
            return outputs.numpy(), final.numpy()
        bounds = np.linspace(0, len(inputs), parts + 1).astype(int)

        def run(i: int) -> tuple[np.ndarray, np.ndarray]:
            part = slice(bounds[i], bounds[i + 1])
            out, fin = self._xla(inputs[part], reset[part], active[part], state[part])
            return out.numpy(), fin.numpy()

        results = list(self._pool().map(run, range(parts)))
        return np.concatenate([r[0] for r in results]), np.concatenate([r[1] for r in results])

    def _pool(self) -> Any:
        if self._executor is None:
            from concurrent.futures import ThreadPoolExecutor

            self._executor = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="anomaly-forward")
        return self._executor
