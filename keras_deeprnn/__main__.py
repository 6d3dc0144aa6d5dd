"""`python -m keras_deeprnn`: the `keras-deeprnn` command (see `keras_deeprnn.cli`)."""

import sys

from keras_deeprnn.cli import main

sys.exit(main())
