"""The tuner's search space read from the option declaration and the rows,
and trials compiled as the task's training compiles."""

import pytest

kt = pytest.importorskip("keras_tuner")

from keras_deeprnn import ARCHITECTURES  # noqa: E402
from keras_deeprnn.models import OPTIONS  # noqa: E402
from keras_deeprnn.tasks import get_task  # noqa: E402
from keras_deeprnn.tuning import SEARCH_SPACE  # noqa: E402
from keras_deeprnn.tuning import DeepRNNHyperModel  # noqa: E402

# A piano roll's 88 notes in and out (the hypermodel otherwise reads them from the data).
NOTES = dict(input_dim=88, output_dim=88)

TINY = dict(units=4, transition_units=4, output_units=4, num_transition_layers=2,
            num_output_layers=1)


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
