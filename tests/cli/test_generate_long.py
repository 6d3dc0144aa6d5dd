"""Long samples: one model step per frame, a progress bar, and a bound on `--frames`."""

import numpy as np
import pytest

from keras_deeprnn import cli
from keras_deeprnn import training
from keras_deeprnn.models import build_model
from keras_deeprnn.tasks import music


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    model = build_model("rnn", input_dim=88, output_dim=88, output_activation="sigmoid",
                        units=4, masking=False)
    model(np.zeros((1, 2, 88), np.float32))
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    model.save(path)
    return path


def test_every_step_after_the_prime_feeds_one_frame(model_file, monkeypatch, tmp_path):
    """The state is carried: a long piece costs the same per frame, not the
    whole prefix again at every step."""
    fed = []
    twin_of = music._stepping_twin

    def recording(model):
        twin = twin_of(model)

        def step(x, **kwargs):
            fed.append(np.shape(x)[1])
            return twin(x, **kwargs)
        return step

    monkeypatch.setattr(music, "_stepping_twin", recording)
    prime = np.zeros((5, 88), np.float32)
    roll = music.sample_piece(training.load_trained_model(model_file)[0], 30,
                              prime=prime, seed=0)
    assert roll.shape == (30, 88)
    # The prime (after its silent start frame) once, then one frame per step.
    assert fed == [6] + [1] * 24


def test_generate_shows_progress_unless_quiet(model_file, tmp_path, capsys):
    out = tmp_path / "piece"
    assert cli.main(["generate", str(model_file), "--frames", "12", "--seed", "1",
                     "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "12/12" in printed and "frame" in printed
    assert cli.main(["generate", str(model_file), "--frames", "12", "--seed", "1",
                     "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "12/12" not in printed and printed.startswith("Sampled 12 frames")


def test_too_many_frames_is_refused_by_flag_before_any_sampling(model_file, monkeypatch,
                                                               capsys):
    monkeypatch.setattr(music, "sample_piece",
                        lambda *args, **kwargs: pytest.fail("sampled anyway"))
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["generate", str(model_file), "--frames", "100000000"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "--frames 100000000: ask for at most 1,000,000" in err
