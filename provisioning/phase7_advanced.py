"""Layer 7, advanced.

Terraform, Sealed Secrets, Locust load, HPA. lab: the real Sealed Secrets controller as a local process
(provisioning/lab/services/sealedsecrets.py), kubeseal from the same build, and the HPA machinery of layer 2
(metrics-server serving metrics.k8s.io to the real HPA controller, over KWOK's simulated usage). Terraform and
Locust are not in the lab: their scenarios skip with the reason. onprem: the sealed-secrets chart comes
through the app-of-apps (layer 3); this layer checks that its controller Deployment is ready and that the
metrics API is served."""

from __future__ import annotations

from pathlib import Path

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from boutique_suite.clients.kube import ClusterUnreachable, Kube, connect_to
from boutique_suite.context.sites import through_site
from boutique_suite.run.targets import Target
from provisioning.layer import LayerState, broken

PHASE = 7
NAME = "advanced"
METRICS_APISERVICE = "v1beta1.metrics.k8s.io"
GITOPS = Path(__file__).resolve().parent / "gitops" / "platform"


NEEDS = (4,)  # the HPAs and the namespace the scenarios seal for are the Online Boutique's, from layer 4


needs, check, ensure = through_site(PHASE)


def controller_location() -> tuple[str, str]:
    """(namespace, Deployment) of the Sealed Secrets controller as gitops-repo installs it on-prem:
    the chart's Application destination and the values' fullnameOverride."""
    app = yaml.safe_load((GITOPS / "apps" / "sealed-secrets.yaml").read_text())
    values = yaml.safe_load((GITOPS / "values" / "sealed-secrets.yaml").read_text()) or {}
    return app["spec"]["destination"]["namespace"], values.get("fullnameOverride", "sealed-secrets")


def metrics_api_problem(kube: Kube) -> str | None:
    """None when the aggregated metrics API (metrics-server) is Available, else why not."""
    try:
        svc = client.ApiregistrationV1Api(kube.api).read_api_service(METRICS_APISERVICE)
    except ApiException as exc:
        if exc.status == 404:
            return f"APIService {METRICS_APISERVICE} does not exist (is metrics-server installed?)"
        return f"APIService {METRICS_APISERVICE}: {exc.status} {exc.reason}"
    available = next((c for c in svc.status.conditions or [] if c.type == "Available"), None)
    if available is None or available.status != "True":
        why = f"{available.reason}: {available.message}" if available else "no Available condition"
        return f"metrics.k8s.io not served: APIService {METRICS_APISERVICE} {why}"
    return None


def controller_problem(kube: Kube, namespace: str, name: str) -> str | None:
    """None when the controller Deployment has all its replicas ready, else why not."""
    try:
        dep = kube.deployment(namespace, name)
    except ApiException as exc:
        if exc.status == 404:
            return f"Deployment {namespace}/{name} not found (sealed-secrets chart not synced?)"
        return f"Deployment {namespace}/{name}: {exc.status} {exc.reason}"
    want, ready = dep.spec.replicas or 1, dep.status.ready_replicas or 0
    return None if ready >= want else f"Deployment {namespace}/{name}: {ready}/{want} replicas ready"


def kube_of(target: Target) -> Kube:
    try:
        return connect_to(target, run_id="check")
    except ClusterUnreachable as exc:
        raise broken(PHASE, NAME, str(exc)) from None


def layer_state(kube: Kube, components: dict[str, str], problems: list[str]) -> LayerState:
    """The layer's state from the Sealed Secrets controller's ``components`` / ``problems`` (found the
    target's way) and the metrics API."""
    components, problems = dict(components), list(problems)
    if problem := metrics_api_problem(kube):
        problems.append(problem)
    else:
        components["metrics.k8s.io"] = f"APIService {METRICS_APISERVICE} Available"
    detail = "; ".join(problems) or "Sealed Secrets controller running, metrics API served"
    return LayerState(PHASE, NAME, not problems, detail, components)


def check_onprem(target: Target) -> LayerState:
    """The controller's Deployment where the chart puts it."""
    kube = kube_of(target)
    namespace, name = controller_location()
    if problem := controller_problem(kube, namespace, name):
        return layer_state(kube, {}, [problem])
    return layer_state(kube, {name: f"Deployment ready in {namespace}"}, [])


def ensure_onprem(target: Target) -> LayerState:
    state = check_onprem(target)
    if not state.ready:
        raise broken(PHASE, NAME, state.detail)
    return state


def kubeseal_binary() -> Path:
    """The lab's kubeseal (built with the controller), or LayerBroken naming the fix."""
    from provisioning.lab import build
    from provisioning.lab.services import sealedsecrets

    path = build.bin_dir(sealedsecrets.COMPONENT) / "kubeseal"
    if not path.is_file():
        raise broken(
            PHASE,
            NAME,
            f"kubeseal is missing at {path}: run `./run setup` "
            "(builds sealed-secrets into ~/.cache/boutique-lab)",
        )
    return path
