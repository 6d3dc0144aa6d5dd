"""TensorFlow under XLA: `DeepRNN` reads its cell's weights once, before the time loop.

Read inside TensorFlow's `while_loop`, a weight is a new tensor at every
step and the loop's gradient keeps a copy of it per frame; read before, it
is kept once (`deep_rnn._WeightsReadOnce`). These tests compile a forward
and backward pass with `jit_compile=True` and check that the numbers are
`keras.layers.RNN`'s (outputs and every weight's gradient, a cell of each
family of `tests/cases.py` and the regularised cells of
`test_fast_paths.py` in training), that
the loop's body reads no weight where the library says it does not (and
still reads them without XLA, unrolled, or switched off), that an enclosing
`stateless_call`'s weights are the ones used, and that a variable assigned
inside the loop is still assigned at every step.
"""

import keras
import numpy as np
import pytest
from keras import ops

from cases import CASES
from cases import INPUT_DIM
from layer_pairs import assert_same_gradients
from layer_pairs import listed
from layer_pairs import pair
from keras_deeprnn import cells as kc
from keras_deeprnn.layers import DeepRNN
from keras_deeprnn.layers import deep_rnn as deep_rnn_module

from test_fast_paths import CELLS

BATCH, STEPS = 2, 5
TENSORFLOW = pytest.mark.backend("tensorflow")


def _inputs(rng, steps=STEPS):
    return rng.normal(size=(BATCH, steps, INPUT_DIM)).astype("float32")


def _compiled_value_and_grads(layer, training, jit_compile=True):
    """`layer`'s outputs and the gradients of a loss over them, as one
    `tf.function` (XLA with `jit_compile`)."""
    import tensorflow as tf

    @tf.function(jit_compile=jit_compile)
    def run(x, weight):
        with tf.GradientTape() as tape:
            outputs = listed(layer(x, training=training))
            y = ops.concatenate([ops.reshape(ops.cast(t, "float32"), (BATCH, -1)) for t in outputs], axis=-1)
            loss = ops.sum(ops.tanh(y) * weight)
        return outputs, tape.gradient(loss, layer.trainable_variables)

    return run


def _run(layer, x, training, jit_compile=True):
    outputs = listed(layer(x, training=training))  # builds, and sizes the loss weight
    width = sum(int(np.prod(t.shape[1:])) for t in outputs)
    weight = np.random.default_rng(1).normal(size=(BATCH, width)).astype("float32")
    outputs, grads = _compiled_value_and_grads(layer, training, jit_compile)(x, weight)
    return [np.asarray(t) for t in outputs], [np.asarray(g) for g in grads]


def _loop_body_reads(layer, x, training=False, jit_compile=True):
    """How many variable reads the bodies of the forward time loops hold,
    in the compiled forward and backward pass of `layer`."""
    listed(layer(x, training=training))
    run = _compiled_value_and_grads(layer, training, jit_compile)
    width = sum(int(np.prod(t.shape[1:])) for t in listed(layer(x, training=training)))
    graph = run.get_concrete_function(x, np.zeros((BATCH, width), "float32")).graph
    library = graph.as_graph_def().library.function
    bodies = [f for f in library if "while_body" in f.signature.name and "grad" not in f.signature.name]
    assert bodies, "no time loop found"
    return sum(node.op == "ReadVariableOp" for f in bodies for node in f.node_def)


# One case of each cell family of the table (every case compiles twice
# with XLA), and the regularised cells in training, where their draws are
# made before the loop.
FAMILIES = ("rnn", "dts_L3_narrow", "dts_L3_layernorm_h0", "dg_lstm_3", "dts_lstm_L2", "rhn_L3_h0",
            "gf_rnn_3", "stacked_skip", "zoneout_dts_L2", "reset_dts_lstm_h0", "dots_lp")
EQUAL_CASES = [
    *(pytest.param(case.make, False, id=f"{case.id}-inference") for case in CASES
      if case.id in FAMILIES),
    *(pytest.param(make, True, id=f"{name}-training") for name, make in CELLS.items()),
]


class _Spy(deep_rnn_module._WeightsReadOnce):
    entered = []

    def __init__(self, weights):
        self.entered.append(len(weights))
        super().__init__(weights)


def test_elsewhere_the_weights_are_read_as_keras_reads_them(rng, monkeypatch):
    # Eager calls on every backend, and JAX's and PyTorch's compiled steps:
    # only TensorFlow's while_loop stacks what its body reads.
    monkeypatch.setattr(deep_rnn_module, "_WeightsReadOnce", _Spy)
    monkeypatch.setattr(_Spy, "entered", [])
    model = keras.Sequential([keras.Input((STEPS, INPUT_DIM)),
                              DeepRNN(_deep_transition(), return_sequences=True), keras.layers.Dense(1)])
    x = _inputs(rng)
    model(x, training=True)
    if keras.backend.backend() != "tensorflow":
        model.compile(optimizer="adam", loss="mse", jit_compile=keras.backend.backend() == "jax")
        model.train_on_batch(x, np.zeros((BATCH, STEPS, 1), "float32"))
    assert _Spy.entered == []


def test_every_family_named_is_a_case_of_the_table():
    assert set(FAMILIES) <= {case.id for case in CASES}


@TENSORFLOW
@pytest.mark.parametrize("make, training", EQUAL_CASES)
def test_compiled_deep_rnn_equals_keras_rnn(make, training, rng):
    reference, fast = pair(rng, make, INPUT_DIM, BATCH, return_sequences=True)
    x = _inputs(rng)
    got, got_grads = _run(fast, x, training)
    want, want_grads = _run(reference, x, training)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, atol=2e-5)
    assert_same_gradients(got_grads, want_grads, fast.trainable_variables)


def _deep_transition():
    return kc.DeepTransitionCell(4, num_transition_layers=2, shortcut=True)


@TENSORFLOW
def test_under_xla_the_loop_body_reads_no_weight_and_otherwise_reads_them(rng, monkeypatch):
    x = _inputs(rng)
    assert _loop_body_reads(DeepRNN(_deep_transition(), return_sequences=True), x) == 0
    # The same loop without XLA, and under XLA with the choice switched off.
    assert _loop_body_reads(DeepRNN(_deep_transition(), return_sequences=True), x,
                            jit_compile=False) > 0
    monkeypatch.setattr(deep_rnn_module, "READ_WEIGHTS_ONCE", False)
    assert _loop_body_reads(DeepRNN(_deep_transition(), return_sequences=True), x) > 0


@TENSORFLOW
def test_the_scope_is_entered_only_for_a_compiled_rolled_loop(rng, monkeypatch):
    monkeypatch.setattr(deep_rnn_module, "_WeightsReadOnce", _Spy)
    monkeypatch.setattr(_Spy, "entered", [])
    x = _inputs(rng)
    layer = DeepRNN(_deep_transition(), return_sequences=True)
    _run(layer, x, training=False)
    # Once, with every trainable weight of the cell: the eager call does not enter it.
    assert _Spy.entered == [len(layer.cell.trainable_weights)], _Spy.entered
    _Spy.entered.clear()
    _run(DeepRNN(_deep_transition(), return_sequences=True), x, training=False, jit_compile=False)
    _run(DeepRNN(_deep_transition(), return_sequences=True, unroll=True), x, training=False)
    assert _Spy.entered == []


@TENSORFLOW
def test_stateless_call_uses_the_weights_it_is_given(rng):
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((STEPS, INPUT_DIM)),
                              DeepRNN(_deep_transition(), return_sequences=True)])
    x = _inputs(rng)
    given = [np.asarray(v) * 2 + 0.1 for v in model.trainable_variables]

    def call(trainable):
        return model.stateless_call(trainable, [v.value for v in model.non_trainable_variables], x)[0]

    compiled = tf.function(call, jit_compile=True)(given)
    plain = call(given)  # eager: the weights read at every step
    np.testing.assert_allclose(np.asarray(compiled), np.asarray(plain), atol=2e-5)
    assert not np.allclose(np.asarray(plain), np.asarray(model(x)), atol=1e-3)


class _CountingCell(kc.DeepTransitionCell):
    """Counts its steps in a variable that it reads and assigns inside the loop."""

    def build(self, input_shape):
        super().build(input_shape)
        self.steps_taken = self.add_weight(shape=(), initializer="zeros", trainable=False,
                                           name="steps_taken")

    def recurrent_step(self, projected, states, training=False):
        self.steps_taken.assign(self.steps_taken + 1.0)
        return super().recurrent_step(projected, states, training)


@TENSORFLOW
def test_a_variable_assigned_in_the_loop_is_assigned_at_every_step(rng, monkeypatch):
    counts = {}
    for read_once in (True, False):
        monkeypatch.setattr(deep_rnn_module, "READ_WEIGHTS_ONCE", read_once)
        cell = _CountingCell(4)
        _run(DeepRNN(cell, return_sequences=True), _inputs(rng), training=False)
        counts[read_once] = float(cell.steps_taken.numpy())
    # An eager and a compiled call, STEPS steps each (plus the step Keras's
    # loop runs once to learn the output's shape), as when read at every step.
    assert counts[True] == counts[False] >= 2 * STEPS


@TENSORFLOW
def test_a_float32_cell_in_a_mixed_precision_layer_gives_the_numbers_of_a_read_every_step(monkeypatch):
    """Under mixed precision the loop reads the weights as Keras's does (a
    `float32` cell in a `mixed_float16` layer computed different numbers
    with its weights read once): the same outputs and gradients with the
    switch on and off."""
    x = _inputs(np.random.default_rng(7))
    cell = kc.DeepTransitionCell(6, num_transition_layers=2, shortcut=True, dtype="float32")
    layer = DeepRNN(cell, return_sequences=True, dtype="mixed_float16")
    once = _run(layer, x, training=False)
    monkeypatch.setattr(deep_rnn_module, "READ_WEIGHTS_ONCE", False)
    every = _run(layer, x, training=False)
    for a, b in zip(once[0] + once[1], every[0] + every[1]):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
