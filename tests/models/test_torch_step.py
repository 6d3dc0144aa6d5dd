"""The lean PyTorch training step gives Keras's own step's numbers.

On torch, `DeepRNNModel.train_step` clips and applies Adam's update with
operations dispatched straight to torch (`keras_deeprnn/models/_torch_step.py`)
where that computes what `optimizer.apply` computes, and calls
`optimizer.apply` everywhere else. Each case trains the same model from the
same weights with the lean step and with Keras's (`LEAN_STEP = False`) and
compares every weight and optimizer variable after a few steps, with
clipping active; on the other backends the step is Keras's, untouched.
"""

import inspect

import keras
import numpy as np
import pytest

import keras_deeprnn as kdr
from keras_deeprnn.models import _torch_step

TORCH = keras.backend.backend() == "torch"
STEPS = 4

OPTIMIZERS = {
    # clipnorm well under the gradients' norms, so every step clips
    "adam_clipnorm": lambda: keras.optimizers.Adam(1e-2, clipnorm=0.01),
    "sgd_momentum_clipnorm": lambda: keras.optimizers.SGD(0.1, momentum=0.9, clipnorm=0.01),
    "adam": lambda: keras.optimizers.Adam(1e-2),
    "adam_schedule_clipnorm": lambda: keras.optimizers.Adam(
        keras.optimizers.schedules.ExponentialDecay(1e-2, 2, 0.5), clipnorm=0.01),
    "adam_global_clipnorm": lambda: keras.optimizers.Adam(1e-2, global_clipnorm=0.01),
    "adam_clipvalue": lambda: keras.optimizers.Adam(1e-2, clipvalue=1e-4),
    "adam_weight_decay": lambda: keras.optimizers.Adam(1e-2, clipnorm=0.01, weight_decay=0.1),
    # not fused: through `optimizer.apply`
    "adam_ema": lambda: keras.optimizers.Adam(1e-2, clipnorm=0.01, use_ema=True),
    "adam_amsgrad": lambda: keras.optimizers.Adam(1e-2, clipnorm=0.01, amsgrad=True),
    "rmsprop": lambda: keras.optimizers.RMSprop(1e-2, clipnorm=0.01),
}
FUSED = {"adam_clipnorm", "sgd_momentum_clipnorm", "adam", "adam_schedule_clipnorm",
         "adam_global_clipnorm", "adam_clipvalue", "adam_weight_decay"}


def _data():
    rng = np.random.default_rng(0)
    frames = (rng.random((2, 6, 5)) < 0.4).astype("float32")
    return frames[:, :-1], frames[:, 1:]


def _train(lean, architecture, optimizer, monkeypatch, **options):
    """Weights, optimizer variables and losses after `STEPS` steps."""
    monkeypatch.setattr(_torch_step, "LEAN_STEP", lean)
    keras.utils.set_random_seed(0)
    model = kdr.build_model(architecture, input_dim=5, output_dim=5, units=6,
                            output_activation="sigmoid", **options)
    model.compile(optimizer=optimizer)
    x, y = _data()
    losses = [float(model.train_on_batch(x, y)) for _ in range(STEPS)]
    return ([np.array(w) for w in model.get_weights()],
            [keras.ops.convert_to_numpy(v) for v in model.optimizer.variables], losses)


def _assert_same(lean, standard):
    for got, want in zip(lean[0] + lean[1], standard[0] + standard[1]):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(lean[2], standard[2], rtol=1e-6)


# Elsewhere one case shows the step is Keras's own (and each JAX model compiles).
@pytest.mark.parametrize("name", sorted(OPTIMIZERS) if TORCH else ["adam_clipnorm"])
@pytest.mark.parametrize("architecture", ["rnn", "dots_rnn"])
def test_the_lean_step_trains_as_keras_does(name, architecture, monkeypatch):
    calls = []
    real = _torch_step.fuses
    monkeypatch.setattr(_torch_step, "fuses", lambda *a: calls.append(real(*a)) or calls[-1])
    lean = _train(True, architecture, OPTIMIZERS[name](), monkeypatch)
    standard = _train(False, architecture, OPTIMIZERS[name](), monkeypatch)
    _assert_same(lean, standard)
    if TORCH:
        # the first step builds the optimizer through `apply`; the rest fuse or not
        assert calls[1:] == [name in FUSED] * (STEPS - 1), calls
    else:
        assert calls == []  # Keras's own step, untouched


@pytest.mark.parametrize("architecture", ["rnn", "dots_rnn"])
def test_clipping_is_what_makes_the_difference(architecture, monkeypatch):
    # Without clipping the same run ends elsewhere: the cases above compare
    # clipped updates, not updates the clip left alone.
    clipped = _train(True, architecture, keras.optimizers.Adam(1e-2, clipnorm=0.01), monkeypatch)
    free = _train(True, architecture, keras.optimizers.Adam(1e-2), monkeypatch)
    assert not np.allclose(clipped[0][0], free[0][0], rtol=1e-3)


def test_constraints_and_dropout_train_as_keras_does(monkeypatch):
    options = dict(kernel_constraint="max_norm:0.5", dropout=0.3, output_dropout=0.3, seed=1)
    lean = _train(True, "dots_rnn", keras.optimizers.Adam(1e-2, clipnorm=0.01), monkeypatch, **options)
    standard = _train(False, "dots_rnn", keras.optimizers.Adam(1e-2, clipnorm=0.01), monkeypatch,
                      **options)
    _assert_same(lean, standard)


@pytest.mark.backend("torch")
def test_clipping_matches_keras_on_zero_and_nan_gradients():
    import torch

    optimizer = keras.optimizers.Adam(clipnorm=0.5)
    grads = [torch.tensor([[3.0, 4.0], [0.0, 1.0]]), torch.zeros(3), torch.tensor([0.1, -0.2]),
             torch.tensor([1.0, float("nan")]), torch.tensor([float("inf"), 1.0])]
    got = _torch_step._clipped(optimizer, grads)
    want = optimizer._clip_gradients(grads)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g.numpy(), w.numpy())
    assert got[0].abs().max() < 1  # clipped: the norm is 5.1


@pytest.mark.backend("torch")
def test_what_does_not_fuse():
    import torch

    model = kdr.build_model("rnn", input_dim=5, output_dim=5, units=6)
    variables = model.trainable_weights
    grads = [torch.zeros(v.shape) for v in variables]

    def built(optimizer):
        optimizer.build(variables)
        return optimizer

    assert _torch_step.fuses(built(keras.optimizers.Adam(clipnorm=1.0)), grads, variables)
    class MyAdam(keras.optimizers.Adam):
        pass

    refused = {
        "not built": keras.optimizers.Adam(clipnorm=1.0),
        "subclass": built(MyAdam(clipnorm=1.0)),
        "loss scaling": built(keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam())),
        "loss_scale_factor": built(keras.optimizers.Adam(loss_scale_factor=8.0)),
        "accumulation": built(keras.optimizers.Adam(gradient_accumulation_steps=2)),
        "ema": built(keras.optimizers.Adam(use_ema=True)),
        "amsgrad": built(keras.optimizers.Adam(amsgrad=True)),
        "other": built(keras.optimizers.Adagrad()),
    }
    for why, optimizer in refused.items():
        assert not _torch_step.fuses(optimizer, grads, variables), why
    adam = built(keras.optimizers.Adam())
    assert not _torch_step.fuses(adam, [None, *grads[1:]], variables), "a missing gradient"
    assert not _torch_step.fuses(adam, [], []), "no gradients"
    stranger = keras.Variable(np.zeros(3, "float32"))
    assert not _torch_step.fuses(adam, [*grads, torch.zeros(3)], [*variables, stranger]), \
        "a variable the optimizer was not built on"


@pytest.mark.backend("torch")
def test_keras_private_pieces_the_step_reads_are_there():
    # `_torch_step` mirrors Keras 3's torch `train_step` and `apply`; if a
    # Keras release renames what it reads, this fails before a step does.
    from keras.src.backend.torch.trainer import TorchTrainer

    model = kdr.build_model("rnn", input_dim=5, output_dim=5, units=6)
    model.compile()
    for name in ("_compute_loss", "_loss_tracker", "_call_has_training_arg", "compute_metrics"):
        assert hasattr(model, name), name
    adam, sgd = _torch_step._keras_torch_optimizers()
    assert type(keras.optimizers.Adam()) is adam and type(keras.optimizers.SGD()) is sgd
    optimizer = keras.optimizers.Adam(clipnorm=1.0)
    optimizer.build(model.trainable_weights)
    for name in ("_trainable_variables_indices", "_momentums", "_velocities", "_iterations",
                 "_apply_weight_decay", "_backend_update_step", "_clip_gradients"):
        assert hasattr(optimizer, name), name
    assert "optimizer.apply(gradients, trainable_weights)" in inspect.getsource(
        TorchTrainer.train_step)
