"""The lab's OCI registry: CNCF Distribution (``registry``, built from the Go module proxy) serving
``registry.local/boutique/<svc>:<tag>`` over TLS to the lab's kubelets (containerd), the way on-prem nodes
pull from GitLab's registry.

- ``ensure(host, port)`` starts it (idempotent: a running one with the same config is returned as is) with
  storage under ``<state>/storage`` and a config file it writes; ``stop()`` ends it.
- Its certificate is signed by the lab's platform CA (the git server's, ``provisioning/lab/pki.py``) for
  DNS ``registry.local`` and the IP it listens on, so containerd can reach it by IP (no DNS in the lab).
- ``request``: one HTTP request to it, always verifying TLS with the platform CA; the OCI distribution
  client built on it (push, tag, list, delete, exists) is ``provisioning/lab/services/oci.py``.
- ``containerd_hosts_toml`` / ``write_certs_d``: containerd's ``certs.d/<host>/hosts.toml`` for
  registry.local and each mirrored upstream registry (``MIRRORED_UPSTREAMS``), resolving its images at the
  registry's IP and port only (no fallback to DNS) and trusting the CA.

    python -m provisioning.lab.services.registry up [--host H] [--port P] | down
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import requests

from provisioning.lab import build, locks, pki, processes, recipes
from provisioning.lab.services import gitserver

NAME = "registry.local"
# Upstream registries the lab's registry answers for, as an air-gapped site's mirror does: the nodes'
# containerd pulls ``registry.k8s.io/<repo>:<tag>`` from the lab's registry as ``<repo>:<tag>``.
MIRRORED_UPSTREAMS = (
    "registry.k8s.io",  # CoreDNS (kubeadm's addon)
    "quay.io",  # Argo CD
    "public.ecr.aws",  # redis (Argo CD's install.yaml)
    "us-central1-docker.pkg.dev",  # the Online Boutique's own images (the stand-in answers under them)
)
PROCESS = "registry"
STATE = processes.PLATFORM / "registry"
HOST = "127.0.0.1"
PORT = 28500
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


def config_yaml(host: str, port: int, storage: Path, cert: pki.ServerCert) -> str:
    """Distribution's configuration (JSON-quoted strings are valid YAML)."""
    q = json.dumps
    return "\n".join(
        [
            "# Written by provisioning/lab/services/registry.py: the lab's OCI registry.",
            "# No auth section: pulls are anonymous. The lab's imagePullSecrets (registry-credentials,",
            "# sealed) are checked elsewhere (provisioning/lab/services/boutique.py), not by this registry.",
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
    """A running registry on ``host``:``port`` with its storage in ``state``; starts one only when needed.
    ``ca_dir`` holds the platform CA (default: the git server's, made when missing)."""
    ipaddress.ip_address(host)  # an address, not a name: containerd reaches it by IP
    ca = pki.ensure_ca(ca_dir or gitserver.pki_dir())
    with locks.exclusive(_lock(state)):
        cert = pki.ensure_server_cert(ca, state / "tls" / "registry", names=[NAME], ips=[host])
        _storage(state).mkdir(parents=True, exist_ok=True)
        _write_if_changed(_config_file(state), config_yaml(host, port, _storage(state), cert))
        reg = Registry(host, port, ca.crt, state, None, processes.log_path(PROCESS))
        argv = [str(_binary()), "serve", str(_config_file(state))]
        try:
            proc = processes.start(
                PROCESS,
                argv,
                _env(),
                port if host == "127.0.0.1" else None,
                wait=START_TIMEOUT,
                not_before=max(_config_file(state).stat().st_mtime, cert.crt.stat().st_mtime),
                ready=lambda: answers(reg),
            )
        except processes.ProcessError as exc:
            raise RegistryError(str(exc)) from None
        return Registry(host, port, ca.crt, state, proc.pid, proc.log)


def stop(state: Path = STATE) -> bool:
    """Stop the registry (its storage stays). True when one was running."""
    with locks.exclusive(_lock(state)):
        return processes.stop(PROCESS)


# --- requests to it ----------------------------------------------------------------------------------


def request(reg: Registry, method: str, path_or_url: str, **kwargs: object) -> requests.Response:
    """``method`` on ``reg`` (a path, or a URL it sent us to on the same host), TLS verified with its CA."""
    url = urljoin(reg.url, path_or_url)
    if urlsplit(url).netloc != urlsplit(reg.url).netloc:
        raise RegistryError(f"the registry sent us to another host: {url}")
    kwargs.setdefault("timeout", HTTP_TIMEOUT)
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


def write_certs_d(certs_d_dir: Path, mirror_url: str, ca: Path) -> list[Path]:
    """Write ``<certs_d_dir>/<host>/hosts.toml`` for registry.local and every upstream registry the lab
    mirrors (only when its content changes); their paths, registry.local's first."""
    paths = [certs_d_dir / host / "hosts.toml" for host in (NAME, *MIRRORED_UPSTREAMS)]
    for path in paths:
        _write_if_changed(path, containerd_hosts_toml(mirror_url, ca))
    return paths


# --- command line -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m provisioning.lab.services.registry", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help=f"ensure the registry of {STATE}")
    up.add_argument("--host", default=HOST)
    up.add_argument("--port", type=int, default=PORT)
    sub.add_parser("down", help="stop the registry (storage is kept)")
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            reg = ensure(args.host, args.port)
            print(f"{reg.url} ca={reg.ca_file} pid={reg.pid} log={reg.log}")
        else:
            print("stopped" if stop() else "not running")
    except (RegistryError, recipes.BuildError) as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
