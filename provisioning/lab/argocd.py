"""Real Argo CD in the lab: redis, argocd-repo-server, argocd-application-controller and argocd-server as
local processes on 127.0.0.1 against the lab's apiserver (ARGOCD_FAKE_IN_CLUSTER=true), with the CRDs from
Argo CD's own module, its ConfigMaps and Secret, and gitops-repo's credentials, the way on-prem does it
(HTTPS + token, the platform CA trusted, never the insecure flag).

The admin password is generated once and kept in a 0600 file; it is never printed or logged.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from boutique_suite import waits
from boutique_suite.argocd import ArgoCDClient, ArgoCDUnavailable
from provisioning.lab import build, gitserver, kubectl, manager, processes

NS: str = manager.SETTINGS["argocd"]["namespace"]
PORTS: dict[str, int] = manager.SETTINGS["platform_ports"]
HOME = processes.PLATFORM / "argocd"
PASSWORD_FILE = HOME / "admin.password"
PART_OF = {"app.kubernetes.io/part-of": "argocd"}
GITOPS = Path(__file__).resolve().parents[1] / "gitops"
COMPONENTS = ("redis", "argocd-repo-server", "argocd-application-controller", "argocd-server")


class ArgoCDError(Exception):
    """Argo CD could not be started in the lab; the message names the component and its log."""


@dataclass(frozen=True)
class ArgoCD:
    url: str
    username: str
    password_file: Path
    git: gitserver.GitServer

    def password(self) -> str:
        return self.password_file.read_text().strip()

    def __repr__(self) -> str:  # never show the password
        return f"ArgoCD(url={self.url!r}, username={self.username!r})"


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
    argocd = build.bin_dir("argocd") / "argocd"
    proc = subprocess.run(
        [str(argocd), "account", "bcrypt", "--password", password], capture_output=True, text=True, timeout=30
    )
    if proc.returncode != 0:
        raise ArgoCDError("argocd account bcrypt failed")
    return proc.stdout.strip()


def _kept_secret(name: str) -> str:
    """A random secret made once and kept in a 0600 file of Argo CD's lab home."""
    key_file = HOME / name
    if not key_file.exists():
        HOME.mkdir(parents=True, exist_ok=True)
        key_file.touch(mode=0o600)
        key_file.write_text(secrets.token_urlsafe(32))
    return key_file.read_text().strip()


def webhook_url() -> str:
    return f"http://127.0.0.1:{PORTS['argocd_server']}/api/webhook"


def _meta(name: str, labels: dict[str, str] | None = None) -> dict:
    return {"name": name, "namespace": NS, "labels": {**PART_OF, **(labels or {})}}


def _configure(git: gitserver.GitServer) -> None:
    """CRDs, namespace, argocd-cm / -rbac-cm / -secret / -tls-certs-cm, gitops-repo's credentials."""
    kubectl.apply("-k", str(build.bin_dir("argocd").parent / "crds"))
    secret_data = {
        "server.secretkey": _kept_secret("server.secretkey"),
        # gitops-repo's push webhook (the git server's GitLab-style hook) proves itself with this token
        "webhook.gitlab.secret": _kept_secret("webhook.gitlab.secret"),
        "admin.password": _admin_password_hash(),
        "admin.passwordMtime": "2026-01-01T00:00:00Z",
    }
    ca = Path(git.ca_file).read_text()
    kubectl.apply_objects(
        [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": _meta("argocd-cm"),
                "data": {
                    "url": f"http://127.0.0.1:{PORTS['argocd_server']}",
                    "admin.enabled": "true",
                    "timeout.reconciliation": f"{manager.SETTINGS['argocd']['app_resync_seconds']}s",
                    "application.instanceLabelKey": "argocd.argoproj.io/instance",
                },
            },
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": _meta("argocd-rbac-cm"),
                "data": {"policy.default": "role:readonly"},
            },
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": _meta("argocd-tls-certs-cm"),
                "data": {"127.0.0.1": ca},
            },
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": _meta("argocd-ssh-known-hosts-cm"),
                "data": {"ssh_known_hosts": ""},
            },
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta("argocd-gpg-keys-cm"), "data": {}},
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta("argocd-cmd-params-cm"), "data": {}},
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": _meta("argocd-secret"),
                "type": "Opaque",
                "stringData": secret_data,
            },
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "Opaque",
                "metadata": _meta("repo-gitops-repo", {"argocd.argoproj.io/secret-type": "repository"}),
                "stringData": {
                    "type": "git",
                    "name": "gitops-repo",
                    "url": git.repo_url("gitops-repo"),
                    "username": git.username,
                    "password": git.token(),
                },
            },
        ]
    )
    # The repo-server runs outside a pod: it reads the CA from files named after the host, which is
    # what the argocd-tls-certs-cm mount provides in a cluster.
    tls_dir = HOME / "tls"
    tls_dir.mkdir(parents=True, exist_ok=True)
    (tls_dir / "127.0.0.1").write_text(ca)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "ARGOCD_", "KUBECONFIG"))}
    path = [str(build.bin_dir("argocd")), str(build.bin_dir("kustomize")), str(build.bin_dir("kubernetes"))]
    for d in ("ssh", "gpg", "app"):
        (HOME / d).mkdir(parents=True, exist_ok=True)
    env.update(
        {
            "PATH": os.pathsep.join([*path, env.get("PATH", "/usr/bin:/bin")]),
            "KUBECONFIG": str(manager.KUBECONFIG),
            "ARGOCD_FAKE_IN_CLUSTER": "true",
            "ARGOCD_TLS_DATA_PATH": str(HOME / "tls"),
            "ARGOCD_SSH_DATA_PATH": str(HOME / "ssh"),
            "ARGOCD_GNUPGHOME": str(HOME / "gpg"),
            "ARGOCD_GPG_ENABLED": "false",
            "ARGOCD_ASK_PASS_SOCK": str(HOME / "askpass.sock"),
            "HOME": str(HOME),
        }
    )
    return env


def _argv(component: str) -> list[str]:
    link, binary = HOME / "bin" / component, build.bin_dir("argocd") / "argocd"
    if not link.is_symlink() or link.readlink() != binary:  # a new build (version, patch) replaces the link
        link.parent.mkdir(parents=True, exist_ok=True)
        link.unlink(missing_ok=True)
        link.symlink_to(binary)
    redis = f"127.0.0.1:{PORTS['redis']}"
    common = ["--loglevel", "info", "--redis", redis]
    cfg = manager.SETTINGS["argocd"]
    if component == "argocd-repo-server":
        return [
            str(link),
            *common,
            "--address",
            "127.0.0.1",
            "--port",
            str(PORTS["argocd_repo_server"]),
            "--metrics-address",
            "127.0.0.1",
            "--metrics-port",
            str(PORTS["argocd_repo_server_metrics"]),
            "--disable-tls",
        ]
    repo = ["--repo-server", f"127.0.0.1:{PORTS['argocd_repo_server']}", "--repo-server-plaintext"]
    if component == "argocd-application-controller":
        return [
            str(link),
            *common,
            *repo,
            "--namespace",
            NS,
            "--metrics-port",
            str(PORTS["argocd_controller_metrics"]),
            "--app-resync",
            str(cfg["app_resync_seconds"]),
            "--self-heal-backoff-timeout-seconds",
            str(cfg["self_heal_backoff_timeout_seconds"]),
            "--self-heal-backoff-factor",
            str(cfg["self_heal_backoff_factor"]),
            "--self-heal-backoff-cap-seconds",
            str(cfg["self_heal_backoff_cap_seconds"]),
        ]
    return [
        str(link),
        *common,
        *repo,
        "--namespace",
        NS,
        "--insecure",
        "--address",
        "127.0.0.1",
        "--port",
        str(PORTS["argocd_server"]),
        "--metrics-port",
        str(PORTS["argocd_server_metrics"]),
        "--staticassets",
        str(HOME / "app"),
    ]


def _start_all() -> None:
    redis = shutil.which("redis-server")
    if redis is None:
        raise ArgoCDError("redis-server is missing: apt-get install redis-server (./run setup does it)")
    env = _env()
    # Started before the cluster last became ready (a recreated lab): start again on the new cluster.
    cluster_since = (manager._read_stamp() or {}).get("ready_at", 0.0)
    processes.start(
        "redis",
        [
            redis,
            "--bind",
            "127.0.0.1",
            "--port",
            str(PORTS["redis"]),
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "yes",
        ],
        env,
        PORTS["redis"],
    )
    for component in LISTENS_ON:
        _start(component, env, cluster_since)


# The port each Argo CD process listens on once started (the controller: its metrics).
LISTENS_ON = {
    "argocd-repo-server": "argocd_repo_server",
    "argocd-application-controller": "argocd_controller_metrics",
    "argocd-server": "argocd_server",
}


def _start(component: str, env: dict[str, str], not_before: float) -> processes.Proc:
    port = PORTS[LISTENS_ON[component]]
    return processes.start(component, _argv(component), env, port, wait=90, not_before=not_before)


def login(argocd: ArgoCD, timeout: float = 30) -> str:
    """A session token for the admin user: the suite's own login (ArgoCDClient.login), tried again until
    Argo CD accepts it (a server that just started may not have read its admin Secret yet)."""

    def logged_in() -> waits.Check:
        try:
            client = ArgoCDClient.login(argocd.url, argocd.username, argocd.password())
        except ArgoCDUnavailable as exc:
            return waits.pending(str(exc))
        return waits.succeeded(value=client.token)

    what = f"Argo CD login as {argocd.username}"
    return waits.until(logged_in, timeout=timeout, what=what, error=ArgoCDError).check.value  # type: ignore[return-value]


def status() -> dict[str, processes.Proc]:
    return {name: processes.info(name) for name in COMPONENTS}


def ensure() -> ArgoCD:
    """Idempotent: a running, configured Argo CD is left alone."""
    build.ensure_all(["argocd", "kustomize"])
    manager.up()
    git = gitserver.ensure(port=PORTS["git"])
    for repo in gitserver.REPOS:
        gitserver.create_repo(git, repo)
    _configure(git)
    # As GitLab's project hook on-prem: a push to gitops-repo tells Argo CD at once, not at its next poll.
    gitserver.add_webhook(git, "gitops-repo", webhook_url(), _kept_secret("webhook.gitlab.secret"))
    try:
        _start_all()
    except processes.ProcessError as exc:
        raise ArgoCDError(str(exc)) from None
    argocd = ArgoCD(f"http://127.0.0.1:{PORTS['argocd_server']}", "admin", PASSWORD_FILE, git)
    login(argocd, timeout=60)
    return argocd


def stop() -> list[str]:
    stopped = [name for name in reversed(COMPONENTS) if processes.stop(name)]
    gitserver.stop(gitserver.STATE)
    return stopped


def expose() -> None:
    """Argo CD's Service and Ingress as objects in the lab. The server is a local process, and an
    EndpointSlice may not point at loopback, so the Service is an ExternalName for localhost; the
    Ingress is gitops-repo's own (platform/config/argocd)."""
    port = PORTS["argocd_server"]
    service = {
        "type": "ExternalName",
        "externalName": "localhost",
        "ports": [{"name": "https", "port": 443, "targetPort": port, "protocol": "TCP"}],
    }
    kubectl.apply_objects(
        [{"apiVersion": "v1", "kind": "Service", "metadata": _meta("argocd-server"), "spec": service}]
    )
    kubectl.apply("-k", str(GITOPS / "platform" / "config" / "argocd"))


# --- one component at a time (faults the scenarios inject and revert) ---------------------------------


def stop_component(component: str) -> bool:
    """Stop one Argo CD process (TERM, then KILL); True when it was running. start_component undoes it."""
    if component not in LISTENS_ON:
        raise ArgoCDError(f"unknown Argo CD component {component!r}; known: {sorted(LISTENS_ON)}")
    return processes.stop(component)


def start_component(component: str) -> processes.Proc:
    """Start one Argo CD process again with the arguments ensure() gives it; a running one is left alone."""
    if component not in LISTENS_ON:
        raise ArgoCDError(f"unknown Argo CD component {component!r}; known: {sorted(LISTENS_ON)}")
    cluster_since = (manager._read_stamp() or {}).get("ready_at", 0.0)
    try:
        return _start(component, _env(), cluster_since)
    except processes.ProcessError as exc:
        raise ArgoCDError(str(exc)) from None
