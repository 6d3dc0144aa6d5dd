"""`FusedLSTM`, `FusedGRU`: Keras's LSTM and GRU layers on PyTorch's fused kernels on every device
(the GRU on the CPU: one autograd function over the whole sequence, `_gru_bptt`)."""

import keras
from keras import activations
from keras import ops
from keras import tree

from keras_deeprnn import _checks


class _TorchKernel:
    """The time loop of a Keras LSTM or GRU, given to torch's fused kernel
    (`torch_kernel`) where it computes what the layer's arguments ask for."""

    def __init__(self, *args, **kwargs):
        # Keras takes any int and fails later on a backend's generator.
        _checks.seed("seed", kwargs.get("seed"))
        super().__init__(*args, **kwargs)

    def inner_loop(self, sequences, initial_state, mask, training=False):
        if tree.is_nested(mask):
            mask = mask[0]
        if not _torch_kernel_applies(self, mask):
            return super().inner_loop(sequences, initial_state, mask, training=training)
        if training and self.dropout:
            # Keras's per-sequence input dropout, as in its LSTM and GRU inner loops.
            dp_mask = self.cell.get_dropout_mask(sequences[:, 0, :])
            sequences = sequences * ops.expand_dims(dp_mask, axis=1)
        return self.torch_kernel(sequences, initial_state, self.cell,
                                 return_sequences=self.return_sequences,
                                 go_backwards=self.go_backwards)


def _torch_lstm(inputs, initial_state, cell, return_sequences, go_backwards):
    import torch

    h0, c0 = initial_state[0], initial_state[1]

    dtype = inputs.dtype
    kernel = ops.cast(cell.kernel, dtype)
    recurrent_kernel = ops.cast(cell.recurrent_kernel, dtype)
    units = recurrent_kernel.shape[0]
    if cell.use_bias:
        bias = ops.cast(cell.bias, dtype)
    else:
        bias = torch.zeros(4 * units, dtype=dtype, device=inputs.device)
    params = [kernel.T.contiguous(), recurrent_kernel.T.contiguous(), bias,
              torch.zeros_like(bias)]
    if go_backwards:
        inputs = torch.flip(inputs, dims=[1])
    state = (ops.cast(h0, dtype).unsqueeze(0), ops.cast(c0, dtype).unsqueeze(0))
    # (input, hx, params, has_biases, num_layers, dropout, train, bidirectional, batch_first)
    outputs, h_n, c_n = torch._VF.lstm(
        inputs, state, params, True, 1, 0.0, torch.is_grad_enabled(), False, True
    )
    last = outputs[:, -1]
    if not return_sequences:
        outputs = last.unsqueeze(1)
    return last, outputs, [h_n.squeeze(0), c_n.squeeze(0)]


def _torch_gru(inputs, initial_state, cell, return_sequences, go_backwards):
    import torch

    from keras_deeprnn.layers import _gru_bptt

    h0 = initial_state[0] if tree.is_nested(initial_state) else initial_state

    dtype = inputs.dtype
    if _gru_bptt.applies(inputs):
        return _whole_sequence_gru(inputs, ops.cast(h0, dtype), cell, return_sequences, go_backwards)

    def torch_order(matrix, dim):
        # Keras's gates z, r, n -> torch's r, z, n.
        z, r, n = torch.chunk(matrix, 3, dim=dim)
        return torch.cat([r, z, n], dim=dim)

    kernel = torch_order(ops.cast(cell.kernel, dtype), 1)
    recurrent_kernel = torch_order(ops.cast(cell.recurrent_kernel, dtype), 1)
    units = recurrent_kernel.shape[0]
    if cell.use_bias:
        bias = ops.cast(cell.bias, dtype)
        input_bias, recurrent_bias = torch_order(bias[0], 0), torch_order(bias[1], 0)
    else:
        input_bias = recurrent_bias = torch.zeros(3 * units, dtype=dtype, device=inputs.device)
    params = [kernel.T.contiguous(), recurrent_kernel.T.contiguous(), input_bias, recurrent_bias]
    if go_backwards:
        inputs = torch.flip(inputs, dims=[1])
    # (input, hx, params, has_biases, num_layers, dropout, train, bidirectional, batch_first)
    outputs, h_n = torch._VF.gru(
        inputs, ops.cast(h0, dtype).unsqueeze(0), params, True, 1, 0.0,
        torch.is_grad_enabled(), False, True,
    )
    last = outputs[:, -1]
    if not return_sequences:
        outputs = last.unsqueeze(1)
    return last, outputs, [h_n.squeeze(0)]


def _whole_sequence_gru(inputs, h0, cell, return_sequences, go_backwards):
    import torch

    from keras_deeprnn.layers import _gru_bptt

    dtype = inputs.dtype
    kernel = ops.cast(cell.kernel, dtype)
    recurrent_kernel = ops.cast(cell.recurrent_kernel, dtype)
    if go_backwards:
        inputs = torch.flip(inputs, dims=[1])
    if cell.use_bias:
        bias = ops.cast(cell.bias, dtype)
        projected = torch.addmm(bias[0], inputs.reshape(-1, inputs.shape[-1]), kernel)
        recurrent_bias = bias[1]
    else:
        projected = torch.mm(inputs.reshape(-1, inputs.shape[-1]), kernel)
        recurrent_bias = None
    projected = projected.view(inputs.shape[0], inputs.shape[1], -1)
    outputs = _gru_bptt.sequence(projected, h0, recurrent_kernel, recurrent_bias)
    last = outputs[:, -1]
    if not return_sequences:
        outputs = last.unsqueeze(1)
    return last, outputs, [last]


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class FusedLSTM(_TorchKernel, keras.layers.LSTM):
    """`keras.layers.LSTM`, with PyTorch's own LSTM kernel also on the CPU.

    Keras 3.15 hands an LSTM to cuDNN where one is available (TensorFlow
    and PyTorch on a GPU); on the PyTorch backend without CUDA it runs a
    Python loop over time steps instead, about three times slower than
    `torch.nn.LSTM`. This layer gives that case to `torch._VF.lstm`, the
    fused kernel `torch.nn.LSTM` calls (same gate order `i, f, c, o`; the
    Keras bias goes in as the input bias, the recurrent bias is zero). It
    applies when the arguments are those the kernel computes: `tanh` and
    `sigmoid`, no mask, no `recurrent_dropout`, no `unroll`; otherwise, and
    on every other backend, it is `keras.layers.LSTM` unchanged (tests
    check equal outputs and gradients). Weights, config and saved files
    are those of `keras.layers.LSTM`, under this class's name.

    ```python
    layer = FusedLSTM(256, return_sequences=True)   # every LSTM argument
    ```
    """

    def torch_kernel(self, *args, **kwargs):
        return _torch_lstm(*args, **kwargs)  # by name when called, as the tests patch it


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class FusedGRU(_TorchKernel, keras.layers.GRU):
    """`keras.layers.GRU`, with a whole-sequence PyTorch route also on the CPU.

    Keras 3.15 hands a GRU to cuDNN on a GPU; on the PyTorch backend without
    CUDA it steps through time in Python instead. This layer gives that case
    to one autograd function with a hand-written backward pass through time
    (`_gru_bptt`, in float32 and float64 on the CPU), and any other device or
    dtype (CUDA, half precision) to `torch._VF.gru`, the kernel
    `torch.nn.GRU` calls. On the CPU `_VF.gru` is not fused (unlike
    `_VF.lstm`): it steps ATen's GRU cell with autograd recording every
    operation of every frame; the whole-sequence function took a
    `deep_gru` training step (128 units, batch 2, 64 frames, one thread)
    from 25.4 to 12.8-15.2 ms of process CPU time
    (`benchmarks/results/torch_routes.md`). Keras's `reset_after=True` GRU is torch's formulation:

    ```python
    z = σ(x W_z + b_z + h U_z + c_z);  r = σ(x W_r + b_r + h U_r + c_r)
    n = tanh(x W_n + b_n + r ⊙ (h U_n + c_n));  h' = z ⊙ h + (1 - z) ⊙ n
    ```

    in Keras's gate order `z, r, n` for the whole-sequence function, and
    reordered to torch's `r, z, n` for `_VF.gru` (Keras's two bias rows are
    torch's input and recurrent biases). Either applies when it computes the
    arguments: `reset_after=True`,
    `tanh` and `sigmoid`, no mask, no `recurrent_dropout`, no `unroll`;
    otherwise, and on every other backend, it is `keras.layers.GRU`
    unchanged (tests check equal outputs and gradients). Weights, config
    and saved files are those of `keras.layers.GRU`, under this class's name.

    ```python
    layer = FusedGRU(256, return_sequences=True)   # every GRU argument
    ```
    """

    def torch_kernel(self, *args, **kwargs):
        return _torch_gru(*args, **kwargs)  # by name when called, as the tests patch it


def _torch_kernel_applies(layer, mask):
    """Whether torch's fused kernel computes what `layer`'s arguments ask for."""
    cell = layer.cell
    return (
        keras.backend.backend() == "torch"
        and mask is None
        and getattr(cell, "reset_after", True)
        and not layer.recurrent_dropout
        and not layer.unroll
        and layer.use_cudnn in ("auto", True)
        and cell.activation in (activations.tanh, ops.tanh)
        and cell.recurrent_activation in (activations.sigmoid, ops.sigmoid)
    )
