"""A model saved under one backend loads under the others with the same outputs."""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np

import keras_deeprnn as kdr

LOAD = textwrap.dedent(
    """
    import sys, numpy as np, keras
    import keras_deeprnn  # registers the classes; no custom_objects needed
    model = keras.models.load_model(sys.argv[1])
    x = np.load(sys.argv[2])
    np.save(sys.argv[3], np.asarray(model.predict(x, verbose=0)))
    """
)


def test_save_here_load_under_every_other_backend(tmp_path, rng):
    model = kdr.build_model("dots_rnn", input_dim=6, output_dim=6, units=5,
                            output_activation="sigmoid", output_hidden_activation="lp")
    x = rng.normal(size=(2, 7, 6)).astype("float32")
    expected = model.predict(x, verbose=0)
    model.save(tmp_path / "m.keras")
    np.save(tmp_path / "x.npy", x)
    script = tmp_path / "load.py"
    script.write_text(LOAD)
    for backend in {"tensorflow", "jax", "torch"} - {keras.backend.backend()}:
        env = dict(os.environ, KERAS_BACKEND=backend)
        out = tmp_path / f"{backend}.npy"
        run = subprocess.run(
            [sys.executable, str(script), str(tmp_path / "m.keras"), str(tmp_path / "x.npy"), str(out)],
            env=env, capture_output=True, text=True, timeout=300,
        )
        assert run.returncode == 0, run.stderr[-2000:]
        np.testing.assert_allclose(np.load(out), expected, atol=1e-5, err_msg=backend)
