"""The on-prem site (targets of kind ``onprem``): real hosts, GitLab, Argo CD and the platform in the
cluster. See :mod:`boutique_suite.sites` for what a site answers."""

from __future__ import annotations

import importlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from boutique_suite import evidence, waits
from boutique_suite.targets import Target

if TYPE_CHECKING:
    from boutique_suite.gitops_repo import Repo
    from boutique_suite.kube import Kube
    from boutique_suite.sites import Pipelines
    from provisioning.layer import LayerState

CONTROLLER = "argocd-application-controller"
ARGOCD_WORKLOADS = ("argocd-server", "argocd-repo-server", CONTROLLER, "argocd-redis")
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
            "mutations are applied through the lab's gitops content; on-prem, commit them to gitops-repo by "
            "hand (each Mutation's path and what) and run its catchers"
        )

    def registry_lookup_missing(self) -> str:
        return evidence.ONPREM_PENDING

    def app_repo_sources_missing(self) -> str | None:
        return None

    def metallb_missing(self) -> str | None:
        return None

    def ingress_controller_missing(self) -> str | None:
        return None

    def pipelines_missing(self) -> str | None:
        return evidence.ONPREM_PENDING

    # --- Argo CD: Deployments and the controller's StatefulSet in its namespace ----------------------

    def argocd_components(self, kube: Kube) -> dict[str, str]:
        ns = self.target.argocd_namespace
        apps = kube.apps
        workloads = [*apps.list_namespaced_deployment(ns).items, *apps.list_namespaced_stateful_set(ns).items]
        found = {}
        for dep in workloads:
            ready = dep.status.ready_replicas or 0
            assert ready == (dep.spec.replicas or 1), (
                f"{dep.metadata.name}: {ready}/{dep.spec.replicas} ready"
            )
            found[dep.metadata.name] = f"{ready} ready"
        for name in ARGOCD_WORKLOADS:
            assert name in found, f"{name} not found in namespace {ns}: {sorted(found)}"
        return found

    def controller_replicas(self, kube: Kube) -> int:
        ns = self.target.argocd_namespace
        return kube.apps.read_namespaced_stateful_set(CONTROLLER, ns).spec.replicas or 1

    def start_controller(self, kube: Kube, replicas: int) -> None:
        ns = self.target.argocd_namespace
        kube.apps.patch_namespaced_stateful_set_scale(CONTROLLER, ns, {"spec": {"replicas": replicas}})

    def stop_controller(self, kube: Kube) -> None:
        """The StatefulSet scaled to 0, and its pods gone."""
        ns = self.target.argocd_namespace
        kube.apps.patch_namespaced_stateful_set_scale(CONTROLLER, ns, {"spec": {"replicas": 0}})

        def gone() -> waits.Check:
            pods = kube.pods(ns, f"app.kubernetes.io/name={CONTROLLER}")
            return waits.pending(f"{len(pods)} controller pods") if pods else waits.succeeded()

        waits.until(gone, timeout=self.target.timeouts.cleanup, what=f"{CONTROLLER} pods gone")

    def controller_running(self, kube: Kube) -> bool:
        ns = self.target.argocd_namespace
        return bool(kube.apps.read_namespaced_stateful_set(CONTROLLER, ns).status.ready_replicas)

    def argocd_server_log(self, kube: Kube, since_seconds: int) -> str:
        """The argocd-server pods' logs of the last ``since_seconds``."""
        ns = self.target.argocd_namespace
        pods = kube.pods(ns, "app.kubernetes.io/name=argocd-server")
        return "\n".join(
            kube.core.read_namespaced_pod_log(p.metadata.name, ns, since_seconds=since_seconds) for p in pods
        )

    # --- repositories, images, CI -------------------------------------------------------------------

    def git_remote(self, repo: str) -> tuple[str, dict[str, str]]:
        """GitLab's HTTPS URL of ``repo``; the token (gitlab.token_env) and CA go in git's environment."""
        from boutique_suite import repos

        gitlab = self.target.gitlab
        assert gitlab is not None, f"target {self.target.name} has no gitlab section"
        token = os.environ.get(gitlab.token_env, "")
        assert token, f"{gitlab.token_env} is not set (a GitLab token with read_repository)"
        extra = {"http.extraHeader": f"PRIVATE-TOKEN: {token}"}
        if gitlab.ca_file:
            extra["http.sslCAInfo"] = gitlab.ca_file
        return f"{gitlab.url.rstrip('/')}/{REPO_GROUP}/{repo}.git", repos.git_env(extra)

    def gitops_repo(self) -> Repo:
        from boutique_suite.gitops_repo import RemoteGitopsRepo, RepoUnavailable

        try:
            url, env = self.git_remote("gitops-repo")
        except AssertionError as exc:
            raise RepoUnavailable(str(exc)) from None
        return RemoteGitopsRepo(url, env)

    def ensure_pullable(self, image: str) -> str | None:
        """Nothing to do: the pipeline pushed the image to the registry."""
        return None

    def pipelines(self) -> Pipelines:
        raise AssertionError(self.pipelines_missing())

    # --- tools, sealing, Secrets -----------------------------------------------------------------

    def kubectl_binary(self) -> Path:
        found = shutil.which("kubectl")
        assert found, "kubectl is not on PATH: install it to run this scenario"
        return Path(found)

    def kubeseal_binary(self) -> Path:
        from boutique_suite.sealing import SealingError

        found = shutil.which("kubeseal")
        if found is None:
            raise SealingError("kubeseal is not on PATH: install kubeseal (same version as the controller)")
        return Path(found)

    def expect_sealing_certificate(self) -> None:
        """Nothing more than the controller's Deployment (checked by layer 7)."""

    def seal(self, name: str, namespace: str, data: dict[str, str]) -> dict:
        from boutique_suite import sealing
        from provisioning import phase7_advanced

        controller_ns, controller = phase7_advanced.controller_location()
        return sealing.kubeseal_secret(
            self.target, self.kubeseal_binary(), name, namespace, data, controller_ns, controller
        )

    def expect_pull_secret(self, kube: Kube, namespace: str) -> None:
        """Nothing beyond the referenced Secrets existing (on-prem the pull secret holds GitLab's deploy
        token, which the suite does not know)."""
