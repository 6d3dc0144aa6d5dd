"""A whole sequence of a `HighwayTransitionCell` as one PyTorch autograd function.

The Recurrent Highway Network step is `L` highway layers, each a matmul and
a handful of elementwise kernels; under autograd every one of them is
recorded and replayed, frame by frame, and at the paper's sizes that
bookkeeping is the time of a training step (as for the deep transition
family, `_transition_bptt`). The backward pass through time of a highway
layer is short enough to write once by hand:

```python
# forward, nothing recorded; layer l of frame t, s the layer's input state, M the recurrent dropout mask
a = (s * M) @ R_l + (P_t if l == 0 else b_l);  c = φ(a[:, :n]);  g = σ(a[:, n:]);  s = s + g * (c - s)
# before the backward loop, over all frames at once: what does not read the gradient
J_l = [φ'(c) * g | σ'(g) * (c - s)];  K_l = 1 - g
# backward, t = T-1 .. 0, l = L-1 .. 0; ds the gradient of the layer's output
dA_l[t] = J_l[t] * [ds | ds];  ds = ds * K_l[t] + (dA_l[t] @ R_l.T) * M
# then every weight's gradient as one matmul over all steps: dR_l = (S_l * M).T @ dA_l, db_l = sum(dA_l)
```

A layer of a frame is five kernels forward and three backward (one more
each with recurrent dropout). `DeepRNN` uses it (`sequence`) where it
computes what the cell's `recurrent_step` computes and falls back to its
traced step everywhere else. The loops run as Python only: compiled by
TorchScript they took the function's forward and backward from 5.5 to
4.5 ms (128 units, 3 layers, batch 2, 64 frames), a tenth of a training
step, not yet worth a second copy of the loops.
"""

from keras_deeprnn.layers._transition_bptt import LazyFunction
from keras_deeprnn.layers._transition_bptt import activation_kind
from keras_deeprnn.layers._transition_bptt import all_float32
from keras_deeprnn.layers._transition_bptt import is_exactly
from keras_deeprnn.layers._transition_bptt import recurrent_mask
from keras_deeprnn.layers._transition_bptt import torch_tensors


def applies(cell, training, mask, dtype):
    """Whether `sequence` computes what `cell`'s step computes."""
    return (
        is_exactly(cell, "keras_deeprnn.cells.highway", "HighwayTransitionCell")
        and mask is None
        and activation_kind(cell.activation) is not None
        and all_float32(dtype, _used_weights(cell))
    )


def _used_weights(cell):
    """The weights the step reads: every recurrent kernel, the biases above the first layer."""
    return [*cell.recurrent_kernels, *(b for b in cell.biases[1:] if b is not None)]


def sequence(cell, projected, h0, training=False, go_backwards=False):
    """Every state of `cell` over `projected` (batch, time, 2 * units), from
    `h0`: a `(batch, time, units)` tensor in the order the steps ran."""
    import torch

    params = []
    for l, kernel in enumerate(cell.recurrent_kernels):
        params += [cell.noisy(kernel, training), cell.biases[l] if l > 0 else None]
    params = torch_tensors(params)
    mask = recurrent_mask(cell, h0, cell.units, training)  # the same at every layer
    if go_backwards:
        projected = torch.flip(projected, dims=[1])
    return _Sequence.apply(activation_kind(cell.activation), projected, h0, mask, *params)


def forward_loop(P, S, X, CG, D, mask, kernels, biases, kind):
    """Fills, for every layer l and frame t: the layer's input `S[l][t]`
    (`S[L]` holds the new states), `X[l][t] = S[l][t] * mask` where there is
    a mask, `CG[l][t] = [c | g]` and `D[l][t] = c - S[l][t]`."""
    import torch

    from keras_deeprnn.layers._transition_loops import activate

    L, n = len(kernels), S[0].shape[-1]
    # Views of every frame made once, not by indexing at every step.
    P_t = P.unbind(0)
    S_t = [s.unbind(0) for s in S]
    X_t = [x.unbind(0) for x in X]
    CG_t = [a.unbind(0) for a in CG]
    C_t = [a[:, :, :n].unbind(0) for a in CG]
    G_t = [a[:, :, n:].unbind(0) for a in CG]
    D_t = [d.unbind(0) for d in D]
    for t in range(P.shape[0]):
        for l in range(L):
            s, c, g, d = S_t[l][t], C_t[l][t], G_t[l][t], D_t[l][t]
            x = s if mask is None else torch.mul(s, mask, out=X_t[l][t])
            if l == 0 or biases[l] is not None:
                torch.addmm(P_t[t] if l == 0 else biases[l], x, kernels[l], out=CG_t[l][t])
            else:
                torch.mm(x, kernels[l], out=CG_t[l][t])
            activate(kind, c, c)
            torch.sigmoid(g, out=g)
            torch.sub(c, s, out=d)
            torch.addcmul(s, g, d, out=S_t[l + 1][t])


def backward_loop(dY, J, K, dA, mask, kernels_t):
    """Fills `dA[l][t]`, the gradient of layer l's pre-activation at frame t,
    from `J[l][t] = [φ'(c) * g | σ'(g) * (c - s)]` and `K[l][t] = 1 - g`;
    returns the gradient of the initial state."""
    import torch

    L, T = len(kernels_t), dY.shape[0]
    dY_t = dY.unbind(0)
    J_t = [j.unbind(0) for j in J]
    K_t = [k.unbind(0) for k in K]
    dA_t = [a.unbind(0) for a in dA]
    ds = dY_t[T - 1]
    for t in range(T - 1, -1, -1):
        for l in range(L - 1, -1, -1):
            d = dA_t[l][t]
            # Both halves at once: `ds` broadcast over [H | T].
            torch.mul(J_t[l][t], ds.unsqueeze(1), out=d.view(d.shape[0], 2, -1))
            # The carry of the layer's input, with the frame below's output gradient joined in.
            carried = (torch.addcmul(dY_t[t - 1], ds, K_t[l][t]) if l == 0 and t > 0
                       else ds * K_t[l][t])
            if mask is None:
                ds = torch.addmm(carried, d, kernels_t[l])
            else:
                ds = torch.addcmul(carried, torch.mm(d, kernels_t[l]), mask)
    return ds


def _make_function():
    import torch

    from keras_deeprnn.layers._transition_loops import derivative

    class Sequence(torch.autograd.Function):
        @staticmethod
        def forward(ctx, kind, projected, h0, mask, *params):
            kernels, biases = list(params[0::2]), list(params[1::2])
            L = len(kernels)
            P = projected.transpose(0, 1)  # (time, batch, 2n), a view: read only
            T, B, n = P.shape[0], P.shape[1], h0.shape[-1]
            # states (time + 1, ...) holds h0 and every new state; S[l] the input of layer l.
            states = P.new_empty((T + 1, B, n))
            states[0] = h0
            S = [states[:-1]] + [P.new_empty((T, B, n)) for _ in range(L - 1)] + [states[1:]]
            X = [P.new_empty((T, B, n)) for _ in range(L)] if mask is not None else []
            CG = [P.new_empty((T, B, 2 * n)) for _ in range(L)]
            D = [P.new_empty((T, B, n)) for _ in range(L)]
            forward_loop(P, S, X, CG, D, mask, kernels, biases, kind)
            ctx.kind, ctx.masked, ctx.has_bias = kind, mask is not None, [b is not None for b in biases]
            # What the weight gradients read: the layers' inputs, masked where there is a mask.
            inputs = X if mask is not None else [states[:-1], *S[1:L]]
            ctx.save_for_backward(*inputs, *CG, *D, *kernels, *([mask] if ctx.masked else []))
            return states[1:].transpose(0, 1).clone()

        @staticmethod
        def backward(ctx, grad_outputs):
            L = len(ctx.has_bias)
            saved = ctx.saved_tensors
            inputs, CG, D, kernels = (saved[i * L : (i + 1) * L] for i in range(4))
            mask = saved[4 * L] if ctx.masked else None
            n = D[0].shape[-1]
            dY = grad_outputs.transpose(0, 1)
            T, B = dY.shape[0], dY.shape[1]
            # Everything of the step's derivative that does not read the gradient, over all frames at once.
            J, K = [], []
            for cg, d in zip(CG, D):
                c, g = cg[:, :, :n], cg[:, :, n:]
                j = cg.new_empty((T, B, 2, n))
                derivative(ctx.kind, g, c, j[:, :, 0])
                torch.ops.aten.sigmoid_backward(d, g, grad_input=j[:, :, 1])
                J.append(j)
                K.append(1.0 - g)
            dA = [dY.new_empty((T, B, 2 * n)) for _ in range(L)]
            dh0 = backward_loop(dY, J, K, dA, mask, [k.t() for k in kernels])
            flat = lambda x: x.reshape(-1, x.shape[-1])  # noqa: E731
            grads = [None, dA[0].transpose(0, 1), dh0, None]
            for l in range(L):
                grads.append(torch.mm(flat(inputs[l]).t(), flat(dA[l])))
                grads.append(dA[l].sum((0, 1)) if ctx.has_bias[l] else None)
            return tuple(grads)

    return Sequence


_Sequence = LazyFunction(_make_function)
