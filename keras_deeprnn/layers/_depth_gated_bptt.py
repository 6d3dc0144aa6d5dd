"""A whole sequence of a `DepthGatedLSTMCell` as one PyTorch autograd function.

A Depth-Gated LSTM frame is, per level, two matmuls and some twenty
elementwise kernels; under autograd every one is recorded and replayed
frame by frame, and at the paper's sizes that bookkeeping is the time of a
training step (as for `_transition_bptt` and `_highway_bptt`). The backward
pass through time of an LSTM level with peepholes and a depth gate is short
once everything that does not read the incoming gradient is gathered over
all frames at once:

```python
# forward, nothing recorded; level l of frame t (x, c_low from the level below, or P_t at the bottom)
A = G + (h_prev * Mr) @ [R_i | R_f | 0 | R_c | R_o]      # G = P_t[:, :5n], or (h_below * Mi) @ K_l + b_l
i, f, d = σ(A_ifd + c_prev * w_{i,f,d} + [0, 0, c_low * w_l]);  u = φ(A_c)
c = d * c_low + f * c_prev + i * u;  o = σ(A_o + c * w_o);  h = o * φ(c)
# before the backward loop, over all frames at once
J_o = φ(c) σ'(o);  J_c = o φ'(φ(c)) + J_o w_o;  J = [u σ'(i) | c_prev σ'(f) | c_low σ'(d) | i φ'(u)]
Q_prev = f + J_i w_i + J_f w_f + J_d w_d;  Q_low = d + J_d w_l
# backward, t = T-1 .. 0, l = L-1 .. 0; dh, dc the gradients of the level's new h and c
dc = dc + dh * J_c;  dA = [dc * J | dh * J_o];  dc_prev = dc * Q_prev;  dc_low = dc * Q_low
dh_prev = (dA @ R.T) * Mr;  dh_below += (dA @ K_l.T) * Mi  (l > 0)
# then every weight's gradient as one matmul or sum over all steps
```

`DeepRNN` uses it (`sequence`) where it computes what the cell's
`recurrent_step` computes: the class itself, no mask, float32, Keras's own
`tanh` and `sigmoid`; input and recurrent dropout come from the cell's
cached per-sequence draws and weight noise or DropConnect from `cell.noisy`
(differentiated by autograd outside the function). Everything else takes
the traced step.
"""

from keras_deeprnn.layers._transition_bptt import LazyFunction
from keras_deeprnn.layers._transition_bptt import activation_kind
from keras_deeprnn.layers._transition_bptt import all_float32
from keras_deeprnn.layers._transition_bptt import is_exactly
from keras_deeprnn.layers._transition_bptt import level_masks
from keras_deeprnn.layers._transition_bptt import torch_tensors


def applies(cell, training, mask, dtype):
    """Whether `sequence` computes what `cell`'s step computes."""
    return (
        is_exactly(cell, "keras_deeprnn.cells.depth_gated_lstm", "DepthGatedLSTMCell")
        and mask is None
        and activation_kind(cell.activation) == "tanh"
        and activation_kind(cell.recurrent_activation) == "sigmoid"
        and all_float32(dtype, _used_weights(cell))
    )


def _used_weights(cell):
    """The weights the step reads: every level's recurrent kernel and
    peepholes, the kernels and biases above the bottom level."""
    return [*cell.recurrent_kernels, *cell.peepholes, *cell.kernels[1:], *(b for b in cell.biases[1:] if b is not None)]


def sequence(cell, projected, initial_state, training=False, go_backwards=False):
    """`(outputs, states)` of `cell` over `projected` (batch, time, 6 * units)
    from `initial_state` (one `[h, c]` per level): the top level's `h` at
    every step, in the order the steps ran, and the last `[h, c]` of every
    level."""
    import torch

    L = cell.num_layers
    params = []
    for l in range(L):
        params += [cell.noisy(cell.recurrent_kernels[l], training), cell.noisy(cell.peepholes[l], training)]
        if l > 0:
            params += [cell.noisy(cell.kernels[l], training), cell.biases[l]]
    params = torch_tensors(params)
    input_mask, levels_mask = level_masks(cell, projected, training)
    if go_backwards:
        projected = torch.flip(projected, dims=[1])
    states = [torch.as_tensor(s) for level in initial_state for s in level]
    out = _Sequence.apply(L, projected, input_mask, levels_mask, *states, *params)
    return out[0], [[out[1 + 2 * l], out[2 + 2 * l]] for l in range(L)]


def _levels(L, params):
    """`(R, w, K, b)` per level (`K`, `b` None at the bottom)."""
    levels, rest = [], iter(params)
    for l in range(L):
        R, w = next(rest), next(rest)
        K, b = (next(rest), next(rest)) if l > 0 else (None, None)
        levels.append((R, w, K, b))
    return levels


def _make_function():
    import torch

    class Sequence(torch.autograd.Function):
        @staticmethod
        def forward(ctx, L, projected, input_mask, recurrent_mask, *rest):
            states0, levels = rest[: 2 * L], _levels(L, rest[2 * L:])
            P = projected.transpose(0, 1)  # (time, batch, 6n), a view: read only
            T, B, n = P.shape[0], P.shape[1], states0[1].shape[-1]
            new = P.new_empty
            # Per level, every frame: H[0], C[0] the initial states, H[t + 1], C[t + 1] the new ones.
            H = [new((T + 1, B, n)) for _ in range(L)]
            C = [new((T + 1, B, n)) for _ in range(L)]
            HP = [new((T, B, n)) for _ in range(L)] if recurrent_mask is not None else None
            X = [None] + [new((T, B, n)) for _ in range(L - 1)] if input_mask is not None else None
            GATES = [new((T, B, 5 * n)) for _ in range(L)]  # [i | f | d | u | o] after activation
            TC = [new((T, B, n)) for _ in range(L)]  # φ(c)
            R5 = []
            for l, (R, w, K, b) in enumerate(levels):
                H[l][0], C[l][0] = states0[2 * l], states0[2 * l + 1]
                # The depth gate reads no h_prev: a zero block keeps one matmul for all five.
                R5.append(torch.cat([R[:, : 2 * n], R.new_zeros((n, n)), R[:, 2 * n:]], 1))
            Mr = [recurrent_mask[:, l * n: (l + 1) * n] for l in range(L)] if HP is not None else None
            Mi = [None] + [input_mask[:, (l - 1) * n: l * n] for l in range(1, L)] if X is not None else None
            for t in range(T):
                for l, (R, w, K, b) in enumerate(levels):
                    h_prev, c_prev = H[l][t], C[l][t]
                    if Mr is not None:
                        h_prev = torch.mul(h_prev, Mr[l], out=HP[l][t])
                    if l == 0:
                        G, c_low = P[t, :, : 5 * n], P[t, :, 5 * n:]
                    else:
                        x = H[l - 1][t + 1] if Mi is None else torch.mul(H[l - 1][t + 1], Mi[l], out=X[l][t])
                        G = torch.mm(x, K) if b is None else torch.addmm(b, x, K)
                        c_low = C[l - 1][t + 1]
                    A = torch.addmm(G, h_prev, R5[l], out=GATES[l][t])
                    ifd = A[:, : 3 * n].view(B, 3, n)
                    ifd.addcmul_(c_prev.unsqueeze(1), w[:3])
                    ifd[:, 2].addcmul_(c_low, w[3])
                    torch.sigmoid(ifd, out=ifd)
                    u = torch.tanh(A[:, 3 * n: 4 * n], out=A[:, 3 * n: 4 * n])
                    c = torch.mul(ifd[:, 2], c_low, out=C[l][t + 1])
                    c.addcmul_(ifd[:, 1], c_prev).addcmul_(ifd[:, 0], u)
                    o = A[:, 4 * n:]
                    o.addcmul_(c, w[4])
                    torch.sigmoid(o, out=o)
                    torch.mul(o, torch.tanh(c, out=TC[l][t]), out=H[l][t + 1])
            ctx.L, ctx.n = L, n
            ctx.masks = (input_mask is not None, recurrent_mask is not None)
            ctx.has_bias = [b is not None for (_, _, _, b) in levels]
            ctx.save_for_backward(P, *H, *C, *GATES, *TC, *(HP or []), *(X[1:] if X else []),
                                  *R5, *(w for (_, w, _, _) in levels), *(K for (_, _, K, _) in levels[1:]),
                                  *([input_mask] if X else []), *([recurrent_mask] if HP else []))
            outputs = [H[L - 1][1:].transpose(0, 1).clone()]
            for l in range(L):
                outputs += [H[l][T].clone(), C[l][T].clone()]
            return tuple(outputs)

        @staticmethod
        def backward(ctx, dY, *d_last):
            L, n = ctx.L, ctx.n
            saved = iter(ctx.saved_tensors)
            take = lambda k: [next(saved) for _ in range(k)]  # noqa: E731
            P, = take(1)
            H, C, GATES, TC = take(L), take(L), take(L), take(L)
            HP = take(L) if ctx.masks[1] else None
            X = [None] + take(L - 1) if ctx.masks[0] else None
            R5, W, K = take(L), take(L), [None] + take(L - 1)
            input_mask = take(1)[0] if ctx.masks[0] else None
            recurrent_mask = take(1)[0] if ctx.masks[1] else None
            dY = dY.transpose(0, 1)
            T, B = dY.shape[0], dY.shape[1]
            # Everything of the step's derivative that does not read the gradient, over all frames at once.
            J, Jo, Jc, Qp, Ql = [], [], [], [], []
            for l in range(L):
                g = GATES[l]
                i, f, d, u, o = (g[:, :, k * n: (k + 1) * n] for k in range(5))
                c_prev = C[l][:-1]
                c_low = P[:, :, 5 * n:] if l == 0 else C[l - 1][1:]
                w = W[l]
                j = g.new_empty((T, B, 4, n))
                torch.ops.aten.sigmoid_backward(u, i, grad_input=j[:, :, 0])
                torch.ops.aten.sigmoid_backward(c_prev, f, grad_input=j[:, :, 1])
                torch.ops.aten.sigmoid_backward(c_low, d, grad_input=j[:, :, 2])
                torch.ops.aten.tanh_backward(i, u, grad_input=j[:, :, 3])
                jo = torch.ops.aten.sigmoid_backward(TC[l], o)
                Jo.append(jo)
                Jc.append(torch.ops.aten.tanh_backward(o, TC[l]) + jo * w[4])
                J.append(j)
                Qp.append(f + j[:, :, 0] * w[0] + j[:, :, 1] * w[1] + j[:, :, 2] * w[2])
                Ql.append(d + j[:, :, 2] * w[3])
            dA = [dY.new_empty((T, B, 5 * n)) for _ in range(L)]
            dc_low0 = dY.new_empty((T, B, n))
            R5T = [r.t() for r in R5]
            KT = [None] + [k.t() for k in K[1:]]
            Mr = [recurrent_mask[:, l * n: (l + 1) * n] for l in range(L)] if HP is not None else None
            Mi = [None] + [input_mask[:, (l - 1) * n: l * n] for l in range(1, L)] if X is not None else None
            # The gradients of every level's state carried from frame t + 1 (the last frame's from outside).
            dh = [d_last[2 * l] for l in range(L)]
            dc = [d_last[2 * l + 1] for l in range(L)]
            dh[L - 1] = dh[L - 1] + dY[T - 1]
            for t in range(T - 1, -1, -1):
                dh_below = dc_below = None
                for l in range(L - 1, -1, -1):
                    h_grad = dh[l] if dh_below is None else dh[l] + dh_below
                    c_grad = dc[l] if dc_below is None else dc[l] + dc_below
                    c_grad = torch.addcmul(c_grad, h_grad, Jc[l][t])
                    a = dA[l][t]
                    torch.mul(J[l][t], c_grad.unsqueeze(1), out=a[:, : 4 * n].view(B, 4, n))
                    torch.mul(Jo[l][t], h_grad, out=a[:, 4 * n:])
                    dc[l] = c_grad * Qp[l][t]
                    low = c_grad * Ql[l][t]
                    h_prev = torch.mm(a, R5T[l])
                    dh[l] = h_prev if Mr is None else h_prev * Mr[l]
                    if l > 0:
                        x = torch.mm(a, KT[l])
                        dh_below = x if Mi is None else x * Mi[l]
                        dc_below = low
                    else:
                        dc_low0[t] = low
                if t > 0:
                    dh[L - 1] = dh[L - 1] + dY[t - 1]
            flat = lambda x: x.reshape(-1, x.shape[-1])  # noqa: E731
            dP = torch.cat([dA[0], dc_low0], 2).transpose(0, 1)
            grads = [None, dP, None, None]
            for l in range(L):
                grads += [dh[l], dc[l]]
            for l in range(L):
                h_in = HP[l] if HP is not None else H[l][:-1]
                dR5 = torch.mm(flat(h_in).t(), flat(dA[l]))
                dR = torch.cat([dR5[:, : 2 * n], dR5[:, 3 * n:]], 1)
                a = dA[l]
                c_prev = C[l][:-1]
                c_low = P[:, :, 5 * n:] if l == 0 else C[l - 1][1:]
                dw = torch.stack([
                    (a[:, :, :n] * c_prev).sum((0, 1)),
                    (a[:, :, n: 2 * n] * c_prev).sum((0, 1)),
                    (a[:, :, 2 * n: 3 * n] * c_prev).sum((0, 1)),
                    (a[:, :, 2 * n: 3 * n] * c_low).sum((0, 1)),
                    (a[:, :, 4 * n:] * C[l][1:]).sum((0, 1)),
                ])
                grads += [dR, dw]
                if l > 0:
                    x = X[l] if X is not None else H[l - 1][1:]
                    grads += [torch.mm(flat(x).t(), flat(a)), a.sum((0, 1)) if ctx.has_bias[l] else None]
            return tuple(grads)

    return Sequence


_Sequence = LazyFunction(_make_function)
