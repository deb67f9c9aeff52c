"""Phase 3 on real hosts: a pinned Argo CD, its Ingress and gitops-repo's credentials, then the root
Application of the app-of-apps (gitops bootstrap/). Everything else (MetalLB and its pool, ingress-nginx,
monitoring, Sealed Secrets, the Online Boutique) comes through the app-of-apps, not from here.

The install manifest is Argo CD's own ``manifests/install.yaml`` at the version pinned in
provisioning/lab/versions.toml [argocd] (the lab runs the same version), read from the Argo CD Go module
(``go mod download`` into the module cache), never fetched from the internet at run time. gitops-repo's
token comes from the environment variable the target file names; it goes to kubectl on stdin only.

gitops-repo's push webhook: Argo CD's ``webhook.gitlab.secret`` (made once, kept in argocd-secret, never
printed) and the GitLab project hook that sends it (provisioning/gitlab_platform.py), so a push reaches Argo
CD at once instead of at its next poll.

Every apply is server-side, one field manager per group of objects (so one group never takes fields away
from another), and reports which objects it changed (its own managed-fields entry of each): a second ensure
changes none.
"""

from __future__ import annotations

import base64
import copy
import functools
import json
import secrets
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from boutique_suite.clients.kubectl import Kubectl, KubectlError, stream
from boutique_suite.context.sites import kubectl_of
from boutique_suite.run.targets import Target, TargetError

MODULE = "github.com/argoproj/argo-cd/v3"
GITOPS = Path(__file__).resolve().parent / "gitops"
FIELD_MANAGER = "boutique-suite"
REPO_SECRET = "repo-gitops-repo"
ARGOCD_SECRET = "argocd-secret"
WEBHOOK_KEY = "webhook.gitlab.secret"
TLS_CERTS = "argocd-tls-certs-cm"
UPSTREAM_NAMESPACE = "argocd"  # install.yaml's ClusterRoleBindings name this namespace
DEX = "deployment/argocd-dex-server"  # SSO only: a site without SSO may leave it out (argocd.dex: false)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml where PyYAML has it (its wheels do)
WORKLOADS = (
    "deployment/argocd-server",
    "deployment/argocd-repo-server",
    "deployment/argocd-redis",
    "deployment/argocd-applicationset-controller",
    "deployment/argocd-notifications-controller",
    DEX,
    "statefulset/argocd-application-controller",
)


def workloads(with_dex: bool = True) -> tuple[str, ...]:
    return tuple(w for w in WORKLOADS if with_dex or w != DEX)


class BootstrapError(Exception):
    """The bootstrap cannot go on; the message names what is missing or what the cluster refused."""


def kubectl_for(target: Target) -> Kubectl:
    """kubectl with the target's kubeconfig and context (provisioning's one runner: KubectlError)."""
    try:
        return kubectl_of(target)
    except AssertionError as exc:
        raise BootstrapError(str(exc)) from None


def version() -> str:
    from provisioning.lab import recipes

    return recipes.load_versions()["argocd"]["version"]


# --- what is applied ----------------------------------------------------------------------------------


def install_manifest(pinned: str | None = None) -> list[dict]:
    """Argo CD's manifests/install.yaml at the pinned version, from its Go module (a copy the caller may
    change)."""
    return copy.deepcopy(_install_manifest(pinned or version()))


@functools.cache
def _install_manifest(pinned: str) -> tuple[dict, ...]:
    """Parsed once per process with libyaml: 1.4 MB of CRDs take PyYAML's pure-Python loader 3–5 s on two
    busy cores, and a layer-3 ensure reads it three times."""
    from provisioning.gitops.checks import schema

    try:
        path = schema.module_dir(MODULE, pinned) / "manifests" / "install.yaml"
    except RuntimeError as exc:
        raise BootstrapError(f"cannot read Argo CD's install manifest from its Go module: {exc}") from None
    return tuple(doc for doc in yaml.load_all(path.read_text(), Loader=_LOADER) if doc)


def install_objects(namespace: str, pinned: str | None = None, with_dex: bool = True) -> list[dict]:
    """install.yaml for ``namespace``: namespaced objects in it, the ClusterRoleBindings' subjects too;
    without dex's Deployment when ``with_dex`` is false (a site without SSO)."""
    objects = install_manifest(pinned)
    if not with_dex:
        objects = [o for o in objects if f"{o['kind'].lower()}/{o['metadata']['name']}" != DEX]
    for obj in objects:
        if obj["kind"] == "ClusterRoleBinding":
            for subject in obj.get("subjects") or []:
                if subject.get("namespace") == UPSTREAM_NAMESPACE:
                    subject["namespace"] = namespace
        elif obj["kind"] not in ("ClusterRole", "CustomResourceDefinition"):
            obj["metadata"]["namespace"] = namespace
    return objects


def _b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def repository_objects(target: Target, namespace: str) -> list[dict]:
    """gitops-repo's repository Secret (HTTPS + deploy token) and the platform CA for its host."""
    argocd = target.argocd
    if argocd is None or argocd.repository is None:
        raise BootstrapError(f"{target.source}: argocd.repository (url, username, password_env) is missing")
    repo = argocd.repository
    try:
        token = repo.password()
    except TargetError as exc:
        raise BootstrapError(str(exc)) from None
    objects = [repository_secret(namespace, repo.url, repo.username, token)]
    ca_file = target.gitlab.ca_file if target.gitlab else None
    if ca_file:
        path = Path(ca_file).expanduser()
        if not path.is_file():
            raise BootstrapError(f"{target.source}: gitlab.ca_file: {path} does not exist")
        objects.append(tls_certs(namespace, urlsplit(repo.url).hostname or "", path.read_text()))
    return objects


def repository_secret(namespace: str, url: str, username: str, token: str) -> dict:
    """Argo CD's declarative repository Secret for gitops-repo over HTTPS with a token."""
    labels = {"app.kubernetes.io/part-of": "argocd", "argocd.argoproj.io/secret-type": "repository"}
    data = {"type": "git", "name": "gitops-repo", "url": url, "username": username, "password": token}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": REPO_SECRET, "namespace": namespace, "labels": labels},
        "data": {k: _b64(v) for k, v in data.items()},  # data, not stringData: equal input, no write
    }


def tls_certs(namespace: str, host: str, ca_pem: str) -> dict:
    """argocd-tls-certs-cm: the CA Argo CD trusts for the git server ``host``."""
    meta = {"name": TLS_CERTS, "namespace": namespace, "labels": {"app.kubernetes.io/part-of": "argocd"}}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {host: ca_pem}}


def _kustomize(kubectl: Kubectl, directory: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(kubectl.run("kustomize", str(directory))) if doc]


def ingress_objects(kubectl: Kubectl, namespace: str) -> list[dict]:
    """gitops-repo's Argo CD Ingress (platform/config/argocd), in Argo CD's namespace."""
    objects = _kustomize(kubectl, GITOPS / "platform" / "config" / "argocd")
    for obj in objects:
        obj["metadata"]["namespace"] = namespace
    return objects


def bootstrap_objects(kubectl: Kubectl, target: Target, namespace: str) -> list[dict]:
    """The root Application "platform" (gitops bootstrap/), reading the target's gitops-repo."""
    assert target.argocd is not None and target.argocd.repository is not None
    objects = _kustomize(kubectl, GITOPS / "bootstrap")
    for obj in objects:
        obj["metadata"]["namespace"] = namespace
        if obj["kind"] == "Application":
            obj["spec"]["source"]["repoURL"] = target.argocd.repository.url
    return objects


# --- applying -----------------------------------------------------------------------------------------


def _key(obj: dict) -> str:
    ns = obj["metadata"].get("namespace")
    return f"{obj['kind']}/{ns + '/' if ns else ''}{obj['metadata']['name']}"


def _applied(kubectl: Kubectl, objects: str, manager: str) -> dict[str, str]:
    """Each object's managed-fields entry of ``manager`` (what that field manager last applied, and when). An
    apply that changes nothing leaves it as it was; another writer (a controller updating a status, Argo CD
    writing its settings) does not touch it, so it tells what this apply did, unlike the resourceVersion."""
    out = kubectl.run(
        "get",
        "--ignore-not-found",
        "--show-managed-fields",
        "-o",
        "json",
        "-f",
        "-",
        stdin=objects,
    )
    if not out.strip():
        return {}
    listing = json.loads(out)
    items = listing.get("items", [listing]) if listing.get("kind", "").endswith("List") else [listing]
    found = {}
    for item in items:
        entries = [m for m in item["metadata"].get("managedFields") or [] if m.get("manager") == manager]
        found[_key(item)] = json.dumps(entries, sort_keys=True)
    return found


def apply(kubectl: Kubectl, objects: list[dict], group: str, dry_run: bool = False) -> list[str]:
    """Server-side apply as field manager ``boutique-suite-<group>``; the objects it created or changed."""
    manager = f"{FIELD_MANAGER}-{group}"
    args = ["apply", "--server-side", "--force-conflicts", f"--field-manager={manager}"]
    text = stream(objects)
    if dry_run:
        kubectl.run(*args, "--dry-run=server", "-f", "-", stdin=text)
        return []
    before = _applied(kubectl, text, manager)
    kubectl.run(*args, "-f", "-", stdin=text)
    after = _applied(kubectl, text, manager)
    return sorted(key for key, entry in after.items() if before.get(key) != entry)


def install(
    kubectl: Kubectl, namespace: str, site_objects: list[dict] | None = None, with_dex: bool = True
) -> list[str]:
    """Argo CD's namespace, the site's own objects for it (argocd-server-tls, say: there before the server
    starts), and the pinned install.yaml (without dex's Deployment for a site without SSO); the objects
    created or changed."""
    changed = apply(
        kubectl, [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}], "namespace"
    )
    if site_objects:
        changed += apply(kubectl, site_objects, "site")
    changed += apply(kubectl, install_objects(namespace, with_dex=with_dex), "install")
    if not with_dex:  # switched off after an install with it
        gone = kubectl.run("delete", "-n", namespace, DEX, "--ignore-not-found", "-o", "name")
        changed += [f"deleted {line}" for line in gone.split() if line]
    return changed


def wait_ready(kubectl: Kubectl, namespace: str, timeout: int, with_dex: bool = True) -> None:
    for workload in workloads(with_dex):
        kubectl.run("rollout", "status", "-n", namespace, workload, f"--timeout={timeout}s")


def ensure(target: Target) -> list[str]:
    """Idempotent bootstrap; returns the objects it created or changed (none on a second run).
    Every failure, the cluster's refusals included, is a BootstrapError."""
    try:
        return _ensure(target)
    except KubectlError as exc:
        raise BootstrapError(str(exc)) from None


def _ensure(target: Target) -> list[str]:
    if target.argocd is None:
        raise BootstrapError(f"{target.source}: the target has no argocd section")
    namespace = target.argocd.namespace
    kubectl = kubectl_for(target)
    repository = repository_objects(target, namespace)  # first: a missing token stops before any change
    with_dex = target.argocd.dex
    changed = install(kubectl, namespace, with_dex=with_dex)
    changed += apply(kubectl, repository, "repository")
    wait_ready(kubectl, namespace, target.timeouts.rollout, with_dex)
    changed += apply(kubectl, ingress_objects(kubectl, namespace), "ingress")
    changed += apply(kubectl, bootstrap_objects(kubectl, target, namespace), "bootstrap")
    changed += push_webhook(target, kubectl, namespace)
    return changed


def webhook_secret(kubectl: Kubectl, namespace: str) -> tuple[str, list[dict]]:
    """Argo CD's token for GitLab's push webhook: the one argocd-secret holds, or a new one with the object
    that stores it (to apply)."""
    out = kubectl.run("get", "secret", ARGOCD_SECRET, "-n", namespace, "--ignore-not-found", "-o", "json")
    data = (json.loads(out).get("data") or {}) if out.strip() else {}
    if data.get(WEBHOOK_KEY):
        return base64.b64decode(data[WEBHOOK_KEY]).decode(), []
    token = secrets.token_urlsafe(32)
    meta = {"name": ARGOCD_SECRET, "namespace": namespace}
    return token, [
        {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "data": {WEBHOOK_KEY: _b64(token)}}
    ]


def push_webhook(target: Target, kubectl: Kubectl, namespace: str) -> list[str]:
    """Argo CD's webhook secret, and gitops-repo's GitLab hook to ``<argocd.url>/api/webhook`` sending it."""
    from provisioning import gitlab_platform

    assert target.argocd is not None
    token, objects = webhook_secret(kubectl, namespace)
    changed = apply(kubectl, objects, "webhook") if objects else []
    url = f"{target.argocd.url.rstrip('/')}/api/webhook"
    try:
        gl, spec = gitlab_platform.from_target(target)
        report = gitlab_platform.ensure_push_webhook(gl, url, token, new_token=bool(objects), spec=spec)
    except gitlab_platform.GitLabUnavailable as exc:
        raise BootstrapError(f"gitops-repo's push webhook: {exc}") from None
    return changed + [f"GitLab {what}" for what in report.changed]
