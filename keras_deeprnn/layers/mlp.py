"""The paper's deep input function g and deep output function ▷, as per-timestep layers."""

import keras
from keras import ops

from keras_deeprnn import _checks
from keras_deeprnn.layers import units as units_lib
from keras_deeprnn.layers.regularization import WeightNoise


class _FeedForward(WeightNoise, keras.layers.Layer):
    """A stack of affine layers applied to the last axis of any-rank input.

    Its random draws (`WeightNoise`, the cells' code) are made anew at every
    training call: `weight_noise/kernel_{k}` (added to `kernel_k`) and
    `dropout_{k}` (the mask multiplying layer `k`'s output, already scaled by
    `1 / (1 - dropout)`), readable through `last_draws`, fixable through
    `fix_draws`; inside a `DeepOutputCell` they are made once per batch of
    sequences instead (`prime_sequence_draws`). `kernel_regularizer` / `bias_regularizer` penalise every
    `kernel_k` / `bias_k` (in `losses`), `kernel_constraint` /
    `bias_constraint` project them after each optimizer step, and
    `activity_regularizer` (Keras's layer argument) penalises the output.
    """

    def __init__(
        self,
        widths,
        activations,
        pieces=2,
        dropout=0.0,
        weight_noise=0.0,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        seed=None,
        **kwargs,
    ):
        checked = {
            name: _checks.keras_object(name, value, get)
            for name, value, get in (
                ("kernel_regularizer", kernel_regularizer, keras.regularizers.get),
                ("bias_regularizer", bias_regularizer, keras.regularizers.get),
                ("kernel_constraint", kernel_constraint, keras.constraints.get),
                ("bias_constraint", bias_constraint, keras.constraints.get),
            )
        }
        seed = _checks.seed("seed", seed)
        use_bias = _checks.boolean("use_bias", use_bias)
        kernel_initializer = _checks.keras_object("kernel_initializer", kernel_initializer,
                                                  keras.initializers.get)
        bias_initializer = _checks.keras_object("bias_initializer", bias_initializer,
                                                keras.initializers.get)
        super().__init__(**kwargs)
        for name, value in checked.items():
            setattr(self, name, value)
        self.weight_noise = _checks.non_negative_finite("weight_noise", weight_noise)
        self._widths = list(widths)
        self._activations = list(activations)
        self.pieces = pieces
        self.dropout = dropout
        self.use_bias = use_bias
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    def build(self, input_shape):
        fan_in = input_shape[-1]
        if fan_in is None:
            raise ValueError(
                f"{type(self).__name__} needs a known feature size. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        self.kernels, self.biases, self.lp_rhos = [], [], []
        for i, (units, activation) in enumerate(zip(self._widths, self._activations)):
            columns = units_lib.width(activation, units, self.pieces)
            self.kernels.append(
                self.add_weight(
                    shape=(fan_in, columns), initializer=self.kernel_initializer,
                    regularizer=self.kernel_regularizer, constraint=self.kernel_constraint,
                    name=f"kernel_{i}",
                )
            )
            self.biases.append(
                self.add_weight(shape=(columns,), initializer=self.bias_initializer,
                                regularizer=self.bias_regularizer,
                                constraint=self.bias_constraint, name=f"bias_{i}")
                if self.use_bias
                else None
            )
            self.lp_rhos.append(
                self.add_weight(
                    shape=(units,),
                    initializer=keras.initializers.Constant(units_lib.LP_RHO_INIT),
                    name=f"lp_rho_{i}",
                )
                if activation == "lp"
                else None
            )
            fan_in = units

    def _layer(self, i, x, training=False):
        z = ops.matmul(x, self.noisy(self.kernels[i], training))
        if self.biases[i] is not None:
            z = z + self.biases[i]
        return units_lib.apply(z, self._activations[i], self._widths[i], self.pieces, self.lp_rhos[i])

    def _dropout(self, k, u, training):
        if not training or self.dropout == 0:
            return u
        return u * self.draw(f"dropout_{k}", lambda: keras.random.dropout(
            ops.ones_like(u), self.dropout, seed=self.seed_generator))

    def prime_sequence_draws(self, batch_size):
        """Make now, before a time loop, the draws every step of a sequence shares.

        Until `release_sequence_draws`, training calls reuse these (weight
        noise on every kernel, a `(batch_size, width)` dropout mask per
        hidden layer) instead of drawing anew: one draw per batch of
        sequences, as the cells draw theirs, made where JAX allows random
        draws. `DeepOutputCell` calls this for the layer it holds.
        """
        self.forget_draws()
        self._sequence_draws = True
        self.make_weight_draws()
        if self.dropout > 0:
            for k in range(self.num_layers):
                self.make_draw(f"dropout_{k}", lambda k=k: keras.random.dropout(
                    ops.ones((batch_size, self._widths[k]), dtype=self.compute_dtype),
                    self.dropout, seed=self.seed_generator))

    def release_sequence_draws(self):
        """Back to a fresh draw at every call (see `prime_sequence_draws`)."""
        self._sequence_draws = False
        self.forget_draws()

    def _forward(self, inputs, num_hidden, training):
        # a fresh draw of noise and masks for every call, unless a sequence's
        # draws were primed
        if not self.__dict__.get("_sequence_draws", False):
            self.forget_draws()
        u = inputs
        for k in range(num_hidden):
            u = self._dropout(k, self._layer(k, u, training), training)
        return u

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self._widths[-1],)

    def compute_mask(self, inputs, mask=None):
        return mask

    def _base_config(self):
        return {
            "pieces": self.pieces,
            "dropout": self.dropout,
            "weight_noise": self.weight_noise,
            "use_bias": self.use_bias,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            **{name: keras.regularizers.serialize(getattr(self, name))
               for name in ("kernel_regularizer", "bias_regularizer")},
            **{name: keras.constraints.serialize(getattr(self, name))
               for name in ("kernel_constraint", "bias_constraint")},
            "seed": self.seed,
            **super().get_config(),
        }


def _check_common(num_layers_name, num_layers, pieces, dropout):
    return (
        _checks.non_negative_int(num_layers_name, num_layers),
        units_lib.check_pieces(pieces),
        _checks.rate("dropout", dropout),
    )


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class DeepOutput(_FeedForward):
    """The predict operator ▷: an MLP from the state to the output, per timestep.

    ```python
    u = h                                   # (..., state features)
    for k in range(num_layers):             # the paper's K intermediate layers
        u = hidden_activation(u @ kernel_k + bias_k)     # width hidden_units
        u = dropout(u)                      # training only
    y = activation(u @ kernel_K + bias_K)   # width units: psi_0, the task's output
    ```

    `hidden_activation` may be a Keras activation, `"maxout"` or `"lp"`
    (pooling `pieces` pre-activations per unit, see `keras_deeprnn.layers.units`).
    `weight_noise` adds Gaussian noise of that std to every kernel in
    training (one draw per call).
    With `num_layers=0` this is the shallow output `y = psi(h V + c)`.

    Weights: `kernel_k`, `bias_k` = the paper's `V_{k+1}`, `c_{k+1}` for
    `k < K` (`(fan_in, hidden_units * pieces)` for pooled units), and
    `kernel_K`, `bias_K` = `V_0`, `c_0`; `lp_rho_k` per Lp layer.

    Example:

    ```python
    head = DeepOutput(88, num_layers=2, hidden_units=256, hidden_activation="maxout",
                      activation="sigmoid")
    y = head(np.zeros((8, 100, 512)))       # (8, 100, 88)
    ```

    Reference: Pascanu et al. 2014, deep output RNN (DO-RNN); Gulcehre et al.
    2014 for Lp units.
    """

    def __init__(
        self,
        units,
        num_layers=1,
        hidden_units=None,
        hidden_activation="tanh",
        activation=None,
        pieces=2,
        dropout=0.0,
        **kwargs,
    ):
        units = _checks.positive_int("units", units)
        hidden_units = _checks.optional_positive_int("hidden_units", hidden_units)
        num_layers, pieces, dropout = _check_common("num_layers", num_layers, pieces, dropout)
        hidden = units_lib.resolve("hidden_activation", hidden_activation)
        final = units_lib.resolve("activation", activation)
        if isinstance(final, str):
            raise ValueError(
                "`activation` (the final output) must be a Keras activation, not a "
                f"pooled unit. Received: activation={activation!r}"
            )
        width = hidden_units or units
        super().__init__(
            widths=[width] * num_layers + [units],
            activations=[hidden] * num_layers + [final],
            pieces=pieces,
            dropout=dropout,
            **kwargs,
        )
        self.units = units
        self.num_layers = num_layers
        self.hidden_units = hidden_units
        self.hidden_activation = hidden
        self.activation = final

    def call(self, inputs, training=False):
        u = self._forward(inputs, self.num_layers, training)
        return self._layer(self.num_layers, u, training)

    def get_config(self):
        return {
            **self._base_config(),
            "units": self.units,
            "num_layers": self.num_layers,
            "hidden_units": self.hidden_units,
            "hidden_activation": units_lib.serialize(self.hidden_activation),
            "activation": units_lib.serialize(self.activation),
        }


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class DeepInput(_FeedForward):
    """The deep input-to-hidden function g: an MLP on `x_t`, per timestep.

    ```python
    g = x
    for k in range(num_layers):
        g = activation(g @ kernel_k + bias_k)        # width units
        g = dropout(g)                               # training only
    ```

    It reads no state, so it runs on the whole sequence before the RNN.
    `activation` may be a Keras activation, `"maxout"` or `"lp"`.

    Weights: `kernel_k`, `bias_k` = the paper's `A_{k+1}`, `a_{k+1}`.

    Example:

    ```python
    features = DeepInput(128, num_layers=2, activation="relu")(np.zeros((8, 100, 88)))
    ```

    Reference: Pascanu et al. 2014, deep input-to-hidden function.
    """

    def __init__(self, units, num_layers=1, activation="tanh", pieces=2, dropout=0.0, **kwargs):
        units = _checks.positive_int("units", units)
        num_layers, pieces, dropout = _check_common("num_layers", num_layers, pieces, dropout)
        if num_layers == 0:
            raise ValueError(
                "`num_layers` of DeepInput must be >= 1. Received: num_layers=0"
            )
        act = units_lib.resolve("activation", activation)
        super().__init__(
            widths=[units] * num_layers, activations=[act] * num_layers, pieces=pieces,
            dropout=dropout, **kwargs,
        )
        self.units = units
        self.num_layers = num_layers
        self.activation = act

    def call(self, inputs, training=False):
        return self._forward(inputs, self.num_layers, training)

    def get_config(self):
        return {
            **self._base_config(),
            "units": self.units,
            "num_layers": self.num_layers,
            "activation": units_lib.serialize(self.activation),
        }
