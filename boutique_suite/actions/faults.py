"""Faults the scenarios inject. Each returns how to revert it, for the scenario's UndoStack."""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.utils import parse_quantity

from boutique_suite.clients.kube import ADMIN_PORT, PROBE_IMAGE, RESTRICTED, Kube, delete_pod_if_present
from boutique_suite.run import runlabel, waits
from boutique_suite.run.targets import Target
from boutique_suite.run.undo import UndoStack

CPU_USAGE = "boutique.lab/cpu-usage-millicores"


@dataclass
class SimulatedCpuUsage:
    """Every pod matching ``selector`` reports ``millicores`` of CPU (the lab's KWOK usage simulation).

    New pods (scale-out, replacements) get the same usage, as they would under a real steady load;
    a background thread keeps the annotation on them until ``stop()``.
    """

    kube: Kube
    namespace: str
    selector: str
    millicores: int
    interval: float = 1.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> SimulatedCpuUsage:
        self._apply()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="simulated-cpu-usage")
        self._thread.start()
        return self

    def _apply(self) -> None:
        value = str(self.millicores)
        for pod in self.kube.pods(self.namespace, self.selector):
            if (pod.metadata.annotations or {}).get(
                CPU_USAGE
            ) != value and not pod.metadata.deletion_timestamp:
                self.kube.core.patch_namespaced_pod(
                    pod.metadata.name, self.namespace, {"metadata": {"annotations": {CPU_USAGE: value}}}
                )

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self._apply()
            except Exception:  # a transient API error only delays the next pass
                continue

    def set(self, millicores: int) -> None:
        self.millicores = millicores
        self._apply()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.kube.annotate_pods(self.namespace, self.selector, {CPU_USAGE: None})


class RealCpuLoad(SimulatedCpuUsage):
    """Every running pod matching ``selector`` burns ``millicores`` of real CPU: the probe image's admin
    port, reached through the API server's pod proxy, sets its load. What a real kubelet, cAdvisor and
    metrics-server then report is real."""

    def _apply(self) -> None:
        for pod in self.kube.pods(self.namespace, self.selector):
            if pod.status.phase == "Running" and pod.status.pod_ip and not pod.metadata.deletion_timestamp:
                self._burn(pod.metadata.name, self.millicores)

    def _burn(self, pod: str, millicores: int) -> None:
        self.kube.core.connect_post_namespaced_pod_proxy_with_path(
            f"{pod}:{ADMIN_PORT}", self.namespace, "burn", _headers={"X-Burn-Millicores": str(millicores)}
        )

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for pod in self.kube.pods(self.namespace, self.selector):
            if pod.status.phase == "Running" and not pod.metadata.deletion_timestamp:
                with contextlib.suppress(ApiException):
                    self._burn(pod.metadata.name, 0)


def cordon(kube: Kube, node: str) -> None:
    """Cordon ``node`` and record which run did it, so an interrupted run's cordon can be undone later."""
    kube.core.patch_node(
        node, {"metadata": {"annotations": {runlabel.FAULT_BY: kube.run_id}}, "spec": {"unschedulable": True}}
    )


def uncordon(kube: Kube, node: str) -> None:
    patch = {"metadata": {"annotations": {runlabel.FAULT_BY: None}}, "spec": {"unschedulable": None}}
    kube.core.patch_node(node, patch)


def leave_interrupted_run(kube: Kube, node: str, run_id: str) -> dict[str, str]:
    """Do what a chaos run interrupted half-way leaves behind: ``node`` cordoned, a stress pod on it."""
    from dataclasses import replace

    earlier = replace(kube, run_id=run_id)
    cordon(earlier, node)
    namespace = earlier.create_namespace("suite")
    earlier.create_pod(namespace, "stress", node=node, cpu="500m")
    return {"node": node, "namespace": namespace, "pod": "stress"}


# --- alert scenarios: a crash-looping pod, requests that leave a node short ------------------------

LAB_FAULT = "boutique.lab/fault"  # on KWOK nodes a stage plays the kubelet's part (kwok/kwokctl.yaml.tmpl)


def start_crash_loop(kube: Kube, namespace: str, name: str) -> str:
    """A pod whose container exits with code 1 at every start; named ``<name>-<run id>`` so that the
    alert and its Slack message carry the run's marker. Returns the pod's name."""
    pod = f"{name}-{kube.run_id}".lower()
    small = {"cpu": "10m", "memory": "16Mi"}
    container = client.V1Container(
        name=name,
        image=PROBE_IMAGE,
        # The probe image (the lab's stand-in; the same image pushed to the on-prem registry) exits 1 at
        # start when told so: no shell needed, and a real kubelet sees a real exit.
        env=[client.V1EnvVar(name="CRASH_AFTER_SECONDS", value="0")],
        resources=client.V1ResourceRequirements(requests=small, limits=small),
        security_context=RESTRICTED,
    )
    body = client.V1Pod(
        metadata=client.V1ObjectMeta(
            name=pod, labels=kube.labels({"app": name}), annotations={LAB_FAULT: "crashloop"}
        ),
        spec=client.V1PodSpec(
            containers=[container], restart_policy="Always", automount_service_account_token=False
        ),
    )
    kube.core.create_namespaced_pod(namespace, body)
    return pod


RESOURCE_KEYS = {"cpu": "cpu", "memory": "memory"}


def node_requests(kube: Kube, node: str, resource: str) -> tuple[float, float]:
    """(requested by non-terminated pods, allocatable) of ``resource`` on ``node``, in cores or bytes."""
    allocatable = float(parse_quantity(kube.node(node).status.allocatable[resource]))
    pods = kube.core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={node}").items
    requested = 0.0
    for pod in pods:
        if pod.status.phase not in ("Pending", "Running"):
            continue
        for c in pod.spec.containers:
            requests = (c.resources.requests if c.resources else None) or {}
            requested += float(parse_quantity(requests.get(resource, "0")))
    return requested, allocatable


def raise_requests(kube: Kube, node: str, resource: str, share: float) -> dict[str, str]:
    """Pin a stress pod to ``node`` whose request brings the node's requested ``resource`` to ``share``
    of its allocatable. Returns the stress pod's namespace (delete it to revert) and request."""
    requested, allocatable = node_requests(kube, node, resource)
    missing = share * allocatable - requested
    if missing <= 0:
        raise AssertionError(
            f"{node} already has {requested / allocatable:.0%} of its {resource} requested (> {share:.0%})"
        )
    # Rounded down: a real kubelet refuses a pod that would take the node over its allocatable (OutOfcpu).
    amount = f"{int(missing * 1000)}m" if resource == "cpu" else str(int(missing))
    other = {"memory": "16Mi"} if resource == "cpu" else {"cpu": "10m"}
    resources = {resource: amount, **other}
    namespace = kube.create_namespace("stress")
    container = client.V1Container(
        name="stress",
        image=PROBE_IMAGE,
        resources=client.V1ResourceRequirements(requests=resources, limits=resources),
        security_context=RESTRICTED,
    )
    body = client.V1Pod(
        metadata=client.V1ObjectMeta(name=f"stress-{resource}", labels=kube.labels({"app": "stress"})),
        spec=client.V1PodSpec(
            containers=[container],
            node_name=node,
            automount_service_account_token=False,
            image_pull_secrets=kube.pull_secrets(),
        ),
    )
    kube.core.create_namespaced_pod(namespace, body)
    _wait_admitted(kube, namespace, body.metadata.name)
    return {"namespace": namespace, "request": amount, "before": f"{requested / allocatable:.1%}"}


def _wait_admitted(kube: Kube, namespace: str, pod: str, timeout: float = 60) -> None:
    """The node's kubelet admitted the pod (Running); a refusal (OutOfcpu, OutOfmemory) fails at once: its
    requests would not count, and the shortage would not exist."""

    def probe() -> waits.Check:
        status = kube.core.read_namespaced_pod(pod, namespace).status
        if status.phase == "Running":
            return waits.succeeded(f"{pod} running")
        if status.phase == "Failed":
            return waits.failed(f"{pod} refused by its kubelet: {status.reason}: {status.message}")
        return waits.pending(f"{pod} is {status.phase}")

    waits.until(probe, timeout=timeout, interval=0.5, what=f"stress pod {namespace}/{pod} admitted")


def fill_workers(kube: Kube, nodes: list[str], resource: str, share: float) -> list[str]:
    """raise_requests on every node in ``nodes``; the stress namespaces (delete them to revert)."""
    made = []
    try:
        for node in nodes:
            made.append(raise_requests(kube, node, resource, share)["namespace"])
    except Exception:
        for namespace in made:
            kube.delete_namespace(namespace)
        raise
    return made


def start_crash_loop_undoably(kube: Kube, namespace: str, name: str, undo: UndoStack) -> tuple[str, str]:
    """start_crash_loop, its pod's deletion on ``undo``; returns (the pod, how the fault is reverted)."""
    pod = start_crash_loop(kube, namespace, name)
    revert = f"delete pod {pod}"
    undo.push(
        revert,
        lambda: delete_pod_if_present(kube, namespace, pod),
        journal=("delete_pod", {"namespace": namespace, "name": pod}),
    )
    return pod, revert


def raise_requests_undoably(
    kube: Kube, target: Target, node: str, resource: str, share: float, undo: UndoStack
) -> dict[str, str]:
    """raise_requests, the stress namespace's deletion (waiting the target's cleanup timeout) on ``undo``;
    returns what raise_requests made and, as ``fault``, how it is reverted."""
    made = raise_requests(kube, node, resource, share)
    revert = f"delete {made['namespace']}"
    undo.push(
        revert,
        lambda: kube.delete_namespace(made["namespace"], wait=target.timeouts.cleanup),
        journal=("delete_namespace", {"namespace": made["namespace"]}),
    )
    return {**made, "fault": revert}


def fill_workers_undoably(
    kube: Kube, target: Target, nodes: list[str], resource: str, share: float, undo: UndoStack
) -> str:
    """fill_workers, the stress namespaces' deletion (waiting the target's cleanup timeout) on ``undo``;
    returns how the fault is reverted."""
    made = fill_workers(kube, nodes, resource, share)
    revert = f"delete {', '.join(made)}"
    undo.push(revert, lambda: [kube.delete_namespace(ns, wait=target.timeouts.cleanup) for ns in made])
    return revert
