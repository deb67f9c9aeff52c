"""Kubernetes access: connecting with a clear error, reading state, and the actions scenarios take.

Everything created here carries the run labels (boutique_suite.run.runlabel).
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import urllib3
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from boutique_suite.run import runlabel, waits
from boutique_suite.run.targets import RegistryAccess, Target
from boutique_suite.run.undo import UndoStack

log = logging.getLogger(__name__)
ADMIN_PORT = 9099  # the probe image's admin listener (POST /burn?millicores=N)
PROBE_IMAGE = "registry.local/boutique/suite-probe:v1"  # the suite's own pods (provisioning/probe_image.py)
PULL_SECRET = "suite-registry-pull"  # the private registry's pull secret in the suite's own namespaces
RESTRICTED = client.V1SecurityContext(
    run_as_non_root=True,
    run_as_user=65532,
    allow_privilege_escalation=False,
    capabilities=client.V1Capabilities(drop=["ALL"]),
    seccomp_profile=client.V1SeccompProfile(type="RuntimeDefault"),
)


class ClusterUnreachable(Exception):
    """The target's Kubernetes API cannot be used; the message says what to fix."""


@dataclass
class Kube:
    api: client.ApiClient
    run_id: str
    server: str
    # The target's private registry: the suite's namespaces get its pull secret, its pods name it (the probe
    # image is private, as the Boutique's images are).
    registry: RegistryAccess | None = None

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    @property
    def apps(self) -> client.AppsV1Api:
        return client.AppsV1Api(self.api)

    @property
    def storage(self) -> client.StorageV1Api:
        return client.StorageV1Api(self.api)

    @property
    def networking(self) -> client.NetworkingV1Api:
        return client.NetworkingV1Api(self.api)

    @property
    def autoscaling(self) -> client.AutoscalingV2Api:
        return client.AutoscalingV2Api(self.api)

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    # --- reading -------------------------------------------------------------------------------

    def node(self, name: str) -> client.V1Node:
        return self.core.read_node(name)

    def nodes(self) -> list[client.V1Node]:
        return self.core.list_node().items

    def default_storage_classes(self) -> list[str]:
        key = "storageclass.kubernetes.io/is-default-class"
        return [
            sc.metadata.name
            for sc in self.storage.list_storage_class().items
            if (sc.metadata.annotations or {}).get(key) == "true"
        ]

    def deployment(self, namespace: str, name: str) -> client.V1Deployment:
        return self.apps.read_namespaced_deployment(name, namespace)

    def pods(self, namespace: str, selector: str) -> list[client.V1Pod]:
        return self.core.list_namespaced_pod(namespace, label_selector=selector).items

    def replica_sets(self, namespace: str, selector: str) -> list[client.V1ReplicaSet]:
        return self.apps.list_namespaced_replica_set(namespace, label_selector=selector).items

    def events(self, namespace: str) -> list[client.CoreV1Event]:
        return self.core.list_namespaced_event(namespace).items

    def node_metrics(self) -> dict[str, dict[str, str]]:
        items = self.custom.list_cluster_custom_object("metrics.k8s.io", "v1beta1", "nodes")["items"]
        return {i["metadata"]["name"]: i["usage"] for i in items}

    def pod_metrics(self, namespace: str) -> dict[str, dict[str, str]]:
        items = self.custom.list_namespaced_custom_object("metrics.k8s.io", "v1beta1", namespace, "pods")[
            "items"
        ]
        return {i["metadata"]["name"]: _sum_containers(i["containers"]) for i in items}

    def hpa(self, namespace: str, name: str) -> client.V2HorizontalPodAutoscaler:
        return self.autoscaling.read_namespaced_horizontal_pod_autoscaler(name, namespace)

    # --- watching (feeds waits.until's ``wake``) -------------------------------------------------

    def watch_pods(self, namespace: str, selector: str, seconds: int) -> Iterator[object]:
        return self._watch(
            self.core.list_namespaced_pod, seconds, namespace=namespace, label_selector=selector
        )

    def watch_deployments(self, namespace: str, seconds: int) -> Iterator[object]:
        return self._watch(self.apps.list_namespaced_deployment, seconds, namespace=namespace)

    def _watch(self, list_fn, seconds: int, **kwargs) -> Iterator[object]:  # type: ignore[no-untyped-def]
        w = watch.Watch()
        return w.stream(list_fn, timeout_seconds=max(int(seconds), 1), **kwargs)

    # --- acting ---------------------------------------------------------------------------------

    def labels(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {**runlabel.labels(self.run_id), **(extra or {})}

    def create_namespace(self, prefix: str, timeout: float = 60) -> str:
        """A new namespace of this run, returned once its "default" ServiceAccount exists: until the
        controller-manager's ServiceAccount controller makes it, the API refuses every pod created there."""
        for n in itertools.count(1):
            name = f"{prefix}-{self.run_id}-{n}".lower()
            body = client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=self.labels()))
            try:
                self.core.create_namespace(body)
            except ApiException as exc:
                if exc.status != 409:
                    raise
                continue
            self._wait_default_service_account(name, timeout)
            self._give_pull_secret(name)
            return name
        raise AssertionError("unreachable")

    def _give_pull_secret(self, namespace: str) -> None:
        access = self.registry
        if access is None:
            return
        auth = base64.b64encode(f"{access.username}:{access.password()}".encode()).decode()
        body = client.V1Secret(
            metadata=client.V1ObjectMeta(name=PULL_SECRET, labels=self.labels()),
            type="kubernetes.io/dockerconfigjson",
            string_data={".dockerconfigjson": json.dumps({"auths": {access.host: {"auth": auth}}})},
        )
        self.core.create_namespaced_secret(namespace, body)

    def pull_secrets(self) -> list[client.V1LocalObjectReference] | None:
        """What a pod of the suite's own namespaces names to pull the probe image (see create_namespace)."""
        return [client.V1LocalObjectReference(name=PULL_SECRET)] if self.registry else None

    def _wait_default_service_account(self, namespace: str, timeout: float) -> None:
        def made() -> waits.Check:
            try:
                self.core.read_namespaced_service_account("default", namespace)
            except ApiException as exc:
                if exc.status == 404:
                    return waits.pending(f'no ServiceAccount "default" in {namespace} yet')
                raise
            return waits.succeeded()

        waits.until(made, timeout=timeout, interval=0.2, what=f"namespace {namespace} ready for pods")

    def delete_namespace(self, name: str, wait: float = 0) -> None:
        """Delete ``name``; with ``wait``, until it is gone (its pods stopped by their kubelets), for a revert
        that must be complete before the next scenario (a drain refuses bare pods still terminating)."""
        with contextlib.suppress(ApiException):
            self.core.delete_namespace(name, propagation_policy="Background")
        if not wait:
            return

        def gone() -> waits.Check:
            try:
                self.core.read_namespace(name)
            except ApiException as exc:
                if exc.status == 404:
                    return waits.succeeded()
            return waits.pending()

        try:
            waits.until(gone, timeout=wait, what=f"namespace {name} gone", interval=0.5)
        except waits.WaitTimeout:
            log.warning("namespace %s still terminating after %.0fs", name, wait)

    def create_deployment(
        self,
        namespace: str,
        name: str,
        replicas: int,
        cpu_request: str = "100m",
        memory_request: str = "64Mi",
        pod_annotations: dict[str, str] | None = None,
    ) -> client.V1Deployment:
        app = {"app": name}
        container = client.V1Container(
            name=name,
            image="registry.local/boutique/suite-probe:v1",
            # The probe image burns the CPU a fault asks for, set through its admin port (faults.CpuLoad).
            env=[client.V1EnvVar(name="ADMIN_PORT", value=str(ADMIN_PORT))],
            ports=[client.V1ContainerPort(name="admin", container_port=ADMIN_PORT)],
            resources=client.V1ResourceRequirements(
                requests={"cpu": cpu_request, "memory": memory_request},
                limits={"cpu": cpu_request, "memory": memory_request},
            ),
        )
        body = client.V1Deployment(
            metadata=client.V1ObjectMeta(name=name, labels=self.labels(app)),
            spec=client.V1DeploymentSpec(
                replicas=replicas,
                selector=client.V1LabelSelector(match_labels=app),
                template=client.V1PodTemplateSpec(
                    metadata=client.V1ObjectMeta(labels=self.labels(app), annotations=pod_annotations),
                    spec=client.V1PodSpec(containers=[container], image_pull_secrets=self.pull_secrets()),
                ),
            ),
        )
        return self.apps.create_namespaced_deployment(namespace, body)

    def create_pod(self, namespace: str, name: str, node: str | None = None, cpu: str = "100m") -> None:
        container = client.V1Container(
            name=name,
            image="registry.local/boutique/suite-probe:v1",
            resources=client.V1ResourceRequirements(requests={"cpu": cpu}, limits={"cpu": cpu}),
        )
        body = client.V1Pod(
            metadata=client.V1ObjectMeta(name=name, labels=self.labels({"app": name})),
            spec=client.V1PodSpec(
                containers=[container], node_name=node, image_pull_secrets=self.pull_secrets()
            ),
        )
        self.core.create_namespaced_pod(namespace, body)

    def delete_pod(self, namespace: str, name: str) -> None:
        self.core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)

    def annotate_pods(self, namespace: str, selector: str, annotations: dict[str, str | None]) -> int:
        pods = self.pods(namespace, selector)
        for pod in pods:
            self.core.patch_namespaced_pod(
                pod.metadata.name, namespace, {"metadata": {"annotations": annotations}}
            )
        return len(pods)

    def create_cpu_hpa(
        self,
        namespace: str,
        deployment: str,
        minimum: int,
        maximum: int,
        cpu_percent: int,
        scale_down_window: int = 300,
    ) -> None:
        body = client.V2HorizontalPodAutoscaler(
            metadata=client.V1ObjectMeta(name=deployment, labels=self.labels()),
            spec=client.V2HorizontalPodAutoscalerSpec(
                scale_target_ref=client.V2CrossVersionObjectReference(
                    api_version="apps/v1", kind="Deployment", name=deployment
                ),
                min_replicas=minimum,
                max_replicas=maximum,
                metrics=[
                    client.V2MetricSpec(
                        type="Resource",
                        resource=client.V2ResourceMetricSource(
                            name="cpu",
                            target=client.V2MetricTarget(type="Utilization", average_utilization=cpu_percent),
                        ),
                    )
                ],
                behavior=client.V2HorizontalPodAutoscalerBehavior(
                    scale_down=client.V2HPAScalingRules(
                        stabilization_window_seconds=scale_down_window,
                        policies=[client.V2HPAScalingPolicy(type="Percent", value=100, period_seconds=15)],
                    ),
                ),
            ),
        )
        self.autoscaling.create_namespaced_horizontal_pod_autoscaler(namespace, body)

    def delete_leftovers(self, alive: Iterable[str] = ()) -> list[str]:
        """Remove namespaces other runs of the suite left behind, sparing those of ``alive`` runs."""
        selector = runlabel.leftovers_selector(self.run_id, alive)
        stale = self.core.list_namespace(label_selector=selector).items
        removed = []
        for ns in stale:
            if ns.status and ns.status.phase == "Terminating":
                continue
            self.delete_namespace(ns.metadata.name)
            removed.append(ns.metadata.name)
        return removed


def _sum_containers(containers: list[dict]) -> dict[str, str]:
    from kubernetes.utils import parse_quantity

    cpu = sum(parse_quantity(c["usage"].get("cpu", "0")) for c in containers)
    mem = sum(parse_quantity(c["usage"].get("memory", "0")) for c in containers)
    return {"cpu": f"{int(cpu * 1000)}m", "memory": str(int(mem))}


def connect(
    kubeconfig: Path, context: str, run_id: str, timeout: float = 5.0, registry: RegistryAccess | None = None
) -> Kube:
    """Build a client for ``context`` in ``kubeconfig`` and prove the API answers; ``registry`` is the
    target's private registry (see Kube.registry)."""
    if not kubeconfig.is_file():
        raise ClusterUnreachable(
            f"kubeconfig {kubeconfig} does not exist (for the lab: `python -m provisioning.lab up`)"
        )
    try:
        api = config.new_client_from_config(config_file=str(kubeconfig), context=context)
    except ConfigException as exc:
        raise ClusterUnreachable(f"kubeconfig {kubeconfig}, context {context!r}: {exc}") from None
    server = api.configuration.host
    try:
        client.VersionApi(api).get_code(_request_timeout=timeout)
    except ApiException as exc:
        hint = " (wrong credentials?)" if exc.status in (401, 403) else ""
        raise ClusterUnreachable(
            f"Kubernetes API {server} answered {exc.status} {exc.reason}{hint}"
        ) from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise ClusterUnreachable(f"cannot reach the Kubernetes API at {server}: {_root_cause(exc)}") from None
    return Kube(api=api, run_id=run_id, server=server, registry=registry)


def connect_to(target: Target, run_id: str, timeout: float = 5.0) -> Kube:
    """connect() to the target's cluster, with its private registry for the suite's own pods."""
    cluster = target.cluster
    return connect(
        cluster.kubeconfig_path, cluster.context, run_id, timeout, registry=target.registry_access()
    )


def _root_cause(exc: BaseException) -> str:
    while exc.__cause__ or exc.__context__:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    reason = getattr(exc, "reason", None)
    return str(reason or exc)


def create_pod_undoably(kube: Kube, namespace: str, body: client.V1Pod, undo: UndoStack) -> str:
    """Create ``body`` with its deletion pushed on ``undo`` first (journalled: a run killed before its undo
    has its pod deleted by the next run); its name."""
    name = body.metadata.name
    undo.push(
        f"delete pod {namespace}/{name}",
        lambda: delete_pod_if_present(kube, namespace, name),
        journal=("delete_pod", {"namespace": namespace, "name": name}),
    )
    kube.core.create_namespaced_pod(namespace, body)
    return name


def delete_pod_if_present(kube: Kube, namespace: str, name: str) -> None:
    try:
        kube.delete_pod(namespace, name)
    except ApiException as exc:
        if exc.status != 404:
            raise
