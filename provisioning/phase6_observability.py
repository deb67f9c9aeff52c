"""Layer 6, observability.

Prometheus, Loki + Promtail, Grafana dashboards, Alertmanager -> Slack. lab: real kube-state-metrics,
Prometheus and Alertmanager as local processes, running the platform's own rules and Alertmanager config, and
a Slack-compatible receiver on loopback (provisioning/lab/services/monitoring.py). There is no Prometheus
Operator, node-exporter, Grafana or Loki in the lab. onprem: kube-prometheus-stack and Loki come through the
app-of-apps (layer 3); this layer checks that the target's Prometheus and Alertmanager answer."""

from __future__ import annotations

import requests

from boutique_suite.context.sites import through_site
from boutique_suite.run.targets import Target
from provisioning.layer import LayerState, LayerUnavailable, broken

PHASE = 6
NAME = "observability"
NEEDS = (2,)


needs, check, ensure = through_site(PHASE)


def _ready(url: str) -> str | None:
    """None when ``url``/-/ready answers 200, else why not."""
    try:
        resp = requests.get(f"{url}/-/ready", timeout=5)
    except requests.RequestException as exc:
        return f"{url} unreachable: {exc.__class__.__name__}"
    return None if resp.status_code == 200 else f"{url}/-/ready answered {resp.status_code}"


def check_endpoints(target: Target) -> LayerState:
    """Prometheus and Alertmanager answer at the target's URLs (the same check on every target)."""
    if target.monitoring is None:
        raise LayerUnavailable(
            f"layer 6 (observability): target {target.name} has no monitoring section "
            "(prometheus_url, alertmanager_url)"
        )
    urls = {
        "prometheus": target.monitoring.prometheus_url,
        "alertmanager": target.monitoring.alertmanager_url,
    }
    problems = [p for p in (_ready(u) for u in urls.values()) if p]
    return LayerState(
        PHASE, NAME, not problems, "; ".join(problems) or "Prometheus and Alertmanager ready", urls
    )


check_onprem = check_endpoints


def ensure_onprem(target: Target) -> LayerState:
    state = check_endpoints(target)
    if not state.ready:
        raise broken(PHASE, NAME, state.detail)
    return state
