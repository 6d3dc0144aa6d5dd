"""A tuning worker pointed at no chief, or at something that is no chief,
or whose chief stops answering mid-search, says so in one line naming the
address, instead of waiting an hour."""

import concurrent.futures
import re
import socket
import threading

import pytest

pytest.importorskip("keras_tuner")
grpc = pytest.importorskip("grpc")

from keras_deeprnn.cli import main  # noqa: E402
from keras_deeprnn.tuning import chief_calls  # noqa: E402
from keras_deeprnn.tuning import distribute  # noqa: E402
from keras_deeprnn.tuning import search  # noqa: E402

from small_runs import write_data  # noqa: E402


def unused_port():
    with socket.socket() as probe:  # bound, never listening: connections are refused
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def listener():
    """A TCP port that accepts connections and then, per `mode`, keeps them
    silent, answers in HTTP/1.1, or closes them."""
    servers = []

    def start(mode):
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        held = []

        def serve():
            while True:
                try:
                    connection, _ = server.accept()
                except OSError:
                    return
                if mode == "silent":
                    held.append(connection)
                    continue
                if mode == "http":
                    connection.recv(1024)
                    connection.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                connection.close()

        threading.Thread(target=serve, daemon=True).start()
        servers.append((server, held))
        return server.getsockname()[1]

    yield start
    for server, held in servers:
        server.close()
        for connection in held:
            connection.close()


def grpc_server(with_oracle, hang=None):
    """A gRPC server on a free port; with the oracle, it answers a worker's
    first question as a chief does and, given an Event `hang`, holds every
    other call until it is set (a chief that stopped answering)."""
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(4))
    if with_oracle:
        def held(request, context):
            hang.wait(30)
            context.abort(grpc.StatusCode.ABORTED, "released by the test")

        methods = {"GetSpace": grpc.unary_unary_rpc_method_handler(lambda request, context: b"")}
        if hang is not None:
            methods.update({name: grpc.unary_unary_rpc_method_handler(held) for name in (
                "CreateTrial", "UpdateTrial", "EndTrial", "GetTrial", "GetBestTrials",
                "UpdateSpace")})
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
            "keras_tuner.Oracle", methods),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


def test_nothing_listening_is_named_after_the_wait():
    port = unused_port()
    with pytest.raises(ConnectionError, match=rf"No tuning chief answers at 127\.0\.0\.1:{port} "
                                              r"\(KERASTUNER_ORACLE_IP=127\.0\.0\.1, "
                                              rf"KERASTUNER_ORACLE_PORT={port}\) after 0\.5 s"):
        distribute.wait_for_chief("127.0.0.1", port, 0.5)


@pytest.mark.parametrize("mode, why", [("silent", "no gRPC answer within 1 s"),
                                       ("http", "it does not answer in gRPC"),
                                       ("close", "it does not answer in gRPC")])
def test_a_listener_that_is_no_chief_is_refused(listener, mode, why):
    port = listener(mode)
    with pytest.raises(ConnectionError, match=rf"listens at 127\.0\.0\.1:{port} .*not a KerasTuner "
                                              rf"chief \({why}\)"):
        distribute.wait_for_chief("127.0.0.1", port, 60, answer_timeout=1)


def test_a_grpc_server_without_the_oracle_is_refused_and_a_chief_is_accepted():
    server, port = grpc_server(with_oracle=False)
    try:
        with pytest.raises(ConnectionError, match="gRPC server without KerasTuner's oracle"):
            distribute.wait_for_chief("127.0.0.1", port, 60, answer_timeout=5)
    finally:
        server.stop(None)
    server, port = grpc_server(with_oracle=True)
    try:
        assert distribute.wait_for_chief("127.0.0.1", str(port), 60, answer_timeout=5) is None
    finally:
        server.stop(None)


@pytest.mark.parametrize("port", ["http", "0", "65536", ""])
def test_a_port_that_is_no_port_is_named(port):
    with pytest.raises(ValueError, match=f"KERASTUNER_ORACLE_PORT` must be a TCP port.*"
                                         f"Received: KERASTUNER_ORACLE_PORT='{port}'"):
        distribute.wait_for_chief("127.0.0.1", port, 60)


def test_tune_as_a_worker_of_no_chief_fails_in_one_line(tmp_path, listener, monkeypatch, capsys):
    port = listener("close")
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", str(port))
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "tuner0")
    monkeypatch.setattr(search, "CHIEF_WAIT_S", 0.5)
    argv = ["tune", "--dataset", str(write_data(tmp_path / "set.pickle")), "--max-trials", "1",
            "--epochs", "1", "--architectures", "rnn", "--units", "4", "--batch-size", "2",
            "--directory", str(tmp_path / "searches"), "--quiet"]
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 1
    assert err.count("\n") == 1
    assert err.startswith(f"keras-deeprnn tune: error: Something listens at 127.0.0.1:{port} ")
    assert not (tmp_path / "searches").exists()


def worker_oracle(port, monkeypatch):
    """KerasTuner's own worker oracle (what a worker's tuner talks to its chief with)."""
    from keras_tuner.src.distribute.oracle_client import OracleClient

    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", str(port))
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "tuner0")
    return OracleClient(None)


def test_a_chief_gone_mid_search_is_named_after_the_timeout(monkeypatch):
    server, port = grpc_server(with_oracle=True)
    distribute.wait_for_chief("127.0.0.1", port, 60, answer_timeout=5)  # it was there
    server.stop(None).wait(30)  # and then it stopped (stop only begins the shutdown)
    oracle = chief_calls.bound_chief_calls(worker_oracle(port, monkeypatch), 0.5)
    outcome = []

    def ask():
        try:
            outcome.append(oracle.create_trial("tuner0"))
        except Exception as error:  # noqa: BLE001 - what the worker would see
            outcome.append(error)

    asking = threading.Thread(target=ask, daemon=True)
    asking.start()
    asking.join(60)  # a watchdog, not a measure: unbounded, the call waits an hour
    assert not asking.is_alive(), "the worker still waits for its chief"
    (error,) = outcome
    assert isinstance(error, chief_calls.ChiefLostError), error
    assert isinstance(error, ConnectionError)
    assert re.search(rf"chief at 127\.0\.0\.1:{port} \(KERASTUNER_ORACLE_IP=127\.0\.0\.1, "
                     rf"KERASTUNER_ORACLE_PORT={port}\) did not answer CreateTrial within "
                     # waiting for it, or refused by it as it went away: both are a lost chief
                     r"0\.5 s \((DEADLINE_EXCEEDED|UNAVAILABLE)\).*KERAS_DEEPRNN_CHIEF_TIMEOUT",
                     str(error))


@pytest.mark.parametrize("value, expected", [(None, 300.0), ("", 300.0), ("0.25", 0.25)])
def test_the_chief_timeout_is_300_s_unless_set(monkeypatch, value, expected):
    monkeypatch.delenv("KERAS_DEEPRNN_CHIEF_TIMEOUT", raising=False)
    if value is not None:
        monkeypatch.setenv("KERAS_DEEPRNN_CHIEF_TIMEOUT", value)
    assert chief_calls.chief_timeout() == expected


@pytest.mark.parametrize("value", ["soon", "0", "-1", "inf", "nan"])
def test_a_chief_timeout_that_is_no_positive_number_is_named(value):
    with pytest.raises(ValueError, match=r"`KERAS_DEEPRNN_CHIEF_TIMEOUT` must be a positive number "
                                         rf".*Received: KERAS_DEEPRNN_CHIEF_TIMEOUT='{value}'"):
        chief_calls.chief_timeout({"KERAS_DEEPRNN_CHIEF_TIMEOUT": value})


def test_tune_as_a_worker_whose_chief_stops_answering_fails_in_one_line(tmp_path, monkeypatch,
                                                                       capsys):
    hang = threading.Event()
    server, port = grpc_server(with_oracle=True, hang=hang)
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", str(port))
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "tuner0")
    monkeypatch.setenv("KERAS_DEEPRNN_CHIEF_TIMEOUT", "0.5")
    argv = ["tune", "--dataset", str(write_data(tmp_path / "set.pickle")), "--max-trials", "1",
            "--epochs", "1", "--architectures", "rnn", "--units", "4", "--batch-size", "2",
            "--directory", str(tmp_path / "searches"), "--quiet"]
    try:
        with pytest.raises(SystemExit) as exit_:
            main(argv)
    finally:
        hang.set()
        server.stop(None)
    err = capsys.readouterr().err
    assert exit_.value.code == 1
    assert err.count("\n") == 1
    assert err.startswith(f"keras-deeprnn tune: error: The tuning chief at 127.0.0.1:{port} ")
    assert "did not answer CreateTrial within 0.5 s (DEADLINE_EXCEEDED)" in err
