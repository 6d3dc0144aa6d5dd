"""The benchmark workload: which models, what data, how many matmul FLOPs.

Imports only NumPy, so the parent process (which never imports a backend)
and every worker share one definition.
"""

import numpy as np

NOTES = 88  # piano keys: input and output width of every model
BATCH = 32

# name -> (build_model architecture, depth arguments). The hand-written peers
# in `references.py` implement the same equations for the same names.
ARCHS = {
    "rnn": ("rnn", {}),
    "dts_rnn": ("dts_rnn", {"num_transition_layers": 2}),
    "dots_rnn": ("dots_rnn", {"num_transition_layers": 2, "num_output_layers": 1}),
    "srnn2": ("srnn", {"num_layers": 2}),
    "srnn4": ("srnn", {"num_layers": 4}),
    "deep_lstm": ("deep_lstm", {"num_layers": 2}),
    "dg_lstm": ("dg_lstm", {"num_layers": 2}),
}

# What a user would pick instead, per architecture: Keras's own layers
# stacked to the same shape, torch.nn with `num_layers`, and a hand-written
# `jax.lax.scan` of the same equations.
KERAS_LAYERS = {"rnn": ("SimpleRNN", 1), "srnn2": ("SimpleRNN", 2), "srnn4": ("SimpleRNN", 4),
                "deep_lstm": ("LSTM", 2)}
TORCH_NN = {"rnn": ("RNN", 1), "srnn2": ("RNN", 2), "srnn4": ("RNN", 4), "deep_lstm": ("LSTM", 2)}
JAX_SCAN = tuple(ARCHS)


def piano_rolls(batch, seq_len, seed=0):
    """Random sparse piano rolls: inputs are frames 0..T-1, targets 1..T."""
    rng = np.random.default_rng(seed)
    roll = (rng.random((batch, seq_len + 1, NOTES)) < 0.05).astype("float32")
    return roll[:, :-1], roll[:, 1:]


def depth_of(name, extra=None):
    """The depth arguments of `name`, with `extra` overriding (for scaling runs)."""
    arch, depth = ARCHS[name]
    return arch, {**depth, **(extra or {})}


def matmul_flops(name, units, seq_len, batch=BATCH, extra=None):
    """Matmul FLOPs of one training step and one forward pass.

    Returns `{"train": ..., "forward": ..., "train_in_loop": ...}`; the last is
    the part that must run step by step (`batch` rows at a time); the rest
    (input projections, output layers, inter-level projections of level-wise
    stacks) runs on whole sequences. Backward costs two matmuls per forward
    matmul (input and weight gradients), one where the input is the data.
    """
    arch, depth = depth_of(name, extra)
    n, d, rows = units, NOTES, batch * seq_len
    seq, loop, seq_fwd, loop_fwd = 0, 0, 0, 0

    def add(k, m, where, data=False):
        nonlocal seq, loop, seq_fwd, loop_fwd
        fwd = 2 * rows * k * m
        total = fwd * (2 if data else 3)
        if where == "loop":
            loop, loop_fwd = loop + total, loop_fwd + fwd
        else:
            seq, seq_fwd = seq + total, seq_fwd + fwd

    levels = depth.get("num_layers", 1)
    if arch in ("rnn", "srnn"):
        for level in range(levels):
            add(d if level == 0 else n, n, "seq", data=level == 0)
            add(n, n, "loop")
    elif arch in ("dts_rnn", "dots_rnn", "dt_rnn"):
        L, fused = depth["num_transition_layers"], 2 * n
        add(d, fused, "seq", data=True)
        add(n, fused, "loop")
        for _ in range(L - 1):
            add(n, n, "loop")
        for _ in range(depth.get("num_output_layers", 0)):
            add(n, n, "seq")
    elif arch == "deep_lstm":
        for level in range(levels):
            add(d if level == 0 else n, 4 * n, "seq", data=level == 0)
            add(n, 4 * n, "loop")
    elif arch == "dg_lstm":
        add(d, 6 * n, "seq", data=True)
        for level in range(levels):
            if level:
                add(n, 5 * n, "loop")
            add(n, 4 * n, "loop")
    else:
        raise ValueError(f"No FLOP count for architecture {arch!r}")
    add(n, d, "seq")
    return {"train": seq + loop, "train_in_loop": loop, "forward": seq_fwd + loop_fwd,
            "forward_in_loop": loop_fwd}
