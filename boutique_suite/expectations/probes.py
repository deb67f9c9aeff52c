"""Probes: read cluster state and answer succeeded / pending / failed for waits.until."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from kubernetes.client.exceptions import ApiException

from boutique_suite.clients.kube import Kube
from boutique_suite.run.waits import Check, Probe, failed, pending, succeeded

# Waiting reasons after which a pod will not start by itself: waiting longer cannot help.
TERMINAL_WAITING = {"ImagePullBackOff", "ErrImagePull", "InvalidImageName", "CreateContainerConfigError"}
# ...except a kubelet that has not yet read what the pod refers to: it retries and the container starts
# (seen on the lab right after a force-deleted pod was replaced).
PASSING_CONFIG_ERRORS = (
    "failed to sync configmap cache",
    "failed to sync secret cache",
    "services have not yet been read",
)


def stuck_waiting(container_status) -> str | None:  # type: ignore[no-untyped-def]
    """The reason a container waits for good (an image that cannot be pulled, a missing ConfigMap), or
    None while it may still start."""
    waiting = container_status.state.waiting if container_status.state else None
    if waiting is None or waiting.reason not in TERMINAL_WAITING:
        return None
    message = getattr(waiting, "message", None) or ""
    if waiting.reason == "CreateContainerConfigError" and message.startswith(PASSING_CONFIG_ERRORS):
        return None
    return f"{waiting.reason}: {message}" if message else waiting.reason


REVISION = "deployment.kubernetes.io/revision"
TEMPLATE_HASH = "pod-template-hash"


def node_condition(node, kind: str) -> str | None:  # type: ignore[no-untyped-def]
    for cond in node.status.conditions or []:
        if cond.type == kind:
            return cond.status
    return None


def node_ready(kube: Kube, name: str) -> Probe:
    def probe() -> Check:
        try:
            node = kube.node(name)
        except ApiException as exc:
            if exc.status == 404:
                return pending(f"node {name} not registered yet")
            raise
        status = node_condition(node, "Ready")
        if status == "True":
            return succeeded(f"node {name} Ready", node)
        return pending(f"node {name} Ready={status}")

    return probe


def rollout_complete(kube: Kube, namespace: str, name: str) -> Probe:
    """The strict definition: observedGeneration >= generation, updated = available = replicas,
    no pods of old ReplicaSets, Progressing reason NewReplicaSetAvailable.

    Fails fast only on what concerns the current template: a ProgressDeadlineExceeded naming an
    earlier ReplicaSet (left from a rollout that was since reverted) and pods of old ReplicaSets
    being scaled down are not the verdict, they are progress the controller has not finished."""

    def probe() -> Check:
        try:
            dep = kube.deployment(namespace, name)
        except ApiException as exc:
            if exc.status == 404:
                return pending(f"deployment {namespace}/{name} does not exist (yet)")
            raise
        spec = dep.spec.replicas if dep.spec.replicas is not None else 1
        st = dep.status
        progressing = next((c for c in st.conditions or [] if c.type == "Progressing"), None)
        facts = (
            f"generation {dep.metadata.generation}/observed {st.observed_generation}, replicas {spec}, "
            f"updated {st.updated_replicas or 0}, available {st.available_replicas or 0}, "
            f"total {st.replicas or 0}, progressing {progressing.reason if progressing else None}"
        )
        if (st.observed_generation or 0) < (dep.metadata.generation or 0):
            return pending(facts)
        selector = ",".join(f"{k}={v}" for k, v in (dep.spec.selector.match_labels or {}).items())
        current = current_replica_set(kube, namespace, dep, selector)
        if (
            progressing
            and progressing.reason == "ProgressDeadlineExceeded"
            and (current is None or f'"{current.metadata.name}"' in (progressing.message or ""))
        ):
            return failed(f"deployment {name}: {progressing.message}")
        for pod in kube.pods(namespace, _with_template_hash(selector, current)):
            if pod.metadata.deletion_timestamp:
                continue
            for cs in (pod.status.container_statuses or []) if pod.status else []:
                if stuck := stuck_waiting(cs):
                    return failed(f"pod {pod.metadata.name}: {stuck}")
        done = (
            (st.updated_replicas or 0) == spec
            and (st.available_replicas or 0) == spec
            and (st.replicas or 0) == spec
            and progressing is not None
            and progressing.reason == "NewReplicaSetAvailable"
        )
        return succeeded(facts, dep) if done else pending(facts)

    return probe


def current_replica_set(kube: Kube, namespace: str, dep, selector: str):  # type: ignore[no-untyped-def]
    """The ReplicaSet of the Deployment's current template: the controller gives it the
    Deployment's own revision annotation (a revert re-numbers the old ReplicaSet)."""
    revision = (dep.metadata.annotations or {}).get(REVISION)
    for rs in kube.replica_sets(namespace, selector):
        owners = {ref.uid for ref in rs.metadata.owner_references or []}
        if dep.metadata.uid in owners and (rs.metadata.annotations or {}).get(REVISION) == revision:
            return rs
    return None


def _with_template_hash(selector: str, replica_set) -> str:  # type: ignore[no-untyped-def]
    template_hash = (replica_set.metadata.labels or {}).get(TEMPLATE_HASH) if replica_set else None
    return f"{selector},{TEMPLATE_HASH}={template_hash}" if template_hash else selector


def pods_running_on(kube: Kube, namespace: str, selector: str, count: int) -> Probe:
    """``count`` pods Running and Ready; value = {pod name: node name}."""

    def probe() -> Check:
        pods = [p for p in kube.pods(namespace, selector) if not p.metadata.deletion_timestamp]
        ready = {
            p.metadata.name: p.spec.node_name
            for p in pods
            if p.status.phase == "Running"
            and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
        }
        detail = f"{len(ready)}/{count} pods ready ({len(pods)} exist)"
        return succeeded(detail, ready) if len(ready) == count and len(pods) == count else pending(detail)

    return probe


def replacement_pod_ready(kube: Kube, namespace: str, selector: str, gone: str, count: int) -> Probe:
    """The deleted pod ``gone`` is replaced: ``count`` ready pods again, none of them ``gone``."""
    inner = pods_running_on(kube, namespace, selector, count)

    def probe() -> Check:
        check = inner()
        if check.outcome.value == "succeeded" and gone in check.value:  # type: ignore[operator]
            return pending(f"pod {gone} still listed")
        return check

    return probe


def hpa_replicas(kube: Kube, namespace: str, name: str, want: int) -> Probe:
    def probe() -> Check:
        hpa = kube.hpa(namespace, name)
        st = hpa.status
        current_cpu = None
        for metric in st.current_metrics or []:
            if metric.resource and metric.resource.name == "cpu":
                current_cpu = metric.resource.current.average_utilization
        detail = f"desired {st.desired_replicas}, current {st.current_replicas}, cpu {current_cpu}%"
        dep = kube.deployment(namespace, name)
        if st.desired_replicas == want and (dep.status.available_replicas or 0) == want:
            return succeeded(detail, st)
        return pending(detail)

    return probe


def metrics_available(kube: Kube, namespace: str | None = None) -> Probe:
    def probe() -> Check:
        try:
            values = kube.pod_metrics(namespace) if namespace else kube.node_metrics()
        except ApiException as exc:
            return pending(f"metrics.k8s.io answered {exc.status} {exc.reason}")
        if not values:
            return pending("metrics.k8s.io returned no items yet")
        return succeeded(f"{len(values)} items", values)

    return probe


@dataclass
class AvailabilityWatch:
    """Records a Deployment's available replicas at every change, through a watch, while it runs."""

    kube: Kube
    namespace: str
    deployment: str
    samples: list[tuple[int, int]] = field(default_factory=list)  # (available, desired)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> AvailabilityWatch:
        threading.Thread(target=self._loop, daemon=True, name=f"avail-{self.deployment}").start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                for event in self.kube.watch_deployments(self.namespace, 5):
                    obj = event["object"]  # type: ignore[index]
                    if obj.metadata.name == self.deployment:
                        self.samples.append((obj.status.available_replicas or 0, obj.spec.replicas or 0))
                    if self._stop.is_set():
                        return
            except Exception:
                time.sleep(0.5)

    def stop(self) -> list[tuple[int, int]]:
        self._stop.set()
        return self.samples
