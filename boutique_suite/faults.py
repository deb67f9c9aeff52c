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
