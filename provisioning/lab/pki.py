"""The lab's platform CA and the server certificates it signs (git server, OCI registry), made with
cryptography. One CA per state directory (``<dir>/ca.crt``, ``ca.key`` mode 0600), kept for ten years; a
server certificate is (re)made when it is missing, not issued by the current CA, valid for less than
another 30 days, or names other hosts than asked.

    ca = ensure_ca(state / "pki")
    crt, key = ensure_server_cert(ca, state / "pki" / "registry", ["registry.local"], ["127.0.0.1"])
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from provisioning.lab import locks

if TYPE_CHECKING:  # cryptography is imported where keys are made, so clients need not have it
    from cryptography import x509

CA_NAME = "boutique-lab platform CA"
CA_DAYS = 3650
SERVER_DAYS = 397
MIN_VALIDITY = datetime.timedelta(days=30)


@dataclass(frozen=True)
class CA:
    crt: Path
    key: Path


@dataclass(frozen=True)
class ServerCert:
    crt: Path
    key: Path


def write_private(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write atomically with ``mode`` from the first byte (no window where a key is world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def bcrypt_hash(password: str, rounds: int = 10) -> str:
    """A bcrypt hash of ``password``, as Distribution's htpasswd and Argo CD's admin.password read it (Go's
    bcrypt; cost 10 is both tools' own)."""
    import bcrypt

    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()


def ensure_ca(directory: Path, crt_name: str = "ca.crt", key_name: str = "ca.key") -> CA:
    """The platform CA in ``directory``, made when its certificate or key is missing. Made under a lock
    beside the directory: the git server and the registry may ask for it at the same time."""
    ca = CA(directory / crt_name, directory / key_name)
    if ca.crt.exists() and ca.key.exists():
        return ca
    with locks.exclusive(directory.parent / f".{directory.name}.lock"):
        if not (ca.crt.exists() and ca.key.exists()):
            write_ca(ca)
    return ca


def ensure_server_cert(
    ca: CA, out: Path, names: list[str], ips: list[str], common_name: str | None = None
) -> ServerCert:
    """A server certificate ``<out>.crt`` / ``<out>.key`` signed by ``ca`` for DNS ``names`` and ``ips``;
    kept when still usable and naming exactly these hosts."""
    cert = ServerCert(out.with_name(out.name + ".crt"), out.with_name(out.name + ".key"))
    wanted = {*names, *(str(ipaddress.ip_address(ip)) for ip in ips)}
    if not (server_cert_usable(cert, ca) and subject_alt_names(cert.crt) == wanted):
        write_server_cert(ca, cert, names, ips, common_name or (names or ips)[0])
    return cert


def write_ca(ca: CA, common_name: str = CA_NAME) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    write_private(ca.key, _pem_key(key))
    write_private(ca.crt, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)


def write_server_cert(ca: CA, out: ServerCert, names: list[str], ips: list[str], common_name: str) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    issuer = x509.load_pem_x509_certificate(ca.crt.read_bytes())
    signer = serialization.load_pem_private_key(ca.key.read_bytes(), password=None)
    assert isinstance(signer, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    san = x509.SubjectAlternativeName(
        [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips] + [x509.DNSName(n) for n in names]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=SERVER_DAYS))
        .add_extension(san, critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.public_key()), critical=False
        )
        .sign(signer, hashes.SHA256())
    )
    write_private(out.key, _pem_key(key))
    write_private(out.crt, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)


def server_cert_usable(cert: ServerCert, ca: CA, min_validity: datetime.timedelta | None = None) -> bool:
    """Present, issued by the current CA, and valid for at least another ``min_validity``
    (default ``MIN_VALIDITY``)."""
    if not (cert.key.exists() and ca.crt.exists()):
        return False
    from cryptography import x509

    try:
        issuer = x509.load_pem_x509_certificate(ca.crt.read_bytes())
    except ValueError:
        return False
    return cert_valid_for(cert.crt, min_validity, issuer)


def cert_valid_for(
    crt: Path, min_validity: datetime.timedelta | None = None, issuer: x509.Certificate | None = None
) -> bool:
    """``crt`` is readable, signed by ``issuer`` when given, and valid for another ``min_validity``."""
    if not crt.exists():
        return False
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature

    try:
        loaded = x509.load_pem_x509_certificate(crt.read_bytes())
        if issuer is not None:
            loaded.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):  # not x509.InvalidSignature: it does not exist
        return False
    remaining = loaded.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    return remaining > (MIN_VALIDITY if min_validity is None else min_validity)


def subject_alt_names(crt: Path) -> set[str]:
    """The DNS names and IP addresses a certificate is valid for, as strings."""
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(crt.read_bytes())
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {str(entry.value) for entry in san}


def _pem_key(key: object) -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    from cryptography import x509

    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )
