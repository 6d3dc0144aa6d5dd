"""Compile once: JAX's persistent compilation cache in the package's cache folder.

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
"""

import os

import keras

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
