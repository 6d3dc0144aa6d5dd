"""NumPy versions of each cell's equations (its class docstring and the README's tables), in float64.

Each function takes weights as NumPy arrays named as in the cells'
docstrings, so a test can feed a layer's own weights and compare.
"""

import numpy as np


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


ACTIVATIONS = {"tanh": np.tanh, "relu": lambda z: np.maximum(z, 0.0), "linear": lambda z: z,
               "sigmoid": sigmoid}


def layer_norm(a, gamma, beta, epsilon=1e-3):
    mean = a.mean(-1, keepdims=True)
    var = a.var(-1, keepdims=True)
    return (a - mean) / np.sqrt(var + epsilon) * gamma + beta


def dt_step(x, h, w, num_transition_layers, shortcut, activation="tanh", transition_activation=None):
    """One step of DT / DT(S) (Pascanu et al. 2014: deep transition, with shortcuts).

    With `ln_gamma_l`/`ln_beta_l` among the weights, each layer's summed
    pre-activation is layer-normalised before its activation.
    """
    return ACTIVATIONS[activation](dt_top(x, h, w, num_transition_layers, shortcut,
                                          activation, transition_activation))


def dt_top(x, h, w, num_transition_layers, shortcut, activation="tanh", transition_activation=None):
    """DT / DT(S) up to the top layer's (normalised) pre-activation."""
    phi_l = ACTIVATIONS[transition_activation or activation]
    L = num_transition_layers

    def ln(a, l):
        if f"ln_gamma_{l}" not in w:
            return a
        return layer_norm(a, w[f"ln_gamma_{l}"], w[f"ln_beta_{l}"])

    # `use_bias=False`: no bias among the weights, a zero one in the equations.
    bias = w.get("bias", 0.0)
    if L == 1:
        return ln(h @ w["recurrent_kernel"] + x @ w["input_kernel"] + bias, 0)
    m = w["transition_kernel_0"].shape[0]
    U, W1 = w["input_kernel"][:, :m], w["recurrent_kernel"][:, :m]
    z = phi_l(ln(h @ W1 + x @ U + bias, 0))
    for l in range(L - 2):
        z = phi_l(ln(z @ w[f"transition_kernel_{l}"] + w.get(f"transition_bias_{l}", 0.0), l + 1))
    top = z @ w[f"transition_kernel_{L - 2}"] + w.get(f"transition_bias_{L - 2}", 0.0)
    if shortcut:
        U_bar, W_bar = w["input_kernel"][:, m:], w["recurrent_kernel"][:, m:]
        top = top + h @ W_bar + x @ U_bar
    return ln(top, L - 1)


def run(step, x, h0):
    """Unroll `step(x_t, state) -> (output, state)` over (batch, time, features)."""
    state, outputs = h0, []
    for t in range(x.shape[1]):
        out, state = step(x[:, t], state)
        outputs.append(out)
    return np.stack(outputs, axis=1), state


def _map(fn, *trees):
    if isinstance(trees[0], (list, tuple)):
        return type(trees[0])(_map(fn, *parts) for parts in zip(*trees))
    return fn(*trees)


def zoneout(rate, output_of=lambda state: state):
    """Wrap `step` in zoneout at inference: every state moves `1 - rate` of
    the way to its new value; the output is read from the zoned states."""
    def wrap(step, initial):
        def zoned(x_t, state):
            _, new = step(x_t, state)
            state = _map(lambda old, s: rate * old + (1 - rate) * s, state, new)
            return output_of(state), state
        return zoned
    return wrap


def reset(inner=lambda step, initial: step):
    """Wrap `step` in a per-example reset read from the last input feature
    (1: states return to `initial` before the step); `inner` wraps first."""
    def wrap(step, initial):
        step = inner(step, initial)

        def resetting(x_t, state):
            flag = x_t[:, -1:]
            state = _map(lambda init, s: flag * init + (1 - flag) * s, initial, state)
            return step(x_t[:, :-1], state)
        return resetting
    return wrap


def plain(step, initial):
    return step


def _flatten(tree):
    if isinstance(tree, (list, tuple)):
        return [leaf for part in tree for leaf in _flatten(part)]
    return [tree]


def _pack(tree, flat):
    """`flat` (a list, consumed) in the nesting of `tree`."""
    if isinstance(tree, (list, tuple)):
        return type(tree)(_pack(part, flat) for part in tree)
    return flat.pop(0)


def masked(input_mask=None, recurrent_mask=None):
    """Wrap `step` in training-mode variational dropout: the same masks
    (batch, features) at every step, on `x_t` and on `h_{t-1}` as the
    recurrent products read it (the first state; an LSTM's `c` is not
    dropped). Masks hold 0 or 1 / (1 - rate)."""
    def wrap(step, initial):
        def dropped(x_t, state):
            if input_mask is not None:
                x_t = x_t * input_mask
            if recurrent_mask is not None:
                if isinstance(state, (list, tuple)):
                    state = type(state)([state[0] * recurrent_mask, *state[1:]])
                else:
                    state = state * recurrent_mask
            return step(x_t, state)
        return dropped
    return wrap


def zoneout_drawn(keep, output_of=lambda state: state, inner=plain):
    """Training-mode zoneout: `keep[:, t]` (batch, all state widths, in the
    order of the flattened states) is 1 where a unit keeps its previous
    value at step t. `inner` wraps the step first (its dropout masks)."""
    def wrap(step, initial):
        step = inner(step, initial)
        t = [0]

        def zoned(x_t, state):
            _, new = step(x_t, state)
            flat_old, flat_new, start, zoned_flat = _flatten(state), _flatten(new), 0, []
            for old, s in zip(flat_old, flat_new):
                k = keep[:, t[0], start:start + s.shape[-1]]
                zoned_flat.append(k * old + (1 - k) * s)
                start += s.shape[-1]
            assert start == keep.shape[-1], "one keep decision per unit of every state"
            t[0] += 1
            state = _pack(new, zoned_flat)
            return output_of(state), state
        return zoned
    return wrap


def recording(sink, inner=plain):
    """Wrap `step` so `sink[0]` holds the last state after the run."""
    def wrap(step, initial):
        step = inner(step, initial)

        def recorded(x_t, state):
            out, state = step(x_t, state)
            sink[:] = [state]
            return out, state
        return recorded
    return wrap


def dt_lstm_sequence(x, w, units, wrap=plain, **kwargs):
    """LSTM whose four gate pre-activations come from the DT / DT(S) layers."""
    n = units
    state = (np.zeros((x.shape[0], n)) + w.get("initial_state", 0.0), np.zeros((x.shape[0], n)))

    def step(x_t, state):
        h, c = state
        a = dt_top(x_t, h, w, **kwargs)
        i, f, g, o = (a[:, k * n:(k + 1) * n] for k in range(4))
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
        return h, (h, c)

    return run(wrap(step, state), x, state)[0]


def dt_sequence(x, w, units, wrap=plain, **kwargs):
    h0 = np.zeros((x.shape[0], units)) + w.get("initial_state", 0.0)

    def step(x_t, h):
        h = dt_step(x_t, h, w, **kwargs)
        return h, h

    return run(wrap(step, h0), x, h0)[0]


def dg_lstm_sequence(x, weights, units, num_layers, wrap=plain, input_masks=None,
                     recurrent_masks=None, h0=0.0):
    """Depth-Gated LSTM (Yao et al. 2015); weights[l] holds level l's arrays.

    `h0` (`(num_layers, units)`, or zero) is every level's initial `h`. In training, `input_masks[l]` drops level l's input (`x_t` at the
    bottom, the level below's `h_t` above: dropout between levels) and
    `recurrent_masks[l]` its `h_{t-1}`.
    """
    n = units
    B = x.shape[0]
    h0 = np.broadcast_to(h0, (num_layers, n))
    states = [(np.zeros((B, n)) + h0[l], np.zeros((B, n))) for l in range(num_layers)]

    def step(x_t, states):
        new_states, inp, c_low = [], x_t, None
        for l in range(num_layers):
            w = weights[l]
            K, R, P, b = w["kernel"], w["recurrent_kernel"], w["peephole"], w["bias"]
            h_prev, c_prev = states[l]
            if input_masks is not None:
                inp = inp * input_masks[l]
            if recurrent_masks is not None:
                h_prev = h_prev * recurrent_masks[l]
            if l == 0:
                c_low = inp @ K[:, 5 * n:]
                K = K[:, :5 * n]
            g = inp @ K + b
            r = h_prev @ R
            w_ci, w_cf, w_cd, w_ld, w_co = P
            i = sigmoid(g[:, :n] + r[:, :n] + c_prev * w_ci)
            f = sigmoid(g[:, n:2 * n] + r[:, n:2 * n] + c_prev * w_cf)
            d = sigmoid(g[:, 2 * n:3 * n] + c_prev * w_cd + c_low * w_ld)
            c = d * c_low + f * c_prev + i * np.tanh(g[:, 3 * n:4 * n] + r[:, 2 * n:3 * n])
            o = sigmoid(g[:, 4 * n:] + r[:, 3 * n:] + c * w_co)
            h = o * np.tanh(c)
            new_states.append((h, c))
            inp, c_low = h, c
        return inp, new_states

    return run(wrap(step, states), x, states)[0]


def rhn_sequence(x, w, units, num_transition_layers):
    """Recurrent Highway Network, coupled carry gate (Zilly et al. 2017)."""
    n = units

    def step(x_t, s):
        for l in range(num_transition_layers):
            a = s @ w[f"recurrent_kernel_{l}"] + w[f"bias_{l}"]
            if l == 0:
                a = a + x_t @ w["input_kernel"]
            t = sigmoid(a[:, n:])
            s = np.tanh(a[:, :n]) * t + s * (1.0 - t)
        return s, s

    return run(step, x, np.zeros((x.shape[0], n)) + w.get("initial_state", 0.0))[0]


def gated_feedback_sequence(x, w, units, num_layers):
    """GF-RNN, tanh variant (Chung et al. 2015); fused weights as in the cell,
    every level's initial `h` from `initial_state` (`(N, n)`) if learned."""
    n, N = units, num_layers
    h0 = np.broadcast_to(w.get("initial_state", 0.0), (N, n))

    def step(x_t, hs):
        h_star = np.concatenate(hs, axis=-1)
        new, inp = [], x_t
        for j in range(N):
            K, R, b = w[f"kernel_{j}"], w[f"recurrent_kernel_{j}"], w[f"bias_{j}"]
            W, w_g = K[:, :n], K[:, n:]
            U = [R[i * n:(i + 1) * n, :n] for i in range(N)]
            u_g, b_h, b_g = R[:, n:], b[:n], b[n:]
            g = sigmoid(inp @ w_g + h_star @ u_g + b_g)          # (batch, N)
            total = inp @ W + b_h + sum(g[:, i:i + 1] * (hs[i] @ U[i]) for i in range(N))
            h = np.tanh(total)
            new.append(h)
            inp = h
        return inp, new

    return run(step, x, [np.zeros((x.shape[0], n)) + h0[j] for j in range(N)])[0]


def pooled(z, activation, units, pieces, rho=None):
    slices = [z[..., k * units:(k + 1) * units] for k in range(pieces)]
    if activation == "maxout":
        return np.max(np.stack(slices), axis=0)
    if activation == "lp":
        p = 1.0 + np.log1p(np.exp(rho))
        return (sum((np.abs(s) + 1e-6) ** p for s in slices) / pieces) ** (1.0 / p)
    return ACTIVATIONS[activation](z)


def mlp(x, w, widths, activations, pieces=2, masks=None):
    """DeepInput / DeepOutput: kernel_i, bias_i, lp_rho_i per layer; in
    training `masks[i]` (0 or 1 / (1 - rate)) drops layer i's output."""
    for i, (units, act) in enumerate(zip(widths, activations)):
        z = x @ w[f"kernel_{i}"] + w[f"bias_{i}"]
        x = pooled(z, act, units, pieces, w.get(f"lp_rho_{i}"))
        if masks is not None and masks[i] is not None:
            x = x * masks[i]
    return x


def numeric_grad(loss, arrays, eps=1e-6):
    """Central finite differences of `loss()` w.r.t. each array, in place."""
    grads = []
    for a in arrays:
        g = np.zeros_like(a)
        it = np.nditer(a, flags=["multi_index"])
        for _ in it:
            idx = it.multi_index
            old = a[idx]
            a[idx] = old + eps
            up = loss()
            a[idx] = old - eps
            down = loss()
            a[idx] = old
            g[idx] = (up - down) / (2 * eps)
        grads.append(g)
    return grads
