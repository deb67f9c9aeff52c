"""The offline lab's layers, phases 0 to 7: what each one's check looks at and how each is brought up on
the lab (its git server, kwokctl cluster, Argo CD, MetalLB, pipelines, monitoring, Sealed Secrets).
:class:`provisioning.lab.site.LabSite` answers the suite's layer calls with these."""

from __future__ import annotations

from dataclasses import dataclass

from boutique_suite.run import waits
from boutique_suite.run.targets import Target
from provisioning import (
    phase0_foundation,
    phase2_cluster,
    phase4_gitops,
    phase6_observability,
    phase7_advanced,
)
from provisioning.lab import build, kubectl, lab_status, manager, processes, recipes
from provisioning.lab.services import (
    app_repo,
    argocd,
    boutique,
    buildkit,
    catalog,
    gitrepos,
    gitserver,
    metallb,
    monitoring,
    pipeline,
    registry,
    sealedsecrets,
    upstream_images,
)
from provisioning.layer import LayerState, broken, not_provisioned

# The lab's nodes trust no registry (they run no containers), so layer 2 does not need layer 1.
NEEDS = {2: (0,)}


@dataclass
class LabLayers:
    """The layers of ``target`` on the offline lab."""

    target: Target

    def needs(self, phase: int) -> tuple[int, ...]:
        from provisioning.onprem_site import layer_module

        return NEEDS.get(phase, layer_module(phase).NEEDS)

    def check(self, phase: int) -> LayerState:
        return getattr(self, f"_check_{phase}")()

    def ensure(self, phase: int) -> LayerState:
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
        status = lab_status.status()
        if not status.healthy:
            return LayerState(
                phase2_cluster.PHASE, phase2_cluster.NAME, False, status.problem or "lab not running"
            )
        return phase2_cluster.check_nodes(self.target)

    def _ensure_2(self) -> LayerState:
        from boutique_suite.run.touches import Touches

        try:
            started = manager.up()
        except manager.LabError as exc:
            raise broken(2, "cluster", f"could not start the lab: {exc}") from None
        runtime = lab_status.node_runtime()
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
            head = gitrepos.head(git, "app-repo")
        except gitserver.GitServerError as exc:
            return LayerState(layer.PHASE, layer.NAME, False, f"app-repo: {exc}")
        if buildkit.can_run() and buildkit.running() is None:
            return LayerState(layer.PHASE, layer.NAME, False, "the build job's buildkitd is not running")
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
                before: str | None = gitrepos.head(git, "app-repo")
            except gitserver.GitServerError:
                before = None
            head = pipeline.publish_app_repo(git)
        except (gitserver.GitServerError, app_repo.AppRepoError) as exc:
            raise broken(5, "CI/CD", f"cannot publish app-repo: {exc}") from None
        kit = self._ensure_buildkit()
        builds = (
            f"buildkitd {kit.address} builds their images" if kit else pipeline.unrunnable_jobs()["build"]
        )
        detail = f"app-repo at {head[:8]} on {git.url}; gitlab-ci-local {version} runs its jobs; {builds}"
        components = {
            "app-repo": head,
            "gitlab-ci-local": version,
            "buildkitd": kit.address if kit else "none",
        }
        return LayerState(layer.PHASE, layer.NAME, True, detail, components, changed=before != head)

    def _ensure_buildkit(self) -> buildkit.BuildKit | None:
        """The build job's buildkitd, with the Dockerfiles' base images on the mirror it pulls from; None
        where it cannot run (not root: the KWOK fallback), and the build and push jobs skip saying why."""
        if not buildkit.can_run():
            return None
        mirror = catalog.running()
        try:
            build.ensure_all(["buildkit", "crane"])  # buildctl and the push job's crane too
            for reference in upstream_images.BUILD_BASE_IMAGES:
                upstream_images.push(mirror, reference)
            return buildkit.ensure(mirror)
        except (upstream_images.UpstreamImageError, registry.RegistryError, recipes.BuildError) as exc:
            raise broken(5, "CI/CD", f"the build job's base images: {exc}") from None
        except buildkit.BuildKitError as exc:
            raise broken(5, "CI/CD", f"buildkitd: {exc}") from None

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
