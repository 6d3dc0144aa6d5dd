"""A whole sequence of a `GatedFeedbackCell` as one PyTorch autograd function.

A gated-feedback frame is, per level, two matmuls and a handful of
elementwise kernels; under autograd every one is recorded and replayed
frame by frame, and at the paper's sizes that bookkeeping is the time of a
training step (as for `_depth_gated_bptt`). Every level reads the previous
frame's states of all levels, `h*`, through one scalar gate per source
level, so the gates of all levels are one matmul of `h*`, and the backward
pass through time is short once everything that does not read the incoming
gradient is gathered over all frames at once:

```python
# forward, nothing recorded; s = h*_{t-1} * Mr, U_j = R_j[:, :n], u_j = R_j[:, n:]
a_g = s @ [u_0 | .. | u_{N-1}]                          # every level's gate terms, (batch, N, N)
# level j of frame t; x = P_t at the bottom, [G | G_g] = (h_{j-1} * Mi) @ K_j + b_j above
g = σ(G_g + a_g[:, j]);  f = [g_i * s_i for every level i];  h_j = φ(G + f @ U_j)
# before the backward loop, over all frames at once
J_j = φ'(h_j);  Γ = σ'(g)
# backward, t = T-1 .. 0, j = N-1 .. 0; dh the gradient of the level's new h
dA_j = dh * J_j;  df = dA_j @ U_j.T;  dG_j = Γ_j * [sum(df_i * s_i) for every level i]
ds += [df_i * g_i for every level i];  dh_below += ([dA_j | dG_j] @ K_j.T) * Mi  (j > 0)
dh*_{t-1} = (ds + [dG_0 | .. | dG_{N-1}] @ [u_0 | .. | u_{N-1}].T) * Mr
# then every weight's gradient as one matmul or sum over all steps:
# dU_j = F_j.T @ dA_j, du_j = S.T @ dG_j, dK_j = X_j.T @ [dA_j | dG_j], db_j = sum([dA_j | dG_j])
```

`DeepRNN` uses it (`sequence`) where it computes what the cell's
`recurrent_step` computes: the class itself, no mask, float32, Keras's own
`tanh`, `sigmoid`, `relu` or `linear`; input and recurrent dropout come
from the cell's cached per-sequence draws and weight noise or DropConnect
from `cell.noisy` (differentiated by autograd outside the function).
Everything else takes the traced step.
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
        is_exactly(cell, "keras_deeprnn.cells.gated_feedback", "GatedFeedbackCell")
        and mask is None
        and activation_kind(cell.activation) is not None
        and all_float32(dtype, _used_weights(cell))
    )


def _used_weights(cell):
    """The weights the step reads: every level's recurrent kernel, the
    kernels and biases above the bottom level."""
    return [*cell.recurrent_kernels, *cell.kernels[1:], *(b for b in cell.biases[1:] if b is not None)]


def sequence(cell, projected, initial_state, training=False, go_backwards=False):
    """`(outputs, states)` of `cell` over `projected` (batch, time, units +
    num_layers) from `initial_state` (one `[h]` per level): the top level's
    `h` at every step, in the order the steps ran, and the last `[h]` of
    every level."""
    import torch

    N = cell.num_layers
    params = []
    for j in range(N):
        params.append(cell.noisy(cell.recurrent_kernels[j], training))
        if j > 0:
            params += [cell.noisy(cell.kernels[j], training), cell.biases[j]]
    params = torch_tensors(params)
    input_mask, levels_mask = level_masks(cell, projected, training)
    if go_backwards:
        projected = torch.flip(projected, dims=[1])
    states = [torch.as_tensor(level[0] if isinstance(level, (list, tuple)) else level)
              for level in initial_state]
    out = _Sequence.apply(N, activation_kind(cell.activation), projected, input_mask, levels_mask,
                          *states, *params)
    return out[0], [[out[1 + j]] for j in range(N)]


def _levels(N, params):
    """`(R, K, b)` per level (`K`, `b` None at the bottom)."""
    levels, rest = [], iter(params)
    for j in range(N):
        R = next(rest)
        K, b = (next(rest), next(rest)) if j > 0 else (None, None)
        levels.append((R, K, b))
    return levels


def _make_function():
    import torch

    from keras_deeprnn.layers._transition_loops import activate
    from keras_deeprnn.layers._transition_loops import derivative

    class Sequence(torch.autograd.Function):
        @staticmethod
        def forward(ctx, N, kind, projected, input_mask, recurrent_mask, *rest):
            states0, levels = rest[:N], _levels(N, rest[N:])
            P = projected.transpose(0, 1)  # (time, batch, n + N), a view: read only
            T, B, n = P.shape[0], P.shape[1], states0[0].shape[-1]
            new = P.new_empty
            # S[0] the initial states of every level, S[t + 1] the new ones; S[t] viewed (batch, N n) is h*.
            S = new((T + 1, B, N, n))
            for j in range(N):
                S[0, :, j] = states0[j]
            HS = new((T, B, N * n)) if recurrent_mask is not None else None
            X = [None] + [new((T, B, n)) for _ in range(N - 1)] if input_mask is not None else None
            GATES = new((T, B, N, N))  # level j's gate on source level i: GATES[t, :, j, i], after σ
            FED = [new((T, B, N * n)) for _ in range(N)]  # what level j feeds back, g_i * s_i
            A = new((B, n))
            U = [R[:, :n] for (R, _, _) in levels]
            RG = torch.cat([R[:, n:] for (R, _, _) in levels], 1)  # every level's gate kernel, (N n, N N)
            Mi = [None] + [input_mask[:, (j - 1) * n: j * n] for j in range(1, N)] if X is not None else None
            # Views of every frame made once, not by indexing at every step.
            P_t, S_t, G_t = P.unbind(0), S.view(T + 1, B, N * n).unbind(0), GATES.unbind(0)
            H_t = [S[:, :, j].unbind(0) for j in range(N)]
            HS_t = HS.unbind(0) if HS is not None else None
            X_t = [None] + [x.unbind(0) for x in X[1:]] if X is not None else None
            F_t = [f.unbind(0) for f in FED]
            for t in range(T):
                s = S_t[t] if HS_t is None else torch.mul(S_t[t], recurrent_mask, out=HS_t[t])
                gates = torch.mm(s, RG, out=G_t[t].view(B, N * N)).view(B, N, N)
                for j, (R, K, b) in enumerate(levels):
                    if j == 0:
                        x_terms = P_t[t]
                    else:
                        x = H_t[j - 1][t + 1] if Mi is None else torch.mul(H_t[j - 1][t + 1], Mi[j], out=X_t[j][t])
                        x_terms = torch.mm(x, K) if b is None else torch.addmm(b, x, K)
                    g = gates[:, j]
                    torch.sigmoid(g.add_(x_terms[:, n:]), out=g)
                    f = F_t[j][t]
                    torch.mul(s.view(B, N, n), g.unsqueeze(2), out=f.view(B, N, n))
                    torch.addmm(x_terms[:, :n], f, U[j], out=A)
                    activate(kind, A, H_t[j][t + 1])
            ctx.N, ctx.n, ctx.kind = N, n, kind
            ctx.masks = (input_mask is not None, recurrent_mask is not None)
            ctx.has_bias = [b is not None for (_, _, b) in levels]
            ctx.save_for_backward(S, GATES, *FED, *(X[1:] if X else []), *([HS] if HS is not None else []),
                                  RG, *U, *(K for (_, K, _) in levels[1:]),
                                  *([input_mask] if X else []), *([recurrent_mask] if HS is not None else []))
            outputs = [S[1:, :, N - 1].transpose(0, 1).clone()]
            outputs += [S[T, :, j].clone() for j in range(N)]
            return tuple(outputs)

        @staticmethod
        def backward(ctx, dY, *d_last):
            N, n = ctx.N, ctx.n
            saved = iter(ctx.saved_tensors)
            take = lambda k: [next(saved) for _ in range(k)]  # noqa: E731
            S, GATES = take(2)
            FED = take(N)
            X = [None] + take(N - 1) if ctx.masks[0] else None
            HS = take(1)[0] if ctx.masks[1] else None
            RG, = take(1)
            U, K = take(N), [None] + take(N - 1)
            input_mask = take(1)[0] if ctx.masks[0] else None
            recurrent_mask = take(1)[0] if ctx.masks[1] else None
            dY = dY.transpose(0, 1)
            T, B = dY.shape[0], dY.shape[1]
            H_star = HS if HS is not None else S[:-1].reshape(T, B, N * n)  # s of every frame
            # Everything of the step's derivative that does not read the gradient, over all frames at once.
            J = [derivative(ctx.kind, torch.ones_like(dY), S[1:, :, j], dY.new_empty((T, B, n))) for j in range(N)]
            GAMMA = torch.ops.aten.sigmoid_backward(torch.ones_like(GATES), GATES)
            dA = [dY.new_empty((T, B, n)) for _ in range(N)]
            dG = dY.new_empty((T, B, N, N))
            UT, RGT = [u.t() for u in U], RG.t()
            KT = [None] + [k.t() for k in K[1:]]
            Mi = [None] + [input_mask[:, (j - 1) * n: j * n] for j in range(1, N)] if X is not None else None
            # The gradient of every level's state carried from frame t + 1 (the last frame's from outside).
            dh = torch.stack(d_last, 1)
            dh[:, N - 1] += dY[T - 1]
            # Views of every frame made once, not by indexing at every step.
            dY_t, S_t, dG_t = dY.unbind(0), H_star.view(T, B, N, n).unbind(0), dG.unbind(0)
            J_t, dA_t = [x.unbind(0) for x in J], [x.unbind(0) for x in dA]
            G_t = [GATES[:, :, j].unsqueeze(3).unbind(0) for j in range(N)]
            GAMMA_t = [GAMMA[:, :, j].unbind(0) for j in range(N)]
            for t in range(T - 1, -1, -1):
                s, dg, dh_j = S_t[t], dG_t[t], dh.unbind(1)
                ds = torch.zeros_like(s)
                for j in range(N - 1, -1, -1):
                    a = torch.mul(dh_j[j], J_t[j][t], out=dA_t[j][t])
                    df = torch.mm(a, UT[j]).view(B, N, n)
                    torch.mul((df * s).sum(2), GAMMA_t[j][t], out=dg[:, j])
                    ds.addcmul_(df, G_t[j][t])
                    if j > 0:
                        x = torch.mm(torch.cat([a, dg[:, j]], 1), KT[j])
                        dh_j[j - 1].add_(x if Mi is None else x * Mi[j])
                d_prev = torch.addmm(ds.view(B, N * n), dg.view(B, N * N), RGT)
                dh = (d_prev if recurrent_mask is None else d_prev * recurrent_mask).view(B, N, n)
                if t > 0:
                    dh[:, N - 1] += dY_t[t - 1]
            flat = lambda x: x.reshape(-1, x.shape[-1])  # noqa: E731
            dP = torch.cat([dA[0], dG[:, :, 0]], 2).transpose(0, 1)
            grads = [None, None, dP, None, None, *dh.unbind(1)]
            for j in range(N):
                dR = torch.cat([torch.mm(flat(FED[j]).t(), flat(dA[j])),
                                torch.mm(flat(H_star).t(), flat(dG[:, :, j]))], 1)
                grads.append(dR)
                if j > 0:
                    dx = torch.cat([dA[j], dG[:, :, j]], 2)
                    x = X[j] if X is not None else S[1:, :, j - 1]
                    grads += [torch.mm(flat(x).t(), flat(dx)), dx.sum((0, 1)) if ctx.has_bias[j] else None]
            return tuple(grads)

    return Sequence


_Sequence = LazyFunction(_make_function)
