"""Layer 3, gateway + Argo CD: MetalLB pool, ingress-nginx VIP, Argo CD + Ingress + repository credentials.

lab: real Argo CD (server, repo-server, application controller) and redis as local processes against the
lab apiserver, gitops-repo credentials over HTTPS with the platform CA, Argo CD's Service and Ingress as
objects in the lab; real MetalLB controller (address management only, no speaker) with gitops-repo's pool
on the lab target's loopback range, and ingress-nginx's Service (ingress-nginx itself cannot run). When
MetalLB's controller cannot start, Argo CD is still provided: the MetalLB scenarios skip with the reason.
onprem: Argo CD pinned (install.yaml from its Go module), its Ingress, gitops-repo's credentials and the
root Application of the app-of-apps (provisioning/argocd_bootstrap.py); MetalLB, ingress-nginx and the
rest come through the app-of-apps.
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
        return _check_onprem(target)
    from provisioning.lab import argocd, metallb

    procs = argocd.status()
    down = [name for name, proc in procs.items() if not proc.alive]
    detail = f"not running: {', '.join(down)}" if down else "Argo CD and redis running"
    components = {n: str(p.pid) for n, p in procs.items()}
    controller = metallb.status()
    components[metallb.NAME] = str(controller.pid) if controller.alive else "not running"
    return LayerState(PHASE, NAME, not down, detail, components)


def _check_onprem(target: Target) -> LayerState:
    from provisioning import argocd_bootstrap
    from provisioning.lab.kubectl import KubectlError

    ns = target.argocd_namespace
    try:
        kubectl = argocd_bootstrap.kubectl_for(target)
        for workload in argocd_bootstrap.WORKLOADS:
            kubectl.run("rollout", "status", "-n", ns, workload, "--timeout=5s", timeout=30)
    except (argocd_bootstrap.BootstrapError, KubectlError) as exc:
        return LayerState(PHASE, NAME, False, str(exc))
    return LayerState(PHASE, NAME, True, f"Argo CD {argocd_bootstrap.version()} rolled out in {ns}")


def _ensure_onprem(target: Target) -> LayerState:
    from provisioning import argocd_bootstrap

    try:
        changed = argocd_bootstrap.ensure(target)
    except argocd_bootstrap.BootstrapError as exc:
        raise not_provisioned(PHASE, NAME, f"Argo CD bootstrap: {exc}") from None
    state = check(target)
    detail = f"{state.detail}; changed: {', '.join(changed) if changed else 'nothing'}"
    return LayerState(PHASE, NAME, state.ready, detail, state.components, changed=bool(changed))


def ensure(target: Target) -> LayerState:
    if not target.is_lab:
        return _ensure_onprem(target)
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
