"""Deprecated home of the language-modelling task: use `keras_deeprnn.tasks.language`.

Every name that lived here still imports from here for one release.
"""

from keras_deeprnn.data import SPLITS  # noqa: F401
from keras_deeprnn.data import PTB_FILES  # noqa: F401
from keras_deeprnn.tasks.language import DEFAULT_DATASET  # noqa: F401
from keras_deeprnn.tasks.language import DEFAULT_SEQ_LEN  # noqa: F401
from keras_deeprnn.tasks.language import DEFAULT_TOKENIZATION  # noqa: F401
from keras_deeprnn.tasks.language import EVAL_WINDOW  # noqa: F401
from keras_deeprnn.tasks.language import LanguageModelTask  # noqa: F401
from keras_deeprnn.tasks.language import is_ptb_directory  # noqa: F401
from keras_deeprnn.tasks.language import load_corpus  # noqa: F401
from keras_deeprnn.tasks.language import sample_text  # noqa: F401
from keras_deeprnn.tasks.language import score_tokens  # noqa: F401
from keras_deeprnn.tasks.paper import PAPER_PTB_BITS_PER_CHARACTER  # noqa: F401
from keras_deeprnn.tasks.paper import PAPER_PTB_WORD_PERPLEXITY  # noqa: F401

DEFAULT_LEVEL = DEFAULT_TOKENIZATION
