"""Data for the paper's two tasks: polyphonic music and language modelling.

Nothing here imports music21 until a function that needs it is called.
"""

from keras_deeprnn.data.music import MUSIC_DATASETS
from keras_deeprnn.data.music import load_music
from keras_deeprnn.data.music import pad_batch
from keras_deeprnn.data.music import piano_roll_batches
from keras_deeprnn.data.splits import SPLITS
from keras_deeprnn.data.text import PTB_FILES
from keras_deeprnn.data.text import abc_folk_tunes
from keras_deeprnn.data.text import load_ptb
from keras_deeprnn.data.text import load_text
from keras_deeprnn.data.text import ResetStatesAtEpochStart
from keras_deeprnn.data.text import TextCorpus
from keras_deeprnn.data.text import lm_batches
