"""kube-prometheus-stack's checks against fake API answers: no cluster, no Prometheus."""

from __future__ import annotations

from types import SimpleNamespace as NS

import pytest

from boutique_suite.expectations import monitoring_stack


def _workload(name: str, replicas: int, ready: int) -> NS:
    return NS(metadata=NS(name=name), spec=NS(replicas=replicas), status=NS(ready_replicas=ready))


def _kube(deployments: list[NS], statefulsets: list[NS], daemonsets: list[NS] = ()) -> NS:  # type: ignore[assignment]
    return NS(
        apps=NS(
            list_namespaced_deployment=lambda ns: NS(items=deployments),
            list_namespaced_stateful_set=lambda ns: NS(items=statefulsets),
            list_namespaced_daemon_set=lambda ns: NS(items=list(daemonsets)),
        )
    )


DEPLOYMENTS = [_workload("kps-operator", 1, 1), _workload("kps-kube-state-metrics", 1, 1)]
STATEFULSETS = [
    _workload("prometheus-kps-prometheus", 1, 1),
    _workload("alertmanager-kps-alertmanager", 1, 1),
]


def test_a_ready_stack_passes_and_names_its_workloads() -> None:
    found = monitoring_stack.expect_stack_ready(_kube(DEPLOYMENTS, STATEFULSETS), "monitoring")
    assert found["Prometheus"] == "prometheus-kps-prometheus"


def test_a_missing_or_unready_component_fails_naming_it() -> None:
    with pytest.raises(AssertionError, match=r"no statefulset for Alertmanager.*"):
        monitoring_stack.expect_stack_ready(_kube(DEPLOYMENTS, STATEFULSETS[:1]), "monitoring")
    unready = [DEPLOYMENTS[0], _workload("kps-kube-state-metrics", 1, 0)]
    with pytest.raises(AssertionError, match=r"kube-state-metrics .* not all ready"):
        monitoring_stack.expect_stack_ready(_kube(unready, STATEFULSETS), "monitoring")


def test_node_exporter_must_be_ready_on_every_node() -> None:
    ds = NS(
        metadata=NS(name="kps-prometheus-node-exporter"),
        status=NS(desired_number_scheduled=3, number_ready=2),
    )
    with pytest.raises(AssertionError, match="2 of 3 ready"):
        monitoring_stack.expect_daemonset_on_nodes(_kube([], [], [ds]), "monitoring", "node-exporter", 3)


class _Prom:
    def __init__(self, groups: list[dict], targets: list[dict]) -> None:
        self.groups, self._targets = groups, targets

    def _get(self, path: str) -> dict:
        return {"groups": self.groups}

    def targets(self) -> list[dict]:
        return self._targets


def test_a_rule_counts_as_loaded_only_from_its_prometheusrule_file() -> None:
    file = "/etc/prometheus/rules/prometheus-kps-rulefiles-0/monitoring-boutique-alerts-1f2e.yaml"
    prom = _Prom([{"name": "boutique.pods", "file": file}], [])
    assert monitoring_stack.expect_rule_loaded(prom, "boutique-alerts") == ["boutique.pods"]  # type: ignore[arg-type]
    with pytest.raises(AssertionError, match="no rule group"):
        monitoring_stack.expect_rule_loaded(prom, "other-rules")  # type: ignore[arg-type]


def test_every_target_of_the_service_monitor_must_be_up() -> None:
    pool = "serviceMonitor/ingress-nginx/ingress-nginx-controller/0"
    up = {"scrapePool": pool, "scrapeUrl": "http://10.0.0.1:10254/metrics", "health": "up"}
    down = {**up, "scrapeUrl": "http://10.0.0.2:10254/metrics", "health": "down", "lastError": "refused"}
    assert monitoring_stack.expect_service_monitor_up(_Prom([], [up]), "ingress-nginx") == 1  # type: ignore[arg-type]
    with pytest.raises(AssertionError, match=r"10\.0\.0\.2.*refused"):
        monitoring_stack.expect_service_monitor_up(_Prom([], [up, down]), "ingress-nginx")  # type: ignore[arg-type]
    with pytest.raises(AssertionError, match="no target"):
        monitoring_stack.expect_service_monitor_up(_Prom([], []), "ingress-nginx")  # type: ignore[arg-type]
