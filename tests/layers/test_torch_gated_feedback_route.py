"""`GatedFeedbackCell`'s whole-sequence route: its backward pass by finite differences.

On torch, `DeepRNN` runs a gated-feedback RNN over a whole sequence as one
autograd function (`keras_deeprnn/layers/_gated_feedback_bptt.py`) whose
states, an `[h]` a level, go in and come out in the cell's structure.
`test_whole_sequence_routes.py` holds the route to `keras.layers.RNN` on
every backend, the structure of its final states included; here
`torch.autograd.gradcheck` holds the hand-written backward pass to finite
differences in float64.
"""

import pytest

from route_families import BATCH
from route_families import FEATURES
from route_families import GATED_FEEDBACK

APPLIES = GATED_FEEDBACK.applies


@pytest.mark.backend("torch")
@pytest.mark.parametrize("masked", [False, True], ids=["", "dropout"])
@pytest.mark.parametrize("name", ["levels1", "levels2", "levels3", "no_bias", "no_bias_levels1", "sigmoid",
                                  "relu", "linear"])
def test_hand_written_backward_passes_gradcheck(name, masked):
    """Finite differences in float64, for the sequence, every initial state
    and every weight, through the outputs and the final states."""
    import torch

    from keras_deeprnn.layers import _gated_feedback_bptt as bptt
    from keras_deeprnn.layers._transition_bptt import activation_kind

    cell = GATED_FEEDBACK.cell(**APPLIES[name], dtype="float64")
    cell.build((None, FEATURES))
    generator = torch.Generator().manual_seed(0)
    N, n = cell.num_layers, cell.units

    def randn(*shape):
        return torch.randn(shape, dtype=torch.float64, generator=generator, requires_grad=True)

    params = []
    for j in range(N):
        params.append(randn(N * n, n + N))
        if j > 0:
            params += [randn(n, n + N), randn(n + N) if cell.use_bias else None]
    projected = randn(BATCH, 4, n + N)
    states = [randn(BATCH, n) for _ in range(N)]

    def mask(width):
        return ((torch.rand((BATCH, width), dtype=torch.float64, generator=generator) > 0.3) / 0.7).double()

    input_mask = mask((N - 1) * n) if masked and N > 1 else None
    recurrent_mask = mask(N * n) if masked else None
    weights = [p for p in params if p is not None]
    assert len(weights) == len(bptt._used_weights(cell))
    kind = activation_kind(cell.activation)

    def run(projected, *tensors):
        rest = iter(tensors[N:])
        return bptt._Sequence.apply(N, kind, projected, input_mask, recurrent_mask, *tensors[:N],
                                    *(None if p is None else next(rest) for p in params))

    assert torch.autograd.gradcheck(run, (projected, *states, *weights))
