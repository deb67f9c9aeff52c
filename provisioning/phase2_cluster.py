"""Layer 2, cluster: container runtime trust, kubeadm + CNI, StorageClass, node labels.

lab: the offline lab (real etcd, kube-apiserver, controller-manager, scheduler; KWOK nodes), started by
provisioning.lab.manager and seeded with the on-prem topology.
onprem: the cluster is checked through the target's kubeconfig; when it is not there or not Ready, and
every node answers over ssh, phase2.yml builds it (containerd trusting the registry's CA, kubeadm init
and join, Calico, local-path as the default StorageClass, node labels) and the check runs again.
"""

from __future__ import annotations

from boutique_suite.clients.kube import ClusterUnreachable, connect_to
from boutique_suite.context.sites import through_site
from boutique_suite.expectations.probes import node_condition
from boutique_suite.run.targets import Target
from provisioning import playbooks
from provisioning.layer import LayerState

PHASE = 2
NAME = "cluster"
NODES = ("k8s-master", "k8s-worker1", "k8s-worker2")
NEEDS = (0, 1)  # the nodes' container runtime trusts the registry of layer 1
NEEDS_EXISTING: tuple[int, ...] = ()  # a cluster the suite does not build (no hosts) is only checked


needs, check, ensure = through_site(PHASE)


def check_nodes(target: Target) -> LayerState:
    """Every node of the plan is there and Ready, read through the target's kubeconfig."""
    try:
        kube = connect_to(target, run_id="check")
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


check_onprem = check_nodes


def ensure_onprem(target: Target) -> LayerState:
    nodes = playbooks.hosts_in(target, "control_plane") + playbooks.hosts_in(target, "workers")
    return playbooks.build_layer(target, PHASE, NAME, "phase2.yml", check_nodes, nodes)
