"""The random draws of training, in one place: dropout masks, weight noise
and DropConnect, each made once, readable after a call and fixable.

Every layer and cell of the package that draws at random in training does
it through `RandomDraws.draw(key, make)`. A draw is named by what it is for
(the argument that asks for it), so a test can read back what a training
call used, or fix it beforehand, and compare with its own computation:

```python
y = layer(x, training=True)
cell.last_draws            # {"dropout": mask, "weight_noise/input_kernel": noise, ...}
cell.fix_draws({"dropout": mask})   # later training calls use this mask
cell.fix_draws(None)                # back to random draws
```

The keys a class draws are listed in its docstring. Masks are already
scaled by `1 / (1 - rate)` (what `keras.random.dropout` of ones gives), so
a dropped input is `x * mask`; weight noise is the added matrix
(`W + noise`) and DropConnect the multiplied one (`W * mask`).
"""

import keras
from keras import ops


class _DrawState:
    """Kept outside Keras's attribute tracking: tensors, not weights."""

    def __init__(self):
        self.cache = {}   # the draws of the current batch of sequences
        self.last = {}    # the draws the last training computation used
        self.fixed = {}   # draws a caller fixed with `fix_draws`


class RandomDraws:
    """Named random draws: made once per batch, recorded, optionally fixed.

    A draw stays cached (the same mask at every step of a sequence) until
    `forget_draws()`; cells forget theirs when `keras.layers.RNN` resets its
    dropout masks after a call, per-timestep layers at the start of each
    training call.
    """

    def _draw_state(self):
        state = getattr(self, "_random_draws", None)
        if state is None:
            state = _DrawState()
            self._random_draws = state
        return state

    def make_draw(self, key, make):
        """The cached draw `key`, made now (or taken from `fix_draws`) if absent.

        Containers call this before a traced loop, where JAX allows
        random draws; `draw` then finds the value in the cache.
        """
        state = self._draw_state()
        if key not in state.cache:
            if key in state.fixed:
                state.cache[key] = ops.convert_to_tensor(state.fixed[key], dtype=self.compute_dtype)
            else:
                state.cache[key] = make()
        return state.cache[key]

    def draw(self, key, make):
        """`make_draw`, recorded in `last_draws`: for the place a draw is used."""
        value = self.make_draw(key, make)
        self._draw_state().last[key] = value
        return value

    def cached_draw(self, key):
        """The draw `key` of the current batch, recorded as used; None if not made."""
        state = self._draw_state()
        value = state.cache.get(key)
        if value is not None:
            state.last[key] = value
        return value

    def forget_draws(self, prefix=""):
        """Drop the cached draws (those whose key starts with `prefix`)."""
        cache = self._draw_state().cache
        for key in [k for k in cache if k.startswith(prefix)]:
            del cache[key]

    @property
    def last_draws(self):
        """The random draws the last training call used, by key (a new dict).

        Read it after an eager call: inside a compiled function (`fit`) the
        values are that function's symbolic tensors.
        """
        return dict(self._draw_state().last)

    def fix_draws(self, draws=None):
        """Use these draws instead of random ones in later training calls.

        `draws` maps keys (those of `last_draws`) to arrays of the shapes
        `last_draws` shows; keys not given are still drawn at random.
        `None` or `{}` returns to random draws.
        """
        state = self._draw_state()
        state.fixed = dict(draws or {})
        state.cache.clear()


class WeightNoise(RandomDraws):
    """Weight noise and DropConnect on named variables, one draw per batch.

    `weight_noise` (Graves 2011) adds `normal(0, weight_noise)` to every
    variable of `noisy_weights()` (by default those with `kernel` in their
    name); `recurrent_weight_dropout` (the weight drop of AWD-LSTM, Merity
    et al. 2018) multiplies every variable of `recurrent_weights()` (by
    default those named `recurrent_kernel*`) by a dropout mask. Both apply
    in training only, to the value `noisy(variable, training)` returns. Keys:
    `"weight_noise/<variable name>"`, `"recurrent_weight_dropout/<variable name>"`.
    """

    weight_noise = 0.0
    recurrent_weight_dropout = 0.0

    def noisy_weights(self):
        return [v for v in self.weights if "kernel" in v.name]

    def recurrent_weights(self):
        return [v for v in self.weights if v.name.startswith("recurrent_kernel")]

    def make_weight_draws(self):
        """Every weight draw of this batch, made now (before any traced loop)."""
        dtype = self.compute_dtype
        if self.weight_noise > 0:
            for v in self.noisy_weights():
                self.make_draw(
                    f"weight_noise/{v.name}",
                    lambda v=v: keras.random.normal(
                        v.shape, stddev=self.weight_noise, dtype=dtype, seed=self.seed_generator
                    ),
                )
        if self.recurrent_weight_dropout > 0:
            for v in self.recurrent_weights():
                self.make_draw(
                    f"recurrent_weight_dropout/{v.name}",
                    lambda v=v: keras.random.dropout(
                        ops.ones(v.shape, dtype=dtype), self.recurrent_weight_dropout,
                        seed=self.seed_generator,
                    ),
                )

    def noisy(self, variable, training):
        """`variable` as this training batch sees it: plus its weight noise,
        times its DropConnect mask, where it has them."""
        if not training or (self.weight_noise == 0 and self.recurrent_weight_dropout == 0):
            return variable
        self.make_weight_draws()
        value = variable
        noise = self.cached_draw(f"weight_noise/{variable.name}")
        if noise is not None:
            value = ops.add(value, noise)
        mask = self.cached_draw(f"recurrent_weight_dropout/{variable.name}")
        if mask is not None:
            value = ops.multiply(value, mask)
        return value
