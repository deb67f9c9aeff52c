"""The suite's hooks derive each scenario's label while pytest-bdd runs it: a planted feature runs in a
throwaway project with the suite's conftest hooks and the lab target file, no cluster."""

from __future__ import annotations

import json

import pytest

from boutique_suite.run import targets
from boutique_suite.run.touches import Touches
from tests import planted_suite

LAB = targets.load("lab")
pytest_plugins = ["pytester"]

CONFTEST = (
    planted_suite.conftest(["pytest_bdd_step_func_lookup_error"])
    + """

def pytest_sessionfinish(session):
    suite.evidence.REPORTS = Path("reports")
    suite.evidence.write_summary(session.config)
"""
)

FEATURE = """
Feature: planted
  Scenario: nine real steps and one on the local Slack receiver
    Given the control plane is read 9 times
    Then a message is read from the Slack channel

  Scenario: a Dockerfile lint
    Then a Dockerfile is linted

  Scenario: nothing is checked
    Then nothing is checked

  Scenario: a job runs on GitLab
    When a job is run by GitLab's runner
    Then GitLab lists it

  Scenario: a step has no binding
    Then a step nobody bound

  Scenario: a fault before a step that has no binding
    When a fault is injected
    Then a step nobody bound either

  Scenario: a fault before a step the target cannot make real
    When a fault is injected
    Then GitLab lists it

  Scenario: a step downgrades itself
    Then a step says it ran on simulation

  @chaos
  Scenario: a recovery is timed against its budget
    Then the control plane recovers within 10 seconds
"""

STEPS = """
from pytest_bdd import given, parsers, scenarios, then, when

from boutique_suite.run.touches import Touches, touches

scenarios("planted.feature")


@given(parsers.parse("the control plane is read {n:d} times"))
@touches(Touches.control_plane)
def control_plane(n):
    pass


@then("a message is read from the Slack channel")
@touches(Touches.slack)
def slack_message():
    pass


@then("a Dockerfile is linted")
@touches(Touches.file_only)
def lint():
    pass


@then("nothing is checked")
@touches()
def nothing():
    pass


@when("a job is run by GitLab's runner")
@touches(Touches.gitlab)
def push():
    raise AssertionError("must not run on a target without GitLab")


@then(parsers.parse("the control plane recovers within {seconds:d} seconds"))
@touches(Touches.control_plane)
def recovers(execution, seconds):
    execution.timing("recovery_seconds", 2.5, budget=seconds)


@then("GitLab lists it")
@touches(Touches.gitlab)
def listed():
    pass


@when("a fault is injected")
@touches(Touches.control_plane)
def inject():
    raise AssertionError("must not run: a later step of the scenario cannot run on this target")


@then("a step says it ran on simulation")
@touches(Touches.control_plane)
def downgrade(execution):
    execution.simulated("planted: usage is simulated")
"""


@pytest.fixture
def summary(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> dict[str, dict]:
    result = planted_suite.run(pytester, monkeypatch, CONFTEST, FEATURE, STEPS, "allure-results")
    result.assert_outcomes(passed=5, skipped=4)
    doc = json.loads((pytester.path / "reports" / "summary.json").read_text())
    return {entry["scenario"]: entry for entry in doc["scenarios"].values()}


def test_the_planted_scenarios_get_the_labels_their_steps_earn(summary: dict[str, dict]) -> None:
    node = summary["nine real steps and one on the local Slack receiver"]
    assert (node["outcome"], node["execution"]) == ("passed", "simulated")
    assert node["label"].startswith("simulated (slack: a local Slack-compatible receiver")
    assert summary["a Dockerfile lint"]["label"] == "static"
    assert summary["nothing is checked"]["label"] == "simulated (no step checked anything)"
    assert summary["a step downgrades itself"]["label"] == "simulated (planted: usage is simulated)"


def test_a_timed_recovery_is_recorded_with_its_budget_and_the_scenarios_tags(
    summary: dict[str, dict],
) -> None:
    timed = summary["a recovery is timed against its budget"]
    assert timed["tags"] == ["chaos"]
    assert (timed["timings_seconds"], timed["budgets_seconds"]) == (
        {"recovery_seconds": 2.5},
        {"recovery_seconds": 10},
    )


def test_a_step_the_target_cannot_make_real_skips_with_the_targets_reason(summary: dict[str, dict]) -> None:
    pushed = summary["a job runs on GitLab"]
    assert (pushed["outcome"], pushed["reason"]) == ("skipped", LAB.provision(Touches.gitlab).why.strip())
    unbound = summary["a step has no binding"]
    assert unbound["outcome"] == "skipped"
    assert unbound["reason"] == "step not implemented yet: Then a step nobody bound"


def test_a_scenario_with_an_unbound_step_skips_before_its_first_step(summary: dict[str, dict]) -> None:
    node = summary["a fault before a step that has no binding"]
    assert (node["outcome"], node["reason"]) == (
        "skipped",
        "step not implemented yet: Then a step nobody bound either",
    )


def test_a_scenario_with_a_step_the_target_lacks_skips_before_its_first_step(
    summary: dict[str, dict],
) -> None:
    node = summary["a fault before a step the target cannot make real"]
    assert (node["outcome"], node["reason"]) == ("skipped", LAB.provision(Touches.gitlab).why.strip())


def test_allure_shows_the_derived_label_and_the_reasons(
    summary: dict[str, dict], pytester: pytest.Pytester
) -> None:
    results = [json.loads(p.read_text()) for p in (pytester.path / "allure-results").glob("*-result.json")]
    labels = {r["name"]: {lab["name"]: lab["value"] for lab in r["labels"]} for r in results}
    params = {r["name"]: {p["name"]: p["value"] for p in r.get("parameters", [])} for r in results}
    assert labels["nine real steps and one on the local Slack receiver"]["execution"] == "simulated"
    assert (
        params["nine real steps and one on the local Slack receiver"]["execution"]
        .strip("'")
        .startswith("simulated (slack: a local Slack")
    )
    assert labels["a Dockerfile lint"]["execution"] == "static"
    assert labels["a job runs on GitLab"]["execution"] == "skipped"
