"""The lab's site (targets of kind ``lab``): the offline lab's processes, git server, registry catalog and
builds behind :class:`boutique_suite.sites.Site`. Only this module of the lab is named by the suite's
library (as a dotted path in ``boutique_suite.sites``); it calls the lab modules' public functions."""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from boutique_suite import argocd_workloads, waits
from boutique_suite.targets import Target
from provisioning import (
    phase0_foundation,
    phase2_cluster,
    phase4_gitops,
    phase6_observability,
    phase7_advanced,
)
from provisioning.lab import (
    argocd,
    boutique,
    build,
    catalog,
    gitserver,
    kubectl,
    manager,
    metallb,
    monitoring,
    pipeline,
    processes,
    sealedsecrets,
    timers,
)
from provisioning.layer import LayerState, broken, not_provisioned

if TYPE_CHECKING:
    from boutique_suite.gitops_repo import Repo
    from boutique_suite.kube import Kube
    from provisioning.lab.gitserver import GitServer
    from provisioning.lab.pipeline import JobResult

GIT_SERVER = "the lab git server"
NO_REGISTRY = "the lab has no OCI registry: no image to look up"
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
# The lab's nodes trust no registry (they run no containers), so layer 2 does not need layer 1.
NEEDS = {2: (0,)}


@dataclass
class _BuiltTools:
    """The project's build cache (provisioning/lab/build.py), read at each call (tests move it)."""

    provider_mirror: str = build.PROVIDER_MIRROR

    @property
    def cache_root(self) -> Path:
        return build.CACHE_ROOT

    def directory(self, component: str) -> Path:
        return build.components()[component].directory

    def built(self, component: str) -> Path | None:
        directory = self.directory(component)
        return directory if (directory / build.MANIFEST).exists() else None


BUILT_TOOLS = _BuiltTools()


def git_server() -> GitServer:
    server = gitserver.running()
    assert server is not None, "the lab git server is not running"
    return server


@dataclass
class LabPipelines:
    """app-repo's jobs run by gitlab-ci-local against the lab git server."""

    git: GitServer
    single_jobs_missing: str | None = None

    @property
    def runner(self) -> str:
        return f"gitlab-ci-local {pipeline.GITLAB_CI_LOCAL_VERSION} (shell executor)"

    def head(self, repo: str) -> str:
        return gitserver.head(self.git, repo)

    def repo_url(self, repo: str) -> str:
        return self.git.repo_url(repo)

    def commit_change(self, repo: str, edits: dict[str, Callable[[str], str]], message: str) -> str:
        return pipeline.commit_change(self.git, repo, edits, message)

    def restore_app_repo(self, message: str) -> None:
        pipeline.publish_app_repo(self.git, message)

    def checkout(self, repo: str, commit: str, dest: Path) -> Path:
        return pipeline.checkout(self.git, repo, commit, dest)

    def run_job(self, work: Path, job: str, variables: dict[str, str] | None, timeout: float) -> JobResult:
        return pipeline.run_job(self.git, work, job, variables, timeout=timeout)

    def unrunnable(self, jobs: list[str]) -> str | None:
        """Why some of ``jobs`` cannot run here (None when all can)."""
        reasons = pipeline.unrunnable_jobs()
        skipped = [f'"{job}": {reasons[job]}' for job in jobs if job in reasons]
        return "job cannot run on the lab: " + "; ".join(skipped) if skipped else None

    def copy_repo(self, source: str, name: str) -> Callable[[], None]:
        """A new repository ``name`` holding ``source``'s history, pushable; returns its removal."""
        path = self.git.root / f"{name}.git"
        gitserver._git(None, "clone", "--quiet", "--bare", str(self.git.root / f"{source}.git"), str(path))
        gitserver._git(path, "config", "http.receivepack", "true")
        return lambda: shutil.rmtree(path, ignore_errors=True)

    def commits_between(self, repo: str, base: str, head: str) -> list[str]:
        return pipeline.commits_between(self.git, repo, base, head)

    def show_commit(self, repo: str, commit: str, path: str) -> dict[str, Any]:
        return pipeline.show_commit(self.git, repo, commit, path)


@dataclass
class LabGitopsRepo:
    """The lab's gitops-repo on its git server: the suite publishes its own content there."""

    def _server(self) -> GitServer:
        from boutique_suite.gitops_repo import RepoUnavailable

        server = gitserver.running()
        if server is None:
            raise RepoUnavailable("the lab git server is not running")
        return server

    def head(self) -> str:
        return gitserver.head(self._server(), "gitops-repo")

    def tree(self) -> str:
        """The tree hash of main: what gitops-repo holds, whatever commits led there."""
        return gitserver.tree(self._server(), "gitops-repo")

    def commit(self, edits: dict[str, Callable[[str], str]], message: str) -> str:
        """Commit the suite's gitops content with ``edits`` ({path: text -> text}); returns the SHA."""
        return boutique.publish_gitops_content(self._server(), edits=edits, message=message)

    def restore(self) -> str:
        """Back to the suite's gitops content (what the layer published): a new commit if anything differs."""
        return self.commit({}, "restore gitops-repo after a scenario")


@dataclass
class LabSite:
    target: Target
    git_server: str = GIT_SERVER
    standin_storefront: bool = True
    local_slack: bool = True

    # --- layers --------------------------------------------------------------------------------------

    def layer_needs(self, phase: int) -> tuple[int, ...]:
        from boutique_suite.onprem_site import layer_module

        return NEEDS.get(phase, layer_module(phase).NEEDS)

    def check_layer(self, phase: int) -> LayerState:
        return getattr(self, f"_check_{phase}")()

    def ensure_layer(self, phase: int) -> LayerState:
        return getattr(self, f"_ensure_{phase}")()

    def _check_0(self) -> LayerState:
        return phase0_foundation.check_local_host()

    def _ensure_0(self) -> LayerState:
        state = self._check_0()
        if not state.ready:
            raise broken(0, "foundation", f"this machine: {state.detail}")
        return state

    def _check_1(self) -> LayerState:
        from provisioning import phase1_platform as layer

        current = gitserver.running()
        detail = f"git server {current.url}" if current else "git server not running"
        return LayerState(
            layer.PHASE, layer.NAME, current is not None, detail, {"git": current.url} if current else {}
        )

    def _ensure_1(self) -> LayerState:
        from provisioning import phase1_platform as layer

        try:
            git = gitserver.ensure(port=argocd.PORTS["git"])
            for repo in gitserver.REPOS:
                gitserver.create_repo(git, repo)
            head = boutique.publish_gitops_content(git)
        except gitserver.GitServerError as exc:
            raise broken(1, "platform", f"could not start the lab git server: {exc}") from None
        detail = f"git server {git.url} with {', '.join(gitserver.REPOS)}; gitops-repo at {head[:8]}"
        return LayerState(layer.PHASE, layer.NAME, True, detail, {"git": git.url, "gitops-repo": head})

    def _check_2(self) -> LayerState:
        status = manager.status()
        if not status.healthy:
            return LayerState(
                phase2_cluster.PHASE, phase2_cluster.NAME, False, status.problem or "lab not running"
            )
        return phase2_cluster.check_nodes(self.target)

    def _ensure_2(self) -> LayerState:
        from boutique_suite.touches import Touches

        try:
            started = manager.up()
        except manager.LabError as exc:
            raise broken(2, "cluster", f"could not start the lab: {exc}") from None
        runtime = manager.node_runtime()
        if runtime is not None and runtime.kind != "real":
            for touched in (Touches.node_runtime, Touches.data_plane, Touches.load_balancer):
                self.target.downgrade(touched, runtime.reason)
        state = self._check_2()
        if not state.ready:
            raise broken(2, "cluster", f"lab started but not ready: {state.detail}")
        return LayerState(state.phase, state.name, True, state.detail, state.components, changed=started)

    def _check_3(self) -> LayerState:
        from provisioning import phase3_gateway_argocd as layer

        state = layer.check_onprem(self.target)  # install.yaml's workloads rolled out, as on-prem
        components = dict(state.components)
        controller = metallb.status()
        components[metallb.NAME] = str(controller.pid) if controller.alive else "not running"
        return LayerState(layer.PHASE, layer.NAME, state.ready, state.detail, components)

    def _ensure_3(self) -> LayerState:
        from provisioning import phase3_gateway_argocd as layer

        try:
            lab = argocd.ensure()
            argocd.expose()
        except (argocd.ArgoCDError, kubectl.KubectlError) as exc:
            raise broken(3, "gateway + Argo CD", f"could not start Argo CD: {exc}") from None
        gateway = self._ensure_gateway()
        state = self._check_3()
        detail = f"{state.detail} at {lab.url}; {gateway}"
        return LayerState(layer.PHASE, layer.NAME, state.ready, detail, state.components)

    def _ensure_gateway(self) -> str:
        """MetalLB's controller with the target's pool, and ingress-nginx's Service; what happened, in words.
        A failure is logged and reported by the MetalLB scenarios (they skip), Argo CD's stay unaffected."""
        from provisioning import phase3_gateway_argocd as layer

        if self.target.gateway is None:
            return "no MetalLB: the target file has no gateway section"
        try:
            controller = metallb.ensure(self.target.gateway.addresses)
            metallb.publish_ingress_service(self.target.gateway.ingress_vip)
        except (metallb.MetalLBError, kubectl.KubectlError) as exc:
            layer.log.warning("MetalLB's controller could not be started in the lab: %s", exc)
            return f"MetalLB's controller not running: {exc}"
        return f"MetalLB {controller.version} controller (pid {controller.pid}) with pool {controller.pool}"

    def _check_4(self) -> LayerState:
        return phase4_gitops.check_application(self.target)

    def _ensure_4(self) -> LayerState:
        layer, app = phase4_gitops, self.target.application
        git = gitserver.running()
        if git is None:
            raise broken(4, "GitOps", "the lab git server is not running")
        boutique.reseal_registry_credentials()
        head = boutique.publish_gitops_content(git)
        boutique.apply_applications(git)
        client = layer.client(self.target)
        client.refresh(app)
        healthy = layer.synced_and_healthy(client, app, revision=head)

        def exists(namespace: str) -> bool:
            return bool(
                kubectl.run("get", "namespace", namespace, "--ignore-not-found", "-o", "name").strip()
            )

        def probe() -> waits.Check:
            for namespace in boutique.APPLICATIONS.values():
                if exists(namespace):
                    boutique.publish_ingress_status(namespace)
            return healthy()

        try:
            waited = waits.until(
                probe,
                timeout=self.target.timeouts.rollout,
                interval=2,
                what=f"Application {app} Synced and Healthy",
            )
        except AssertionError as exc:
            raise layer.broken_application(self.target, client, str(exc)) from None
        return LayerState(layer.PHASE, layer.NAME, True, waited.check.detail, {app: "Synced/Healthy"})

    def _check_5(self) -> LayerState:
        from provisioning import phase5_cicd as layer

        missing = pipeline.missing_tools()
        git = gitserver.running()
        if missing or git is None:
            why = "; ".join(missing) if missing else "the lab git server is not running"
            return LayerState(layer.PHASE, layer.NAME, False, why)
        try:
            head = gitserver.head(git, "app-repo")
        except gitserver.GitServerError as exc:
            return LayerState(layer.PHASE, layer.NAME, False, f"app-repo: {exc}")
        return LayerState(layer.PHASE, layer.NAME, True, f"app-repo at {head[:8]}", {"app-repo": head})

    def _ensure_5(self) -> LayerState:
        from provisioning import phase5_cicd as layer

        try:
            version = pipeline.ensure_tools()
        except pipeline.PipelineUnavailable as exc:
            raise not_provisioned(layer.PHASE, layer.NAME, str(exc)) from None
        git = gitserver.running()
        if git is None:
            raise broken(5, "CI/CD", "the lab git server is not running")
        try:
            try:
                before: str | None = gitserver.head(git, "app-repo")
            except gitserver.GitServerError:
                before = None
            head = pipeline.publish_app_repo(git)
        except gitserver.GitServerError as exc:
            raise broken(5, "CI/CD", f"cannot publish app-repo: {exc}") from None
        detail = f"app-repo at {head[:8]} on {git.url}; gitlab-ci-local {version} runs its jobs"
        components = {"app-repo": head, "gitlab-ci-local": version}
        return LayerState(layer.PHASE, layer.NAME, True, detail, components, changed=before != head)

    def _check_6(self) -> LayerState:
        return phase6_observability.check_endpoints(self.target)

    def _ensure_6(self) -> LayerState:
        layer = phase6_observability
        try:
            started = monitoring.ensure()
        except monitoring.MonitoringError as exc:
            raise broken(6, "observability", str(exc)) from None
        detail = (
            f"started or reloaded: {', '.join(started.changed)}" if started.changed else "already running"
        )
        components = {name: f"pid {pid}" for name, pid in started.pids.items()}
        return LayerState(layer.PHASE, layer.NAME, True, detail, components, changed=bool(started.changed))

    def _check_7(self) -> LayerState:
        kube = phase7_advanced.kube_of(self.target)
        proc = processes.info(sealedsecrets.NAME)
        if not proc.alive:
            return phase7_advanced.layer_state(kube, {}, [f"{sealedsecrets.NAME} is not running"])
        running = f"pid {proc.pid}, 127.0.0.1:{sealedsecrets.PORT}"
        return phase7_advanced.layer_state(kube, {sealedsecrets.NAME: running}, [])

    def _ensure_7(self) -> LayerState:
        layer = phase7_advanced
        before = processes.info(sealedsecrets.NAME).pid
        try:
            controller = sealedsecrets.ensure()
        except sealedsecrets.SealedSecretsError as exc:
            raise broken(7, "advanced", f"Sealed Secrets: {exc}") from None
        kubeseal = layer.kubeseal_binary()
        state = self._check_7()
        if not state.ready:
            raise broken(7, "advanced", state.detail)
        components = {
            **state.components,
            sealedsecrets.NAME: f"{controller.version}, pid {controller.pid}, {controller.url}",
            "kubeseal": str(kubeseal),
        }
        changed = before != controller.pid
        detail = f"{sealedsecrets.NAME} {'started' if changed else 'already running'}; metrics API served"
        return LayerState(layer.PHASE, layer.NAME, True, detail, components, changed=changed)

    # --- what the lab does not have ------------------------------------------------------------------

    def shortened_timers_page(self) -> str | None:
        return timers.page()

    def onprem_only_missing(self) -> str | None:
        return ONPREM_ONLY

    def mutations_missing(self) -> str | None:
        return None  # the lab publishes gitops-repo from the content $BOUTIQUE_GITOPS_SOURCE names

    def registry_lookup_missing(self) -> str:
        return NO_REGISTRY

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
        return server.repo_url(repo), gitserver.client_env(server)

    def gitops_repo(self) -> Repo:
        return LabGitopsRepo()

    def ensure_pullable(self, image: str) -> str | None:
        """The stand-in of that service tagged ``image`` in the lab's registry; says it is simulated."""
        catalog.publish(image)
        return LAB_PUSHED

    def pipelines(self) -> LabPipelines:
        return LabPipelines(git_server())

    # --- tools, sealing, Secrets -------------------------------------------------------------------

    def kubectl_binary(self) -> Path:
        return build.bin_dir("kubernetes") / "kubectl"

    def kubeseal_binary(self) -> Path:
        from boutique_suite.sealing import SealingError

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
        from boutique_suite.sealing import SealingError

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
        assert opened == json.loads(boutique._registry_dockerconfigjson()), (
            "registry-credentials differs from what was sealed"
        )
