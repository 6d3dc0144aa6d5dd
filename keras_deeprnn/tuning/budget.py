"""Counting a model's parameters, as a parameter budget needs it done."""

import contextlib

import keras

from keras_deeprnn.models import build_model

# The largest `units` a derived width may reach; far beyond any budget here.
MAX_DERIVED_UNITS = 2**16


@contextlib.contextmanager
def counting():
    """Yields `count(architecture, kwargs)`; clears the session on exit."""
    policy = keras.config.dtype_policy()
    distribution = keras.distribution.distribution()

    def count(architecture, kwargs):
        # No weight is initialised: on JAX that would compile one program per
        # new shape, seconds per model.
        with keras.StatelessScope(initialize_variables=False):
            return build_model(architecture, **kwargs).count_params()

    try:
        yield count
    finally:
        keras.backend.clear_session(free_memory=False)
        keras.config.set_dtype_policy(policy)
        if distribution is not None:
            keras.distribution.set_distribution(distribution)
