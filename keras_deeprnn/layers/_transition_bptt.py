"""A whole sequence of a `DeepTransitionCell` as one PyTorch autograd function.

On PyTorch, autograd records every operation of every step and replays each
one backwards, one Python-dispatched kernel at a time; at the paper's sizes
(a few pieces of a few dozen frames, 32-256 units) that bookkeeping, not
the arithmetic, is the time of a step. For the deep transition family the
backward pass through time is short enough to write once by hand:

```python
# forward, nothing recorded; r = P_t + h_prev @ [W_1 | W_bar] (the shortcut part too)
z_0 = φ_l(r[:, :m]);  z_i = φ_l(z_{i-1} @ K_{i-1} + c_{i-1});  h = φ(z @ K_top + c_top + r[:, m:])
# backward, t = T-1 .. 0: four fused kernels a step for DT(S)-RNN
g = dY_t + dR_{t+1} @ [W_1 | W_bar].T;  dA_top = φ'(g);  dz = dA_top @ K_top.T;  dR_t = [φ_l'(dz), dA_top]
# then every weight's gradient as one matmul over all steps: dW = H_prev.T @ dR, dK = Z.T @ dA
```

The loops themselves (`_transition_loops`) run as Python for a process's
first `SCRIPT_AFTER` sequences and compiled by TorchScript after that, where
this torch can. `DeepRNN` uses it (`transition_sequence`) where it computes
what the cell asks for and falls back to its traced step everywhere else.
"""

import keras

# Activations whose derivative reads the activation's output alone.
_ACTIVATIONS = {"tanh", "sigmoid", "relu", "linear"}


def activation_kind(activation):
    """`"tanh"`, `"sigmoid"`, `"relu"` or `"linear"` for Keras's own
    functions of those names, None for anything else."""
    name = getattr(activation, "__name__", None)
    if name in _ACTIVATIONS and activation in (getattr(keras.activations, name), getattr(keras.ops, name, None)):
        return name
    return None


def is_exactly(cell, module, qualname):
    """Whether `cell` is of the class `module.qualname` itself, not a
    subclass (whose step may differ); named rather than imported, as cells
    sit a floor above layers."""
    kind = type(cell)
    return (kind.__module__, kind.__qualname__) == (module, qualname)


def all_float32(dtype, weights):
    """Whether the sequence's `dtype` and every one of `weights` are float32."""
    return str(dtype) == "torch.float32" and all(v.dtype == "float32" for v in weights)


def torch_tensors(values):
    """`values` (variables, tensors or None) as torch tensors, None kept."""
    import torch

    return [None if v is None else torch.as_tensor(getattr(v, "value", v)) for v in values]


def recurrent_mask(cell, like, width, training):
    """The first `width` columns of the recurrent dropout mask `cell`'s step
    would use, drawn once for the sequence and recorded on the cell, as
    `apply_recurrent_dropout` takes it; None where the step uses none."""
    if not (training and cell.recurrent_dropout):
        return None
    cell.get_recurrent_dropout_mask(like)
    return cell.cached_draw("recurrent_dropout")[:, :width]


def level_masks(cell, like, training):
    """The dropout masks of a cell that steps `num_layers` levels together
    (`_depth_gated_bptt`, `_gated_feedback_bptt`): `(input_mask,
    levels_mask)`, the input dropout between levels (each level's input
    `h^{j-1}_t` above the bottom, as `apply_input_dropout` takes it) and
    the recurrent dropout of every level's `h_{t-1}`; each drawn once for
    the sequence and recorded on the cell, None where the step uses none."""
    levels, n = cell.num_layers, cell.units
    input_mask = None
    if training and cell.dropout and levels > 1:
        cell.get_dropout_mask(like)
        input_mask = cell.cached_draw("dropout")[:, cell._input_dim: cell._input_dim + (levels - 1) * n]
    return input_mask, recurrent_mask(cell, like, levels * n, training)


def applies(cell, training, mask, dtype):
    """Whether `transition_sequence` computes what `cell`'s step computes."""
    return (is_exactly(cell, "keras_deeprnn.cells.deep_transition", "DeepTransitionCell")
            and transition_computable(cell, mask, dtype))


def transition_computable(cell, mask, dtype):
    """Whether the deep transition of `cell` (this module's, and the
    DT(S)-LSTM's in `_transition_lstm_bptt`) is one the functions compute:
    no mask, no layer norm, Keras's own activations, float32."""
    return (
        mask is None
        and not cell.layer_norm
        and activation_kind(cell.activation) is not None
        and activation_kind(cell.transition_activation) is not None
        and all_float32(dtype, _used_weights(cell))
    )


def _used_weights(cell):
    biases = cell.transition_biases if cell.use_bias else []
    return [cell.recurrent_kernel, *cell.transition_kernels, *biases]


def transition_params(cell, training):
    """The weights a deep transition's function takes, as torch tensors: the
    recurrent kernel, then each transition kernel and its bias (None without
    biases), with the cell's weight noise or DropConnect drawn."""
    params = [cell.noisy(cell.recurrent_kernel, training)]
    for i, kernel in enumerate(cell.transition_kernels):
        params += [cell.noisy(kernel, training), cell.transition_biases[i] if cell.use_bias else None]
    return torch_tensors(params)


def time_major_inputs(projected, biases, m, shortcut):
    """`projected` (batch, time, features) as a contiguous (time, batch,
    features) copy; with a shortcut the top bias joins its input terms
    (`[:, :, m:]`) here once, not at every step."""
    import torch

    P = projected.transpose(0, 1).clone(memory_format=torch.contiguous_format)
    if biases and shortcut and biases[-1] is not None:
        P[:, :, m:] += biases[-1]
    return P


def transition_weight_grads(h_in, dR, Z, dA, has_bias):
    """The gradients of the recurrent kernel and of every transition kernel
    and bias, each one matmul or sum over all steps: `h_in` the (masked)
    previous states, `dR` the gradient of `r`, `Z` the hidden layers'
    outputs, `dA` each kernel's output's gradient."""
    import torch

    flat = lambda x: x.reshape(-1, x.shape[-1])  # noqa: E731
    grads = [torch.mm(flat(h_in).t(), flat(dR))]
    for i, (z, da) in enumerate(zip(Z, dA)):
        grads += [torch.mm(flat(z).t(), flat(da)), da.sum((0, 1)) if has_bias[i] else None]
    return grads


def transition_sequence(cell, projected, h0, training=False, go_backwards=False):
    """Every state of `cell` over `projected` (batch, time, features), from
    `h0`: a `(batch, time, units)` tensor in the order the steps ran."""
    import torch

    params = transition_params(cell, training)
    plan = _Plan(
        m=cell._first_width,
        layers=cell.num_transition_layers,
        shortcut=cell.shortcut,
        top=activation_kind(cell.activation),
        inner=activation_kind(cell.transition_activation),
    )
    mask = recurrent_mask(cell, h0, cell.units, training)
    if go_backwards:
        projected = torch.flip(projected, dims=[1])
    return _Sequence.apply(plan, projected, h0, mask, *params)


class _Plan:
    def __init__(self, m, layers, shortcut, top, inner):
        self.m, self.layers, self.shortcut, self.top, self.inner = m, layers, shortcut, top, inner
        self.loops = None  # (forward_loop, backward_loop), chosen by `_Lazy.apply`


def _make_function():
    import torch

    class Sequence(torch.autograd.Function):
        @staticmethod
        def forward(ctx, plan, projected, h0, mask, recurrent_kernel, *transition):
            m, L = plan.m, plan.layers
            kernels, biases = list(transition[0::2]), list(transition[1::2])
            P = time_major_inputs(projected, biases, m, plan.shortcut)
            T, B = P.shape[0], P.shape[1]
            H = P.new_empty((T + 1,) + tuple(h0.shape))
            H[0] = h0
            Z = [P.new_empty((T, B, m)) for _ in range(L - 1)]
            plan.loops[0](P, H, Z, recurrent_kernel, kernels, biases, mask, m, plan.shortcut, plan.top,
                          plan.inner)
            ctx.plan, ctx.masked = plan, mask is not None
            ctx.save_for_backward(H, recurrent_kernel, *([mask] if ctx.masked else []), *Z, *kernels)
            ctx.has_bias = [b is not None for b in biases]
            return H[1:].transpose(0, 1).clone()

        @staticmethod
        def backward(ctx, grad_outputs):
            plan = ctx.plan
            m, L = plan.m, plan.layers
            H, recurrent_kernel, *rest = ctx.saved_tensors
            mask = rest.pop(0) if ctx.masked else None
            Z, kernels = list(rest[: L - 1]), rest[L - 1:]
            dY = grad_outputs.transpose(0, 1)
            T, B, n = dY.shape
            W_T = recurrent_kernel.t()
            dR = dY.new_empty((T, B, recurrent_kernel.shape[1]))
            dA = [dY.new_empty((T, B, k.shape[1])) for k in kernels[:-1]]
            if L > 1:
                dA.append(dR[:, :, m:] if plan.shortcut else dY.new_empty((T, B, n)))
            plan.loops[1](dY, H, Z, W_T, [k.t() for k in kernels], dR, dA, mask, m, plan.top, plan.inner)
            dh0 = torch.mm(dR[0], W_T)
            h_in = H[:-1]
            if mask is not None:
                dh0, h_in = dh0 * mask, h_in * mask
            return (None, dR.transpose(0, 1), dh0, None,
                    *transition_weight_grads(h_in, dR, Z, dA, ctx.has_bias))

    return Sequence


class LazyFunction:
    """The autograd function `make()` returns, made on first use: importing
    the package imports no backend."""

    def __init__(self, make):
        self.make, self.function = make, None

    def apply(self, *args):
        if self.function is None:
            self.function = self.make()
        return self.function.apply(*args)


# TorchScript's loops cost about 50 ms to compile and save about 12 µs a
# frame (DT(S)-RNN, 32 units): worth it from a few dozen sequences on, not
# for a model that runs once. The Python loops run the first sequences.
SCRIPT_AFTER = 50


class _Lazy:
    """The autograd function and its loops, made on first use: importing
    the package imports no backend."""

    def __init__(self):
        self.function = self.python = self.scripted = None
        self.calls = 0
        self.last_loops = None

    def apply(self, plan, *args):
        if self.function is None:
            from keras_deeprnn.layers import _transition_loops as loops

            self.function = _make_function()
            self.python = (loops.forward_loop, loops.backward_loop)
        self.calls += 1
        plan.loops = self.python
        if self.calls > SCRIPT_AFTER:
            if self.scripted is None:
                from keras_deeprnn.layers import _transition_loops as loops

                self.scripted = loops.scripted() or False
            plan.loops = self.scripted or self.python
        self.last_loops = plan.loops
        return self.function.apply(plan, *args)


_Sequence = _Lazy()
