"""Faults the scenarios inject. Each returns how to revert it, for the scenario's UndoStack."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from boutique_suite.kube import Kube

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


FAULT_BY = "boutique.suite/fault-by-run"


def cordon(kube: Kube, node: str) -> None:
    """Cordon ``node`` and record which run did it, so an interrupted run's cordon can be undone later."""
    kube.core.patch_node(
        node, {"metadata": {"annotations": {FAULT_BY: kube.run_id}}, "spec": {"unschedulable": True}}
    )


def uncordon(kube: Kube, node: str) -> None:
    patch = {"metadata": {"annotations": {FAULT_BY: None}}, "spec": {"unschedulable": None}}
    kube.core.patch_node(node, patch)


def clean_leftovers(kube: Kube) -> list[str]:
    """Undo what earlier, interrupted runs left: their cordons and their namespaces (with their pods)."""
    undone = []
    for node in kube.nodes():
        by = (node.metadata.annotations or {}).get(FAULT_BY)
        if by and by != kube.run_id:
            uncordon(kube, node.metadata.name)
            undone.append(f"node/{node.metadata.name} uncordoned (left by run {by})")
    undone += [f"namespace/{ns} deleted" for ns in kube.delete_leftovers()]
    return undone


def leave_interrupted_run(kube: Kube, node: str, run_id: str) -> dict[str, str]:
    """Do what a chaos run interrupted half-way leaves behind: ``node`` cordoned, a stress pod on it."""
    from dataclasses import replace

    earlier = replace(kube, run_id=run_id)
    cordon(earlier, node)
    namespace = earlier.create_namespace("suite")
    earlier.create_pod(namespace, "stress", node=node, cpu="500m")
    return {"node": node, "namespace": namespace, "pod": "stress"}
