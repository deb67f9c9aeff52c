"""The KWOK fallback's on-demand stages: a crash loop, node memory pressure, an image pull failure (only where
the lab runs KWOK nodes: real kubelets do these for real)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from boutique_suite.clients.kube import Kube, connect_to
from boutique_suite.expectations import probes
from boutique_suite.run import runlabel, targets, waits
from provisioning.lab import lab_status, manager

pytestmark = pytest.mark.lab
FAULT = "boutique.lab/fault"


@pytest.fixture(scope="module")
def kube() -> Kube:
    manager.up()
    runtime = lab_status.node_runtime()
    if runtime is None or runtime.kind != "kwok":
        pytest.skip("the lab runs real nodes: KWOK's stages play the kubelet only on the KWOK fallback")
    lab = targets.load("lab")
    return connect_to(lab, runlabel.new_run_id())


@pytest.fixture
def namespace(kube: Kube) -> Iterator[str]:
    name = kube.create_namespace("suite-stage")
    yield name
    kube.delete_namespace(name)


def container_state(kube: Kube, namespace: str, pod: str) -> waits.Check:
    p = kube.core.read_namespaced_pod(pod, namespace)
    statuses = p.status.container_statuses or []
    if not statuses:
        return waits.pending("no container status yet")
    cs = statuses[0]
    reason = cs.state.waiting.reason if cs.state and cs.state.waiting else None
    facts = (cs.restart_count, reason, cs.ready)
    return waits.succeeded(f"restarts {cs.restart_count}, waiting {reason}", facts)


def test_crashloop_on_demand_grows_restarts_and_recovers(kube: Kube, namespace: str) -> None:
    kube.create_pod(namespace, "victim", node="k8s-worker1")
    waits.until(probes.pods_running_on(kube, namespace, "app=victim", 1), timeout=30, what="victim ready")
    kube.core.patch_namespaced_pod(
        "victim",
        namespace,
        {"metadata": {"annotations": {FAULT: "crashloop", "boutique.lab/crashloop-backoff": "2s"}}},
    )

    def crashing_twice() -> waits.Check:
        restarts, reason, ready = container_state(kube, namespace, "victim").value or (0, None, True)
        detail = f"restarts {restarts}, reason {reason}, ready {ready}"
        ok = restarts >= 2 and reason == "CrashLoopBackOff" and not ready
        return waits.succeeded(detail) if ok else waits.pending(detail)

    waits.until(crashing_twice, timeout=30, what="crash loop", interval=0.5)

    kube.core.patch_namespaced_pod("victim", namespace, {"metadata": {"annotations": {FAULT: None}}})

    def recovered() -> waits.Check:
        restarts, reason, ready = container_state(kube, namespace, "victim").value or (0, None, False)
        detail = f"restarts {restarts}, reason {reason}, ready {ready}"
        ok = ready and reason is None and restarts >= 2
        return waits.succeeded(detail) if ok else waits.pending(detail)

    waits.until(recovered, timeout=30, what="recovery after the fault is removed", interval=0.5)


def test_memory_pressure_on_demand_sets_and_clears_the_condition(kube: Kube) -> None:
    node = "k8s-worker2"

    def pressure(want: str) -> waits.Probe:
        def probe() -> waits.Check:
            status = probes.node_condition(kube.node(node), "MemoryPressure")
            return waits.succeeded() if status == want else waits.pending(f"MemoryPressure={status}")

        return probe

    kube.core.patch_node(node, {"metadata": {"annotations": {FAULT: "memory-pressure"}}})
    try:
        waits.until(pressure("True"), timeout=30, what=f"{node} MemoryPressure=True", interval=0.5)
        assert probes.node_condition(kube.node(node), "Ready") == "True"
    finally:
        kube.core.patch_node(node, {"metadata": {"annotations": {FAULT: None}}})
    waits.until(pressure("False"), timeout=30, what=f"{node} MemoryPressure=False", interval=0.5)


def test_an_unpullable_tag_waits_in_image_pull_backoff_and_other_tags_start(
    kube: Kube, namespace: str
) -> None:
    from kubernetes import client

    [bad] = [i for i in lab_status.unpullable_images() if "/frontend:" in i]
    for name, image in (("stuck", bad), ("fine", bad.rsplit(":", 1)[0] + ":v1")):
        container = client.V1Container(name=name, image=image)
        body = client.V1Pod(
            metadata=client.V1ObjectMeta(name=name, labels=kube.labels({"app": name})),
            spec=client.V1PodSpec(containers=[container], node_name="k8s-worker1"),
        )
        kube.core.create_namespaced_pod(namespace, body)
    waits.until(probes.pods_running_on(kube, namespace, "app=fine", 1), timeout=30, what="fine ready")

    def backing_off() -> waits.Check:
        pod = kube.core.read_namespaced_pod("stuck", namespace)
        _, reason, ready = container_state(kube, namespace, "stuck").value or (0, None, True)
        detail = f"phase {pod.status.phase}, waiting {reason}, ready {ready}"
        ok = pod.status.phase == "Pending" and reason == "ImagePullBackOff" and not ready
        return waits.succeeded(detail) if ok else waits.pending(detail)

    waits.until(backing_off, timeout=30, what="ImagePullBackOff", interval=0.5)
    waits.consistently(backing_off, duration=5, what="stays in ImagePullBackOff")
