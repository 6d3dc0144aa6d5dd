"""What a failed trial prints: nothing at `verbose=0`, one line for a trial
skipped on purpose, a traceback only for a trial that crashed.

KerasTuner prints the traceback of every failed trial, whatever the
verbosity (its `config.DEBUG` is on by default), so `tune --quiet` with a
parameter budget printed a traceback per skipped trial. Its record of the
trial is kept as it was: status `FAILED` for a `FailedTrialError` (a trial
skipped on purpose, never retried), `INVALID` for any other error (retried
if the tuner allows it), and the traceback in `trial.message`.
"""

import sys
import traceback

import keras_tuner
from keras_tuner.engine.trial import TrialStatus


def run_trial(tuner, trial, fit_args, fit_kwargs):
    """Run one trial as KerasTuner's `_try_run_and_update_trial` does, printing by verbosity.

    ```python
    verbose = fit_kwargs["verbose"]             # run_search's: 0 with --quiet
    FailedTrialError -> FAILED;  prints "Trial 3 skipped: <reason>" if verbose
    any other error  -> INVALID; prints the traceback to stderr if verbose
    FatalError       -> raised (ends the search)
    ```

    Example:

    ```python
    class Tuner(keras_tuner.RandomSearch):
        def _try_run_and_update_trial(self, trial, *fit_args, **fit_kwargs):
            run_trial(self, trial, fit_args, fit_kwargs)
    ```
    """
    verbose = fit_kwargs.get("verbose", 1)
    try:
        tuner._run_and_update_trial(trial, *fit_args, **fit_kwargs)
        trial.status = TrialStatus.COMPLETED
        return
    except Exception as error:  # noqa: BLE001 - KerasTuner's contract: a trial's error ends the trial
        if isinstance(error, keras_tuner.errors.FatalError):
            raise
        skipped = isinstance(error, keras_tuner.errors.FailedTrialError)
        trial.status = TrialStatus.FAILED if skipped else TrialStatus.INVALID
        trial.message = traceback.format_exc()
        if not verbose:
            return
        if skipped:
            print(f"Trial {trial.trial_id} skipped: {error}", flush=True)
        else:
            traceback.print_exc(file=sys.stderr)
