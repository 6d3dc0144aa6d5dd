"""float32, mixed_float16 and mixed_bfloat16 against the float64 NumPy reference.

The tolerance follows the compute dtype's unit roundoff u (half the gap
between 1 and the next number: 2^-24 for float32, 2^-11 for float16, 2^-8
for bfloat16):

    max |y - y_ref| <= 16 u    and    mean |y - y_ref| <= 2 u

with the outputs in (-1, 1) (tanh, sigmoid and LSTM outputs). Layer
normalisation divides by sqrt(var + 1e-3): where a pre-activation's spread
over these 3-4 units is small, a rounding error grows by up to
1 / sqrt(1e-3) ~ 32 per normalised layer, so the layer-norm case is held
to 512 u worst and 32 u mean. Measured on the CPU, the largest errors are
about 6 u (about 275 u with layer norm, on TensorFlow), the largest mean
1.4 u (21 u with layer norm on TensorFlow, 2.4 u on JAX and torch).
Variables stay float32 under the mixed policies; the reference reads them
in float64.
"""

import keras
import numpy as np
import pytest
from keras import ops

from cases import CASE_IDS
from cases import CASES
from cases import INPUT_DIM
from cases import MODEL_CASES
from cases import make_model
from cases import model_reference
from keras_deeprnn.layers import DeepRNN

UNIT_ROUNDOFF = {"float32": 2.0**-24, "mixed_float16": 2.0**-11, "mixed_bfloat16": 2.0**-8}
COMPUTE_DTYPE = {"float32": "float32", "mixed_float16": "float16", "mixed_bfloat16": "bfloat16"}


def _check(y, expected, policy, layer_norm=False):
    u = UNIT_ROUNDOFF[policy]
    error = np.abs(ops.convert_to_numpy(ops.cast(y, "float32")).astype(np.float64) - expected)
    worst, typical = (512 * u, 32 * u) if layer_norm else (16 * u, 2 * u)
    assert error.max() <= worst, f"max error {error.max() / u:.1f} u > {worst / u:.0f} u ({policy})"
    assert error.mean() <= typical, f"mean error {error.mean() / u:.2f} u > {typical / u:.0f} u ({policy})"


@pytest.mark.parametrize("policy", list(UNIT_ROUNDOFF))
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_cell_matches_float64_reference(case, policy, rng):
    x = rng.normal(size=(4, 6, INPUT_DIM))
    keras.config.set_dtype_policy(policy)
    layer = DeepRNN(case.make(), return_sequences=True)
    y = layer(x.astype("float32"))
    assert keras.backend.standardize_dtype(y.dtype) == COMPUTE_DTYPE[policy]
    assert all(v.dtype == "float32" for v in layer.weights)
    _check(y, case.reference(layer.cell, x), policy, layer_norm="layernorm" in case.id)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("case_id", list(MODEL_CASES))
def test_model_matches_float64_reference(case_id, policy, rng):
    x = rng.normal(size=(4, 6, INPUT_DIM))
    keras.config.set_dtype_policy(policy)
    model = make_model(case_id)
    _check(model(x.astype("float32")), model_reference(model, x), policy)
