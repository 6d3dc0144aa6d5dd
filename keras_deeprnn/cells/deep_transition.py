"""The paper's transition operator ⊕, shallow or deep, with or without shortcuts."""

import keras
from keras import ops

from keras_deeprnn import _checks
from keras_deeprnn.cells.base import DeepCell


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class DeepTransitionCell(DeepCell):
    """Deep transition RNN cell (DT-RNN, DT(S)-RNN; the plain RNN when L = 1).

    With `L = num_transition_layers`, `m = transition_units` (default `units`):

    ```python
    # first transition layer: sees the state and the input
    z = transition_activation(h_prev @ W_1 + x @ U + b_1)       # width m
    for l in range(1, L - 1):                                   # middle layers
        z = transition_activation(z @ transition_kernel_l + transition_bias_l)
    if shortcut:   # DT(S): state and input also reach the top layer
        h = activation(z @ W_L + h_prev @ W_bar + x @ U_bar + b_L)
    else:
        h = activation(z @ W_L + b_L)
    output, new_state = h, h
    ```

    With `layer_norm=True` every layer's summed pre-activation `a` becomes
    `ln_gamma_l * (a - mean(a)) / sqrt(var(a) + 1e-3) + ln_beta_l` before its
    activation (Ba et al. 2016). With `trainable_initial_state=True` the
    state starts at a learned vector `initial_state` instead of zeros.

    With `L = 1` the single layer is `h = activation(h_prev @ W + x @ U + b)`,
    the conventional RNN. The input projections (`x @ U`, `x @ U_bar`) do not
    depend on the state; `project_inputs` computes them for a whole sequence
    at once and `recurrent_step` does the rest, which is how
    `keras_deeprnn.layers.DeepRNN` hoists them out of the time loop.

    Weights (`d` input features, `n = units`, `s = n` with shortcut else 0):
    - `input_kernel`: `[U | U_bar]`, shape `(d, m + s)` (`(d, n)` when L = 1).
    - `recurrent_kernel`: `[W_1 | W_bar]`, shape `(n, m + s)`.
    - `bias`: `b_1`, shape `(m,)`.
    - `transition_kernel_{i}`, `transition_bias_{i}`, `i = 0 .. L - 2`: the
      paper's `W_{i+2}, b_{i+2}`; `(m, m)` for middle layers, `(m, n)` on top.

    Args:
        units: width of the state `h`.
        num_transition_layers: `L`, the depth of the transition MLP.
        shortcut: connect `h_prev` and `x` to the top layer (needs L >= 2).
        transition_units: width `m` of the intermediate layers (default `units`).
        activation: `φ_h`, applied to the top layer (the new state).
        transition_activation: `φ_l` of the intermediate layers (default
            `activation`).
        dropout, recurrent_dropout: per-sequence dropout rates on `x` and on
            `h_prev` (the same mask at every step).
        weight_noise: std of Gaussian noise added to every kernel (not the
            biases) in training, drawn once per batch of sequences.
        recurrent_weight_dropout: DropConnect rate on `recurrent_kernel`
            (AWD-LSTM's weight drop), one mask per batch of sequences.
        layer_norm: normalise every transition layer's pre-activation.
        trainable_initial_state: learn `h_0` instead of starting from zeros.
        seed: seed of the dropout masks and the weight noise.
        **kwargs: the other arguments of `DeepCell` (`use_bias`, the
            initializers, regularizers and constraints, ...) and of
            `keras.layers.Layer`; the ones above are `DeepCell`'s too.

    Example:

    ```python
    cell = DeepTransitionCell(32, num_transition_layers=3, shortcut=True)
    y = keras.layers.RNN(cell, return_sequences=True)(np.zeros((4, 10, 8)))
    ```

    Reference: Pascanu, Gulcehre, Cho, Bengio, *How to Construct Deep
    Recurrent Neural Networks*, ICLR 2014, eqs. for DT-RNN and DT(S)-RNN.
    """

    def __init__(
        self,
        units,
        num_transition_layers=1,
        shortcut=False,
        transition_units=None,
        activation="tanh",
        transition_activation=None,
        transition_initializer="glorot_uniform",
        layer_norm=False,
        **kwargs,
    ):
        num_transition_layers = _checks.positive_int("num_transition_layers", num_transition_layers)
        shortcut = _checks.boolean("shortcut", shortcut)
        layer_norm = _checks.boolean("layer_norm", layer_norm)
        activation = _checks.keras_object("activation", activation, keras.activations.get)
        transition_activation = activation if transition_activation is None else _checks.keras_object(
            "transition_activation", transition_activation, keras.activations.get)
        transition_initializer = _checks.keras_object(
            "transition_initializer", transition_initializer, keras.initializers.get)
        if shortcut and num_transition_layers < 2:
            raise ValueError(
                "`shortcut=True` needs `num_transition_layers` >= 2 (with one layer "
                "the state and input already reach the top). "
                f"Received: num_transition_layers={num_transition_layers}"
            )
        transition_units = _checks.optional_positive_int("transition_units", transition_units)
        super().__init__(units, **kwargs)
        self.num_transition_layers = num_transition_layers
        self.shortcut = shortcut
        self.transition_units = transition_units
        self.activation = activation
        self.transition_activation = transition_activation
        self.transition_initializer = transition_initializer
        self.layer_norm = layer_norm

    @property
    def _first_width(self):
        if self.num_transition_layers == 1:
            return self._top_width
        return self.transition_units or self.units

    @property
    def _top_width(self):
        """Width of the top layer's pre-activation (the gates, in subclasses)."""
        return self.units

    def build(self, input_shape):
        input_dim = input_shape[-1]
        m, n = self._first_width, self._top_width
        fused = m + (n if self.shortcut else 0)
        self.input_kernel = self.add_weight(
            shape=(input_dim, fused), initializer=self.kernel_initializer, name="input_kernel"
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, fused), initializer=self.recurrent_initializer, name="recurrent_kernel"
        )
        self.bias = (
            self.add_weight(shape=(m,), initializer=self.bias_initializer, name="bias")
            if self.use_bias
            else None
        )
        self.ln_gammas, self.ln_betas = [], []
        if self.layer_norm:
            for l in range(self.num_transition_layers):
                width = n if l == self.num_transition_layers - 1 else m
                self.ln_gammas.append(self.add_weight(shape=(width,), initializer="ones", name=f"ln_gamma_{l}"))
                self.ln_betas.append(self.add_weight(shape=(width,), initializer="zeros", name=f"ln_beta_{l}"))
        # h_0 here, between the layer norms and the transition layers: saved
        # files keep their variables in creation order.
        self.add_initial_state_weight()
        self.transition_kernels, self.transition_biases = [], []
        for i in range(self.num_transition_layers - 1):
            out = n if i == self.num_transition_layers - 2 else m
            self.transition_kernels.append(
                self.add_weight(
                    shape=(m, out),
                    initializer=self.transition_initializer,
                    name=f"transition_kernel_{i}",
                )
            )
            if self.use_bias:
                self.transition_biases.append(
                    self.add_weight(
                        shape=(out,), initializer=self.bias_initializer, name=f"transition_bias_{i}"
                    )
                )

    def project_inputs(self, inputs, training=False):
        inputs = self.apply_input_dropout(inputs, training)
        projected = ops.matmul(inputs, self.noisy(self.input_kernel, training))
        if self.bias is None:
            return projected
        if self.shortcut:
            # Zeros joined on rather than `ops.pad`: the same numbers, and on PyTorch
            # a quarter of a millisecond less a step (its eager `pad` is an Operation).
            bias = ops.convert_to_tensor(self.bias)
            return projected + ops.concatenate([bias, ops.zeros((self._top_width,), bias.dtype)])
        return projected + self.bias

    def recurrent_step(self, projected, states, training=False):
        h_prev = states[0] if isinstance(states, (list, tuple)) else states
        h = self.activation(self.top_preactivation(projected, h_prev, training))
        return h, [h]

    def top_preactivation(self, projected, h_prev, training=False):
        """Everything of the step up to the top layer's activation."""
        recurrent = ops.matmul(
            self.apply_recurrent_dropout(h_prev, training), self.noisy(self.recurrent_kernel, training)
        )
        L = self.num_transition_layers
        if L == 1:
            return self._normalize(projected + recurrent, 0)
        m = self._first_width
        z = self.transition_activation(self._normalize(projected[:, :m] + recurrent[:, :m], 0))
        for i, kernel in enumerate(self.transition_kernels):
            z = ops.matmul(z, self.noisy(kernel, training))
            if self.use_bias:
                z = z + self.transition_biases[i]
            if i < L - 2:
                z = self.transition_activation(self._normalize(z, i + 1))
        if self.shortcut:
            z = z + projected[:, m:] + recurrent[:, m:]
        return self._normalize(z, L - 1)

    def _normalize(self, a, layer):
        if not self.layer_norm:
            return a
        # In float32 under mixed precision, as keras.layers.LayerNormalization:
        # a bfloat16 variance over a few units is too coarse.
        dtype = a.dtype
        a = ops.cast(a, "float32")
        mean = ops.mean(a, axis=-1, keepdims=True)
        variance = ops.var(a, axis=-1, keepdims=True)
        gamma = ops.cast(self.ln_gammas[layer], "float32")
        beta = ops.cast(self.ln_betas[layer], "float32")
        return ops.cast((a - mean) * ops.rsqrt(variance + 1e-3) * gamma + beta, dtype)
