"""The steady state during a fault: the storefront watch against a local server that stops answering for a
while, and how an outage is measured and told."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from boutique_suite.expectations.steady import During, StorefrontWatch, summarise, watch_service_name


class Storefront:
    def __init__(self) -> None:
        self.up = threading.Event()
        self.up.set()
        self.hosts: list[str | None] = []


@pytest.fixture
def storefront() -> Iterator[tuple[Storefront, str]]:
    state = Storefront()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.hosts.append(self.headers.get("Host"))
            code, body = (200, b"<title>Online Boutique</title>") if state.up.is_set() else (503, b"down")
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_an_outage_in_the_middle_is_counted_and_measured(storefront: tuple[Storefront, str]) -> None:
    state, url = storefront
    watch = StorefrontWatch(url, "boutique.local", interval=0.05).start()
    time.sleep(0.3)
    state.up.clear()
    time.sleep(0.4)
    state.up.set()
    time.sleep(0.3)
    during = watch.stop()
    assert during.failed >= 4 and during.probes > during.failed
    assert 0.3 <= during.longest_outage <= 1.0
    assert set(state.hosts) == {"boutique.local"}  # asked as the ingress routes it
    assert set(during.reasons) == {"HTTP 503"} and "(HTTP 503)" in during.describe()
    probes = len(watch.samples)
    time.sleep(0.2)
    assert len(watch.samples) == probes, "the watch stopped"


def test_a_storefront_that_always_answered_had_no_outage(storefront: tuple[Storefront, str]) -> None:
    _, url = storefront
    watch = StorefrontWatch(url, interval=0.05).start()
    time.sleep(0.3)
    during = watch.stop()
    assert (during.failed, during.longest_outage) == (0, 0.0) and during.probes >= 3


def test_an_outage_still_open_at_the_end_counts_up_to_the_last_answer() -> None:
    assert summarise([(0.0, True), (1.0, False), (2.0, False), (4.0, False)]) == During(4, 3, 3.0)
    assert summarise([(0.0, False), (1.5, True), (2.0, False), (2.5, True)]) == During(4, 2, 1.5)
    assert summarise([]) == During(0, 0, 0.0)


def test_the_description_says_how_much_answered_and_the_longest_outage() -> None:
    assert During(120, 6, 5.04).describe() == (
        "the storefront answered 114 of 120 requests during the fault (95%); longest outage 5.0 s"
    )
    assert During(0, 0, 0).describe() == "the storefront was not asked during the fault"


def test_the_watch_service_name_is_a_dns_label_of_its_run() -> None:
    name = watch_service_name("First_Run.1203")
    assert re.fullmatch(r"steady-[0-9a-f]{4}-first-run-1203", name)
    assert watch_service_name("x" * 80)[:7] == "steady-" and len(watch_service_name("x" * 80)) <= 63


def test_the_steady_state_waits_while_argo_cds_api_does_not_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    """After a drain argocd-server's pod may still be moving: the restored-state wait goes on until the
    snapshot can be read again, and then compares it with the one taken before the fault."""
    import requests

    from boutique_suite.expectations import steady

    answers: list[object] = [requests.ConnectionError("connection refused"), {"app": "Synced"}]

    def snapshot(*_: object) -> dict:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[return-value]

    monkeypatch.setattr(steady, "snapshot", snapshot)
    state = steady.SteadyState(None, None, None, "app", {"app": "Synced"})  # type: ignore[arg-type]
    assert state.expect_restored(timeout=30) < 30
    assert answers == []
