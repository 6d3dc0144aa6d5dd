"""Gradients of a Keras computation on whichever backend is active (tests only)."""

import keras
import numpy as np


def value_and_grads(fn, variables):
    """`fn()` returns a scalar built from `variables`; returns (value, [grads])."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = fn()
        grads = tape.gradient(loss, variables)
        return float(loss), [np.asarray(g, dtype=np.float64) for g in grads]
    if backend == "torch":
        import torch

        loss = fn()
        grads = torch.autograd.grad(loss, [v.value for v in variables])
        return float(loss.detach()), [g.detach().cpu().numpy().astype(np.float64) for g in grads]
    if backend == "jax":
        import jax

        def pure(values):
            with keras.StatelessScope(state_mapping=list(zip(variables, values))):
                return fn()

        loss, grads = jax.value_and_grad(pure)([v.value for v in variables])
        return float(loss), [np.asarray(g, dtype=np.float64) for g in grads]
    raise NotImplementedError(backend)
