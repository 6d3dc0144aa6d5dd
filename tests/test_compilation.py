"""The `jit_compile` choice: a user's choice kept, XLA on TensorFlow's CPU
where it is faster and the run long enough to pay for compiling; and JAX's
persistent cache of compiled programs, where `enable_persistent_cache` puts it."""

import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_deeprnn import build_model
from keras_deeprnn import compilation
from keras_deeprnn import training
from keras_deeprnn.compilation import XLA_MAX_BATCH
from keras_deeprnn.compilation import XLA_MAX_UNITS
from keras_deeprnn.compilation import XLA_MIN_STEPS
from keras_deeprnn.compilation import choose_jit_compile

import small_runs

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _model(architecture="dots_rnn", **kwargs):
    return build_model(architecture, input_dim=5, output_dim=5, output_activation="sigmoid",
                       **{"units": 8, **kwargs})


@pytest.fixture
def tensorflow_on_cpu(monkeypatch):
    """The rule as TensorFlow on a machine without a GPU sees it, on any backend."""
    tf = pytest.importorskip("tensorflow")
    monkeypatch.setattr(keras.backend, "backend", lambda: "tensorflow")
    monkeypatch.setattr(tf.config, "list_physical_devices",
                        lambda *a: [tf.config.PhysicalDevice("/physical_device:CPU:0", "CPU")])


@pytest.mark.parametrize("explicit", [True, False])
def test_an_explicit_choice_is_returned_as_given_on_every_backend(explicit):
    for model in (_model(units=8), _model(units=XLA_MAX_UNITS + 1)):
        assert choose_jit_compile(model, explicit) is explicit
        assert choose_jit_compile(model, explicit, batch_size=1000) is explicit
        assert choose_jit_compile(model, explicit, steps=1) is explicit


@pytest.mark.parametrize("explicit", [True, False])
def test_an_explicit_choice_is_kept_on_tensorflow_without_a_gpu(tensorflow_on_cpu, explicit):
    narrow, wide = _model(units=8), _model(units=4 * XLA_MAX_UNITS)
    assert choose_jit_compile(narrow, explicit) is explicit
    assert choose_jit_compile(wide, explicit, batch_size=2) is explicit
    assert choose_jit_compile(narrow, explicit, steps=1) is explicit


def test_auto_on_tensorflow_without_a_gpu_picks_xla_for_narrow_models_and_small_batches(
        tensorflow_on_cpu):
    assert choose_jit_compile(_model(units=8)) is True
    assert choose_jit_compile(_model(units=XLA_MAX_UNITS)) is True
    assert choose_jit_compile(_model(units=XLA_MAX_UNITS + 1)) is False
    assert choose_jit_compile(_model(units=8), batch_size=XLA_MAX_BATCH) is True
    assert choose_jit_compile(_model(units=8), batch_size=XLA_MAX_BATCH + 1) is False
    # The widest layer decides, whichever option names it.
    assert choose_jit_compile(_model("dt_rnn", units=8, transition_units=XLA_MAX_UNITS + 1)) is False
    assert choose_jit_compile(_model("srnn", num_layers=2, units=[8, XLA_MAX_UNITS + 1])) is False
    assert choose_jit_compile(_model("dots_rnn", units=8, output_units=XLA_MAX_UNITS + 1)) is False


def test_auto_on_tensorflow_without_a_gpu_skips_xla_for_runs_too_short_to_pay_for_it(
        tensorflow_on_cpu):
    narrow = _model(units=8)
    assert choose_jit_compile(narrow, batch_size=2, steps=XLA_MIN_STEPS) is True
    assert choose_jit_compile(narrow, batch_size=2, steps=XLA_MIN_STEPS - 1) is False
    assert choose_jit_compile(narrow, steps=1) is False
    # A long run does not make XLA worth it where it is slower per step.
    assert choose_jit_compile(_model(units=XLA_MAX_UNITS + 1), steps=10**6) is False


@pytest.mark.parametrize("steps", [0, -3, 2.5, True])
def test_steps_that_are_not_a_positive_count_are_refused_by_name(steps):
    with pytest.raises(ValueError, match=r"`steps` must be a positive integer\. Received: steps="):
        choose_jit_compile(_model(units=8), steps=steps)


def test_train_chooses_with_its_runs_training_steps(tmp_path, monkeypatch):
    seen = []
    real = compilation.choose_jit_compile

    def spy(model, jit_compile="auto", batch_size=None, steps=None):
        choice = real(model, jit_compile, batch_size=batch_size, steps=steps)
        seen.append((batch_size, steps, choice))
        return choice

    monkeypatch.setattr(compilation, "choose_jit_compile", spy)
    data = small_runs.write_data(tmp_path / "set.pickle")
    training.train(small_runs.config(tmp_path / "run", data, epochs=3))
    # Six training pieces in batches of 2, for 3 epochs: 9 steps, too few for XLA.
    assert [(batch_size, steps) for batch_size, steps, _ in seen] == [(2, 9)]
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        if not tf.config.list_physical_devices("GPU"):
            assert seen[0][2] is False


class RecordJitCompile(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seen = []

    def on_train_begin(self, logs=None):
        self.seen.append(self.model.jit_compile)


def test_a_resumed_run_chooses_again_for_the_steps_it_has_left(tmp_path, monkeypatch):
    seen = []
    real = compilation.choose_jit_compile

    def spy(model, jit_compile="auto", batch_size=None, steps=None):
        seen.append(steps)
        return real(model, jit_compile, batch_size=batch_size, steps=steps)

    monkeypatch.setattr(compilation, "choose_jit_compile", spy)
    data = small_runs.write_data(tmp_path / "set.pickle")
    first = RecordJitCompile()
    training.train(small_runs.config(tmp_path / "run", data, epochs=1), callbacks=[first])
    # Asked for more epochs, the run goes on with enough steps left for XLA.
    epochs = 1 + -(-XLA_MIN_STEPS // 3)
    again = RecordJitCompile()
    training.train(small_runs.config(tmp_path / "run", data, epochs=epochs), callbacks=[again])
    assert seen == [3, (epochs - 1) * 3]
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        if not tf.config.list_physical_devices("GPU"):
            assert (first.seen, again.seen) == ([False], [True])


def test_auto_is_left_to_keras_on_a_gpu_and_for_models_without_widths(tensorflow_on_cpu,
                                                                       monkeypatch):
    import tensorflow as tf

    plain = keras.Sequential([keras.Input((None, 5)), keras.layers.Dense(3)])
    assert compilation.model_width(plain) is None
    assert choose_jit_compile(plain) == "auto"
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda *a: [
        tf.config.PhysicalDevice("/physical_device:CPU:0", "CPU"),
        tf.config.PhysicalDevice("/physical_device:GPU:0", "GPU")])
    assert choose_jit_compile(_model(units=8)) == "auto"


def test_auto_under_a_distribution_strategy_is_left_to_keras(tensorflow_on_cpu, monkeypatch):
    import tensorflow as tf

    assert choose_jit_compile(_model(units=8), batch_size=2) is True
    monkeypatch.setattr(tf.distribute, "has_strategy", lambda: True)
    assert choose_jit_compile(_model(units=8), batch_size=2) == "auto"


def test_auto_elsewhere_than_tensorflow_is_keras_own_choice(monkeypatch):
    for backend in ("jax", "torch"):
        monkeypatch.setattr(keras.backend, "backend", lambda: backend)
        assert choose_jit_compile(_model(units=8), batch_size=2) == "auto"


def test_model_width_is_the_widest_layer_named():
    assert compilation.model_width(_model("rnn", units=12)) == 12
    assert compilation.model_width(_model("srnn", num_layers=3, units=[4, 30, 6])) == 30
    assert compilation.model_width(_model("dt_rnn", units=4, transition_units=50)) == 50


@pytest.mark.parametrize("value", ["yes", None, 1, "Auto"])
def test_a_jit_compile_that_is_not_a_choice_is_refused_by_name(value):
    with pytest.raises(ValueError, match=r"`jit_compile` must be True, False or \"auto\"\. "
                                         rf"Received: jit_compile={value!r}"):
        choose_jit_compile(_model(), value)


@pytest.mark.parametrize("value", [0, -2, 1.5, "2"])
def test_a_batch_size_that_is_not_positive_is_refused_by_name(value):
    with pytest.raises((ValueError, TypeError), match="batch_size"):
        choose_jit_compile(_model(), batch_size=value)


def test_the_choice_reaches_the_compiled_model_and_it_trains():
    x = (np.random.default_rng(0).random((2, 6, 5)) < 0.3).astype("float32")
    explicit = _model(units=8, dropout=0.2)
    explicit.compile(jit_compile=choose_jit_compile(explicit, False))
    assert explicit.jit_compile is False
    chosen = _model(units=8, dropout=0.2)
    choice = choose_jit_compile(chosen, batch_size=2)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        assert choice is (not tf.config.list_physical_devices("GPU"))
    if choice == "auto" and keras.backend.backend() == "torch":
        return  # Keras's "auto" on PyTorch: no compiling, as `explicit` above
    chosen.compile(jit_compile=choice)
    # XLA compiles the whole step, dropout included.
    loss = chosen.train_on_batch(x[:, :-1], x[:, 1:])
    assert np.isfinite(loss)


_JAX_CACHE_SETTINGS = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
                       "jax_persistent_cache_min_entry_size_bytes")


@pytest.fixture
def no_jax_cache(monkeypatch):
    """JAX as a process that chose no cache folder sees it (on JAX; the
    settings the test found come back afterwards), with neither of the
    project's cache variables set."""
    monkeypatch.delenv(compilation.DISABLE_ENV, raising=False)
    monkeypatch.delenv("KERAS_DEEPRNN_CACHE", raising=False)
    if keras.backend.backend() != "jax":
        yield None
        return
    import jax

    before = {name: getattr(jax.config, name) for name in _JAX_CACHE_SETTINGS}
    jax.config.update("jax_compilation_cache_dir", None)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    yield jax.config
    for name, value in before.items():
        jax.config.update(name, value)


def test_the_cache_goes_under_the_cache_folder_on_jax_and_nowhere_elsewhere(tmp_path,
                                                                             no_jax_cache):
    folder = compilation.enable_persistent_cache(tmp_path)
    if no_jax_cache is None:  # TensorFlow and torch: nothing to keep, nothing made
        assert folder is None and list(tmp_path.iterdir()) == []
        return
    assert folder == str(tmp_path / "jax-compilation") and (tmp_path / "jax-compilation").is_dir()
    assert no_jax_cache.jax_compilation_cache_dir == folder
    # Every program is kept, however quickly it compiled.
    assert no_jax_cache.jax_persistent_cache_min_compile_time_secs == 0.0


@pytest.mark.backend("jax")
def test_without_a_cache_dir_the_cache_folder_comes_from_the_environment(tmp_path, no_jax_cache,
                                                                         monkeypatch):
    monkeypatch.setenv("KERAS_DEEPRNN_CACHE", str(tmp_path / "from_env"))
    assert compilation.enable_persistent_cache() == str(tmp_path / "from_env" / "jax-compilation")


@pytest.mark.backend("jax")
def test_a_folder_chosen_for_jax_is_kept(tmp_path, no_jax_cache):
    no_jax_cache.update("jax_compilation_cache_dir", str(tmp_path / "mine"))
    assert compilation.enable_persistent_cache(tmp_path / "ours") == str(tmp_path / "mine")
    assert no_jax_cache.jax_compilation_cache_dir == str(tmp_path / "mine")
    assert not (tmp_path / "ours").exists()


@pytest.mark.backend("jax")
def test_the_switch_off_and_a_folder_that_cannot_be_made_leave_jax_as_it_was(tmp_path,
                                                                             no_jax_cache,
                                                                             monkeypatch):
    monkeypatch.setenv(compilation.DISABLE_ENV, "0")
    assert compilation.enable_persistent_cache(tmp_path) is None
    assert list(tmp_path.iterdir()) == []
    monkeypatch.delenv(compilation.DISABLE_ENV)
    blocked = tmp_path / "a_file"
    blocked.write_text("not a folder")  # the cache folder cannot be made inside it
    assert compilation.enable_persistent_cache(blocked) is None
    assert no_jax_cache.jax_compilation_cache_dir is None
    assert no_jax_cache.jax_persistent_cache_min_compile_time_secs == 1.0


@pytest.mark.backend("jax")
def test_a_program_compiled_after_enabling_is_written_to_the_folder(tmp_path):
    # In a fresh process: JAX sets its cache up once, at its first compile.
    code = ("import sys, jax, jax.numpy as jnp\n"
            "from keras_deeprnn import compilation\n"
            "print(compilation.enable_persistent_cache(sys.argv[1]))\n"
            "jax.jit(lambda x: jnp.sin(x) * 3.0)(jnp.ones(7)).block_until_ready()\n")
    env = {k: v for k, v in os.environ.items()
           if k not in ("JAX_COMPILATION_CACHE_DIR", compilation.DISABLE_ENV)}
    env.update(KERAS_BACKEND="jax", PYTHONPATH=os.pathsep.join(
        [str(ROOT), env.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=300, check=True)
    folder = tmp_path / "jax-compilation"
    assert done.stdout.strip().endswith(str(folder))
    assert [f for f in folder.iterdir() if f.name.endswith("-cache")]
