"""Real Sealed Secrets in the lab: the SealedSecret CRD from the controller's own module, the controller
built from the Go module proxy running as a local process on 127.0.0.1 against the lab's apiserver, and
``kubeseal`` sealing with the controller's certificate.

The controller only knows in-cluster configuration (``rest.InClusterConfig``: KUBERNETES_SERVICE_HOST/PORT
and a token + CA under /var/run/secrets/kubernetes.io/serviceaccount). So it runs the way a pod does: as
its own ServiceAccount ``sealed-secrets-controller`` with the upstream chart's ClusterRole, a bound token
from the TokenRequest API and the lab's CA, which a private mount namespace (``unshare --mount``, with a
user namespace when not root) shows at that path; the host's /run is never touched. The token lives in a
0700 directory, is refreshed in place before it expires (client-go re-reads the file) and removed on stop.

processes.py identifies a process by its argv[0]: the controller is started through a link named
``sealed-secrets-controller`` (pointing to unshare) and ``exec -a`` keeps that name as the controller's
argv[0] once the mounts are in place.

The sealing key lives in the lab (Secret in namespace ``sealed-secrets``): a recreated lab has a new key.
Plaintext handed to ``seal`` goes to kubeseal on stdin only; it is never written to disk or logged.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import requests
import yaml

from boutique_suite.run import waits
from provisioning.lab import build, kubectl, layout, locks, manager, processes, recipes

NS = "sealed-secrets"
NAME = "sealed-secrets-controller"  # process, ServiceAccount, ClusterRole(Binding)
COMPONENT = "sealed-secrets"  # section of versions.toml
PORT: int = manager.SETTINGS.get("platform_ports", {}).get("sealed_secrets", 28090)
METRICS_PORT: int = manager.SETTINGS.get("platform_ports", {}).get("sealed_secrets_metrics", 28091)
HOST = "127.0.0.1"
HOME = processes.PLATFORM / "sealed-secrets"
SA_DIR = HOME / "serviceaccount"  # shown to the controller as /var/run/secrets/kubernetes.io/serviceaccount
LINK = HOME / "bin" / NAME
KEY_LABEL = "sealedsecrets.bitnami.com/sealed-secrets-key"
CRD = "sealedsecrets.bitnami.com"
TOKEN_SECONDS = 30 * 24 * 3600
LABELS = {"app.kubernetes.io/name": "sealed-secrets", "app.kubernetes.io/part-of": "boutique-lab"}

# Runs inside the private mount namespace; $0 is LINK, "$@" the controller and its flags.
_IN_NAMESPACE = """set -e
mount -t tmpfs -o size=1m,mode=0755 lab-run "$LAB_RUN_DIR"
mkdir -p "$LAB_RUN_DIR/secrets/kubernetes.io/serviceaccount"
mount --bind "$LAB_SA_DIR" "$LAB_RUN_DIR/secrets/kubernetes.io/serviceaccount"
unset LAB_RUN_DIR LAB_SA_DIR
exec -a "$0" "$@"
"""


class SealedSecretsError(Exception):
    """Sealed Secrets could not be started or used in the lab; the message says what and where."""


@dataclass(frozen=True)
class Controller:
    url: str
    metrics_url: str
    pid: int
    namespace: str
    version: str
    log: Path


# --- kubectl -----------------------------------------------------------------------------------


def _rbac() -> list[dict]:
    """The upstream chart's ServiceAccount, ClusterRole and binding (cluster-wide, status updates)."""
    rules = [
        {"apiGroups": ["bitnami.com"], "resources": ["sealedsecrets"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["bitnami.com"], "resources": ["sealedsecrets/status"], "verbs": ["update"]},
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "verbs": ["get", "list", "create", "update", "delete", "watch"],
        },
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
    ]
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS, "labels": LABELS}},
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": NAME, "namespace": NS, "labels": LABELS},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": NAME, "labels": LABELS},
            "rules": rules,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": NAME, "labels": LABELS},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": NAME},
            "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": NS}],
        },
    ]


def _configure() -> None:
    """The CRD (from the module, cached with the binaries), the namespace and the controller's identity."""
    kubectl.apply("-f", str(build.bin_dir(COMPONENT).parent / "crds"))
    kubectl.apply_objects(_rbac())
    kubectl.run("wait", "--for=condition=Established", f"crd/{CRD}", "--timeout=30s")


def _key_exists() -> bool:
    out = kubectl.run("get", "secret", "-n", NS, "-l", f"{KEY_LABEL}=active", "-o", "name")
    return bool(out.strip())


# --- the controller's in-cluster identity --------------------------------------------------------


def _lab_cluster() -> tuple[str, int, Path]:
    """(host, port, CA file) of the lab's apiserver, from its kubeconfig."""
    config = yaml.safe_load(layout.KUBECONFIG.read_text())
    cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == layout.CONTEXT)
    server = urlsplit(cluster["server"])
    if server.hostname is None or server.port is None:
        raise SealedSecretsError(f"unexpected apiserver URL {cluster['server']!r} in {layout.KUBECONFIG}")
    return server.hostname, server.port, Path(cluster["certificate-authority"])


def _lab_fingerprint() -> str:
    """Changes when the lab is recreated (new CA, new token signing key): the token must be new too."""
    return hashlib.sha256(_lab_cluster()[2].read_bytes()).hexdigest()


def _write_private(path: Path, text: str) -> None:
    """Atomically replace ``path`` with a 0600 file (a bind-mounted directory sees the new file)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _write_token() -> None:
    token = kubectl.run("create", "token", NAME, "-n", NS, f"--duration={TOKEN_SECONDS}s").strip()
    _write_private(SA_DIR / "token", token)


def _token_fresh() -> bool:
    try:
        age = time.time() - (SA_DIR / "token").stat().st_mtime
    except OSError:
        return False
    return age < TOKEN_SECONDS / 2


def _write_identity() -> None:
    SA_DIR.mkdir(parents=True, exist_ok=True)
    SA_DIR.chmod(0o700)
    _write_token()
    _write_private(SA_DIR / "ca.crt", _lab_cluster()[2].read_text())
    _write_private(SA_DIR / "namespace", NS)
    (HOME / "lab.sha256").write_text(_lab_fingerprint())


# --- the process ---------------------------------------------------------------------------------


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise SealedSecretsError(f"`{name}` is missing (util-linux / bash): the controller needs it to start")
    return path


def _argv_env() -> tuple[list[str], dict[str, str]]:
    controller = build.bin_dir(COMPONENT) / "sealed-secrets-controller"
    unshare = _tool("unshare")
    LINK.parent.mkdir(parents=True, exist_ok=True)
    if not LINK.is_symlink() or os.readlink(LINK) != unshare:
        LINK.unlink(missing_ok=True)
        LINK.symlink_to(unshare)
    userns = [] if os.geteuid() == 0 else ["--user", "--map-root-user"]
    argv = [
        str(LINK),
        *userns,
        "--mount",
        "--propagation",
        "private",
        "--",
        _tool("bash"),
        "-c",
        _IN_NAMESPACE,
        str(LINK),
        str(controller),
        "--listen-addr",
        f"{HOST}:{PORT}",
        "--listen-metrics-addr",
        f"{HOST}:{METRICS_PORT}",
        "--update-status=true",
        "--key-prefix",
        "sealed-secrets-key",
    ]
    host, port, _ = _lab_cluster()
    env = {
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        "HOME": str(HOME),
        "KUBERNETES_SERVICE_HOST": host,
        "KUBERNETES_SERVICE_PORT": str(port),
        "POD_NAMESPACE": NS,  # where the sealing key lives
        "LAB_RUN_DIR": os.path.realpath("/var/run"),
        "LAB_SA_DIR": str(SA_DIR),
    }
    return argv, env


def _get(path: str, timeout: float = 5) -> requests.Response:
    return requests.get(f"http://{HOST}:{PORT}{path}", timeout=timeout)


def _wait_ready(timeout: float = 60) -> None:
    log = processes.log_path(NAME)

    def ready() -> waits.Check:
        if not processes.info(NAME).alive:
            return waits.failed(f"{NAME} exited (log {log})")
        try:
            answers = {p: _get(p).status_code for p in ("/healthz", "/readyz")}
        except requests.RequestException as exc:
            return waits.pending(f"HTTP: {exc} (log {log})")
        if not all(code == 200 for code in answers.values()):
            return waits.pending(f"answers {answers} (log {log})")
        if not _key_exists():
            return waits.pending(f"no active sealing key Secret in namespace {NS} (log {log})")
        return waits.succeeded()

    waits.until(ready, timeout=timeout, what=f"{NAME} ready", interval=0.5, error=SealedSecretsError)


def _exclusive() -> contextlib.AbstractContextManager[None]:
    return locks.exclusive(HOME / ".lock")


def ensure() -> Controller:
    """Idempotent: the CRD, namespace and RBAC applied, the controller running and its key present.
    A healthy controller of the same lab is left alone (same PID)."""
    try:
        build.ensure_all([COMPONENT, "kubernetes"])
        manager.up()
    except (recipes.BuildError, manager.LabError) as exc:
        raise SealedSecretsError(str(exc)) from None
    with _exclusive():
        _configure()
        current = processes.info(NAME)
        if current.alive:
            stored = HOME / "lab.sha256"
            same_lab = stored.exists() and stored.read_text().strip() == _lab_fingerprint()
            if not same_lab or not _key_exists():
                processes.stop(NAME)  # the lab was recreated under it: new identity, new key
            elif not _token_fresh():
                _write_token()
        if not processes.info(NAME).alive:
            _write_identity()
        argv, env = _argv_env()
        try:
            proc = processes.start(NAME, argv, env, PORT, wait=90)
        except processes.ProcessError as exc:
            raise SealedSecretsError(str(exc)) from None
        _wait_ready()
    version = recipes.load_versions()[COMPONENT]["version"]
    return Controller(
        url=f"http://{HOST}:{PORT}",
        metrics_url=f"http://{HOST}:{METRICS_PORT}/metrics",
        pid=proc.pid or 0,
        namespace=NS,
        version=version,
        log=proc.log,
    )


def stop() -> bool:
    """Stop the controller and remove its token. The CRD, namespace and sealing key stay in the lab, so
    SealedSecrets sealed earlier still open after the next ensure(). True when one was running."""
    with _exclusive():
        stopped = processes.stop(NAME)
        (SA_DIR / "token").unlink(missing_ok=True)
    return stopped


# --- sealing -------------------------------------------------------------------------------------


def cert_pem() -> bytes:
    """The controller's current sealing certificate (public), from its /v1/cert.pem."""
    try:
        resp = _get("/v1/cert.pem", timeout=10)
    except requests.RequestException as exc:
        raise SealedSecretsError(f"{NAME} at {HOST}:{PORT}: {exc} (run ensure() first)") from None
    if resp.status_code != 200 or not resp.content.startswith(b"-----BEGIN CERTIFICATE-----"):
        raise SealedSecretsError(f"{NAME} /v1/cert.pem answered {resp.status_code}")
    return resp.content


def seal(name: str, namespace: str, data: dict[str, str], type: str = "Opaque") -> dict:
    """A SealedSecret manifest (strict scope: opens only as ``name`` in ``namespace``) made by the real
    ``kubeseal --cert`` from a Secret fed on stdin. The plaintext never touches the disk or a log."""
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": type,
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }
    kubeseal = build.bin_dir(COMPONENT) / "kubeseal"
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(HOME), "KUBECONFIG": str(layout.KUBECONFIG)}
    with tempfile.NamedTemporaryFile(prefix="sealed-secrets-cert-", suffix=".pem") as cert:  # public
        cert.write(cert_pem())
        cert.flush()
        proc = subprocess.run(
            [str(kubeseal), "--cert", cert.name, "--format", "yaml"],
            input=json.dumps(secret),
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
    if proc.returncode != 0:
        raise SealedSecretsError(f"kubeseal failed (exit {proc.returncode}): {_redact(proc.stderr, secret)}")
    sealed = yaml.safe_load(proc.stdout)
    if not isinstance(sealed, dict) or sealed.get("kind") != "SealedSecret":
        raise SealedSecretsError("kubeseal did not print a SealedSecret")
    return sealed


def _redact(text: str, secret: dict) -> str:
    """kubeseal's error message without any of the secret's values (plain or base64)."""
    for encoded in secret["data"].values():
        for value in (encoded, base64.b64decode(encoded).decode(errors="replace")):
            if value:
                text = text.replace(value, "***")
    return text.strip()[:400]
