"""Real MetalLB in the lab: its controller, built from the Go module proxy, runs as a local process on
127.0.0.1 against the lab's apiserver, with its CRDs from MetalLB's own module and gitops-repo's
IPAddressPool and L2Advertisement (platform/config/metallb); its speaker runs as MetalLB's own DaemonSet
(metallb-native.yaml from the module) on the lab's real nodes, from an image of the speaker binary in the
lab's registry.

The controller assigns LoadBalancer Services an address from the pool (``status.loadBalancer.ingress`` and
the annotation ``metallb.io/ip-allocated-from-pool``); the speakers announce it in L2 mode (ARP on the lab
bridge), and kube-proxy on the node answering forwards the traffic: a client on the bridge reaches the
Service for real. The lab's pool is gitops-repo's with the address range of the lab target file, inside the
lab bridge's own subnet, so no address of a real LAN ever appears in the lab.

The controller runs with its validating webhook and the webhook's certificate rotation switched off
(``--webhook-mode=disabled``: no apiserver-to-webhook path to a local process); its metrics listen on
127.0.0.1 only (see versions.toml). ingress-nginx's image cannot be fetched offline:
``publish_ingress_service`` creates only its Service, as the chart renders it, so MetalLB gives the ingress
VIP to it.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import requests
import yaml

from boutique_suite.run import waits
from provisioning.lab import build, kubectl, lab_status, layout, locks, manager, processes, recipes

NS = "metallb-system"
NAME = "metallb-controller"  # the process (and its binary)
COMPONENT = "metallb"  # section of versions.toml
HOST = "127.0.0.1"
PORT: int = manager.SETTINGS["platform_ports"]["metallb_controller_metrics"]
HOME = processes.PLATFORM / "metallb"
GITOPS = Path(__file__).resolve().parents[2] / "gitops"
POOL_CONFIG = GITOPS / "platform" / "config" / "metallb"
INGRESS_VALUES = GITOPS / "platform" / "values" / "ingress-nginx.yaml"
INGRESS_NS = "ingress-nginx"
INGRESS_SERVICE = "ingress-nginx-controller"
POOL_ANNOTATION = "metallb.io/address-pool"
VIP_ANNOTATION = "metallb.io/loadBalancerIPs"
ALLOCATED_FROM = "metallb.io/ip-allocated-from-pool"
STAND_IN = {
    "app.kubernetes.io/managed-by": "boutique-lab",
    "boutique.lab/stand-in": "ingress-nginx",  # the Service only: ingress-nginx cannot run in the lab
}
CRDS = ("ipaddresspools.metallb.io", "l2advertisements.metallb.io")


class MetalLBError(Exception):
    """MetalLB's controller could not be started in the lab; the message says what and where."""


@dataclass(frozen=True)
class Controller:
    pid: int
    metrics_url: str
    pool: str
    addresses: list[str]
    version: str
    log: Path


# --- configuration ------------------------------------------------------------------------------


def gitops_pool_objects() -> list[dict]:
    """IPAddressPool + L2Advertisement as gitops-repo renders them (kustomize, namespace metallb-system)."""
    rendered = kubectl.run("kustomize", str(POOL_CONFIG))
    return [doc for doc in yaml.safe_load_all(rendered) if doc]


def lab_pool_objects(addresses: list[str]) -> list[dict]:
    """gitops-repo's pool objects with the lab target's address range in place of the LAN's."""
    objects = copy.deepcopy(gitops_pool_objects())
    pools = [o for o in objects if o["kind"] == "IPAddressPool"]
    if len(pools) != 1:
        raise MetalLBError(f"{POOL_CONFIG}: expected one IPAddressPool, found {len(pools)}")
    pools[0]["spec"]["addresses"] = list(addresses)
    for obj in objects:
        obj["metadata"].setdefault("labels", {})["app.kubernetes.io/part-of"] = "metallb"
    return objects


def pool_name() -> str:
    return next(o["metadata"]["name"] for o in gitops_pool_objects() if o["kind"] == "IPAddressPool")


def _configure(addresses: list[str]) -> None:
    """CRDs from the module (cached with the binary), the namespace, gitops-repo's pool and advertisement."""
    kubectl.apply("-f", str(build.bin_dir(COMPONENT).parent / "crds"))
    kubectl.apply_objects([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}])
    for crd in CRDS:
        kubectl.run("wait", "--for=condition=Established", f"crd/{crd}", "--timeout=30s")
    kubectl.apply_objects(lab_pool_objects(addresses))


# --- the process ----------------------------------------------------------------------------------


def _argv() -> list[str]:
    return [
        str(build.bin_dir(COMPONENT) / NAME),
        "--kubeconfig",
        str(layout.KUBECONFIG),
        "--namespace",
        NS,
        "--port",
        str(PORT),
        "--webhook-mode",
        "disabled",
        "--disable-cert-rotation",
        "--log-level",
        "info",
    ]


def _env() -> dict[str, str]:
    HOME.mkdir(parents=True, exist_ok=True)
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(HOME),
        "KUBECONFIG": str(layout.KUBECONFIG),
    }


def metrics() -> str:
    resp = requests.get(f"http://{HOST}:{PORT}/metrics", timeout=5)
    resp.raise_for_status()
    return resp.text


def _wait_pool_loaded(pool: str, timeout: float = 60) -> float:
    """Until the controller's allocator reports the pool (it has read the IPAddressPool); seconds."""
    want = f'metallb_allocator_addresses_total{{pool="{pool}"}}'
    log = processes.log_path(NAME)

    def loaded() -> waits.Check:
        if not processes.info(NAME).alive:
            return waits.failed(f"{NAME} exited (log {log})")
        try:
            if want in metrics():
                return waits.succeeded()
        except requests.RequestException as exc:
            return waits.pending(f"metrics: {exc} (log {log})")
        return waits.pending(f"its metrics do not list pool {pool} yet (log {log})")

    return waits.until(
        loaded, timeout=timeout, what=f"{NAME} ready", interval=0.5, error=MetalLBError
    ).seconds


def _exclusive() -> contextlib.AbstractContextManager[None]:
    return locks.exclusive(HOME / ".lock")


def status() -> processes.Proc:
    return processes.info(NAME)


_last_error: list[str] = []  # why the last ensure() in this process failed, for the scenarios' skip reason


def last_error() -> str | None:
    return _last_error[-1] if _last_error else None


def ensure(addresses: list[str]) -> Controller:
    """Idempotent: CRDs, namespace, pool and advertisement applied (server-side, no change when equal), the
    controller running. A running controller of the same lab with the same arguments is left alone."""
    _last_error.clear()
    try:
        return _ensure(addresses)
    except MetalLBError as exc:
        _last_error.append(str(exc))
        raise


def _ensure(addresses: list[str]) -> Controller:
    try:
        build.ensure_all([COMPONENT, "kubernetes"])
        manager.up()
    except (recipes.BuildError, manager.LabError) as exc:
        raise MetalLBError(str(exc)) from None
    pool = pool_name()
    with _exclusive():
        try:
            _configure(addresses)
        except kubectl.KubectlError as exc:
            raise MetalLBError(str(exc)) from None
        # Started before the cluster last became ready (a recreated lab): start again on the new cluster.
        cluster_since = (lab_status.read_stamp() or {}).get("ready_at", 0.0)
        try:
            proc = processes.start(NAME, _argv(), _env(), PORT, wait=60, not_before=cluster_since)
        except processes.ProcessError as exc:
            raise MetalLBError(str(exc)) from None
        _wait_pool_loaded(pool)
        runtime = lab_status.node_runtime()
        if runtime is not None and runtime.kind == "real":
            ensure_speakers()
    return Controller(
        pid=proc.pid or 0,
        metrics_url=f"http://{HOST}:{PORT}/metrics",
        pool=pool,
        addresses=list(addresses),
        version=recipes.load_versions()[COMPONENT]["version"],
        log=proc.log,
    )


def stop() -> bool:
    """Stop the controller; the pool and the addresses it assigned stay in the lab. True when one ran."""
    with _exclusive():
        return processes.stop(NAME)


# --- the speakers -----------------------------------------------------------------------------------

SPEAKER_COMPONENT = "metallb-speaker"
SPEAKER_IMAGE = "metallb/speaker"  # quay.io/metallb/speaker:<version>, from the lab's mirror
SPEAKER_OBJECTS = {  # (kind, name) of MetalLB's own native manifest that make up the speaker
    ("ServiceAccount", "speaker"),
    ("Role", "pod-lister"),
    ("ClusterRole", "metallb-system:speaker"),
    ("RoleBinding", "pod-lister"),
    ("ClusterRoleBinding", "metallb-system:speaker"),
    ("ConfigMap", "metallb-excludel2"),
    ("DaemonSet", "speaker"),
}
MEMBERLIST_SECRET = "memberlist"


def speaker_objects(image: str) -> list[dict]:
    """The speaker's objects from MetalLB's own metallb-native.yaml (cached with the binary), the image set
    to the lab registry's."""
    manifest = build.bin_dir(SPEAKER_COMPONENT).parent / "manifests" / "metallb-native.yaml"
    docs = [d for d in yaml.safe_load_all(manifest.read_text()) if d]
    objects = [d for d in docs if (d["kind"], d["metadata"]["name"]) in SPEAKER_OBJECTS]
    for obj in objects:
        if obj["kind"] == "DaemonSet":
            for container in obj["spec"]["template"]["spec"]["containers"]:
                container["image"] = image
    if len(objects) != len(SPEAKER_OBJECTS):
        raise MetalLBError(
            f"{manifest}: expected {len(SPEAKER_OBJECTS)} speaker objects, found {len(objects)}"
        )
    return objects


def _push_speaker_image() -> str:
    """A one-layer image of the speaker binary under its upstream name in the lab's mirror (quay.io cannot
    be reached offline)."""
    from provisioning.lab.services import catalog, oci

    version = recipes.load_versions()[COMPONENT]["version"]
    binary = build.bin_dir(SPEAKER_COMPONENT) / "metallb-speaker"
    oci.push_binary_image(catalog.running(), SPEAKER_IMAGE, version, binary, "speaker")
    return f"quay.io/{SPEAKER_IMAGE}:{version}"


def _ensure_memberlist_secret() -> None:
    """The speakers' memberlist key, made once in the cluster (what MetalLB's Helm chart generates)."""
    found = kubectl.run("-n", NS, "get", "secret", "--ignore-not-found", "-o", "name", MEMBERLIST_SECRET)
    if not found.strip():
        key = base64.b64encode(secrets.token_bytes(128)).decode()
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": MEMBERLIST_SECRET, "namespace": NS},
            "data": {"secretkey": base64.b64encode(key.encode()).decode()},
        }
        kubectl.apply_objects([secret])


def ensure_speakers(timeout: float = 120) -> None:
    """MetalLB's speaker DaemonSet on the real nodes (hostNetwork, L2: ARP on the lab bridge), so a client
    on the bridge reaches a LoadBalancer Service for real. k8s-master runs one too and, labelled
    exclude-from-external-load-balancers, announces nothing."""
    build.ensure_all([SPEAKER_COMPONENT])
    try:
        image = _push_speaker_image()
        _ensure_memberlist_secret()
        kubectl.apply_objects(speaker_objects(image))
        kubectl.run(
            "-n",
            NS,
            "rollout",
            "status",
            "daemonset/speaker",
            f"--timeout={timeout:g}s",
        )
    except kubectl.KubectlError as exc:
        raise MetalLBError(f"MetalLB's speaker: {exc}") from None


# --- ingress-nginx's Service ----------------------------------------------------------------------


def ingress_service(vip: str) -> dict:
    """ingress-nginx's controller Service as the chart renders it with platform/values/ingress-nginx.yaml
    (type LoadBalancer, its annotations), the VIP annotation set to the lab target's ingress VIP."""
    values = yaml.safe_load(INGRESS_VALUES.read_text())["controller"]["service"]
    annotations = {**(values.get("annotations") or {}), VIP_ANNOTATION: vip}
    labels = {
        "app.kubernetes.io/name": "ingress-nginx",
        "app.kubernetes.io/instance": "ingress-nginx",
        "app.kubernetes.io/component": "controller",
    }
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": INGRESS_SERVICE,
            "namespace": INGRESS_NS,
            "labels": {**labels, **STAND_IN},
            "annotations": annotations,
        },
        "spec": {
            "type": values.get("type", "LoadBalancer"),
            "selector": labels,
            "ports": [
                {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"},
                {"name": "https", "port": 443, "targetPort": "https", "protocol": "TCP"},
            ],
        },
    }


def publish_ingress_service(vip: str) -> None:
    """Idempotent: namespace ingress-nginx and the controller's Service (no Deployment: no containers)."""
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": INGRESS_NS}}
    kubectl.apply_objects([namespace, ingress_service(vip)])
