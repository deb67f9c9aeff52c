"""Cluster expectations the scenarios state: each reads state (waiting where the sentence says
"within"), and raises AssertionError naming the object and what differed."""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass, field

from kubernetes import client
from kubernetes.utils import parse_quantity

from boutique_suite.actions.faults import RealCpuLoad, SimulatedCpuUsage
from boutique_suite.clients import kubectl
from boutique_suite.clients.kube import Kube
from boutique_suite.context.sites import kubectl_of
from boutique_suite.expectations import autoscaling, probes
from boutique_suite.run import waits
from boutique_suite.run.targets import Target
from boutique_suite.run.touches import Touches, touches
from boutique_suite.run.undo import UndoStack

TEST_APP = "suite-probe"


@dataclass
class Workload:
    """The scenario's test Deployment and what happened to it."""

    namespace: str
    name: str = TEST_APP
    replicas: int = 0
    deleted_pod: str | None = None
    usage: SimulatedCpuUsage | None = None
    facts: dict[str, object] = field(default_factory=dict)

    @property
    def selector(self) -> str:
        return f"app={self.name}"


# --- nodes ---------------------------------------------------------------------------------------


@touches(Touches.node_runtime)
def expect_nodes_ready(kube: Kube, names: list[str], timeout: float) -> None:
    for name in names:
        waits.until(probes.node_ready(kube, name), timeout=timeout, what=f"node {name} Ready")


@touches(Touches.node_runtime)
def expect_label_and_taint(kube: Kube, node: str, label: str, taint: str) -> None:
    n = kube.node(node)
    assert label in (n.metadata.labels or {}), f"node {node} lacks label {label}: {n.metadata.labels}"
    key, effect = taint.split(":")
    taints = [(t.key, t.effect) for t in n.spec.taints or []]
    assert (key, effect) in taints, f"node {node} lacks taint {taint}: {taints}"


@touches(Touches.node_runtime)
def expect_schedulable_workers(kube: Kube, nodes: list[str], label: str) -> None:
    for node in nodes:
        n = kube.node(node)
        assert label in (n.metadata.labels or {}), f"node {node} lacks label {label}"
        blocking = [t.key for t in n.spec.taints or [] if t.effect == "NoSchedule"]
        assert not blocking, f"node {node} has NoSchedule taints {blocking}"
        assert not n.spec.unschedulable, f"node {node} is cordoned"


@touches(Touches.node_runtime)
def expect_capacity(
    kube: Kube, nodes: list[str], cpus: int, memory_gib: int, tolerance: int, pods: int
) -> None:
    for node in nodes:
        cap = kube.node(node).status.capacity
        assert parse_quantity(cap["cpu"]) == cpus, f"node {node}: {cap['cpu']} CPU, expected {cpus}"
        mem = float(parse_quantity(cap["memory"])) / 2**30
        assert abs(mem - memory_gib) <= memory_gib * tolerance / 100, (
            f"node {node}: {mem:.2f} GiB memory, expected {memory_gib} GiB ± {tolerance}%"
        )
        assert int(cap["pods"]) == pods, f"node {node}: {cap['pods']} pods, expected {pods}"


def expect_api_answers(kube: Kube, path: str, answer: str) -> None:
    method, url, headers, _, _ = kube.api.param_serialize("GET", path, auth_settings=["BearerToken"])
    response = kube.api.call_api(method, url, header_params=headers, _request_timeout=10)
    response.read()
    body = response.data.decode()
    assert body.strip() == answer, f"GET {path} answered {body!r}, expected {answer!r}"


@touches(Touches.node_runtime)
def expect_no_condition(kube: Kube, condition: str) -> None:
    bad = [n.metadata.name for n in kube.nodes() if probes.node_condition(n, condition) == "True"]
    assert not bad, f"nodes with {condition}=True: {bad}"


@touches(Touches.node_runtime)
def expect_pod_cidrs_within(kube: Kube, network: str) -> None:
    net = ipaddress.ip_network(network)
    seen: dict[str, str] = {}
    for n in kube.nodes():
        cidr = n.spec.pod_cidr
        assert cidr, f"node {n.metadata.name} has no pod CIDR"
        assert ipaddress.ip_network(cidr).subnet_of(net), f"node {n.metadata.name}: {cidr} not in {network}"
        assert cidr not in seen, f"nodes {seen[cidr]} and {n.metadata.name} share pod CIDR {cidr}"
        seen[cidr] = n.metadata.name


# --- storage -------------------------------------------------------------------------------------


@touches(Touches.storage)
def expect_one_default_storage_class(kube: Kube) -> str:
    defaults = kube.default_storage_classes()
    assert len(defaults) == 1, f"expected exactly one default StorageClass, found {defaults}"
    return defaults[0]


def expect_pvc_gets_default_class(kube: Kube, namespace: str) -> None:
    default = expect_one_default_storage_class(kube)
    pvc = client.V1PersistentVolumeClaim(
        metadata=client.V1ObjectMeta(name="suite-claim", labels=kube.labels()),
        spec=client.V1PersistentVolumeClaimSpec(
            access_modes=["ReadWriteOnce"],
            resources=client.V1VolumeResourceRequirements(requests={"storage": "1Gi"}),
        ),
    )
    created = kube.core.create_namespaced_persistent_volume_claim(namespace, pvc)
    assert created.spec.storage_class_name == default, (
        f"claim got storageClassName {created.spec.storage_class_name!r}, expected the default {default!r}"
    )


# --- workloads -----------------------------------------------------------------------------------


def create_test_deployment(kube: Kube, workload: Workload, replicas: int, cpu_millicores: int = 100) -> None:
    kube.create_deployment(workload.namespace, workload.name, replicas, cpu_request=f"{cpu_millicores}m")
    workload.replicas = replicas


def expect_available(kube: Kube, workload: Workload, replicas: int, timeout: float) -> float:
    """Strict rollout check within ``timeout``; returns the seconds it took."""
    waited = waits.until(
        probes.rollout_complete(kube, workload.namespace, workload.name),
        timeout=timeout,
        what=f"deployment {workload.namespace}/{workload.name} with {replicas} available replicas",
        wake=kube.watch_deployments(workload.namespace, int(timeout) + 1),
    )
    dep = waited.check.value
    assert dep.status.available_replicas == replicas, f"{dep.status.available_replicas} available"  # type: ignore[union-attr]
    return waited.seconds


def expect_not_on(kube: Kube, workload: Workload, node: str) -> None:
    placement = {p.metadata.name: p.spec.node_name for p in kube.pods(workload.namespace, workload.selector)}
    assert placement, "the test Deployment has no pods"
    on_node = [pod for pod, n in placement.items() if n == node]
    assert not on_node, f"pods on {node}: {on_node} (placement {placement})"
    workload.facts["placement"] = placement


def delete_one_pod(kube: Kube, workload: Workload) -> str:
    pod = sorted(p.metadata.name for p in kube.pods(workload.namespace, workload.selector))[0]
    kube.delete_pod(workload.namespace, pod)
    workload.deleted_pod = pod
    workload.facts["deleted_at"] = time.monotonic()
    return pod


def expect_replaced(kube: Kube, workload: Workload, replicas: int, timeout: float) -> float:
    """The deleted pod is gone, a new one took its place, the Deployment is available.

    Returns the seconds since the delete.
    """
    assert workload.deleted_pod, "no pod was deleted in this scenario"
    waits.until(
        probes.replacement_pod_ready(
            kube, workload.namespace, workload.selector, workload.deleted_pod, replicas
        ),
        timeout=timeout,
        what=f"replacement of pod {workload.deleted_pod}",
        wake=kube.watch_pods(workload.namespace, workload.selector, int(timeout) + 1),
    )
    expect_available(kube, workload, replicas, timeout)
    return time.monotonic() - float(workload.facts["deleted_at"])  # type: ignore[arg-type]


# --- metrics and autoscaling ---------------------------------------------------------------------


def _top(target: Target, *args: str) -> dict[str, tuple[str, str]]:
    try:
        out = kubectl_of(target).run("top", *args, "--no-headers", timeout=30)
    except kubectl.KubectlError:
        return {}
    rows = {}
    for line in out.splitlines():
        cols = line.split()
        if len(cols) >= 3:
            rows[cols[0]] = (cols[1], cols[-2] if len(cols) == 5 else cols[2])
    return rows


@touches(Touches.node_runtime)
def expect_top(
    target: Target,
    what: str,
    names: list[str] | None,
    count: int,
    timeout: float,
    namespace: str | None = None,
) -> dict[str, tuple[str, str]]:
    args = ["nodes"] if what == "nodes" else ["pods", "-n", namespace or "default"]

    def probe() -> waits.Check:
        rows = _top(target, *args)
        wanted = {k: v for k, v in rows.items() if names is None or k in names}
        detail = f"kubectl top {' '.join(args)}: {wanted or 'no rows yet'}"
        return waits.succeeded(detail, wanted) if len(wanted) == count else waits.pending(detail)

    return waits.until(probe, timeout=timeout, what=f"kubectl top {what}", interval=3).check.value  # type: ignore[return-value]


def create_hpa(kube: Kube, workload: Workload, percent: int, minimum: int, maximum: int, window: int) -> None:
    kube.create_cpu_hpa(
        workload.namespace, workload.name, minimum, maximum, percent, scale_down_window=window
    )


def use_cpu(kube: Kube, workload: Workload, millicores: int, undo: UndoStack, real_nodes: bool) -> None:
    """Real nodes: the pods burn real CPU. KWOK nodes: KWOK reports the usage the pods' annotation asks."""
    if workload.usage is None:
        load = RealCpuLoad if real_nodes else SimulatedCpuUsage
        workload.usage = load(kube, workload.namespace, workload.selector, millicores).start()
        undo.push(f"stop the CPU load of {workload.name}", workload.usage.stop)
    else:
        workload.usage.set(millicores)
    workload.facts["usage_set_at"] = time.monotonic()


def expect_hpa_scale(
    kube: Kube, workload: Workload, at_least: int | None, exactly: int | None, timeout: float
) -> float:
    """Wait for the HPA to reach the count and the Deployment to follow; seconds since the usage changed."""
    autoscaling.expect_scaled(kube, workload.namespace, workload.name, at_least, exactly, timeout)
    return time.monotonic() - float(workload.facts["usage_set_at"])  # type: ignore[arg-type]


def expect_leftovers_gone(kube: Kube, leftovers: dict[str, str], timeout: float) -> None:
    node = kube.node(leftovers["node"])
    assert not node.spec.unschedulable, f"node {leftovers['node']} is still cordoned"

    def pod_gone() -> waits.Check:
        pods = kube.core.list_namespaced_pod(leftovers["namespace"]).items
        names = [p.metadata.name for p in pods]
        return waits.pending(f"pods left: {names}") if names else waits.succeeded("no pods left")

    waits.until(pod_gone, timeout=timeout, what=f"stress pod in {leftovers['namespace']} removed")


def pods_unschedulable(kube: Kube, namespace: str, selector: str, reason: str, count: int = 1) -> waits.Probe:
    """All ``count`` pods exist, are Pending, and the scheduler's PodScheduled condition names ``reason``."""

    def probe() -> waits.Check:
        pods = kube.pods(namespace, selector)
        if len(pods) < count:
            return waits.pending(f"{len(pods)} of {count} pods for {selector} yet")
        for pod in pods:
            if pod.status.phase != "Pending":
                return waits.failed(f"{pod.metadata.name} is {pod.status.phase}, expected Pending")
            scheduled = next((c for c in pod.status.conditions or [] if c.type == "PodScheduled"), None)
            if scheduled is None or reason not in (scheduled.message or ""):
                return waits.pending(
                    f"{pod.metadata.name}: PodScheduled says {scheduled and scheduled.message!r}"
                )
        return waits.succeeded(f"{len(pods)} pods Pending: {reason}")

    return probe


# Exporters whose metrics only a target that provides the touch can have: {metric prefix: touch}.
def expect_pods_stay_pending(kube: Kube, workload: Workload, reason: str, seconds: float) -> None:
    """The workload's pods become unschedulable for ``reason`` within 60 seconds and stay so ``seconds``."""
    probe = pods_unschedulable(kube, workload.namespace, workload.selector, reason, workload.replicas)
    waits.until(probe, timeout=60, interval=2, what=f"pods of {workload.name} Pending: {reason}")
    waits.consistently(probe, duration=seconds, interval=5, what=f"pods of {workload.name} stay Pending")
