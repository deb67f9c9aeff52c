"""Absent is a skip, broken is a failure: a layer the target does not provide skips its scenarios with the
reason; a layer the target has that is unhealthy fails every scenario that needs it, names the cause, and
attaches its evidence once per run. No cluster: the layers are planted."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

import provisioning
from boutique_suite.reporting import evidence, nightly
from boutique_suite.run import targets
from provisioning import LayerRunner
from provisioning.layer import LayerBroken, LayerState, LayerUnavailable, broken, not_provisioned
from tests import planted_suite

LAB = targets.load("lab")
pytest_plugins = ["pytester"]


def planted_layer(phase: int, needs: tuple[int, ...], ensure: object) -> SimpleNamespace:
    def run(target: targets.Target) -> LayerState:
        if isinstance(ensure, Exception):
            raise ensure
        return LayerState(phase, f"planted {phase}", bool(ensure), "ready" if ensure else "half up")

    return SimpleNamespace(NAME=f"planted {phase}", needs=lambda target: needs, ensure=run)


@pytest.fixture
def plant(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    def planted(*layers: SimpleNamespace) -> LayerRunner:
        monkeypatch.setattr(provisioning, "LAYERS", layers)
        return LayerRunner(LAB)

    return planted


def test_a_broken_layer_breaks_the_layers_that_need_it_with_its_own_cause_and_evidence(plant) -> None:  # type: ignore[no-untyped-def]
    cause = broken(1, "planted 1", "Application Degraded", {"pods": "frontend: readiness probe failed"})
    runner = plant(planted_layer(0, (), True), planted_layer(1, (0,), cause), planted_layer(2, (1,), True))
    with pytest.raises(LayerBroken) as caught:
        runner.require(2)
    assert str(caught.value) == (
        "layer 1 (planted 1) broken: Application Degraded (needed by layer 2, planted 2)"
    )
    assert caught.value.evidence == {"pods": "frontend: readiness probe failed"}


def test_an_absent_layer_stays_absent_for_the_layers_above(plant) -> None:  # type: ignore[no-untyped-def]
    runner = plant(
        planted_layer(0, (), not_provisioned(0, "planted 0", "no hosts")), planted_layer(1, (0,), True)
    )
    with pytest.raises(LayerUnavailable) as caught:
        runner.require(1)
    assert not isinstance(caught.value, LayerBroken)
    assert str(caught.value) == "layer 0 (planted 0) not provisioned: no hosts (needed by layer 1, planted 1)"


def test_an_ensure_that_returns_a_state_that_is_not_ready_is_broken(plant) -> None:  # type: ignore[no-untyped-def]
    runner = plant(planted_layer(0, (), False))
    with pytest.raises(LayerBroken, match=r"^layer 0 \(planted 0\) broken: half up$"):
        runner.require(0)


CONFTEST = (
    planted_suite.conftest(["pytest_sessionfinish"])
    + """
from provisioning.layer import LayerState, broken, not_provisioned  # after the suite's conftest: Locust first


PULL = (
    'Failed to pull image "registry.local/boutique/frontend:1": tls: failed to verify certificate: '
    "x509: certificate signed by unknown authority"
)


class PlantedLayers:
    def require(self, phase):
        if phase == 1:
            return LayerState(1, "platform", True, "ready")
        if phase == 4:
            evidence = {"pod frontend": "Readiness probe failed: 404\\n" + PULL}
            raise broken(4, "GitOps", "online-boutique-dev: health Degraded", evidence)
        raise not_provisioned(phase, "planted", "the target file leaves it out")


@pytest.fixture(scope="session")
def layers():
    return PlantedLayers()
"""
)

FEATURE = """
Feature: planted
  @phase4
  Scenario: self-heal on a broken Boutique
    Then nothing is checked

  @phase4
  Scenario: a rollout on a broken Boutique
    Then nothing is checked

  @phase6
  Scenario: an alert on a target without monitoring
    Then nothing is checked

  @phase1
  Scenario: a healthy layer
    Then nothing is checked
"""

STEPS = """
from pytest_bdd import scenarios, then

from boutique_suite.run.touches import touches

scenarios("planted.feature")


@then("nothing is checked")
@touches()
def nothing():
    pass
"""


@pytest.fixture
def planted_run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> tuple[pytest.RunResult, Path]:
    monkeypatch.setenv("BOUTIQUE_REPORTS", str(pytester.path / "reports"))
    result = planted_suite.run(pytester, monkeypatch, CONFTEST, FEATURE, STEPS, "reports/allure-results")
    return result, pytester.path / "reports"


def test_a_broken_layer_fails_its_scenarios_and_an_absent_one_skips(planted_run) -> None:  # type: ignore[no-untyped-def]
    result, reports = planted_run
    result.assert_outcomes(passed=1, failed=2, skipped=1)
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*layer 4 (GitOps) broken: online-boutique-dev: health Degraded*"])
    doc = json.loads((reports / "summary.json").read_text())
    by_name = {e["scenario"]: e for e in doc["scenarios"].values()}
    for name in ("self-heal on a broken Boutique", "a rollout on a broken Boutique"):
        assert by_name[name]["outcome"] == "failed"
        assert by_name[name]["execution"] == evidence.BROKEN_PLATFORM
    absent = by_name["an alert on a target without monitoring"]
    assert absent["outcome"] == "skipped" and "leaves it out" in absent["reason"]
    assert by_name["a healthy layer"]["outcome"] == "passed"
    [broken_layer] = doc["broken"]
    assert broken_layer["cause"] == "layer 4 (GitOps) broken: online-boutique-dev: health Degraded"
    assert broken_layer["scenarios"] == ["self-heal on a broken Boutique", "a rollout on a broken Boutique"]
    assert broken_layer["evidence"] == ["pod frontend"]
    trust = "Diagnosis: the node does not trust the registry's certificate"
    assert broken_layer["diagnosis"].startswith(trust)
    first_page = json.loads((reports / "overview.json").read_text())
    assert first_page["phase 4"].endswith("0 static · 0 skipped · 0 failed · 2 broken platform")
    assert first_page["phase 6"].startswith("0 real · 0 simulated · 0 static · 1 skipped")
    assert first_page["platform"] == f"broken: {broken_layer['cause']}"
    assert first_page["scenarios"].endswith("· 0 failed · 2 broken platform")
    message = nightly.message(doc, "r")
    assert ":red_circle: platform broken" in message
    assert "the node does not trust the registry's certificate → fix: install the platform CA" in message


def test_the_evidence_is_attached_once_per_run_and_on_the_broken_platform_page(planted_run) -> None:  # type: ignore[no-untyped-def]
    _, reports = planted_run
    attachments = [
        a
        for path in (reports / "allure-results").glob("*-result.json")
        for a in json.loads(path.read_text()).get("attachments", [])
    ]
    assert [a["name"] for a in attachments].count("pod frontend") == 1
    assert "broken-platform.md" not in [a["name"] for a in attachments]  # a page of the run, not a result
    text = (reports / "run-pages" / "broken-platform.md").read_text()
    assert "## layer 4 (GitOps) broken" in text and "Readiness probe failed: 404" in text
    assert "### Diagnosis" in text and "Prevention: the containerd role on every node" in text
    assert [a["name"] for a in attachments].count("diagnosis") == 1
