"""The platform CA for registry.local (and gitlab.local), made with cryptography, and the files that carry
its trust to the hosts that need it. Idempotent: a CA and a server certificate that are present, match and
stay valid for another 30 days are kept; a second ``install`` writes nothing.

- containerd on every node: ``/etc/containerd/certs.d/registry.local/ca.crt`` and ``hosts.toml`` (the
  registry host's own config, verified with that CA; never ``skip_verify``);
- the GitLab Runner: ``/etc/gitlab-runner/certs/registry.local.crt`` and ``gitlab.local.crt`` (the runner
  trusts a host's certificate from the file named after it), and jobs get it as the ``PLATFORM_CA`` variable
  (provisioning/gitlab_platform.py);
- the registry: ``/etc/boutique/registry/tls.crt`` / ``tls.key`` (key mode 0600).

    python -m provisioning.registry_ca DIR [--root ROOT]   # make or keep the PKI in DIR; install under ROOT
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import sys
from dataclasses import dataclass
from pathlib import Path

from provisioning.lab import pki as lab_pki

REGISTRY = "registry.local"
GITLAB = "gitlab.local"
MIN_VALIDITY = datetime.timedelta(days=30)
CA_NAME = "boutique platform CA"


@dataclass(frozen=True)
class Pki:
    ca_crt: Path
    ca_key: Path
    crt: Path
    key: Path


def _write(path: Path, data: bytes, mode: int) -> bool:
    """Write ``data`` atomically with ``mode`` from the first byte; False when the file already holds it."""
    if path.exists() and path.read_bytes() == data and (path.stat().st_mode & 0o777) == mode:
        return False
    lab_pki.write_private(path, data, mode)
    return True


def ensure(directory: Path, names: tuple[str, ...] = (REGISTRY, GITLAB)) -> tuple[Pki, list[str]]:
    """The CA and a server certificate for ``names`` in ``directory``; returns them and what was (re)made.
    The certificates are made by the lab's PKI module (provisioning/lab/pki.py): one implementation."""
    pki = Pki(directory / "ca.crt", directory / "ca.key", directory / "server.crt", directory / "server.key")
    ca, server = lab_pki.CA(pki.ca_crt, pki.ca_key), lab_pki.ServerCert(pki.crt, pki.key)
    made: list[str] = []
    if not (lab_pki.cert_valid_for(pki.ca_crt, MIN_VALIDITY) and pki.ca_key.exists()):
        lab_pki.write_ca(ca, common_name=CA_NAME)
        made.append("CA")
    fresh = lab_pki.server_cert_usable(server, ca, MIN_VALIDITY)
    if made or not (fresh and lab_pki.subject_alt_names(pki.crt) == set(names)):
        dns = [n for n in names if not _is_ip(n)]
        ips = [n for n in names if _is_ip(n)]
        lab_pki.write_server_cert(ca, server, dns, ips, common_name=names[0])
        made.append(f"server certificate for {', '.join(names)}")
    return pki, made


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def hosts_toml(registry: str = REGISTRY) -> str:
    """containerd's per-registry config: HTTPS to the registry, verified with the CA beside this file."""
    return (
        f'server = "https://{registry}"\n\n'
        f'[host."https://{registry}"]\n'
        '  capabilities = ["pull", "resolve"]\n'
        f'  ca = "/etc/containerd/certs.d/{registry}/ca.crt"\n'
    )


def files(pki: Pki, registry: str = REGISTRY, gitlab: str = GITLAB) -> dict[str, tuple[bytes, int]]:
    """{absolute path on a host: (content, mode)} for containerd, the runner and the registry."""
    ca = pki.ca_crt.read_bytes()
    return {
        f"/etc/containerd/certs.d/{registry}/ca.crt": (ca, 0o644),
        f"/etc/containerd/certs.d/{registry}/hosts.toml": (hosts_toml(registry).encode(), 0o644),
        f"/etc/gitlab-runner/certs/{registry}.crt": (ca, 0o644),
        f"/etc/gitlab-runner/certs/{gitlab}.crt": (ca, 0o644),
        "/etc/boutique/registry/tls.crt": (pki.crt.read_bytes(), 0o644),
        "/etc/boutique/registry/tls.key": (pki.key.read_bytes(), 0o600),
    }


def install(pki: Pki, root: Path) -> list[str]:
    """Write the trust files under ``root`` ("/" on a host, where Ansible runs this); returns what changed."""
    changed = []
    for path, (data, mode) in files(pki).items():
        if _write(root / path.lstrip("/"), data, mode):
            changed.append(path)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m provisioning.registry_ca", description=__doc__)
    parser.add_argument("directory", type=Path, help="where the CA and the server certificate live")
    parser.add_argument("--root", type=Path, help="install the trust files under this root (/ on a host)")
    args = parser.parse_args(argv)
    try:
        pki, made = ensure(args.directory)
        installed = install(pki, args.root) if args.root else []
    except (OSError, ValueError) as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    print(f"made: {', '.join(made) or 'nothing'}; installed: {', '.join(installed) or 'nothing'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
