"""`DeepTransitionLSTMCell`'s whole-sequence route: its backward pass by finite differences.

On torch, `DeepRNN` runs a DT(S)-LSTM over a whole sequence as one autograd
function (`keras_deeprnn/layers/_transition_lstm_bptt.py`).
`test_whole_sequence_routes.py` holds the route to `keras.layers.RNN` on
every backend, its final `[h, c]` included; here `torch.autograd.gradcheck`
holds the hand-written backward pass to finite differences in float64.
"""

import pytest

from route_families import BATCH
from route_families import FEATURES
from route_families import TRANSITION_LSTM
from keras_deeprnn import cells as kc

APPLIES = TRANSITION_LSTM.applies


@pytest.mark.backend("torch")
@pytest.mark.parametrize("masked", [False, True], ids=["", "recurrent_dropout"])
@pytest.mark.parametrize("name", ["lstm", "dts", "dt3", "activations", "linear", "dt3_no_bias"])
def test_hand_written_backward_passes_gradcheck(name, masked):
    """Finite differences in float64, for the sequence, the initial h and c
    and every weight, through the outputs and the final states."""
    import torch

    from keras_deeprnn.layers import _transition_bptt
    from keras_deeprnn.layers import _transition_lstm_bptt as bptt

    cell = kc.DeepTransitionLSTMCell(**APPLIES[name], dtype="float64")
    cell.build((None, FEATURES))
    generator = torch.Generator().manual_seed(0)

    def randn(*shape):
        return torch.randn(shape, dtype=torch.float64, generator=generator, requires_grad=True)

    weights = [randn(*v.shape) for v in _transition_bptt._used_weights(cell)]
    projected = randn(BATCH, 4, cell.recurrent_kernel.shape[1])
    h0, c0 = randn(BATCH, cell.units), randn(BATCH, cell.units)
    mask = (torch.rand((BATCH, cell.units), dtype=torch.float64, generator=generator) > 0.3) / 0.7
    mask = mask.double() if masked else None
    L = cell.num_transition_layers
    plan = (cell._first_width, L, cell.shortcut, bptt.activation_kind(cell.activation),
            bptt.activation_kind(cell.transition_activation))

    def run(projected, h0, c0, *weights):
        kernels, biases = weights[1:L], weights[L:] or [None] * (L - 1)
        transition = [t for pair in zip(kernels, biases) for t in pair]
        return bptt._Sequence.apply(plan, projected, h0, c0, mask, weights[0], *transition)

    assert torch.autograd.gradcheck(run, (projected, h0, c0, *weights))
