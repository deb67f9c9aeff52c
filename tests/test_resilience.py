"""The resilience summary: each measured time against its budget, the chaos recoveries first, the history
kept across runs (bounded, tolerant of a line cut short) and the trend drawn from it."""

from __future__ import annotations

import json
from pathlib import Path

from boutique_suite.reporting import resilience


def timed(scenario: str, tags: list[str], timings: dict[str, float], budgets: dict[str, float]) -> dict:
    """A scenario's entry in reports/summary.json as the suite writes it."""
    return {
        "scenario": scenario,
        "tags": tags,
        "outcome": "passed",
        "timings_seconds": timings,
        "budgets_seconds": budgets,
    }


def summary(finished: str = "2026-12-03T01:00:00Z", drift: float = 30.0) -> dict:
    pods = "Force-deleted pods come back"
    return {
        "target": "lab",
        "finished": finished,
        "scenarios": {
            "a": timed(
                "Argo CD reverts a wrong change made by hand",
                ["chaos", "drift", "phase4"],
                {"drift_recovery_seconds": drift},
                {"drift_recovery_seconds": 120},
            ),
            "b": timed(
                "The storefront answers",
                ["phase3"],
                {"home_page_seconds": 0.5, "layer_seconds": 4.0},
                {"home_page_seconds": 0.25},
            ),
            "c": {"scenario": "skipped one", "outcome": "skipped", "execution": "skipped", "reason": "x"},
            "steps/test_scenarios.py::test_pods[frontend-60]": timed(
                pods, ["chaos"], {"self_heal_seconds": 3.0}, {"self_heal_seconds": 60}
            ),
            "steps/test_scenarios.py::test_pods[cartservice-90]": timed(
                pods, ["chaos"], {"self_heal_seconds": 6.0}, {"self_heal_seconds": 90}
            ),
        },
    }


def test_chaos_measures_come_first_and_each_has_its_verdict() -> None:
    found = resilience.measures(summary())
    assert [(m.name, m.chaos, m.verdict) for m in found] == [
        ("drift_recovery_seconds", True, "within budget"),
        ("self_heal_seconds", True, "within budget"),
        ("self_heal_seconds", True, "within budget"),
        ("home_page_seconds", False, "OVER BUDGET"),
        ("layer_seconds", False, "no budget"),
    ]
    assert found[0].share == 0.25


def test_the_slowest_recoveries_are_the_chaos_measures_that_used_most_of_their_budget() -> None:
    slowest = resilience.slowest_recoveries(summary())
    assert [m.key for m in slowest] == [
        "Argo CD reverts a wrong change made by hand / drift_recovery_seconds",
        "Force-deleted pods come back [cartservice-90] / self_heal_seconds",
        "Force-deleted pods come back [frontend-60] / self_heal_seconds",
    ]  # each row of a Scenario Outline is a measure of its own
    assert [m.name for m in resilience.over_budget(summary())] == ["home_page_seconds"]


def test_history_keeps_the_last_runs_and_survives_a_line_cut_short(tmp_path: Path) -> None:
    path = tmp_path / "resilience-history.jsonl"
    path.write_text('{"finished": "old", "seconds": {}}\n{"finished": "cut sho\n')
    for run in range(resilience.HISTORY_LIMIT + 2):
        runs = resilience.append_history(summary(f"run-{run}", drift=10.0 + run), path)
    assert len(runs) == resilience.HISTORY_LIMIT
    assert runs[-1]["finished"] == f"run-{resilience.HISTORY_LIMIT + 1}"
    assert resilience.read_history(path) == runs


def test_the_trend_shows_the_last_runs_oldest_first() -> None:
    key = resilience.measures(summary())[0].key
    history = [resilience.history_record(summary(drift=d)) for d in (40, 30, 20)]
    assert resilience.trend(history, key) == "40.0 → 30.0 → 20.0 (median 30.0)"
    assert resilience.trend(history[:1], key) == "first run"


def test_publish_writes_the_table_appends_the_history_and_attaches_it(tmp_path: Path) -> None:
    source = tmp_path / "summary.json"
    source.write_text(json.dumps(summary()))
    pages = tmp_path / "run-pages"
    out = resilience.publish(source, tmp_path / "resilience.md", tmp_path / "history.jsonl", pages)
    text = out.read_text()
    assert (
        "| Argo CD reverts a wrong change made by hand (chaos) | drift_recovery_seconds | 30.0 | 120 | 25%"
        in text
    )
    assert "- over budget: 1" in text
    assert len(resilience.read_history(tmp_path / "history.jsonl")) == 1
    assert (pages / "resilience.md").read_text() == text  # a page of the run, not a result counted as one
    assert not list(tmp_path.rglob("*-result.json"))
