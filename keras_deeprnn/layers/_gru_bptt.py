"""A whole sequence of Keras's `reset_after=True` GRU as one PyTorch autograd function.

On the CPU, `torch._VF.lstm` runs oneDNN's fused LSTM, but `torch._VF.gru`
has no fused CPU kernel: it steps through time with ATen's GRU cell and
autograd records each of its operations at every frame (profiled at 128
units, batch 2, 64 frames, one thread: 64 `addmm`, about 450 `add_` and a
backward node each, 2.2 ms forward and 5.0 ms backward a layer, against
0.6 and 1.1 ms for `_VF.lstm`). The backward pass through time of the GRU
is short enough to write once by hand, as for the deep transition and
highway families (`_transition_bptt`, `_highway_bptt`):

```python
# forward, nothing recorded; P_t = x_t @ W + b (recorded outside, one matmul), U, c the recurrent kernel and bias
a = h @ U + c;  z, r = σ(P_t[:, :2n] + a[:, :2n]);  q = a[:, 2n:]
n_ = tanh(P_t[:, 2n:] + r * q);  h = n_ + z * (h - n_)
# before the backward loop, over all frames at once: what does not read the gradient
G = (1 - z) * tanh'(n_);  J = [σ'(z) * (h_prev - n_) | σ'(r) * q * G | r * G | G]
# backward, t = T-1 .. 0; dh the gradient of the state the frame made
dA[t] = J[t] * dh;  dh = dY[t-1] + dh * z + dA[t][:, :3n] @ U.T
# then: dP = [dA_z | dA_r | dA_n] over all frames, dU = H_prev.T @ dA[..., :3n], dc = sum(dA[..., :3n])
```

A frame is eight kernels forward and three backward. `FusedGRU` uses it
(`sequence`) on the CPU in float32 and float64, where it was measured faster
than `_VF.gru`; on CUDA, cuDNN's fused GRU stays.
"""

from keras_deeprnn.layers._transition_bptt import LazyFunction

# False leaves every FusedGRU to `torch._VF.gru` (as before this module).
WHOLE_SEQUENCE = True


def applies(inputs):
    """Whether `sequence` runs `inputs` (a torch tensor): on the CPU, in
    float32 or float64, outside `torch.compile`'s tracing."""
    import torch

    return (WHOLE_SEQUENCE and inputs.device.type == "cpu" and inputs.dtype in (torch.float32, torch.float64)
            and not torch.compiler.is_compiling())


def sequence(projected, h0, recurrent_kernel, recurrent_bias=None):
    """Every state of the GRU over `projected` (batch, time, 3 * units), the
    inputs' share of the gates `x_t @ W + b_input` in Keras's order `z, r, n`,
    from `h0` (batch, units): a `(batch, time, units)` tensor in step order."""
    return _Sequence.apply(projected, h0, recurrent_kernel, recurrent_bias)


def forward_loop(P, H, ZR, N, A, U, c):
    """Fills, for every frame t: `H[t + 1]` the new state (`H[0]` is h0),
    `ZR[t] = [z | r]`, `N[t]` the candidate and `A[t] = h @ U + c`."""
    import torch

    n = H.shape[-1]
    # Views of every frame made once, not by indexing at every step.
    P_zr, P_n = P[:, :, : 2 * n].unbind(0), P[:, :, 2 * n:].unbind(0)
    A_t, A_zr, Q = A.unbind(0), A[:, :, : 2 * n].unbind(0), A[:, :, 2 * n:].unbind(0)
    H_t, ZR_t, N_t = H.unbind(0), ZR.unbind(0), N.unbind(0)
    Z, R = ZR[:, :, :n].unbind(0), ZR[:, :, n:].unbind(0)
    for t in range(P.shape[0]):
        if c is None:
            torch.mm(H_t[t], U, out=A_t[t])
        else:
            torch.addmm(c, H_t[t], U, out=A_t[t])
        torch.add(P_zr[t], A_zr[t], out=ZR_t[t])
        torch.sigmoid(ZR_t[t], out=ZR_t[t])
        torch.addcmul(P_n[t], R[t], Q[t], out=N_t[t])
        torch.tanh(N_t[t], out=N_t[t])
        # h' = z * h + (1 - z) * n, in one kernel.
        torch.lerp(N_t[t], H_t[t], Z[t], out=H_t[t + 1])


def backward_loop(dY, J, Z, dA, U_T):
    """Fills `dA[t] = J[t] * dh` with dh the gradient of frame t's new state;
    returns the gradient of the initial state."""
    import torch

    T = dY.shape[0]
    dh = dY[T - 1]
    for t in range(T - 1, -1, -1):
        d = dA[t]
        torch.mul(J[t], dh.unsqueeze(1), out=d)
        carried = torch.addcmul(dY[t - 1], dh, Z[t]) if t > 0 else dh * Z[t]
        dh = torch.addmm(carried, d.view(d.shape[0], -1)[:, : 3 * d.shape[-1]], U_T)
    return dh


def _make_function():
    import torch

    class Sequence(torch.autograd.Function):
        @staticmethod
        def forward(ctx, projected, h0, U, c):
            P = projected.transpose(0, 1).contiguous()  # (time, batch, 3n)
            T, B, n = P.shape[0], P.shape[1], h0.shape[-1]
            H = P.new_empty((T + 1, B, n))
            H[0] = h0
            ZR = P.new_empty((T, B, 2 * n))
            N = P.new_empty((T, B, n))
            A = P.new_empty((T, B, 3 * n))
            forward_loop(P, H, ZR, N, A, U, c)
            ctx.has_bias = c is not None
            ctx.save_for_backward(H, ZR, N, A, U)
            return H[1:].transpose(0, 1).clone()

        @staticmethod
        def backward(ctx, grad_outputs):
            H, ZR, N, A, U = ctx.saved_tensors
            n = N.shape[-1]
            Q = A[:, :, 2 * n:]
            dY = grad_outputs.transpose(0, 1).contiguous()
            T, B = dY.shape[0], dY.shape[1]
            z, r = ZR[:, :, :n], ZR[:, :, n:]
            # Everything of the step's derivative that does not read the gradient, over all frames at once.
            J = dY.new_empty((T, B, 4, n))
            G = torch.ops.aten.tanh_backward(1.0 - z, N)
            torch.ops.aten.sigmoid_backward(H[:-1] - N, z, grad_input=J[:, :, 0])
            torch.ops.aten.sigmoid_backward(Q * G, r, grad_input=J[:, :, 1])
            torch.mul(r, G, out=J[:, :, 2])
            J[:, :, 3] = G
            dA = dY.new_empty((T, B, 4, n))
            dh0 = backward_loop(dY, J, z, dA, U.t())
            flat = dA.view(T * B, 4 * n)
            d_recurrent = flat[:, : 3 * n]
            dU = torch.mm(H[:-1].reshape(T * B, n).t(), d_recurrent)
            dc = d_recurrent.sum(0) if ctx.has_bias else None
            dP = torch.cat([flat[:, : 2 * n], flat[:, 3 * n:]], dim=1).view(T, B, 3 * n).transpose(0, 1)
            return dP, dh0, dU, dc

    return Sequence


_Sequence = LazyFunction(_make_function)
