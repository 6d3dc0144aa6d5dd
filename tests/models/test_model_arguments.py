"""build_model's arguments that the checks once let through to a model that
ignored them or failed later: per-level lists on rows whose levels share
one cell, options a row's cells do not take, values the builder cannot
build, the input forms Keras accepts, and the dtype policy."""

import numpy as np
import pytest

import keras_deeprnn as kdr
from keras_deeprnn.models import OPTIONS

D = 3
ONE_CELL = [name for name, row in kdr.ARCHITECTURES.items()
            if row.cell_factory.levels_in_one_cell]


def small(name, **kw):
    args = dict(input_dim=D, output_dim=D, units=4, output_activation="sigmoid")
    args.update(kw)
    return kdr.build_model(name, **args)


@pytest.mark.parametrize("key", ["dropout", "recurrent_dropout"])
@pytest.mark.parametrize("name", ONE_CELL)
def test_one_cell_rows_refuse_differing_per_level_rates(name, key):
    with pytest.raises(ValueError, match=(
            rf"'{name}' steps all its levels in one cell and needs one `{key}` rate for all "
            rf"of them\. Received: {key}=\[0\.0, 0\.3, 0\.5\]")):
        small(name, num_layers=3, **{key: [0.0, 0.3, 0.5]})


@pytest.mark.parametrize("key", ["dropout", "recurrent_dropout"])
@pytest.mark.parametrize("name", ONE_CELL)
def test_one_cell_rows_take_a_list_of_equal_rates(name, key):
    cell = small(name, num_layers=3, **{key: [0.25] * 3}).get_layer("level_0").cell
    assert getattr(cell, key) == 0.25


@pytest.mark.parametrize("name", ONE_CELL)
def test_one_cell_rows_take_one_zoneout_rate(name):
    with pytest.raises(ValueError, match=(
            rf"'{name}' steps all its levels in one cell, one recurrent layer, so `zoneout` "
            r"is one rate for all of them: a number or a list of one\. "
            r"Received: zoneout=\[0\.1, 0\.2, 0\.3\]")):
        small(name, num_layers=3, zoneout=[0.1, 0.2, 0.3])
    assert small(name, num_layers=3, zoneout=[0.2]).get_layer("level_0").cell.zoneout == 0.2


NO_ACTIVATION = ["deep_gru", "deep_lstm", "dg_lstm"]


@pytest.mark.parametrize("name", NO_ACTIVATION)
def test_rows_whose_cells_keep_tanh_refuse_another_activation(name):
    with pytest.raises(ValueError, match=(
            rf"`activation` is not available for '{name}' .*Received: activation='relu'; "
            r"use the default 'tanh', or one of: rnn, .*gf_rnn")):
        small(name, activation="relu")
    small(name, activation="tanh")


@pytest.mark.parametrize("name", [n for n in kdr.ARCHITECTURES if n not in NO_ACTIVATION])
def test_the_other_rows_take_the_activation(name):
    cell = small(name, activation="relu").get_layer("level_0").cell
    assert "relu" in str(cell.get_config()["activation"])
