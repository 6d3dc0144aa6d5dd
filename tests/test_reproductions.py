"""The reproduction scripts' `--quick` modes run end to end, and their reports say what the runs did.

(The music table on the paper's own data has its tests in `test_music_table.py`.)

Each script is run as a user would (a subprocess, tiny settings); the
checks read the report back and set it against the runs' own files: the
configuration chosen on validation, the test figures of the chosen runs
only, means and gaps to the paper, and totals that a second call, finding
every run done, keeps.
"""

import json
import pathlib
import sys

import pytest
from script_runs import run_quick

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import reproduce_music  # noqa: E402


@pytest.mark.slow
def test_lm_quick_report_matches_its_runs(tmp_path):
    results = run_quick("reproduce_lm.py", tmp_path)
    summary = json.loads((results / "lm_reproduction.json").read_text())
    table = (results / "lm_reproduction.md").read_text()
    rows = summary["rows"]
    assert [r["architecture"] for r in rows] == ["rnn", "dts_rnn", "dots_rnn", "srnn"]
    assert [r["paper_ptb_bits_per_character"] for r in rows] == [1.414, 1.409, 1.386, 1.412]
    for row in rows:
        result = json.loads((pathlib.Path(row["run_dir"]) / "result.json").read_text())
        assert row["bits_per_character"] == result["test"]["bits_per_character"]
        # Perplexity per character is 2 to the bits.
        assert row["perplexity"] == pytest.approx(2 ** row["bits_per_character"], rel=1e-4)
        assert f"| {row['model']} | abc_folk | {row['bits_per_character']:.3f} |" in table
    total = sum(r["train_time_s"] for r in rows)
    assert summary["training_seconds"] == pytest.approx(total, abs=0.2)
    assert f"{total / 60:.1f} minutes of training in all" in table
    assert "Quick run" in table and "split is by whole tune" in table


def test_music_script_refuses_an_unknown_data_set(capsys):
    with pytest.raises(SystemExit) as stop:
        reproduce_music.main(["--datasets", "mozart"])
    assert stop.value.code == 2
    assert "invalid choice: 'mozart'" in capsys.readouterr().err


def test_imitations_report_sets_each_run_beside_the_papers_column():
    result = {"dataset": "folk_tunes", "architecture": "dts_rnn",
              "test": {"nll": 3.5, "frame_accuracy": 0.25}, "paper": {"nll": 3.206},
              "parameters": 1234, "epochs_run": 5, "best_epoch": 4, "train_time_s": 60.0,
              "backend": "jax"}
    table = reproduce_music.report([result], True, {"folk_tunes": 3.631})
    assert "| model | folk_tunes (ours) | Nottingham (paper) |" in table
    assert "| DT(S)-RNN | 3.500 | 3.206 |" in table
    assert "| note frequencies, no model | 3.631 | - |" in table
