"""Presets the keras-hub way: listed on the class, loaded by name or folder,
written by `save_to_preset` and read back, safely, on the current backend."""

import json
import pickle

import keras
import numpy as np
import pytest

import keras_deeprnn as kdr
from keras_deeprnn import pretrained
from keras_deeprnn.models import hub


def _small_model(**kwargs):
    return kdr.build_model("dots_rnn", input_dim=5, output_dim=5, units=6,
                           output_activation="sigmoid", seed=1, **kwargs)


def _frames(seed=0):
    return (np.random.default_rng(seed).random((2, 7, 5)) > 0.6).astype("float32")


def test_the_class_lists_the_shipped_presets():
    names = kdr.DeepRNNModel.list_presets()
    assert names == sorted(names) == pretrained.list_presets()
    assert {"bach", "jsb"} <= set(names)
    presets = kdr.DeepRNNModel.presets
    assert list(presets) == names
    assert "DOT(S)-RNN" in presets["bach"] and "JSB_Chorales.mat" in presets["jsb"]


def test_a_folder_dropped_in_pretrained_becomes_a_preset(tmp_path, monkeypatch):
    monkeypatch.setattr(hub, "BUILT_IN", tmp_path)
    _small_model().save_to_preset(tmp_path / "tiny", description="a tiny one")
    (tmp_path / "not_a_preset").mkdir()
    assert kdr.DeepRNNModel.presets == {"tiny": "a tiny one"}
    assert kdr.DeepRNNModel.from_preset("tiny").count_params() == _small_model().count_params()


def test_from_preset_is_what_pretrained_load_returns():
    model = kdr.DeepRNNModel.from_preset("bach")
    short, record = pretrained.load("bach")
    assert isinstance(model, kdr.DeepRNNModel) and model.architecture == "dots_rnn"
    for a, b in zip(model.get_weights(), short.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert record == hub.read_record("bach")
    assert record["settings"]["architecture"] == record["architecture"] == "dots_rnn"


@pytest.mark.parametrize("name", pretrained.list_presets())
def test_the_shipped_record_holds_the_checksum_of_its_test_data(name):
    record = hub.read_record(name)
    rolls = pretrained.test_rolls(name)
    assert record["data"]["sha256"] == hub.data_checksum(rolls)
    assert record["data"]["pieces"] == len(rolls)
    assert record["data"]["frames"] == sum(len(r) for r in rolls)
    assert record["parameters"] == kdr.DeepRNNModel.from_preset(name).count_params()


def test_float16_storage_halves_the_file_and_loads_the_rounded_weights(tmp_path):
    model = kdr.build_model("dots_rnn", input_dim=20, output_dim=20, units=128,
                            output_activation="sigmoid", seed=1)
    model.set_weights([w + 0.1234567 for w in model.get_weights()])
    full = model.save_to_preset(tmp_path / "full")
    half = model.save_to_preset(tmp_path / "half", weights_dtype="float16")
    size = {p.name: (p / hub.WEIGHTS_FILE).stat().st_size for p in (full, half)}
    assert size["half"] < 0.6 * size["full"]
    again = kdr.DeepRNNModel.from_preset(half)
    for loaded, original in zip(again.get_weights(), model.get_weights()):
        assert loaded.dtype == np.float32
        np.testing.assert_array_equal(loaded, original.astype(np.float16).astype(np.float32))
    assert hub.read_record(half)["weights_dtype"] == "float16"
    assert hub.read_record(full)["weights_dtype"] == "float32"
    with pytest.raises(ValueError, match=r"`weights_dtype`.*float16.*Received: weights_dtype='int8'"):
        model.save_to_preset(tmp_path / "bad", weights_dtype="int8")
    assert not (tmp_path / "bad").exists()


def test_save_to_preset_round_trips_weights_and_record(tmp_path):
    model = _small_model()
    model.compile()
    model.fit(_frames()[:, :-1], _frames()[:, 1:], epochs=1, verbose=0)
    checksum = hub.data_checksum([_frames()])
    folder = model.save_to_preset(tmp_path / "mine", description="fitted once",
                                  scores={"loss": 0.5}, data={"name": "noise", "sha256": checksum},
                                  record={"epochs": 1})
    assert sorted(p.name for p in folder.iterdir()) == [
        "config.json", "model.weights.h5", "record.json"]
    again = kdr.DeepRNNModel.from_preset(str(folder))
    assert again.get_config() == model.get_config()
    np.testing.assert_allclose(again.predict_on_batch(_frames()),
                               model.predict_on_batch(_frames()), rtol=1e-6, atol=1e-6)
    record = json.loads((folder / "record.json").read_text())
    assert record["scores"] == {"loss": 0.5} and record["data"]["sha256"] == checksum
    assert record["epochs"] == 1 and record["description"] == "fitted once"
    assert record["backend"] == keras.backend.backend()
    assert record["keras"] == keras.__version__ and record["parameters"] == model.count_params()
    assert "compile_config" not in json.loads((folder / "config.json").read_text())


def test_saving_again_replaces_the_preset_whole(tmp_path):
    first, second = _small_model(), _small_model()
    second.set_weights([w + 1.0 for w in first.get_weights()])
    first.save_to_preset(tmp_path / "p", description="first")
    second.save_to_preset(tmp_path / "p", description="second")
    assert [p.name for p in tmp_path.iterdir()] == ["p"]  # no staging folder left
    again = kdr.DeepRNNModel.from_preset(tmp_path / "p")
    for a, b in zip(again.get_weights(), second.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert hub.read_record(tmp_path / "p")["description"] == "second"


def test_load_weights_false_gives_a_fresh_model_of_the_same_config(tmp_path):
    model = _small_model()
    model.set_weights([w + 1.0 for w in model.get_weights()])
    model.save_to_preset(tmp_path / "p")
    fresh = kdr.DeepRNNModel.from_preset(tmp_path / "p", load_weights=False)
    assert fresh.get_config() == model.get_config()
    kernel = fresh.get_weights()[0]
    assert not np.allclose(kernel, model.get_weights()[0])


@pytest.mark.parametrize("policy,compute", [("mixed_bfloat16", "bfloat16"),
                                            ("mixed_float16", "float16")])
def test_dtype_and_trainable_pass_through(policy, compute):
    before = keras.config.dtype_policy().name
    model = kdr.DeepRNNModel.from_preset("bach", dtype=policy, trainable=False)
    assert keras.config.dtype_policy().name == before  # the global policy is put back
    assert {layer.dtype_policy.name for layer in model.layers
            if layer.weights} == {policy}
    y = model(np.zeros((1, 3, 88), "float32"))
    assert keras.backend.standardize_dtype(y.dtype) == compute
    assert {keras.backend.standardize_dtype(w.dtype) for w in model.weights} == {"float32"}
    assert model.trainable_weights == [] and len(model.non_trainable_weights) > 0
    assert len(kdr.DeepRNNModel.from_preset("bach").trainable_weights) > 0


@pytest.mark.parametrize("name_or_dir", ["mozart", "no/such/folder", 3])
def test_unknown_presets_are_refused_with_the_list(name_or_dir):
    with pytest.raises(ValueError, match=r"name_or_dir.*built-in preset \(bach, .*jsb.*\).*Received"):
        kdr.DeepRNNModel.from_preset(name_or_dir)


def test_a_folder_without_a_preset_is_refused(tmp_path):
    (tmp_path / "model.weights.h5").write_bytes(b"")
    with pytest.raises(ValueError, match=r"preset \(bach, .*\).*no config.json or record.json.*Received"):
        kdr.DeepRNNModel.from_preset(tmp_path)


@pytest.mark.parametrize("argument", [{"dtype": "float12"}, {"trainable": "yes"},
                                      {"load_weights": 1}])
def test_bad_arguments_are_refused(argument):
    name = next(iter(argument))
    with pytest.raises(ValueError, match=f"`{name}`.*Received: {name}="):
        kdr.DeepRNNModel.from_preset("bach", **argument)


def test_a_preset_of_another_class_is_not_built(tmp_path):
    folder = tmp_path / "p"
    _small_model().save_to_preset(folder)
    dense = keras.saving.serialize_keras_object(keras.layers.Dense(2))
    (folder / "config.json").write_text(json.dumps(dense))
    with pytest.raises(ValueError, match="config of a DeepRNNModel.*registered_name='Dense'"):
        kdr.DeepRNNModel.from_preset(folder)


def test_a_lambda_in_a_preset_is_refused_by_safe_mode(tmp_path):
    folder = tmp_path / "p"
    _small_model().save_to_preset(folder)
    config = json.loads((folder / "config.json").read_text())
    lam = keras.saving.serialize_keras_object(keras.layers.Lambda(lambda x: x))
    config["config"]["kernel_initializer"] = lam
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="(?i)unsafe|lambda"):
        kdr.DeepRNNModel.from_preset(folder)


def test_no_pickle_is_ever_read(tmp_path, monkeypatch):
    _small_model().save_to_preset(tmp_path / "p")

    def refuse(*args, **kwargs):
        raise AssertionError("a preset was read with pickle")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(np, "load", refuse)
    kdr.DeepRNNModel.from_preset(tmp_path / "p")


def test_save_to_preset_refuses_a_folder_of_other_files(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="preset_dir.*other files.*Received"):
        _small_model().save_to_preset(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
    with pytest.raises(ValueError, match="`scores` must be a dict"):
        _small_model().save_to_preset(tmp_path / "p", scores=0.5)


def test_data_checksum_sees_values_shape_and_dtype():
    a = np.zeros((2, 3), "float32")
    checksums = {hub.data_checksum([a]), hub.data_checksum([a.reshape(3, 2)]),
                 hub.data_checksum([a.astype("float64")]), hub.data_checksum([a + 1]),
                 hub.data_checksum([a, a])}
    assert len(checksums) == 5
    assert hub.data_checksum([a]) == hub.data_checksum([np.zeros((2, 3), "float32")])
