"""What each alert rule says in Slack: every rule's firing example from its promtool unit test (the labels and
annotations Prometheus would send) is posted to the running Alertmanager with the run id, and the message
Alertmanager rendered from the platform's template is read back from the channel."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from boutique_suite.clients import slack
from boutique_suite.clients.alerting import Alertmanager
from boutique_suite.reporting import evidence
from boutique_suite.run import waits
from provisioning.observability import rules

MATCHER = re.compile(r'^\s*(?P<label>\w+)\s*(?P<op>=~|!~|!=|=)\s*"(?P<value>.*)"\s*$')


@dataclass(frozen=True)
class Example:
    """One alert as a rule's unit test shows it firing."""

    labels: dict[str, str]
    annotations: dict[str, str]

    @property
    def name(self) -> str:
        return f"{self.labels['alertname']} ({self.labels.get('severity', 'no severity')})"

    def needles(self, run_id: str) -> tuple[str, ...]:
        """What the template must put in the message: the alert's labels, summary and runbook link."""
        wanted = [f"alertname={self.labels['alertname']}", f"severity={self.labels.get('severity')}"]
        wanted += [
            f"run_id={run_id}",
            self.annotations.get("summary", ""),
            self.annotations.get("runbook_url", ""),
        ]
        return tuple(n for n in wanted if n)


def examples(cases: list[dict[str, Any]] | None = None) -> list[Example]:
    """The first firing example of each alert name and severity in the promtool unit tests."""
    found: dict[tuple[str, str], Example] = {}
    for case in rules.unit_test_cases() if cases is None else cases:
        for alert in case.get("exp_alerts") or []:
            labels = {"alertname": case["alertname"], **alert.get("exp_labels", {})}
            key = (labels["alertname"], labels.get("severity", ""))
            found.setdefault(key, Example(labels, dict(alert.get("exp_annotations", {}))))
    return sorted(found.values(), key=lambda e: e.name)


def matches(matcher: str, labels: dict[str, str]) -> bool:
    """One Alertmanager matcher (``label="v"``, ``=~``, ``!=``, ``!~``; regexes anchored) against labels."""
    parsed = MATCHER.match(matcher)
    if parsed is None:
        raise ValueError(f"cannot read the Alertmanager matcher {matcher!r}")
    value, op = labels.get(parsed["label"], ""), parsed["op"]
    if op in ("=~", "!~"):
        hit = re.fullmatch(parsed["value"], value) is not None
        return hit if op == "=~" else not hit
    return (value == parsed["value"]) == (op == "=")


def waves(posted: list[Example], inhibit_rules: list[dict[str, Any]]) -> list[list[Example]]:
    """Examples no inhibition rule names as a source first, then the sources: posted together, a source
    (a node down, a critical alert) would silence the messages this scenario wants to read."""
    sources = [
        e
        for e in posted
        if any(all(matches(m, e.labels) for m in r.get("source_matchers", [])) for r in inhibit_rules)
    ]
    return [w for w in ([e for e in posted if e not in sources], sources) if w]


@dataclass
class Delivery:
    """What the channel showed for each posted example: its message, or the needles no message carried."""

    channel: str
    messages: dict[str, str] = field(default_factory=dict)
    missing: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def expect_all_rendered(self, channel: str) -> dict[str, str]:
        assert channel.lstrip("#") == self.channel, (
            f"the examples were read from #{self.channel}, not {channel}"
        )
        assert self.messages or self.missing, "no example was posted"
        assert not self.missing, f"no Slack message in #{self.channel} carried: " + "; ".join(
            f"{name}: {', '.join(needles)}" for name, needles in self.missing.items()
        )
        return self.messages

    def attach(self) -> None:
        for name, text in sorted(self.messages.items()):
            evidence.attach_text(f"Slack message of {name}", text)


@dataclass
class Posted:
    """The examples posted to one Alertmanager with the run id, so that every one can be resolved."""

    am: Alertmanager
    run_id: str
    labels: list[dict[str, str]] = field(default_factory=list)

    def in_waves(
        self, channel: slack.Channel, timeout: float, posted: list[Example] | None = None
    ) -> Delivery:
        """Post each wave and read its messages (``timeout`` seconds at most) before the next wave."""
        delivery = Delivery(channel.name)
        inhibitions = self.am.config().get("inhibit_rules") or []
        for wave in waves(examples() if posted is None else posted, inhibitions):
            since, deadline = time.time(), time.monotonic() + timeout
            for example in wave:
                self.labels.append({**example.labels, "run_id": self.run_id})
                self.am.post(self.labels[-1], example.annotations)
            for example in wave:
                needles = example.needles(self.run_id)
                left = max(deadline - time.monotonic(), 0)  # past the deadline: one last look
                try:
                    arrived = slack.has_message(channel, since, *needles)
                    found = waits.until(arrived, timeout=left, interval=2, what=example.name)
                except waits.WaitTimeout:
                    delivery.missing[example.name] = needles
                    continue
                delivery.messages[example.name] = slack.message_text(found.check.value)  # type: ignore[arg-type]
        return delivery

    def resolve(self) -> None:
        for labels in self.labels:
            self.am.post(labels, {}, ends_in=0)
