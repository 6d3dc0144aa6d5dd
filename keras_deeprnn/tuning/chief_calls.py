"""A worker's calls to its tuning chief, each given a bounded time to be answered.

A KerasTuner worker asks its chief for every trial and reports every result
over gRPC, and KerasTuner lets each call wait up to an hour for the chief
(`wait_for_ready=True, timeout=3600` in its `OracleClient`, so that workers
may start long before the chief). `run_search` waits for the chief to start
on its own (`wait_for_chief`); after that, a chief that stops mid-search
would leave its workers waiting that hour in silence. `bound_chief_calls`
gives each call `chief_timeout()` seconds (`$KERAS_DEEPRNN_CHIEF_TIMEOUT`,
default 300), then raises `ChiefLostError` naming the call and the chief.
"""

import math
import os

import keras_tuner

CHIEF_TIMEOUT_VARIABLE = "KERAS_DEEPRNN_CHIEF_TIMEOUT"
# A live chief answers every call of a worker at once: a trial, "idle, ask
# again", or a result stored. Its slowest answer is a Bayesian oracle fitting
# its Gaussian process to the finished trials, seconds even for hundreds.
DEFAULT_CHIEF_TIMEOUT_S = 300.0


class ChiefLostError(ConnectionError, keras_tuner.errors.FatalError):
    """A worker's chief did not answer in time, so the worker's search stops.

    A `ConnectionError`, which `keras-deeprnn tune` reports in one line, and
    KerasTuner's `FatalError`, which ends the search at once instead of
    counting as a failure of the trial that was running.
    """


def chief_timeout(environ=None):
    """Seconds a worker waits for each answer of its chief.

    `$KERAS_DEEPRNN_CHIEF_TIMEOUT` (a positive number) if set, else 300.

    Example:

    >>> chief_timeout({"KERAS_DEEPRNN_CHIEF_TIMEOUT": "30"})
    30.0
    """
    environ = os.environ if environ is None else environ
    text = environ.get(CHIEF_TIMEOUT_VARIABLE, "")
    if not text.strip():
        return DEFAULT_CHIEF_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ValueError(
            f"`{CHIEF_TIMEOUT_VARIABLE}` must be a positive number of seconds (how long a "
            "tuning worker waits for each answer of its chief). Received: "
            f"{CHIEF_TIMEOUT_VARIABLE}={text!r}")
    return value


def bound_chief_calls(oracle_client, timeout):
    """Give every call of a worker's `OracleClient` `timeout` seconds, then `ChiefLostError`.

    Args:
        oracle_client: the `oracle` of a KerasTuner tuner made in a worker
            (KerasTuner's `OracleClient`, which sends each call to the chief
            named by `KERASTUNER_ORACLE_IP` and `KERASTUNER_ORACLE_PORT`).
        timeout: seconds per call (`chief_timeout()`).

    Returns:
        `oracle_client`, its calls bounded.
    """
    stub = getattr(oracle_client, "stub", None)
    if stub is None:
        raise TypeError(
            "bound_chief_calls needs the oracle of a KerasTuner worker, whose calls to its "
            f"chief go through `.stub`. Received: {type(oracle_client).__name__} without one "
            f"(KerasTuner {keras_tuner.__version__}).")
    host = os.environ.get("KERASTUNER_ORACLE_IP")
    port = os.environ.get("KERASTUNER_ORACLE_PORT")
    where = f"{host}:{port} (KERASTUNER_ORACLE_IP={host}, KERASTUNER_ORACLE_PORT={port})"
    oracle_client.stub = _BoundedStub(stub, timeout, where)
    return oracle_client


class _BoundedStub:
    """KerasTuner's gRPC stub to the chief, with a deadline of `timeout` s on every call."""

    def __init__(self, stub, timeout, where):
        self._stub, self._timeout, self._where = stub, timeout, where

    def __getattr__(self, method):
        call = getattr(self._stub, method)

        def bounded(request, **kwargs):
            import grpc  # KerasTuner's own dependency in distributed searches

            kwargs["timeout"] = min(kwargs.get("timeout") or self._timeout, self._timeout)
            try:
                return call(request, **kwargs)
            except grpc.RpcError as err:
                code = err.code() if callable(getattr(err, "code", None)) else None
                if code not in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE):
                    raise
                raise ChiefLostError(
                    f"The tuning chief at {self._where} did not answer {method} within "
                    f"{self._timeout:g} s ({code.name}): it has stopped or hangs (its output "
                    "says why). Expected the chief of this search to answer; restart it (the "
                    "search resumes from its directory) and then the workers, or set "
                    f"{CHIEF_TIMEOUT_VARIABLE} to more seconds if it is only slow.") from None

        return bounded
