"""The time loops of `_transition_bptt`, written so TorchScript can compile them.

Imported by `_transition_bptt` on first use only, on PyTorch: this module
imports torch. Every function here runs as plain Python too; `scripted()`
gives the TorchScript versions, whose loops run without the interpreter's
cost per operation (measured: the forward and backward loops of DT(S)-RNN
at 32 units, batch 2, 64 frames, 1.9 ms -> 1.1 ms on one thread).

`kind` names the activation: "tanh", "sigmoid", "relu" or "linear". The
layouts are time-major: `P` (time, batch, features), `H` (time + 1, batch,
units) with `H[0]` the initial state, `Z[i]` (time, batch, m) the i-th
hidden transition layer's output.
"""

import warnings
from typing import List
from typing import Optional

import torch
from torch import Tensor


def activate(kind: str, x: Tensor, out: Tensor) -> Tensor:
    if kind == "tanh":
        return torch.tanh(x, out=out)
    if kind == "sigmoid":
        return torch.sigmoid(x, out=out)
    if kind == "relu":
        return torch.clamp_min(x, 0.0, out=out)
    return out.copy_(x)


def derivative(kind: str, grad: Tensor, y: Tensor, out: Tensor) -> Tensor:
    """`grad * φ'(a)` from `y = φ(a)`, written into `out`."""
    if kind == "tanh":
        return torch.ops.aten.tanh_backward(grad, y, grad_input=out)
    if kind == "sigmoid":
        return torch.ops.aten.sigmoid_backward(grad, y, grad_input=out)
    if kind == "relu":
        return torch.ops.aten.threshold_backward(grad, y, 0.0, grad_input=out)
    return out.copy_(grad)


def transition_forward(r: Tensor, Z: List[Tensor], t: int, kernels: List[Tensor],
                       biases: List[Optional[Tensor]], m: int, shortcut: bool, inner: str,
                       out: Tensor) -> Tensor:
    """The top layer's pre-activation of frame `t` of a deep transition
    (two layers or more) from `r = P_t + h_prev @ W`, written into `out`;
    the hidden layers' outputs go to `Z[i][t]`. With a shortcut the top
    bias is already in `r[:, m:]`. The DT(S)-LSTM's loops use it too."""
    L = len(kernels) + 1
    z = activate(inner, r[:, :m], Z[0][t])
    for i in range(L - 2):
        b = biases[i]
        a = torch.mm(z, kernels[i]) if b is None else torch.addmm(b, z, kernels[i])
        z = activate(inner, a, Z[i + 1][t])
    if shortcut:
        return torch.addmm(r[:, m:], z, kernels[L - 2], out=out)
    b = biases[L - 2]
    if b is None:
        return torch.mm(z, kernels[L - 2], out=out)
    return torch.addmm(b, z, kernels[L - 2], out=out)


def transition_backward(da: Tensor, Z: List[Tensor], t: int, K_T: List[Tensor], dA: List[Tensor],
                        dR_head: Tensor, inner: str) -> None:
    """From `da`, the gradient of frame `t`'s top pre-activation, fills
    `dA[i][t]` (of each hidden kernel's output before its activation) and
    `dR_head` (of `r[:, :m]`), through the layers `transition_forward` ran."""
    L = len(K_T) + 1
    for j in range(L - 2):
        i = L - 2 - j
        da = derivative(inner, torch.mm(da, K_T[i]), Z[i][t], dA[i - 1][t])
    derivative(inner, torch.mm(da, K_T[0]), Z[0][t], dR_head)


def forward_loop(P: Tensor, H: Tensor, Z: List[Tensor], W: Tensor, kernels: List[Tensor],
                 biases: List[Optional[Tensor]], mask: Optional[Tensor], m: int, shortcut: bool,
                 top: str, inner: str) -> None:
    """Fills `H[1:]` and `Z`; the top bias is already in `P[..., m:]` with a
    shortcut; `mask` is the recurrent dropout mask of the sequence, if any."""
    L = len(kernels) + 1
    for t in range(P.shape[0]):
        h = H[t]
        if mask is not None:
            h = h * mask
        r = torch.addmm(P[t], h, W)
        if L == 1:
            activate(top, r, H[t + 1])
            continue
        a = transition_forward(r, Z, t, kernels, biases, m, shortcut, inner, H[t + 1])
        activate(top, a, a)


def backward_loop(dY: Tensor, H: Tensor, Z: List[Tensor], W_T: Tensor, K_T: List[Tensor], dR: Tensor,
                  dA: List[Tensor], mask: Optional[Tensor], m: int, top: str, inner: str) -> None:
    """Fills `dR` (the gradient of `P_t + h_{t-1} @ W` at every step) and `dA[i]`
    (of kernel i's output before its activation), from the outputs' `dY`."""
    L = len(K_T) + 1
    T = dY.shape[0]
    g = dY[T - 1]
    for s in range(T):
        t = T - 1 - s
        if L == 1:
            derivative(top, g, H[t + 1], dR[t])
        else:
            da = derivative(top, g, H[t + 1], dA[L - 2][t])
            transition_backward(da, Z, t, K_T, dA, dR[t][:, :m], inner)
        if t > 0:
            if mask is None:
                g = torch.addmm(dY[t - 1], dR[t], W_T)
            else:
                g = torch.addcmul(dY[t - 1], torch.mm(dR[t], W_T), mask)


def scripted():
    """`(forward_loop, backward_loop)` compiled by TorchScript, or None where
    this torch cannot (TorchScript is deprecated; the loops then stay Python)."""
    try:
        with warnings.catch_warnings():
            # Said once here, not to every user of the layer.
            warnings.simplefilter("ignore", DeprecationWarning)
            return torch.jit.script(forward_loop), torch.jit.script(backward_loop)
    except Exception:  # noqa: BLE001 -- any failure leaves the Python loops
        return None
