"""Beyond one device: data-parallel trials, and a chief with workers on one machine.

Two kinds of parallelism, independent of each other:

* **Within a trial** (`distribution_scope("data_parallel")`): one model, its
  batches split over the local devices. JAX uses
  `keras.distribution.DataParallel`, TensorFlow `tf.distribute.MirroredStrategy`.
  Every batch is padded with zero-weight rows to a multiple of the device
  count (`even_batches`), since neither backend splits a ragged batch.
* **Across trials** (`launch_local`): KerasTuner's chief/worker mode, one
  oracle process handing out trials over gRPC to worker processes (see the
  recipe in `keras_deeprnn.tuning`).

The chief's gRPC server has no authentication and no encryption: whoever
reaches its port can read the search space, take trials and report scores
that the chief saves as results. `check_chief_address` warns when the chief
is about to listen anywhere but on loopback.
"""

import contextlib
import ipaddress
import json
import math
import os
import pathlib
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings

import keras
import numpy as np

from keras_deeprnn import _checks
from keras_deeprnn import _files

DISTRIBUTIONS = ("data_parallel",)
LOOPBACK = "127.0.0.1"
# Set by `launch_local` for the chief: the file it writes once its tuner
# exists, so workers start only after the chief has (maybe) overwritten the
# project, and the launcher learns where the project is.
READY_FILE_VARIABLE = "KERAS_DEEPRNN_CHIEF_READY_FILE"
TORCH_RECIPE = (
    "Keras's torch backend has no in-process data parallelism for `fit`. "
    "Either run one KerasTuner worker per GPU (chief/worker mode, each worker "
    "with its own CUDA_VISIBLE_DEVICES), or train a single model with "
    "torch.nn.parallel.DistributedDataParallel in a custom loop launched by "
    "`torchrun --nproc_per_node=N` (Keras guide 'Multi-GPU distributed "
    "training with PyTorch')."
)

# A model must be trained under the very strategy it was built under, so one
# object per device set is kept for the life of the process.
_DISTRIBUTIONS = {}


@contextlib.contextmanager
def distribution_scope(kind=None, devices=None):
    """Run what is inside on several local devices, the right way per backend.

    ```python
    kind=None             -> nothing changes; yields None
    kind="data_parallel"  -> jax:        keras.distribution.DataParallel(devices).scope()
                             tensorflow: tf.distribute.MirroredStrategy(devices).scope()
                             torch:      ValueError with the torchrun recipe
    ```

    Build, compile and fit a model inside the same scope (the object yielded
    is the same for the same devices, so two scopes in a row are one
    distribution). Each batch must split evenly over the devices: wrap a
    dataset in `even_batches`.

    Args:
        kind: `None` or `"data_parallel"`.
        devices: device names as `keras.distribution.list_devices()` gives
            them (`"cpu:0"`, `"gpu:1"`); default all of the default type.

    Yields:
        `None`, the `keras.distribution.DataParallel` (JAX) or the
        `tf.distribute.MirroredStrategy` (TensorFlow).

    Example:

    ```python
    with distribution_scope("data_parallel") as distribution:
        model = build_model("dts_rnn", input_dim=88, output_dim=88, units=64,
                            output_activation="sigmoid")
        model.compile()
        model.fit(even_batches(batches, num_replicas("data_parallel")))
    ```
    """
    if kind is None:
        yield None
        return
    distribution = _distribution(kind, devices)
    with distribution.scope():
        yield distribution


def num_replicas(kind=None, devices=None):
    """How many devices share each batch under `distribution_scope(kind)`."""
    if kind is None:
        return 1
    _check_kind(kind)
    return len(_devices(devices))


def _check_kind(kind):
    _checks.one_of("distribute", kind, DISTRIBUTIONS)
    backend = keras.backend.backend()
    if backend not in ("jax", "tensorflow"):
        raise ValueError(
            f"`distribute='{kind}'` needs the JAX or TensorFlow backend. "
            f"Received: KERAS_BACKEND={backend!r}. {TORCH_RECIPE}"
        )


def _devices(devices):
    devices = tuple(devices or keras.distribution.list_devices())
    if not devices:
        raise ValueError("No device found for data parallelism. Received: devices=[]")
    return devices


def _distribution(kind, devices):
    _check_kind(kind)
    backend = keras.backend.backend()
    key = (backend, kind, _devices(devices))
    if key not in _DISTRIBUTIONS:
        if backend == "jax":
            _DISTRIBUTIONS[key] = keras.distribution.DataParallel(devices=list(key[2]))
        else:
            import tensorflow as tf

            names = [name if name.startswith("/") else f"/{name}" for name in key[2]]
            _DISTRIBUTIONS[key] = tf.distribute.MirroredStrategy(names)
    return _DISTRIBUTIONS[key]


class EvenBatches(keras.utils.PyDataset):
    """Batches padded to a multiple of the device count with zero-weight rows.

    ```python
    x, y, w = dataset[i]                       # (b, time, ...), w (b, time)
    pad = ceil(b / multiple) * multiple - b
    x, y, w = [concat([a, zeros((pad,) + a.shape[1:])]) for a in (x, y, w)]
    ```

    A padded row has weight 0, so weighted metrics (`FrameNLL`) are exact.
    The loss, like Keras's for padded frames, is divided by the padded size.
    """

    def __init__(self, dataset, multiple, **kwargs):
        super().__init__(**kwargs)
        self.dataset = dataset
        self.multiple = _checks.positive_int("multiple", multiple)

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        batch = self.dataset[index]
        if not isinstance(batch, tuple) or len(batch) != 3:
            raise ValueError(
                "EvenBatches needs batches of (x, y, sample_weight). Received: "
                f"{type(batch).__name__} {batch!r:.80}"
            )
        size = len(batch[0])
        pad = math.ceil(size / self.multiple) * self.multiple - size
        if not pad:
            return batch
        return tuple(
            np.concatenate([a, np.zeros((pad,) + a.shape[1:], a.dtype)]) for a in batch
        )

    def on_epoch_end(self):
        self.dataset.on_epoch_end()


def even_batches(dataset, multiple):
    """`dataset` (a `PyDataset` of `(x, y, sample_weight)`) as `EvenBatches`."""
    if multiple == 1:
        return dataset
    return EvenBatches(dataset, multiple)


def is_loopback(host):
    """Whether `host` (an address or `localhost`) only accepts this machine's connections."""
    host = str(host).strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


def check_chief_address(host, port=None):
    """Warn when a tuner chief would serve trials beyond this machine.

    KerasTuner's chief listens on `KERASTUNER_ORACLE_IP:KERASTUNER_ORACLE_PORT`
    with gRPC's insecure credentials: no authentication, no encryption. Any
    process that reaches the port can read the search space, take trials and
    report a score, which the chief records as a result. On `127.0.0.1` (as
    `launch_local` binds it) only this machine can; on any other address,
    keep the port behind a firewall on a network only you use.

    Args:
        host: the address the chief binds to.
        port: its port, for the message.

    Returns:
        Whether `host` is a loopback address (no warning then).
    """
    if is_loopback(host):
        return True
    where = f"{host}:{port}" if port is not None else str(host)
    everywhere = " (every interface of this machine)" if str(host).strip("[]") in (
        "0.0.0.0", "::") else ""
    warnings.warn(
        f"The tuner's chief serves trials on {where}{everywhere} without authentication "
        "or encryption: anyone who can reach that port can read the search space, take "
        "trials and report scores that are saved as results. Use KERASTUNER_ORACLE_IP="
        f"{LOOPBACK} on one machine; across machines, keep the port on a private network "
        "behind a firewall.",
        UserWarning, stacklevel=2,
    )
    return False


# The method a worker asks first; any KerasTuner chief answers it at once.
_ORACLE_METHOD = "/keras_tuner.Oracle/GetSpace"


def oracle_port(port):
    """`KERASTUNER_ORACLE_PORT` as an int, or a ValueError naming it."""
    try:
        value = int(str(port).strip())
    except ValueError:
        value = None
    if value is None or not 0 < value < 65536:
        raise ValueError(
            "`KERASTUNER_ORACLE_PORT` must be a TCP port, an integer from 1 to 65535. "
            f"Received: KERASTUNER_ORACLE_PORT={port!r}")
    return value


def wait_for_chief(host, port, timeout, answer_timeout=10.0):
    """Return once a KerasTuner chief answers at `host:port`, else fail in one line.

    A worker pointed at the wrong place would otherwise wait an hour in
    silence (KerasTuner's own timeout for every call to its chief). Here:

    ```python
    nothing listens (refused), for `timeout` s  -> ConnectionError "No tuning chief answers at ..."
    the host name does not resolve             -> ConnectionError at once
    something listens but is no chief (no gRPC,
      or gRPC without KerasTuner's oracle)     -> ConnectionError "... is not a KerasTuner chief"
                                                  within `answer_timeout` s
    ```

    Refusals are retried until `timeout`, since a chief listens only once
    its tuner exists. The check asks the chief for its search space, which
    is what a worker asks first anyway.

    Args:
        host: `KERASTUNER_ORACLE_IP`.
        port: `KERASTUNER_ORACLE_PORT` (an int or its text).
        timeout: seconds to wait for anything to listen there.
        answer_timeout: seconds a listener gets to answer as a chief.

    Example:

    ```python
    wait_for_chief(os.environ["KERASTUNER_ORACLE_IP"], os.environ["KERASTUNER_ORACLE_PORT"], 60)
    ```
    """
    host = str(host).strip().strip("[]")
    port = oracle_port(port)
    where = (f"{host}:{port} (KERASTUNER_ORACLE_IP={host}, KERASTUNER_ORACLE_PORT={port})")
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=2):
                break
        except socket.gaierror as err:
            raise ConnectionError(
                f"No tuning chief can be reached at {where}: the host name does not resolve "
                f"({err.strerror or err}). Expected the address of the machine running the "
                "chief (KERASTUNER_TUNER_ID=chief).") from None
        except OSError as err:
            if time.monotonic() >= deadline:
                raise ConnectionError(
                    f"No tuning chief answers at {where} after {timeout:g} s "
                    f"({err.strerror or err}). Expected a chief listening there: start it first "
                    "(KERASTUNER_TUNER_ID=chief), or check the address and port.") from None
        time.sleep(0.5)
    _ask_chief(host, port, where, answer_timeout)


def _ask_chief(host, port, where, answer_timeout):
    import grpc  # KerasTuner's own dependency, needed only by distributed searches

    channel = grpc.insecure_channel(f"{host}:{port}")
    try:
        # Raw bytes in and out: an empty request is the empty protobuf message.
        ask = channel.unary_unary(_ORACLE_METHOD)
        ask(b"", timeout=answer_timeout)
    except grpc.RpcError as err:
        code = err.code() if callable(getattr(err, "code", None)) else None
        why = getattr(code, "name", "no answer")
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            why = f"no gRPC answer within {answer_timeout:g} s"
        elif code == grpc.StatusCode.UNAVAILABLE:
            why = "it does not answer in gRPC"
        elif code == grpc.StatusCode.UNIMPLEMENTED:
            why = "a gRPC server without KerasTuner's oracle"
        raise ConnectionError(
            f"Something listens at {where}, but it is not a KerasTuner chief ({why}). "
            "Expected the chief of this search (KERASTUNER_TUNER_ID=chief); check the "
            "address and port.") from None
    finally:
        channel.close()


def signal_ready(project_dir):
    """As a chief started by `launch_local`: say the tuner exists and where its project is."""
    path = os.environ.get(READY_FILE_VARIABLE)
    if not path:
        return
    # Atomically: the launcher never reads half a file.
    _files.write_text(path, json.dumps({"project": str(project_dir), "pid": os.getpid()}))


def free_port(host=LOOPBACK):
    """A TCP port free on `host` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def launch_local(num_workers, argv, *, timeout=3600, chief_grace=30, log_dir=None, env=None):
    """Run a distributed search on this machine: one chief and N workers on 127.0.0.1.

    Each process runs `keras-deeprnn tune *argv` (as `python -m keras_deeprnn
    tune`) with `KERASTUNER_ORACLE_IP=127.0.0.1`, a free
    `KERASTUNER_ORACLE_PORT` and `KERASTUNER_TUNER_ID` = `chief`, `tuner0`,
    ..., `tuner{N-1}`. The chief starts first; the workers start once it
    says its tuner exists (a file named by `KERAS_DEEPRNN_CHIEF_READY_FILE`),
    so a chief that overwrites the project cannot delete a worker's files.
    The workers never get `--overwrite`. Loopback only: the chief is
    unauthenticated (see `check_chief_address`).

    KerasTuner's chief checks every 20 s whether the last worker has left; once
    every worker has exited, the chief gets `chief_grace` seconds and is then
    stopped (its state is saved after every trial, so nothing is lost).

    Args:
        num_workers: how many worker processes.
        argv: the `keras-deeprnn tune` flags.
        timeout: seconds for the whole search; then every process is stopped.
        chief_grace: seconds the chief may take to exit after the workers.
        log_dir: where `chief.log`, `tuner0.log`, ... go (default: a new
            temporary folder, returned).
        env: extra environment variables for every process.

    Returns:
        `{"returncodes": {"chief": rc, "tuner0": rc, ...}, "log_dir": path,
        "project": the chief's project folder (None if it never got ready),
        "timed_out": bool}`; a stopped process has a negative return code.

    Example:

    ```python
    result = launch_local(2, ["--max-trials", "8", "--directory", "runs"])
    report(*os.path.split(result["project"]))
    ```
    """
    num_workers = _checks.positive_int("num_workers", num_workers)
    log_dir = pathlib.Path(log_dir) if log_dir is not None else pathlib.Path(
        tempfile.mkdtemp(prefix="keras-deeprnn-tune-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    ready = log_dir / "chief.ready"
    ready.unlink(missing_ok=True)  # a stale one must not count as this chief's
    base_env = dict(os.environ, **(env or {}))
    base_env.update(KERASTUNER_ORACLE_IP=LOOPBACK, KERASTUNER_ORACLE_PORT=str(free_port()))
    command = [sys.executable, "-m", "keras_deeprnn", "tune"]
    worker_argv = [a for a in argv if a != "--overwrite"]

    processes, logs = {}, []

    def start(tuner_id, flags, **extra):
        log = open(log_dir / f"{tuner_id}.log", "wb")
        logs.append(log)
        processes[tuner_id] = subprocess.Popen(
            command + flags, env=dict(base_env, KERASTUNER_TUNER_ID=tuner_id, **extra),
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    deadline = time.monotonic() + timeout
    timed_out = False
    project = None
    try:
        start("chief", list(argv), **{READY_FILE_VARIABLE: str(ready)})
        while not ready.exists() and processes["chief"].poll() is None:
            if time.monotonic() > deadline:
                timed_out = True
                break
            time.sleep(0.2)
        if ready.exists():
            project = json.loads(ready.read_text())["project"]
        if not timed_out and processes["chief"].poll() is None:
            for i in range(num_workers):
                start(f"tuner{i}", worker_argv)
            workers = [p for name, p in processes.items() if name != "chief"]
            while any(p.poll() is None for p in workers):
                if time.monotonic() > deadline or processes["chief"].poll() not in (None, 0):
                    timed_out = time.monotonic() > deadline
                    break
                time.sleep(0.2)
            if all(p.poll() is not None for p in workers):
                _wait(processes["chief"], min(chief_grace, max(0.0, deadline - time.monotonic())))
    finally:
        for process in processes.values():
            _stop(process)
        for log in logs:
            log.close()
    return {
        "returncodes": {name: p.returncode for name, p in processes.items()},
        "log_dir": str(log_dir),
        "project": project,
        "timed_out": timed_out,
    }


def _wait(process, seconds):
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        pass


def _stop(process):
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
