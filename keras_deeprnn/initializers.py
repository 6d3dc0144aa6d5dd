"""Sparse initialisation of recurrent weights, as used by Pascanu et al.

Martens (2010) and Sutskever et al. (2013) give each unit a fixed, small
number of non-zero incoming weights; Pascanu et al. then rescale the matrix
so that its largest singular value is 1, which keeps the linearised
recurrence neither exploding nor vanishing at the start of training.
"""

import keras
import numpy as np

from keras_deeprnn import _checks


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class SparseInitializer(keras.initializers.Initializer):
    """Each unit (column) gets `num_nonzero` Gaussian incoming weights.

    ```python
    w = zeros((fan_in, fan_out))
    for j in range(fan_out):
        rows = random_subset(fan_in, min(num_nonzero, fan_in))
        w[rows, j] = normal(0, stddev)
    if max_singular_value is not None:
        w *= max_singular_value / largest_singular_value(w)
    ```

    Args:
        num_nonzero: non-zero incoming weights per unit (the paper: 20).
        stddev: standard deviation of the non-zero weights.
        max_singular_value: rescale to this spectral norm (the paper: 1);
            `None` keeps the raw draw.
        seed: an int for a reproducible draw; `None` draws from NumPy's
            global generator, which `keras.utils.set_random_seed` seeds.

    Example:

    ```python
    cell = DeepTransitionCell(256, recurrent_initializer=SparseInitializer(20))
    ```

    Reference: Pascanu et al. 2014, section on training; Sutskever, Martens,
    Dahl, Hinton, *On the importance of initialization and momentum*, 2013.
    """

    def __init__(self, num_nonzero=20, stddev=1.0, max_singular_value=1.0, seed=None):
        self.num_nonzero = _checks.positive_int("num_nonzero", num_nonzero)
        if not stddev > 0:
            raise ValueError(f"`stddev` must be > 0. Received: stddev={stddev!r}")
        if max_singular_value is not None and not max_singular_value > 0:
            raise ValueError(
                "`max_singular_value` must be > 0 or None. "
                f"Received: max_singular_value={max_singular_value!r}"
            )
        self.stddev = float(stddev)
        self.max_singular_value = max_singular_value
        self.seed = _checks.seed("seed", seed)

    def __call__(self, shape, dtype=None):
        if len(shape) != 2:
            raise ValueError(
                f"SparseInitializer makes 2-D kernels. Received: shape={tuple(shape)}"
            )
        fan_in, fan_out = shape
        rng = np.random.default_rng(
            self.seed if self.seed is not None else np.random.randint(2**31)
        )
        w = np.zeros((fan_in, fan_out))
        k = min(self.num_nonzero, fan_in)
        for j in range(fan_out):
            rows = rng.choice(fan_in, size=k, replace=False)
            w[rows, j] = rng.normal(0.0, self.stddev, size=k)
        if self.max_singular_value is not None:
            norm = np.linalg.norm(w, 2)
            if norm > 0:
                w *= self.max_singular_value / norm
        return keras.ops.convert_to_tensor(w, dtype=dtype or keras.config.floatx())

    def get_config(self):
        return {
            "num_nonzero": self.num_nonzero,
            "stddev": self.stddev,
            "max_singular_value": self.max_singular_value,
            "seed": self.seed,
        }
