"""A whole sequence of a `DeepTransitionLSTMCell` as one PyTorch autograd function.

A DT(S)-LSTM frame is the deep transition of `DeepTransitionCell` (a matmul
and an activation per layer) topped by the LSTM's gates, some ten more
elementwise kernels; under autograd each is recorded and replayed frame by
frame, and at the paper's sizes that bookkeeping is the time of a training
step (as for `_transition_bptt`, whose transition this is, and the LSTM
state of `_depth_gated_bptt`). Once everything that does not read the
incoming gradient is gathered over all frames at once, the backward pass
through time is short:

```python
# forward, nothing recorded; r = P_t + (h_prev * M) @ [W_1 | W_bar], M the recurrent dropout mask
z_0 = φ_l(r[:, :m]);  z_i = φ_l(z_{i-1} @ K_{i-1} + c_{i-1});  A = z @ K_top + c_top (+ r[:, m:] with shortcut)
i, f, o = σ(A_i, A_f, A_o);  u = φ(A_g);  c = f * c_prev + i * u;  h = o * φ(c)    # A = r when L = 1
# before the backward loop, over all frames at once
J = [u σ'(i) | c_prev σ'(f) | i φ'(u)];  J_o = φ(c) σ'(o);  J_c = o φ'(φ(c))
# backward, t = T-1 .. 0; dh, dc the gradients of the frame's new h and c
dh = dY_t + dR_{t+1} @ [W_1 | W_bar].T * M;  dc = dc + dh * J_c
dA = [dc * J | dh * J_o];  dc = dc * f;  dz = φ_l'(dA @ K_top.T) ...;  dR_t = [dz_0 | dA (shortcut)]
# then every weight's gradient as one matmul over all steps: dW = (H_prev * M).T @ dR, dK = Z.T @ dA
```

`DeepRNN` uses it (`sequence`) where it computes what the cell's
`recurrent_step` computes: the class itself, no mask, no layer norm,
float32, Keras's own `tanh`, `sigmoid`, `relu` or `linear` as `activation`
and `transition_activation` (the gates' sigmoid is the cell's own); input
dropout is in the projected inputs, the recurrent dropout mask comes from
the cell's cached per-sequence draw and weight noise or DropConnect from
`cell.noisy` (differentiated by autograd outside the function). Everything
else takes the traced step. The loops run as Python only.
"""

from keras_deeprnn.layers._transition_bptt import LazyFunction
from keras_deeprnn.layers._transition_bptt import activation_kind
from keras_deeprnn.layers._transition_bptt import is_exactly
from keras_deeprnn.layers._transition_bptt import recurrent_mask
from keras_deeprnn.layers._transition_bptt import time_major_inputs
from keras_deeprnn.layers._transition_bptt import transition_computable
from keras_deeprnn.layers._transition_bptt import transition_params
from keras_deeprnn.layers._transition_bptt import transition_weight_grads


def applies(cell, training, mask, dtype):
    """Whether `sequence` computes what `cell`'s step computes."""
    return (is_exactly(cell, "keras_deeprnn.cells.deep_transition_lstm", "DeepTransitionLSTMCell")
            and transition_computable(cell, mask, dtype))


def sequence(cell, projected, initial_state, training=False, go_backwards=False):
    """`(outputs, [h, c])` of `cell` over `projected` (batch, time, features)
    from `initial_state` `[h0, c0]`: `h` at every step, in the order the
    steps ran, and the last state."""
    import torch

    params = transition_params(cell, training)
    plan = (cell._first_width, cell.num_transition_layers, cell.shortcut, activation_kind(cell.activation),
            activation_kind(cell.transition_activation))
    h0, c0 = (torch.as_tensor(s) for s in initial_state)
    mask = recurrent_mask(cell, h0, cell.units, training)
    if go_backwards:
        projected = torch.flip(projected, dims=[1])
    outputs, h, c = _Sequence.apply(plan, projected, h0, c0, mask, *params)
    return outputs, [h, c]


def forward_loop(P, H, C, Z, GATES, TC, W, kernels, biases, mask, plan):
    """Fills, for every frame t: `H[t + 1]`, `C[t + 1]` (`H[0]`, `C[0]` hold
    the initial state), `Z[i][t]` the i-th hidden transition layer's output,
    `GATES[t] = [i | f | u | o]` after their activations and `TC[t] = φ(c)`.
    With a shortcut the top bias is already in `P[..., m:]`."""
    import torch

    from keras_deeprnn.layers._transition_loops import activate
    from keras_deeprnn.layers._transition_loops import transition_forward

    m, L, shortcut, top, inner = plan
    n = H.shape[-1]
    # Views of every frame made once, not by indexing at every step.
    P_t, H_t, C_t, G_t, TC_t = P.unbind(0), H.unbind(0), C.unbind(0), GATES.unbind(0), TC.unbind(0)
    for t in range(len(P_t)):
        h = H_t[t] if mask is None else H_t[t] * mask
        if L == 1:
            a = torch.addmm(P_t[t], h, W, out=G_t[t])
        else:
            r = torch.addmm(P_t[t], h, W)
            a = transition_forward(r, Z, t, kernels, biases, m, shortcut, inner, G_t[t])
        torch.sigmoid(a[:, : 2 * n], out=a[:, : 2 * n])
        activate(top, a[:, 2 * n: 3 * n], a[:, 2 * n: 3 * n])
        torch.sigmoid(a[:, 3 * n:], out=a[:, 3 * n:])
        c = torch.mul(a[:, n: 2 * n], C_t[t], out=C_t[t + 1])
        c.addcmul_(a[:, :n], a[:, 2 * n: 3 * n])
        torch.mul(a[:, 3 * n:], activate(top, c, TC_t[t]), out=H_t[t + 1])


def backward_loop(dY, dh, dc, J, Jo, Jc, F, Z, W_T, K_T, dR, dA, mask, plan):
    """Fills `dR` (the gradient of `P_t + (h_{t-1} * M) @ W` at every step)
    and `dA[i]` (of kernel i's output), from the outputs' `dY` and the last
    state's `dh`, `dc`; returns the initial state's `(dh, dc)`."""
    import torch

    from keras_deeprnn.layers._transition_loops import transition_backward

    m, L, _, _, inner = plan
    T, B, n = dY.shape
    top = dR if L == 1 else dA[L - 2]
    dY_t, J_t, Jo_t, Jc_t, F_t, dR_t, top_t = (x.unbind(0) for x in (dY, J, Jo, Jc, F, dR, top))
    dh = dh + dY_t[T - 1]
    for t in range(T - 1, -1, -1):
        dc = torch.addcmul(dc, dh, Jc_t[t])
        a = top_t[t]
        torch.mul(J_t[t], dc.unsqueeze(1), out=a[:, : 3 * n].view(B, 3, n))
        torch.mul(Jo_t[t], dh, out=a[:, 3 * n:])
        dc = dc * F_t[t]
        if L > 1:
            transition_backward(a, Z, t, K_T, dA, dR_t[t][:, :m], inner)
        dh = torch.mm(dR_t[t], W_T)
        if mask is not None:
            dh = dh * mask
        if t > 0:
            dh = dh + dY_t[t - 1]
    return dh, dc


def _make_function():
    import torch

    from keras_deeprnn.layers._transition_loops import derivative

    class Sequence(torch.autograd.Function):
        @staticmethod
        def forward(ctx, plan, projected, h0, c0, mask, recurrent_kernel, *transition):
            m, L, shortcut = plan[:3]
            kernels, biases = list(transition[0::2]), list(transition[1::2])
            P = time_major_inputs(projected, biases, m, shortcut)
            T, B, n = P.shape[0], P.shape[1], h0.shape[-1]
            H, C = P.new_empty((T + 1, B, n)), P.new_empty((T + 1, B, n))
            H[0], C[0] = h0, c0
            Z = [P.new_empty((T, B, m)) for _ in range(L - 1)]
            GATES, TC = P.new_empty((T, B, 4 * n)), P.new_empty((T, B, n))
            forward_loop(P, H, C, Z, GATES, TC, recurrent_kernel, kernels, biases, mask, plan)
            ctx.plan, ctx.masked = plan, mask is not None
            ctx.has_bias = [b is not None for b in biases]
            ctx.save_for_backward(H, C, GATES, TC, recurrent_kernel, *([mask] if ctx.masked else []), *Z,
                                  *kernels)
            return H[1:].transpose(0, 1).clone(), H[T].clone(), C[T].clone()

        @staticmethod
        def backward(ctx, dY, dh_last, dc_last):
            plan = ctx.plan
            m, L, shortcut, top = plan[:4]
            H, C, GATES, TC, recurrent_kernel, *rest = ctx.saved_tensors
            mask = rest.pop(0) if ctx.masked else None
            Z, kernels = list(rest[: L - 1]), rest[L - 1:]
            dY = dY.transpose(0, 1)
            T, B, n = dY.shape
            i, f, u, o = (GATES[:, :, k * n: (k + 1) * n] for k in range(4))
            # Everything of the step's derivative that does not read the gradient, over all frames at once.
            J = GATES.new_empty((T, B, 3, n))
            torch.ops.aten.sigmoid_backward(u, i, grad_input=J[:, :, 0])
            torch.ops.aten.sigmoid_backward(C[:-1], f, grad_input=J[:, :, 1])
            derivative(top, i, u, J[:, :, 2])
            Jo = torch.ops.aten.sigmoid_backward(TC, o)
            Jc = derivative(top, o, TC, torch.empty_like(TC))
            dR = dY.new_empty((T, B, recurrent_kernel.shape[1]))
            dA = [dY.new_empty((T, B, k.shape[1])) for k in kernels[:-1]]
            if L > 1:
                dA.append(dR[:, :, m:] if shortcut else dY.new_empty((T, B, 4 * n)))
            W_T = recurrent_kernel.t()
            dh0, dc0 = backward_loop(dY, dh_last, dc_last, J, Jo, Jc, f, Z, W_T, [k.t() for k in kernels],
                                     dR, dA, mask, plan)
            h_in = H[:-1] if mask is None else H[:-1] * mask
            return (None, dR.transpose(0, 1), dh0, dc0, None,
                    *transition_weight_grads(h_in, dR, Z, dA, ctx.has_bias))

    return Sequence


_Sequence = LazyFunction(_make_function)
