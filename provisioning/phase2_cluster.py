"""Layer 2, cluster: container runtime trust, kubeadm + CNI, StorageClass, node labels.

lab: the offline lab (real etcd, kube-apiserver, controller-manager, scheduler; KWOK nodes), started by
provisioning.lab.manager and seeded with the on-prem topology.
onprem: the cluster is checked through the target's kubeconfig; when it is not there or not Ready, and
every node answers over ssh, phase2.yml builds it (containerd trusting the registry's CA, kubeadm init
and join, flannel, local-path as the default StorageClass, node labels) and the check runs again.
"""

from __future__ import annotations

from boutique_suite.kube import ClusterUnreachable, connect
from boutique_suite.probes import node_condition
from boutique_suite.targets import Target
from boutique_suite.touches import Touches
from provisioning import playbooks
from provisioning.lab import manager
from provisioning.layer import LayerState, LayerUnavailable

PHASE = 2
NAME = "cluster"
NODES = ("k8s-master", "k8s-worker1", "k8s-worker2")


def needs(target: Target) -> tuple[int, ...]:
    # The lab's nodes trust no registry (they run no containers), so they do not need layer 1.
    return (0,) if target.is_lab else (0, 1)


def check(target: Target) -> LayerState:
    if target.is_lab:
        status = manager.status()
        if not status.healthy:
            return LayerState(PHASE, NAME, False, status.problem or "lab not running")
    try:
        kube = connect(target.cluster.kubeconfig_path, target.cluster.context, run_id="check")
    except ClusterUnreachable as exc:
        return LayerState(PHASE, NAME, False, str(exc))
    ready = {n.metadata.name: node_condition(n, "Ready") == "True" for n in kube.nodes()}
    missing = [n for n in NODES if n not in ready]
    not_ready = [n for n, ok in ready.items() if not ok]
    problems = []
    if missing:
        problems.append(f"nodes missing: {', '.join(missing)}")
    if not_ready:
        problems.append(f"nodes not Ready: {', '.join(not_ready)}")
    detail = "; ".join(problems) or f"{len(ready)} nodes Ready at {kube.server}"
    return LayerState(PHASE, NAME, not problems, detail, {n: "Ready" for n, ok in ready.items() if ok})


def ensure(target: Target) -> LayerState:
    if target.is_lab:
        try:
            started = manager.up()
        except manager.LabError as exc:
            raise LayerUnavailable(f"layer 2 (cluster) could not start the lab: {exc}") from None
        runtime = manager.node_runtime()
        if runtime is not None and runtime.kind != "real":
            for touched in (Touches.node_runtime, Touches.data_plane, Touches.load_balancer):
                target.downgrade(touched, runtime.reason)
        state = check(target)
        if not state.ready:
            raise LayerUnavailable(f"layer 2 (cluster) lab started but not ready: {state.detail}")
        return LayerState(PHASE, NAME, True, state.detail, state.components, changed=started)
    nodes = playbooks.hosts_in(target, "control_plane") + playbooks.hosts_in(target, "workers")
    return playbooks.build_layer(target, PHASE, NAME, "phase2.yml", check, nodes)
