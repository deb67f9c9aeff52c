"""ArgoCDClient against a loopback server that answers as argocd-server does."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from boutique_suite.argocd import OPERATION_IN_PROGRESS, ArgoCDClient

ANSWERS: dict[str, tuple[int, dict]] = {
    "busy": (400, {"error": OPERATION_IN_PROGRESS, "code": 9, "message": OPERATION_IN_PROGRESS}),
    "denied": (403, {"error": "permission denied", "code": 7, "message": "permission denied"}),
    "ok": (200, {"metadata": {"name": "ok"}, "operation": {"sync": {"prune": True}}}),
}


class FakeArgoCD(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        name = self.path.split("/")[4]
        status, body = ANSWERS[name]
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def client() -> Iterator[ArgoCDClient]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeArgoCD)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield ArgoCDClient(f"http://127.0.0.1:{server.server_address[1]}", "token")
    server.shutdown()


def test_sync_started(client: ArgoCDClient) -> None:
    assert client.sync("ok") == ANSWERS["ok"][1]


def test_sync_while_an_operation_runs_is_not_an_error(client: ArgoCDClient) -> None:
    assert client.sync("busy") is None


def test_sync_refused_names_the_reason(client: ArgoCDClient) -> None:
    with pytest.raises(AssertionError, match=r"sync of denied refused: 403.*permission denied"):
        client.sync("denied")


def test_a_clients_token_stays_out_of_its_repr() -> None:
    """pytest and loggers print objects with repr: a token there would land in JUnit and the report."""
    from boutique_suite.grafana import Grafana

    token = "secret-token-1"
    for client in (ArgoCDClient("http://argocd.local", token), Grafana("http://grafana.local", token)):
        assert token not in repr(client)
