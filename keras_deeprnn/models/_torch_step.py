"""A leaner PyTorch training step: Keras's own, with the update fused.

On PyTorch, Keras 3 runs `optimizer.apply` eagerly through `keras.ops`: at
the paper's sizes (a handful of weights, a few thousand to a few ten
thousand numbers each) the per-operation dispatch, not the arithmetic, is
what a step of clipping and Adam costs. Per weight, gradient-norm clipping
runs eight `keras.ops` calls, and Adam's step size about a dozen on scalars.
This module computes the same numbers with the operations Keras's own
kernels run, dispatched straight to torch:

```python
# clipnorm c, per weight, as Keras's `_clip_by_norm` (sqrt(0) = 0, NaN stays NaN)
g = g * c / max(sqrt(sum(g * g)), c)
# Adam, as Keras's torch Adam: the step size in float32 0-d tensors, the rest `_foreach`
alpha = lr * sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t)
m = beta_1 * m + (1 - beta_1) * g;  v = beta_2 * v + (1 - beta_2) * g * g
w = w - m * alpha / (sqrt(v) + epsilon)
```

Only for Keras's own Adam and SGD, built, with every gradient present, and
none of what `BaseOptimizer.apply` does besides (EMA, gradient
accumulation, loss scaling, AMSGrad, weights overwritten by their
gradients); anything else goes through `optimizer.apply` unchanged.
`LEAN_STEP = False` switches the whole step back to Keras's.
"""

import keras

# Off: Keras's own `train_step` (for comparisons and benchmarks).
LEAN_STEP = True


class TorchStepMixin:
    """On PyTorch, `train_step` with the optimizer update fused
    (`apply_gradients`); on the other backends Keras's, untouched."""

    def train_step(self, *args, **kwargs):
        if not LEAN_STEP or keras.backend.backend() != "torch":
            return super().train_step(*args, **kwargs)
        return _train_step(self, *args, **kwargs)


def _train_step(model, data):
    """Keras 3's `TorchTrainer.train_step`, the weights listed once and the
    update through `apply_gradients`."""
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    y_pred = model(x, training=True) if model._call_has_training_arg else model(x)
    model.zero_grad()
    loss = model._compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight,
                               training=True)
    first = next(i for i in keras.tree.flatten(x) if i is not None)
    model._loss_tracker.update_state(loss, sample_weight=first.shape[0])
    if model.optimizer is not None:
        loss = model.optimizer.scale_loss(loss)
    trainable = model.trainable_weights[:]
    if trainable:
        loss.backward()
        apply_gradients(model.optimizer, [v.value.grad for v in trainable], trainable)
    else:
        # Keras warns and goes on; so does this step.
        import warnings

        warnings.warn("The model does not have any trainable weights.")
    return model.compute_metrics(x, y, y_pred, sample_weight=sample_weight)


def apply_gradients(optimizer, grads, variables):
    """`optimizer.apply(grads, variables)`, fused where `fuses` says so."""
    import torch

    if not fuses(optimizer, grads, variables):
        with torch.no_grad():
            optimizer.apply(grads, variables)
        return
    with torch.no_grad():
        grads = _clipped(optimizer, grads)
        optimizer._apply_weight_decay(variables)
        if optimizer.__class__ is _keras_torch_optimizers()[0]:
            _adam_update(optimizer, grads, variables)
        else:
            optimizer._backend_update_step(grads, variables, optimizer.learning_rate)
        for variable in variables:
            if variable.constraint is not None:
                variable.assign(variable.constraint(variable))
    optimizer._iterations.assign_add(1)


def fuses(optimizer, grads, variables):
    """Whether `apply_gradients` computes what `optimizer.apply` would."""
    return (
        optimizer.__class__ in _keras_torch_optimizers()
        and optimizer.built
        and not optimizer.use_ema
        and not optimizer.gradient_accumulation_steps
        and optimizer.loss_scale_factor is None
        and not getattr(optimizer, "amsgrad", False)
        and len(grads) > 0
        and all(g is not None for g in grads)
        and all(id(v) in optimizer._trainable_variables_indices for v in variables)
        and not any(getattr(v, "overwrite_with_gradient", False) for v in variables)
    )


def _keras_torch_optimizers():
    # The classes `keras.optimizers.Adam(...)` and `SGD(...)` are on torch;
    # a user's subclass is not one of them (it may change the update).
    from keras.src.backend.torch.optimizers import torch_adam
    from keras.src.backend.torch.optimizers import torch_sgd

    return torch_adam.Adam, torch_sgd.SGD


def _clipped(optimizer, grads):
    """Keras's `_clip_gradients`, its operations dispatched straight to torch."""
    import torch

    if optimizer.clipnorm and optimizer.clipnorm > 0:
        # As `keras.ops` promotes: the product with a float32 0-d tensor, the
        # maximum in the gradient's dtype. Keras's norm is where(sum > 0,
        # sqrt(sum), sum), which sqrt alone gives (sqrt(0) = 0, NaN stays NaN).
        clip = torch.tensor(optimizer.clipnorm, dtype=torch.float32)
        return [torch.multiply(g, clip) / torch.maximum(
            torch.sqrt(torch.sum(torch.square(g))), clip.to(g.dtype)) for g in grads]
    # global_clipnorm and clipvalue: Keras's own (a single op or one norm).
    return optimizer._clip_gradients(grads)


def _adam_update(optimizer, grads, variables):
    """Keras's torch `Adam._parallel_update_step`, its step size computed in
    torch on 0-d tensors instead of through `keras.ops`."""
    import torch

    weights = [v.value for v in variables]
    dtype = weights[0].dtype
    lr = optimizer.learning_rate  # a schedule is evaluated here, once
    lr = torch.as_tensor(getattr(lr, "value", lr)).to(dtype)
    step = (optimizer.iterations.value + 1).to(dtype)
    beta_1_power = torch.pow(torch.tensor(optimizer.beta_1, dtype=dtype), step)
    beta_2_power = torch.pow(torch.tensor(optimizer.beta_2, dtype=dtype), step)
    alpha = lr * torch.sqrt(1 - beta_2_power) / (1 - beta_1_power)
    index = optimizer._trainable_variables_indices
    m_list = [optimizer._momentums[index[id(v)]].value for v in variables]
    v_list = [optimizer._velocities[index[id(v)]].value for v in variables]
    torch._foreach_mul_(m_list, optimizer.beta_1)
    torch._foreach_add_(m_list, grads, alpha=1 - optimizer.beta_1)
    torch._foreach_mul_(v_list, optimizer.beta_2)
    torch._foreach_add_(v_list, torch._foreach_mul(grads, grads), alpha=1 - optimizer.beta_2)
    torch._foreach_add_(
        weights,
        torch._foreach_div(torch._foreach_mul(m_list, alpha),
                           torch._foreach_add(torch._foreach_sqrt(v_list), optimizer.epsilon)),
        alpha=-1,
    )
