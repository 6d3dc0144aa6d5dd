"""`python -m keras_deeprnn.tuning`: see `keras_deeprnn.tuning.main`."""

import sys

from keras_deeprnn.tuning import main

sys.exit(main(sys.argv[1:]))
