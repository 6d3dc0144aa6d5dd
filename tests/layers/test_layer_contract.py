"""Keras's own layer contract for every kind of cell, in keras.layers.RNN and in DeepRNN.

`run_layer_test` is what Keras runs on its own layers: the config round trip
(class and serialisation), build, symbolic and eager calls, masking, a
training step and a float16 check. Keras ships it in a private module;
it is imported here only, and a Keras release that moves it fails this
file at collection, loudly, rather than skipping it.
"""

import keras
import pytest

from cases import CASES
from cases import INPUT_DIM
from keras.src.testing import TestCase  # the one import of Keras's private test tools
from keras_deeprnn.layers import DeepRNN

# One configuration of every cell class, the wrappers included.
CONTRACT_IDS = ["rnn", "dts_L3_narrow", "dts_L3_layernorm_h0", "lstm_L1", "dts_lstm_L2", "dg_lstm_3",
                "rhn_L3_h0", "gf_rnn_3", "stacked_skip", "zoneout_dts_L2", "reset_dts_lstm_h0", "dots_lp"]
CONTRACT_CASES = [c for c in CASES if c.id in CONTRACT_IDS]
SEQUENCE_LAYERS = {"RNN": keras.layers.RNN, "DeepRNN": DeepRNN}


def test_every_cell_class_is_covered():
    covered = {type(c.make()).__name__ for c in CONTRACT_CASES}
    every = {type(c.make()).__name__ for c in CASES}
    assert covered == every and len(CONTRACT_CASES) == len(CONTRACT_IDS)


@pytest.mark.parametrize("layer_name", list(SEQUENCE_LAYERS))
@pytest.mark.parametrize("case", CONTRACT_CASES, ids=[c.id for c in CONTRACT_CASES])
def test_run_layer_test(case, layer_name):
    # Zoneout draws at every step, which JAX's traced loop in keras.layers.RNN
    # cannot do (ZoneoutCell says so and points to DeepRNN, tested in
    # test_state_wrappers): there the training step is left to DeepRNN.
    jax_rnn_zoneout = (keras.backend.backend() == "jax" and layer_name == "RNN"
                       and case.id.startswith("zoneout"))
    TestCase().run_layer_test(
        SEQUENCE_LAYERS[layer_name],
        init_kwargs={"cell": case.make(), "return_sequences": True},
        input_shape=(2, 5, INPUT_DIM),
        expected_output_shape=(2, 5, case.output_size),
        supports_masking=True,
        run_training_check=not jax_rnn_zoneout,
    )
