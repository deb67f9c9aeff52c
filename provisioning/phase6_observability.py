"""Layer 6, observability.

Prometheus, Loki + Promtail, Grafana dashboards, Alertmanager -> Slack.
lab: real Prometheus, kube-state-metrics and Alertmanager with a Slack-compatible receiver on loopback.
"""

from __future__ import annotations

from boutique_suite.targets import Target
from provisioning.layer import LayerState, not_provisioned

PHASE = 6
NAME = "observability"
NOT_YET = {
    "lab": "Prometheus, kube-state-metrics and Alertmanager are not started in the lab yet (issue #6)",
    "onprem": "the observability stack is not provisioned yet (issue #6)",
}


def needs(target: Target) -> tuple[int, ...]:
    return (2,)


def check(target: Target) -> LayerState:
    raise not_provisioned(PHASE, NAME, NOT_YET[target.kind])


def ensure(target: Target) -> LayerState:
    return check(target)
