"""Phase 2: nodes, pod network, storage, scheduling, replacement, metrics and HPA."""

from __future__ import annotations

from pytest_bdd import given, parsers, then, when

from boutique_suite.actions import cluster
from boutique_suite.actions.cluster import Workload
from boutique_suite.clients.kube import Kube
from boutique_suite.reporting.evidence import Execution
from boutique_suite.run.targets import Target
from boutique_suite.run.touches import Touches, touches
from boutique_suite.run.undo import UndoStack


@then(parsers.parse('nodes "{a}", "{b}" and "{c}" are Ready'))
@touches(Touches.node_runtime)
def nodes_ready(kube: Kube, target: Target, a: str, b: str, c: str) -> None:
    cluster.expect_nodes_ready(kube, [a, b, c], timeout=target.timeouts.assertion)


@then(parsers.parse('node "{node}" has the label "{label}" and the taint "{taint}"'))
@touches(Touches.node_runtime)
def node_label_and_taint(kube: Kube, node: str, label: str, taint: str) -> None:
    cluster.expect_label_and_taint(kube, node, label, taint)


@then(parsers.parse('nodes "{a}" and "{b}" have the label "{label}" and no NoSchedule taint'))
@touches(Touches.node_runtime)
def workers_schedulable(kube: Kube, a: str, b: str, label: str) -> None:
    cluster.expect_schedulable_workers(kube, [a, b], label)


@then(
    parsers.parse(
        'nodes "{a}" and "{b}" each have a capacity of {cpus:d} CPU, {mem:d} GiB of memory '
        "(within {tolerance:d}%) and {pods:d} pods"
    )
)
@touches(Touches.node_runtime)
def worker_capacity(kube: Kube, a: str, b: str, cpus: int, mem: int, tolerance: int, pods: int) -> None:
    cluster.expect_capacity(kube, [a, b], cpus, mem, tolerance, pods)


@then(parsers.parse('the API server answers "{path}" with "{answer}"'))
@touches(Touches.control_plane)
def api_answers(kube: Kube, path: str, answer: str) -> None:
    cluster.expect_api_answers(kube, path, answer)


@then(parsers.parse("no node reports the condition {condition}"))
@touches(Touches.node_runtime)
def no_node_condition(kube: Kube, condition: str) -> None:
    cluster.expect_no_condition(kube, condition)


@then(parsers.parse('every node has its own pod CIDR inside the pod network "{network}"'))
@touches(Touches.node_runtime)
def pod_cidrs(kube: Kube, network: str) -> None:
    cluster.expect_pod_cidrs_within(kube, network)


@then("exactly one StorageClass is marked as the default")
@touches(Touches.storage)
def one_default_storage_class(kube: Kube) -> None:
    cluster.expect_one_default_storage_class(kube)


@then("a PersistentVolumeClaim created without a storageClassName is given that StorageClass")
@touches(Touches.control_plane, Touches.storage)
def claim_gets_default(kube: Kube, scenario_ns: str) -> None:
    cluster.expect_pvc_gets_default_class(kube, scenario_ns)


@when(parsers.parse("a test Deployment with {replicas:d} replicas is created"))
@touches(Touches.control_plane)
def create_test_deployment(kube: Kube, workload: Workload, replicas: int) -> None:
    cluster.create_test_deployment(kube, workload, replicas)


@given(
    parsers.re(r"a test Deployment with (?P<replicas>\d+) available replicas?"), converters={"replicas": int}
)
@touches(Touches.control_plane, Touches.node_runtime)
def available_test_deployment(kube: Kube, target: Target, workload: Workload, replicas: int) -> None:
    cluster.create_test_deployment(kube, workload, replicas)
    cluster.expect_available(kube, workload, replicas, timeout=target.timeouts.rollout)


@given(
    parsers.re(r"a test Deployment with (?P<replicas>\d+) replicas? requesting (?P<cpu>\d+)m CPU"),
    converters={"replicas": int, "cpu": int},
)
@touches(Touches.control_plane, Touches.node_runtime)
def test_deployment_with_request(
    kube: Kube, target: Target, workload: Workload, replicas: int, cpu: int
) -> None:
    cluster.create_test_deployment(kube, workload, replicas, cpu_millicores=cpu)
    cluster.expect_available(kube, workload, replicas, timeout=target.timeouts.rollout)


@then(parsers.parse("it has {replicas:d} available replicas within {seconds:d} seconds"))
@touches(Touches.control_plane, Touches.node_runtime)
def has_available(kube: Kube, workload: Workload, execution: Execution, replicas: int, seconds: int) -> None:
    execution.timing(
        "available_seconds", cluster.expect_available(kube, workload, replicas, seconds), budget=seconds
    )


@then(parsers.parse('none of its pods runs on "{node}"'))
@touches(Touches.control_plane)
def not_on_node(kube: Kube, workload: Workload, node: str) -> None:
    cluster.expect_not_on(kube, workload, node)


@when("one of its pods is deleted")
@touches(Touches.control_plane)
def delete_a_pod(kube: Kube, workload: Workload) -> None:
    cluster.delete_one_pod(kube, workload)


@then(
    parsers.parse(
        "its ReplicaSet creates a replacement and the Deployment has {replicas:d} available "
        "replicas again within {seconds:d} seconds"
    )
)
@touches(Touches.control_plane, Touches.node_runtime)
def replaced(kube: Kube, workload: Workload, execution: Execution, replicas: int, seconds: int) -> None:
    execution.timing(
        "pod_replacement_seconds", cluster.expect_replaced(kube, workload, replicas, seconds), budget=seconds
    )


@then(
    parsers.parse(
        '"kubectl top nodes" shows CPU and memory usage for all {count:d} nodes within {seconds:d} seconds'
    )
)
@touches(Touches.node_runtime)
def top_nodes(target: Target, execution: Execution, count: int, seconds: int) -> None:
    cluster.expect_top(target, "nodes", None, count, seconds)


@then(
    parsers.parse(
        '"kubectl top pods" shows CPU and memory usage for both pods of the test Deployment '
        "within {seconds:d} seconds"
    )
)
@touches(Touches.node_runtime)
def top_pods(target: Target, workload: Workload, seconds: int) -> None:
    cluster.expect_top(target, "pods", None, workload.replicas, seconds, namespace=workload.namespace)


@given(
    parsers.parse(
        "an HPA on it targeting {percent:d}% CPU with {minimum:d} to {maximum:d} replicas and a "
        "scale-down window of {window:d} seconds"
    )
)
@touches(Touches.control_plane)
def hpa_on_it(kube: Kube, workload: Workload, percent: int, minimum: int, maximum: int, window: int) -> None:
    cluster.create_hpa(kube, workload, percent, minimum, maximum, window)


@when(parsers.parse("each of its pods uses {millicores:d}m CPU"))
@touches(Touches.node_runtime)
def pods_use_cpu(kube: Kube, target: Target, workload: Workload, undo: UndoStack, millicores: int) -> None:
    cluster.use_cpu(kube, workload, millicores, undo, real_nodes=target.provides(Touches.node_runtime))


@then(parsers.parse("the HPA scales it out to at least {replicas:d} replicas within {seconds:d} seconds"))
@touches(Touches.control_plane)
def hpa_scales_out(kube: Kube, workload: Workload, execution: Execution, replicas: int, seconds: int) -> None:
    took = cluster.expect_hpa_scale(kube, workload, replicas, None, seconds)
    execution.timing("hpa_scale_out_seconds", took, budget=seconds)


@then(
    parsers.re(r"the HPA scales it back in to (?P<replicas>\d+) replicas? within (?P<seconds>\d+) seconds"),
    converters={"replicas": int, "seconds": int},
)
@touches(Touches.control_plane)
def hpa_scales_in(kube: Kube, workload: Workload, execution: Execution, replicas: int, seconds: int) -> None:
    took = cluster.expect_hpa_scale(kube, workload, None, replicas, seconds)
    execution.timing("hpa_scale_in_seconds", took, budget=seconds)
