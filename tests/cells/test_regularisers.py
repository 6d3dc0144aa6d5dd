"""Every regulariser in training mode, against NumPy with the same random draws.

Inference-mode equations are checked in test_cells_numpy. Here each
regulariser is switched on in training: the draws are fixed (see
`draws.FixedDraws`) and a NumPy version of the training forward pass uses
the same draws, with the rate or sigma the test configured:

* input dropout `x_t * m_x` and recurrent dropout `h_{t-1} * m_h`, one mask
  per sequence (variational), 0 or 1 / (1 - rate);
* dropout between the levels of a Depth-Gated LSTM and of a stacked model;
* DropConnect `W_rec * M`, one mask per batch of sequences;
* weight noise `W + sigma * z`, z ~ N(0, 1), on every kernel, per batch;
* output dropout on the hidden layers of the deep output (and the deep
  input's dropout);
* zoneout: `s = k * s_old + (1 - k) * s_new` with `k ~ Bernoulli(rate)`
  per step and unit, on every state (an LSTM's cell state too).

Then, with the real draws, the statistics: the dropped share matches the
rate, kept units are scaled by 1 / (1 - rate), weight noise has the std
sigma, and masks are shared where they should be.
"""

import keras
import numpy as np
import pytest
from keras import ops

import reference as ref
from cases import make_model
from cases import model_reference
from cases import weights_of
from draws import FixedDraws
from keras_deeprnn import cells
from keras_deeprnn import layers
from keras_deeprnn.layers import DeepRNN

B, T, D, N = 2, 4, 5, 4   # batch, time, input features, units: distinct, so draws are told apart by shape
SEQUENCE_LAYERS = {"RNN": keras.layers.RNN, "DeepRNN": DeepRNN}
REGULARISERS = {
    "input_dropout": dict(dropout=0.3),
    "recurrent_dropout": dict(recurrent_dropout=0.4),
    "weight_noise": dict(weight_noise=0.2),
    "dropconnect": dict(recurrent_weight_dropout=0.5),
    "all": dict(dropout=0.3, recurrent_dropout=0.4, weight_noise=0.2, recurrent_weight_dropout=0.5),
}


def np_(x):
    return ops.convert_to_numpy(x)


def _x(rng, batch=B, time=T, features=D):
    return rng.normal(size=(batch, time, features))


def _noisy(w, draws, reg, noisy_names, dropconnect_names):
    """The weights a training batch sees: `(W + sigma z) * M`, as the cells compute them."""
    w = dict(w)
    sigma, rate = reg.get("weight_noise", 0.0), reg.get("recurrent_weight_dropout", 0.0)
    if sigma:
        for name in noisy_names:
            w[name] = w[name] + draws.noise(w[name].shape, sigma)
    if rate:
        for name in dropconnect_names:
            w[name] = w[name] * draws.mask(w[name].shape, rate)
    return w


def _masks(draws, reg, input_width, recurrent_width):
    p, q = reg.get("dropout", 0.0), reg.get("recurrent_dropout", 0.0)
    return (draws.mask((B, input_width), p) if p else None,
            draws.mask((B, recurrent_width), q) if q else None)


def _dt_names(cell):
    kernels = ["input_kernel", "recurrent_kernel"]
    kernels += [f"transition_kernel_{i}" for i in range(cell.num_transition_layers - 1)]
    return kernels, ["recurrent_kernel"]


TRANSITION_CELLS = {
    # input_kernel (5, 7), recurrent_kernel (4, 7), transition kernels (3, 3), (3, 4)
    "dts_L3": (lambda reg: cells.DeepTransitionCell(
        N, num_transition_layers=3, shortcut=True, transition_units=3,
        bias_initializer="random_normal", **reg), ref.dt_sequence),
    # input_kernel (5, 20), recurrent_kernel (4, 20), transition kernel (4, 16)
    "dts_lstm_L2": (lambda reg: cells.DeepTransitionLSTMCell(
        N, num_transition_layers=2, shortcut=True, **reg), ref.dt_lstm_sequence),
}


@pytest.mark.parametrize("layer_name", list(SEQUENCE_LAYERS))
@pytest.mark.parametrize("reg_name", list(REGULARISERS))
@pytest.mark.parametrize("cell_name", list(TRANSITION_CELLS))
def test_transition_cells_in_training_match_numpy(cell_name, reg_name, layer_name, monkeypatch, rng):
    make, sequence = TRANSITION_CELLS[cell_name]
    reg = REGULARISERS[reg_name]
    cell = make(reg)
    layer = SEQUENCE_LAYERS[layer_name](cell, return_sequences=True)
    layer.build((None, None, D))
    x = _x(rng)
    draws = FixedDraws(monkeypatch)
    y = np_(layer(x.astype("float32"), training=True))

    w = _noisy(weights_of(cell), draws, reg, *_dt_names(cell))
    input_mask, recurrent_mask = _masks(draws, reg, D, N)
    kw = dict(num_transition_layers=cell.num_transition_layers, shortcut=cell.shortcut,
              transition_activation=cell.transition_activation.__name__)
    expected = sequence(x, w, N, wrap=ref.masked(input_mask, recurrent_mask), **kw)
    np.testing.assert_allclose(y, expected, atol=1e-5, rtol=1e-5)
    # ... and the regulariser changed something, so the comparison could fail.
    clean = sequence(x, weights_of(cell), N, **kw)
    assert np.abs(expected - clean).max() > 1e-3


@pytest.mark.parametrize("layer_name", list(SEQUENCE_LAYERS))
@pytest.mark.parametrize("reg_name", list(REGULARISERS))
def test_depth_gated_lstm_in_training_matches_numpy(reg_name, layer_name, monkeypatch, rng):
    # Two levels: `dropout` drops x_t at the bottom and h^1_t between the
    # levels, one mask of width D + N per sequence.
    reg = REGULARISERS[reg_name]
    L = 2
    cell = cells.DepthGatedLSTMCell(N, num_layers=L, peephole_initializer="random_normal",
                                    bias_initializer="random_normal", **reg)
    layer = SEQUENCE_LAYERS[layer_name](cell, return_sequences=True)
    layer.build((None, None, D))
    x = _x(rng)
    draws = FixedDraws(monkeypatch)
    y = np_(layer(x.astype("float32"), training=True))

    w = weights_of(cell)
    sigma, rate = reg.get("weight_noise", 0.0), reg.get("recurrent_weight_dropout", 0.0)
    p, q = reg.get("dropout", 0.0), reg.get("recurrent_dropout", 0.0)
    if sigma:
        w["kernel_0"] = w["kernel_0"] + draws.noise(w["kernel_0"].shape, sigma)
        w["kernel_1"] = w["kernel_1"] + draws.noise(w["kernel_1"].shape, sigma)
        # The levels' recurrent kernels share a shape: drawn bottom level first.
        noise = draws.all("normal", (N, 4 * N))
        assert len(noise) == L
        peepholes = draws.all("normal", (5, N))   # where peepholes are noisy, level by level
        assert len(peepholes) in (0, L)
        for l in range(L):
            w[f"recurrent_kernel_{l}"] = w[f"recurrent_kernel_{l}"] + sigma * noise[l]
            if peepholes:
                w[f"peephole_{l}"] = w[f"peephole_{l}"] + sigma * peepholes[l]
    if rate:
        kept = draws.all("dropout", (N, 4 * N))
        assert len(kept) == L
        for l in range(L):
            w[f"recurrent_kernel_{l}"] = w[f"recurrent_kernel_{l}"] * kept[l] / (1 - rate)
    input_masks = recurrent_masks = None
    if p:
        m = draws.mask((B, D + (L - 1) * N), p)
        input_masks = [m[:, :D], m[:, D:]]
    if q:
        m = draws.mask((B, L * N), q)
        recurrent_masks = [m[:, :N], m[:, N:]]
    per_level = [{k: w[f"{k}_{l}"] for k in ("kernel", "recurrent_kernel", "peephole", "bias")}
                 for l in range(L)]
    expected = ref.dg_lstm_sequence(x, per_level, N, L, input_masks=input_masks,
                                    recurrent_masks=recurrent_masks)
    np.testing.assert_allclose(y, expected, atol=1e-5, rtol=1e-5)


def test_dropout_between_depth_gated_levels_is_applied(monkeypatch, rng):
    # The mask's upper part (between the levels) alone changes the output.
    cell = cells.DepthGatedLSTMCell(N, num_layers=2, dropout=0.5)
    layer = DeepRNN(cell, return_sequences=True)
    layer.build((None, None, D))
    x = _x(rng).astype("float32")
    draws = FixedDraws(monkeypatch)
    y = np_(layer(x, training=True))
    m = draws.mask((B, D + N), 0.5)
    w = weights_of(cell)
    per_level = [{k: w[f"{k}_{l}"] for k in ("kernel", "recurrent_kernel", "peephole", "bias")}
                 for l in range(2)]
    bottom_only = ref.dg_lstm_sequence(x, per_level, N, 2, input_masks=[m[:, :D], 1.0])
    both = ref.dg_lstm_sequence(x, per_level, N, 2, input_masks=[m[:, :D], m[:, D:]])
    np.testing.assert_allclose(y, both, atol=1e-5)
    assert np.abs(both - bottom_only).max() > 1e-3


ZONED_CELLS = {
    # (cell, the NumPy sequence, the output read from the zoned state)
    "dts_lstm_L2": (lambda: cells.DeepTransitionLSTMCell(N, num_transition_layers=2, shortcut=True),
                    lambda cell, x, wrap: ref.dt_lstm_sequence(
                        x, weights_of(cell), N, wrap=wrap, num_transition_layers=2, shortcut=True,
                        transition_activation="tanh"),
                    lambda s: s[0]),
    "dg_lstm_2": (lambda: cells.DepthGatedLSTMCell(N, num_layers=2, peephole_initializer="random_normal"),
                  lambda cell, x, wrap: ref.dg_lstm_sequence(
                      x, [{k: weights_of(cell)[f"{k}_{l}"]
                           for k in ("kernel", "recurrent_kernel", "peephole", "bias")}
                          for l in range(2)], N, 2, wrap=wrap),
                  lambda s: s[-1][0]),
}


@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
@pytest.mark.parametrize("cell_name", list(ZONED_CELLS))
def test_zoneout_zones_every_state(cell_name, training, monkeypatch, rng):
    make, sequence, output_of = ZONED_CELLS[cell_name]
    rate = 0.4
    layer = DeepRNN(cells.ZoneoutCell(make(), zoneout=rate, seed=0), return_sequences=True,
                    return_state=True)
    layer.build((None, None, D))
    x = _x(rng)
    draws = FixedDraws(monkeypatch)
    y, *states = layer(x.astype("float32"), training=training)
    sink = []
    if training:
        widths = sum(int(s) for s in keras.tree.flatten(layer.cell.state_size))
        keep = (draws.one("uniform", (B, T, widths)) < rate).astype(float)
        wrap = ref.recording(sink, ref.zoneout_drawn(keep, output_of))
    else:
        wrap = ref.recording(sink, ref.zoneout(rate, output_of))
    expected = sequence(layer.cell.cell, x, wrap)
    np.testing.assert_allclose(np_(y), expected, atol=1e-5)
    final = ref._flatten(sink[0])
    got = [np_(s) for s in keras.tree.flatten(states)]
    assert len(got) == len(final) >= 2
    for i, (g, e) in enumerate(zip(got, final)):   # h and c of every level
        np.testing.assert_allclose(g, e, atol=1e-5, err_msg=f"state {i}")


@pytest.mark.parametrize("reg_name", ["dropout", "weight_noise", "both"])
def test_deep_output_in_training_matches_numpy(reg_name, monkeypatch, rng):
    reg = {"dropout": dict(dropout=0.4), "weight_noise": dict(weight_noise=0.3),
           "both": dict(dropout=0.4, weight_noise=0.3)}[reg_name]
    head = layers.DeepOutput(2, num_layers=2, hidden_units=3, hidden_activation="tanh",
                             activation="sigmoid", bias_initializer="random_normal", **reg)
    head.build((None, None, N))
    h = rng.normal(size=(B, T, N))
    draws = FixedDraws(monkeypatch)
    y = np_(head(h.astype("float32"), training=True))
    w = weights_of(head)
    if "weight_noise" in reg:   # kernels (4, 3), (3, 3), (3, 2)
        for i in range(3):
            w[f"kernel_{i}"] = w[f"kernel_{i}"] + draws.noise(w[f"kernel_{i}"].shape, reg["weight_noise"])
    masks = None
    if "dropout" in reg:   # after each hidden layer, not after the output
        kept = draws.all("dropout", (B, T, 3))
        assert len(kept) == 2
        masks = [k / (1 - reg["dropout"]) for k in kept] + [None]
    expected = ref.mlp(h, w, [3, 3, 2], ["tanh", "tanh", "sigmoid"], masks=masks)
    np.testing.assert_allclose(y, expected, atol=1e-5)
    clean = ref.mlp(h, weights_of(head), [3, 3, 2], ["tanh", "tanh", "sigmoid"])
    assert np.abs(expected - clean).max() > 1e-3
    np.testing.assert_allclose(np_(head(h.astype("float32"))), clean, atol=1e-5)


@pytest.mark.parametrize("activation", ["tanh", "relu", "maxout"])
def test_deep_input_matches_numpy(activation, monkeypatch, rng):
    g = layers.DeepInput(N, num_layers=2, activation=activation, dropout=0.3, weight_noise=0.2,
                         bias_initializer="random_normal")
    g.build((None, None, D))
    x = _x(rng)
    w = weights_of(g)
    widths, acts = [N, N], [activation] * 2
    np.testing.assert_allclose(np_(g(x.astype("float32"))), ref.mlp(x, w, widths, acts), atol=1e-5)
    draws = FixedDraws(monkeypatch)
    y = np_(g(x.astype("float32"), training=True))
    for i in range(2):
        w[f"kernel_{i}"] = w[f"kernel_{i}"] + draws.noise(w[f"kernel_{i}"].shape, 0.2)
    kept = draws.all("dropout", (B, T, N))
    assert len(kept) == 2
    expected = ref.mlp(x, w, widths, acts, masks=[k / 0.7 for k in kept])
    np.testing.assert_allclose(y, expected, atol=1e-5)


def test_stacked_model_in_training_matches_numpy(monkeypatch, rng):
    # Dropout on each level's input (between the levels, above the first),
    # recurrent dropout on the top level; widths 4, 5, 6 keep the masks'
    # shapes apart: inputs (B, 3), (B, 4), (B, 5), top state (B, 6).
    model = make_model("srnn_3", units=[4, 5, 6], dropout=0.3, recurrent_dropout=[0.0, 0.0, 0.4])
    x = rng.normal(size=(B, T, 3))
    draws = FixedDraws(monkeypatch)
    y = np_(model(x.astype("float32"), training=True))
    masks = [(draws.mask((B, 3), 0.3), None), (draws.mask((B, 4), 0.3), None),
             (draws.mask((B, 5), 0.3), draws.mask((B, 6), 0.4))]
    np.testing.assert_allclose(y, model_reference(model, x, level_masks=masks), atol=1e-5)
    assert np.abs(model_reference(model, x) - y).max() > 1e-3


def test_model_output_dropout_matches_numpy(monkeypatch, rng):
    model = make_model("dots_rnn", output_dropout=0.5, output_hidden_activation="tanh")
    x = rng.normal(size=(B, T, 3))
    draws = FixedDraws(monkeypatch)
    y = np_(model(x.astype("float32"), training=True))
    kept = draws.one("dropout", (B, T, 4))
    np.testing.assert_allclose(y, model_reference(model, x, output_masks=[kept / 0.5]), atol=1e-5)
    assert np.abs(model_reference(model, x) - y).max() > 1e-3


# === Statistics, with the real random draws ===

RATE, WIDE, MANY = 0.3, 256, 64


def _share_and_scale(values, rate, what):
    # Within 4.5 standard errors of a binomial share: fails by chance about
    # once in 150000 runs, and for any rate off by more than a few percent.
    dropped = np.isclose(values, 0.0)
    tolerance = 4.5 * np.sqrt(rate * (1 - rate) / dropped.size)
    assert abs(dropped.mean() - rate) < tolerance, f"{what}: dropped share {dropped.mean():.3f}, rate {rate}"
    np.testing.assert_allclose(values[~dropped], 1.0 / (1.0 - rate), rtol=1e-5, err_msg=what)


def _linear_cell(**kw):
    return cells.DeepTransitionCell(WIDE, activation="linear", kernel_initializer="identity",
                                    recurrent_initializer="identity", **kw)


def test_input_dropout_rate_scale_and_one_mask_per_sequence():
    # h_t = (x_t * m_x) @ I with a zero recurrent kernel: h_t is the mask.
    layer = DeepRNN(cells.DeepTransitionCell(WIDE, activation="linear", kernel_initializer="identity",
                                             recurrent_initializer="zeros", dropout=RATE, seed=1),
                    return_sequences=True)
    h = np_(layer(np.ones((MANY, 3, WIDE), "float32"), training=True))
    _share_and_scale(h, RATE, "input dropout")
    np.testing.assert_array_equal(h[:, 0], h[:, 2])           # the same mask at every step
    assert not np.array_equal(h[0, 0], h[1, 0])                # a mask per sequence
    np.testing.assert_array_equal(np_(layer(np.ones((2, 3, WIDE), "float32"))), 1.0)


def test_recurrent_dropout_rate_and_scale():
    # x_0 = 1, later x_t = 0, identity kernels: h_1 = 1, h_2 = m_h, h_3 = m_h * m_h.
    layer = DeepRNN(_linear_cell(recurrent_dropout=RATE, seed=2), return_sequences=True)
    x = np.zeros((MANY, 3, WIDE), "float32")
    x[:, 0] = 1.0
    h = np_(layer(x, training=True))
    _share_and_scale(h[:, 1], RATE, "recurrent dropout")
    np.testing.assert_allclose(h[:, 2], h[:, 1] ** 2, rtol=1e-5)   # the same mask again


def test_dropconnect_rate_scale_and_one_mask_per_batch():
    # As above with DropConnect: h_2 = 1 @ (I * M) = diag(M), shared by the batch.
    layer = DeepRNN(_linear_cell(recurrent_weight_dropout=RATE, seed=3), return_sequences=True)
    x = np.zeros((4, 2, WIDE), "float32")
    x[:, 0] = 1.0
    h = np_(layer(x, training=True))
    np.testing.assert_array_equal(h[:, 1], np.broadcast_to(h[:1, 1], h[:, 1].shape))
    diag = np.concatenate([np_(layer(x, training=True))[0, 1] for _ in range(8)])
    _share_and_scale(diag, RATE, "DropConnect")


@pytest.mark.parametrize("sigma", [0.075, 0.5])
def test_weight_noise_has_std_sigma_and_one_draw_per_batch(sigma):
    # Zero kernels, one constant input feature: h_1 = x @ (0 + sigma z) = sigma z.
    cell = cells.DeepTransitionCell(4 * WIDE, activation="linear", kernel_initializer="zeros",
                                    recurrent_initializer="zeros", weight_noise=sigma, seed=4)
    layer = DeepRNN(cell, return_sequences=True)
    h = np_(layer(np.ones((3, 1, 1), "float32"), training=True))[:, 0]
    np.testing.assert_array_equal(h, np.broadcast_to(h[:1], h.shape))   # shared by the batch
    assert abs(h.std() / sigma - 1) < 0.1, (h.std(), sigma)   # 1024 draws: 4.5 standard errors
    assert abs(h.mean()) < 4 * sigma / np.sqrt(h.shape[1])
    np.testing.assert_array_equal(np_(layer(np.ones((3, 1, 1), "float32")))[:, 0], 0.0)


def test_output_dropout_rate_and_scale():
    # Identity kernels, linear units: y = the mask after the hidden layer.
    head = layers.DeepOutput(WIDE, num_layers=1, hidden_units=WIDE, hidden_activation="linear",
                             activation="linear", kernel_initializer="identity", dropout=RATE, seed=5)
    y = np_(head(np.ones((MANY, 3, WIDE), "float32"), training=True))
    _share_and_scale(y, RATE, "output dropout")
    np.testing.assert_array_equal(np_(head(np.ones((2, 3, WIDE), "float32"))), 1.0)


def test_deep_input_dropout_rate_and_scale():
    g = layers.DeepInput(WIDE, num_layers=1, activation="linear", kernel_initializer="identity",
                         dropout=RATE, seed=6)
    _share_and_scale(np_(g(np.ones((MANY, 3, WIDE), "float32"), training=True)), RATE, "deep input dropout")


def test_between_level_dropout_rate_of_a_depth_gated_lstm(monkeypatch, rng):
    # The real draw's share of dropped units, read where the cell makes it.
    made = []
    real = keras.random.dropout

    def spy(inputs, rate, noise_shape=None, seed=None):
        out = real(inputs, rate, noise_shape=noise_shape, seed=seed)
        made.append((tuple(inputs.shape), np_(out)))
        return out

    monkeypatch.setattr(keras.random, "dropout", spy)
    layer = DeepRNN(cells.DepthGatedLSTMCell(WIDE // 2, num_layers=3, dropout=RATE, seed=7))
    layer(rng.normal(size=(2 * MANY, 2, D)).astype("float32"), training=True)
    masks = [m for shape, m in made if shape == (2 * MANY, D + WIDE)]
    assert len(masks) == 1
    _share_and_scale(masks[0][:, D:], RATE, "between levels")
