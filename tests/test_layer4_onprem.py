"""Layer 4 on-prem: the app-of-apps. The root Application and every Application it owns must be Synced and
Healthy; one the target names as not expected is reported with its reason; a Degraded one breaks the layer at
once with Argo CD's view of it. Against a loopback server answering as argocd-server's API does."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from boutique_suite.run import targets
from provisioning import phase4_gitops
from provisioning.layer import LayerBroken
from tests import localhttp

EXAMPLE = Path(__file__).resolve().parent.parent / "targets" / "onprem.example.yaml"
CHILDREN = ("loki", "metallb", "online-boutique-dev")


def application(name: str, sync: str = "Synced", health: str = "Healthy", message: str = "") -> dict:
    status: dict = {"sync": {"status": sync, "revision": "abc12345"}, "health": {"status": health}}
    if message:
        status["health"]["message"] = message
    if name == phase4_gitops.ROOT_APPLICATION:
        status["resources"] = [
            {"kind": "AppProject", "name": "platform"},
            *({"kind": "Application", "name": child, "namespace": "argocd"} for child in CHILDREN),
        ]
    return {"metadata": {"name": name}, "status": status}


class FakeArgoCD:
    """argocd-server's session and application endpoints over a dict of Applications."""

    def __init__(self) -> None:
        self.apps: dict[str, dict] = {}
        self.refreshed: list[str] = []

    def all_healthy(self) -> None:
        self.apps = {name: application(name) for name in (phase4_gitops.ROOT_APPLICATION, *CHILDREN)}

    def answer(self, method: str, path: str, headers: dict[str, str]) -> tuple[int, object]:
        if method == "POST" and path == "/api/v1/session":
            return 200, {"token": "session-token"}
        assert headers.get("Authorization") == "Bearer session-token"
        name, _, query = path.removeprefix("/api/v1/applications/").partition("?")
        if "refresh=normal" in query:
            self.refreshed.append(name)
        if name not in self.apps:
            return 403, {"error": "permission denied", "code": 7, "message": "permission denied"}
        return 200, self.apps[name]


@pytest.fixture
def argocd() -> Iterator[tuple[FakeArgoCD, str]]:
    fake = FakeArgoCD()
    with localhttp.serve(fake.answer) as url:
        yield fake, url


def onprem_target(tmp_path: Path, url: str, monkeypatch: pytest.MonkeyPatch) -> targets.Target:
    data = yaml.safe_load(EXAMPLE.read_text())
    data["argocd"] = {
        "url": url,
        "password_env": "SUITE_TEST_ARGOCD_PASSWORD",
        "not_expected": {"loki": "AGPL: not deployed on this site"},
    }
    data["timeouts"] = {**data.get("timeouts", {}), "rollout": 2}
    monkeypatch.setenv("SUITE_TEST_ARGOCD_PASSWORD", "not-a-real-password")
    path = tmp_path / "onprem.yaml"
    path.write_text(yaml.safe_dump(data))
    return targets.load(str(path))


def test_the_root_and_every_owned_application_healthy_is_ready(
    argocd: tuple[FakeArgoCD, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, url = argocd
    fake.all_healthy()
    target = onprem_target(tmp_path, url, monkeypatch)
    state = phase4_gitops.check(target)
    assert state.ready, state.detail
    assert set(state.components) == {phase4_gitops.ROOT_APPLICATION, *CHILDREN}
    assert phase4_gitops.ensure(target).ready
    assert fake.refreshed == [phase4_gitops.ROOT_APPLICATION]


def test_an_application_the_site_cannot_run_is_named_with_its_reason(
    argocd: tuple[FakeArgoCD, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, url = argocd
    fake.all_healthy()
    fake.apps["loki"] = application("loki", sync="OutOfSync", health="Missing")
    state = phase4_gitops.check(onprem_target(tmp_path, url, monkeypatch))
    assert state.ready, state.detail
    assert state.components["loki"] == "not expected: AGPL: not deployed on this site"
    assert "loki not expected here: AGPL" in state.detail


def test_an_owned_application_not_created_yet_keeps_the_layer_waiting(
    argocd: tuple[FakeArgoCD, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, url = argocd
    fake.apps = {name: application(name) for name in (phase4_gitops.ROOT_APPLICATION, "loki", "metallb")}
    state = phase4_gitops.check(onprem_target(tmp_path, url, monkeypatch))
    assert not state.ready
    assert "waiting: online-boutique-dev: not created yet" in state.detail


def test_a_degraded_application_breaks_the_layer_with_argo_cds_words(
    argocd: tuple[FakeArgoCD, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, url = argocd
    fake.all_healthy()
    fake.apps["metallb"] = application("metallb", health="Degraded", message="Deployment speaker: 0/3 ready")
    target = onprem_target(tmp_path, url, monkeypatch)
    assert not phase4_gitops.check(target).ready
    with pytest.raises(LayerBroken, match=r"metallb.*Degraded.*speaker: 0/3 ready") as broken:
        phase4_gitops.ensure(target)
    assert set(broken.value.evidence) == {"Application metallb"}


def test_no_root_application_is_a_clear_broken_layer(
    argocd: tuple[FakeArgoCD, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, url = argocd
    with pytest.raises(LayerBroken, match=r"the root Application 'platform'.*layer 3 applies it"):
        phase4_gitops.ensure(onprem_target(tmp_path, url, monkeypatch))
