"""`DepthGatedLSTMCell`'s whole-sequence route: its backward pass by finite differences.

On torch, `DeepRNN` runs a Depth-Gated LSTM over a whole sequence as one
autograd function (`keras_deeprnn/layers/_depth_gated_bptt.py`) whose
states, a `[h, c]` pair a level, go in and come out in the cell's
structure. `test_whole_sequence_routes.py` holds the route to
`keras.layers.RNN` on every backend, the structure of its final states
included; here `torch.autograd.gradcheck` holds the hand-written backward
pass to finite differences in float64.
"""

import pytest

from route_families import BATCH
from route_families import DEPTH_GATED
from route_families import FEATURES

APPLIES = DEPTH_GATED.applies


@pytest.mark.backend("torch")
@pytest.mark.parametrize("masked", [False, True], ids=["", "dropout"])
@pytest.mark.parametrize("name", ["levels1", "levels2", "levels3", "no_bias", "no_bias_levels1"])
def test_hand_written_backward_passes_gradcheck(name, masked):
    """Finite differences in float64, for the sequence, every initial state
    and every weight, through the outputs and the final states."""
    import torch

    from keras_deeprnn.layers import _depth_gated_bptt as bptt

    cell = DEPTH_GATED.cell(**APPLIES[name], dtype="float64")
    cell.build((None, FEATURES))
    generator = torch.Generator().manual_seed(0)
    L, n = cell.num_layers, cell.units

    def randn(*shape):
        return torch.randn(shape, dtype=torch.float64, generator=generator, requires_grad=True)

    params = []
    for l in range(L):
        params += [randn(n, 4 * n), randn(5, n)]
        if l > 0:
            params += [randn(n, 5 * n), randn(5 * n) if cell.use_bias else None]
    projected = randn(BATCH, 4, 6 * n)
    states = [randn(BATCH, n) for _ in range(2 * L)]

    def mask(width):
        return ((torch.rand((BATCH, width), dtype=torch.float64, generator=generator) > 0.3) / 0.7).double()

    input_mask = mask((L - 1) * n) if masked and L > 1 else None
    recurrent_mask = mask(L * n) if masked else None
    weights = [p for p in params if p is not None]
    assert len(weights) == len(bptt._used_weights(cell))

    def run(projected, *tensors):
        rest = iter(tensors[2 * L:])
        return bptt._Sequence.apply(L, projected, input_mask, recurrent_mask, *tensors[: 2 * L],
                                    *(None if p is None else next(rest) for p in params))

    assert torch.autograd.gradcheck(run, (projected, *states, *weights))
