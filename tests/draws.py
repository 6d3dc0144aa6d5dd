"""Known random draws for training-mode tests.

`FixedDraws` stands in for `keras.random.dropout`, `normal` and `uniform`
while a test runs: each call draws from a seeded NumPy generator with the
distribution the real function has (dropout keeps with probability
1 - rate and scales kept entries by 1 / (1 - rate); normal uses the mean and
stddev it is given; uniform its bounds) and records the standard draw
behind it: which entries dropout kept, the N(0, 1) numbers, the U(0, 1)
numbers. The test rebuilds the training forward pass in NumPy from those
standard draws and the rate or sigma the TEST configured, so a cell that
passes the wrong rate or sigma to the draw fails. Draws are looked up by
kind and shape, not by the order in which a cell makes them.
"""

import keras
import numpy as np
from keras import ops


class FixedDraws:
    def __init__(self, monkeypatch, seed=0):
        self.rng = np.random.default_rng(seed)
        self.log = []
        monkeypatch.setattr(keras.random, "dropout", self.dropout)
        monkeypatch.setattr(keras.random, "normal", self.normal)
        monkeypatch.setattr(keras.random, "uniform", self.uniform)

    @staticmethod
    def _shape(shape):
        return tuple(int(s) for s in shape)

    def dropout(self, inputs, rate, noise_shape=None, seed=None):
        shape = self._shape(noise_shape if noise_shape is not None else ops.shape(inputs))
        kept = self.rng.random(shape) >= rate
        self.log.append(("dropout", shape, float(rate), kept))
        return inputs * ops.convert_to_tensor(kept / (1.0 - rate), dtype=inputs.dtype)

    def normal(self, shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
        shape = self._shape(shape)
        z = self.rng.standard_normal(shape)
        self.log.append(("normal", shape, float(stddev), z))
        return ops.convert_to_tensor(mean + stddev * z, dtype=dtype or keras.config.floatx())

    def uniform(self, shape, minval=0.0, maxval=1.0, dtype=None, seed=None):
        shape = self._shape(shape)
        u = self.rng.random(shape)
        self.log.append(("uniform", shape, float(maxval - minval), u))
        return ops.convert_to_tensor(minval + (maxval - minval) * u, dtype=dtype or keras.config.floatx())

    def all(self, kind, shape):
        """Every draw of `kind` with `shape`, in the order they were made."""
        shape = tuple(shape)
        return [value for k, s, _, value in self.log if k == kind and s == shape]

    def mask(self, shape, rate):
        """The dropout mask of shape `shape`, scaled as `rate` says it must be."""
        return self.one("dropout", shape) / (1.0 - rate)

    def noise(self, shape, stddev):
        """The weight noise of shape `shape`, at the `stddev` the test set."""
        return stddev * self.one("normal", shape)

    def one(self, kind, shape):
        """The single draw of `kind` with `shape` (fails if there is none or several)."""
        found = self.all(kind, shape)
        made = [(k, s) for k, s, _, _ in self.log]
        assert len(found) == 1, f"expected one {kind} draw of shape {tuple(shape)}; made: {made}"
        return found[0]

    def clear(self):
        self.log.clear()
