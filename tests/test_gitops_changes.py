"""The changes scenarios make to the GitOps loop: each commit to gitops-repo edits the suite's real content
and pushes its journaled revert first; switching self-heal off and suspending auto-sync push theirs too."""

from __future__ import annotations

import time
from collections.abc import Callable
from types import SimpleNamespace as NS
from typing import Any

import pytest
import yaml

from boutique_suite.actions import gitops_changes
from boutique_suite.expectations import cicd
from boutique_suite.run.undo import UndoStack
from provisioning.gitops import ROOT


class Journal:
    def __init__(self) -> None:
        self.recorded: list[tuple[str, str, dict[str, Any]]] = []

    def record(self, description: str, kind: str, args: dict[str, Any]) -> str:
        self.recorded.append((description, kind, args))
        return str(len(self.recorded))

    def resolve(self, key: str) -> None:
        pass


class Repo:
    """gitops-repo as the suite's content: a commit applies the edits to the files of ROOT."""

    def __init__(self, undo: UndoStack) -> None:
        self.undo = undo
        self.files: dict[str, str] = {}
        self.messages: list[str] = []
        self.reverts_pushed_before: list[int] = []

    def commit(self, edits: dict[str, Callable[[str], str]], message: str) -> str:
        self.reverts_pushed_before.append(len(self.undo.steps))
        for path, edit in edits.items():
            self.files[path] = edit((ROOT / path).read_text())
        self.messages.append(message)
        return f"{len(self.messages):040d}"


@pytest.fixture
def journal() -> Journal:
    return Journal()


@pytest.fixture
def undo(journal: Journal) -> UndoStack:
    return UndoStack(journal=lambda: journal)


APP = "online-boutique-dev"


def scenario_commits(undo: UndoStack, story: dict, target: object = None) -> gitops_changes.ScenarioCommits:
    return gitops_changes.ScenarioCommits(target, NS(), Repo(undo), undo, story)  # type: ignore[arg-type]


def test_the_application_is_the_one_the_story_names() -> None:
    assert gitops_changes.application({"app": "other"}) == "other"


def test_an_image_tag_commit_changes_the_dev_overlay_and_is_restored_afterwards(
    undo: UndoStack, journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    story: dict = {}
    commits = scenario_commits(undo, story, target="the target")
    story["app"] = "online-boutique-other"  # named after the commits object was made: read at commit time
    before = time.monotonic()
    sha, at = commits.image_tag("frontend", "does-not-exist")
    assert before <= at <= time.monotonic() and len(sha) == 40
    repo = commits.gitops
    assert repo.messages == ["frontend: does-not-exist"]  # type: ignore[union-attr]
    images = yaml.safe_load(repo.files[cicd.DEV_OVERLAY])["images"]  # type: ignore[union-attr]
    assert {"name": "registry.local/boutique/frontend", "newTag": "does-not-exist"} in images
    assert repo.reverts_pushed_before == [1]  # type: ignore[union-attr]
    assert journal.recorded == [("restore gitops-repo", "restore_gitops", {"app": "online-boutique-other"})]
    restored = []
    monkeypatch.setattr(cicd, "restore_gitops", lambda *args: restored.append(args))
    assert undo.drain() == []
    assert restored == [("the target", commits.argocd, "online-boutique-other")]


def test_a_registry_tag_is_made_pullable_before_it_is_committed(
    undo: UndoStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    order = []
    monkeypatch.setattr(gitops_changes.images, "ensure_pullable", lambda target, image: order.append(image))
    commits = scenario_commits(undo, {"app": APP}, target="the target")
    commits.registry_image_tag("cartservice", "rollout-r1")
    assert order == ["registry.local/boutique/cartservice:rollout-r1"]
    assert commits.gitops.messages == ["cartservice: rollout-r1"]  # type: ignore[attr-defined]


def test_an_annotation_commit_annotates_the_frontends_configmap(undo: UndoStack, journal: Journal) -> None:
    commits = scenario_commits(undo, {"app": APP})
    commits.frontend_config_annotation("boutique.suite/run", "r42")
    docs = list(yaml.safe_load_all(commits.gitops.files["base/frontend.yaml"]))  # type: ignore[attr-defined]
    config = next(
        d for d in docs if d and d["kind"] == "ConfigMap" and d["metadata"]["name"] == "frontend-config"
    )
    assert config["metadata"]["annotations"]["boutique.suite/run"] == "r42"
    assert commits.gitops.messages == ["frontend-config: boutique.suite/run=r42"]  # type: ignore[attr-defined]
    assert journal.recorded == [("restore gitops-repo", "restore_gitops", {"app": APP})]


def test_an_env_commit_patches_the_deployment_in_the_dev_overlay(undo: UndoStack) -> None:
    commits = scenario_commits(undo, {"app": APP})
    commits.env("frontend", "ENABLE_PROFILER", "1")
    patches = yaml.safe_load(commits.gitops.files[cicd.DEV_OVERLAY])["patches"]  # type: ignore[attr-defined]
    patch = yaml.safe_load(patches[-1]["patch"])
    assert patch["metadata"]["name"] == "frontend"
    assert patch["spec"]["template"]["spec"]["containers"][0]["env"] == [
        {"name": "ENABLE_PROFILER", "value": "1"}
    ]
    assert commits.gitops.messages == ["frontend: ENABLE_PROFILER=1"]  # type: ignore[attr-defined]
    assert commits.gitops.reverts_pushed_before == [1]  # type: ignore[attr-defined]


class ArgoCD:
    def __init__(self, automated: dict | None) -> None:
        self.automated = automated
        self.self_heal = True
        self.calls: list[tuple[str, object]] = []

    def application(self, name: str) -> dict:
        return {"spec": {"syncPolicy": {"automated": self.automated}}}

    def set_self_heal(self, name: str, enabled: bool) -> None:
        self.calls.append((name, enabled))
        self.self_heal = enabled

    def set_automated(self, name: str, automated: dict | None) -> None:
        self.calls.append((name, automated))
        self.automated = automated


def test_self_heal_switched_off_is_switched_on_by_the_revert(undo: UndoStack, journal: Journal) -> None:
    client = ArgoCD({"prune": True, "selfHeal": True})
    gitops_changes.switch_self_heal_off(client, undo, "app")  # type: ignore[arg-type]
    assert client.self_heal is False
    assert journal.recorded == [("switch self-heal on again for app", "self_heal_on", {"app": "app"})]
    undo.drain()
    assert client.calls == [("app", False), ("app", True)]


def test_suspended_auto_sync_is_restored_as_it_was(undo: UndoStack, journal: Journal) -> None:
    policy = {"prune": True, "selfHeal": False}
    client = ArgoCD(policy)
    assert gitops_changes.suspend_auto_sync(client, undo, "app") == policy  # type: ignore[arg-type]
    assert client.automated is None
    assert journal.recorded == [
        ("restore auto-sync of app", "auto_sync", {"app": "app", "automated": policy})
    ]
    undo.drain()
    assert client.automated == policy
