"""Argo CD installed in the lab cluster by the on-prem code (``provisioning/argocd_bootstrap.install``), from
its pinned ``install.yaml`` unchanged, its images pulled through the nodes' registry mirror under their
upstream names (``provisioning/lab/upstream_images.py``).

The lab adds what an on-prem site adds too: ``argocd-server-tls``, argocd-server's certificate signed by the
platform CA for the Service's names (Argo CD's documented way to give the server a certificate), so the suite
talks to it over verified TLS, never with the insecure flag; and gitops-repo's repository Secret and the CA
for its host (argocd_bootstrap's own objects), the lab's git server reached by the pods at the lab's gateway.

The lab's layer 3 still runs Argo CD as host processes (provisioning/lab/argocd.py); this install goes into a
namespace of its own beside it until it replaces them (issue #27, item 3).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path

import urllib3

from provisioning import argocd_bootstrap
from provisioning.lab import catalog, gitserver, hosts, kubectl, manager, pki, processes, upstream_images

NAMESPACE = "argocd-replica"
STATE = processes.PLATFORM / "argocd-incluster"
TLS_SECRET = "argocd-server-tls"
INITIAL_ADMIN_SECRET = "argocd-initial-admin-secret"
SERVICE = "argocd-server"
HTTP_TIMEOUT = urllib3.Timeout(connect=5.0, read=30.0)


class InClusterError(RuntimeError):
    """Argo CD could not be installed or reached in the lab cluster; the message says what failed."""


def service_names(namespace: str) -> list[str]:
    return [
        SERVICE,
        f"{SERVICE}.{namespace}",
        f"{SERVICE}.{namespace}.svc",
        f"{SERVICE}.{namespace}.svc.cluster.local",
    ]


def server_tls_objects(namespace: str) -> list[dict]:
    """``argocd-server-tls`` (kubernetes.io/tls) signed by the platform CA; the same bytes on every call
    while the certificate is usable, so a second apply changes nothing."""
    ca = pki.ensure_ca(gitserver.pki_dir())
    cert = pki.ensure_server_cert(ca, STATE / namespace / "server", service_names(namespace), [])
    data = {
        "tls.crt": base64.b64encode(cert.crt.read_bytes()).decode(),
        "tls.key": base64.b64encode(cert.key.read_bytes()).decode(),
    }
    meta = {"name": TLS_SECRET, "namespace": namespace, "labels": {"app.kubernetes.io/part-of": "argocd"}}
    return [
        {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls", "metadata": meta, "data": data}
    ]


def gitops_repo_url() -> str:
    """gitops-repo where the cluster's pods reach it: the lab's git server at the lab's gateway."""
    git = _git_server()
    return git.repo_url("gitops-repo", manager.NET.gateway)


def _git_server() -> gitserver.GitServer:
    git = gitserver.running()
    if git is None:
        raise InClusterError("the lab's git server is not running (layer 1 starts it)")
    return git


def repository_objects(namespace: str) -> list[dict]:
    """gitops-repo's repository Secret and the platform CA for the gateway (argocd_bootstrap's objects)."""
    git = _git_server()
    return [
        argocd_bootstrap.repository_secret(namespace, gitops_repo_url(), git.username, git.token()),
        argocd_bootstrap.tls_certs(namespace, manager.NET.gateway, Path(git.ca_file).read_text()),
    ]


def ensure(namespace: str = NAMESPACE, timeout: int = 300) -> list[str]:
    """Argo CD from install.yaml in ``namespace`` with gitops-repo's credentials, every workload rolled out;
    the objects created or changed (none on a second run)."""
    lab = kubectl.lab()
    try:
        upstream_images.push_install_images(catalog.running())
        hosts.ensure_forward(manager.NET, int(_git_server().url.rsplit(":", 1)[1]))
        site = [*server_tls_objects(namespace), *repository_objects(namespace)]
        changed = argocd_bootstrap.install(lab, namespace, site)
        argocd_bootstrap.wait_ready(lab, namespace, timeout)
    except (kubectl.KubectlError, upstream_images.UpstreamImageError) as exc:
        raise InClusterError(f"Argo CD in the lab cluster ({namespace}): {exc}") from None
    return changed


def remove(namespace: str = NAMESPACE) -> None:
    """The namespace and the cluster-wide RBAC install.yaml made for it (its CRDs stay: the lab's Argo CD
    uses the same ones)."""
    lab = kubectl.lab()
    lab.run("delete", "namespace", namespace, "--ignore-not-found", "--wait=true", timeout=180)
    rbac = [
        f"{obj['kind'].lower()}/{obj['metadata']['name']}"
        for obj in argocd_bootstrap.install_objects(namespace)
        if obj["kind"] in ("ClusterRole", "ClusterRoleBinding")
    ]
    lab.run("delete", "--ignore-not-found", *rbac)


@dataclass(frozen=True)
class Server:
    """argocd-server at its Service address, its certificate verified against the platform CA for the
    Service's DNS name (the host reaches Service addresses through the lab's route to the Service range)."""

    address: str
    hostname: str
    ca_file: str

    def request(self, method: str, path: str, token: str | None = None, body: dict | None = None) -> dict:
        pool = urllib3.HTTPSConnectionPool(
            self.address,
            443,
            ca_certs=self.ca_file,
            cert_reqs="CERT_REQUIRED",
            server_hostname=self.hostname,
            assert_hostname=self.hostname,
            timeout=HTTP_TIMEOUT,
            retries=False,
        )
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            resp = pool.request(method, path, body=json.dumps(body) if body else None, headers=headers)
        except urllib3.exceptions.HTTPError as exc:
            raise InClusterError(f"argocd-server at {self.address} ({self.hostname}): {exc}") from None
        if resp.status != 200:
            raise InClusterError(f"argocd-server {method} {path}: HTTP {resp.status} {resp.data[:200]!r}")
        return json.loads(resp.data or b"{}")

    def repositories(self, token: str) -> dict[str, str]:
        """{repository URL: connection status} as Argo CD's repo-server finds it (a fresh check)."""
        found = self.request("GET", "/api/v1/repositories?forceRefresh=true", token=token).get("items") or []
        return {repo["repo"]: repo.get("connectionState", {}).get("status", "") for repo in found}

    def login(self, username: str, password: str) -> str:
        """A session token (Argo CD's own login API)."""
        return self.request("POST", "/api/v1/session", body={"username": username, "password": password})[
            "token"
        ]


def server(namespace: str = NAMESPACE) -> Server:
    service = json.loads(kubectl.run("-n", namespace, "get", "service", SERVICE, "-o", "json"))
    ca = pki.ensure_ca(gitserver.pki_dir())
    return Server(service["spec"]["clusterIP"], f"{SERVICE}.{namespace}.svc", str(ca.crt))


def initial_admin_password(namespace: str = NAMESPACE) -> str:
    """The password argocd-server generated at its first start (never printed)."""
    out = kubectl.run(
        "-n", namespace, "get", "secret", INITIAL_ADMIN_SECRET, "-o", "jsonpath={.data.password}"
    )
    return base64.b64decode(out).decode()
