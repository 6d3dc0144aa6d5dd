"""`python -m keras_deeprnn.tuning`: the same command as `keras-deeprnn tune`."""

import sys

from keras_deeprnn.cli import main

sys.exit(main(["tune", *sys.argv[1:]]))
