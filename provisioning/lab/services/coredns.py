"""Cluster DNS in the lab: CoreDNS, kubeadm's DNS addon, at the version kubeadm pins (versions.toml), built
from the Go module proxy and served to the nodes as ``registry.k8s.io/coredns/coredns:<version>``: the
nodes' containerd resolves registry.k8s.io to the lab's registry through its ``certs.d`` mirror file, as an
air-gapped site's nodes do, so the Deployment names the upstream image unchanged.

The objects are those kubeadm's addon phase creates (ServiceAccount, ClusterRole, ClusterRoleBinding, the
Corefile ConfigMap, the Deployment and the ``kube-dns`` Service at the tenth address of the Service range,
which the kubelets hand to every pod as its nameserver). Pods resolve ``<service>`` and
``<service>.<namespace>.svc.cluster.local`` through it like on-prem; names outside the cluster are forwarded
to the nodes' resolv.conf, whose only nameserver is the lab's gateway, where nothing answers: the lab has no
upstream DNS, like an air-gapped site without one.
"""

from __future__ import annotations

import json
import subprocess
import sys

from provisioning.lab import build, kubectl, recipes
from provisioning.lab.machines import hosts
from provisioning.lab.services import oci, registry

COMPONENT = "coredns"
NS = "kube-system"
NAME = "coredns"
REPOSITORY = "coredns/coredns"  # under registry.k8s.io, the name kubeadm's manifest uses
UPSTREAM_REGISTRY = "registry.k8s.io"

LABELS = {"k8s-app": "kube-dns"}


class CoreDNSError(RuntimeError):
    """Cluster DNS could not be made ready; the message names what failed."""


def version() -> str:
    return recipes.load_versions()[COMPONENT]["version"]


def image() -> str:
    return f"{UPSTREAM_REGISTRY}/{REPOSITORY}:{version()}"


def corefile() -> str:
    """kubeadm's default Corefile for the cluster domain."""
    return f"""\
.:53 {{
    errors
    health {{
       lameduck 5s
    }}
    ready
    kubernetes {hosts.CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }}
    prometheus :9153
    forward . /etc/resolv.conf {{
       max_concurrent 1000
    }}
    cache 30 {{
       disable success {hosts.CLUSTER_DOMAIN}
       disable denial {hosts.CLUSTER_DOMAIN}
    }}
    loop
    reload
    loadbalance
}}
"""


def objects(image_ref: str, cluster_ip: str, replicas: int = 2) -> list[dict]:
    """kubeadm's CoreDNS addon objects: ``image_ref`` runs, the kube-dns Service is at ``cluster_ip``."""
    meta = {"name": NAME, "namespace": NS}
    ports = [
        {"name": "dns", "port": 53, "protocol": "UDP"},
        {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
        {"name": "metrics", "port": 9153, "protocol": "TCP"},
    ]
    container = {
        "name": NAME,
        "image": image_ref,
        "imagePullPolicy": "IfNotPresent",
        "args": ["-conf", "/etc/coredns/Corefile"],
        "resources": {"limits": {"memory": "170Mi"}, "requests": {"cpu": "100m", "memory": "70Mi"}},
        "volumeMounts": [{"name": "config-volume", "mountPath": "/etc/coredns", "readOnly": True}],
        "ports": [{"name": p["name"], "containerPort": p["port"], "protocol": p["protocol"]} for p in ports],
        "livenessProbe": {
            "httpGet": {"path": "/health", "port": 8080, "scheme": "HTTP"},
            "initialDelaySeconds": 60,
            "timeoutSeconds": 5,
            "successThreshold": 1,
            "failureThreshold": 5,
        },
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181, "scheme": "HTTP"}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]},
            "readOnlyRootFilesystem": True,
        },
    }
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "system:coredns"},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["endpoints", "services", "pods", "namespaces"],
                    "verbs": ["list", "watch"],
                },
                {
                    "apiGroups": ["discovery.k8s.io"],
                    "resources": ["endpointslices"],
                    "verbs": ["list", "watch"],
                },
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "system:coredns"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "system:coredns",
            },
            "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": NS}],
        },
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"Corefile": corefile()}},
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {**meta, "labels": LABELS},
            "spec": {
                "replicas": replicas,
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
                "selector": {"matchLabels": LABELS},
                "template": {
                    "metadata": {"labels": LABELS},
                    "spec": {
                        "priorityClassName": "system-cluster-critical",
                        "serviceAccountName": NAME,
                        "tolerations": [
                            {"key": "CriticalAddonsOnly", "operator": "Exists"},
                            {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"},
                        ],
                        "nodeSelector": {"kubernetes.io/os": "linux"},
                        "affinity": {
                            "podAntiAffinity": {
                                "preferredDuringSchedulingIgnoredDuringExecution": [
                                    {
                                        "weight": 100,
                                        "podAffinityTerm": {
                                            "labelSelector": {"matchLabels": LABELS},
                                            "topologyKey": "kubernetes.io/hostname",
                                        },
                                    }
                                ]
                            }
                        },
                        "containers": [container],
                        "dnsPolicy": "Default",
                        "volumes": [
                            {
                                "name": "config-volume",
                                "configMap": {
                                    "name": NAME,
                                    "items": [{"key": "Corefile", "path": "Corefile"}],
                                },
                            }
                        ],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": "kube-dns",
                "namespace": NS,
                "labels": {**LABELS, "kubernetes.io/name": "CoreDNS"},
                "annotations": {"prometheus.io/port": "9153", "prometheus.io/scrape": "true"},
            },
            "spec": {"selector": LABELS, "clusterIP": cluster_ip, "ports": ports},
        },
    ]


def push_image(reg: registry.Registry) -> str:
    """The CoreDNS binary as a one-layer image in the lab's registry under its upstream repository and tag."""
    binary = build.ensure_all([COMPONENT])[COMPONENT] / "coredns"
    oci.push_binary_image(reg, REPOSITORY, version(), binary, "coredns")
    return image()


def ensure(reg: registry.Registry, service_cidr: str, timeout: float = 120) -> None:
    """CoreDNS running in kube-system and its ``kube-dns`` Service answering; idempotent."""
    try:
        kubectl.apply_objects(objects(push_image(reg), hosts.cluster_dns_ip(service_cidr)))
        kubectl.run("-n", NS, "rollout", "status", f"deployment/{NAME}", f"--timeout={timeout:g}s")
    except (kubectl.KubectlError, registry.RegistryError, recipes.BuildError) as exc:
        raise CoreDNSError(f"cluster DNS (CoreDNS): {exc}") from None


_QUERY = """
import json, sys
import dns.message, dns.query, dns.rcode
answer = dns.query.udp(dns.message.make_query(sys.argv[2], "A"), sys.argv[1], timeout=float(sys.argv[3]))
addresses = sorted(r.address for rrset in answer.answer for r in rrset if hasattr(r, "address"))
print(json.dumps({"rcode": dns.rcode.to_text(answer.rcode()), "addresses": addresses}))
"""


def query(host: hosts.Host, server: str, name: str, timeout: float = 5.0) -> tuple[str, list[str]]:
    """Ask ``server`` for ``name``'s A records with a real DNS query sent from inside ``host``'s network
    namespace (where its kube-proxy routes Service addresses). Returns (rcode, addresses)."""
    argv = [*host.enter(), sys.executable, "-c", _QUERY, server, name, str(timeout)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 30)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise CoreDNSError(f"no DNS answer from {server} for {name} (from {host.name}): {last}")
    found = json.loads(done.stdout)
    return found["rcode"], found["addresses"]
