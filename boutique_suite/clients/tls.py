"""TLS as a client sees it: which CAs a server's certificate chains to, its name and how long it lasts."""

from __future__ import annotations

import os
import socket
import ssl
import time

import certifi


def peer_certificate(
    host: str, cafile: str, port: int = 443, timeout: float = 10, address: str | None = None
) -> dict:
    """The server's certificate, verified (chain and name ``host``) against ``cafile`` alone; dialled at
    ``address`` when ``host`` does not resolve from here."""
    context = ssl.create_default_context(cafile=os.path.expanduser(cafile))
    with (
        socket.create_connection((address or host, port), timeout=timeout) as sock,
        context.wrap_socket(sock, server_hostname=host) as tls,
    ):
        return tls.getpeercert()


def expect_issued_by(host: str, cafile: str | None, port: int = 443, address: str | None = None) -> dict:
    assert cafile, "the target file names no registry CA (registry.ca_file or gitlab.ca_file)"
    try:
        return peer_certificate(host, cafile, port, address=address)
    except ssl.SSLCertVerificationError as exc:
        raise AssertionError(
            f"{host}'s certificate does not verify against {cafile}: {exc.verify_message}"
        ) from None


def expect_valid_for(
    host: str, cafile: str | None, name: str, days: int, port: int = 443, address: str | None = None
) -> float:
    """The certificate names ``name`` and expires no sooner than ``days`` from now; returns its days."""
    assert cafile, "the target file names no registry CA (registry.ca_file or gitlab.ca_file)"
    cert = peer_certificate(host, cafile, port, address=address)
    names = {value for kind, value in cert.get("subjectAltName", ()) if kind == "DNS"}
    assert name in names, f"{host}'s certificate names {sorted(names)}, not {name}"
    left = (ssl.cert_time_to_seconds(cert["notAfter"]) - time.time()) / 86400
    assert left >= days, f"{host}'s certificate expires in {left:.0f} days, fewer than {days}"
    return left


def expect_public_cas_refuse(
    host: str, port: int = 443, timeout: float = 10, address: str | None = None
) -> None:
    """A client trusting only the public CAs (certifi's bundle) refuses the server's certificate."""
    try:
        peer_certificate(host, certifi.where(), port, timeout, address)
    except ssl.SSLCertVerificationError:
        return
    raise AssertionError(f"{host}'s certificate verifies against the public CAs: it is not the platform CA's")
