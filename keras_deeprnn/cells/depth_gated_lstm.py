"""Depth-Gated LSTM (Yao et al. 2015): stacked LSTMs whose memory cells are
linked across levels through a depth gate."""

import keras
from keras import ops

from keras_deeprnn import _checks
from keras_deeprnn.cells.levels import LevelsCell


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class DepthGatedLSTMCell(LevelsCell):
    """All levels of a Depth-Gated LSTM, stepped together as one cell.

    Level `l` reads `x = h^{l-1}_t` (the input `x_t` at the bottom) and the
    lower level's new memory `c_low = c^{l-1}_t`; the bottom level, which has
    no lower cell, uses a linear projection of the input, `c_low = x_t @ W_x0`:

    ```python
    σ, φ = recurrent_activation, activation            # sigmoid and tanh by default
    i = σ(x @ W_xi + h_prev @ W_hi + c_prev * w_ci + b_i)
    f = σ(x @ W_xf + h_prev @ W_hf + c_prev * w_cf + b_f)
    d = σ(x @ W_xd + c_prev * w_cd + c_low * w_ld + b_d)     # depth gate
    c = d * c_low + f * c_prev + i * φ(x @ W_xc + h_prev @ W_hc + b_c)
    o = σ(x @ W_xo + h_prev @ W_ho + c * w_co + b_o)
    h = o * φ(c)
    ```

    With `use_bias=False` every `b` is zero (no `bias_{l}` weights).

    The output is the top level's `h`. States are one `[h, c]` pair per
    level, bottom first.

    Weights (`n = units`, `d_l` the level's input width: the input's at the
    bottom, `n` above), gate order `[i, f, d, c, o]`:
    - `kernel_{l}`: `[W_xi | W_xf | W_xd | W_xc | W_xo]`, `(d_l, 5n)`; the
      bottom one has `W_x0` appended, `(d_0, 6n)`.
    - `recurrent_kernel_{l}`: `[W_hi | W_hf | W_hc | W_ho]`, `(n, 4n)` (the
      depth gate reads no `h_prev`).
    - `peephole_{l}`: rows `[w_ci, w_cf, w_cd, w_ld, w_co]`, `(5, n)`.
    - `bias_{l}`: `[b_i, b_f, b_d, b_c, b_o]`, `(5n,)`; `b_f` starts at 1
      when `unit_forget_bias`.
    - `initial_state`: `(num_layers, n)`, every level's learned `h_0`, with
      `trainable_initial_state=True` (each `c_0` stays at zero).

    Args:
        units: width of every level's `h` and `c`.
        num_layers: the number of levels.
        activation: `φ`, of the candidate memory and the output (`tanh`).
        recurrent_activation: `σ`, of the gates (`sigmoid`).
        use_bias: whether the gates and the candidate have biases.
        unit_forget_bias: start `b_f` at 1 (added to `bias_initializer`).
        dropout: per-sequence dropout on every level's input (`x_t` at the
            bottom, `h^{l-1}_t` above: dropout between levels).
        recurrent_dropout: per-sequence dropout on each level's `h_prev`.
        weight_noise: std of Gaussian noise on every kernel and peephole
            vector (not the biases) in training, drawn once per batch of
            sequences.
        recurrent_weight_dropout: DropConnect rate on every
            `recurrent_kernel_{l}`, one mask per batch of sequences.
        **kwargs: the other arguments of `DeepCell` (`use_bias`, the
            initializers, regularizers and constraints, ...) and of
            `keras.layers.Layer`; the ones above are `DeepCell`'s too.

    Example:

    ```python
    cell = DepthGatedLSTMCell(64, num_layers=3)
    y = keras.layers.RNN(cell, return_sequences=True)(np.zeros((4, 20, 88)))
    ```

    Reference: Yao, Cohn, Vylomova, Duh, Dyer, *Depth-Gated LSTM*, 2015
    (arXiv:1508.03790).
    """

    def __init__(
        self,
        units,
        num_layers=2,
        activation="tanh",
        recurrent_activation="sigmoid",
        unit_forget_bias=True,
        peephole_initializer="zeros",
        **kwargs,
    ):
        activation = _checks.keras_object("activation", activation, keras.activations.get)
        recurrent_activation = _checks.keras_object(
            "recurrent_activation", recurrent_activation, keras.activations.get)
        unit_forget_bias = _checks.boolean("unit_forget_bias", unit_forget_bias)
        peephole_initializer = _checks.keras_object(
            "peephole_initializer", peephole_initializer, keras.initializers.get)
        super().__init__(units, num_layers=num_layers, **kwargs)
        self.activation = activation
        self.recurrent_activation = recurrent_activation
        self.unit_forget_bias = unit_forget_bias
        self.peephole_initializer = peephole_initializer
        self.state_size = [[units, units] for _ in range(self.num_layers)]

    @property
    def output_state_index(self):
        # the top level's h, in the flattened [[h, c], [h, c], ...]
        return 2 * (self.num_layers - 1)

    def _bias_initializer(self, shape, dtype=None):
        n = self.units
        bias = self.bias_initializer((5 * n,), dtype=dtype)
        if self.unit_forget_bias:
            bias = ops.concatenate([bias[:n], bias[n : 2 * n] + 1.0, bias[2 * n :]])
        return bias

    def build(self, input_shape):
        input_dim = input_shape[-1]
        n = self.units
        self.kernels, self.recurrent_kernels, self.peepholes, self.biases = [], [], [], []
        for level in range(self.num_layers):
            fan_in, columns = (input_dim, 6 * n) if level == 0 else (n, 5 * n)
            self.kernels.append(
                self.add_weight(shape=(fan_in, columns), initializer=self.kernel_initializer, name=f"kernel_{level}")
            )
            self.recurrent_kernels.append(
                self.add_weight(shape=(n, 4 * n), initializer=self.recurrent_initializer, name=f"recurrent_kernel_{level}")
            )
            self.peepholes.append(
                self.add_weight(shape=(5, n), initializer=self.peephole_initializer, name=f"peephole_{level}")
            )
            self.biases.append(
                self.add_weight(shape=(5 * n,), initializer=self._bias_initializer, name=f"bias_{level}")
                if self.use_bias
                else None
            )

    def noisy_weights(self):
        return [*self.kernels, *self.recurrent_kernels, *self.peepholes]

    def project_inputs(self, inputs, training=False):
        """The bottom level's input terms for every gate, and `c_low = x W_x0`."""
        inputs = self.apply_input_dropout(inputs, training)
        projected = ops.matmul(inputs, self.noisy(self.kernels[0], training))
        if self.biases[0] is None:
            return projected
        # Zeros joined on rather than `ops.pad`: the same numbers, and on PyTorch
        # a quarter of a millisecond less a step (its eager `pad` is an Operation).
        bias = ops.convert_to_tensor(self.biases[0])
        return projected + ops.concatenate([bias, ops.zeros((self.units,), bias.dtype)])

    def _level(self, level, gates, c_low, h_prev, c_prev, training):
        n = self.units
        h_prev = self.apply_recurrent_dropout(h_prev, training, start=level * n)
        r = ops.matmul(h_prev, self.noisy(self.recurrent_kernels[level], training))
        w = self.noisy(self.peepholes[level], training)
        sigma, phi = self.recurrent_activation, self.activation
        i = sigma(gates[:, :n] + r[:, :n] + c_prev * w[0])
        f = sigma(gates[:, n : 2 * n] + r[:, n : 2 * n] + c_prev * w[1])
        d = sigma(gates[:, 2 * n : 3 * n] + c_prev * w[2] + c_low * w[3])
        c = d * c_low + f * c_prev + i * phi(gates[:, 3 * n : 4 * n] + r[:, 2 * n : 3 * n])
        o = sigma(gates[:, 4 * n :] + r[:, 3 * n :] + c * w[4])
        return o * phi(c), c

    def recurrent_step(self, projected, states, training=False):
        n = self.units
        gates, c_low = projected[:, : 5 * n], projected[:, 5 * n :]
        new_states = []
        for level in range(self.num_layers):
            if level > 0:
                x = self.apply_input_dropout(h, training, start=self._input_dim + (level - 1) * n)
                gates = ops.matmul(x, self.noisy(self.kernels[level], training))
                if self.biases[level] is not None:
                    gates = gates + self.biases[level]
                c_low = c
            h_prev, c_prev = states[level]
            h, c = self._level(level, gates, c_low, h_prev, c_prev, training)
            new_states.append([h, c])
        return h, new_states
