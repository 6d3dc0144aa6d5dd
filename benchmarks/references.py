"""Hand-written peers of the Keras models: plain PyTorch and plain JAX.

Each `*_trainer` returns `(train_step, predict)`: `train_step(x, y)` runs one
step of Adam (lr 1e-3, gradient norm clipped at 1, as `DeepRNNModel.compile`)
on the binary cross-entropy of sigmoid outputs and returns the loss as a
Python float; `predict(x)` returns the output as a NumPy array.

* `torch_trainer`: `torch.nn.RNN`/`torch.nn.LSTM` with `num_layers` and a
  `Linear` readout, the usual PyTorch loop.
* `torch_eager_trainer`: the equations of each keras-deeprnn architecture
  written by hand as an eager PyTorch loop over time (input projections
  before the loop, as the library does), `torch.optim.Adam`: what a
  PyTorch user would write for a cell `torch.nn` does not have.
* `jax_trainer`: the equations of each keras-deeprnn architecture (as in the
  cells' docstrings) written with `jax.lax.scan`, the state-independent input
  projections computed before the scan, the whole step under `jax.jit`.
"""

import numpy as np

from workload import NOTES


def _torch_device(device):
    return "cuda" if device == "gpu" else "cpu"


def _adam_trainer(params, forward, device):
    """`(train_step, predict)` of a PyTorch `forward` as `DeepRNNModel.compile`
    trains: Adam 1e-3, gradient norm clipped at 1, binary cross-entropy."""
    import torch

    optimizer = torch.optim.Adam(params, lr=1e-3)

    def train_step(x, y):
        x, y = torch.as_tensor(x, device=device), torch.as_tensor(y, device=device)
        optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.binary_cross_entropy(forward(x), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        return loss.item()

    def predict(x):
        with torch.no_grad():
            return forward(torch.as_tensor(x, device=device)).cpu().numpy()

    return train_step, predict


def torch_trainer(kind, num_layers, units, seed=0, device="cpu"):
    import torch

    torch.manual_seed(seed)
    rnn_class = {"RNN": torch.nn.RNN, "LSTM": torch.nn.LSTM}[kind]
    device = _torch_device(device)
    rnn = rnn_class(NOTES, units, num_layers=num_layers, batch_first=True).to(device)
    head = torch.nn.Linear(units, NOTES).to(device)

    def forward(x):
        return torch.sigmoid(head(rnn(x)[0]))

    return _adam_trainer([*rnn.parameters(), *head.parameters()], forward, device)


def torch_eager_forward(name, p, x):
    """`jax_forward`'s equations as an eager PyTorch loop; `p` holds tensors."""
    import torch

    sig, tanh = torch.sigmoid, torch.tanh
    steps = x.shape[1]

    def loop(step, state, projected):
        outputs = []
        for t in range(steps):
            state, h = step(state, projected[:, t])
            outputs.append(h)
        return torch.stack(outputs, dim=1)

    if name in ("rnn", "srnn"):
        h = x
        for lv in p["levels"]:
            W = lv["W"]
            h0 = torch.zeros(x.shape[0], W.shape[0], dtype=x.dtype, device=x.device)
            h = loop(lambda h, q, W=W: (tanh(q + h @ W),) * 2, h0, h @ lv["U"] + lv["b"])
    elif name in ("dts_rnn", "dots_rnn"):
        n = p["W"].shape[0]

        def step(h, q):
            r = h @ p["W"]
            z = tanh(q[:, :n] + r[:, :n])
            for i, (T, Tb) in enumerate(zip(p["T"], p["Tb"])):
                z = z @ T + Tb
                if i < len(p["T"]) - 1:
                    z = tanh(z)
            h = tanh(z + q[:, n:] + r[:, n:])
            return h, h

        bias = torch.cat([p["b"], torch.zeros_like(p["b"])])
        h0 = torch.zeros(x.shape[0], n, dtype=x.dtype, device=x.device)
        h = loop(step, h0, x @ p["U"] + bias)
    elif name == "deep_lstm":
        h = x
        for lv in p["levels"]:
            def step(state, g, R=lv["R"]):
                h, c = state
                i, f, u, o = (g + h @ R).chunk(4, dim=1)
                c = sig(f) * c + sig(i) * tanh(u)
                h = sig(o) * tanh(c)
                return (h, c), h

            zeros = torch.zeros(x.shape[0], lv["R"].shape[0], dtype=x.dtype, device=x.device)
            h = loop(step, (zeros, zeros), h @ lv["K"] + lv["b"])
    else:  # dg_lstm: every level in one loop, as DepthGatedLSTMCell
        levels, n = p["levels"], p["levels"][0]["R"].shape[0]

        def level(gates, c_low, h_prev, c_prev, lv):
            r, w = h_prev @ lv["R"], lv["w"]
            gi, gf, gd, gu, go = gates.chunk(5, dim=1)
            ri, rf, ru, ro = r.chunk(4, dim=1)
            i = sig(gi + ri + c_prev * w[0])
            f = sig(gf + rf + c_prev * w[1])
            d = sig(gd + c_prev * w[2] + c_low * w[3])
            c = d * c_low + f * c_prev + i * tanh(gu + ru)
            return sig(go + ro + c * w[4]) * tanh(c), c

        def step(states, q):
            gates, c_low, new = q[:, : 5 * n], q[:, 5 * n :], []
            for k, lv in enumerate(levels):
                if k:
                    gates, c_low = h @ lv["K"] + lv["b"], c
                h, c = level(gates, c_low, *states[k], lv)
                new.append((h, c))
            return new, h

        zeros = torch.zeros(x.shape[0], n, dtype=x.dtype, device=x.device)
        bottom = levels[0]
        h = loop(step, [(zeros, zeros) for _ in levels],
                 x @ bottom["K"] + torch.cat([bottom["b"], torch.zeros(n, dtype=x.dtype, device=x.device)]))
    for V, c in p["out_hidden"]:
        h = tanh(h @ V + c)
    return sig(h @ p["V"] + p["c"])


def torch_eager_trainer(name, units, seed=0, device="cpu", **depth):
    import torch

    device = _torch_device(device)
    tensors = []

    def leaf(a):
        t = torch.tensor(a, device=device, requires_grad=True)
        tensors.append(t)
        return t

    def to_torch(tree):
        if isinstance(tree, dict):
            return {k: to_torch(v) for k, v in tree.items()}
        if isinstance(tree, (list, tuple)):
            return type(tree)(to_torch(v) for v in tree)
        return leaf(tree)

    params = to_torch(jax_params(name, units, seed=seed, **depth))
    return _adam_trainer(tensors, lambda x: torch_eager_forward(name, params, x), device)


# --- JAX: parameters, one recurrent function per architecture, Adam ---------


def _init(rng, shape):
    return (rng.standard_normal(shape) / np.sqrt(shape[0])).astype("float32")


def jax_params(name, units, num_layers=2, num_transition_layers=2, num_output_layers=0, seed=0):
    """Parameters with the shapes of the Keras cells (fused gate matrices)."""
    rng, n, d = np.random.default_rng(seed), units, NOTES
    zeros = lambda *s: np.zeros(s, "float32")  # noqa: E731
    p = {}
    if name in ("rnn", "srnn"):
        p["levels"] = [
            {"U": _init(rng, (d if i == 0 else n, n)), "W": _init(rng, (n, n)), "b": zeros(n)}
            for i in range(num_layers if name == "srnn" else 1)
        ]
    elif name in ("dts_rnn", "dots_rnn"):
        p["U"], p["W"], p["b"] = _init(rng, (d, 2 * n)), _init(rng, (n, 2 * n)), zeros(n)
        p["T"] = [_init(rng, (n, n)) for _ in range(num_transition_layers - 1)]
        p["Tb"] = [zeros(n) for _ in range(num_transition_layers - 1)]
    elif name == "deep_lstm":
        p["levels"] = [
            {"K": _init(rng, (d if i == 0 else n, 4 * n)), "R": _init(rng, (n, 4 * n)), "b": zeros(4 * n)}
            for i in range(num_layers)
        ]
    elif name == "dg_lstm":
        p["levels"] = [
            {"K": _init(rng, (d, 6 * n) if i == 0 else (n, 5 * n)), "R": _init(rng, (n, 4 * n)),
             "w": zeros(5, n), "b": zeros(5 * n)}
            for i in range(num_layers)
        ]
    p["out_hidden"] = [(_init(rng, (n, n)), zeros(n)) for _ in range(num_output_layers)]
    p["V"], p["c"] = _init(rng, (n, d)), zeros(d)
    return p


def _tanh_rnn(levels, x):
    import jax
    import jax.numpy as jnp

    for lv in levels:
        def step(h, p, W=lv["W"]):
            h = jnp.tanh(p + h @ W)
            return h, h

        h0 = jnp.zeros((x.shape[1], lv["W"].shape[0]), x.dtype)
        x = jax.lax.scan(step, h0, x @ lv["U"] + lv["b"])[1]
    return x


def _deep_transition(p, x):
    """DT(S)-RNN: z = tanh(p1 + h W1); ...; h = tanh(z T + Tb + p2 + h W2)."""
    import jax
    import jax.numpy as jnp

    n = p["W"].shape[0]
    bias = jnp.concatenate([p["b"], jnp.zeros(n, x.dtype)])

    def step(h, proj):
        r = h @ p["W"]
        z = jnp.tanh(proj[:, :n] + r[:, :n])
        for i, (T, Tb) in enumerate(zip(p["T"], p["Tb"])):
            z = z @ T + Tb
            if i < len(p["T"]) - 1:
                z = jnp.tanh(z)
        h = jnp.tanh(z + proj[:, n:] + r[:, n:])
        return h, h

    return jax.lax.scan(step, jnp.zeros((x.shape[1], n), x.dtype), x @ p["U"] + bias)[1]


def _lstm(levels, x):
    import jax
    import jax.numpy as jnp

    for lv in levels:
        n = lv["R"].shape[0]

        def step(carry, g, R=lv["R"]):
            h, c = carry
            z = g + h @ R
            i, f = jax.nn.sigmoid(z[:, :n]), jax.nn.sigmoid(z[:, n : 2 * n])
            c = f * c + i * jnp.tanh(z[:, 2 * n : 3 * n])
            h = jax.nn.sigmoid(z[:, 3 * n :]) * jnp.tanh(c)
            return (h, c), h

        zeros = jnp.zeros((x.shape[1], n), x.dtype)
        x = jax.lax.scan(step, (zeros, zeros), x @ lv["K"] + lv["b"])[1]
    return x


def _depth_gated_lstm(levels, x):
    """Yao et al.'s DG-LSTM, every level in one scan (as `DepthGatedLSTMCell`)."""
    import jax
    import jax.numpy as jnp

    sig, n = jax.nn.sigmoid, levels[0]["R"].shape[0]
    bottom = levels[0]

    def level(gates, c_low, h_prev, c_prev, lv):
        r, w = h_prev @ lv["R"], lv["w"]
        i = sig(gates[:, :n] + r[:, :n] + c_prev * w[0])
        f = sig(gates[:, n : 2 * n] + r[:, n : 2 * n] + c_prev * w[1])
        d = sig(gates[:, 2 * n : 3 * n] + c_prev * w[2] + c_low * w[3])
        c = d * c_low + f * c_prev + i * jnp.tanh(gates[:, 3 * n : 4 * n] + r[:, 2 * n : 3 * n])
        o = sig(gates[:, 4 * n :] + r[:, 3 * n :] + c * w[4])
        return o * jnp.tanh(c), c

    def step(states, proj):
        gates, c_low, new = proj[:, : 5 * n], proj[:, 5 * n :], []
        for k, lv in enumerate(levels):
            if k:
                gates, c_low = h @ lv["K"] + lv["b"], c
            h, c = level(gates, c_low, *states[k], lv)
            new.append((h, c))
        return new, h

    zeros = jnp.zeros((x.shape[1], n), x.dtype)
    init = [(zeros, zeros) for _ in levels]
    proj = x @ bottom["K"] + jnp.concatenate([bottom["b"], jnp.zeros(n, x.dtype)])
    return jax.lax.scan(step, init, proj)[1]


def jax_forward(name, p, x):
    """Batch-major frames `(B, T, 88)` to note probabilities `(B, T, 88)`."""
    import jax
    import jax.numpy as jnp

    x = jnp.swapaxes(x, 0, 1)  # scan runs over the leading axis
    if name in ("rnn", "srnn"):
        h = _tanh_rnn(p["levels"], x)
    elif name in ("dts_rnn", "dots_rnn"):
        h = _deep_transition(p, x)
    elif name == "deep_lstm":
        h = _lstm(p["levels"], x)
    else:
        h = _depth_gated_lstm(p["levels"], x)
    for V, c in p["out_hidden"]:
        h = jnp.tanh(h @ V + c)
    return jnp.swapaxes(jax.nn.sigmoid(h @ p["V"] + p["c"]), 0, 1)


def jax_trainer(name, units, seed=0, **depth):
    import jax
    import jax.numpy as jnp

    params = jax.tree.map(jnp.asarray, jax_params(name, units, seed=seed, **depth))
    moments = jax.tree.map(jnp.zeros_like, params), jax.tree.map(jnp.zeros_like, params)

    def loss_fn(params, x, y):
        prob = jnp.clip(jax_forward(name, params, x), 1e-7, 1 - 1e-7)
        return -jnp.mean(y * jnp.log(prob) + (1 - y) * jnp.log(1 - prob))

    @jax.jit
    def step(params, moments, t, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        norm = jnp.sqrt(sum(jnp.sum(g * g) for g in jax.tree.leaves(grads)))
        grads = jax.tree.map(lambda g: g * jnp.minimum(1.0, 1.0 / norm), grads)
        m = jax.tree.map(lambda m, g: 0.9 * m + 0.1 * g, moments[0], grads)
        v = jax.tree.map(lambda v, g: 0.999 * v + 0.001 * g * g, moments[1], grads)
        lr = 1e-3 * jnp.sqrt(1 - 0.999**t) / (1 - 0.9**t)
        params = jax.tree.map(lambda p, m, v: p - lr * m / (jnp.sqrt(v) + 1e-7), params, m, v)
        return params, (m, v), loss

    forward = jax.jit(lambda params, x: jax_forward(name, params, x))
    state = {"params": params, "moments": moments, "t": 0}

    def train_step(x, y):
        state["t"] += 1
        state["params"], state["moments"], loss = step(
            state["params"], state["moments"], jnp.float32(state["t"]), x, y
        )
        return float(loss)

    def predict(x):
        return np.asarray(forward(state["params"], x))

    return train_step, predict
