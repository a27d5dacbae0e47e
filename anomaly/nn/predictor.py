"""Next-step predictions of a series fed chunk by chunk, in one recurrent pass.

A recurrent network's state at step t summarises all steps before it, so a series never has to
be cut into overlapping windows and predicted T times: one pass is enough. On a CPU, though, a
single pass of batch size 1 is bound by per-step overhead. So the series is cut into *blocks* of
``block`` steps at fixed absolute positions (0, S, 2S, ...), and the blocks of a chunk run side by
side as one batch. Each block starts its state from a *burn-in*: the ``burn_in`` steps before it,
run from a blank state (by default the training window length, so every prediction has at least
as much context as the network saw in training). Burn-in costs ``burn_in / block`` extra work
(12.5% at the defaults).

Everything depends only on the data and on absolute positions, never on where chunks happen to
end, so the scores are the same whatever the chunk size — including one row at a time:

* the state of the block that is still open at the end of a chunk is carried to the next chunk;
* the last ``burn_in`` rows are kept for the burn-in of blocks that start in the next chunk;
* the prediction for the next row (made from the last row) is kept;
* the gap bookkeeping (where the current gap-free stretch began) is kept (the EWMA and the
  threshold carry their own state: :mod:`anomaly.detection.scorer`).

Rows with a missing value (gaps the reader left unfilled) are not scored; the state is reset at
the first row after them, and the first ``warmup_steps`` + 1 rows after every (re)start are not
scored either, as in training's calibration.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from anomaly.detection.autoregression import ArStream, LinearAR

logger = logging.getLogger(__name__)

# Most blocks run in one batch; bounds the memory of one forward call (the projected inputs are
# batch × (burn_in + block) × 4U floats: 128 × 576 × 256 × 4 B ≈ 75 MB for a 64-unit LSTM).
MAX_BATCH = 128


def _bucket(n: int, cap: int) -> int:
    """The smallest power of two >= n, or ``cap`` when that is smaller: keeps traced shapes few."""
    size = 1
    while size < n:
        size *= 2
    return min(size, cap) if n <= cap else n


class StreamPredictor:
    """Next-step predictions of a scaled series fed in chunks, with the recurrent state carried.

    Parameters
    ----------
    recurrence : anomaly.nn.inference.Recurrence
        The compiled forward pass of the fitted network.
    block : int
        S, steps per block; blocks run side by side as one batch.
    burn_in : int
        Steps before a block that rebuild its state from blank.
    warmup_steps : int
        Rows after each (re)start of the state that get a prediction but are not scored.
    baseline : ArStream, optional
        A linear autoregression whose predictions the network's are added to (the network was
        trained on what it leaves unexplained); rows it cannot predict (too soon after a gap)
        are not scored.
    """

    def __init__(
        self, recurrence: object, *, block: int, burn_in: int, warmup_steps: int, baseline: ArStream | None = None
    ) -> None:
        if block < 1 or burn_in < 0 or warmup_steps < 0:
            raise ValueError(f"need block >= 1, burn_in >= 0, warmup_steps >= 0; got {block}, {burn_in}, {warmup_steps}")
        self._recurrence = recurrence
        self.n_features = recurrence.n_features
        self.block = int(block)
        self.burn_in = int(burn_in)
        self.warmup_steps = int(warmup_steps)
        self._baseline = baseline
        self.position = 0  # absolute position of the next row
        # Scaled rows before ``position`` (up to burn_in of them, at least 1), for burn-in.
        self._tail = np.zeros((0, self.n_features), dtype=np.float32)
        self._tail_valid = np.zeros(0, dtype=bool)
        self._open_state: np.ndarray | None = None  # state after step position-1, inside its block
        self._next_prediction = np.full(self.n_features, np.nan)  # prediction of row `position`
        self._segment_start = 0  # first row of the current gap-free stretch

    def feed(self, scaled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Predict the next rows.

        Parameters
        ----------
        scaled : ndarray of shape (n, D)
            Scaled feature values; a row with any NaN is a gap row.

        Returns
        -------
        predictions : ndarray of shape (n, D), float64
            ``predictions[i]`` is the prediction of row i from the rows before it.
        scored : ndarray of shape (n,), bool
            Rows that are complete, have a prediction, and lie more than ``warmup_steps`` rows
            after the start of their gap-free stretch.
        """
        scaled = np.asarray(scaled, dtype=np.float64)
        if scaled.ndim != 2 or scaled.shape[1] != self.n_features:
            raise ValueError(f"values must have shape (n, {self.n_features}); got {scaled.shape}")
        if not len(scaled):  # nothing to predict: the open block and its state stay as they are
            return np.zeros((0, self.n_features)), np.zeros(0, dtype=bool)
        valid = ~np.isnan(scaled).any(axis=1)
        scored = self._scored_rows(valid, self.position)
        predictions = self._predict(np.where(valid[:, None], scaled, 0.0).astype(np.float32), valid)
        if self._baseline is not None:
            predictions = predictions + self._baseline.feed(scaled)
            scored &= ~np.isnan(predictions).any(axis=1)
        self.position += len(scaled)
        return predictions, scored

    def _scored_rows(self, valid: np.ndarray, start: int) -> np.ndarray:
        """Rows with a prediction from at least ``warmup_steps`` + 1 rows of their stretch."""
        n = len(valid)
        positions = start + np.arange(n)
        # A stretch starts at a valid row whose predecessor is missing (or at row 0).
        previous_valid = np.concatenate([[self._tail_valid[-1] if len(self._tail_valid) else False], valid[:-1]])
        starts = valid & ~previous_valid
        stretch_start = np.where(starts, positions, -1)
        stretch_start = np.maximum.accumulate(np.concatenate([[self._segment_start], stretch_start]))[1:]
        if n:
            self._segment_start = int(stretch_start[-1])
        return valid & (positions - stretch_start > self.warmup_steps)

    # ------------------------------------------------------------------------------------------
    def _predict(self, rows: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """Predictions of the chunk's rows (n, D), float64; NaN where there is none.

        Step s runs row s through the network and yields the prediction of row s + 1. Steps are
        grouped in blocks [kS, (k+1)S); this chunk runs steps [p, p + n).
        """
        n = len(rows)
        p, S, W = self.position, self.block, self.burn_in
        out = np.full((n + 1, self.n_features), np.nan)  # predictions of rows p .. p + n
        out[0] = self._next_prediction
        # Rows p - len(tail) .. p + n - 1, for burn-in reach-back.
        ext_rows = np.concatenate([self._tail, rows])
        ext_valid = np.concatenate([self._tail_valid, valid])
        ext_start = p - len(self._tail)
        previous_valid = np.concatenate([[False], ext_valid[:-1]])
        # The state is reset before a row that follows a missing one; missing rows run as zeros.
        ext_reset = ext_valid & ~previous_valid

        stretches = []  # (first_row, last_row_exclusive, owned_from, carried_state or None)
        first_block = p // S
        last_block = (p + n - 1) // S if n else first_block - 1
        for k in range(first_block, last_block + 1):
            lo, hi = max(p, k * S), min(p + n, (k + 1) * S)
            if lo > k * S and self._open_state is not None:
                stretches.append((lo, hi, lo, self._open_state))
            else:
                stretches.append((max(k * S - W, ext_start, 0), hi, lo, None))

        final_state = None
        ends_open = n > 0 and (p + n) % S != 0
        for i in range(0, len(stretches), MAX_BATCH):
            batch = stretches[i : i + MAX_BATCH]
            outputs, states = self._run(batch, ext_rows, ext_reset, ext_start)
            for b, (lo, hi, owned, _) in enumerate(batch):
                # Output step s predicts row s + 1; keep the steps the block owns.
                out[owned - p + 1 : hi - p + 1] = outputs[b, owned - lo : hi - lo]
                if ends_open and hi == p + n:
                    final_state = states[b]
        # Predictions made from a missing row, or for a row right after a reset, are meaningless;
        # the scored-row mask drops them. Keep the state only while the block stays open.
        self._open_state = final_state if ends_open else None
        self._next_prediction = out[n]
        # At least the last row: whether it was missing decides a reset before the next one.
        keep = min(max(W, 1), len(ext_rows))
        self._tail = ext_rows[len(ext_rows) - keep :]
        self._tail_valid = ext_valid[len(ext_valid) - keep :]
        return out[:n]

    def _run(self, batch: list, ext_rows: np.ndarray, ext_reset: np.ndarray, ext_start: int) -> tuple[np.ndarray, np.ndarray]:
        """One forward call for a list of stretches, padded to one bucketed shape.

        Stretches are aligned left; the padding after them is inactive (it leaves the state
        alone), so each stretch's final state is the state after its last real row. Shapes are
        rounded up to powers of two so the compiled pass is specialised for only a few of them.
        """
        lengths = [hi - lo for lo, hi, _, _ in batch]
        length = _bucket(max(lengths), self.block + self.burn_in)
        size = _bucket(len(batch), MAX_BATCH)
        inputs = np.zeros((size, length, self.n_features), dtype=np.float32)
        reset = np.zeros((size, length), dtype=bool)
        active = np.zeros((size, length), dtype=bool)
        state = self._recurrence.zero_state(size)
        for b, (lo, hi, _, carried) in enumerate(batch):
            m = hi - lo
            inputs[b, :m] = ext_rows[lo - ext_start : hi - ext_start]
            reset[b, :m] = ext_reset[lo - ext_start : hi - ext_start]
            active[b, :m] = True
            if carried is not None:
                state[b] = carried
            else:
                reset[b, 0] = True
        return self._recurrence(inputs, reset, state, active)


@dataclass(frozen=True)
class NetworkPredictor:
    """The fitted next-step predictor: the compiled network, and the linear part under it.

    Attributes
    ----------
    recurrence : anomaly.nn.inference.Recurrence
        The compiled forward pass of the fitted network.
    block, burn_in, warmup_steps : int
        See :class:`StreamPredictor`.
    linear : LinearAR or None
        The linear autoregression the network's predictions are added to.
    """

    recurrence: Any
    block: int
    burn_in: int
    warmup_steps: int
    linear: LinearAR | None = None

    def stream(self) -> StreamPredictor:
        """A predictor for one series fed chunk by chunk, from a blank state."""
        return StreamPredictor(
            self.recurrence,
            block=self.block,
            burn_in=self.burn_in,
            warmup_steps=self.warmup_steps,
            baseline=None if self.linear is None else self.linear.stream(),
        )
