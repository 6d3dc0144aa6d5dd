"""Data for the paper's two tasks: polyphonic music and language modelling.

One module per job: `music` (`load_music`, the entry point), `catalogue` (built-in sets and folders of scores), `scores`
(music21 parsing), `cache`, `pickles` (Boulanger-Lewandowski pickles, read
without running their code), `rolls` (the piano-roll format), `batching`,
`writers` (MIDI, MusicXML, PNG), `splits` (the split names and the fixed
order that assigns them), `text` (language-modelling token streams) and
`text_batches` (their windows for a stateful model).

Nothing here imports music21 until a function that needs it is called.
"""

from keras_deeprnn.data.batching import pad_batch
from keras_deeprnn.data.batching import piano_roll_batches
from keras_deeprnn.data.catalogue import MUSIC_DATASETS
from keras_deeprnn.data.music import load_music
from keras_deeprnn.data.splits import SPLITS
from keras_deeprnn.data.text import PTB_FILES
from keras_deeprnn.data.text import abc_folk_tunes
from keras_deeprnn.data.text import load_ptb
from keras_deeprnn.data.text import load_text
from keras_deeprnn.data.text import TextCorpus
from keras_deeprnn.data.text_batches import ResetStatesAtEpochStart
from keras_deeprnn.data.text_batches import lm_batches
