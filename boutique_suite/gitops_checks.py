"""Expectations about Argo CD and its access to gitops-repo, read through Kubernetes and Argo CD's API."""

from __future__ import annotations

import base64
import socket
import ssl
import tempfile
from urllib.parse import urlparse

from boutique_suite.argocd import ArgoCDClient, ArgoCDUnavailable
from boutique_suite.kube import Kube
from boutique_suite.targets import Target

REPO_SECRET_LABEL = "argocd.argoproj.io/secret-type"


def argocd_client(target: Target) -> ArgoCDClient:
    assert target.argocd is not None, f"target {target.name} has no argocd section"
    try:
        return ArgoCDClient.login(target.argocd.url, target.argocd.username, target.argocd.password())
    except ArgoCDUnavailable as exc:
        raise AssertionError(str(exc)) from None


def expect_components_running(target: Target, kube: Kube) -> dict[str, str]:
    """Lab: the local processes run; on-prem: the Deployments / StatefulSet in Argo CD's namespace."""
    if target.is_lab:
        from provisioning.lab import argocd

        procs = argocd.status()
        down = [n for n, p in procs.items() if not p.alive]
        assert not down, f"not running: {down}"
        return {n: f"pid {p.pid}, 127.0.0.1:{p.port}" for n, p in procs.items()}
    ns = target.argocd.namespace if target.argocd else "argocd"
    found = {}
    apps = kube.apps
    workloads = [*apps.list_namespaced_deployment(ns).items, *apps.list_namespaced_stateful_set(ns).items]
    for dep in workloads:
        ready = dep.status.ready_replicas or 0
        assert ready == (dep.spec.replicas or 1), f"{dep.metadata.name}: {ready}/{dep.spec.replicas} ready"
        found[dep.metadata.name] = f"{ready} ready"
    for name in ("argocd-server", "argocd-repo-server", "argocd-application-controller", "argocd-redis"):
        assert name in found, f"{name} not found in namespace {ns}: {sorted(found)}"
    return found


def expect_ingress_routes(kube: Kube, namespace: str, ingress: str, host: str, service: str) -> None:
    ing = kube.networking.read_namespaced_ingress(ingress, namespace)
    routes = [
        (rule.host, path.backend.service.name)
        for rule in ing.spec.rules or []
        for path in (rule.http.paths if rule.http else [])
        if path.backend.service
    ]
    assert (host, service) in routes, f"Ingress {namespace}/{ingress}: {routes}, not {host} -> {service}"
    kube.core.read_namespaced_service(service, namespace)  # the backend Service exists


def expect_api_and_login(target: Target) -> str:
    version = argocd_client(target).version()
    assert version.get("Version"), f"Argo CD answered no version: {version}"
    return version["Version"]


def repository_secret(kube: Kube, namespace: str, repo: str) -> dict[str, str]:
    selector = f"{REPO_SECRET_LABEL}=repository"
    for secret in kube.core.list_namespaced_secret(namespace, label_selector=selector).items:
        fields = {k: v for k, v in (secret.data or {}).items() if k in ("url", "name")}
        data = {k: base64.b64decode(v).decode() for k, v in fields.items()}
        if repo in data.get("url", "") or data.get("name") == repo:
            return {"secret": secret.metadata.name, "url": data["url"]}  # never the password
    raise AssertionError(f"no Secret labelled {REPO_SECRET_LABEL}=repository for {repo} in {namespace}")


def expect_repository_connection(target: Target, repo_url: str, status: str) -> dict:
    repos = {r["repo"]: r for r in argocd_client(target).repositories(force_refresh=True)}
    assert repo_url in repos, f"Argo CD does not know {repo_url}: {sorted(repos)}"
    state = repos[repo_url].get("connectionState", {})
    assert state.get("status") == status, f"{repo_url}: {state.get('status')}: {state.get('message')}"
    return repos[repo_url]


def expect_verified_tls(kube: Kube, namespace: str, repository: dict) -> None:
    """No insecure flag; the CA Argo CD holds for the host verifies the server's certificate for real."""
    assert not repository.get("insecure"), f"{repository['repo']} is configured with insecure: true"
    host = urlparse(repository["repo"]).hostname or ""
    port = urlparse(repository["repo"]).port or 443
    certs = kube.core.read_namespaced_config_map("argocd-tls-certs-cm", namespace).data or {}
    assert host in certs, f"argocd-tls-certs-cm has no CA for {host}: {sorted(certs)}"
    with tempfile.NamedTemporaryFile("w", suffix=".pem") as ca:
        ca.write(certs[host])
        ca.flush()
        context = ssl.create_default_context(cafile=ca.name)
        with (
            socket.create_connection((host, port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            assert tls.getpeercert(), f"{host}:{port} presented no certificate"
