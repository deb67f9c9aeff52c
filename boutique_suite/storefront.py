"""The storefront from outside: HTTP through the ingress VIP with the Ingress's host name, as a browser
that resolves boutique.local to the VIP would send it. Needs a data plane (on-prem)."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import requests

from boutique_suite import waits
from boutique_suite.gateway import gateway_of
from boutique_suite.kube import Kube
from boutique_suite.targets import Target

HOME_PAGE_MARK = "Online Boutique"


def expect_ingress_has_vip(kube: Kube, target: Target, namespace: str, ingress: str, host: str) -> str:
    ing = kube.networking.read_namespaced_ingress(ingress, namespace)
    hosts = [rule.host for rule in ing.spec.rules or []]
    assert host in hosts, f"Ingress {namespace}/{ingress} serves {hosts}, not {host}"
    lb = ing.status.load_balancer.ingress if ing.status and ing.status.load_balancer else None
    ips = [i.ip for i in lb or [] if i.ip]
    vip = gateway_of(target).ingress_vip
    assert vip in ips, f"Ingress {namespace}/{ingress} has the addresses {ips}, not the ingress VIP {vip}"
    return vip


def through_vip(target: Target, url: str, timeout: float = 5) -> requests.Response:
    """GET ``url`` sent to the ingress VIP with the URL's host as the Host header."""
    parts = urlsplit(url)
    vip = gateway_of(target).ingress_vip
    direct = parts._replace(netloc=vip if parts.port is None else f"{vip}:{parts.port}").geturl()
    return requests.get(
        direct, headers={"Host": parts.hostname or ""}, timeout=timeout, allow_redirects=False
    )


def answers(target: Target, url: str, status: int, text: str) -> waits.Probe:
    def probe() -> waits.Check:
        try:
            answer = through_vip(target, url)
        except requests.RequestException as exc:
            return waits.pending(f"{url}: {type(exc).__name__}")
        if answer.status_code != status or text not in answer.text:
            return waits.pending(
                f"{url}: HTTP {answer.status_code}, {text!r} {'in' if text in answer.text else 'not in'} body"
            )
        return waits.succeeded(f"{url}: HTTP {status}", answer.elapsed.total_seconds())

    return probe


def expect_answers(target: Target, url: str, status: int = 200, text: str = "", within: float = 5) -> float:
    """Waits until ``url`` answers ``status`` with ``text`` in the body; returns the seconds it took."""
    start = time.monotonic()
    waits.until(
        answers(target, url, status, text), timeout=within, interval=0.5, what=f"{url} through the VIP"
    )
    return time.monotonic() - start
