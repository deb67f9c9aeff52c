"""What every layer module (provisioning/phaseN_*.py) provides: check(target) and ensure(target)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from boutique_suite.sites import site_for
from boutique_suite.targets import Target


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


def through_site(
    phase: int,
) -> tuple[
    Callable[[Target], tuple[int, ...]], Callable[[Target], LayerState], Callable[[Target], LayerState]
]:
    """A layer module's ``needs``, ``check`` and ``ensure``: the target's site decides how the layer is
    built (the lab its own way; on-prem through the module's ``check_onprem``/``ensure_onprem``)."""

    def needs(target: Target) -> tuple[int, ...]:
        return site_for(target).layer_needs(phase)

    def check(target: Target) -> LayerState:
        return site_for(target).check_layer(phase)

    def ensure(target: Target) -> LayerState:
        return site_for(target).ensure_layer(phase)

    return needs, check, ensure
