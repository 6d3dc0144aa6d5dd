"""The study and reproduction scripts run end to end (tiny settings) and write their reports."""

import json

import pytest
from script_runs import run_quick


@pytest.mark.slow
def test_regulariser_study_matches_budgets_and_reports(tmp_path):
    results = run_quick("study_regularisers.py", tmp_path)
    summary = json.loads((results / "regulariser_study_quick.json").read_text())
    rows = summary["variants"]
    assert [r["variant"] for r in rows][0] == "DOT(S)-RNN (paper)"
    assert len(rows) == 6
    # Every variant within the baseline's parameter count, and not far under it.
    for row in rows:
        assert 0.75 * summary["budget"] <= row["parameters"] <= summary["budget"], row
    assert rows[0]["parameters"] == summary["budget"]
    table = (results / "regulariser_study_quick.md").read_text()
    assert table.count("\n| ") >= 7 and "Smoke run" in table
    assert (results / "regulariser_study_quick.png").stat().st_size > 10_000
