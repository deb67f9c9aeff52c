"""Real Argo CD in the lab, installed the on-prem way: ``provisioning/argocd_bootstrap.install`` applies Argo
CD's pinned ``install.yaml`` unchanged into the lab cluster, its images pulled by the nodes under their
upstream names through the lab's registry mirror (``provisioning/lab/services/upstream_images.py``).

What the lab adds is what a site adds to install.yaml: its settings (``argocd-cm``, ``argocd-cmd-params-cm``
with the lab's shorter self-heal backoff, ``argocd-rbac-cm``), ``argocd-secret`` (the admin password's bcrypt
hash, the server key, the push webhook's token), argocd-server's certificate signed by the platform CA
(``argocd-server-tls``), and gitops-repo's repository Secret and CA (argocd_bootstrap's own builders), the
lab's git server reached by the pods at the lab's gateway. The suite reaches argocd-server at a fixed address
of the Service range (the lab routes that range to the nodes), over TLS verified against the platform CA.

The admin password is generated once and kept in a 0600 file; it is never printed or logged.
"""

from __future__ import annotations

import base64
import ipaddress
import secrets
from dataclasses import dataclass
from pathlib import Path

from boutique_suite.clients.argocd import ArgoCDClient, ArgoCDUnavailable
from boutique_suite.run import waits
from provisioning import argocd_bootstrap
from provisioning.lab import build, kubectl, manager, pki, processes
from provisioning.lab.machines import hosts
from provisioning.lab.services import catalog, gitrepos, gitserver, upstream_images

NS: str = manager.SETTINGS["argocd"]["namespace"]
PORTS: dict[str, int] = manager.SETTINGS["platform_ports"]
HOME = processes.PLATFORM / "argocd"
PASSWORD_FILE = HOME / "admin.password"
PART_OF = {"app.kubernetes.io/part-of": "argocd"}
GITOPS = Path(__file__).resolve().parents[2] / "gitops"
SERVER = "argocd-server"
LAB_SERVICE = "argocd-server-lab"  # argocd-server at a fixed address (install.yaml's has a dynamic one)
INGRESS_HOST = "argocd.local"  # gitops-repo's Ingress for Argo CD (platform/config/argocd)


class ArgoCDError(Exception):
    """Argo CD could not be made ready in the lab; the message names what failed."""


@dataclass(frozen=True)
class ArgoCD:
    url: str
    username: str
    password_file: Path
    git: gitserver.GitServer
    ca_file: Path | None = None

    def password(self) -> str:
        return self.password_file.read_text().strip()

    def __repr__(self) -> str:  # never show the password
        return f"ArgoCD(url={self.url!r}, username={self.username!r})"


def server_address() -> str:
    """argocd-server's fixed address for the suite: the 20th of the Service range (CoreDNS has the 10th)."""
    return str(ipaddress.ip_network(manager.SETTINGS["hosts"]["service_cidr"])[20])


def url() -> str:
    return f"https://{server_address()}"


def webhook_url() -> str:
    return f"{url()}/api/webhook"


def ca_file() -> Path:
    return pki.ensure_ca(gitserver.pki_dir()).crt


def repo_url_for_argocd(git: gitserver.GitServer, repo: str) -> str:
    """A repository where the cluster's pods (Argo CD's repo-server) reach it: at the lab's gateway."""
    return git.repo_url(repo, manager.NET.gateway)


def gitops_repo_url(git: gitserver.GitServer) -> str:
    return repo_url_for_argocd(git, "gitops-repo")


# --- secrets kept by the lab ----------------------------------------------------------------------------


def _admin_password_hash() -> str:
    """Generate the admin password once (0600 file) and keep its bcrypt hash beside it."""
    hash_file = HOME / "admin.password.bcrypt"
    if not (PASSWORD_FILE.exists() and hash_file.exists()):
        HOME.mkdir(parents=True, exist_ok=True)
        PASSWORD_FILE.unlink(missing_ok=True)
        PASSWORD_FILE.touch(mode=0o600)
        PASSWORD_FILE.write_text(secrets.token_urlsafe(18))
        hash_file.write_text(_bcrypt(PASSWORD_FILE.read_text().strip()))
    return hash_file.read_text().strip()


def _bcrypt(password: str) -> str:
    """The hash argocd-secret's admin.password holds: bcrypt at Argo CD's own cost (``argocd account bcrypt``
    gives the same, but would put the password on a command line)."""
    return pki.bcrypt_hash(password)


def _kept_secret(name: str) -> str:
    """A random secret made once and kept in a 0600 file of Argo CD's lab home."""
    key_file = HOME / name
    if not key_file.exists():
        HOME.mkdir(parents=True, exist_ok=True)
        key_file.touch(mode=0o600)
        key_file.write_text(secrets.token_urlsafe(32))
    return key_file.read_text().strip()


# --- what the lab adds to install.yaml ------------------------------------------------------------------


def _meta(name: str, labels: dict[str, str] | None = None) -> dict:
    return {"name": name, "namespace": NS, "labels": {**PART_OF, **(labels or {})}}


def _b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def settings_objects() -> list[dict]:
    """argocd-cm, argocd-cmd-params-cm and argocd-rbac-cm: the lab's settings, on-prem's keys."""
    cfg = manager.SETTINGS["argocd"]
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta("argocd-cm"),
            "data": {
                "url": url(),
                "admin.enabled": "true",
                "timeout.reconciliation": f"{cfg['app_resync_seconds']}s",
                "application.instanceLabelKey": "argocd.argoproj.io/instance",
            },
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta("argocd-cmd-params-cm"),
            "data": {
                "controller.self.heal.backoff.timeout.seconds": str(cfg["self_heal_backoff_timeout_seconds"]),
                "controller.self.heal.backoff.factor": str(cfg["self_heal_backoff_factor"]),
                "controller.self.heal.backoff.cap.seconds": str(cfg["self_heal_backoff_cap_seconds"]),
            },
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta("argocd-rbac-cm"),
            "data": {"policy.default": "role:readonly"},
        },
    ]


def secret_objects() -> list[dict]:
    """argocd-secret's keys the lab sets (data, not stringData: equal input, no write) and argocd-server's
    certificate signed by the platform CA for its Service's names, the Ingress host and the fixed address."""
    data = {
        "server.secretkey": _kept_secret("server.secretkey"),
        # gitops-repo's push webhook (the git server's GitLab-style hook) proves itself with this token
        "webhook.gitlab.secret": _kept_secret("webhook.gitlab.secret"),
        "admin.password": _admin_password_hash(),
        "admin.passwordMtime": "2026-01-01T00:00:00Z",
    }
    names = [SERVER, f"{SERVER}.{NS}", f"{SERVER}.{NS}.svc", f"{SERVER}.{NS}.svc.cluster.local", INGRESS_HOST]
    ca = pki.ensure_ca(gitserver.pki_dir())
    cert = pki.ensure_server_cert(ca, HOME / "server", names, [server_address()], common_name=SERVER)
    tls = {"tls.crt": _b64(cert.crt.read_bytes()), "tls.key": _b64(cert.key.read_bytes())}
    return [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": _meta("argocd-secret"),
            "data": {k: _b64(v) for k, v in data.items()},
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/tls",
            "metadata": _meta("argocd-server-tls"),
            "data": tls,
        },
    ]


def repository_objects(git: gitserver.GitServer) -> list[dict]:
    """gitops-repo's repository Secret and the platform CA for the gateway (argocd_bootstrap's objects)."""
    return [
        argocd_bootstrap.repository_secret(NS, gitops_repo_url(git), git.username, git.token()),
        argocd_bootstrap.tls_certs(NS, manager.NET.gateway, Path(git.ca_file).read_text()),
    ]


def lab_service() -> dict:
    """argocd-server's pods at the fixed address (HTTPS 443 to its 8080, as install.yaml's Service)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(LAB_SERVICE),
        "spec": {
            "clusterIP": server_address(),
            "selector": {"app.kubernetes.io/name": SERVER},
            "ports": [{"name": "https", "port": 443, "targetPort": 8080, "protocol": "TCP"}],
        },
    }


# --- lifecycle -----------------------------------------------------------------------------------------


def git_server() -> gitserver.GitServer:
    """The lab's git server with its repositories, forwarded at the lab's gateway for the cluster's pods (and
    for this machine, so the URL Argo CD reads gitops-repo at works for the suite's checks too)."""
    git = gitserver.ensure(port=PORTS["git"])
    for repo in gitserver.REPOS:
        gitserver.create_repo(git, repo)
    hosts.ensure_forward(manager.NET, PORTS["git"], local=True)
    return git


def login(argocd: ArgoCD, timeout: float = 30) -> str:
    """A session token for the admin user: the suite's own login (ArgoCDClient.login), tried again until
    Argo CD accepts it (a server that just started may not have read its admin Secret yet)."""

    def logged_in() -> waits.Check:
        try:
            client = ArgoCDClient.login(argocd.url, argocd.username, argocd.password(), argocd.ca_file)
        except ArgoCDUnavailable as exc:
            return waits.pending(str(exc))
        return waits.succeeded(value=client.token)

    what = f"Argo CD login as {argocd.username}"
    return waits.until(logged_in, timeout=timeout, what=what, error=ArgoCDError).check.value  # type: ignore[return-value]


def install(git: gitserver.GitServer) -> list[str]:
    """install.yaml's images in the lab's registry, then argocd_bootstrap.install with the lab's objects;
    the objects created or changed (none when nothing changed)."""
    lab = kubectl.lab()
    upstream_images.push_install_images(catalog.running(), with_dex())
    site = [*settings_objects(), *secret_objects(), *repository_objects(git)]
    changed = argocd_bootstrap.install(lab, NS, site, with_dex())
    return changed + argocd_bootstrap.apply(lab, [lab_service()], "lab-service")


def with_dex() -> bool:
    """The lab target's choice (false: dex cannot be built here, the lab has no SSO)."""
    from boutique_suite.run import targets

    access = targets.load("lab").argocd
    return access is None or access.dex


def ensure(timeout: int = 300) -> ArgoCD:
    """Idempotent: Argo CD installed from install.yaml with the lab's objects, every workload rolled out, the
    admin login accepted; a second run changes nothing."""
    build.ensure_all(["argocd", "kustomize"])
    manager.up()
    git = git_server()
    try:
        install(git)
        argocd_bootstrap.wait_ready(kubectl.lab(), NS, timeout, with_dex())
    except (kubectl.KubectlError, upstream_images.UpstreamImageError) as exc:
        raise ArgoCDError(f"Argo CD in the lab cluster: {exc}") from None
    # As GitLab's project hook on-prem: a push to gitops-repo tells Argo CD at once, not at its next poll.
    token = _kept_secret("webhook.gitlab.secret")
    base = gitops_repo_url(git).removesuffix("/gitops-repo.git")  # the URL Argo CD knows gitops-repo by
    gitrepos.add_webhook(git, "gitops-repo", webhook_url(), token, base_url=base, ca_file=ca_file())
    argocd = ArgoCD(url(), "admin", PASSWORD_FILE, git, ca_file())
    login(argocd, timeout=120)
    return argocd


def expose() -> None:
    """gitops-repo's Argo CD Ingress (platform/config/argocd), as on-prem."""
    kubectl.apply("-k", str(GITOPS / "platform" / "config" / "argocd"))
