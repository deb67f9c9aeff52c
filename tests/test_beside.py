"""The offline tests beside the lab's session: their results and timings join the run's, one line says how
they went, and their exit code is the run's when the main session passed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from boutique_suite.reporting import beside, evidence

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="0" failures="1" skipped="2" tests="6">
<testcase classname="tests.test_a" name="test_ok"/>
<testcase classname="tests.test_b" name="test_wrong"><failure message="boom"/></testcase>
</testsuite></testsuites>
"""


@pytest.fixture
def reports(tmp_path: Path) -> Path:
    side = tmp_path / beside.SIDE
    (side / "allure-results").mkdir(parents=True)
    (side / "allure-results" / "abc-result.json").write_text("{}")
    (side / "junit.xml").write_text(JUNIT)
    (side / "timings.json").write_text(json.dumps([["module", "tests/test_b.py", 40.0, "all its tests"]]))
    (tmp_path / "allure-results").mkdir()
    (tmp_path / "allure-results" / "lab-result.json").write_text("{}")
    main = [["scenario", "steps/x", 90.0, "call 90"], ["module", "tests/test_lab.py", 10.0, "all its tests"]]
    (tmp_path / "timings.json").write_text(json.dumps(main))
    return tmp_path


def test_offline_results_and_timings_join_the_runs(reports: Path) -> None:
    beside.merge(reports)
    assert sorted(p.name for p in (reports / "allure-results").iterdir()) == [
        "abc-result.json",
        "lab-result.json",
    ]
    table = json.loads((reports / "timings.json").read_text())
    assert [row[1] for row in table] == ["steps/x", "tests/test_b.py", "tests/test_lab.py"]
    assert "tests/test_b.py | 40.0" in (reports / evidence.RUN_PAGES / "timings.md").read_text()


def test_one_line_says_how_the_offline_tests_went_and_names_each_failure(reports: Path) -> None:
    lines = beside.summary(reports, 1).splitlines()
    assert lines[0].endswith("3 passed, 1 failed, 0 errors, 2 skipped")
    assert lines[1:] == ["  FAILED tests.test_b::test_wrong"]


def test_an_offline_session_that_wrote_nothing_is_said_so(tmp_path: Path) -> None:
    assert beside.summary(tmp_path, 4).startswith("offline tests: no result (exit 4)")
    assert beside.main(["beside", str(tmp_path), "4"]) == 4
