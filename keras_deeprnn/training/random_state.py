"""The random state `fit` moves: seeded when a run starts, saved with every
epoch, restored when it resumes, so a resumed run draws what an
uninterrupted one would."""

import random

import keras
import numpy as np


def seed_everything(seed):
    """Seed every generator a run draws from (Keras's, NumPy's, Python's)."""
    if keras.backend.backend() == "tensorflow":
        keras.utils.set_random_seed(seed)
        return
    # keras.utils.set_random_seed imports TensorFlow whenever it is installed,
    # seconds of start-up on the other backends, whose Keras random ops and
    # initializers draw their seeds from Python's generator.
    random.seed(seed)
    np.random.seed(seed)


def current_random_state(model):
    """Every random state that `fit` moves: the model's seed generators and
    the NumPy and Python generators."""
    weights = {id(variable) for variable in model.weights}
    seeds = [keras.ops.convert_to_numpy(variable).tolist() for variable in model.variables
             if id(variable) not in weights and variable.name == "seed_generator_state"]
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {"seed_generators": seeds,
            "numpy": [kind, keys.tolist(), int(position), int(has_gauss), float(gauss)],
            "python": [version, list(internal), gauss_next]}


def restore_random_state(model, saved):
    """Put back what `current_random_state` saved (nothing, for `None`)."""
    if not saved:
        return
    weights = {id(variable) for variable in model.weights}
    seeds = [variable for variable in model.variables
             if id(variable) not in weights and variable.name == "seed_generator_state"]
    if len(seeds) == len(saved["seed_generators"]):
        for variable, value in zip(seeds, saved["seed_generators"]):
            variable.assign(np.asarray(value, dtype=variable.dtype))
    kind, keys, position, has_gauss, gauss = saved["numpy"]
    np.random.set_state((kind, np.asarray(keys, np.uint32), position, has_gauss, gauss))
    version, internal, gauss_next = saved["python"]
    random.setstate((version, tuple(internal), gauss_next))
