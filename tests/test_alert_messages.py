"""alert_messages: every rule's firing example, posted in inhibition waves and read back from the channel."""

from __future__ import annotations

import time
from typing import Any

import pytest
import yaml

from boutique_suite.clients import slack
from boutique_suite.expectations import alert_messages as am_msgs
from provisioning.observability import rules

CONFIG = yaml.safe_load((rules.HERE / "alertmanager" / "alertmanager.yaml").read_text())


def test_every_alert_rule_and_severity_has_one_example_with_its_annotations() -> None:
    examples = am_msgs.examples()
    rule_keys = {(a.name, a.labels["severity"]) for a in rules.alerts()}
    assert {(e.labels["alertname"], e.labels["severity"]) for e in examples} == rule_keys
    assert all(e.annotations.get("summary") and e.annotations.get("runbook_url") for e in examples)


@pytest.mark.parametrize(
    ("matcher", "labels", "hit"),
    [
        ('alertname="A"', {"alertname": "A"}, True),
        ('alertname="A"', {"alertname": "AB"}, False),
        ('alertname=~"Boutique.*"', {"alertname": "BoutiquePod"}, True),
        ('alertname=~"Pod"', {"alertname": "BoutiquePod"}, False),  # anchored, as in Alertmanager
        ('severity!="info"', {"severity": "warning"}, True),
        ('severity!~"info|none"', {"severity": "info"}, False),
        ('node=""', {}, True),  # a missing label is the empty string
    ],
)
def test_matchers_read_as_alertmanager_reads_them(matcher: str, labels: dict[str, str], hit: bool) -> None:
    assert am_msgs.matches(matcher, labels) is hit


def test_a_matcher_that_cannot_be_read_is_named() -> None:
    with pytest.raises(ValueError, match="alertname~A"):
        am_msgs.matches("alertname~A", {})


def test_the_inhibiting_examples_come_last_and_nothing_is_left_out() -> None:
    examples = am_msgs.examples()
    first, last = am_msgs.waves(examples, CONFIG["inhibit_rules"])
    inhibiting = {"BoutiqueNodeNotReady (critical)", "BoutiqueNodeDiskAlmostFull (critical)"}
    assert inhibiting <= {e.name for e in last}
    assert all(e.labels["severity"] == "warning" for e in first)
    assert len(first) + len(last) == len(examples)


class FakeAlertmanager:
    """Delivers each firing alert to the channel at once, unless a firing source inhibits it (rule 2 of the
    platform's config: a critical alert silences the warning of the same alertname)."""

    def __init__(self, channel: FakeChannel, deliver: bool = True) -> None:
        self.channel, self.deliver, self.firing = channel, deliver, []  # type: ignore[var-annotated]

    def config(self) -> dict[str, Any]:
        return CONFIG

    def post(self, labels: dict[str, str], annotations: dict[str, str], ends_in: float = 300) -> None:
        if ends_in <= 0:
            self.firing = [f for f in self.firing if f != labels]
            return
        self.firing.append(labels)
        inhibited = labels["severity"] == "warning" and any(
            f["alertname"] == labels["alertname"] and f["severity"] == "critical" for f in self.firing
        )
        if self.deliver and not inhibited:
            pairs = " ".join(f"{k}={v}" for k, v in sorted(labels.items()))
            summary, runbook = annotations["summary"], annotations["runbook_url"]
            text = f"*{labels['severity']}* {summary}\nrunbook: {runbook}\n{pairs}"
            self.channel.sent.append({"ts": f"{time.time():.6f}", "text": text})


class FakeChannel:
    name = "boutique-alerts"

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def messages_since(self, oldest: float) -> list[dict[str, Any]]:
        return [m for m in reversed(self.sent) if float(m["ts"]) >= oldest]


def test_every_example_is_read_back_and_resolved_on_the_way_out() -> None:
    channel = FakeChannel()
    am = FakeAlertmanager(channel)
    posted = am_msgs.Posted(am, "run-1")  # type: ignore[arg-type]
    delivery = posted.in_waves(channel, 5)  # type: ignore[arg-type]
    messages = delivery.expect_all_rendered("#boutique-alerts")
    assert len(messages) == len(am_msgs.examples())
    assert "run_id=run-1" in messages["BoutiqueNodeDiskAlmostFull (warning)"]
    posted.resolve()
    assert am.firing == []


def test_messages_that_never_arrive_are_all_named() -> None:
    channel = FakeChannel()
    delivery = am_msgs.Posted(FakeAlertmanager(channel, deliver=False), "run-2").in_waves(channel, 0.2)  # type: ignore[arg-type]
    with pytest.raises(AssertionError, match=r"BoutiqueTargetDown \(warning\).*run_id=run-2"):
        delivery.expect_all_rendered("#boutique-alerts")
    assert len(delivery.missing) == len(am_msgs.examples())


def test_posting_the_critical_first_would_silence_the_warning() -> None:
    """Why the waves exist: the fake, like Alertmanager, drops a warning its critical inhibits."""
    channel = FakeChannel()
    disk = [e for e in am_msgs.examples() if e.labels["alertname"] == "BoutiqueNodeDiskAlmostFull"]
    crit_first = sorted(disk, key=lambda e: e.labels["severity"])
    delivery = am_msgs.Posted(FakeAlertmanager(channel), "run-3").in_waves(channel, 0.2, [])  # nothing
    assert not delivery.messages
    am = FakeAlertmanager(channel)
    for example in crit_first:
        am.post({**example.labels, "run_id": "run-3"}, example.annotations)
    assert not slack.has_message(channel, 0, "severity=warning", "run_id=run-3")().value  # type: ignore[arg-type]
