"""What gitops-repo's overlays render to (kustomize, through the pinned kubectl) and what must hold for it,
using the same checks as the static check pyramid (provisioning/gitops/checks)."""

from __future__ import annotations

import base64
import json

from boutique_suite.clients.kube import Kube
from provisioning.gitops.checks import policy, render, report, schema

SERVICES = (
    "frontend",
    "cartservice",
    "productcatalogservice",
    "currencyservice",
    "paymentservice",
    "shippingservice",
    "emailservice",
    "checkoutservice",
    "recommendationservice",
    "adservice",
    "redis-cart",
)
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "StorageClass", "IngressClass"}
SECRET_WORDS = ("PASSWORD", "TOKEN", "SECRET", "KEY", "CREDENTIAL")


def build(overlay: str) -> list[dict]:
    return render.kustomize(overlay)


def expect_schemas_valid(objects: list[dict], kube_version: str) -> None:
    findings = schema.check(objects, kube_version)
    assert not findings, report(findings)


def expect_each_service(objects: list[dict]) -> None:
    have = {(o["kind"], o["metadata"]["name"]) for o in objects}
    missing = [
        f"{kind}/{svc}" for svc in SERVICES for kind in ("Deployment", "Service") if (kind, svc) not in have
    ]
    assert not missing, f"missing: {missing}"


def expect_namespace(objects: list[dict], namespace: str) -> None:
    wrong = [
        f"{o['kind']}/{o['metadata']['name']}: {o['metadata'].get('namespace')}"
        for o in objects
        if o["kind"] not in CLUSTER_SCOPED and o["metadata"].get("namespace") != namespace
    ]
    assert not wrong, f"not in {namespace}: {wrong}"


def expect_hardened_containers(objects: list[dict]) -> None:
    findings = [
        f
        for f in policy.containers(objects)
        if f.rule in ("run-as-non-root", "read-only-root", "resources", "privilege-escalation", "privileged")
    ]
    assert not findings, report(findings)


def _containers(objects: list[dict]) -> list[tuple[str, dict]]:
    return [
        (o["metadata"]["name"], c)
        for o in objects
        if o["kind"] == "Deployment"
        for c in o["spec"]["template"]["spec"]["containers"]
    ]


def expect_addresses_from_configmaps(objects: list[dict]) -> None:
    """Every *_ADDR / PORT setting reaches the container through a ConfigMap, not a literal."""
    literal = [
        f"{dep}/{c['name']}: {e['name']}"
        for dep, c in _containers(objects)
        for e in c.get("env", [])
        if (e["name"].endswith("_ADDR") or e["name"] == "PORT") and "value" in e
    ]
    assert not literal, f"set as literals instead of from a ConfigMap: {literal}"
    from_configmaps = [
        dep
        for dep, c in _containers(objects)
        if any("configMapRef" in s for s in c.get("envFrom", []))
        or any("configMapKeyRef" in e.get("valueFrom", {}) for e in c.get("env", []))
    ]
    # redis-cart takes no settings at all; every other service has its port and peers' addresses.
    services = [dep for dep, c in _containers(objects) if c.get("ports") and dep != "redis-cart"]
    assert set(services) <= set(from_configmaps), (
        f"no ConfigMap settings: {set(services) - set(from_configmaps)}"
    )


def expect_no_literal_secrets(objects: list[dict]) -> None:
    literal = [
        f"{dep}/{c['name']}: {e['name']}"
        for dep, c in _containers(objects)
        for e in c.get("env", [])
        if any(w in e["name"].upper() for w in SECRET_WORDS) and "value" in e
    ]
    assert not literal, f"secrets set as literal env values: {literal}"


def expect_referenced_secrets_exist(kube: Kube, objects: list[dict], namespace: str) -> dict[str, list[str]]:
    """Every Secret a Deployment (or its ServiceAccount, for image pulls) refers to exists in the cluster,
    and a dockerconfigjson pull secret decodes to registry credentials. Returns {secret: its keys}."""
    names: set[str] = set()
    accounts = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ServiceAccount"}
    for o in objects:
        if o["kind"] != "Deployment":
            continue
        pod = o["spec"]["template"]["spec"]
        names |= {s["name"] for s in pod.get("imagePullSecrets", [])}
        account = accounts.get(pod.get("serviceAccountName", "default"), {})
        names |= {s["name"] for s in account.get("imagePullSecrets", [])}
        for c in pod["containers"]:
            names |= {
                e["valueFrom"]["secretKeyRef"]["name"]
                for e in c.get("env", [])
                if "secretKeyRef" in e.get("valueFrom", {})
            }
            names |= {s["secretRef"]["name"] for s in c.get("envFrom", []) if "secretRef" in s}
    found = {}
    for name in sorted(names):
        secret = kube.core.read_namespaced_secret(name, namespace)  # raises 404 when missing
        found[name] = sorted((secret.data or {}).keys())
        if secret.type == "kubernetes.io/dockerconfigjson":
            auths = json.loads(base64.b64decode(secret.data[".dockerconfigjson"]))["auths"]
            assert auths, f"Secret {name} holds no registry credentials"
    return found
