"""The hand-written backward pass of `HighwayTransitionCell`'s whole-sequence route, by finite differences.

On torch, `DeepRNN` runs a Recurrent Highway Network cell over a whole
sequence as one autograd function (`keras_deeprnn/layers/_highway_bptt.py`).
`test_whole_sequence_routes.py` holds the route to `keras.layers.RNN` on
every backend; here `torch.autograd.gradcheck` holds its backward pass to
finite differences in float64.
"""

import pytest

from route_families import BATCH
from route_families import FEATURES
from route_families import HIGHWAY


@pytest.mark.backend("torch")
@pytest.mark.parametrize("masked", [False, True], ids=["", "recurrent_dropout"])
@pytest.mark.parametrize("name", ["depth1", "depth2", "depth3", "no_bias", "relu", "sigmoid", "linear"])
def test_hand_written_backward_passes_gradcheck(name, masked):
    """Finite differences in float64, for the sequence, the initial state and every weight."""
    import torch

    from keras_deeprnn.layers import _highway_bptt as bptt

    cell = HIGHWAY.cell(**HIGHWAY.applies[name], dtype="float64")
    cell.build((None, FEATURES))
    generator = torch.Generator().manual_seed(0)
    L, n = cell.num_transition_layers, cell.units
    params = []
    for l in range(L):
        params.append(torch.randn((n, 2 * n), dtype=torch.float64, generator=generator, requires_grad=True))
        params.append(torch.randn((2 * n,), dtype=torch.float64, generator=generator, requires_grad=True)
                      if l > 0 and cell.use_bias else None)
    projected = torch.randn((BATCH, 4, 2 * n), dtype=torch.float64, generator=generator, requires_grad=True)
    h0 = torch.randn((BATCH, n), dtype=torch.float64, generator=generator, requires_grad=True)
    mask = ((torch.rand((BATCH, n), dtype=torch.float64, generator=generator) > 0.3) / 0.7).double()
    mask = mask if masked else None
    kind = bptt.activation_kind(cell.activation)
    inputs = [p for p in params if p is not None]
    assert len(inputs) == len(bptt._used_weights(cell))

    def run(projected, h0, *weights):
        weights = iter(weights)
        return bptt._Sequence.apply(kind, projected, h0, mask, *(None if p is None else next(weights)
                                                                for p in params))

    assert torch.autograd.gradcheck(run, (projected, h0, *inputs))
