"""What every layer module (provisioning/phaseN_*.py) provides: check(target) and ensure(target)."""

from __future__ import annotations

from dataclasses import dataclass, field


class LayerUnavailable(Exception):
    """The layer is not ready for scenarios. Raised as itself, the target does not provide the layer (yet):
    the message is the skip reason scenarios show. Raised as :class:`LayerBroken`, the target has it and it
    is unhealthy: the scenarios that need it fail."""


class LayerBroken(LayerUnavailable):
    """The target provides this layer, and after its ensure it is not healthy. Every scenario that needs it
    fails with this message; ``evidence`` (name -> text: the Application's conditions, unhealthy resources,
    the pods' events and logs) is attached to the report once per run."""

    def __init__(self, message: str, evidence: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.evidence: dict[str, str] = dict(evidence or {})

    def needed_by(self, phase: int, name: str) -> LayerBroken:
        """The same cause, for a layer above that needs this one (the evidence stays the root's)."""
        root = str(self).split(" (needed by layer")[0]
        return LayerBroken(f"{root} (needed by layer {phase}, {name})", self.evidence)


@dataclass(frozen=True)
class LayerState:
    phase: int
    name: str
    ready: bool
    detail: str
    components: dict[str, str] = field(default_factory=dict)
    changed: bool = False  # did ensure() change anything


def not_provisioned(phase: int, name: str, why: str) -> LayerUnavailable:
    """Absent: the target does not provide the layer (a section its file leaves out, code not written yet)."""
    return LayerUnavailable(f"layer {phase} ({name}) not provisioned: {why}")


def broken(phase: int, name: str, why: str, evidence: dict[str, str] | None = None) -> LayerBroken:
    """Provided but unhealthy: the target has the layer and its ensure could not make it ready."""
    return LayerBroken(f"layer {phase} ({name}) broken: {why}", evidence)
