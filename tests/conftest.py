import os

import keras
import numpy as np
import pytest

BACKEND = keras.backend.backend()


@pytest.fixture(autouse=True)
def _fresh_keras():
    keras.utils.set_random_seed(1234)
    keras.config.set_dtype_policy("float32")
    yield
    keras.config.set_dtype_policy("float32")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def pytest_report_header(config):
    return f"keras backend: {BACKEND} (KERAS_BACKEND={os.environ.get('KERAS_BACKEND')!r})"
