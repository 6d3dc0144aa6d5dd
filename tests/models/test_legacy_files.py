"""Models saved by an earlier release load and compute what they computed then.

The files in `tests/fixtures/legacy` were written before the cell base class
and the architecture registry existed (`made_with.json` says by what); a
refactor that renames a registered class or a config key breaks them.
"""

import os

import keras
import numpy as np
import pytest

import keras_deeprnn  # noqa: F401  (registers the classes the files name)

HERE = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures", "legacy")
EXPECTED = np.load(os.path.join(HERE, "expected.npz"))
NAMES = sorted(f[: -len(".keras")] for f in os.listdir(HERE) if f.endswith(".keras"))


def test_every_fixture_has_expected_outputs():
    assert len(NAMES) >= 8
    for name in NAMES:
        assert f"y_{name}" in EXPECTED.files


@pytest.mark.parametrize("name", NAMES)
def test_legacy_model_loads_and_predicts_as_before(name):
    model = keras.models.load_model(os.path.join(HERE, f"{name}.keras"))
    inputs = EXPECTED["tokens"] if name.startswith("rhn_tokens") else EXPECTED["x"]
    if name.endswith("_resets"):
        inputs = [inputs, EXPECTED["resets"]]
    y = np.asarray(model.predict(inputs, verbose=0))
    np.testing.assert_allclose(y, EXPECTED[f"y_{name}"], rtol=1e-4, atol=1e-5)
