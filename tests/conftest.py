"""What every test shares: a fresh Keras state, full float32 precision, no silent skips.

Precision. The NumPy references run in float64 and the comparisons expect
float32 to about 1e-5. Some accelerators multiply float32 matrices at lower
precision by default (TF32 on NVIDIA Ampere and later: about 3 decimal
digits), which alone exceeds those tolerances. The suite therefore asks
every backend for full float32 matmuls: JAX's default matmul precision is
"highest", PyTorch's and TensorFlow's TF32 switches are off. On a CPU these
settings change nothing.

Memory. A test process runs about a thousand tests, each building and
compiling its own small models. On JAX, compiled programs stay in JAX's
caches and freed memory stays with the C allocator, so one process grew
past 5 GB over a third of the suite, and two workers together neared the
machine's memory by the end. After each test module the caches are cleared
and the freed heap handed back (`_release_memory`): a process then holds
what its current module needs (about 1 GB after `tests/cells`,
`tests/metrics` and `tests/data` on JAX, against 5.2 GB without).

Compiling. On JAX each eager call of a recurrent layer compiles its time
loop anew (a new closure misses JAX's in-memory caches), and most tests
make a few such calls. The suite keeps JAX's compiled programs on disk,
keyed by the program (`keras_deeprnn.compilation.enable_persistent_cache`,
as `train` does), so a program that another test or an earlier call
already compiled is loaded instead: one folder per test process under the
system's temporary folder (no two processes write the same files), kept
between runs; a folder the user chose (`JAX_COMPILATION_CACHE_DIR`) is used
instead, and `KERAS_DEEPRNN_JAX_CACHE=0` compiles everything anew.

Skips. A test that skips because a package of `pip install .[all,test]` is
missing is a broken install, not a passing run: with `CI=true` (as
`.ci/run` sets) or `KDR_REQUIRE_ALL=1` such a skip is reported as a
failure. Tests that belong to one backend carry `@pytest.mark.backend(name)`
and skip, saying so, under the others.
"""

import ctypes
import ctypes.util
import gc
import os
import re

import keras
import numpy as np
import pytest

BACKEND = keras.backend.backend()

# Every package `pip install .[all,test]` provides whose absence a test may skip on.
REQUIRED_PACKAGES = {
    "music21", "matplotlib", "tqdm", "keras_tuner", "sklearn", "scipy", "nbclient",
    "nbformat", "ipykernel", "tensorflow", "jax", "torch", "xdist", "tensorboard",
}


def _full_float32_matmuls():
    if BACKEND == "jax":
        import jax

        jax.config.update("jax_default_matmul_precision", "highest")
    elif BACKEND == "torch":
        import torch

        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.set_float32_matmul_precision("highest")
    elif BACKEND == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_tensor_float_32_execution(False)


_full_float32_matmuls()


def _keep_compiled_programs():
    import getpass
    import tempfile

    from keras_deeprnn import compilation

    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # a user id without a name (some containers)
        user = str(os.getuid()) if hasattr(os, "getuid") else "user"
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    folder = os.path.join(tempfile.gettempdir(), f"keras-deeprnn-tests-{user}", worker)
    return compilation.enable_persistent_cache(folder)


_keep_compiled_programs()


def require_all_packages():
    return os.environ.get("CI", "").lower() in ("1", "true") or os.environ.get("KDR_REQUIRE_ALL") == "1"


def missing_required_package(reason):
    """The required package a skip reason says is missing, or None."""
    match = re.search(r"could not import '([\w.]+)'", str(reason))
    if match and match.group(1).split(".")[0] in REQUIRED_PACKAGES:
        return match.group(1)
    return None


def _fail_required_skip(report):
    if not report.skipped or not require_all_packages():
        return
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else longrepr
    package = missing_required_package(reason)
    if package is not None:
        report.outcome = "failed"
        report.longrepr = (
            f"skipped because {package!r} is missing, but `pip install .[all,test]` installs it "
            f"(CI=true makes this a failure). Original reason: {reason}"
        )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _fail_required_skip(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _fail_required_skip(outcome.get_result())


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "backend(name): the test belongs to one Keras backend and skips under the others"
    )


def pytest_runtest_setup(item):
    marker = item.get_closest_marker("backend")
    if marker is not None and marker.args[0] != BACKEND:
        pytest.skip(f"belongs to the {marker.args[0]} backend (running {BACKEND})")


@pytest.fixture(autouse=True)
def _fresh_keras():
    keras.utils.set_random_seed(1234)
    keras.config.set_dtype_policy("float32")
    yield
    keras.config.set_dtype_policy("float32")


@pytest.fixture(autouse=True, scope="module")
def _release_memory():
    yield
    if BACKEND == "jax":
        import jax

        jax.clear_caches()  # a later module compiles what it needs again
    gc.collect()
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def _malloc_trim():
    """glibc's `malloc_trim`, which hands the allocator's free memory back
    to the system, or None under another C library."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim
    except (OSError, AttributeError, TypeError):
        return None


_MALLOC_TRIM = _malloc_trim()


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def pytest_report_header(config):
    return f"keras backend: {BACKEND} (KERAS_BACKEND={os.environ.get('KERAS_BACKEND')!r})"


class RecordedTuner:
    """A stand-in for `TUNERS["random"]` that keeps what `run_search` hands
    the tuner (`options`) and stops the search there with `Stop`, before any
    data is loaded; with `build=True` it makes the real tuner first
    (`tuners`), so its oracle's draws can be read."""

    class Stop(Exception):
        pass

    def __init__(self, real):
        self.real, self.build = real, False
        self.options, self.tuners = {}, []

    def __call__(self, **options):
        self.options.update(options)
        if self.build:
            self.tuners.append(self.real(**options))
        raise self.Stop()


@pytest.fixture
def recorded_tuner(monkeypatch):
    """`run_search`'s random tuner replaced by a `RecordedTuner` for the test."""
    from keras_deeprnn.tuning import search

    recorder = RecordedTuner(search.TUNERS["random"])
    monkeypatch.setitem(search.TUNERS, "random", recorder)
    return recorder


@pytest.fixture
def toy_row():
    """`toy_row(free=(), **values)` registers the row `toy_rnn` (a Keras
    `SimpleRNNCell`, which supports no option; `free` and `values` as in
    `register_architecture`) for the test; the row is removed afterwards."""
    from keras_deeprnn import models

    def register(free=(), **values):
        factory = models.CellFactory(
            "toy", lambda units, depth, options, cell_args: keras.layers.SimpleRNNCell(units))
        return models.register_architecture("toy_rnn", factory, "toy", "", free=free, **values)

    yield register
    models.ARCHITECTURES.pop("toy_rnn", None)
