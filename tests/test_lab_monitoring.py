"""The lab's monitoring (layer 6): real kube-state-metrics, Prometheus and Alertmanager and the Slack
receiver start once, a second ensure changes nothing, configs hold no secret, and problems read clearly."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from boutique_suite.clients import alerting, slack
from boutique_suite.run import targets, waits
from provisioning import phase6_observability
from provisioning.lab import manager, processes
from provisioning.lab.services import monitoring

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def running() -> monitoring.Monitoring:
    manager.up()
    return monitoring.ensure()


def test_second_ensure_starts_and_reloads_nothing(running: monitoring.Monitoring) -> None:
    again = monitoring.ensure()
    assert again.changed == []
    assert again.pids == {n: processes.info(n).pid for n in monitoring.COMPONENTS}
    assert all(processes.info(n).alive for n in monitoring.COMPONENTS)


def test_a_changed_config_is_reloaded_not_restarted(running: monitoring.Monitoring) -> None:
    config = monitoring.HOME / "prometheus" / "prometheus.yml"
    pid = processes.info("prometheus").pid
    original = config.read_text()
    config.write_text(original.replace("scrape_interval: 5s", "scrape_interval: 6s"))
    try:
        assert monitoring.ensure().changed == ["prometheus (reloaded)"]
        assert processes.info("prometheus").pid == pid
        assert config.read_text() == original
    finally:
        config.write_text(original)


def test_layer_6_ensure_on_the_lab_is_ready_and_idempotent(running: monitoring.Monitoring) -> None:
    state = phase6_observability.ensure(targets.load("lab"))
    assert state.ready and not state.changed, state.detail
    assert set(state.components) == set(monitoring.COMPONENTS)


def test_kube_state_metrics_is_scraped(running: monitoring.Monitoring) -> None:
    prom = alerting.Prometheus(running.prometheus_url)
    waits.until(alerting.target_up(prom, "kube-state-metrics"), timeout=60, interval=1, what="ksm up")
    nodes = {r["metric"]["node"] for r in prom.query("kube_node_info")}
    assert nodes == {"k8s-master", "k8s-worker1", "k8s-worker2"}


def test_prometheus_loaded_every_platform_alert(running: monitoring.Monitoring) -> None:
    from provisioning.observability import rules

    loaded = alerting.Prometheus(running.prometheus_url).rule_names()
    assert {a.name for a in rules.alerts()} <= loaded


def test_no_secret_in_any_written_config(running: monitoring.Monitoring) -> None:
    token = monitoring.TOKEN_FILE.read_text().strip()
    assert monitoring.TOKEN_FILE.stat().st_mode & 0o077 == 0
    for path in monitoring.HOME.rglob("*.yml"):
        assert token not in path.read_text(), f"{path} holds the bot token"
    am = yaml.safe_load((monitoring.HOME / "alertmanager" / "alertmanager.yml").read_text())
    [auth] = {
        str(sc["http_config"]["authorization"]) for r in am["receivers"] for sc in r.get("slack_configs", [])
    }
    assert str(monitoring.TOKEN_FILE) in auth
    for log in ("alertmanager", "slack-receiver", "prometheus"):
        assert token not in processes.log_path(log).read_text(errors="replace")


def test_a_test_alert_travels_to_the_channel(running: monitoring.Monitoring) -> None:
    lab = targets.load("lab")
    am = alerting.Alertmanager(running.alertmanager_url)
    since, marker = time.time(), f"probe-{time.time_ns()}"
    labels = alerting.post_test_alert(am, "SuiteSelfTest", marker, "boutique-dev")
    try:
        found = slack.wait_for_message(slack.Channel.open(lab), since, ("FIRING", marker), 60)
        assert "SuiteSelfTest" in slack.message_text(found["message"])
    finally:
        am.post(labels, {}, ends_in=0)
    slack.wait_for_message(slack.Channel.open(lab), since, ("RESOLVED", marker), 60)


def test_a_wrong_bot_token_reads_clearly(tmp_path: Path, running: monitoring.Monitoring) -> None:
    wrong = tmp_path / "wrong.token"
    wrong.write_text("not-the-lab-token\n")
    lab = targets.load("lab")
    bad = lab.model_copy(update={"slack": lab.slack.model_copy(update={"token_file": str(wrong)})})
    with pytest.raises(slack.SlackUnavailable, match="invalid_auth: the bot token is wrong"):
        slack.Channel.open(bad)


def test_missing_prometheus_binary_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(monitoring, "PROMETHEUS_BIN", "/nonexistent/prometheus")
    with pytest.raises(
        monitoring.MonitoringError, match=r"apt-get install prometheus \(./run setup does it\)"
    ):
        monitoring.ensure()


def test_unreachable_prometheus_reads_clearly() -> None:
    with pytest.raises(
        alerting.MonitoringUnavailable, match=r"cannot reach Prometheus at http://127\.0\.0\.1:9"
    ):
        alerting.Prometheus("http://127.0.0.1:9").targets()
