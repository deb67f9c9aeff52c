"""The storefront from outside: HTTP through the ingress VIP with the Ingress's host name, as a browser
that resolves boutique.local to the VIP would send it. Needs a data plane (on-prem)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests

from boutique_suite.clients.kube import Kube
from boutique_suite.expectations.gateway import gateway_of
from boutique_suite.run import waits
from boutique_suite.run.targets import Target

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


def repeat_in_background(sample: Callable[[], None], interval: float, name: str) -> Callable[[], None]:
    """Call ``sample`` now and then every ``interval`` seconds on a daemon thread; returns what stops it
    (and waits for the sample in flight)."""
    stop = threading.Event()

    def loop() -> None:
        while True:
            sample()
            if stop.wait(interval):
                return

    thread = threading.Thread(target=loop, name=name, daemon=True)
    thread.start()

    def halt() -> None:
        stop.set()
        thread.join(timeout=10)

    return halt


@dataclass
class Prober:
    """Requests ``url`` through the VIP ``rate`` times per second in the background; records each status
    (0 for an error) until stopped."""

    target: Target
    url: str
    rate: int
    statuses: list[int] = field(default_factory=list)
    _halt: Callable[[], None] | None = None

    def start(self) -> Prober:
        self._halt = repeat_in_background(self._ask, 1 / self.rate, "storefront-probe")
        return self

    def _ask(self) -> None:
        try:
            self.statuses.append(through_vip(self.target, self.url, timeout=2).status_code)
        except requests.RequestException:
            self.statuses.append(0)

    def stop(self) -> list[int]:
        if self._halt:
            self._halt()
        return self.statuses


def expect_share_ok(statuses: list[int], percent: float) -> float:
    assert statuses, "the probe sent no request"
    share = 100 * sum(s == 200 for s in statuses) / len(statuses)
    assert share >= percent, f"{share:.2f}% of {len(statuses)} probe requests got HTTP 200, under {percent}%"
    return share
