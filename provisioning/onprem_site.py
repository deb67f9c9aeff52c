"""The on-prem site (targets of kind ``onprem``): real hosts, GitLab, Argo CD and the platform in the
cluster. See :mod:`boutique_suite.context.sites` for what a site answers."""

from __future__ import annotations

import importlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from boutique_suite.expectations import argocd_workloads
from boutique_suite.run.targets import Target

if TYPE_CHECKING:
    from boutique_suite.clients.gitops_repo import Repo
    from boutique_suite.clients.kube import Kube
    from boutique_suite.context.sites import Pipelines
    from provisioning.layer import LayerState

REPO_GROUP = "boutique"  # app-repo and gitops-repo's group on GitLab
LAYERS = {
    0: "provisioning.phase0_foundation",
    1: "provisioning.phase1_platform",
    2: "provisioning.phase2_cluster",
    3: "provisioning.phase3_gateway_argocd",
    4: "provisioning.phase4_gitops",
    5: "provisioning.phase5_cicd",
    6: "provisioning.phase6_observability",
    7: "provisioning.phase7_advanced",
}


def layer_module(phase: int) -> ModuleType:
    return importlib.import_module(LAYERS[phase])


@dataclass
class OnPremSite:
    target: Target
    git_server: str = "GitLab"
    standin_storefront: bool = False
    local_slack: bool = False

    # --- layers: each phase module's on-prem functions --------------------------------------------

    def layer_needs(self, phase: int) -> tuple[int, ...]:
        module = layer_module(phase)
        if not self.target.builds_hosts:  # what building a layer needs is not needed to check one
            return getattr(module, "NEEDS_EXISTING", module.NEEDS)
        return module.NEEDS

    def check_layer(self, phase: int) -> LayerState:
        return layer_module(phase).check_onprem(self.target)

    def ensure_layer(self, phase: int) -> LayerState:
        return layer_module(phase).ensure_onprem(self.target)

    # --- what on-prem has (None) or where the suite is not written yet ------------------------------

    def shortened_timers_page(self) -> str | None:
        return None  # on-prem runs the platform's own timers

    def onprem_only_missing(self) -> str | None:
        return None

    def mutations_missing(self) -> str | None:
        return (
            "mutations are applied through the lab's gitops and app content; on-prem, commit them to their "
            "repository by hand (each Mutation's repo, path and what) and run its catchers"
        )

    def registry_lookup_missing(self) -> str | None:
        return None if self.target.gitlab else f"{self.target.source} has no gitlab section"

    def app_repo_sources_missing(self) -> str | None:
        return None

    def metallb_missing(self) -> str | None:
        return None

    def ingress_controller_missing(self) -> str | None:
        return None

    def pipelines_missing(self) -> str | None:
        return None if self.target.gitlab else f"{self.target.source} has no gitlab section"

    # --- Argo CD: Deployments and the controller's StatefulSet in its namespace ----------------------

    def argocd_components(self, kube: Kube) -> dict[str, str]:
        return argocd_workloads.components(self.target, kube)

    def controller_replicas(self, kube: Kube) -> int:
        return argocd_workloads.controller_replicas(self.target, kube)

    def start_controller(self, kube: Kube, replicas: int) -> None:
        argocd_workloads.start_controller(self.target, kube, replicas)

    def stop_controller(self, kube: Kube) -> None:
        argocd_workloads.stop_controller(self.target, kube)

    def controller_running(self, kube: Kube) -> bool:
        return argocd_workloads.controller_running(self.target, kube)

    def argocd_server_log(self, kube: Kube, since_seconds: int) -> str:
        return argocd_workloads.server_log(self.target, kube, since_seconds)

    # --- repositories, images, CI -------------------------------------------------------------------

    def git_remote(self, repo: str) -> tuple[str, dict[str, str]]:
        """GitLab's HTTPS URL of ``repo``; the token (gitlab.token_env) and CA go in git's environment."""
        from boutique_suite.expectations import repos

        gitlab = self.target.gitlab
        assert gitlab is not None, f"target {self.target.name} has no gitlab section"
        token = os.environ.get(gitlab.token_env, "")
        assert token, f"{gitlab.token_env} is not set (a GitLab token with read_repository)"
        extra = {"http.extraHeader": f"PRIVATE-TOKEN: {token}"}
        if gitlab.ca_file:
            extra["http.sslCAInfo"] = gitlab.ca_file
        return f"{gitlab.url.rstrip('/')}/{REPO_GROUP}/{repo}.git", repos.git_env(extra)

    def gitops_repo(self) -> Repo:
        from boutique_suite.clients.gitops_repo import RemoteGitopsRepo, RepoUnavailable

        try:
            url, env = self.git_remote("gitops-repo")
        except AssertionError as exc:
            raise RepoUnavailable(str(exc)) from None
        return RemoteGitopsRepo(url, env)

    def ensure_pullable(self, image: str) -> str | None:
        """Nothing to do: the pipeline pushed the image to the registry."""
        return None

    def pipelines(self) -> Pipelines:
        from boutique_suite.clients import gitlab_ci

        return gitlab_ci.pipelines_for(self.target, self.git_remote)

    # --- tools, sealing, Secrets -----------------------------------------------------------------

    def kubectl_binary(self) -> Path:
        found = shutil.which("kubectl")
        assert found, "kubectl is not on PATH: install it to run this scenario"
        return Path(found)

    def kubeseal_binary(self) -> Path:
        from boutique_suite.actions.sealing import SealingError

        found = shutil.which("kubeseal")
        if found is None:
            raise SealingError("kubeseal is not on PATH: install kubeseal (same version as the controller)")
        return Path(found)

    def expect_sealing_certificate(self) -> None:
        """Nothing more than the controller's Deployment (checked by layer 7)."""

    def seal(self, name: str, namespace: str, data: dict[str, str]) -> dict:
        from boutique_suite.actions import sealing
        from provisioning import phase7_advanced

        controller_ns, controller = phase7_advanced.controller_location()
        return sealing.kubeseal_secret(
            self.target, self.kubeseal_binary(), name, namespace, data, controller_ns, controller
        )

    def expect_pull_secret(self, kube: Kube, namespace: str) -> None:
        """Nothing beyond the referenced Secrets existing (on-prem the pull secret holds GitLab's deploy
        token, which the suite does not know)."""
