"""A failed trial prints what its verbosity asks for: nothing under
`--quiet`, one line for a trial skipped on purpose, a traceback for a crash;
KerasTuner's record of it (status, message) is unchanged."""

import pytest

keras_tuner = pytest.importorskip("keras_tuner")

from keras_tuner.engine.trial import Trial  # noqa: E402

from keras_deeprnn.tuning import run_search  # noqa: E402
from keras_deeprnn.tuning.trial_failures import run_trial  # noqa: E402

from small_runs import search_options as options  # noqa: E402


class Raising:
    def __init__(self, error):
        self.error = error

    def _run_and_update_trial(self, trial, *fit_args, **fit_kwargs):
        if self.error is not None:
            raise self.error


def trial():
    return Trial(keras_tuner.HyperParameters(), trial_id="3")


CASES = {
    "skipped": (keras_tuner.errors.FailedTrialError("over the budget"), "FAILED"),
    "crashed": (RuntimeError("a bug"), "INVALID"),
    "completed": (None, "COMPLETED"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_nothing_is_printed_at_verbose_0_and_the_record_is_kept(case, capsys):
    error, status = CASES[case]
    t = trial()
    run_trial(Raising(error), t, (), {"verbose": 0})
    assert capsys.readouterr() == ("", "")
    assert t.status == status
    if error is not None:
        assert t.message.startswith("Traceback") and str(error) in t.message


def test_a_skipped_trial_prints_one_line_and_a_crash_its_traceback(capsys):
    run_trial(Raising(CASES["skipped"][0]), trial(), (), {"verbose": 2})
    assert capsys.readouterr() == ("Trial 3 skipped: over the budget\n", "")
    run_trial(Raising(CASES["crashed"][0]), trial(), (), {"verbose": 1})
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("Traceback") and "RuntimeError: a bug" in err


def test_a_fatal_error_still_ends_the_search():
    with pytest.raises(keras_tuner.errors.FatalValueError):
        run_trial(Raising(keras_tuner.errors.FatalValueError("stop")), trial(), (), {"verbose": 0})


@pytest.mark.parametrize("verbose", [0, 2])
def test_a_search_whose_trials_are_over_budget_prints_no_traceback(tmp_path, capfd, verbose):
    tuner = run_search(**options(tmp_path, max_params=10, verbose=verbose))
    # Trials compile for the batch size they train with (XLA's choice on TensorFlow).
    assert tuner.hypermodel.batch_size == options(tmp_path)["batch_size"]
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err
    trials = tuner.oracle.trials.values()
    assert [t.status for t in trials] == ["FAILED", "FAILED"]
    assert all("over the budget max_params=10" in t.message for t in trials)
    skipped = [line for line in out.splitlines() if " skipped: The model has " in line]
    assert len(skipped) == (2 if verbose else 0)
