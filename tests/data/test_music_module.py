"""`keras_deeprnn.data.music` holds `load_music` and a few public names, not its neighbours' code."""

import inspect
import types

import pytest

from keras_deeprnn.data import batching
from keras_deeprnn.data import catalogue
from keras_deeprnn.data import music
from keras_deeprnn.data import writers

pytestmark = pytest.mark.any_backend  # no backend changes what this file tests

# What users imported from here before the split and the guides still show.
KEPT = {
    "FRAME_QUARTER_LENGTHS": catalogue,
    "MUSIC_DATASETS": catalogue,
    "pad_batch": batching,
    "piano_roll_batches": batching,
    "plot_piano_roll": writers,
}


def _own_names(module):
    return {name for name, value in vars(module).items()
            if not name.startswith("__") and not isinstance(value, types.ModuleType)}


def test_music_hands_on_no_private_name_of_another_module():
    borrowed = sorted(
        name for name in _own_names(music)
        if name.startswith("_")
        and getattr(vars(music)[name], "__module__", music.__name__) != music.__name__)
    assert not borrowed, f"import these from their own modules: {borrowed}"


def test_music_keeps_only_load_music_and_the_documented_public_names():
    public = {name for name in _own_names(music) if not name.startswith("_")}
    assert public == set(music.__all__) == {"load_music", *KEPT}
    assert inspect.getmodule(music.load_music) is music
    for name, home in KEPT.items():
        assert getattr(music, name) is getattr(home, name), name
