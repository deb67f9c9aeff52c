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
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

REGISTRY = "registry.local"
GITLAB = "gitlab.local"
MIN_VALIDITY = datetime.timedelta(days=30)


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
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    return True


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _usable(cert_path: Path, ca: x509.Certificate | None = None) -> bool:
    if not cert_path.exists():
        return False
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        if ca is not None:
            cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, x509.InvalidSignature):
        return False
    return cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC) > MIN_VALIDITY


def ensure(directory: Path, names: tuple[str, ...] = (REGISTRY, GITLAB)) -> tuple[Pki, list[str]]:
    """The CA and a server certificate for ``names`` in ``directory``; returns them and what was (re)made."""
    pki = Pki(directory / "ca.crt", directory / "ca.key", directory / "server.crt", directory / "server.key")
    made: list[str] = []
    now = datetime.datetime.now(datetime.UTC)
    if not (_usable(pki.ca_crt) and pki.ca_key.exists()):
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "boutique platform CA")])
        ca = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_usage(ca=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        _write(pki.ca_key, _pem_key(key), 0o600)
        _write(pki.ca_crt, ca.public_bytes(serialization.Encoding.PEM), 0o644)
        made.append("CA")
    ca = x509.load_pem_x509_certificate(pki.ca_crt.read_bytes())
    if made or not (_usable(pki.crt, ca) and pki.key.exists() and _names(pki.crt) == set(names)):
        signer = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
        assert isinstance(signer, ec.EllipticCurvePrivateKey)
        key = ec.generate_private_key(ec.SECP256R1())
        san = [x509.DNSName(n) if not _is_ip(n) else x509.IPAddress(ipaddress.ip_address(n)) for n in names]
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=397))
            .add_extension(x509.SubjectAlternativeName(san), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_usage(ca=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.public_key()), critical=False
            )
            .sign(signer, hashes.SHA256())
        )
        _write(pki.key, _pem_key(key), 0o600)
        _write(pki.crt, cert.public_bytes(serialization.Encoding.PEM), 0o644)
        made.append(f"server certificate for {', '.join(names)}")
    return pki, made


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _names(cert_path: Path) -> set[str]:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(n.value) for n in san}


def _usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


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
