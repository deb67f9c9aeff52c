"""Alert rules: the PrometheusRule is well formed, every alert is unit-tested by promtool (firing and
quiet), the tests pass, and they would catch a wrong rule."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from provisioning.observability import HERE, VALUES, rules, tools

ROOT = Path(__file__).resolve().parents[1]
ALERTS = rules.alerts()
ALERT_NAMES = sorted({a.name for a in ALERTS})
# Issue 6 part 1, one alert (at least) per item.
REQUIRED = {
    "crash looping": "BoutiquePodCrashLooping",
    "pod not ready": "BoutiquePodNotReady",
    "replicas mismatch": "BoutiqueDeploymentReplicasMismatch",
    "pod unschedulable": "BoutiquePodUnschedulable",
    "node CPU shortage (requests)": "BoutiqueNodeCPUShortage",
    "node memory shortage (requests)": "BoutiqueNodeMemoryShortage",
    "node not ready": "BoutiqueNodeNotReady",
    "node memory pressure": "BoutiqueNodeMemoryPressure",
    "node disk pressure": "BoutiqueNodeDiskPressure",
    "node high CPU usage": "BoutiqueNodeHighCPUUsage",
    "node high memory usage": "BoutiqueNodeHighMemoryUsage",
    "node disk almost full": "BoutiqueNodeDiskAlmostFull",
    "HPA at max": "BoutiqueHPAAtMaxReplicas",
    "Argo CD out of sync": "BoutiqueArgoCDAppOutOfSync",
    "Argo CD degraded": "BoutiqueArgoCDAppDegraded",
    "ingress 5xx ratio": "BoutiqueIngressHigh5xxRatio",
    "ingress p95 latency": "BoutiqueHighLatency",
    "scrape target down": "BoutiqueTargetDown",
}


def feature_table() -> dict[str, str]:
    """alert -> `for` from the promtool scenario's table in features/slack_alerts.feature."""
    rows = re.findall(
        r"^\s*\|\s*(Boutique\w+)\s*\|.*\|\s*(\w+)\s*\|\s*$",
        (ROOT / "features" / "slack_alerts.feature").read_text(),
        re.MULTILINE,
    )
    return dict(rows)


def test_the_prometheusrule_is_named_and_selected_by_the_operator() -> None:
    [manifest] = rules.manifests()
    assert manifest["metadata"]["name"] == "boutique-alerts"
    assert manifest["metadata"]["namespace"] == "monitoring"
    values = yaml.safe_load((VALUES / "kube-prometheus-stack.yaml").read_text())
    assert values["prometheus"]["prometheusSpec"]["ruleSelectorNilUsesHelmValues"] is False, (
        "Prometheus must select PrometheusRules of every release"
    )


def test_promtool_accepts_the_extracted_rule_files(tmp_path: Path) -> None:
    proc = rules.run_check(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in proc.stdout


@pytest.mark.parametrize("item", sorted(REQUIRED))
def test_issue_scope_has_an_alert(item: str) -> None:
    assert REQUIRED[item] in ALERT_NAMES


@pytest.mark.parametrize(("name", "duration"), sorted(feature_table().items()))
def test_feature_alerts_exist_with_their_for(name: str, duration: str) -> None:
    [alert] = [a for a in ALERTS if a.name == name]
    assert alert.duration == duration


def test_the_feature_table_names_the_five_alerts() -> None:
    assert set(feature_table()) == {
        "BoutiquePodCrashLooping",
        "BoutiqueNodeCPUShortage",
        "BoutiqueNodeMemoryShortage",
        "BoutiquePodUnschedulable",
        "BoutiqueHighLatency",
    }


@pytest.mark.parametrize("alert", ALERTS, ids=lambda a: f"{a.name}-{a.labels.get('severity')}")
def test_every_alert_has_severity_summary_and_runbook_text(alert: rules.Alert) -> None:
    assert alert.labels.get("severity") in {"critical", "warning"}
    assert alert.annotations.get("summary", "").strip()
    assert len(alert.annotations.get("description", "")) > 40, "description carries the first steps"


RUNBOOK_HEADINGS = {
    line.removeprefix("## ").strip().lower()
    for line in (HERE / "runbooks.md").read_text().splitlines()
    if line.startswith("## ")
}


@pytest.mark.parametrize("alert", ALERTS, ids=lambda a: f"{a.name}-{a.labels.get('severity')}")
def test_every_alert_links_its_runbook_section_in_gitops_repo(alert: rules.Alert) -> None:
    url = alert.annotations.get("runbook_url", "")
    page, _, anchor = url.partition("#")
    assert page == "https://gitlab.local/boutique/gitops-repo/-/blob/main/platform/runbooks.md", url
    assert anchor == alert.name.lower() and anchor in RUNBOOK_HEADINGS, f"no section ## {alert.name}"


@pytest.mark.parametrize("name", ALERT_NAMES)
def test_every_alert_has_a_firing_and_a_quiet_unit_test(name: str) -> None:
    cases = [c for c in rules.unit_test_cases() if c["alertname"] == name]
    assert any(c.get("exp_alerts") for c in cases), f"no promtool test shows {name} firing"
    assert any(not c.get("exp_alerts") for c in cases), f"no promtool test shows {name} staying quiet"
    severities = {a.labels["severity"] for a in ALERTS if a.name == name}
    fired = {e["exp_labels"]["severity"] for c in cases for e in c.get("exp_alerts") or []}
    assert severities <= fired, f"{name}: severities {severities - fired} never shown firing"


def test_promtool_unit_tests_pass(tmp_path: Path) -> None:
    proc = rules.run_unit_tests(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("SUCCESS") == len(rules.unit_test_files())


@pytest.mark.parametrize(
    ("alert", "good", "wrong"),
    [
        ("BoutiqueNodeCPUShortage", "> 0.9\n", "> 0.97\n"),
        ("BoutiquePodCrashLooping", "[5m]) > 2)", "[5m]) > 5)"),
        ("BoutiqueHighLatency", "histogram_quantile(0.95,", "histogram_quantile(0.5,"),
        (
            "BoutiquePodNotReady",
            'unless on (namespace, pod) (kube_pod_status_phase{phase="Succeeded"} == 1)',
            "",
        ),
    ],
)
def test_the_unit_tests_catch_a_wrong_rule(tmp_path: Path, alert: str, good: str, wrong: str) -> None:
    source = next(rules.RULES_DIR.glob("*.yaml")).read_text()
    planted = tmp_path / "planted-rules"
    planted.mkdir()
    assert source.count(good) >= 1, "the planted change no longer applies to the rule file"
    (planted / "boutique-alerts.yaml").write_text(source.replace(good, wrong, 1))
    proc = rules.run_unit_tests(tmp_path / "run", rules_dir=planted)
    assert proc.returncode != 0, "promtool's tests passed against a wrong rule"
    assert f"alertname: {alert}" in proc.stdout + proc.stderr


def test_a_missing_promtool_fails_with_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(tools.ToolMissingError, match="apt-get install -y prometheus prometheus-alertmanager"):
        rules.run_check(tmp_path)
