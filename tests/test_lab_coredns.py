"""Cluster DNS in the lab: CoreDNS, kubeadm's addon, runs as pods on the lab's nodes from its upstream image
name (pulled through the nodes' registry mirror), and answers real DNS queries sent from inside a node's
network namespace for the cluster's Services."""

from __future__ import annotations

import json

import pytest

from provisioning.lab import kubectl, manager
from provisioning.lab.machines import containerd, hosts, nodes
from provisioning.lab.services import catalog, coredns, registry


def test_the_dns_service_is_the_tenth_address_of_the_service_range() -> None:
    assert hosts.cluster_dns_ip("10.96.0.0/16") == "10.96.0.10"
    assert hosts.cluster_dns_ip("172.20.0.0/24") == "172.20.0.10"


def test_the_objects_are_kubeadms_addon_with_the_upstream_image() -> None:
    objs = {(o["kind"], o["metadata"]["name"]): o for o in coredns.objects(coredns.image(), "10.96.0.10")}
    service = objs[("Service", "kube-dns")]
    assert service["spec"]["clusterIP"] == "10.96.0.10"
    assert {(p["port"], p["protocol"]) for p in service["spec"]["ports"]} >= {(53, "UDP"), (53, "TCP")}
    pod = objs[("Deployment", "coredns")]["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == f"registry.k8s.io/coredns/coredns:{coredns.version()}"
    assert pod["dnsPolicy"] == "Default", "CoreDNS must not ask itself"
    corefile = objs[("ConfigMap", "coredns")]["data"]["Corefile"]
    assert "kubernetes cluster.local in-addr.arpa ip6.arpa" in corefile
    assert "forward . /etc/resolv.conf" in corefile
    assert "registry.k8s.io" in registry.MIRRORED_UPSTREAMS, "the nodes must pull the upstream name"


def test_the_kubelets_name_the_dns_service_and_a_resolv_conf_without_this_machines_resolvers(
    tmp_path,
) -> None:
    net = hosts.network()
    config = nodes.kubelet_config(net, "k8s-worker1", tmp_path / "ca.crt", 10250)
    assert config["clusterDNS"] == [hosts.cluster_dns_ip(str(net.service_cidr))]
    assert config["clusterDomain"] == "cluster.local"
    assert config["resolvConf"] == str(containerd.node_dir("k8s-worker1") / "resolv.conf")


@pytest.fixture(scope="module")
def dns_server() -> str:
    manager.up()
    return hosts.cluster_dns_ip(manager.SETTINGS["hosts"]["service_cidr"])


@pytest.mark.lab
def test_coredns_runs_as_pods_on_the_lab_nodes_from_its_upstream_image(dns_server: str) -> None:
    pods = json.loads(kubectl.run("-n", "kube-system", "get", "pods", "-l", "k8s-app=kube-dns", "-o", "json"))
    running = [p for p in pods["items"] if p["status"].get("phase") == "Running"]
    assert len(running) == 2, [p["metadata"]["name"] for p in pods["items"]]
    assert {p["spec"]["containers"][0]["image"] for p in running} == {coredns.image()}
    assert {p["spec"]["nodeName"] for p in running} <= {h.name for h in manager.NET.hosts}
    service = json.loads(kubectl.run("-n", "kube-system", "get", "service", "kube-dns", "-o", "json"))
    assert service["spec"]["clusterIP"] == dns_server


@pytest.mark.lab
def test_a_query_from_a_node_resolves_services_and_names_no_service_as_nxdomain(dns_server: str) -> None:
    worker = manager.NET.host("k8s-worker1")
    kubernetes = json.loads(kubectl.run("-n", "default", "get", "service", "kubernetes", "-o", "json"))
    assert coredns.query(worker, dns_server, "kubernetes.default.svc.cluster.local") == (
        "NOERROR",
        [kubernetes["spec"]["clusterIP"]],
    )
    assert coredns.query(worker, dns_server, "no-such-service.default.svc.cluster.local") == ("NXDOMAIN", [])


@pytest.mark.lab
def test_ensure_twice_changes_nothing(dns_server: str) -> None:
    before = kubectl.run(
        "-n", "kube-system", "get", "deployment", "coredns", "-o", "jsonpath={.metadata.generation}"
    )
    coredns.ensure(catalog.running(), manager.SETTINGS["hosts"]["service_cidr"])
    after = kubectl.run(
        "-n", "kube-system", "get", "deployment", "coredns", "-o", "jsonpath={.metadata.generation}"
    )
    assert before == after
