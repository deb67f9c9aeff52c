"""Flakiness over runs, from the report's own history and this run's summary: pass rate, flip rate, the
flaky ones first; skipped runs count neither way."""

from __future__ import annotations

import json
from pathlib import Path

from boutique_suite.reporting import flakiness


def point(**statuses: str) -> str:
    results = {f"h{i}": {"name": name, "status": status} for i, (name, status) in enumerate(statuses.items())}
    return json.dumps({"uuid": "x", "testResults": results})


def test_a_scenario_that_flips_is_flaky_and_comes_first(tmp_path: Path) -> None:
    history = tmp_path / "history.jsonl"
    history.write_text(
        "\n".join(
            [
                point(steady="passed", flip="passed", down="failed"),
                point(steady="passed", flip="failed", down="broken"),
                point(steady="passed", flip="skipped", down="failed"),
                "not json",
            ]
        )
    )
    summary = tmp_path / "summary.json"
    summary.write_text(
        json.dumps(
            {
                "scenarios": {
                    "a": {"scenario": "flip", "outcome": "passed"},
                    "b": {"scenario": "steady", "outcome": "skipped"},
                }
            }
        )
    )
    page = flakiness.publish(summary, history)
    assert page == tmp_path / "run-pages" / "flakiness.md"
    records = {
        r.scenario: r for r in flakiness.records([*flakiness.history_runs(history), {"flip": "passed"}])
    }
    assert records["flip"].outcomes == ("passed", "failed", "passed") and records["flip"].flaky
    assert records["flip"].flip_rate == 1.0 and round(records["flip"].pass_rate, 2) == 0.67
    assert not records["steady"].flaky and records["steady"].pass_rate == 1.0
    assert not records["down"].flaky and records["down"].pass_rate == 0.0
    text = page.read_text()
    assert "1 flaky of 3 scenarios" in text
    assert text.index("| flip |") < text.index("| down |") < text.index("| steady |")
    assert "| flip | 3 | 67% | 100% | **flaky** | PFP |" in text


def test_the_window_keeps_the_last_runs_only() -> None:
    runs = [{"s": "failed"}] + [{"s": "passed"}] * flakiness.WINDOW
    [record] = flakiness.records(runs)
    assert len(record.outcomes) == flakiness.WINDOW and not record.flaky


def test_an_outlines_examples_share_a_name_and_any_failed_example_fails_it() -> None:
    summary = {
        "scenarios": {
            "a": {"scenario": "o", "outcome": "failed"},
            "b": {"scenario": "o", "outcome": "passed"},
        }
    }
    assert flakiness.summary_run(summary) == {"o": "failed"}


def test_no_history_yet_is_no_record(tmp_path: Path) -> None:
    assert flakiness.history_runs(tmp_path / "none.jsonl") == []
