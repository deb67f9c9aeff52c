"""The run's timing page: layers, scenarios and tests split into setup / call / teardown, tests/ modules in
total, slowest first; the CI summary prints the slowest lines."""

from __future__ import annotations

from pathlib import Path

from boutique_suite.reporting import timings

TESTS = {
    "tests/test_a.py::test_one": {"setup": 1.0, "call": 2.0, "teardown": 0.5},
    "tests/test_a.py::test_two": {"call": 4.0},
    "steps/test_scenarios.py::test_self_heal": {"setup": 30.0, "call": 12.0, "teardown": 3.0},
}


def test_rows_split_each_test_and_sum_each_module_slowest_first() -> None:
    table = timings.rows(TESTS, {"layer 4 (GitOps)": 61.234})
    assert table[0] == ("layer", "layer 4 (GitOps)", 61.23, "ensure")
    assert table[1] == ("scenario", "steps/test_scenarios.py::test_self_heal", 45.0,
                        "setup 30.0 / call 12.0 / teardown 3.0")  # fmt: skip
    assert ("module", "tests/test_a.py", 7.5, "all its tests") in table
    assert ("test", "tests/test_a.py::test_two", 4.0, "setup 0.0 / call 4.0 / teardown 0.0") in table
    assert [row[2] for row in table] == sorted((row[2] for row in table), reverse=True)


def test_a_scenario_names_the_steps_it_spent_longest_in() -> None:
    steps = {
        "steps/test_scenarios.py::test_self_heal": [
            ("Given the platform is built through phase 4", 0.2),
            ('Then Deployment "cartservice" has all replicas available again within 90 seconds', 9.5),
            ("And fewer than 1% of Locust's requests fail in the 60 seconds after that", 60.0),
            ("When every pod | is force-deleted", 1.1),
            ("And the Application is Synced and Healthy", 1.0),
        ]
    }
    [row] = [r for r in timings.rows(TESTS, {}, steps) if r[0] == "scenario"]
    assert row[3] == (
        "setup 30.0 / call 12.0 / teardown 3.0 · longest steps: 60.0 s And fewer than 1% of Locust's "
        'requests fail in the 60 seconds after that; 9.5 s Then Deployment "cartservice" has all replicas '
        "available again within 90 seconds; 1.1 s When every pod / is force-deleted"
    )


def test_step_times_are_measured_from_start_to_end(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    clock = iter([100.0, 102.5])
    monkeypatch.setattr(timings.time, "monotonic", lambda: next(clock))
    monkeypatch.setattr(timings, "_STEPS", {})
    timings.step_started("steps/x::test_y")
    timings.step_ended("steps/x::test_y", "When Locust starts")
    timings.step_ended("steps/x::test_y", "a step that never started is not recorded")
    assert timings._STEPS == {"steps/x::test_y": [("When Locust starts", 2.5)]}


def test_the_page_and_the_slowest_lines(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(timings, "_PHASES", dict(TESTS))
    page = timings.publish({"layer 2 (cluster)": 9.0}, tmp_path)
    assert page == tmp_path / "run-pages" / "timings.md"
    assert "| scenario | steps/test_scenarios.py::test_self_heal | 45.0 |" in page.read_text()
    printed = timings.slowest(2, tmp_path).splitlines()
    assert len(printed) == 3 and "test_self_heal" in printed[1] and "layer 2 (cluster)" in printed[2]
    assert timings.slowest(2, tmp_path / "none").startswith("no ")
