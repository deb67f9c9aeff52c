"""The storefront is asked through the ingress VIP with the Ingress's host name; no cluster needed."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from boutique_suite.expectations import storefront
from boutique_suite.run import targets, waits

ONPREM = targets.load(str(targets.TARGETS_DIR / "onprem.example.yaml"))


class _Answer:
    def __init__(self, status: int, text: str) -> None:
        self.status_code, self.text, self.elapsed = status, text, SimpleNamespace(total_seconds=lambda: 0.1)


def test_a_request_goes_to_the_vip_with_the_host_header(monkeypatch: pytest.MonkeyPatch) -> None:
    sent = {}

    def get(url: str, headers: dict, **_: object) -> _Answer:
        sent.update(url=url, host=headers["Host"])
        return _Answer(200, "ok")

    monkeypatch.setattr(storefront.requests, "get", get)
    storefront.through_vip(ONPREM, "http://boutique.local/product/OLJCESPC7Z")
    assert sent == {"url": "http://192.168.10.200/product/OLJCESPC7Z", "host": "boutique.local"}


@pytest.mark.parametrize(
    ("status", "text", "outcome"),
    [
        (200, "<title>Online Boutique</title>", waits.Outcome.SUCCEEDED),
        (200, "nginx", waits.Outcome.PENDING),
        (503, "Online Boutique", waits.Outcome.PENDING),
    ],
)
def test_the_home_page_needs_its_status_and_its_text(
    monkeypatch: pytest.MonkeyPatch, status: int, text: str, outcome: waits.Outcome
) -> None:
    monkeypatch.setattr(storefront.requests, "get", lambda *a, **k: _Answer(status, text))
    assert storefront.answers(ONPREM, "http://boutique.local/", 200, "Online Boutique")().outcome is outcome


def _kube(ips: list[str]) -> SimpleNamespace:
    ingress = SimpleNamespace(
        spec=SimpleNamespace(rules=[SimpleNamespace(host="boutique.local")]),
        status=SimpleNamespace(load_balancer=SimpleNamespace(ingress=[SimpleNamespace(ip=ip) for ip in ips])),
    )
    return SimpleNamespace(networking=SimpleNamespace(read_namespaced_ingress=lambda name, ns: ingress))


def test_the_ingress_must_carry_the_vip_from_the_target_file() -> None:
    assert storefront.expect_ingress_has_vip(
        _kube(["192.168.10.200"]), ONPREM, "boutique-dev", "frontend", "boutique.local"
    )
    with pytest.raises(AssertionError, match="not the ingress VIP"):
        storefront.expect_ingress_has_vip(
            _kube(["192.168.10.201"]), ONPREM, "boutique-dev", "frontend", "boutique.local"
        )


def test_the_probe_records_every_answer_until_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter([200, 200, 503] + [200] * 1000)
    monkeypatch.setattr(storefront.requests, "get", lambda *a, **k: _Answer(next(answers), "ok"))
    prober = storefront.Prober(ONPREM, "http://boutique.local/", 200).start()
    deadline = time.monotonic() + 5
    while len(prober.statuses) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    statuses = prober.stop()
    assert statuses[:3] == [200, 200, 503]
    assert len(prober.statuses) == len(statuses)


def test_the_share_of_ok_answers_must_reach_the_threshold() -> None:
    assert storefront.expect_share_ok([200] * 199 + [0], 99.5) == 99.5
    with pytest.raises(AssertionError, match=r"99\.00% of 100"):
        storefront.expect_share_ok([200] * 99 + [502], 99.5)
    with pytest.raises(AssertionError, match="no request"):
        storefront.expect_share_ok([], 99.5)
