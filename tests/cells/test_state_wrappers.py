"""Zoneout and per-example state resets: training-time behaviour, models, errors.

The NumPy checks of both wrappers at inference (every cell-contract test
too) are cases of `cases.py`; here is what those cannot see.
"""

import keras
import numpy as np
import pytest
from keras import ops

import reference as ref
from cases import weights_of
from keras_deeprnn import build_model
from keras_deeprnn.cells import DeepOutputCell
from keras_deeprnn.cells import DeepTransitionCell
from keras_deeprnn.cells import StackedCells
from keras_deeprnn.cells import StateResetCell
from keras_deeprnn.cells import ZoneoutCell
from keras_deeprnn.layers import DeepOutput
from keras_deeprnn.layers import DeepRNN


def np_(x):
    return ops.convert_to_numpy(x)


def test_zoneout_in_training_keeps_each_unit_or_takes_the_new_value(rng):
    # Each unit at each step is either its previous value or the cell's new
    # value from the zoned previous state, about `rate` of them the former,
    # with a fresh draw at every step.
    rate, units = 0.3, 16
    x = rng.normal(size=(64, 12, 3)).astype("float32")
    layer = DeepRNN(ZoneoutCell(DeepTransitionCell(units, num_transition_layers=2, shortcut=True),
                                zoneout=rate, seed=1), return_sequences=True)
    h = np_(layer(x, training=True)).astype(np.float64)
    w = weights_of(layer.cell)
    previous = np.concatenate([np.zeros((64, 1, units)), h[:, :-1]], axis=1)
    fresh = np.stack([ref.dt_step(x[:, t], previous[:, t], w, 2, True) for t in range(12)], 1)
    kept = np.isclose(h, previous, atol=1e-6)
    updated = np.isclose(h, fresh, atol=1e-5)
    assert np.all(kept | updated)
    distinct = ~np.isclose(previous, fresh, atol=1e-4)
    share = kept[distinct].mean()
    assert abs(share - rate) < 0.03, share
    patterns = kept[:, 1:].reshape(64, 11, units)
    assert not np.all(patterns[:, 0] == patterns[:, 1]), "the same draw at every step"
    # ... and a new draw for the next batch.
    again = np_(layer(x, training=True))
    assert not np.allclose(again, h)


def test_zoneout_of_an_lstm_zones_both_states(rng):
    x = rng.normal(size=(32, 8, 3)).astype("float32")
    cell = ZoneoutCell(keras.layers.LSTMCell(8), zoneout=0.5, seed=2)
    layer = DeepRNN(cell, return_sequences=True, return_state=True)
    h_seq, h_last, c_last = (np_(t) for t in layer(x, training=True))
    np.testing.assert_allclose(h_seq[:, -1], h_last, atol=1e-6)
    # At inference the expectation: the states move half-way each step.
    plain = DeepRNN(cell.cell, return_sequences=True)
    assert not np.allclose(np_(layer(x)[0]), np_(plain(x)), atol=1e-3)


def test_zoneout_trains_in_a_model_on_every_backend(rng):
    model = build_model("dts_rnn", input_dim=3, output_dim=2, units=8, zoneout=0.2, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    x, y = rng.normal(size=(8, 6, 3)), rng.normal(size=(8, 6, 2))
    before = [np_(v) for v in model.trainable_weights]
    history = model.fit(x, y, epochs=2, batch_size=4, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert all(not np.allclose(np_(v), b) for v, b in zip(model.trainable_weights, before))


@pytest.mark.backend("jax")   # only JAX's traced loop cannot draw
def test_zoneout_in_a_plain_rnn_on_jax_says_to_use_deep_rnn(rng):
    layer = keras.layers.RNN(ZoneoutCell(DeepTransitionCell(4), zoneout=0.2))
    with pytest.raises(RuntimeError, match="DeepRNN"):
        layer(rng.normal(size=(2, 3, 3)).astype("float32"), training=True)


@pytest.mark.backend("jax")   # only JAX's traced loop cannot draw
def test_zoneout_stepped_by_a_deep_output_cell_inside_deep_rnn_names_the_way_out(rng):
    # Wrapped in DeepRNN, but DeepOutputCell calls its cell step by step: the
    # message must say what works instead, not to wrap it in DeepRNN again.
    cell = DeepOutputCell(ZoneoutCell(DeepTransitionCell(4), zoneout=0.1), DeepOutput(2))
    with pytest.raises(RuntimeError, match="DeepOutputCell.*DeepOutput layer after.*zoneout=0.1"):
        DeepRNN(cell)(rng.normal(size=(2, 3, 3)).astype("float32"), training=True)


def _zone(units=4):
    return ZoneoutCell(DeepTransitionCell(units), zoneout=0.1)


# Stepped by keras.layers.RNN, a zoned level draws per step wherever it sits:
# a level of a stack, inside a StateResetCell, or under a ZoneoutCell of its own.
STEPPED_ZONEOUT = {
    "stack": lambda: StackedCells([_zone(), _zone()]),
    "reset_level": lambda: StackedCells([StateResetCell(_zone())]),
    "reset": lambda: StateResetCell(_zone()),
    "zoneout_around_stack": lambda: ZoneoutCell(StackedCells([_zone()]), zoneout=0.0),
}


@pytest.mark.backend("jax")   # only JAX's traced loop cannot draw
@pytest.mark.parametrize("name", list(STEPPED_ZONEOUT))
def test_a_zoneout_stack_in_a_plain_rnn_on_jax_says_to_use_deep_rnn(name, rng):
    with pytest.raises(RuntimeError, match="use DeepRNN"):
        keras.layers.RNN(STEPPED_ZONEOUT[name]())(
            rng.normal(size=(2, 3, 3)).astype("float32"), training=True)


def _zoned(units=5, zoneout=0.5, seed=None, **cell_options):
    inner = DeepTransitionCell(units, num_transition_layers=2, shortcut=True, **cell_options)
    return ZoneoutCell(inner, zoneout=zoneout, seed=seed)


ZONED_STACKS = {
    "two_levels": lambda: StackedCells([_zoned(seed=1), _zoned(seed=2)]),
    "skip": lambda: StackedCells([_zoned(seed=1), _zoned(seed=2)], skip_connections=True),
    # a level without draws but with per-sequence dropout, between zoned ones
    "dropout_between": lambda: StackedCells([_zoned(seed=1), DeepTransitionCell(5, dropout=0.3, seed=3),
                                             _zoned(seed=2)]),
    # draws forwarded through a wrapper and through a stack inside the stack
    "reset_of_zoneout": lambda: StackedCells([StateResetCell(_zoned(seed=1)), _zoned(seed=2)]),
    "nested": lambda: StackedCells([_zoned(seed=1),
                                    StackedCells([DeepTransitionCell(5), _zoned(seed=2)])]),
}


@pytest.mark.parametrize("name", list(ZONED_STACKS))
def test_a_stack_of_zoneout_cells_trains_in_deep_rnn_on_every_backend(name, rng):
    # JAX's traced loop cannot draw: the stack draws every level's decisions
    # of the sequence before it.
    x = rng.normal(size=(4, 6, 3)).astype("float32")
    x[..., -1] = rng.random((4, 6)) < 0.2   # the reset flags, where a level reads them
    model = keras.Sequential([keras.Input((6, 3)),
                              DeepRNN(ZONED_STACKS[name](), return_sequences=True),
                              keras.layers.Dense(2)])
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    before = [np_(v) for v in model.trainable_weights]
    history = model.fit(x, rng.normal(size=(4, 6, 2)), epochs=1, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert all(not np.allclose(np_(v), b) for v, b in zip(model.trainable_weights, before))


@pytest.mark.skipif(keras.backend.backend() == "jax",
                    reason="torch and tensorflow only: JAX's traced loop cannot draw")
def test_a_stack_of_zoneout_cells_trains_in_a_plain_rnn_on_torch_and_tensorflow(rng):
    model = keras.Sequential([keras.Input((6, 3)), keras.layers.RNN(ZONED_STACKS["skip"]()),
                              keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    history = model.fit(rng.normal(size=(4, 6, 3)), rng.normal(size=(4, 2)), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def _stack_reference(x, levels, keeps, mask=None, go_backwards=False, states=None):
    """Every level's states of a skip-connected stack of zoned DT(S) cells (two
    transition layers), one per step in the order the steps run (the last
    step first with `go_backwards`): `levels` holds each level's (weights,
    h_0), `keeps` its keep decisions `(batch, time, units)` in training
    (`keep[:, t]` those of the step that reads `x[:, t]`) or its rate at
    inference (the expectation). One level is a zoned cell alone. Where
    `mask[:, t]` is 0 the step leaves every state as it was. `states`, where
    given, replaces the h_0s and receives the last states."""
    batch, steps, _ = x.shape
    h = states if states is not None else [np.broadcast_to(h0, (batch, h0.shape[-1])) for _, h0 in levels]
    out = [[] for _ in levels]
    for t in reversed(range(steps)) if go_backwards else range(steps):
        for l, ((w, _), keep) in enumerate(zip(levels, keeps)):
            level_input = x[:, t] if l == 0 else np.concatenate([x[:, t], h[l - 1]], -1)
            k = keep[:, t] if np.ndim(keep) else keep
            new = k * h[l] + (1 - k) * ref.dt_step(level_input, h[l], w, 2, True)
            h[l] = new if mask is None else np.where(mask[:, t, None], new, h[l])
            out[l].append(h[l])
    return [np.stack(o, 1) for o in out]


def _held_stack(rng, units=5, lone=False, batch_size=None, **layer_options):
    """A skip-connected stack of two zoned levels (`lone`: one zoned cell
    alone), each starting from its own non-zero learned h_0, in a `DeepRNN`
    returning sequences; the layer, its zoned cells, and the weights and
    h_0 of each (`_zoned_levels`)."""
    zoned = [_zoned(units, seed=1 + l, trainable_initial_state=True) for l in range(1 if lone else 2)]
    cell = zoned[0] if lone else StackedCells(zoned, skip_connections=True)
    layer = DeepRNN(cell, return_sequences=True, **layer_options)
    layer.build((batch_size, None, 3))
    return (layer, *_zoned_levels(layer, rng))


def _zoned_levels(layer, rng):
    """New random weights for a built layer holding zoned DT(S) cells (as a
    lone cell or the levels of a stack); its zoned cells and the (weights,
    h_0) of each, as `_stack_reference` reads them."""
    for v in layer.weights:
        v.assign(rng.normal(size=v.shape).astype("float32") * 0.5)
    if getattr(layer, "stateful", False):
        layer.reset_state()   # the states start at the h_0 just set
    cells = [layer.cell] if isinstance(layer.cell, ZoneoutCell) else list(layer.cell.cells)
    levels = []
    for level in cells:
        w = weights_of(level.cell)
        levels.append((w, w["initial_state"]))
    return cells, levels


def _fix_keeps(cells, rng, batch, steps):
    """Random keep decisions (half of them "keep") fixed for each zoned cell."""
    keeps = []
    for cell in cells:
        width = sum(cell.state_widths)
        keeps.append((rng.random((batch, steps, width)) < 0.5).astype("float32"))
        cell.fix_draws({"zoneout": keeps[-1]})
    return keeps


@pytest.mark.parametrize("held", [0, 1], ids=["lower_held", "upper_held"])
def test_each_zoneout_level_of_a_stack_gets_its_own_decisions(held, rng):
    # Every unit of one level keeps its value (all decisions "keep", as a
    # zoneout rate of 1 would draw), every unit of the other takes the new
    # one (rate 0): the held level stays at its h_0 through the sequence, the
    # other equals its plain cell fed by the held one.
    units, batch, steps = 5, 3, 6
    layer, zoned, levels = _held_stack(rng, units)
    x = rng.normal(size=(batch, steps, 3)).astype("float32")
    keeps = [np.full((batch, steps, units), float(l == held), "float32") for l in range(2)]
    for level, keep in zip(zoned, keeps):
        level.fix_draws({"zoneout": keep})
    y = np_(layer(x, training=True)).astype(np.float64)
    lower, upper = y[..., :units], y[..., units:]
    np.testing.assert_allclose([lower, upper][held],
                               np.broadcast_to(levels[held][1], (batch, steps, units)), atol=1e-6)
    free = 1 - held
    assert not np.allclose([lower, upper][free][:, 1:], [lower, upper][free][:, :-1], atol=1e-3)
    expected = _stack_reference(x.astype(np.float64), levels, keeps)
    np.testing.assert_allclose(lower, expected[0], atol=1e-5)
    np.testing.assert_allclose(upper, expected[1], atol=1e-5)


def test_a_zoneout_stack_draws_every_level_and_step_anew_and_infers_the_expectation(rng):
    # Random decisions: each level has its own, fresh at every step (as a
    # zoneout cell draws alone), about `rate` of them "keep", and the states
    # follow them; at inference the expectation, as without the stack.
    rate, units, batch, steps = 0.4, 5, 32, 6
    layer, zoned, levels = _held_stack(rng, units)
    for level in zoned:
        level.zoneout = rate
    x = rng.normal(size=(batch, steps, 3)).astype("float32")
    y = np_(layer(x, training=True)).astype(np.float64)
    keeps = [np_(level.last_draws["zoneout"]) for level in zoned]
    for keep in keeps:
        assert keep.shape == (batch, steps, units) and set(np.unique(keep)) == {0.0, 1.0}
        assert abs(keep.mean() - rate) < 0.05, keep.mean()
        assert not np.array_equal(keep[:, 0], keep[:, 1]), "the same decisions at every step"
    assert not np.array_equal(keeps[0], keeps[1]), "the same decisions at both levels"
    expected = _stack_reference(x.astype(np.float64), levels, keeps)
    np.testing.assert_allclose(y, np.concatenate(expected, -1), atol=1e-5)
    # Inference: no draws, the expectation, the same as a plain RNN's.
    inferred = np_(layer(x)).astype(np.float64)
    expected = _stack_reference(x.astype(np.float64), levels, [rate, rate])
    np.testing.assert_allclose(inferred, np.concatenate(expected, -1), atol=1e-5)
    plain = keras.layers.RNN(layer.cell, return_sequences=True)
    np.testing.assert_allclose(np_(plain(x)), inferred, atol=1e-6)


# Keras's layer options around a zoned cell alone and around a stack of zoned
# levels, in training, against the NumPy steps: `keep[:, t]` goes with the
# step that reads x[:, t], whichever order the steps run in and whichever
# steps a mask skips.
ZONED_LAYOUTS = {"lone": True, "stack": False}
BATCH, STEPS = 2, 6
# Masked steps inside the sequences and at the end of one; the first step of
# each row is not masked (where it is, what a masked first step outputs
# differs between Keras's backends).
MASK = np.array([[1, 1, 0, 1, 0, 0], [1, 0, 0, 1, 1, 1]], bool)


@pytest.mark.parametrize("source", ["argument", "masking_layer"])
@pytest.mark.parametrize("layout", list(ZONED_LAYOUTS))
def test_zoneout_under_a_mask_keeps_masked_steps_and_aligns_the_rest(layout, source, rng):
    # A masked step keeps every state (and outputs the previous output, or
    # zeros with zero_output_for_mask); the other steps use their own
    # decisions, not those of the steps before a gap.
    zero_output = source == "masking_layer"
    layer, zoned, levels = _held_stack(rng, lone=ZONED_LAYOUTS[layout], zero_output_for_mask=zero_output)
    x = rng.normal(size=(BATCH, STEPS, 3)).astype("float32")
    keeps = _fix_keeps(zoned, rng, BATCH, STEPS)
    if source == "argument":
        y = layer(x, mask=MASK, training=True)
    else:
        x = x * MASK[..., None]
        y = keras.Sequential([keras.Input((STEPS, 3)), keras.layers.Masking(), layer])(x, training=True)
    expected = np.concatenate(_stack_reference(x.astype(np.float64), levels, keeps, mask=MASK), -1)
    if zero_output:
        expected = expected * MASK[..., None]
    np.testing.assert_allclose(np_(y), expected, atol=1e-5)


@pytest.mark.parametrize("layout", list(ZONED_LAYOUTS))
def test_zoneout_going_backwards_gives_each_step_its_own_decisions(layout, rng):
    # The loop runs x[:, 5] first, with keep[:, 5]; the outputs come in that order.
    layer, zoned, levels = _held_stack(rng, lone=ZONED_LAYOUTS[layout], go_backwards=True)
    x = rng.normal(size=(BATCH, STEPS, 3)).astype("float32")
    keeps = _fix_keeps(zoned, rng, BATCH, STEPS)
    expected = _stack_reference(x.astype(np.float64), levels, keeps, go_backwards=True)
    np.testing.assert_allclose(np_(layer(x, training=True)), np.concatenate(expected, -1), atol=1e-5)


@pytest.mark.parametrize("layout", list(ZONED_LAYOUTS))
def test_zoneout_in_a_masked_bidirectional_layer_matches_both_directions(layout, rng):
    # Two layers, each with its own weights and decisions; the backward one
    # runs last step first, and Bidirectional turns its outputs back to
    # time order and zeroes the masked steps.
    layer, _, _ = _held_stack(rng, lone=ZONED_LAYOUTS[layout])
    both = keras.layers.Bidirectional(layer)
    both.build((None, None, 3))
    x = rng.normal(size=(BATCH, STEPS, 3)).astype("float32")
    expected = []
    for direction in (both.forward_layer, both.backward_layer):
        zoned, levels = _zoned_levels(direction, rng)
        keeps = _fix_keeps(zoned, rng, BATCH, STEPS)
        states = _stack_reference(x.astype(np.float64), levels, keeps, mask=MASK,
                                  go_backwards=direction.go_backwards)
        expected.append(np.concatenate(states, -1)[:, ::-1 if direction.go_backwards else 1])
    y = np_(both(x, mask=MASK, training=True))
    np.testing.assert_allclose(y, np.concatenate(expected, -1) * MASK[..., None], atol=1e-5)


@pytest.mark.parametrize("policy_of", ["layer", "global"])
@pytest.mark.parametrize("layout", list(ZONED_LAYOUTS))
def test_zoneout_under_mixed_float16_matches_float64(layout, policy_of, rng):
    # `dtype` on the layer alone: the cells compute in float32, the layer's
    # inputs and outputs are float16. The global policy: the cells too, so
    # the decisions and the kept or updated states are float16. Within 16
    # units of float16's roundoff at worst and 2 on average, as every cell.
    u = 2.0**-11
    if policy_of == "global":
        keras.config.set_dtype_policy("mixed_float16")   # the fixture restores float32
    options = {"dtype": "mixed_float16"} if policy_of == "layer" else {}
    layer, zoned, levels = _held_stack(rng, lone=ZONED_LAYOUTS[layout], return_state=True, **options)
    x = rng.normal(size=(BATCH, STEPS, 3)).astype("float32")
    keeps = _fix_keeps(zoned, rng, BATCH, STEPS)
    y, *states = layer(x, training=True)
    assert {keras.backend.standardize_dtype(t.dtype) for t in keras.tree.flatten([y, states])} == {"float16"}
    error = np.abs(np_(y).astype(np.float64)
                   - np.concatenate(_stack_reference(x.astype(np.float64), levels, keeps), -1))
    assert error.max() <= 16 * u and error.mean() <= 2 * u, (error.max() / u, error.mean() / u)
    # A step as DeepRNN runs it: the output and the kept or updated states in
    # the cells' compute dtype (the layer's casts at the end would hide a step
    # that computed in float32).
    compute = "float16" if policy_of == "global" else "float32"
    projected = layer.cell.project_inputs(ops.cast(x, "float16"), training=True)
    output, new = layer.cell.recurrent_step(projected[:, 0], layer.cell.get_initial_state(BATCH),
                                            training=True)
    assert {keras.backend.standardize_dtype(t.dtype) for t in keras.tree.flatten([output, new])} == {compute}
    # Drawn at random: 0 or 1 in the cells' compute dtype, and the states follow them.
    for cell in zoned:
        cell.fix_draws(None)
    y = np_(layer(x, training=True)[0]).astype(np.float64)
    keeps = [cell.last_draws["zoneout"] for cell in zoned]
    assert {keras.backend.standardize_dtype(k.dtype) for k in keeps} == {compute}
    keeps = [np_(k).astype(np.float64) for k in keeps]
    assert set(np.unique(np.concatenate(keeps, -1))) == {0.0, 1.0}
    error = np.abs(y - np.concatenate(_stack_reference(x.astype(np.float64), levels, keeps), -1))
    assert error.max() <= 16 * u and error.mean() <= 2 * u, (error.max() / u, error.mean() / u)


def test_zoneout_alone_and_in_a_stack_trains_under_mixed_float16(rng):
    # A loss-scaled step, the cells in float16 (the global policy), on every
    # backend, with finite numbers: a zoneout cell around a stack of zoned
    # levels draws its own decisions and has the stack draw its levels'.
    keras.config.set_dtype_policy("mixed_float16")   # the fixture restores float32
    cell = ZoneoutCell(StackedCells([_zoned(seed=1), _zoned(seed=2)]), zoneout=0.3, seed=3)
    model = keras.Sequential([keras.Input((STEPS, 3)), DeepRNN(cell, return_sequences=True),
                              keras.layers.Dense(2)])
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    before = [np_(v) for v in model.trainable_weights]
    history = model.fit(rng.normal(size=(BATCH, STEPS, 3)), rng.normal(size=(BATCH, STEPS, 2)),
                        epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert all(not np.allclose(np_(v), b) for v, b in zip(model.trainable_weights, before))
    assert all(np.all(np.isfinite(np_(v))) for v in model.trainable_weights)


@pytest.mark.parametrize("layout", list(ZONED_LAYOUTS))
def test_zoneout_in_a_stateful_layer_carries_the_zoned_states_and_draws_per_half(layout, rng):
    # Two halves of a sequence: the second starts from the states the first
    # left (zoned with the first half's last decisions), and draws its own.
    layer, zoned, levels = _held_stack(rng, lone=ZONED_LAYOUTS[layout], batch_size=BATCH,
                                       stateful=True)
    x = rng.normal(size=(BATCH, STEPS, 3)).astype("float32")
    halves, keeps = [], []
    for half in (x[:, :3], x[:, 3:]):
        halves.append(np_(layer(half, training=True)))
        keeps.append([np_(cell.last_draws["zoneout"]) for cell in zoned])
    assert all(not np.array_equal(first, second) for first, second in zip(*keeps)), "the same draws twice"
    keeps = [np.concatenate(both, 1) for both in zip(*keeps)]
    expected = np.concatenate(_stack_reference(x.astype(np.float64), levels, keeps), -1)
    np.testing.assert_allclose(np.concatenate(halves, 1), expected, atol=1e-5)


@pytest.mark.parametrize("output_option", [{"dropout": 0.5}, {"weight_noise": 0.3}],
                         ids=["dropout", "weight_noise"])
def test_deep_output_cell_draws_once_per_sequence_and_trains(output_option, rng):
    # With a zero recurrent kernel and a constant input, h_t is the same at
    # every step, so the output is too only if the output layer's draws are.
    inner = DeepTransitionCell(5, recurrent_initializer="zeros", seed=1)
    head = DeepOutput(2, num_layers=1, hidden_units=6, seed=2, **output_option)
    layer = DeepRNN(DeepOutputCell(inner, head), return_sequences=True)
    x = np.repeat(rng.normal(size=(4, 1, 3)).astype("float32"), 5, axis=1)
    trained = np_(layer(x, training=True))
    np.testing.assert_allclose(trained, np.repeat(trained[:, :1], 5, axis=1), atol=1e-6)
    assert not np.allclose(trained, np_(layer(x, training=False)), atol=1e-4)
    # and fit runs on every backend (JAX's traced loop refuses draws inside it)
    model = keras.Sequential([keras.Input((5, 3)), layer])
    model.compile(optimizer="adam", loss="mse")
    history = model.fit(x, rng.normal(size=(4, 5, 2)), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


@pytest.mark.skipif(keras.backend.backend() == "jax",
                    reason="torch and tensorflow only: JAX's traced loop cannot draw")
def test_zoneout_in_a_plain_rnn_draws_at_each_step_on_torch_and_tensorflow(rng):
    layer = keras.layers.RNN(ZoneoutCell(DeepTransitionCell(8), zoneout=0.5, seed=0),
                             return_sequences=True)
    x = rng.normal(size=(16, 6, 3)).astype("float32")
    h = np_(layer(x, training=True))
    kept = np.isclose(h[:, 1:], h[:, :-1], atol=1e-7)
    assert 0.3 < kept.mean() < 0.7


def _packed(rng, lengths, features=3):
    """One row holding sequences one after another, and their reset flags."""
    pieces = [rng.normal(size=(1, n, features)).astype("float32") for n in lengths]
    flags = np.concatenate([np.eye(1, n, 0, dtype="float32") for n in lengths], axis=1)
    return pieces, np.concatenate(pieces, axis=1), flags


@pytest.mark.parametrize("make", [
    lambda: DeepTransitionCell(5, num_transition_layers=2, shortcut=True,
                               trainable_initial_state=True),
    lambda: keras.layers.GRUCell(5),
    lambda: StackedCells([DeepTransitionCell(5), DeepTransitionCell(5)]),
], ids=["dts_h0", "keras_gru", "stacked"])
def test_a_packed_row_equals_its_sequences_run_alone(make, rng):
    pieces, packed, flags = _packed(rng, [4, 3, 5])
    layer = DeepRNN(StateResetCell(make()), return_sequences=True)
    layer.build((None, None, 4))
    if layer.cell.cell.weights[-1].name == "initial_state":  # a non-zero learned h_0
        layer.cell.cell.weights[-1].assign(rng.normal(size=(5,)))
    y = np_(layer(np.concatenate([packed, flags[..., None]], axis=-1)))
    start = 0
    for piece in pieces:
        n = piece.shape[1]
        alone = np_(layer(np.concatenate([piece, np.eye(1, n, 0, dtype="float32")[..., None]], -1)))
        np.testing.assert_allclose(y[:, start:start + n], alone, atol=1e-5)
        start += n
    # Without the flags the state leaks from one sequence into the next.
    leaky = np_(layer(np.concatenate([packed, np.zeros_like(flags)[..., None]], axis=-1)))
    assert not np.allclose(leaky[:, 4:7], y[:, 4:7], atol=1e-3)


def test_resets_in_a_stateful_model_across_batches(rng):
    # Streams cut into windows: a sequence that starts inside the second
    # window starts from the initial state, the others carry on.
    model = build_model("srnn", input_dim=3, output_dim=2, units=6, state_resets=True,
                        zoneout=0.1, stateful=True, batch_size=2, seed=0)
    x = rng.normal(size=(2, 8, 3)).astype("float32")
    resets = np.zeros((2, 8), "float32")
    resets[:, 0] = 1
    resets[1, 5] = 1
    whole = build_model("srnn", input_dim=3, output_dim=2, units=6, state_resets=True,
                        zoneout=0.1, batch_size=2, seed=0)
    whole.set_weights(model.get_weights())
    expected = np_(whole([x, resets]))
    first = np_(model([x[:, :4], resets[:, :4]]))
    second = np_(model([x[:, 4:], resets[:, 4:]]))
    np.testing.assert_allclose(np.concatenate([first, second], 1), expected, atol=1e-5)
    # Row 1 restarted at step 5: its steps 5.. equal a fresh run of them.
    fresh = np_(whole([x[1:2, 5:].repeat(2, 0), np.eye(1, 3, 0, dtype="float32").repeat(2, 0)]))
    np.testing.assert_allclose(expected[1, 5:], fresh[0], atol=1e-5)


@pytest.mark.parametrize("architecture", ["rnn", "dots_rnn", "rhn", "gf_rnn", "dg_lstm",
                                          "deep_lstm", "deep_gru", "dots_lstm"])
def test_every_architecture_takes_zoneout_and_resets_and_saves(architecture, rng, tmp_path):
    model = build_model(architecture, input_dim=3, output_dim=2, units=4, zoneout=0.2,
                        state_resets=True, seed=0)
    x = rng.normal(size=(2, 5, 3)).astype("float32")
    resets = np.zeros((2, 5), "float32")
    resets[:, 0] = resets[0, 2] = 1
    model.compile(loss="mse")
    model.fit([x, resets], rng.normal(size=(2, 5, 2)), verbose=0)
    y = np_(model([x, resets]))
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(np_(loaded([x, resets])), y, atol=1e-6)
    # The flag matters: without it row 0's steps 2.. carry the old state.
    assert not np.allclose(np_(model([x, np.eye(1, 5, 0, dtype="float32").repeat(2, 0)]))[0, 2:],
                           y[0, 2:], atol=1e-4)


def test_zoneout_per_level(rng):
    model = build_model("srnn", input_dim=3, units=4, num_layers=2, zoneout=[0.0, 0.3])
    levels = [layer.cell for layer in model.layers if isinstance(layer, DeepRNN)]
    assert isinstance(levels[0], DeepTransitionCell)
    assert isinstance(levels[1], ZoneoutCell) and levels[1].zoneout == 0.3


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="zoneout"):
        ZoneoutCell(DeepTransitionCell(4), zoneout=1.5)
    with pytest.raises(ValueError, match="zoneout"):
        build_model("rnn", input_dim=3, zoneout=-0.1)
    with pytest.raises(ValueError, match="zoneout.*one value per level"):
        build_model("srnn", input_dim=3, num_layers=2, zoneout=[0.1])
    with pytest.raises(ValueError, match="not one of its states"):
        ZoneoutCell(DeepOutputCell(DeepTransitionCell(4), DeepOutput(2)))
    with pytest.raises(ValueError, match="not one of its states"):
        StateResetCell(StackedCells([DeepTransitionCell(4)], skip_connections=True))
    with pytest.raises(ValueError, match="reset flag"):
        DeepRNN(StateResetCell(DeepTransitionCell(4)))(np.zeros((1, 2, 1), "float32"))
    with pytest.raises(ValueError, match="bidirectional"):
        build_model("rnn", input_dim=3, state_resets=True, bidirectional=True)
    model = build_model("rnn", input_dim=3, output_dim=2, units=4, state_resets=True)
    with pytest.raises(ValueError, match="frames.*resets"):
        model(np.zeros((1, 2, 3), "float32"))
    with pytest.raises(ValueError, match="resets"):
        model([np.zeros((1, 2, 3), "float32"), np.zeros((1, 3), "float32")])
    y = model({"frames": np.zeros((1, 2, 3), "float32"), "resets": np.ones((1, 2), "float32")})
    assert tuple(y.shape) == (1, 2, 2)
