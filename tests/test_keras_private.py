"""Keras's private pieces that the library uses are where it expects them."""

import inspect

import keras

from keras_deeprnn import _keras_private


def test_dropout_rnn_cell_is_keras_own_base_class():
    # keras.layers.RNN primes masks only for instances of this very class.
    cell = keras.layers.SimpleRNNCell(4, dropout=0.5)
    assert isinstance(cell, _keras_private.DropoutRNNCell)
    for method in ("get_dropout_mask", "get_recurrent_dropout_mask", "reset_dropout_mask"):
        assert callable(getattr(_keras_private.DropoutRNNCell, method))


def test_backend_rnn_has_the_signature_the_library_calls():
    params = inspect.signature(_keras_private.backend_rnn).parameters
    for name in ("step_function", "inputs", "initial_states", "go_backwards", "mask",
                 "unroll", "input_length", "zero_output_for_mask", "return_all_outputs"):
        assert name in params, name


def test_autocast_scope_sets_and_restores_the_dtype():
    outer = _keras_private.get_autocast_scope()
    with _keras_private.AutocastScope("float16"):
        assert _keras_private.get_autocast_scope().dtype == "float16"
        with _keras_private.AutocastScope(None):
            # a scope with no dtype: variables read in it are not cast
            assert _keras_private.get_autocast_scope().dtype is None
    assert _keras_private.get_autocast_scope() is outer


def test_the_legacy_h5_flag_is_the_one_keras_sets_while_it_writes_h5():
    from keras.src.legacy.saving import saving_options

    assert not _keras_private.in_legacy_h5_format()
    with saving_options.keras_option_scope(use_legacy_config=True):
        assert _keras_private.in_legacy_h5_format()
    assert not _keras_private.in_legacy_h5_format()


def test_stateless_scope_accessor_returns_the_scope_entered():
    assert _keras_private.get_stateless_scope() is None
    with keras.StatelessScope() as outer:
        assert _keras_private.get_stateless_scope() is outer
    assert _keras_private.get_stateless_scope() is None
