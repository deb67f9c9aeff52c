"""Changes a scenario makes to the GitOps loop itself: commits to gitops-repo, and the Application's sync
policy (self-heal switched off, auto-sync suspended). Each pushes its revert, journaled, before the change is
made, so a run killed mid-scenario is undone by the next one (boutique_suite.actions.reverts replays the same
kinds).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from boutique_suite.clients import gitops_repo
from boutique_suite.clients.argocd import ArgoCDClient, wait_synced_and_healthy
from boutique_suite.context import images
from boutique_suite.expectations import cicd, gitops_checks
from boutique_suite.run.targets import Target
from boutique_suite.run.undo import UndoStack

FRONTEND_FILE = "base/frontend.yaml"
FRONTEND_CONFIG = "frontend-config"


class Commit(NamedTuple):
    sha: str
    at: float  # time.monotonic() right after the commit was pushed


def application(story: Mapping[str, Any]) -> str:
    """The Application a scenario works on: the one a step named, else the target's (the story's start)."""
    return story["app"]


def image(deployment: str, tag: str) -> str:
    """The registry reference of a Boutique service's image at ``tag``."""
    return f"{cicd.IMAGE_PREFIX}/{deployment}:{tag}"


@dataclass
class ScenarioCommits:
    """A scenario's commits to gitops-repo. Before each one, the revert that restores gitops-repo and waits
    for the scenario's Application to be Synced and Healthy at it is pushed on ``undo``."""

    target: Target
    argocd: ArgoCDClient
    gitops: gitops_repo.Repo
    undo: UndoStack
    story: Mapping[str, Any]  # read when a commit is made: which Application the scenario works on

    def restore_afterwards(self) -> None:
        app = application(self.story)
        self.undo.push(
            "restore gitops-repo",
            lambda: cicd.restore_gitops(self.target, self.argocd, app),
            journal=("restore_gitops", {"app": app}),
        )

    def image_tag(self, deployment: str, tag: str) -> Commit:
        """The dev overlay runs ``deployment`` with ``tag`` (which may not exist anywhere)."""
        self.restore_afterwards()
        edit = gitops_repo.set_image_tag(f"{cicd.IMAGE_PREFIX}/{deployment}", tag)
        sha = self.gitops.commit({cicd.DEV_OVERLAY: edit}, f"{deployment}: {tag}")
        return Commit(sha, time.monotonic())

    def registry_image_tag(self, deployment: str, tag: str) -> Commit:
        """``image_tag`` with a tag that exists where the nodes pull from (the lab pushes its stand-in under
        it first)."""
        images.ensure_pullable(self.target, image(deployment, tag))
        return self.image_tag(deployment, tag)

    def deploy_registry_image_tag(self, deployment: str, tag: str) -> str:
        """``registry_image_tag``, then Argo CD syncs that commit by itself and the Application is Synced and
        Healthy at it; returns the commit."""
        sha = self.registry_image_tag(deployment, tag).sha
        app, timeout = application(self.story), self.target.timeouts.rollout
        gitops_checks.expect_sync_of(self.argocd, app, sha, timeout, automated=True)
        wait_synced_and_healthy(self.argocd, app, timeout, revision=sha)
        return sha

    def frontend_config_annotation(self, key: str, value: str) -> str:
        """The frontend's ConfigMap gets the annotation ``key: value``; returns the commit."""
        self.restore_afterwards()
        edit = gitops_repo.annotate_configmap(FRONTEND_CONFIG, key, value)
        return self.gitops.commit({FRONTEND_FILE: edit}, f"{FRONTEND_CONFIG}: {key}={value}")

    def env(self, deployment: str, name: str, value: str) -> str:
        """The dev overlay sets ``name=value`` in the environment of ``deployment``; returns the commit."""
        self.restore_afterwards()
        edit = gitops_repo.set_env(deployment, name, value)
        return self.gitops.commit({cicd.DEV_OVERLAY: edit}, f"{deployment}: {name}={value}")


def switch_self_heal_off(client: ArgoCDClient, undo: UndoStack, app: str) -> None:
    undo.push(
        f"switch self-heal on again for {app}",
        lambda: client.set_self_heal(app, True),
        journal=("self_heal_on", {"app": app}),
    )
    client.set_self_heal(app, False)


def suspend_auto_sync(client: ArgoCDClient, undo: UndoStack, app: str) -> dict | None:
    """Auto-sync off; returns the ``syncPolicy.automated`` it had (what ``set_automated`` restores)."""
    saved = client.application(app)["spec"]["syncPolicy"]["automated"]
    undo.push(
        f"restore auto-sync of {app}",
        lambda: client.set_automated(app, saved),
        journal=("auto_sync", {"app": app, "automated": saved}),
    )
    client.set_automated(app, None)
    return saved
