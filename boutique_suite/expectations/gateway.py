"""Phase 3's gateway: MetalLB's pool and advertisement, LoadBalancer addresses, ingress-nginx's VIP.

Read through the Kubernetes API, the same on the lab and on-prem. On the lab MetalLB's controller is a local
process (provisioning/lab/services/metallb.py) without a speaker, and ingress-nginx exists only as its
Service."""

from __future__ import annotations

import time

import requests
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from boutique_suite.clients.kube import Kube
from boutique_suite.expectations import probes
from boutique_suite.run import waits
from boutique_suite.run.targets import Gateway, Target, ip_range
from boutique_suite.run.touches import Touches, touches
from boutique_suite.run.undo import UndoStack

METALLB_NS = "metallb-system"
GROUP, VERSION = "metallb.io", "v1beta1"
POOL_ANNOTATION = "metallb.io/address-pool"
ALLOCATED_FROM = "metallb.io/ip-allocated-from-pool"
INGRESS_NS, INGRESS_DEPLOYMENT = "ingress-nginx", "ingress-nginx-controller"
TEST_SERVICE = "suite-loadbalancer"


def gateway_of(target: Target) -> Gateway:
    assert target.gateway is not None, f"target {target.name} has no gateway section (pool, addresses, VIP)"
    return target.gateway


def _custom(kube: Kube, plural: str) -> list[dict]:
    return kube.custom.list_namespaced_custom_object(GROUP, VERSION, METALLB_NS, plural)["items"]


def _ranges(addresses: list[str]) -> list[tuple[str, str]]:
    return sorted((str(a), str(b)) for a, b in map(ip_range, addresses))


def expect_pool_matches_target(kube: Kube, target: Target, pool: str) -> dict:
    """The IPAddressPool exists in metallb-system and covers exactly the target file's address ranges."""
    gateway = gateway_of(target)
    assert gateway.pool == pool, f"the target file's pool is {gateway.pool!r}, the scenario asks for {pool!r}"
    try:
        obj = kube.custom.get_namespaced_custom_object(GROUP, VERSION, METALLB_NS, "ipaddresspools", pool)
    except ApiException as exc:
        if exc.status == 404:
            raise AssertionError(f"no IPAddressPool {pool} in namespace {METALLB_NS}") from None
        raise
    have = _ranges(obj["spec"].get("addresses") or [])
    want = _ranges(gateway.addresses)
    assert have == want, f"IPAddressPool {pool} holds {have}, the target file gives {want}"
    return obj


def expect_advertised(kube: Kube, pool: str) -> str:
    """An L2Advertisement in metallb-system selects the pool (by name, or all pools when it names none)."""
    found = []
    for adv in _custom(kube, "l2advertisements"):
        spec = adv.get("spec") or {}
        pools = spec.get("ipAddressPools") or []
        selects_all = not pools and not spec.get("ipAddressPoolSelectors")
        if pool in pools or selects_all:
            found.append(adv["metadata"]["name"])
    assert found, f"no L2Advertisement in {METALLB_NS} announces {pool}"
    return found[0]


def create_test_service(
    kube: Kube, namespace: str, pool: str, name: str = TEST_SERVICE, app: str = ""
) -> float:
    """A LoadBalancer Service asking for ``pool`` (MetalLB's annotation), port 80 to the pods labelled
    ``app`` (default: none: an address and no endpoints); returns when it was created."""
    body = client.V1Service(
        metadata=client.V1ObjectMeta(
            name=name,
            labels=kube.labels({"app": TEST_SERVICE}),
            annotations={POOL_ANNOTATION: pool},
        ),
        spec=client.V1ServiceSpec(
            type="LoadBalancer",
            selector={"app": app or TEST_SERVICE},
            ports=[client.V1ServicePort(name="http", port=80, target_port=8080, protocol="TCP")],
        ),
    )
    kube.core.create_namespaced_service(namespace, body)
    return time.monotonic()


def delete_test_service(kube: Kube, namespace: str, name: str = TEST_SERVICE) -> None:
    try:
        kube.core.delete_namespaced_service(name, namespace)
    except ApiException as exc:
        if exc.status != 404:
            raise


@touches(Touches.load_balancer, Touches.data_plane)
def expect_storefront_at(address: str, timeout: float, virtual_host: str | None = None) -> float:
    """``http://<address>/`` answers 200 with the storefront's page (the frontend behind a LoadBalancer
    address: ARP from MetalLB's speaker, kube-proxy's rules on the node; behind ingress-nginx, asked for
    ``virtual_host``); seconds it took."""
    started = time.monotonic()
    headers = {"Host": virtual_host} if virtual_host else {}

    def probe() -> waits.Check:
        try:
            resp = requests.get(f"http://{address}/", timeout=3, headers=headers)
        except requests.RequestException as exc:
            return waits.pending(f"{address}: {exc.__class__.__name__}")
        if resp.status_code == 200 and "Online Boutique" in resp.text:
            return waits.succeeded(f"{address}: 200")
        return waits.pending(f"{address}: HTTP {resp.status_code}")

    waits.until(probe, timeout=timeout, interval=0.5, what=f"the storefront at http://{address}/")
    return time.monotonic() - started


def create_frontend_loadbalancer(
    kube: Kube, target: Target, namespace: str, undo: UndoStack, service: str = TEST_SERVICE
) -> dict:
    """The test LoadBalancer Service in front of the frontend's pods in ``namespace`` (deleted on undo,
    journaled: a run killed before its undo leaves a Service the next run removes)."""
    undo.push(
        f"delete the frontend's test LoadBalancer {service}",
        lambda: delete_test_service(kube, namespace, service),
        journal=("delete_service", {"namespace": namespace, "name": service}),
    )
    created = create_test_service(kube, namespace, gateway_of(target).pool, service, app="frontend")
    return {"namespace": namespace, "created": created}


def storefront_behind(
    kube: Kube, target: Target, namespace: str, timeout: float, service: str = TEST_SERVICE
) -> str:
    """The test LoadBalancer Service's address from the pool, once the storefront answers there."""
    gw = gateway_of(target)
    started = time.monotonic()
    address = waits.until(
        address_from_pool(kube, gw, namespace, service, gw.pool),
        timeout=timeout,
        interval=0.25,
        what=f"external IP of Service {namespace}/{service}",
    ).check.value
    expect_storefront_at(address, timeout - (time.monotonic() - started))
    return address


def expect_storefront_behind(kube: Kube, target: Target, loadbalancer: dict, timeout: float) -> float:
    """The test LoadBalancer Service has its address from the pool and the storefront answers there;
    seconds from now until it answered."""
    started = time.monotonic()
    loadbalancer["address"] = storefront_behind(kube, target, loadbalancer["namespace"], timeout)
    return time.monotonic() - started


def address_from_pool(kube: Kube, gateway: Gateway, namespace: str, service: str, pool: str) -> waits.Probe:
    """Succeeds with the Service's external IP once MetalLB assigned one from ``pool`` (its annotation
    says so and the address is in the target's ranges); an address outside the pool fails at once."""

    def probe() -> waits.Check:
        try:
            svc = kube.core.read_namespaced_service(service, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return waits.pending(f"Service {namespace}/{service} does not exist (yet)")
            raise
        ingress = (
            svc.status.load_balancer.ingress if svc.status and svc.status.load_balancer else None
        ) or []
        ips = [i.ip for i in ingress if i.ip]
        if not ips:
            return waits.pending(f"Service {namespace}/{service} has no external IP yet")
        by = (svc.metadata.annotations or {}).get(ALLOCATED_FROM)
        outside = [ip for ip in ips if not gateway.contains(ip)]
        if outside:
            return waits.failed(f"Service {namespace}/{service} got {outside}, outside {gateway.addresses}")
        if by != pool:
            return waits.pending(f"Service {namespace}/{service} has {ips}, allocated from {by!r}")
        return waits.succeeded(f"Service {namespace}/{service}: {ips[0]} from {pool}", ips[0])

    return probe


def expect_address_from_pool(
    kube: Kube, target: Target, namespace: str, service: str, pool: str, timeout: float
) -> waits.Waited:
    return waits.until(
        address_from_pool(kube, gateway_of(target), namespace, service, pool),
        timeout=timeout,
        interval=0.25,
        what=f"external IP of Service {namespace}/{service} from {pool}",
    )


def storefront_host(kube: Kube, namespace: str, ingress: str = "frontend") -> str:
    """The host name the frontend's Ingress in ``namespace`` routes (gitops-repo's overlay sets it)."""
    rules = kube.networking.read_namespaced_ingress(ingress, namespace).spec.rules or []
    hosts = [rule.host for rule in rules if rule.host]
    assert hosts, f"Ingress {namespace}/{ingress} routes no host name"
    return hosts[0]


@touches(Touches.node_runtime)
def expect_ingress_controller_available(kube: Kube, target: Target) -> None:
    """ingress-nginx's controller Deployment rolled out (callers skip where ingress_controller_missing)."""
    waits.until(
        probes.rollout_complete(kube, INGRESS_NS, INGRESS_DEPLOYMENT),
        timeout=target.timeouts.assertion,
        what=f"Deployment {INGRESS_NS}/{INGRESS_DEPLOYMENT}",
    )


def expect_ingress_vip(target: Target, ip: str) -> None:
    vip = gateway_of(target).ingress_vip
    assert ip == vip, f"ingress-nginx's Service has {ip}, the target file expects the ingress VIP {vip}"


def storefront_url(kube: Kube, target: Target, namespace: str, loadbalancer: dict) -> tuple[str, str | None]:
    """(URL, Host header) of the storefront: the frontend's LoadBalancer Service where the scenario made one
    (``loadbalancer['address']``), else the ingress VIP with the host the frontend's Ingress routes."""
    if "address" in loadbalancer:
        return f"http://{loadbalancer['address']}", None
    return f"http://{gateway_of(target).ingress_vip}", storefront_host(kube, namespace)


def ingress_address(kube: Kube, target: Target, service: str, pool: str) -> str:
    """The external IP from ``pool`` of ingress-nginx's Service ``service`` (waited for)."""
    waited = expect_address_from_pool(kube, target, INGRESS_NS, service, pool, target.timeouts.assertion)
    return waited.check.value


def expect_test_service_address(
    kube: Kube, target: Target, loadbalancer: dict, pool: str, timeout: float
) -> float:
    """The scenario's test Service (``loadbalancer``: its namespace, when it was created) gets an external
    IP from ``pool``; seconds from its creation."""
    namespace = loadbalancer["namespace"]
    expect_address_from_pool(kube, target, namespace, TEST_SERVICE, pool, timeout)
    return time.monotonic() - loadbalancer["created"]
