"""Layer 3, gateway + Argo CD: MetalLB pool, ingress-nginx VIP, Argo CD + Ingress + repository credentials.

lab: real Argo CD (server, repo-server, application controller) and redis as local processes against the
lab apiserver, gitops-repo credentials over HTTPS with the platform CA, Argo CD's Service and Ingress as
objects in the lab; real MetalLB controller (address management only, no speaker) with gitops-repo's pool
on the lab target's loopback range, and ingress-nginx's Service (ingress-nginx itself cannot run). When
MetalLB's controller cannot start, Argo CD is still provided: the MetalLB scenarios skip with the reason.
onprem: the Argo CD bootstrap is not written yet (issue #5).
"""

from __future__ import annotations

import logging

from boutique_suite.targets import Target
from provisioning.layer import LayerState, LayerUnavailable, not_provisioned

log = logging.getLogger(__name__)

PHASE = 3
NAME = "gateway + Argo CD"


def needs(target: Target) -> tuple[int, ...]:
    return (1, 2)


def check(target: Target) -> LayerState:
    if not target.is_lab:
        raise not_provisioned(PHASE, NAME, "the Argo CD bootstrap on real hosts is not written yet (#5)")
    from provisioning.lab import argocd, metallb

    procs = argocd.status()
    down = [name for name, proc in procs.items() if not proc.alive]
    detail = f"not running: {', '.join(down)}" if down else "Argo CD and redis running"
    components = {n: str(p.pid) for n, p in procs.items()}
    controller = metallb.status()
    components[metallb.NAME] = str(controller.pid) if controller.alive else "not running"
    return LayerState(PHASE, NAME, not down, detail, components)


def ensure(target: Target) -> LayerState:
    if not target.is_lab:
        return check(target)
    from provisioning.lab import argocd, kubectl

    try:
        lab = argocd.ensure()
        argocd.expose()
    except (argocd.ArgoCDError, kubectl.KubectlError) as exc:
        raise LayerUnavailable(f"layer 3 (gateway + Argo CD) could not start Argo CD: {exc}") from None
    gateway = _ensure_lab_gateway(target)
    state = check(target)
    return LayerState(PHASE, NAME, state.ready, f"{state.detail} at {lab.url}; {gateway}", state.components)


def _ensure_lab_gateway(target: Target) -> str:
    """MetalLB's controller with the target's pool, and ingress-nginx's Service; what happened, in words.
    A failure is logged and reported by the MetalLB scenarios (they skip), Argo CD's stay unaffected."""
    from provisioning.lab import kubectl, metallb

    if target.gateway is None:
        return "no MetalLB: the target file has no gateway section"
    try:
        controller = metallb.ensure(target.gateway.addresses)
        metallb.publish_ingress_service(target.gateway.ingress_vip)
    except (metallb.MetalLBError, kubectl.KubectlError) as exc:
        log.warning("MetalLB's controller could not be started in the lab: %s", exc)
        return f"MetalLB's controller not running: {exc}"
    return f"MetalLB {controller.version} controller (pid {controller.pid}) with pool {controller.pool}"
