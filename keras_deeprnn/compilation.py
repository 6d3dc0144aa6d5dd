"""Compile once, and compile what runs fastest: JAX's persistent cache, XLA on TensorFlow.

On JAX, every distinct batch shape of a train, test or predict step is a
program that XLA compiles, which takes about a second for the paper's small
models: with a dozen padded lengths (`keras_deeprnn.data.padded_length`)
that is several seconds of a short run. JAX can keep the compiled programs
on disk, keyed by the program itself, so that running the same model again
(another seed, a resumed run, `evaluate` after `train`) loads them instead.
`enable_persistent_cache` turns that on in `<cache>/jax-compilation`, where
`<cache>` is `cache_dir`, else `$KERAS_DEEPRNN_CACHE`, else
`~/.cache/keras_deeprnn`; `train`, `evaluate` and the tuner call it.

A cache folder the user set for JAX (`JAX_COMPILATION_CACHE_DIR` or
`jax.config.update("jax_compilation_cache_dir", ...)`) is kept, and
`KERAS_DEEPRNN_JAX_CACHE=0` leaves JAX's settings alone. On the other
backends this does nothing.

`choose_jit_compile` is the `jit_compile` to pass to `model.compile`: a
user's `True` or `False` as given; for `"auto"` on TensorFlow without a GPU,
XLA where it was measured to be faster (narrow models, small batches:
`benchmarks/results/xla_crossover.md`), which Keras's own `"auto"` never
picks on a CPU, provided the run trains at least `XLA_MIN_STEPS` steps;
elsewhere Keras's `"auto"`.
"""

import os

import keras

from keras_deeprnn import _checks

from keras_deeprnn.data.cache import _cache_root

DISABLE_ENV = "KERAS_DEEPRNN_JAX_CACHE"
CACHE_SUBDIR = "jax-compilation"


def enable_persistent_cache(cache_dir=None):
    """Keep JAX's compiled programs on disk; returns the folder, or `None`.

    `None` on other backends, with `KERAS_DEEPRNN_JAX_CACHE=0`, or when the
    folder cannot be created (a read-only home): compiling again is slower,
    not wrong.

    Example:

    ```python
    enable_persistent_cache()   # before the first fit on JAX
    ```
    """
    if keras.backend.backend() != "jax" or os.environ.get(DISABLE_ENV) == "0":
        return None
    import jax

    chosen = jax.config.jax_compilation_cache_dir
    if chosen:
        return chosen
    path = _cache_root(cache_dir) / CACHE_SUBDIR
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    jax.config.update("jax_compilation_cache_dir", str(path))
    # The paper's models compile in well under JAX's default threshold of a
    # second per program, and there are only a few of them: keep them all.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return str(path)


# TensorFlow on a CPU, `train_on_batch` of 64-frame piano rolls, one thread
# (`benchmarks/xla_crossover.py`, RNN, DT(S)-RNN and DOT(S)-RNN): XLA was
# 1.5-6x faster at 32 and 128 units with batch 2, 1.9-2.6x at 32 units with
# batch 16 and even (0.9-2.6x) at 128; at 256 units with batch 2 it was even
# (0.9-1.4x) and at 512 units 1.5-1.8x slower. Batches above 16 were not
# measured, so Keras's default (no XLA on a CPU) stays there. XLA's first
# step (compiling) took 2-4x as long, 3-50 s under load: paid once per
# padded length, it is worth it for a run of many steps per length.
XLA_MAX_UNITS = 128
XLA_MAX_BATCH = 16
# In the same table, where XLA was faster its compiling paid for itself
# (the first step's extra seconds over the saving per step) after 51 to
# 3,429 steps, 132 or more in 8 of the 10 cases. A run of fewer training
# steps (a quick trial, a smoke test) compiles without XLA, and loses at
# most about 2 s by it in that table; with several padded lengths each
# compiles anew, so counting the run's steps in all errs towards XLA.
XLA_MIN_STEPS = 100
_WIDTH_KEYS = ("units", "input_units", "transition_units", "output_units")


def model_width(model):
    """The widest layer a deep RNN's config names (`units` and the widths of
    g, ⊕ and ▷), or `None` for a model without them."""
    config = model.get_config() if hasattr(model, "get_config") else {}
    widths = []
    for key in _WIDTH_KEYS:
        value = config.get(key)
        values = value if isinstance(value, (list, tuple)) else [value]
        widths += [v for v in values if isinstance(v, int) and not isinstance(v, bool)]
    return max(widths) if widths else None


def choose_jit_compile(model, jit_compile="auto", batch_size=None, steps=None):
    """The `jit_compile` argument of `model.compile` for this model.

    `True` or `False` (the user's choice) is returned as given. For
    `"auto"`: on TensorFlow with no GPU, `True` when the model is at most
    `XLA_MAX_UNITS` wide, the batch (when known) at most `XLA_MAX_BATCH`,
    where XLA measured faster, and the run's training steps (`steps`, epochs
    times batches per epoch, when known) at least `XLA_MIN_STEPS`, enough to
    pay for compiling, else `False`; on a GPU, inside a
    `tf.distribute` strategy's scope, on JAX and on PyTorch, `"auto"`
    (Keras's own choice: XLA on a GPU and on JAX, none on PyTorch).

    Example:

    ```python
    model = build_model("dots_rnn", input_dim=88, output_dim=88, units=128)
    batches = piano_roll_batches(pieces, 2)
    model.compile(jit_compile=choose_jit_compile(model, batch_size=2,
                                                 steps=epochs * len(batches)))
    ```
    """
    if jit_compile is not True and jit_compile is not False and jit_compile != "auto":
        raise ValueError(
            f"`jit_compile` must be True, False or \"auto\". Received: jit_compile={jit_compile!r}"
        )
    if batch_size is not None:
        _checks.positive_int("batch_size", batch_size)
    if steps is not None:
        _checks.positive_int("steps", steps)
    if jit_compile != "auto" or keras.backend.backend() != "tensorflow":
        return jit_compile
    import tensorflow as tf

    if any(d.device_type != "CPU" for d in tf.config.list_physical_devices()):
        return "auto"
    if tf.distribute.has_strategy():
        # XLA under a distribution strategy (`MirroredStrategy` over CPU
        # replicas) fails to read the replicas' variables; Keras's own choice.
        return "auto"
    width = model_width(model)
    if width is None:
        return "auto"
    return (width <= XLA_MAX_UNITS and (batch_size is None or batch_size <= XLA_MAX_BATCH)
            and (steps is None or steps >= XLA_MIN_STEPS))
