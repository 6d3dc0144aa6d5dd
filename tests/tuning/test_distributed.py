"""Beyond one device: a chief and two workers sharing a search over gRPC on
127.0.0.1, and one model trained data-parallel on two simulated CPU devices."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

kt = pytest.importorskip("keras_tuner")

from keras_deeprnn.data import piano_roll_batches  # noqa: E402
from keras_deeprnn.tuning import DeepRNNHyperModel  # noqa: E402
from keras_deeprnn.tuning import distribution_scope  # noqa: E402
from keras_deeprnn.tuning import even_batches  # noqa: E402
from keras_deeprnn.tuning import launch_local  # noqa: E402
from keras_deeprnn.tuning import num_replicas  # noqa: E402
from keras_deeprnn.tuning import report  # noqa: E402

BACKEND = keras.backend.backend()

# Runs in a fresh process: the devices must be split before the backend starts.
# The same model, from the same initial weights, is fitted on the same batches
# once on one device and once data-parallel on two.
TWO_DEVICES = """
import json, os
backend = os.environ["KERAS_BACKEND"]
if backend == "jax":
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
else:
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
import keras_tuner
import numpy as np
from keras_deeprnn import build_model
from keras_deeprnn.data import piano_roll_batches
from keras_deeprnn.metrics import FrameNLL
from keras_deeprnn.tuning import DeepRNNHyperModel, distribution_scope, even_batches, num_replicas

rng = np.random.default_rng(0)
rolls = [(rng.random((n, 88)) < 0.1).astype("float32") for n in (9, 12, 7, 10, 8)]
batches = even_batches(piano_roll_batches(rolls, 3, shuffle=False), num_replicas("data_parallel"))
result = {"replicas": num_replicas("data_parallel"), "batch": len(batches[0][0]),
          "last_batch": len(batches[1][0])}


def fitted(initial=None):
    model = build_model("dts_rnn", input_dim=88, output_dim=88, units=4,
                        output_activation="sigmoid")
    model.compile(optimizer=keras.optimizers.SGD(0.5), weighted_metrics=[FrameNLL()])
    if initial is not None:
        model.set_weights(initial)
    start = model.get_weights()
    history = model.fit(batches, epochs=3, shuffle=False, verbose=0)
    return model, start, history.history


single, initial, single_history = fitted()
with distribution_scope("data_parallel") as distribution:
    model, start, history = fitted(initial)
    kernel = model.trainable_variables[0].value
    if backend == "jax":
        import jax
        result["devices"] = len(jax.devices())
        result["mesh"] = int(np.prod(distribution.device_mesh.shape))
        result["kernel_on"] = len(kernel.sharding.device_set)
    else:
        result["replicas_in_sync"] = distribution.num_replicas_in_sync
        result["kernel_copies"] = len(kernel.values)
        result["model_strategy"] = model.distribute_strategy is distribution
result["same_start"] = all(np.array_equal(a, b) for a, b in zip(initial, start))
result["single"] = {k: single_history[k] for k in ("loss", "frame_nll")}
result["parallel"] = {k: history[k] for k in ("loss", "frame_nll")}
result["moved"] = max(float(np.max(np.abs(a - b))) for a, b in zip(initial, single.get_weights()))
result["weight_difference"] = max(float(np.max(np.abs(a - b)))
                                  for a, b in zip(single.get_weights(), model.get_weights()))

# The hypermodel's way: the distribution is set again inside build and fit.
hypermodel = DeepRNNHyperModel(["srnn"], input_dim=88, output_dim=88, fixed={"units": 4},
                               distribute="data_parallel")
hp = keras_tuner.HyperParameters()
model = hypermodel.build(hp)
history = hypermodel.fit(hp, model, batches, validation_data=batches, epochs=1, verbose=0)
result["val_frame_nll"] = history.history["val_frame_nll"][0]
print("RESULT " + json.dumps(result))
"""


def run_on_two_devices():
    completed = subprocess.run(
        [sys.executable, "-c", TWO_DEVICES], capture_output=True, text=True, timeout=300,
        env=dict(os.environ, KERAS_BACKEND=BACKEND),
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    line = [x for x in completed.stdout.splitlines() if x.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def assert_same_fit_as_one_device(result):
    """Data-parallel fits are the single-device fit: same losses, same weights."""
    assert result["batch"] == 4 and result["last_batch"] == 2  # 3 pieces padded to 4
    assert result["same_start"]
    assert result["moved"] > 1e-3  # three epochs of SGD changed the weights
    for key in ("loss", "frame_nll"):
        np.testing.assert_allclose(result["parallel"][key], result["single"][key],
                                   rtol=1e-5, atol=1e-6, err_msg=key)
    # Float32 sums in another order, over 6 steps.
    assert result["weight_difference"] < 1e-5, result["weight_difference"]
    assert np.isfinite(result["val_frame_nll"])


@pytest.mark.skipif(BACKEND != "jax", reason="keras.distribution.DataParallel is the JAX path")
def test_data_parallel_on_two_jax_devices_fits_as_one_device():
    result = run_on_two_devices()
    assert result["devices"] == 2 and result["replicas"] == 2 and result["mesh"] == 2
    assert result["kernel_on"] == 2  # the weights are replicated on both devices
    assert_same_fit_as_one_device(result)


@pytest.mark.skipif(BACKEND != "tensorflow", reason="tf.distribute.MirroredStrategy is the TF path")
def test_mirrored_strategy_on_two_tensorflow_devices_fits_as_one_device():
    result = run_on_two_devices()
    assert result["replicas"] == 2 and result["replicas_in_sync"] == 2
    assert result["kernel_copies"] == 2 and result["model_strategy"]
    assert_same_fit_as_one_device(result)


@pytest.mark.skipif(BACKEND != "torch", reason="the torch backend's answer")
def test_torch_data_parallel_points_to_torchrun():
    with pytest.raises(ValueError, match="torchrun"):
        with distribution_scope("data_parallel"):
            pass
    with pytest.raises(ValueError, match="KERAS_BACKEND='torch'"):
        DeepRNNHyperModel(distribute="data_parallel")
    assert num_replicas(None) == 1


def test_no_distribution_is_a_plain_scope():
    with distribution_scope(None) as distribution:
        assert distribution is None
    with pytest.raises(ValueError, match="distribute"):
        with distribution_scope("pipeline"):
            pass


def test_even_batches_pad_with_zero_weight_rows():
    rolls = [np.ones((n, 88), "float32") for n in (5, 6, 7)]
    batches = even_batches(piano_roll_batches(rolls, 3, shuffle=False), 2)
    x, y, weights = batches[0]
    assert x.shape[0] == y.shape[0] == weights.shape[0] == 4
    # Every frame is a step (the first predicted from a silent start frame).
    assert not x[3].any() and not weights[3].any() and weights[:3].sum() == 5 + 6 + 7
    assert even_batches(batches.dataset, 1) is batches.dataset


@pytest.mark.slow
def test_a_chief_and_two_workers_share_the_trials(tmp_path):
    cache = tmp_path / "cache"
    argv = ["--dataset", "jsb_chorales", "--tuner", "random", "--max-trials", "4",
            "--epochs", "1", "--limit", "5", "--architectures", "rnn,srnn",
            "--fixed", "units=4", "--directory", str(tmp_path), "--project-name", "shared",
            "--cache-dir", str(cache), "--verbose", "0", "--overwrite"]
    result = launch_local(2, argv, timeout=420, chief_grace=45, log_dir=tmp_path / "logs")
    logs = {name: (tmp_path / "logs" / f"{name}.log").read_text(errors="replace")[-3000:]
            for name in result["returncodes"]}
    assert not result["timed_out"], logs
    assert result["returncodes"] == {"chief": 0, "tuner0": 0, "tuner1": 0}, logs

    project = tmp_path / "shared"
    assert result["project"] == str(project)
    # On loopback, the chief does not warn about its address.
    assert "without authentication" not in logs["chief"]
    ran = {}
    for worker in ("tuner0", "tuner1"):
        lines = (project / "tuner_logs" / f"{worker}.jsonl").read_text().splitlines()
        ran[worker] = [json.loads(x)["trial_id"] for x in lines if json.loads(x)["event"] == "end"]
    every_run = ran["tuner0"] + ran["tuner1"]
    assert sorted(every_run) == ["0", "1", "2", "3"]  # none lost, none run twice
    assert ran["tuner0"] and ran["tuner1"], ran  # both workers took trials
    oracle = json.loads((project / "oracle.json").read_text())
    assert sorted(oracle["end_order"]) == ["0", "1", "2", "3"] and not oracle["ongoing_trials"]
    rows = report(tmp_path, "shared")["rows"]
    assert [r["status"] for r in rows] == ["COMPLETED"] * 4
    assert {r["tuner_id"] for r in rows} == {"tuner0", "tuner1"}
