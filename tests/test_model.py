"""The seeds' lessons: what the Keras layers compute, checked against plain numpy."""

import numpy as np
import pytest

from anomaly.nn.model import build_model, predict_sequence


@pytest.fixture(scope="module")
def keras():
    from anomaly.nn.model import _keras

    return _keras()


def numpy_simple_rnn(x, Wx, Wh, b):
    """h_t = tanh(x_t Wx + h_{t-1} Wh + b), h_0 = 0, for x of shape (N, T, D) -> (N, T, M)."""
    n, t_len, _ = x.shape
    h = np.zeros((n, Wh.shape[0]))
    out = np.empty((n, t_len, Wh.shape[0]))
    for t in range(t_len):
        h = np.tanh(x[:, t] @ Wx + h @ Wh + b)
        out[:, t] = h
    return out


def test_keras_simplernn_is_the_plain_tanh_recurrence(keras):
    rng = np.random.default_rng(0)
    n, t_len, d, m = 4, 12, 3, 5
    x = rng.normal(size=(n, t_len, d)).astype(np.float32)
    Wx, Wh, b = rng.normal(size=(d, m)) * 0.5, rng.normal(size=(m, m)) * 0.5, rng.normal(size=m) * 0.1
    layer = keras.layers.SimpleRNN(m, return_sequences=True)
    layer.build((None, None, d))
    layer.set_weights([Wx.astype(np.float32), Wh.astype(np.float32), b.astype(np.float32)])
    got = np.asarray(layer(x))
    np.testing.assert_allclose(got, numpy_simple_rnn(x.astype(np.float64), Wx, Wh, b), atol=1e-5)


@pytest.mark.parametrize("cell", ["simplernn", "lstm", "gru"])
def test_many_to_many_model_keeps_the_time_axis_and_shares_the_head(keras, cell):
    model = build_model(3, cell=cell, units=(6, 4))
    x = np.random.default_rng(1).normal(size=(2, 9, 3)).astype(np.float32)
    y = np.asarray(model(x))
    assert y.shape == (2, 9, 3)
    # Recompute the head by hand from the last recurrent layer's sequence: the same Dense
    # weights at every timestep.
    recurrent_out = keras.Model(model.input, model.get_layer(f"{cell}_1").output)(x)
    assert recurrent_out.shape == (2, 9, 4)  # stacking keeps the time axis
    W, b = model.get_layer("next_step").get_weights()
    np.testing.assert_allclose(y, np.asarray(recurrent_out) @ W + b, atol=1e-5)


def test_outputs_are_causal(keras):
    """Changing step 5 cannot change predictions made at steps < 5."""
    model = build_model(2, cell="lstm", units=(4,))
    x = np.random.default_rng(2).normal(size=(1, 10, 2)).astype(np.float32)
    x2 = x.copy()
    x2[0, 5] += 10
    y, y2 = np.asarray(model(x)), np.asarray(model(x2))
    np.testing.assert_allclose(y[0, :5], y2[0, :5], atol=1e-6)
    assert not np.allclose(y[0, 5:], y2[0, 5:])


def test_predict_sequence_aligns_prediction_t_with_step_t(keras):
    model = build_model(2, cell="gru", units=(4,))
    X = np.random.default_rng(3).normal(size=(30, 2)).astype(np.float32)
    X_hat = predict_sequence(model, X)
    assert X_hat.shape == (30, 2) and np.isnan(X_hat[0]).all()
    direct = np.asarray(model(X[None]))[0]  # output k predicts step k + 1
    np.testing.assert_allclose(X_hat[1:], direct[:-1], atol=1e-5)


def test_loading_refuses_a_network_that_carries_code(keras, tmp_path):
    """safe_mode=True: a .keras file with a Lambda layer (arbitrary Python) is not executed."""
    from anomaly.nn.model import load_model

    inputs = keras.Input(shape=(None, 2))
    outputs = keras.layers.Lambda(lambda x: x * 2)(inputs)
    path = tmp_path / "evil.keras"
    keras.Model(inputs, outputs).save(path)
    with pytest.raises(ValueError, match="(?i)unsafe|safe_mode"):
        load_model(path)


@pytest.mark.parametrize("cell", ["simplernn", "lstm", "gru"])
@pytest.mark.parametrize("residual", [False, True])
def test_members_side_by_side_learn_apart_and_fold_into_their_mean(keras, cell, residual):
    from anomaly.nn.model import fit_model, fold_members

    rng = np.random.default_rng(3)
    count, units, d = 3, (5, 4), 3
    trained = build_model(d, cell=cell, units=units, residual=residual, learning_rate=0.05, members=count)
    x = rng.normal(size=(16, 9, d)).astype(np.float32)
    y = rng.normal(size=(16, 9, d)).astype(np.float32)
    fit_model(trained, x, y, validation=(x[:4], y[:4]), epochs=2, batch_size=8, patience=2, seed=0, members=count)
    # Blocks apart: member k's output depends on member k's weights only, so zeroing every
    # other member's recurrent weights leaves member k's prediction where it was.
    full = trained.predict(x, verbose=0)
    assert full.shape == (16, 9, count * d)
    name = f"{cell}_1"
    kernel, recurrent, bias = trained.get_layer(name).get_weights()
    gates = recurrent.shape[1] // recurrent.shape[0]
    owner_cols = np.tile(np.repeat(np.arange(count), units[1]), gates)
    owner_rows = np.repeat(np.arange(count), units[1])
    assert not recurrent[owner_rows[:, None] != owner_cols].any()  # kept block-diagonal through training
    assert not kernel[np.repeat(np.arange(count), units[0])[:, None] != owner_cols].any()
    folded = fold_members(trained, count, cell=cell, units=units, residual=residual)
    expected = full.reshape(16, 9, count, d).mean(axis=2)
    np.testing.assert_allclose(folded.predict(x, verbose=0), expected, atol=1e-5)
    assert [layer.units for layer in folded.layers if hasattr(layer, "cell")] == [count * u for u in units]


def test_training_batches_visit_every_window_once_an_epoch_in_a_seeded_order(keras):
    """The batches :func:`fit_model` trains on: each epoch every usable window once, rows in series
    order inside a batch, a new order each epoch, and the same batches again for the same seeds."""
    import random

    from anomaly.nn.model import _window_batches

    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(23, 5, 2))
    targets = inputs + 1.0
    usable = np.array([i for i in range(23) if i != 7])  # a window touching a gap is left out

    def served(seed):
        random.seed(seed)
        dataset, steps = _window_batches(inputs, targets, usable, 4, seed, epochs=3, members=2)
        batches = [(x.numpy(), y.numpy()) for x, y in dataset]
        return batches, steps

    batches, steps = served(1)
    assert steps == 6 and len(batches) == 3 * steps
    epochs = []
    for epoch in range(3):
        rows = []
        for x, y in batches[epoch * steps : (epoch + 1) * steps]:
            # Each batch's windows are rows of `inputs`, in series order, with their targets twice (two members).
            found = [int(np.flatnonzero((inputs == window).all(axis=(1, 2)))[0]) for window in x]
            assert found == sorted(found)
            np.testing.assert_array_equal(y, np.tile(targets[found], (1, 1, 2)))
            rows += found
        assert sorted(rows) == list(usable)
        epochs.append(rows)
    assert epochs[0] != epochs[1] != epochs[2]
    again, _ = served(1)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(batches, again))
    other, _ = served(2)
    assert not all(np.array_equal(a[0], b[0]) for a, b in zip(batches, other))
