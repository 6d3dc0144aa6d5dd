"""The hypermodel on its own: its search space read from the option
declaration and the rows, the trials it builds and compiles as the task's
training does, and the parameter budget (searches are in `test_tuning.py`)."""

import dataclasses

import keras
import pytest

kt = pytest.importorskip("keras_tuner")

from keras_deeprnn import ARCHITECTURES  # noqa: E402
from keras_deeprnn import compilation  # noqa: E402
from keras_deeprnn.models import OPTIONS  # noqa: E402
from keras_deeprnn.models import options as options_lib  # noqa: E402
from keras_deeprnn.tasks import get_task  # noqa: E402
from keras_deeprnn.tuning import SEARCH_SPACE  # noqa: E402
from keras_deeprnn.tuning import DeepRNNHyperModel  # noqa: E402
from keras_deeprnn.tuning import hypermodel as hypermodel_module  # noqa: E402
from keras_deeprnn.tuning import space as space_module  # noqa: E402
from keras_deeprnn.tuning.space import WIDTH_DIMENSIONS  # noqa: E402
from keras_deeprnn.tuning.space import describe_dimensions  # noqa: E402

# A piano roll's 88 notes in and out (the hypermodel otherwise reads them from the data).
NOTES = dict(input_dim=88, output_dim=88)

TINY = dict(units=4, transition_units=4, output_units=4, num_transition_layers=2,
            num_output_layers=1)

DEFAULTS = {
    "architecture": "rnn",
    "num_input_layers": 1,
    "input_activation": "tanh",
    "num_transition_layers": 2,
    "transition_units": 128,
    "transition_activation": "tanh",
    "num_layers": 2,
    "skip_connections": False,
    "residual_connections": False,
    "units": 128,
    "num_output_layers": 1,
    "output_units": 128,
    "output_hidden_activation": "tanh",
    "output_dropout": 0.0,
    "dropout": 0.0,
    "weight_noise": 0.0,
    "recurrent_weight_dropout": 0.0,
    "zoneout": 0.0,
    "layer_norm": False,
    "trainable_initial_state": False,
    "learning_rate": 1e-3,
    "clipnorm": 1.0,
}
EVERYWHERE = {"units", "dropout", "zoneout", "learning_rate", "clipnorm"}
# All but Keras's fused GRU/LSTM; the transition cells; those and the highway cell.
NOISE = {"weight_noise", "recurrent_weight_dropout"}
TRANSITION = NOISE | {"layer_norm", "trainable_initial_state"}
DEEP_TRANSITION = {"num_transition_layers", "transition_units", "transition_activation"}
DEEP_OUTPUT = {"num_output_layers", "output_units", "output_hidden_activation", "output_dropout"}
STACK = {"num_layers", "skip_connections", "residual_connections"}
ACTIVE = {
    "rnn": EVERYWHERE | TRANSITION,
    "di_rnn": EVERYWHERE | TRANSITION | {"num_input_layers", "input_activation"},
    "dt_rnn": EVERYWHERE | TRANSITION | DEEP_TRANSITION,
    "dts_rnn": EVERYWHERE | TRANSITION | DEEP_TRANSITION,
    "do_rnn": EVERYWHERE | TRANSITION | DEEP_OUTPUT,
    "dot_rnn": EVERYWHERE | TRANSITION | DEEP_TRANSITION | DEEP_OUTPUT,
    "dots_rnn": EVERYWHERE | TRANSITION | DEEP_TRANSITION | DEEP_OUTPUT,
    "dots_lstm": EVERYWHERE | TRANSITION | DEEP_TRANSITION | DEEP_OUTPUT,
    "rhn": EVERYWHERE | NOISE | {"trainable_initial_state", "num_transition_layers"},
    "srnn": EVERYWHERE | TRANSITION | STACK,
    "gf_rnn": EVERYWHERE | NOISE | {"trainable_initial_state", "num_layers"},
    "deep_gru": EVERYWHERE | STACK,
    "deep_lstm": EVERYWHERE | STACK,
    "dg_lstm": EVERYWHERE | NOISE | {"trainable_initial_state", "num_layers"},
}


def hyperparameters(architecture):
    hp = kt.HyperParameters()
    hp.Fixed("architecture", architecture)
    return hp


# ---------------------------------------------------------------------------
# Search space
# ---------------------------------------------------------------------------


def test_every_dimension_has_its_stable_name_and_default():
    hp = kt.HyperParameters()
    config = DeepRNNHyperModel().declare(hp)
    assert {p.name: p.default for p in hp.space} == DEFAULTS
    assert list(SEARCH_SPACE) == list(DEFAULTS)
    for name, (_, _, default) in SEARCH_SPACE.items():
        if name != "architecture":
            assert DEFAULTS[name] == default, name
    assert hp.space[0].values == list(ARCHITECTURES)
    # The default trial: a conventional RNN with only its own dimensions.
    assert set(config) == {"architecture"} | ACTIVE["rnn"]
    assert config["architecture"] == "rnn"


def test_every_free_depth_argument_is_a_dimension():
    free = {key for a in ARCHITECTURES.values() for key in a.defaults}
    assert free <= set(SEARCH_SPACE), f"no search dimension for {free - set(SEARCH_SPACE)}"


def expected_active(row):
    """The dimensions a row should have, from what its cell supports and the
    depth arguments it leaves free (`ACTIVE` spells them out for the built-in rows)."""
    factory, free = row.cell_factory, set(row.defaults)
    supports = factory.cell_options | factory.capabilities
    active = set(EVERYWHERE)
    active |= {name for name in NOISE | {"layer_norm", "trainable_initial_state"}
               if name in supports}
    active |= free & {"num_input_layers", "num_transition_layers", *STACK}
    if "num_input_layers" in free:
        active.add("input_activation")
    if "num_transition_layers" in free and "transition_mlp" in supports:
        active |= DEEP_TRANSITION
    if "num_output_layers" in free:
        active |= DEEP_OUTPUT
    return active


@pytest.mark.parametrize("architecture", list(ARCHITECTURES))
def test_only_the_dimensions_of_the_architecture_are_active(architecture):
    expected = expected_active(ARCHITECTURES[architecture])
    if architecture in ACTIVE:
        assert expected == ACTIVE[architecture]
    hp = hyperparameters(architecture)
    config = DeepRNNHyperModel().declare(hp)
    assert set(config) - {"architecture"} == expected
    for name in set(DEFAULTS) - {"architecture"}:
        assert hp.is_active(name) == (name in expected), name


def test_conditions_follow_the_architectures_searched():
    hypermodel = DeepRNNHyperModel(["srnn", "dts_rnn"])
    hp = hyperparameters("srnn")
    hypermodel.declare(hp)
    by_name = {p.name: p for p in hp.space}
    assert "num_output_layers" not in by_name and "num_input_layers" not in by_name
    condition = by_name["num_transition_layers"].conditions[0]
    assert condition.name == "architecture" and list(condition.values) == ["dts_rnn"]
    assert not by_name["units"].conditions
    assert hypermodel.where("num_layers") == ["srnn"]
    # One architecture: nothing is conditional.
    hp = kt.HyperParameters()
    DeepRNNHyperModel(["dg_lstm"]).declare(hp)
    assert all(not p.conditions for p in hp.space)
    assert "skip_connections" not in [p.name for p in hp.space]


def test_fixed_settings_are_recorded_or_passed_through():
    hypermodel = DeepRNNHyperModel(["rnn", "srnn"], fixed={"units": 8, "num_layers": 3,
                                                           "recurrent_dropout": 0.25})
    hp = hyperparameters("srnn")
    config = hypermodel.declare(hp)
    assert config["units"] == 8 and config["num_layers"] == 3
    assert config["recurrent_dropout"] == 0.25
    assert isinstance({p.name: p for p in hp.space}["units"], kt.engine.hyperparameters.Fixed)
    config = hypermodel.declare(hyperparameters("rnn"))
    assert "num_layers" not in config and config["recurrent_dropout"] == 0.25


def test_a_fixed_activation_reaches_only_the_rows_whose_cells_take_it():
    hypermodel = DeepRNNHyperModel(["rnn", "deep_gru", "dg_lstm"], **NOTES,
                                   fixed=dict(TINY, activation="relu"))
    assert hypermodel.declare(hyperparameters("rnn"))["activation"] == "relu"
    for row in ("deep_gru", "dg_lstm"):
        hp = hyperparameters(row)
        assert "activation" not in hypermodel.declare(hp)
        hypermodel.build(hp)  # left to the row's own tanh, not refused


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(architectures=["rnn", "nope"]), "architectures"),
        (dict(architectures=[]), "at least one"),
        (dict(fixed={"architecture": "rnn"}), "architectures=\\[...\\]"),
        (dict(fixed={"unitz": 4}), "unknown name `unitz`"),
        (dict(budget_mode="derive"), "max_params=None"),
        (dict(budget_mode="derive", max_params=100, fixed={"units": 4}), "cannot set"),
        (dict(budget_mode="shrink", max_params=100), "budget_mode"),
        (dict(max_params=0), "max_params"),
        (dict(distribute="model_parallel"), "distribute"),
    ],
)
def test_bad_arguments_say_what_was_received(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DeepRNNHyperModel(**kwargs)


def test_build_compiles_with_the_trial_settings():
    hypermodel = DeepRNNHyperModel(["dots_rnn"], **NOTES, fixed=dict(TINY, num_layers=2,
                                   learning_rate=3e-3, clipnorm=2.0))
    model = hypermodel.build(kt.HyperParameters())
    config = hypermodel.declare(kt.HyperParameters())
    assert "num_layers" not in config  # fixed, but not a dimension of dots_rnn
    del config["architecture"], config["learning_rate"], config["clipnorm"]
    assert model.count_params() == hypermodel.count_params("dots_rnn", **config)
    assert model.get_config()["output_units"] == 4
    assert float(model.optimizer.learning_rate) == pytest.approx(3e-3)
    assert model.optimizer.clipnorm == 2.0
    assert hypermodel.objective == "val_frame_nll"


def test_every_searched_option_is_a_dimension_with_its_declared_range():
    searched = [name for name, option in OPTIONS.items() if option.search is not None]
    assert [n for n in SEARCH_SPACE if n in OPTIONS] == searched
    for name in searched:
        where, text, default = SEARCH_SPACE[name]
        search = OPTIONS[name].search
        assert (where or (), text, default) == (OPTIONS[name].where, search.describe(),
                                                search.default)
    # the options that are not searched are not dimensions
    assert not {"recurrent_dropout", "state_resets", "seed"} & set(SEARCH_SPACE)


@pytest.mark.parametrize("architecture", ["dts_rnn", "rhn", "deep_lstm"])
def test_a_dimension_exists_exactly_where_the_row_supports_the_option(architecture):
    hp = kt.HyperParameters()
    hp.Fixed("architecture", architecture)
    config = DeepRNNHyperModel().declare(hp)
    row = ARCHITECTURES[architecture]
    for name, option in OPTIONS.items():
        if option.search is not None:
            assert (name in config) == row.supports(option), name


def test_trials_compile_with_the_task_loss_and_monitor():
    task = get_task("music")
    hypermodel = DeepRNNHyperModel(["dots_rnn"], **NOTES, task=task, fixed=TINY)
    assert hypermodel.objective == task.monitor == "val_frame_nll"
    model = hypermodel.build(kt.HyperParameters())
    assert type(model.loss) is type(task.loss())
    # without a task: the model's default loss for notes
    plain = DeepRNNHyperModel(["dots_rnn"], **NOTES, fixed=TINY).build(kt.HyperParameters())
    assert plain.loss == "binary_crossentropy"


@pytest.mark.parametrize("batch_size, train_steps", [(None, None), (2, None), (64, None),
                                                     (2, compilation.XLA_MIN_STEPS),
                                                     (2, compilation.XLA_MIN_STEPS - 1)])
def test_trials_choose_jit_compile_as_train_does_for_their_batch_size_and_length(
        batch_size, train_steps, monkeypatch):
    seen = []

    def spy(model, jit_compile="auto", batch_size=None, steps=None):
        seen.append((batch_size, steps))
        return compilation.choose_jit_compile(model, jit_compile, batch_size=batch_size,
                                              steps=steps)

    monkeypatch.setattr(hypermodel_module, "choose_jit_compile", spy)
    hypermodel = DeepRNNHyperModel(["dots_rnn"], **NOTES, fixed=TINY, batch_size=batch_size,
                                   train_steps=train_steps)
    model = hypermodel.build(kt.HyperParameters())
    assert seen == [(batch_size, train_steps)]
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        on_cpu = not tf.config.list_physical_devices("GPU")
        # 4 units: XLA on a CPU unless the batch is over XLA_MAX_BATCH or
        # the trial shorter than XLA_MIN_STEPS.
        assert model.jit_compile is (on_cpu and (batch_size or 0) <= compilation.XLA_MAX_BATCH
                                     and (train_steps or 10**9) >= compilation.XLA_MIN_STEPS)


@pytest.mark.parametrize("batch_size", [0, -1, 2.5])
def test_a_batch_size_that_is_not_positive_is_refused_by_name(batch_size):
    with pytest.raises((ValueError, TypeError), match=r"batch_size.*Received"):
        DeepRNNHyperModel(["rnn"], batch_size=batch_size)


@pytest.mark.parametrize("train_steps", [0, -1, 2.5])
def test_train_steps_that_are_not_positive_are_refused_by_name(train_steps):
    with pytest.raises(ValueError, match=r"`train_steps` must be a positive integer.*Received"):
        DeepRNNHyperModel(["rnn"], train_steps=train_steps)


def test_the_search_space_in_words_follows_the_rows(toy_row):
    toy_row(free=("num_output_layers",))
    lines = describe_dimensions(["rnn", "toy_rnn"]).splitlines()
    where = {line.split()[0]: line.split("# ")[-1] for line in lines if "# " in line}
    # The toy cell supports no option; its row leaves the deep output free.
    assert where["weight_noise"] == where["layer_norm"] == "rnn"
    assert where["num_output_layers"] == where["output_dropout"] == "toy_rnn"
    assert "num_layers" not in where and "units Int 16..1024, x2 steps" in lines
    # The built-in table is what the class docstring shows.
    ARCHITECTURES.pop("toy_rnn")
    assert describe_dimensions().replace("\n", "\n    ") in DeepRNNHyperModel.__doc__


def test_a_derived_budget_sets_every_option_searched_as_a_width(monkeypatch):
    assert set(WIDTH_DIMENSIONS) == {"units", "transition_units", "output_units"}
    # An option declared with the width range is a width too.
    wide = dataclasses.replace(OPTIONS["input_units"], search=options_lib.WIDTH_SEARCH)
    monkeypatch.setitem(OPTIONS, "input_units", wide)
    assert set(options_lib.widths()) == {"units", "transition_units", "input_units",
                                         "output_units"}
    monkeypatch.setattr(space_module, "WIDTH_DIMENSIONS", tuple(options_lib.widths()))
    monkeypatch.setattr(hypermodel_module, "WIDTH_DIMENSIONS", space_module.WIDTH_DIMENSIONS)
    hypermodel = DeepRNNHyperModel(["di_rnn"], **NOTES, max_params=3_000, budget_mode="derive")
    model = hypermodel.build(hyperparameters("di_rnn"))
    assert model.get_config()["input_units"] == model.get_config()["units"]
    with pytest.raises(ValueError, match=r"cannot set \['input_units'\]"):
        DeepRNNHyperModel(max_params=100, budget_mode="derive", fixed={"input_units": 4})


def test_a_new_row_brings_its_own_dimensions_and_depth(toy_row):
    toy = toy_row(free=("num_output_layers", "num_layers"), num_output_layers=2, num_layers=3)
    hypermodel = DeepRNNHyperModel(["rnn", "toy_rnn"])
    assert hypermodel.where("num_layers") == ["toy_rnn"]
    assert hypermodel.where("output_units") == ["toy_rnn"]
    assert "weight_noise" not in hypermodel.declare(hyperparameters("toy_rnn"))
    # the paper's depth: g's layers + N levels x L transition layers + K output layers + 1
    assert toy.depth() == 0 + 3 * 1 + 2 + 1
    assert toy.depth(num_layers=4, num_output_layers=None) == 4 + 2 + 1
    assert ARCHITECTURES["dots_rnn"].depth() == 2 + 1 + 1


# ---------------------------------------------------------------------------
# Parameter budget
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("architecture", ["rnn", "srnn", "dots_rnn", "dg_lstm"])
def test_derived_units_are_the_widest_that_fit(architecture):
    budget = 4_000
    hypermodel = DeepRNNHyperModel([architecture], **NOTES, max_params=budget, budget_mode="derive")
    config = hypermodel.declare(hyperparameters(architecture))
    assert "units" not in config and "output_units" not in config
    del config["architecture"], config["learning_rate"], config["clipnorm"]
    units = hypermodel.derive_units(architecture, **config)

    def params(n):
        return hypermodel.count_params(
            architecture, **config, units=n, transition_units=n, output_units=n
        )

    assert params(units) <= budget < params(units + 1)
    model = hypermodel.build(hyperparameters(architecture))
    assert model.count_params() == params(units)
    assert model.get_config()["units"] == units


def test_derive_fails_the_trial_when_even_one_unit_is_too_many():
    hypermodel = DeepRNNHyperModel(["rnn"], **NOTES, max_params=100, budget_mode="derive")
    with pytest.raises(kt.errors.FailedTrialError, match="units=1"):
        hypermodel.build(kt.HyperParameters())


def test_the_dtype_policy_is_set_for_each_model_only():
    hypermodel = DeepRNNHyperModel(["rnn"], **NOTES, fixed={"units": 4}, dtype_policy="mixed_bfloat16")
    model = hypermodel.build(kt.HyperParameters())
    assert model.get_layer("deep_output").dtype_policy.name == "mixed_bfloat16"
    assert keras.config.dtype_policy().name == "float32"


def test_counting_parameters_keeps_the_global_dtype_policy():
    hypermodel = DeepRNNHyperModel(["rnn"], **NOTES, max_params=2_000, budget_mode="derive")
    keras.config.set_dtype_policy("mixed_bfloat16")
    hypermodel.derive_units("rnn")
    assert keras.config.dtype_policy().name == "mixed_bfloat16"
