"""`TrainConfig`: everything one training run depends on, checked in one place."""

import dataclasses
import pathlib

from keras_deeprnn import _checks
from keras_deeprnn import initializers
from keras_deeprnn.models import deep_rnn_model
from keras_deeprnn.models import options
from keras_deeprnn.models import presets
from keras_deeprnn.tasks import TASKS
from keras_deeprnn.tasks import get_task

OPTIMIZERS = ("adam", "sgd")
"""The values `TrainConfig.optimizer` takes."""

# build_model's options that a run sets (declared with `train=True` in
# `keras_deeprnn.models.OPTIONS`): everything that changes the model.
DEPTH_FIELDS = tuple(name for name in options.TRAIN_FIELDS if name in presets.DEPTH_DEFAULTS)
MODEL_FIELDS = ("architecture", *options.TRAIN_FIELDS)
"""`TrainConfig`'s fields that make the model: the architecture and its options."""
# The main job's sizing, where it differs from build_model's defaults. 200
# units with dropout beat 128 without (test NLL 8.93 vs 9.00 on the chorales)
# and still train in a few minutes on a CPU; 0.5 is the paper's dropout on
# the deep output.
MAIN_JOB_MODEL = {"units": 200, "dropout": 0.2, "output_dropout": 0.5}
_ModelFields = dataclasses.make_dataclass("ModelFields", options.train_fields(MAIN_JOB_MODEL))
# Fields a resumed run may change: they do not alter what the epochs already
# trained mean, only how long training goes on and where files go.
RESUMABLE_FIELDS = ("epochs", "patience", "lr_patience", "progress", "run_dir", "cache_dir",
                    "tensorboard")

@dataclasses.dataclass
class TrainConfig(_ModelFields):
    """Everything one training run depends on; saved with every checkpoint.

    The model fields (`MODEL_FIELDS`: `units`, the depth and width fields,
    dropout, ...) are `build_model`'s arguments, one per option declared with
    `train=True` in `keras_deeprnn.models.OPTIONS` (`None` takes the
    architecture's default). The defaults are the main job: a DOT(S)-RNN
    on the built-in JSB-Chorales imitation, sized to train on a laptop CPU in
    a few minutes.

    Example:

    ```python
    config = TrainConfig(architecture="srnn", num_layers=2, units=64,
                         epochs=5, limit=20, run_dir="runs/srnn-small")
    result = train(config)
    result["test"]["nll"]      # nats per frame
    ```
    """

    # What to train.
    task: str = "music"
    dataset: str = "jsb_chorales"
    architecture: str = "dots_rnn"
    # The model fields come from the options (`_ModelFields`, `MAIN_JOB_MODEL`);
    # the paper's other aids among them are weight noise (0.075 in the
    # authors' code) and "sparse" recurrent initialisation.
    # Data.
    limit: int | None = None
    max_len: int | None = None
    # Small batches: on JSB-sized data, more updates per epoch beat wider
    # batches (2 pieces reach a given NLL in about half the epochs of 8).
    batch_size: int = 2
    # Music: batches of pieces of similar length, so wide batches (a GPU's)
    # waste little padding.
    bucket: bool = False
    # Language modelling (task="lm"): characters or words, and the window of
    # truncated backpropagation through time.
    tokenization: str = "char"
    seq_len: int = 100
    # Another task's own settings (`Task.settings`), by name.
    task_settings: dict = dataclasses.field(default_factory=dict)
    # Optimisation: the paper used SGD; Adam needs no learning-rate search.
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    momentum: float = 0.0
    clipnorm: float | None = 1.0
    # The main job on the chorales is still improving, slowly, at 60.
    epochs: int = 60
    patience: int = 8
    lr_patience: int = 3
    seed: int = 0
    # Bookkeeping.
    run_dir: str | None = None
    cache_dir: str | None = None
    progress: bool = True
    # Keras's TensorBoard logs in RUN_DIR/tensorboard (needs tensorflow).
    tensorboard: bool = False

    def validate(self):
        """Check every field, and the model fields together as `build_model`
        checks them; raises `ValueError` naming the first bad one."""
        _checks.one_of("task", self.task, TASKS)
        get_task(self.task).settings_of(self)
        _checks.one_of("optimizer", self.optimizer, OPTIMIZERS)
        _checks.one_of("tokenization", self.tokenization, ("char", "word"))
        _checks.boolean("bucket", self.bucket)
        presets.get(self.architecture).resolve(**self.depth_kwargs())
        # The model fields follow their options' rules, the ones build_model applies.
        for name in options.TRAIN_FIELDS:
            option, value = options.OPTIONS[name], getattr(self, name)
            per_level = option.per_level and isinstance(value, (list, tuple))
            for one in value if per_level else [value]:
                option.check(name, one)
        for name in ("batch_size", "epochs", "patience", "lr_patience", "seq_len"):
            _checks.positive_int(name, getattr(self, name))
        for name in ("limit", "max_len"):
            _checks.optional_positive_int(name, getattr(self, name))
        _checks.rate("momentum", self.momentum)
        _checks.positive_finite("learning_rate", self.learning_rate)
        if self.clipnorm is not None:
            _checks.positive_finite("clipnorm", self.clipnorm)
        _checks.non_negative_int("seed", self.seed)
        _checks.seed("seed", self.seed)  # and one every backend's generator takes
        if self.momentum and self.optimizer != "sgd":
            raise ValueError(
                "`momentum` applies to `optimizer='sgd'` only. Received: "
                f"optimizer={self.optimizer!r}, momentum={self.momentum!r}"
            )
        # And together, as build_model checks them (per-level lists, options
        # a row's cells lack), so a run fails before it reads any data.
        deep_rnn_model.check_arguments(self.architecture, seed=self.seed,
                                       **self.model_kwargs())
        return self

    def depth_kwargs(self):
        return {key: getattr(self, key) for key in DEPTH_FIELDS}

    def model_kwargs(self):
        """The `build_model` arguments this config sets (not the task's)."""
        kwargs = {key: getattr(self, key) for key in MODEL_FIELDS if key != "architecture"}
        if self.recurrent_initializer == "sparse":
            # Unseeded: drawn from NumPy's generator, which `train` seeds, so
            # every level gets its own matrix.
            kwargs["recurrent_initializer"] = initializers.SparseInitializer()
        return kwargs

    def resolved_run_dir(self):
        if self.run_dir is not None:
            return pathlib.Path(self.run_dir).expanduser()
        name = pathlib.Path(str(self.dataset)).stem.lower()
        return pathlib.Path("runs") / f"{self.architecture}-{name}"

    def to_dict(self):
        return dataclasses.asdict(self)


def say(config, message):
    """Print `message`, unless the run is quiet (`progress=False`)."""
    if config.progress:
        print(message, flush=True)
