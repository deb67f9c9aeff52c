"""The target adapter: what differs between the offline lab and real hosts, behind one interface.

A :class:`Site` answers, for one target, everything whose answer depends on where the platform runs: how
its layers are built and checked, how the suite reaches Argo CD's components and stops its application
controller, how it reads, commits to and restores gitops-repo, where images and the kubectl / kubeseal
binaries come from, how Secrets are sealed, how CI jobs run, and why a thing the target does not have is
skipped. The library, the layers and conftest.py ask the site, never the target's kind.

:func:`site_for` picks the implementation from the target's ``kind`` through :data:`IMPLEMENTATIONS`
(dotted paths, imported on first use): on-prem lives in ``provisioning.onprem_site``, the lab in
``provisioning.lab.site``, so this package never imports the lab.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from boutique_suite.clients.kubectl import Kubectl
from boutique_suite.run.targets import Target

if TYPE_CHECKING:
    from boutique_suite.clients.gitops_repo import Repo
    from boutique_suite.clients.kube import Kube
    from provisioning.layer import LayerState

# kind -> "module:class" of its Site. A new kind of target is a new entry here and a class.
IMPLEMENTATIONS: dict[str, str] = {
    "onprem": "provisioning.onprem_site:OnPremSite",
    "lab": "provisioning.lab.site:LabSite",
}
# Where the project's own built tools (OpenTofu, its providers, kubeseal, kubectl) are cached.
BUILT_TOOLS = "provisioning.lab.site:BUILT_TOOLS"


class SiteError(Exception):
    """No site implementation for a target (an unknown kind, or one whose module cannot be loaded)."""


class JobRun(Protocol):
    """One CI job's run, as the suite reports it."""

    job: str
    returncode: int
    log: str
    seconds: float

    @property
    def passed(self) -> bool: ...
    @property
    def gitops_commit(self) -> str | None: ...


class Pipelines(Protocol):
    """The target's CI: app-repo, the jobs of its .gitlab-ci.yml, and the repositories they write to."""

    runner: str  # how jobs run, for the report ("gitlab-ci-local 4.x (shell executor)")
    single_jobs_missing: str | None  # why a job cannot run alone with the suite's variables (None: it can)

    def head(self, repo: str) -> str: ...
    def repo_url(self, repo: str) -> str: ...
    def commit_change(self, repo: str, edits: dict[str, Callable[[str], str]], message: str) -> str: ...
    def restore_app_repo(self, message: str) -> None: ...
    def checkout(self, repo: str, commit: str, dest: Path) -> Path: ...
    def run_job(self, work: Path, job: str, variables: dict[str, str] | None, timeout: float) -> JobRun: ...
    def unrunnable(self, jobs: list[str]) -> str | None: ...
    def copy_repo(self, source: str, name: str) -> Callable[[], None]: ...
    def commits_between(self, repo: str, base: str, head: str) -> list[str]: ...
    def show_commit(self, repo: str, commit: str, path: str) -> dict[str, Any]: ...


class BuiltTools(Protocol):
    """The project's cache of tools it builds itself (./run setup)."""

    cache_root: Path
    provider_mirror: str  # in a provider's cache entry: the filesystem mirror's directory

    def directory(self, component: str) -> Path: ...
    def built(self, component: str) -> Path | None: ...


@runtime_checkable
class Site(Protocol):
    """Everything that differs between targets. ``target`` is the target the site answers for."""

    target: Target
    git_server: str  # what serves app-repo and gitops-repo, in words ("GitLab")
    standin_storefront: bool  # the storefront is the project's stand-in service, not Google's images
    local_slack: bool  # Slack is the lab's Slack-compatible receiver, not slack.com

    # --- layers ----------------------------------------------------------------------------------
    def layer_needs(self, phase: int) -> tuple[int, ...]: ...
    def check_layer(self, phase: int) -> LayerState: ...
    def ensure_layer(self, phase: int) -> LayerState: ...
    def shortened_timers_page(self) -> str | None: ...  # Markdown: timers set shorter than on-prem's

    # --- why a scenario cannot be made real here (None: it can) ----------------------------------
    def onprem_only_missing(self) -> str | None: ...
    def mutations_missing(self) -> str | None: ...
    def registry_lookup_missing(self) -> str | None: ...
    def app_repo_sources_missing(self) -> str | None: ...
    def metallb_missing(self) -> str | None: ...
    def ingress_controller_missing(self) -> str | None: ...
    def pipelines_missing(self) -> str | None: ...

    # --- Argo CD ---------------------------------------------------------------------------------
    def argocd_components(self, kube: Kube) -> dict[str, str]: ...
    def controller_replicas(self, kube: Kube) -> int: ...
    def start_controller(self, kube: Kube, replicas: int) -> None: ...
    def stop_controller(self, kube: Kube) -> None: ...
    def controller_running(self, kube: Kube) -> bool: ...
    def argocd_server_log(self, kube: Kube, since_seconds: int) -> str: ...

    # --- repositories, images, CI ------------------------------------------------------------------
    def git_remote(self, repo: str) -> tuple[str, dict[str, str]]: ...
    def gitops_repo(self) -> Repo: ...
    def ensure_pullable(self, image: str) -> str | None: ...
    def pipelines(self) -> Pipelines: ...

    # --- tools, sealing, Secrets -------------------------------------------------------------------
    def kubectl_binary(self) -> Path: ...
    def kubeseal_binary(self) -> Path: ...
    def expect_sealing_certificate(self) -> None: ...
    def seal(self, name: str, namespace: str, data: dict[str, str]) -> dict: ...
    def expect_pull_secret(self, kube: Kube, namespace: str) -> None: ...


def _resolve(dotted: str) -> Any:
    module, _, attribute = dotted.partition(":")
    try:
        return getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError) as exc:
        raise SiteError(f"cannot load {dotted}: {exc}") from exc


def implementation(kind: str) -> type[Site]:
    """The Site class for targets of ``kind``; SiteError naming the known kinds for any other."""
    if kind not in IMPLEMENTATIONS:
        known = ", ".join(sorted(IMPLEMENTATIONS))
        raise SiteError(f"no site implementation for target kind {kind!r} (known kinds: {known})")
    return _resolve(IMPLEMENTATIONS[kind])


def site_for(target: Target) -> Site:
    """The site of ``target``, made once per target object and kept on it."""
    cached = target._site
    if cached is None or cached.target is not target:
        cached = implementation(target.kind)(target)
        target._site = cached
    return cached


def kubectl_of(target: Target) -> Kubectl:
    """The target's kubectl (the lab's pinned build, or the one on PATH) with its kubeconfig and context."""
    binary = site_for(target).kubectl_binary()
    cluster = target.cluster
    return Kubectl([str(binary), "--kubeconfig", str(cluster.kubeconfig_path), "--context", cluster.context])


def built_tools() -> BuiltTools:
    return _resolve(BUILT_TOOLS)


def through_site(
    phase: int,
) -> tuple[
    Callable[[Target], tuple[int, ...]], Callable[[Target], LayerState], Callable[[Target], LayerState]
]:
    """A layer module's ``needs``, ``check`` and ``ensure``: the target's site decides how the layer is
    built (the lab its own way; on-prem through the module's ``check_onprem``/``ensure_onprem``)."""

    def needs(target: Target) -> tuple[int, ...]:
        return site_for(target).layer_needs(phase)

    def check(target: Target) -> LayerState:
        return site_for(target).check_layer(phase)

    def ensure(target: Target) -> LayerState:
        return site_for(target).ensure_layer(phase)

    return needs, check, ensure


def gitops_repo(target: Target) -> Repo:
    """gitops-repo as the target serves it."""
    return site_for(target).gitops_repo()
