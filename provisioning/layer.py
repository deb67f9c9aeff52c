"""What every layer module (provisioning/phaseN_*.py) provides: check(target) and ensure(target)."""

from __future__ import annotations

from dataclasses import dataclass, field


class LayerUnavailable(Exception):
    """The target cannot provide this layer (yet). The message is the skip reason scenarios show."""


@dataclass(frozen=True)
class LayerState:
    phase: int
    name: str
    ready: bool
    detail: str
    components: dict[str, str] = field(default_factory=dict)
    changed: bool = False  # did ensure() change anything


def not_provisioned(phase: int, name: str, why: str) -> LayerUnavailable:
    return LayerUnavailable(f"layer {phase} ({name}) not provisioned: {why}")
