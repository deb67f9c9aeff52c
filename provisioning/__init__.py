"""One provisioning module per layer (phase 0-7), each with check(target) and ensure(target).

``LayerRunner.require(n)`` ensures the layers below ``n`` in order, then ``n``; results (and the
reasons a layer is unavailable) are remembered for the session, so each layer is ensured once. A layer
is ready, absent (``LayerUnavailable``: its scenarios skip) or broken (``LayerBroken``: they fail); an
``ensure`` that returns a state that is not ready is broken too.
"""

from __future__ import annotations

import logging
import time
from types import ModuleType

from boutique_suite.run.targets import Target
from provisioning import (
    phase0_foundation,
    phase1_platform,
    phase2_cluster,
    phase3_gateway_argocd,
    phase4_gitops,
    phase5_cicd,
    phase6_observability,
    phase7_advanced,
)
from provisioning.layer import LayerBroken, LayerState, LayerUnavailable, broken

log = logging.getLogger(__name__)

LAYERS: tuple[ModuleType, ...] = (
    phase0_foundation,
    phase1_platform,
    phase2_cluster,
    phase3_gateway_argocd,
    phase4_gitops,
    phase5_cicd,
    phase6_observability,
    phase7_advanced,
)


class LayerRunner:
    def __init__(self, target: Target) -> None:
        self.target = target
        self.results: dict[int, LayerState | LayerUnavailable] = {}
        self.seconds: dict[int, float] = {}

    def require(self, phase: int) -> LayerState:
        """Ensure layers 0..phase-1 (recording what they could not provide), then ``phase``.

        A lower layer that is unavailable stops ``phase`` only when ``phase`` needs it on this target
        (``needs(target)`` of the layer module): the lab's cluster does not need GitLab, for example.
        """
        for lower in range(phase):
            self._ensure(lower)
        result = self._ensure(phase)
        if isinstance(result, LayerUnavailable):
            raise result
        return result

    def _ensure(self, phase: int) -> LayerState | LayerUnavailable:
        if phase not in self.results:
            module = LAYERS[phase]
            missing = self._missing_need(phase)
            if missing is not None:
                self.results[phase] = missing
                self.seconds[phase] = 0.0
                return missing
            started = time.monotonic()
            try:
                state = module.ensure(self.target)
                if not state.ready:
                    raise broken(phase, module.NAME, state.detail)
                self.results[phase] = state
                log.info("layer %d (%s) ready: %s", phase, module.NAME, state.detail)
            except LayerUnavailable as exc:
                self.results[phase] = exc
                log.info("%s", exc)
            self.seconds[phase] = time.monotonic() - started
        return self.results[phase]

    def _missing_need(self, phase: int) -> LayerUnavailable | None:
        """The first layer ``phase`` needs that is unavailable, said once: the reason is the needed layer's
        own (the first missing thing), never ensured around."""
        module = LAYERS[phase]
        for needed in module.needs(self.target):
            result = self._ensure(needed)
            if isinstance(result, LayerBroken):
                return result.needed_by(phase, module.NAME)
            if isinstance(result, LayerUnavailable):
                root = str(result).split(" (needed by layer")[0]
                return LayerUnavailable(f"{root} (needed by layer {phase}, {module.NAME})")
        return None
