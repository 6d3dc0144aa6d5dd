"""`dtype_policy_scope`: a Keras dtype policy for what is built inside, and only there."""

import contextlib

import keras


@contextlib.contextmanager
def dtype_policy_scope(policy, name="dtype"):
    """Set the global dtype policy to `policy` (`None`: leave it) inside the
    block, and put the previous one back after it.

    Layers take the policy in force when they are made, so a model built
    inside the block takes `policy`. `name` is the argument that gave it,
    for the error when it is not a policy.

    ```python
    with dtype_policy_scope("mixed_bfloat16"):
        model = build_model("rnn", input_dim=88, output_dim=88)
    ```
    """
    if policy is None:
        yield
        return
    before = keras.config.dtype_policy()
    try:
        keras.config.set_dtype_policy(policy)
    except ValueError:
        raise ValueError(f"`{name}` must be a dtype policy name (e.g. 'float32', 'bfloat16', "
                         f"'mixed_float16') or None. Received: {name}={policy!r}") from None
    try:
        yield
    finally:
        keras.config.set_dtype_policy(before)
