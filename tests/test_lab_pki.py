"""The lab's PKI (provisioning/lab/pki.py), shared by the git server, the OCI registry and the on-prem
registry CA: a CA made once, a server certificate kept while usable and remade when its names, its CA or
its remaining validity no longer fit. No process is started."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from provisioning.lab import pki


def test_ca_is_made_once_with_a_private_key(tmp_path: Path) -> None:
    ca = pki.ensure_ca(tmp_path / "pki")
    before = (ca.crt.read_bytes(), ca.key.read_bytes())
    assert pki.ensure_ca(tmp_path / "pki") == ca
    assert (ca.crt.read_bytes(), ca.key.read_bytes()) == before
    assert ca.key.stat().st_mode & 0o777 == 0o600 and ca.crt.stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in ca.crt.parent.iterdir()) == ["ca.crt", "ca.key"]


def test_server_certificate_is_kept_while_it_fits(tmp_path: Path) -> None:
    ca = pki.ensure_ca(tmp_path / "pki")
    cert = pki.ensure_server_cert(ca, tmp_path / "tls" / "registry", ["registry.local"], ["10.213.77.1"])
    assert (cert.crt.name, cert.key.name) == ("registry.crt", "registry.key")
    assert pki.subject_alt_names(cert.crt) == {"registry.local", "10.213.77.1"}
    assert pki.server_cert_usable(cert, ca) and cert.key.stat().st_mode & 0o777 == 0o600
    first = cert.crt.read_bytes()
    pki.ensure_server_cert(ca, tmp_path / "tls" / "registry", ["registry.local"], ["10.213.77.1"])
    assert cert.crt.read_bytes() == first


def test_server_certificate_is_remade_for_new_names_a_new_ca_or_near_expiry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = pki.ensure_ca(tmp_path / "pki")
    out = tmp_path / "tls" / "registry"
    cert = pki.ensure_server_cert(ca, out, ["registry.local"], ["127.0.0.1"])
    first = cert.crt.read_bytes()
    pki.ensure_server_cert(ca, out, ["registry.local"], ["10.213.77.1"])
    assert pki.subject_alt_names(cert.crt) == {"registry.local", "10.213.77.1"}
    other = pki.ensure_ca(tmp_path / "other")
    assert not pki.server_cert_usable(cert, other)
    pki.ensure_server_cert(other, out, ["registry.local"], ["10.213.77.1"])
    assert pki.server_cert_usable(cert, other)
    second = cert.crt.read_bytes()
    monkeypatch.setattr(pki, "MIN_VALIDITY", datetime.timedelta(days=pki.SERVER_DAYS + 1))
    pki.ensure_server_cert(other, out, ["registry.local"], ["10.213.77.1"])
    assert len({first, second, cert.crt.read_bytes()}) == 3
