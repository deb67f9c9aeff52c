"""ArgoCDClient against a loopback server that answers as argocd-server does."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from boutique_suite.clients.argocd import OPERATION_IN_PROGRESS, ArgoCDClient
from tests import localhttp

ANSWERS: dict[str, tuple[int, dict]] = {
    "busy": (400, {"error": OPERATION_IN_PROGRESS, "code": 9, "message": OPERATION_IN_PROGRESS}),
    "denied": (403, {"error": "permission denied", "code": 7, "message": "permission denied"}),
    "ok": (200, {"metadata": {"name": "ok"}, "operation": {"sync": {"prune": True}}}),
}


def argocd_server(method: str, path: str, headers: dict[str, str]) -> tuple[int, dict]:
    assert method == "POST"
    return ANSWERS[path.split("/")[4]]


@pytest.fixture(scope="module")
def client() -> Iterator[ArgoCDClient]:
    with localhttp.serve(argocd_server) as url:
        yield ArgoCDClient(url, "token")


def test_sync_started(client: ArgoCDClient) -> None:
    assert client.sync("ok") == ANSWERS["ok"][1]


def test_sync_while_an_operation_runs_is_not_an_error(client: ArgoCDClient) -> None:
    assert client.sync("busy") is None


def test_sync_refused_names_the_reason(client: ArgoCDClient) -> None:
    with pytest.raises(AssertionError, match=r"sync of denied refused: 403.*permission denied"):
        client.sync("denied")


def test_a_sync_policy_change_returns_once_argo_cds_controller_has_reconciled_after_it() -> None:
    """The controller's informer may still hold the old policy; a change made meanwhile is self-healed."""
    seen: list[tuple[str, str]] = []

    def server(method: str, path: str, headers: dict[str, str]) -> tuple[int, dict]:
        seen.append((method, path))
        return 200, {"metadata": {"name": "app"}}

    with localhttp.serve(server) as url:
        client = ArgoCDClient(url, "token")
        client.set_self_heal("app", False)
        client.set_automated("app", None)
    after_patch = ("GET", "/api/v1/applications/app?refresh=normal")
    assert seen == [("PATCH", "/api/v1/applications/app"), after_patch] * 2


def test_a_clients_token_stays_out_of_its_repr() -> None:
    """pytest and loggers print objects with repr: a token there would land in JUnit and the report."""
    from boutique_suite.clients.grafana import Grafana

    token = "secret-token-1"
    for client in (ArgoCDClient("http://argocd.local", token), Grafana("http://grafana.local", token)):
        assert token not in repr(client)


def test_the_labs_login_is_the_clients_login_tried_again_until_accepted(tmp_path: Path) -> None:
    """A server that just started refuses the admin login until it has read its Secret."""
    from provisioning.lab.services import argocd as lab_argocd

    answers = [(401, {"error": "invalid session"}), (200, {"token": "session-token"})]

    def session(method: str, path: str, headers: dict[str, str]) -> tuple[int, dict]:
        assert (method, path) == ("POST", "/api/v1/session")
        return answers.pop(0) if len(answers) > 1 else answers[0]

    password = tmp_path / "admin.password"
    password.write_text("pw\n")
    with localhttp.serve(session) as url:
        argocd = lab_argocd.ArgoCD(url, "admin", password, git=None)  # type: ignore[arg-type]
        assert lab_argocd.login(argocd, timeout=10) == "session-token"
        answers[:] = [(401, {"error": "invalid session"})]
        with pytest.raises(lab_argocd.ArgoCDError, match=r"Argo CD login as admin: still pending .*: 401"):
            lab_argocd.login(argocd, timeout=0.5)


def _app_with_project_condition(project: str) -> dict:
    message = f"Application referencing project {project} which does not exist"
    return {
        "status": {
            "sync": {"status": "Synced", "revision": "abc"},
            "health": {"status": "Healthy"},
            "conditions": [{"type": "InvalidSpecError", "message": message}],
        }
    }


def test_a_missing_project_that_exists_is_a_controller_still_loading_not_an_error() -> None:
    """A restarted application controller (a drained node) says the project does not exist until its cache
    has it: when Argo CD's API has the project, the wait goes on; when it has not, the wait fails at once."""
    from boutique_suite.clients.argocd import synced_and_healthy
    from boutique_suite.run import waits

    def server(method: str, path: str, headers: dict[str, str]) -> tuple[int, dict]:
        if path.startswith("/api/v1/applications/loading"):
            return 200, _app_with_project_condition("boutique")
        if path.startswith("/api/v1/applications/broken"):
            return 200, _app_with_project_condition("nosuchproject")
        if path == "/api/v1/projects/boutique":
            return 200, {"metadata": {"name": "boutique"}}
        return 403, {"error": "permission denied", "code": 7}

    with localhttp.serve(server) as url:
        client = ArgoCDClient(url, "token")
        loading = synced_and_healthy(client, "loading")()
        assert loading.outcome is waits.Outcome.PENDING, loading.detail
        assert "has not loaded project boutique yet" in loading.detail
        broken = synced_and_healthy(client, "broken")()
        assert broken.outcome is waits.Outcome.FAILED
        assert "project nosuchproject which does not exist" in broken.detail


def test_an_api_that_does_not_answer_is_pending_and_fails_at_the_deadline_with_the_error() -> None:
    """argocd-server's pod moves when its node is drained: the wait goes on while the API does not answer,
    and succeeds once it answers Synced and Healthy; an API that never answers times out naming why."""
    import socket

    from boutique_suite.clients.argocd import synced_and_healthy
    from boutique_suite.run import waits

    healthy = {"status": {"sync": {"status": "Synced", "revision": "abc"}, "health": {"status": "Healthy"}}}
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{unused.getsockname()[1]}"  # bound, never listening: refused
        down = synced_and_healthy(ArgoCDClient(closed, "token"), "app")()
    assert down.outcome is waits.Outcome.PENDING
    assert "did not answer" in down.detail and "refused" in down.detail.lower(), down.detail

    def server(method: str, path: str, headers: dict[str, str]) -> tuple[int, dict]:
        return 200, healthy

    with localhttp.serve(server) as url:
        client = ArgoCDClient(url, "token")
        calls = []

        def flaky() -> waits.Check:
            calls.append(1)
            if len(calls) == 1:
                return synced_and_healthy(ArgoCDClient(closed, "token"), "app")()
            return synced_and_healthy(client, "app")()

        waited = waits.until(flaky, timeout=10, interval=0.01, what="app")
    assert waited.check.outcome is waits.Outcome.SUCCEEDED and len(calls) == 2

    with pytest.raises(waits.WaitTimeout, match="did not answer"):
        waits.until(
            synced_and_healthy(ArgoCDClient(closed, "token"), "app"), timeout=0.05, interval=0.01, what="app"
        )
