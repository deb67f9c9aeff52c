"""The lab's two OCI registries, both CNCF Distribution (``registry``, built from the Go module proxy) over
TLS, the way an air-gapped on-prem site has them:

- **the mirror** (anonymous pulls, as a site's mirror of public registries): the upstream names the
  platform's manifests use (``MIRRORED_UPSTREAMS``: CoreDNS, the pause image, Argo CD, MetalLB, the
  Boutique's own release names), served at the root of the mirror;
- **registry.local** (GitLab's registry on-prem): ``registry.local/boutique/<svc>:<tag>`` and the suite's
  probe image, behind credentials (htpasswd, bcrypt; the password made per lab in a 0600 file and never
  logged). A pod pulls from it only with the ``registry-credentials`` pull secret, as on-prem.

- ``ensure(host, port)`` / ``ensure_local(host, port)`` start them (idempotent: a running one with the same
  config is returned as is) with storage under ``<state>/storage`` and a config file it writes; ``stop()``
  ends both.
- Their certificates are signed by the lab's platform CA (the git server's, ``provisioning/lab/pki.py``) for
  DNS ``registry.local`` and the IP it listens on, so containerd can reach it by IP (no DNS in the lab).
- ``request``: one HTTP request to one of them, always verifying TLS with the platform CA (with
  registry.local's credentials when it is that one); the OCI distribution client built on it (push, tag,
  list, delete, exists) is ``provisioning/lab/services/oci.py``.
- ``containerd_hosts_toml`` / ``write_certs_d``: containerd's ``certs.d/<host>/hosts.toml`` for
  registry.local (at its registry) and each mirrored upstream registry (at the mirror), resolving images at
  the registry's IP and port only (no fallback to DNS) and trusting the CA. No credentials in them: the
  nodes pull registry.local's images with the pod's pull secret only.

    python -m provisioning.lab.services.registry up [--host H] [--port P] | down
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import bcrypt
import requests

from provisioning.lab import build, locks, pki, processes, recipes
from provisioning.lab.services import gitserver

NAME = "registry.local"
# Upstream registries the lab's registry answers for, as an air-gapped site's mirror does: the nodes'
# containerd pulls ``registry.k8s.io/<repo>:<tag>`` from the lab's registry as ``<repo>:<tag>``.
MIRRORED_UPSTREAMS = (
    "registry.k8s.io",  # CoreDNS (kubeadm's addon), the pods' sandbox (pause)
    "quay.io",  # Argo CD, MetalLB
    "public.ecr.aws",  # redis (Argo CD's install.yaml)
    "us-central1-docker.pkg.dev",  # the Online Boutique's own images (the stand-in answers under them)
    "docker.io",  # the golang image app-repo's Dockerfiles build in (the lab's BuildKit)
    "gcr.io",  # distroless, their final stage
)
PROCESS = "registry"
STATE = processes.PLATFORM / "registry"
LOCAL_PROCESS = "registry-local"
LOCAL_STATE = processes.PLATFORM / "registry-local"
USERNAME = "boutique-pull"
HOST = "127.0.0.1"
PORT = 28500
LOCAL_PORT = 28501
START_TIMEOUT = 30.0
HTTP_TIMEOUT = 30.0


class RegistryError(Exception):
    """The registry cannot be started or answered unexpectedly; the message says what happened."""


@dataclass(frozen=True)
class Registry:
    host: str
    port: int
    ca_file: Path
    state: Path
    pid: int | None
    log: Path
    auth: tuple[str, str] | None = None  # registry.local's credentials; the mirror has none

    def __repr__(self) -> str:  # never the password
        return (
            f"Registry({self.url}, state={self.state}, pid={self.pid}, auth={'yes' if self.auth else 'no'})"
        )

    @property
    def url(self) -> str:
        """The mirror URL, by IP: what containerd's hosts.toml points at."""
        host = f"[{self.host}]" if ipaddress.ip_address(self.host).version == 6 else self.host
        return f"https://{host}:{self.port}"


# --- files under the state directory ---------------------------------------------------------------


def _config_file(state: Path) -> Path:
    return state / "config.yml"


def _storage(state: Path) -> Path:
    return state / "storage"


def _lock(state: Path) -> Path:
    return state / "registry.lock"


def credentials(state: Path = LOCAL_STATE) -> tuple[str, str]:
    """registry.local's (username, password): the password made once per lab in ``<state>/password``
    (0600, what the lab's target file names), never printed."""
    password = state / "password"
    with locks.exclusive(state / "credentials.lock"):
        if not password.exists():
            pki.write_private(password, secrets.token_hex(16).encode())
    return USERNAME, password.read_text().strip()


def htpasswd_line(username: str, password: str, rounds: int = 10) -> str:
    """One line of the htpasswd file Distribution reads (bcrypt only)."""
    return f"{username}:{pki.bcrypt_hash(password, rounds)}\n"


def _ensure_htpasswd(state: Path, username: str, password: str) -> Path:
    """The htpasswd file for ``username``; rewritten only when it no longer matches the password."""
    path = state / "htpasswd"
    if path.exists():
        user, _, hashed = path.read_text().strip().partition(":")
        if user == username and bcrypt.checkpw(password.encode(), hashed.encode()):
            return path
    pki.write_private(path, htpasswd_line(username, password).encode())
    return path


def config_yaml(
    host: str, port: int, storage: Path, cert: pki.ServerCert, htpasswd: Path | None = None
) -> str:
    """Distribution's configuration (JSON-quoted strings are valid YAML); with ``htpasswd``, every request
    needs those credentials (Basic over TLS), else pulls are anonymous."""
    q = json.dumps
    auth = (
        ["auth:", "  htpasswd:", f"    realm: {q(NAME)}", f"    path: {q(str(htpasswd))}"]
        if htpasswd
        else ["# No auth section: the mirror's pulls are anonymous."]
    )
    return "\n".join(
        [
            "# Written by provisioning/lab/services/registry.py: one of the lab's OCI registries.",
            *auth,
            "version: 0.1",
            "log:",
            "  level: warn",
            "storage:",
            "  filesystem:",
            f"    rootdirectory: {q(str(storage))}",
            "  delete:",
            "    enabled: true",
            "http:",
            f"  addr: {q(f'{host}:{port}')}",
            "  tls:",
            f"    certificate: {q(str(cert.crt))}",
            f"    key: {q(str(cert.key))}",
            "  # No debug section: no debug/metrics listener on any other address.",
            "",
        ]
    )


def _write_if_changed(path: Path, text: str) -> None:
    if path.exists() and path.read_text() == text:
        return
    pki.write_private(path, text.encode(), mode=0o644)


# --- lifecycle --------------------------------------------------------------------------------------


def _binary() -> Path:
    return build.ensure_all(["distribution"])["distribution"] / "registry"


def _env() -> dict[str, str]:
    """A clean environment: no inherited REGISTRY_* override, no OpenTelemetry exporter dialling out."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "OTEL_TRACES_EXPORTER": "none"}


def answers(reg: Registry, timeout: float = 2.0) -> bool:
    """True when ``GET /v2/`` answers 200 over TLS verified with the platform CA."""
    try:
        return request(reg, "GET", "/v2/", timeout=timeout).status_code == 200
    except requests.RequestException:
        return False


def ensure(host: str = HOST, port: int = PORT, state: Path = STATE, ca_dir: Path | None = None) -> Registry:
    """The mirror: a running anonymous registry on ``host``:``port`` with its storage in ``state``; starts
    one only when needed. ``ca_dir`` holds the platform CA (default: the git server's, made when missing)."""
    return _ensure(PROCESS, host, port, state, ca_dir, None)


def ensure_local(
    host: str = HOST, port: int = LOCAL_PORT, state: Path = LOCAL_STATE, ca_dir: Path | None = None
) -> Registry:
    """registry.local: a running registry that demands the lab's credentials, on ``host``:``port``."""
    return _ensure(LOCAL_PROCESS, host, port, state, ca_dir, credentials(state))


def _ensure(
    process: str, host: str, port: int, state: Path, ca_dir: Path | None, auth: tuple[str, str] | None
) -> Registry:
    ipaddress.ip_address(host)  # an address, not a name: containerd reaches it by IP
    ca = pki.ensure_ca(ca_dir or gitserver.pki_dir())
    with locks.exclusive(_lock(state)):
        cert = pki.ensure_server_cert(ca, state / "tls" / "registry", names=[NAME], ips=[host])
        _storage(state).mkdir(parents=True, exist_ok=True)
        htpasswd = _ensure_htpasswd(state, *auth) if auth else None
        _write_if_changed(_config_file(state), config_yaml(host, port, _storage(state), cert, htpasswd))
        reg = Registry(host, port, ca.crt, state, None, processes.log_path(process), auth)
        argv = [str(_binary()), "serve", str(_config_file(state))]
        changed = [_config_file(state), cert.crt, *([htpasswd] if htpasswd else [])]
        try:
            proc = processes.start(
                process,
                argv,
                _env(),
                port if host == "127.0.0.1" else None,
                wait=START_TIMEOUT,
                not_before=max(path.stat().st_mtime for path in changed),
                ready=lambda: answers(reg),
            )
        except processes.ProcessError as exc:
            raise RegistryError(str(exc)) from None
        return Registry(host, port, ca.crt, state, proc.pid, proc.log, auth)


def stop(state: Path = STATE, local_state: Path = LOCAL_STATE) -> bool:
    """Stop both registries (their storage stays). True when one was running."""
    with locks.exclusive(_lock(local_state)):
        local = processes.stop(LOCAL_PROCESS)
    with locks.exclusive(_lock(state)):
        return processes.stop(PROCESS) or local


# --- requests to it ----------------------------------------------------------------------------------


def request(reg: Registry, method: str, path_or_url: str, **kwargs: object) -> requests.Response:
    """``method`` on ``reg`` (a path, or a URL it sent us to on the same host), TLS verified with its CA."""
    url = urljoin(reg.url, path_or_url)
    if urlsplit(url).netloc != urlsplit(reg.url).netloc:
        raise RegistryError(f"the registry sent us to another host: {url}")
    kwargs.setdefault("timeout", HTTP_TIMEOUT)
    if reg.auth:
        kwargs.setdefault("auth", reg.auth)
    verify = str(reg.ca_file)  # always the platform CA, never unverified
    return requests.request(method, url, verify=verify, allow_redirects=False, **kwargs)  # type: ignore[arg-type]


# --- containerd -------------------------------------------------------------------------------------


def containerd_hosts_toml(mirror_url: str, ca: Path) -> str:
    """``certs.d/registry.local/hosts.toml``: containerd resolves and pulls ``registry.local/...`` at
    ``mirror_url`` (https://<ip>:<port>, no DNS), verifying its certificate with ``ca``.

    The mirror is both the ``[host]`` and the ``server``: with ``server = "https://registry.local"``
    containerd falls back to that name after a 404 from the mirror, and with no DNS for it a missing tag
    fails as "lookup registry.local: no such host" instead of "<ref>: not found" (the pull-failure scenario
    needs the latter). containerd 1.6 rejects a hosts.toml without a ``[host]`` table ("invalid `host`
    tree"), so the server alone is not enough either. The top-level ``ca`` is the server's trust."""
    parts = urlsplit(mirror_url)
    if parts.scheme != "https" or not parts.port:
        raise ValueError(f"mirror URL must be https://<ip>:<port>, got {mirror_url!r}")
    mirror = mirror_url.rstrip("/")
    trust = f'capabilities = ["pull", "resolve"]\nca = {json.dumps(str(ca))}\n'
    return f"server = {json.dumps(mirror)}\n{trust}\n[host.{json.dumps(mirror)}]\n" + "".join(
        f"  {line}\n" for line in trust.splitlines()
    )


def write_certs_d(certs_d_dir: Path, mirror_url: str, local_url: str, ca: Path) -> list[Path]:
    """Write ``<certs_d_dir>/<host>/hosts.toml`` for registry.local (at ``local_url``) and every upstream
    registry the lab mirrors (at ``mirror_url``), only when its content changes; their paths,
    registry.local's first."""
    urls = {NAME: local_url, **dict.fromkeys(MIRRORED_UPSTREAMS, mirror_url)}
    paths = []
    for host, url in urls.items():
        paths.append(certs_d_dir / host / "hosts.toml")
        _write_if_changed(paths[-1], containerd_hosts_toml(url, ca))
    return paths


# --- command line -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m provisioning.lab.services.registry", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help=f"ensure the registry of {STATE}")
    up.add_argument("--host", default=HOST)
    up.add_argument("--port", type=int, default=PORT)
    sub.add_parser("down", help="stop both registries (storage is kept)")
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            for reg in (ensure(args.host, args.port), ensure_local(args.host, args.port + 1)):
                print(f"{reg.url} ca={reg.ca_file} pid={reg.pid} log={reg.log} auth={bool(reg.auth)}")
        else:
            print("stopped" if stop() else "not running")
    except (RegistryError, recipes.BuildError) as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
