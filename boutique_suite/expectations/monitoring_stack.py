"""Phase 6 on-prem: kube-prometheus-stack as the Prometheus Operator runs it, read through the Kubernetes
API and Prometheus's own API."""

from __future__ import annotations

from boutique_suite.clients.alerting import Prometheus
from boutique_suite.clients.kube import Kube

COMPONENTS = {
    "the Prometheus Operator": ("deployment", "operator"),
    "kube-state-metrics": ("deployment", "kube-state-metrics"),
    "Prometheus": ("statefulset", "prometheus-"),
    "Alertmanager": ("statefulset", "alertmanager-"),
}


def _ready(obj) -> bool:  # type: ignore[no-untyped-def]
    want = obj.spec.replicas if obj.spec.replicas is not None else 1
    return want > 0 and (obj.status.ready_replicas or 0) == want


def expect_stack_ready(kube: Kube, namespace: str) -> dict[str, str]:
    """Each component has a workload in ``namespace`` with all replicas ready; returns component -> name."""
    workloads = {
        "deployment": kube.apps.list_namespaced_deployment(namespace).items,
        "statefulset": kube.apps.list_namespaced_stateful_set(namespace).items,
    }
    found, problems = {}, []
    for component, (kind, mark) in COMPONENTS.items():
        match = [w for w in workloads[kind] if mark in w.metadata.name]
        if not match:
            problems.append(f"no {kind} for {component} in {namespace}")
        elif not all(_ready(w) for w in match):
            problems.append(f"{component} ({', '.join(w.metadata.name for w in match)}) not all ready")
        else:
            found[component] = match[0].metadata.name
    assert not problems, "; ".join(problems)
    return found


def expect_daemonset_on_nodes(kube: Kube, namespace: str, mark: str, count: int) -> str:
    sets = [d for d in kube.apps.list_namespaced_daemon_set(namespace).items if mark in d.metadata.name]
    assert sets, f"no DaemonSet {mark} in {namespace}"
    status = sets[0].status
    assert status.desired_number_scheduled == count, (
        f"{sets[0].metadata.name} is scheduled on {status.desired_number_scheduled} nodes, not {count}"
    )
    assert (status.number_ready or 0) == count, (
        f"{sets[0].metadata.name}: {status.number_ready} of {count} ready"
    )
    return sets[0].metadata.name


def expect_rule_loaded(prom: Prometheus, rule: str) -> list[str]:
    """The operator writes a PrometheusRule into a file named <namespace>-<name>-<uid>.yaml."""
    groups = prom._get("/api/v1/rules")["groups"]
    mine = [g["name"] for g in groups if f"-{rule}-" in g.get("file", "").rsplit("/", 1)[-1]]
    assert mine, f"Prometheus has loaded no rule group from the PrometheusRule {rule}"
    return mine


def expect_service_monitor_up(prom: Prometheus, name: str) -> int:
    mine = [
        t
        for t in prom.targets()
        if t.get("scrapePool", "").startswith("serviceMonitor/") and name in t["scrapePool"]
    ]
    assert mine, f"Prometheus has no target of a ServiceMonitor for {name}"
    down = [f"{t['scrapeUrl']}: {t['health']} {t.get('lastError', '')}" for t in mine if t["health"] != "up"]
    assert not down, "; ".join(down)
    return len(mine)
