"""The hand-written backward pass of `DeepTransitionCell`'s whole-sequence route, by finite differences.

On torch, `DeepRNN` runs a `DeepTransitionCell` over a whole sequence as one
autograd function (`keras_deeprnn/layers/_transition_bptt.py`), on Python
loops for a process's first sequences and on TorchScript's after that.
`test_whole_sequence_routes.py` holds the route to `keras.layers.RNN` on
every backend; here `torch.autograd.gradcheck` holds its backward pass, on
both loops, to finite differences in float64.
"""

import pytest

from route_families import BATCH
from route_families import FEATURES
from route_families import TORCH
from route_families import TRANSITION
from route_families import loops_ran
from route_families import use_loops


@pytest.fixture(params=TRANSITION.loops if TORCH else ["any"])
def loops(request, monkeypatch):
    """On torch, every case twice: the Python loops a process starts with, and
    TorchScript's, which it switches to after `SCRIPT_AFTER` sequences."""
    use_loops(request.param, monkeypatch)
    return request.param


@pytest.mark.backend("torch")
@pytest.mark.parametrize("masked", [False, True], ids=["", "recurrent_dropout"])
@pytest.mark.parametrize("name", ["rnn", "dts", "dt3", "activations", "dt_no_bias"])
def test_hand_written_backward_passes_gradcheck(name, masked, loops):
    """Finite differences in float64, for the sequence, the initial state and every weight."""
    import torch

    from keras_deeprnn.layers import _transition_bptt as bptt

    cell = TRANSITION.cell(**TRANSITION.applies[name], dtype="float64")
    cell.build((None, FEATURES))
    generator = torch.Generator().manual_seed(0)
    weights = [torch.randn(v.shape, dtype=torch.float64, generator=generator, requires_grad=True)
               for v in bptt._used_weights(cell)]
    projected = torch.randn((BATCH, 4, cell.recurrent_kernel.shape[1]), dtype=torch.float64,
                            generator=generator, requires_grad=True)
    h0 = torch.randn((BATCH, cell.units), dtype=torch.float64, generator=generator, requires_grad=True)
    mask = (torch.rand((BATCH, cell.units), dtype=torch.float64, generator=generator) > 0.3) / 0.7
    mask = mask.double() if masked else None
    L = cell.num_transition_layers
    plan = bptt._Plan(m=cell._first_width, layers=L, shortcut=cell.shortcut,
                      top=bptt.activation_kind(cell.activation),
                      inner=bptt.activation_kind(cell.transition_activation))

    def run(projected, h0, *weights):
        kernels, biases = weights[1:L], weights[L:] or [None] * (L - 1)
        transition = [t for pair in zip(kernels, biases) for t in pair]
        return bptt._Sequence.apply(plan, projected, h0, mask, weights[0], *transition)

    assert torch.autograd.gradcheck(run, (projected, h0, *weights))
    assert loops_ran(loops)
