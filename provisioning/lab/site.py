"""The lab's site (targets of kind ``lab``): the offline lab's processes, git server, registry catalog and
builds behind :class:`boutique_suite.context.sites.Site`. Only this module of the lab is named by the suite's
library (as a dotted path in ``boutique_suite.context.sites``); it calls the lab modules' public functions.
Its layers are site_layers.py's, its repositories and pipelines site_repos.py's."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from boutique_suite.expectations import argocd_workloads
from boutique_suite.run.targets import Target
from provisioning.lab import build, recipes, site_layers, site_repos, timers
from provisioning.lab.services import boutique, catalog, gitrepos, gitserver, metallb, pipeline, sealedsecrets
from provisioning.layer import LayerState

if TYPE_CHECKING:
    from boutique_suite.clients.gitops_repo import Repo
    from boutique_suite.clients.kube import Kube
    from provisioning.lab.services.gitserver import GitServer

GIT_SERVER = "the lab git server"
NO_REGISTRY = (
    "the lab's pipeline builds no image (its buildkitd is not running): the lab tagged the stand-in itself, "
    "so finding that tag in registry.local would read back what the lab wrote"
)
APP_REPO_NO_SOURCES = (
    "the lab's app-repo holds each service's Dockerfile and the .gitlab-ci.yml, but not the services' "
    "sources (Online Boutique's source cannot be fetched offline)"
)
INGRESS_NOT_IN_LAB = (
    "ingress-nginx's controller is not in the lab (its image cannot be fetched offline and is not built "
    "here): only its Service exists, which the lab creates itself from platform/values/ingress-nginx.yaml, "
    "so there are no replicas to check"
)
ONPREM_ONLY = "cannot be made real on the offline lab (onprem only); run with --target onprem"
LAB_PUSHED = (
    "the lab pushes its stand-in image under the commit's tag: the build and push jobs need a container "
    "engine"
)


@dataclass
class _BuiltTools:
    """The project's build cache (provisioning/lab/build.py), read at each call (tests move it)."""

    provider_mirror: str = recipes.PROVIDER_MIRROR

    @property
    def cache_root(self) -> Path:
        return recipes.CACHE_ROOT

    def directory(self, component: str) -> Path:
        return recipes.components()[component].directory

    def built(self, component: str) -> Path | None:
        directory = self.directory(component)
        return directory if (directory / build.MANIFEST).exists() else None


BUILT_TOOLS = _BuiltTools()


def git_server() -> GitServer:
    server = gitserver.running()
    assert server is not None, "the lab git server is not running"
    return server


@dataclass
class LabSite:
    target: Target
    git_server: str = GIT_SERVER
    standin_storefront: bool = True
    local_slack: bool = True

    # --- layers --------------------------------------------------------------------------------------

    def layer_needs(self, phase: int) -> tuple[int, ...]:
        return site_layers.LabLayers(self.target).needs(phase)

    def check_layer(self, phase: int) -> LayerState:
        return site_layers.LabLayers(self.target).check(phase)

    def ensure_layer(self, phase: int) -> LayerState:
        return site_layers.LabLayers(self.target).ensure(phase)

    # --- what the lab does not have ------------------------------------------------------------------

    def shortened_timers_page(self) -> str | None:
        return timers.page()

    def onprem_only_missing(self) -> str | None:
        return ONPREM_ONLY

    def mutations_missing(self) -> str | None:
        return None  # the lab publishes gitops-repo from the content $BOUTIQUE_GITOPS_SOURCE names

    def registry_lookup_missing(self) -> str | None:
        """Real once the lab's pipeline builds and pushes (its buildkitd runs): the tag is the job's push."""
        return NO_REGISTRY if pipeline.unrunnable_jobs() else None

    def app_repo_sources_missing(self) -> str | None:
        return APP_REPO_NO_SOURCES

    def metallb_missing(self) -> str | None:
        proc = metallb.status()
        if proc.alive:
            return None
        why = metallb.last_error() or f"see its log {proc.log}"
        return f"MetalLB's controller is not running in the lab: {why}"

    def ingress_controller_missing(self) -> str | None:
        return INGRESS_NOT_IN_LAB

    def pipelines_missing(self) -> str | None:
        return None

    # --- Argo CD: install.yaml's workloads in the lab cluster, as on-prem -----------------------------

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

    # --- repositories, images, CI ------------------------------------------------------------------

    def git_remote(self, repo: str) -> tuple[str, dict[str, str]]:
        server = git_server()
        return server.repo_url(repo), gitrepos.client_env(server)

    def gitops_repo(self) -> Repo:
        return site_repos.LabGitopsRepo()

    def ensure_pullable(self, image: str) -> str | None:
        """The stand-in of that service tagged ``image`` in the lab's registry; says it is simulated."""
        catalog.publish(image)
        return LAB_PUSHED

    def pipelines(self) -> site_repos.LabPipelines:
        return site_repos.LabPipelines(git_server())

    # --- tools, sealing, Secrets -------------------------------------------------------------------

    def kubectl_binary(self) -> Path:
        return build.bin_dir("kubernetes") / "kubectl"

    def kubeseal_binary(self) -> Path:
        from boutique_suite.actions.sealing import SealingError

        path = build.bin_dir(sealedsecrets.COMPONENT) / "kubeseal"
        if not path.is_file():
            raise SealingError(f"kubeseal is missing at {path}: run `./run setup` to build it")
        return path

    def expect_sealing_certificate(self) -> None:
        """The controller answers with its sealing certificate."""
        try:
            sealedsecrets.cert_pem()
        except sealedsecrets.SealedSecretsError as exc:
            raise AssertionError(str(exc)) from None

    def seal(self, name: str, namespace: str, data: dict[str, str]) -> dict:
        from boutique_suite.actions.sealing import SealingError

        self.kubeseal_binary()
        try:
            return sealedsecrets.seal(name, namespace, data)
        except sealedsecrets.SealedSecretsError as exc:
            raise SealingError(str(exc)) from None

    @staticmethod
    def expect_pull_secret(kube: Kube, namespace: str) -> None:
        """The Secret Argo CD synced (as a SealedSecret, opened by the real controller) holds exactly the
        pull credentials the lab sealed."""
        secret = kube.core.read_namespaced_secret("registry-credentials", namespace)
        opened = json.loads(base64.b64decode(secret.data[".dockerconfigjson"]))
        assert opened == json.loads(boutique.registry_dockerconfigjson()), (
            "registry-credentials differs from what was sealed"
        )
