"""Presets as keras-hub has them: a folder of config, weights and a record.

A preset is a folder with three files, all of them read without pickles:

| file | what it holds |
| --- | --- |
| `config.json` | the model's Keras config (`keras.saving.serialize_keras_object`) |
| `model.weights.h5` | its weights (`model.save_weights`; float32, or float16 to halve the size) |
| `record.json` | what it scored on what data (with the data's SHA-256 when known), and the Keras, backend and package versions it was saved with |

A built-in preset is such a folder inside `keras_deeprnn/pretrained/`, named
after the preset; dropping one there (from `save_to_preset`) adds it to
`DeepRNNModel.presets`. Any other folder loads by its path.

```python
model = kdr.DeepRNNModel.from_preset("jsb")             # a built-in preset
model.fit(x, y, epochs=1)                               # fine-tune it
model.save_to_preset("my_preset", scores={"test_nll": 8.9},
                     data={"name": "my chorales", "sha256": kdr.models.hub.data_checksum(rolls)})
again = kdr.DeepRNNModel.from_preset("my_preset")       # the same model, weights included
```
"""

import hashlib
import json
import os
import pathlib
import shutil
import tempfile

import keras
import numpy as np

from keras_deeprnn import _keras_private
from keras_deeprnn._version import __version__
from keras_deeprnn.models.dtype_policy import dtype_policy_scope

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"
RECORD_FILE = "record.json"
# How `save_preset` may store the weights: as trained, or at half the size.
WEIGHTS_DTYPES = ("float32", "float16")
# The built-in presets: one folder each, beside the `keras_deeprnn.pretrained` module.
BUILT_IN = pathlib.Path(__file__).resolve().parent.parent / "pretrained"
# What `serialize_keras_object` adds that a preset leaves out: how it was
# last compiled and built says nothing about the model a user fine-tunes.
_SKIPPED = ("compile_config", "build_config")


def builtin_presets():
    """`{name: folder}` of the presets shipped in `keras_deeprnn/pretrained`."""
    return {path.name: path for path in sorted(BUILT_IN.iterdir())
            if path.is_dir() and (path / CONFIG_FILE).is_file()}


def describe_presets():
    """`{name: description}` of the built-in presets, from their records."""
    return {name: read_record(path).get("description", "")
            for name, path in builtin_presets().items()}


def preset_folder(name_or_dir):
    """The folder of a built-in preset's name or of a preset's path; checked."""
    presets = builtin_presets()
    if isinstance(name_or_dir, str) and name_or_dir in presets:
        return presets[name_or_dir]
    expected = (f"the name of a built-in preset ({', '.join(presets) or 'none'}) or a folder "
                "that `save_to_preset` wrote")
    if not isinstance(name_or_dir, (str, os.PathLike)):
        raise ValueError(f"`name_or_dir` must be {expected}. Received: "
                         f"name_or_dir={name_or_dir!r} of type {type(name_or_dir).__name__}")
    folder = pathlib.Path(name_or_dir)
    if not folder.is_dir():
        raise ValueError(f"`name_or_dir` must be {expected}; no such preset or folder. "
                         f"Received: name_or_dir={str(name_or_dir)!r}")
    missing = [f for f in (CONFIG_FILE, RECORD_FILE) if not (folder / f).is_file()]
    if missing:
        raise ValueError(f"`name_or_dir` must be {expected}; this folder has no "
                         f"{' or '.join(missing)}. Received: name_or_dir={str(name_or_dir)!r}")
    return folder


def read_record(name_or_dir):
    """The record of a preset: what it scored on what data, how it was made."""
    return _read_json(preset_folder(name_or_dir) / RECORD_FILE)


def load_preset(cls, name_or_dir, load_weights=True, dtype=None, trainable=True):
    """`cls.from_preset`: see `DeepRNNModel.from_preset`."""
    folder = preset_folder(name_or_dir)
    config = _read_json(folder / CONFIG_FILE)
    _check_class(cls, config, folder)
    for name, value in (("load_weights", load_weights), ("trainable", trainable)):
        if not isinstance(value, bool):
            raise ValueError(f"`{name}` must be True or False. Received: {name}={value!r}")
    # The layers take the policy in force when they are made (keras-hub
    # passes `dtype` to each layer; ours are made by the model's constructor).
    with dtype_policy_scope(dtype):
        model = keras.saving.deserialize_keras_object(config, safe_mode=True)
    if load_weights:
        weights = folder / WEIGHTS_FILE
        if not weights.is_file():
            raise ValueError(f"`load_weights=True` needs {WEIGHTS_FILE} in the preset; "
                             f"{folder} has none. Received: name_or_dir={str(name_or_dir)!r}")
        model.load_weights(weights)
    model.trainable = trainable
    return model


def save_preset(model, preset_dir, description="", scores=None, data=None, record=None,
                assets=None, weights_dtype="float32"):
    """`model.save_to_preset`: see `DeepRNNModel.save_to_preset`."""
    if weights_dtype not in WEIGHTS_DTYPES:
        raise ValueError(f"`weights_dtype` must be one of {list(WEIGHTS_DTYPES)}. "
                         f"Received: weights_dtype={weights_dtype!r}")
    target = pathlib.Path(preset_dir)
    if target.exists() and (not target.is_dir() or (
            any(target.iterdir()) and not (target / CONFIG_FILE).is_file())):
        raise ValueError(
            "`preset_dir` must be a new or empty folder, or a preset to replace; this one "
            f"holds other files. Received: preset_dir={str(preset_dir)!r}")
    for name, value in (("scores", scores), ("data", data), ("record", record),
                        ("assets", assets)):
        if value is not None and not isinstance(value, dict):
            raise ValueError(f"`{name}` must be a dict or None. Received: {name}={value!r}")
    written = {
        **(record or {}),
        "description": description,
        "architecture": getattr(model, "architecture", None),
        "parameters": model.count_params(),
        "scores": scores or {},
        "data": data or {},
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
        "keras_deeprnn": _version(),
        "weights_dtype": weights_dtype,
    }
    config = {k: v for k, v in keras.saving.serialize_keras_object(model).items()
              if k not in _SKIPPED}
    target.parent.mkdir(parents=True, exist_ok=True)
    # Written whole in a sibling folder, then moved into place: a reader
    # never sees half a preset, nor a new config beside old weights.
    staging = pathlib.Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-"))
    try:
        (staging / CONFIG_FILE).write_text(json.dumps(config, indent=1) + "\n")
        if weights_dtype == "float32":
            model.save_weights(staging / WEIGHTS_FILE)
        else:
            model.save_weights(staging / f"float32.{WEIGHTS_FILE}")
            store_half(staging / f"float32.{WEIGHTS_FILE}", staging / WEIGHTS_FILE)
            (staging / f"float32.{WEIGHTS_FILE}").unlink()
        for name, content in (assets or {}).items():
            (staging / name).write_bytes(content)
        (staging / RECORD_FILE).write_text(json.dumps(written, indent=1, default=_plain) + "\n")
        os.chmod(staging, 0o755)  # mkdtemp's 0700 would keep the folder from other users
        _replace_folder(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def store_half(source, target):
    """Copy a Keras `.weights.h5` file with its float32 arrays stored as
    float16, compressed: half the size, and `load_weights` reads it back
    into float32 variables on every backend (to float16's precision)."""
    import h5py

    def copy(src, dst):
        for key, value in src.attrs.items():
            dst.attrs[key] = value
        for name, item in src.items():
            if isinstance(item, h5py.Group):
                copy(item, dst.create_group(name))
                continue
            value = item[()]
            if isinstance(value, np.ndarray) and value.dtype == np.float32 and value.size > 1:
                stored = dst.create_dataset(name, data=value.astype(np.float16),
                                            compression="gzip", compression_opts=9,
                                            shuffle=True)
            else:
                stored = dst.create_dataset(name, data=value)
            for key, value in item.attrs.items():
                stored.attrs[key] = value

    with h5py.File(source, "r") as src, h5py.File(target, "w") as dst:
        copy(src, dst)


def data_checksum(arrays):
    """SHA-256 of a list of arrays (their dtype, shape and values), for a record.

    ```python
    data_checksum([np.zeros((3, 88), "float32")])   # 'e3b0...' style hex digest
    ```
    """
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


class PresetsMixin:
    """`from_preset`, `presets` and `save_to_preset` for a model class."""

    class _ClassProperty:
        def __init__(self, getter):
            self.getter, self.__doc__ = getter, getter.__doc__

        def __get__(self, instance, owner):
            return self.getter(owner)

    @_ClassProperty
    def presets(cls):
        """`{name: description}` of the built-in presets (`keras_deeprnn/pretrained`)."""
        return describe_presets()

    @classmethod
    def list_presets(cls):
        """The names of the built-in presets, sorted."""
        return list(builtin_presets())

    @classmethod
    def from_preset(cls, name_or_dir, load_weights=True, dtype=None, trainable=True):
        """A model from a built-in preset's name or a folder `save_to_preset` wrote.

        Args:
            name_or_dir: a name of `DeepRNNModel.presets`, or a preset folder.
            load_weights: the preset's weights (`False`: a fresh model of the
                same configuration).
            dtype: a dtype policy for every layer (`"bfloat16"`,
                `"mixed_float16"`, ...; default the global policy).
            trainable: whether the weights are trainable.

        Only JSON and HDF5 weights are read, with Keras's `safe_mode`, and
        the config must name this class (or a subclass).

        ```python
        model = DeepRNNModel.from_preset("jsb", trainable=False)
        ```
        """
        return load_preset(cls, name_or_dir, load_weights=load_weights, dtype=dtype,
                           trainable=trainable)

    def save_to_preset(self, preset_dir, description="", scores=None, data=None,
                       record=None, assets=None, weights_dtype="float32"):
        """Write this model as a preset folder that `from_preset` reads back.

        Args:
            preset_dir: a new or empty folder, or a preset folder to replace.
            description: one line for `DeepRNNModel.presets`.
            scores: what it scored, e.g. `{"test_nll": 9.15}`.
            data: what it was scored on, e.g. `{"name": "jsb_chorales",
                "split": "test", "sha256": data_checksum(rolls)}`.
            record: more fields to keep in `record.json` (how it was trained).
            assets: `{file name: bytes}` to ship in the folder too.
            weights_dtype: `"float32"` (as trained) or `"float16"`: stored
                at half the size, read back into float32 variables; the
                record should then hold scores measured with the stored
                weights.

        ```python
        model.save_to_preset("my_preset", scores={"test_nll": 8.9})
        ```
        """
        return save_preset(self, preset_dir, description=description, scores=scores,
                           data=data, record=record, assets=assets,
                           weights_dtype=weights_dtype)


_H5_REFUSAL = (
    "`filepath` must end in `.keras`: Keras 3 saves `.h5` in its legacy HDF5 "
    "format, from which keras.models.load_model cannot rebuild a DeepRNNModel "
    "without custom_objects. Received: {received}. Save the model as `.keras` "
    "(it loads with keras.models.load_model alone), or only its weights with "
    "`model.save_weights('name.weights.h5')`.")


def refuse_legacy_h5(filepath):
    """A `ValueError` for a model file named `.h5`/`.hdf5`, before any file is opened.

    Keras 3 writes `.h5` in its legacy HDF5 format, whose loader looks
    classes up by bare name, not by the registered
    `"keras_deeprnn>DeepRNNModel"`: the file would not load back without
    `custom_objects`. `.keras` does, and so do weights in `.weights.h5`.
    """
    if isinstance(filepath, (str, os.PathLike)) \
            and str(filepath).lower().endswith((".h5", ".hdf5")):
        raise ValueError(_H5_REFUSAL.format(received=f"filepath={str(filepath)!r}"))


def refuse_legacy_h5_config():
    """The same refusal from `get_config`, for `keras.saving.save_model(model, "m.h5")`.

    That call goes to Keras's legacy writer without passing through
    `Model.save`, and the writer creates (or empties) the file before it
    asks the model for its config: this refusal comes after that, and says so.
    """
    if _keras_private.in_legacy_h5_format():
        raise ValueError(_H5_REFUSAL.format(
            received="a `.h5`/`.hdf5` filepath given to keras.saving.save_model (or "
                     "keras.models.save_model), which Keras has already created or "
                     "emptied: it holds no model, delete it"))


def _read_json(path):
    try:
        value = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} must be a JSON object; it does not parse: {error}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{path} must be a JSON object. Received: {type(value).__name__}")
    return value


def _check_class(cls, config, folder):
    """The config must name a registered subclass of `cls`: nothing else is built."""
    name = config.get("registered_name") or config.get("class_name")
    found = keras.saving.get_registered_object(name) if isinstance(name, str) else None
    if not (isinstance(found, type) and issubclass(found, cls)):
        raise ValueError(
            f"{folder / CONFIG_FILE} must hold the config of a {cls.__name__} (a class "
            f"registered with Keras). Received: registered_name={name!r}")


def _replace_folder(staging, target):
    if not target.exists():
        os.replace(staging, target)
        return
    old = pathlib.Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-old-"))
    os.replace(target, old / "preset")
    os.replace(staging, target)
    shutil.rmtree(old, ignore_errors=True)


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"a record holds JSON values; {value!r} is a {type(value).__name__}")


def _version():
    return __version__
