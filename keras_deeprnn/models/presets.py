"""The named architectures: each one a row of configuration, not a class."""

import dataclasses

DEPTH_DEFAULTS = {
    "num_input_layers": 0,
    "num_transition_layers": 1,
    "shortcut": False,
    "num_output_layers": 0,
    "num_layers": 1,
    "skip_connections": False,
    "residual_connections": False,
}


@dataclasses.dataclass(frozen=True)
class Architecture:
    """One named deep RNN.

    `fixed` holds the depth arguments that define it (passing another value
    is an error); `defaults` the ones it leaves free, with their defaults.
    `cell` is the recurrent unit: `"transition"` (the paper's ⊕),
    `"transition_lstm"` (an LSTM whose gates a deep transition computes),
    `"highway"` (RHN), `"gated_feedback"` (GF-RNN), `"gru"`, `"lstm"` or
    `"dg_lstm"`.
    """

    name: str
    cell: str
    title: str
    equation: str
    fixed: dict
    defaults: dict

    @property
    def free(self):
        return tuple(self.defaults)

    def resolve(self, **given):
        """The full set of depth arguments, with the user's values checked."""
        config = dict(DEPTH_DEFAULTS)
        config.update(self.defaults)
        for key, value in given.items():
            if value is None:
                continue
            if key in self.fixed and value != self.fixed[key]:
                where = [a.name for a in ARCHITECTURES.values() if key in a.defaults]
                raise ValueError(
                    f"Architecture '{self.name}' fixes `{key}`={self.fixed[key]!r}. "
                    f"Received: {key}={value!r}. Architectures where `{key}` is free: "
                    f"{', '.join(where)}."
                )
            config[key] = value
        config.update(self.fixed)
        return config


def _row(name, cell, title, equation, free, **values):
    value = lambda key: values.get(key, DEPTH_DEFAULTS[key])  # noqa: E731
    fixed = {k: value(k) for k in DEPTH_DEFAULTS if k not in free}
    return Architecture(name, cell, title, equation, fixed, {k: value(k) for k in free})


ARCHITECTURES = {
    a.name: a
    for a in [
        _row("rnn", "transition", "conventional RNN",
             "h_t = φ(h_{t-1} W + x_t U + b);  y_t = ψ(h_t V + c)", ()),
        _row("di_rnn", "transition", "deep input-to-hidden RNN",
             "h_t = φ(h_{t-1} W + g(x_t) U + b), g an MLP", ("num_input_layers",), num_input_layers=1),
        _row("dt_rnn", "transition", "deep transition RNN (DT-RNN)",
             "h_t = MLP_L([h_{t-1}, x_t])", ("num_transition_layers",), num_transition_layers=2),
        _row("dts_rnn", "transition", "deep transition RNN with shortcuts (DT(S)-RNN)",
             "h_t = φ(MLP_{L-1}([h_{t-1}, x_t]) W_L + h_{t-1} W̄ + x_t Ū + b_L)",
             ("num_transition_layers",), num_transition_layers=2, shortcut=True),
        _row("do_rnn", "transition", "deep output RNN (DO-RNN)",
             "h_t = φ(h_{t-1} W + x_t U + b);  y_t = ψ_0(MLP_K(h_t) V_0 + c_0)",
             ("num_output_layers",), num_output_layers=1),
        _row("dot_rnn", "transition", "deep transition + deep output (DOT-RNN)",
             "h_t = MLP_L([h_{t-1}, x_t]);  y_t = ψ_0(MLP_K(h_t) V_0 + c_0)",
             ("num_transition_layers", "num_output_layers"), num_transition_layers=2, num_output_layers=1),
        _row("dots_rnn", "transition", "deep transition with shortcuts + deep output (DOT(S)-RNN)",
             "DT(S) transition;  y_t = ψ_0(MLP_K(h_t) V_0 + c_0)",
             ("num_transition_layers", "num_output_layers"), num_transition_layers=2, num_output_layers=1,
             shortcut=True),
        _row("dots_lstm", "transition_lstm", "LSTM with a DT(S) transition + deep output",
             "[i, f, g, o] = DT(S)-MLP([h_{t-1}, x_t]);  c_t = f ⊙ c_{t-1} + i ⊙ g;  y_t = ▷ h_t",
             ("num_transition_layers", "num_output_layers"), num_transition_layers=2,
             num_output_layers=1, shortcut=True),
        _row("rhn", "highway", "Recurrent Highway Network (highway deep transition)",
             "s_l = tanh(s_{l-1} R_H,l + [l=1] x_t W_H) ⊙ t_l + s_{l-1} ⊙ (1 - t_l);  h_t = s_L",
             ("num_transition_layers",), num_transition_layers=3),
        _row("srnn", "transition", "stacked RNN (sRNN)",
             "h^l_t = φ(h^l_{t-1} W_l + h^{l-1}_t U_l + b_l), l = 1..N",
             ("num_layers", "skip_connections", "residual_connections"), num_layers=2),
        _row("gf_rnn", "gated_feedback", "gated-feedback RNN (GF-RNN)",
             "h^j_t = tanh(h^{j-1}_t W^j + Σ_i g^{i→j} h^i_{t-1} U^{i→j} + b^j), g global reset gates",
             ("num_layers",), num_layers=3),
        _row("deep_gru", "gru", "stacked GRU",
             "h^l_t = GRU(h^{l-1}_t, h^l_{t-1}), l = 1..N", ("num_layers", "skip_connections", "residual_connections"), num_layers=2),
        _row("deep_lstm", "lstm", "stacked LSTM",
             "(h^l_t, c^l_t) = LSTM(h^{l-1}_t, h^l_{t-1}, c^l_{t-1}), l = 1..N",
             ("num_layers", "skip_connections", "residual_connections"), num_layers=2),
        _row("dg_lstm", "dg_lstm", "Depth-Gated LSTM",
             "c^l_t = d ⊙ c^{l-1}_t + f ⊙ c^l_{t-1} + i ⊙ tanh(...), d the depth gate",
             ("num_layers",), num_layers=2),
    ]
}


def get(name):
    if name not in ARCHITECTURES:
        raise ValueError(
            f"Unknown `architecture`. Received: architecture={name!r}. "
            f"Expected one of: {', '.join(ARCHITECTURES)}."
        )
    return ARCHITECTURES[name]
