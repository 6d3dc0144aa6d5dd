"""Deprecated home of music sampling: use `keras_deeprnn.tasks.music`.

`sample_piece`, `save_piece` and `frame_quarter_length_of` still import from
here for one release.
"""

from keras_deeprnn.tasks.music import frame_quarter_length_of  # noqa: F401
from keras_deeprnn.tasks.music import sample_piece  # noqa: F401
from keras_deeprnn.tasks.music import save_piece  # noqa: F401
