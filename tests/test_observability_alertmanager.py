"""Alertmanager: the Slack credentials stay out of git, the config is valid in each mode, every routing
case resolves to its receiver (amtool), grouping and inhibition behave, and the Slack text names the alert."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from provisioning.observability import HERE, VALUES, alertmanager, rules, tools

CONFIG = alertmanager.load()
CASES = alertmanager.route_cases()
SECRET_PATTERNS = re.compile(r"hooks\.slack\.com/services/|xox[abposr]-[0-9A-Za-z]")


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return alertmanager.write(tmp_path_factory.mktemp("am"), webhook_url_file="/nonexistent/webhook-url")


def test_no_slack_secret_is_in_git() -> None:
    for path in HERE.rglob("*"):
        if path.is_file() and path.suffix in {".yaml", ".yml", ".json", ".tmpl", ".py", ".md"}:
            assert not SECRET_PATTERNS.search(path.read_text()), f"{path} holds a Slack URL or token"


def test_slack_receivers_read_the_url_from_the_mounted_secret() -> None:
    values = yaml.safe_load((VALUES / "kube-prometheus-stack.yaml").read_text())
    [secret] = values["alertmanager"]["alertmanagerSpec"]["secrets"]
    for sc in alertmanager.slack_configs(CONFIG):
        assert "api_url" not in sc
        assert sc["api_url_file"].startswith(f"/etc/alertmanager/secrets/{secret}/")
        assert sc["channel"] == "#boutique-alerts"
        assert sc["send_resolved"] is True
    assert {r["name"] for r in CONFIG["receivers"]} >= {"slack-boutique", "slack-platform"}


def test_amtool_accepts_the_webhook_config(config_file: Path) -> None:
    proc = alertmanager.check_config(config_file)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_amtool_accepts_the_bot_token_config(tmp_path: Path) -> None:
    config_file = alertmanager.write(
        tmp_path, bot_token_file="/nonexistent/bot-token", api_url="http://127.0.0.1:9/api/chat.postMessage"
    )
    proc = alertmanager.check_config(config_file)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for sc in alertmanager.slack_configs(yaml.safe_load(config_file.read_text())):
        assert sc["http_config"]["authorization"]["credentials_file"] == "/nonexistent/bot-token"
        assert "api_url_file" not in sc


@pytest.mark.parametrize("case", CASES, ids=[c.why for c in CASES])
def test_route(config_file: Path, case: alertmanager.RouteCase) -> None:
    proc = alertmanager.check_route(config_file, case)
    assert proc.returncode == 0, f"{case.labels} expected {case.receivers}: {proc.stdout}{proc.stderr}"


def test_a_wrong_route_expectation_fails(config_file: Path) -> None:
    case = alertmanager.RouteCase("wrong", {"alertname": "X", "severity": "info"}, ["slack-boutique"])
    assert alertmanager.check_route(config_file, case).returncode != 0


def test_route_cases_cover_both_severities_and_every_receiver() -> None:
    severities = {c.labels.get("severity") for c in CASES if c.receivers == ["slack-boutique"]}
    assert {"critical", "warning"} <= severities
    assert {r for c in CASES for r in c.receivers} == {r["name"] for r in CONFIG["receivers"]}


def test_grouping_and_timings() -> None:
    route = CONFIG["route"]
    assert route["group_by"] == ["alertname", "namespace", "node"]
    critical = [r for r in route["routes"] if r.get("matchers") == ['severity="critical"']]
    assert critical and all(r["repeat_interval"] < route["repeat_interval"] for r in critical)


def pod_alert(name: str, node: str) -> dict[str, str]:
    return {"alertname": name, "severity": "warning", "namespace": "boutique-dev", "pod": "p", "node": node}


NODE_DOWN = {"alertname": "BoutiqueNodeNotReady", "severity": "critical", "node": "k8s-worker2"}


@pytest.mark.parametrize("name", ["BoutiquePodCrashLooping", "BoutiquePodNotReady"])
def test_a_down_node_silences_the_pod_alerts_on_it(name: str) -> None:
    assert alertmanager.inhibits(CONFIG, NODE_DOWN, pod_alert(name, "k8s-worker2"))
    assert not alertmanager.inhibits(CONFIG, NODE_DOWN, pod_alert(name, "k8s-worker1"))


def test_a_down_node_does_not_silence_other_nodes_or_node_alerts() -> None:
    shortage = {"alertname": "BoutiqueNodeCPUShortage", "severity": "warning", "node": "k8s-worker1"}
    assert not alertmanager.inhibits(CONFIG, NODE_DOWN, shortage)


def test_critical_silences_the_warning_of_the_same_alert_and_node() -> None:
    disk = {"alertname": "BoutiqueNodeDiskAlmostFull", "node": "k8s-worker2", "mountpoint": "/"}
    critical, warning = {**disk, "severity": "critical"}, {**disk, "severity": "warning"}
    assert alertmanager.inhibits(CONFIG, critical, warning)
    assert not alertmanager.inhibits(CONFIG, critical, {**warning, "node": "k8s-worker1"})
    assert not alertmanager.inhibits(CONFIG, warning, critical)


def test_every_inhibitable_pod_alert_carries_the_node_label() -> None:
    """The node-down inhibition only works for alerts whose labels include node: promtool's tests show it."""
    [rule] = [r for r in CONFIG["inhibit_rules"] if r["equal"] == ["node"]]
    targets = {
        a.name
        for a in rules.alerts()
        if all(alertmanager.matches(m, {"alertname": a.name}) for m in rule["target_matchers"])
    }
    assert targets >= {"BoutiquePodCrashLooping", "BoutiquePodNotReady"}
    for path in rules.unit_test_files():
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                for exp in case.get("exp_alerts") or []:
                    if case["alertname"] in targets and case["alertname"] != "BoutiquePodUnschedulable":
                        assert exp["exp_labels"].get("node"), f"{case['alertname']} fires without a node"


def test_the_slack_message_names_alert_pod_and_run(tmp_path: Path) -> None:
    data = {
        "receiver": "slack-boutique",
        "status": "firing",
        "alerts": [
            {
                "status": "firing",
                "labels": {
                    "alertname": "BoutiquePodCrashLooping",
                    "severity": "warning",
                    "pod": "crash-probe",
                    "run_id": "r-42",
                },
                "annotations": {
                    "summary": "Container main of pod boutique-dev/crash-probe restarted 5 times",
                    "description": "Crash loop.",
                },
                "startsAt": "2026-01-01T00:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "",
                "fingerprint": "1",
            }
        ],
        "groupLabels": {"alertname": "BoutiquePodCrashLooping"},
        "commonLabels": {"alertname": "BoutiquePodCrashLooping", "severity": "warning"},
        "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:9093",
    }
    (tmp_path / "data.json").write_text(json.dumps(data))
    proc = tools.run(
        "amtool",
        "template",
        "render",
        f"--template.glob={alertmanager.TEMPLATE}",
        f"--template.data={tmp_path / 'data.json'}",
        '--template.text={{ template "boutique.slack.title" . }}|{{ template "boutique.slack.text" . }}',
    )
    assert proc.returncode == 0, proc.stderr
    title, text = proc.stdout.split("|", 1)
    assert title.strip() == "[FIRING:1] BoutiquePodCrashLooping"
    assert "restarted 5 times" in text
    assert "pod=crash-probe" in text and "run_id=r-42" in text


def test_helm_values_carry_the_config_and_template() -> None:
    values = alertmanager.helm_values()["alertmanager"]
    assert values["config"] == CONFIG
    assert "boutique.slack.text" in values["templateFiles"]["slack.tmpl"]
    assert CONFIG["templates"] == ["/etc/alertmanager/config/*.tmpl"]
