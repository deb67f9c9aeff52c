"""Faults that must raise alerts: a crash-looping pod, a worker short of CPU or memory, a CPU shortage
across the workers. The fixtures (prometheus, alertmanager, alarm) and ``wait`` are alert_steps'."""

from __future__ import annotations

import time

from pytest_bdd import given, parsers, then, when

from boutique_suite.actions import cluster, faults
from boutique_suite.actions.cluster import Workload
from boutique_suite.clients import alerting, grafana, logs
from boutique_suite.clients.kube import Kube
from boutique_suite.expectations import monitoring_stack
from boutique_suite.reporting.evidence import Execution
from boutique_suite.run.targets import Target
from boutique_suite.run.touches import Touches, touches
from boutique_suite.run.undo import UndoStack
from steps.alert_steps import wait

MONITORING_NS = "monitoring"
STOREFRONT_HOST = "boutique.local"
WORKERS = ["k8s-worker1", "k8s-worker2"]

# --- injected faults -------------------------------------------------------------------------------


@when(parsers.parse('a pod "{name}" that exits with code 1 on every start runs in "{namespace}"'))
@touches(Touches.control_plane, Touches.node_runtime)
def crash_loop(
    kube: Kube, target: Target, undo: UndoStack, execution: Execution, alarm: dict, name: str, namespace: str
) -> None:
    pod, fault = faults.start_crash_loop_undoably(kube, namespace, name, undo)
    alarm.update(subject=pod, key="pod", fault=fault)


@then(
    parsers.parse(
        'Prometheus sees the restart count of "{name}" rise above {count:d} within {seconds:d} seconds'
    )
)
@touches(Touches.monitoring)
def restarts_seen(prometheus: alerting.Prometheus, alarm: dict, name: str, count: int, seconds: int) -> None:
    query = f'max(kube_pod_container_status_restarts_total{{pod="{alarm["subject"]}"}})'
    wait(alerting.value_above(prometheus, query, count), seconds, query)


STRESS = 'stress pods raise the requested {resource} of "{node}" to {percent:d}% of its allocatable {unit}'


@when(parsers.parse(STRESS))
@touches(Touches.control_plane, Touches.node_runtime)
def stress(
    kube: Kube,
    target: Target,
    undo: UndoStack,
    execution: Execution,
    alarm: dict,
    resource: str,
    node: str,
    percent: int,
    unit: str,
) -> None:
    made = faults.raise_requests_undoably(kube, target, node, resource.lower(), percent / 100, undo)
    alarm.update(subject=node, key="node", **made)


@then(
    parsers.parse(
        'Prometheus sees more than {percent:d}% of the allocatable {resource} of "{node}" requested '
        "within {seconds:d} seconds"
    )
)
@touches(Touches.monitoring)
def share_seen(prometheus: alerting.Prometheus, percent: int, resource: str, node: str, seconds: int) -> None:
    query = alerting.requested_share(resource.lower(), node)
    wait(alerting.value_above(prometheus, query, percent / 100), seconds, query)


@then(parsers.parse('the alert "{alert}" fires for "{name}" within {seconds:d} seconds'))
@then(parsers.parse('the alert "{alert}" fires for node "{name}" within {seconds:d} seconds'))
@touches(Touches.monitoring)
def alert_fires(
    prometheus: alerting.Prometheus, execution: Execution, alarm: dict, alert: str, name: str, seconds: int
) -> None:
    alarm["alert"] = alerting.wait_alert_firing(prometheus, alert, {alarm["key"]: alarm["subject"]}, seconds)
    alarm["fired_at"] = alerting.firing_since(prometheus, alarm["alert"])
    execution.timing("fault_to_alert_firing_seconds", alarm["fired_at"] - alarm["since"], budget=seconds)


@then(parsers.parse('the alert "{alert}" fires within {seconds:d} seconds'))
@touches(Touches.monitoring)
def any_alert_fires(prometheus: alerting.Prometheus, alert: str, seconds: int) -> None:
    wait(alerting.alert_firing(prometheus, alert, {}), seconds, f"{alert} firing")


FIRING_MESSAGE = (
    'a message naming "{alert}" and "{name}" appears in "{channel}" within {seconds:d} seconds of the '
    "alert firing"
)


@then(parsers.parse(FIRING_MESSAGE))
@touches(Touches.slack)
def firing_message(
    target: Target, execution: Execution, alarm: dict, alert: str, name: str, channel: str, seconds: int
) -> None:
    needles = ("FIRING", alert, alarm["subject"])
    latency = alerting.expect_slack_message(target, channel, alarm, needles, seconds)
    execution.timing("alert_firing_to_slack_seconds", latency, budget=seconds)


@when(parsers.parse('the pod "{name}" is deleted'))
@when("the stress pods are deleted")
@touches(Touches.control_plane)
def remove_fault(undo: UndoStack, alarm: dict) -> None:
    alarm["removed_at"] = time.time()
    undo.revert_now(alarm["fault"])


@then(parsers.parse('a resolved message for "{alert}" appears in "{channel}" within {seconds:d} seconds'))
@touches(Touches.slack)
def resolved_message(
    target: Target, execution: Execution, alarm: dict, alert: str, channel: str, seconds: int
) -> None:
    latency = alerting.expect_resolved_message(target, channel, alarm, alert, seconds)
    execution.timing("revert_to_resolved_message_seconds", latency, budget=seconds)


# --- a CPU shortage across the workers -------------------------------------------------------------


@given("every Boutique Deployment has all replicas available")
@then("every Boutique Deployment still has all replicas available")
@touches(Touches.control_plane, Touches.node_runtime)
def boutique_available(kube: Kube, target: Target) -> None:
    probe = alerting.all_deployments_available(kube, target.namespaces.dev)
    wait(probe, target.timeouts.rollout, "every Boutique Deployment available")


@when(
    parsers.parse(
        "stress pods raise the requested CPU of both workers to {percent:d}% of their allocatable CPU"
    )
)
@touches(Touches.control_plane, Touches.node_runtime)
def fill_both_workers(
    kube: Kube, target: Target, undo: UndoStack, execution: Execution, alarm: dict, percent: int
) -> None:
    alarm["fault"] = faults.fill_workers_undoably(kube, target, WORKERS, "cpu", percent / 100, undo)


@when(
    parsers.parse("a test Deployment of {replicas:d} replicas requesting {millicores:d}m CPU each is created")
)
@touches(Touches.control_plane)
def cpu_probe_deployment(kube: Kube, workload: Workload, alarm: dict, replicas: int, millicores: int) -> None:
    cluster.create_test_deployment(kube, workload, replicas, cpu_millicores=millicores)
    alarm.update(subject=workload.namespace, fired_at=time.time())


@then(parsers.parse('its pods stay Pending with the reason "{reason}" for {seconds:d} seconds'))
@touches(Touches.control_plane, Touches.node_runtime)
def stay_pending(kube: Kube, workload: Workload, reason: str, seconds: int) -> None:
    cluster.expect_pods_stay_pending(kube, workload, reason, seconds)


@then(parsers.parse('a message naming "{alert}" appears in "{channel}" within {seconds:d} seconds'))
@touches(Touches.slack)
def message_naming(
    target: Target, execution: Execution, alarm: dict, alert: str, channel: str, seconds: int
) -> None:
    needles = ("FIRING", alert, alarm["subject"])
    latency = alerting.expect_slack_message(target, channel, alarm, needles, seconds)
    execution.timing("pending_pods_to_slack_seconds", latency, budget=seconds)


@then(parsers.parse("the test Deployment has {replicas:d} available replicas within {seconds:d} seconds"))
@touches(Touches.control_plane, Touches.node_runtime)
def deployment_available_after_revert(
    kube: Kube, workload: Workload, execution: Execution, replicas: int, seconds: int
) -> None:
    took = cluster.expect_available(kube, workload, replicas, seconds)
    execution.timing("scheduled_after_revert_seconds", took, budget=seconds)


@then(
    parsers.parse(
        'the Prometheus Operator, Prometheus, Alertmanager and kube-state-metrics are ready in "{namespace}"'
    )
)
@touches(Touches.control_plane, Touches.node_runtime)
def stack_ready(kube: Kube, namespace: str) -> None:
    monitoring_stack.expect_stack_ready(kube, namespace)


@then(parsers.parse("node-exporter runs on each of the {count:d} nodes"))
@touches(Touches.node_runtime)
def node_exporter(kube: Kube, count: int) -> None:
    monitoring_stack.expect_daemonset_on_nodes(kube, MONITORING_NS, "node-exporter", count)


@then(parsers.parse('Prometheus has loaded the PrometheusRule "{rule}"'))
@touches(Touches.monitoring)
def rule_loaded(prometheus: alerting.Prometheus, rule: str) -> None:
    monitoring_stack.expect_rule_loaded(prometheus, rule)


@then("the ServiceMonitor for ingress-nginx has all its targets up")
@touches(Touches.monitoring)
def ingress_service_monitor(prometheus: alerting.Prometheus) -> None:
    monitoring_stack.expect_service_monitor_up(prometheus, "ingress-nginx")


@then(parsers.parse("Promtail runs on each of the {count:d} nodes"))
@touches(Touches.node_runtime)
def promtail(kube: Kube, count: int) -> None:
    monitoring_stack.expect_daemonset_on_nodes(kube, MONITORING_NS, "promtail", count)


@when(parsers.parse('a test pod in "{namespace}" writes a log line holding the run id'))
@touches(Touches.control_plane, Touches.node_runtime)
def log_line(kube: Kube, undo: UndoStack, story: dict, namespace: str) -> None:
    story.update(since=time.time(), line=logs.write_log_line(kube, namespace, undo))


@then(parsers.parse('Loki returns that line for the namespace "{namespace}" within {seconds:d} seconds'))
@touches(Touches.monitoring)
def loki_line(target: Target, execution: Execution, story: dict, namespace: str, seconds: int) -> None:
    took = logs.expect_line_in_loki(target, namespace, story["line"], seconds, story["since"])
    execution.timing("log_to_loki_seconds", took, budget=seconds)


@then(parsers.parse('Grafana\'s data sources "{first}" and "{second}" pass their health checks'))
@touches(Touches.monitoring)
def grafana_datasources(target: Target, first: str, second: str) -> None:
    grafana.expect_datasources_healthy(grafana.connect(target), first, second)


@then(
    parsers.parse('Grafana has the dashboards "{first}", "{second}" and "{third}"'),
    target_fixture="dashboards",
)
@touches(Touches.monitoring)
def grafana_dashboards(target: Target, first: str, second: str, third: str) -> dict[str, str]:
    return grafana.find_dashboards(grafana.connect(target), first, second, third)


@then("Grafana marks those dashboards as provisioned from git")
@touches(Touches.monitoring)
def grafana_provisioned(target: Target, dashboards: dict[str, str]) -> None:
    grafana.expect_provisioned(grafana.connect(target), dashboards)


@given(parsers.parse("the storefront has received requests in the last {minutes:d} minutes"))
@touches(Touches.monitoring, Touches.ingress)
def storefront_requests(prometheus: alerting.Prometheus, minutes: int) -> None:
    grafana.expect_storefront_requests(prometheus, STOREFRONT_HOST, minutes * 60)


@then(
    parsers.parse(
        'every Prometheus panel of the dashboards "{first}", "{second}" and "{third}" returns data for the '
        "last {minutes:d} minutes"
    )
)
@touches(Touches.monitoring)
def panels_have_data(
    target: Target, prometheus: alerting.Prometheus, first: str, second: str, third: str, minutes: int
) -> None:
    grafana.expect_panels_have_data(grafana.connect(target), prometheus, [first, second, third], minutes * 60)
