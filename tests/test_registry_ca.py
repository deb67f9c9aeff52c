"""The platform CA for registry.local (provisioning/registry_ca.py): made once and kept (a second run changes
nothing), a certificate a client trusting only that CA accepts over real TLS on loopback while one trusting
only the public CAs refuses it, and the trust files for containerd, the runner and the registry."""

from __future__ import annotations

import datetime
import socket
import ssl
import threading
from pathlib import Path

import pytest

from provisioning import registry_ca


def handshake(pki: registry_ca.Pki, client: ssl.SSLContext, name: str = "registry.local") -> str:
    """A TLS handshake on 127.0.0.1 with the server certificate; returns the peer's common name."""
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(pki.crt, pki.key)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)

        def accept() -> None:
            conn, _ = listener.accept()
            try:
                with server_ctx.wrap_socket(conn, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                pass

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        with (
            socket.create_connection(listener.getsockname(), timeout=5) as raw,
            client.wrap_socket(raw, server_hostname=name) as tls,
        ):
            subject = dict(item[0] for item in tls.getpeercert()["subject"])
        thread.join(5)
    return subject["commonName"]


def test_second_ensure_keeps_everything(tmp_path: Path) -> None:
    pki, made = registry_ca.ensure(tmp_path / "pki")
    assert made == ["CA", "server certificate for registry.local, gitlab.local"]
    before = {p: p.read_bytes() for p in (pki.ca_crt, pki.ca_key, pki.crt, pki.key)}
    again, made_again = registry_ca.ensure(tmp_path / "pki")
    assert made_again == []
    assert {p: p.read_bytes() for p in (again.ca_crt, again.ca_key, again.crt, again.key)} == before
    assert pki.ca_key.stat().st_mode & 0o777 == 0o600 and pki.key.stat().st_mode & 0o777 == 0o600


def test_a_client_trusting_only_the_ca_connects_and_public_trust_refuses(tmp_path: Path) -> None:
    pki, _ = registry_ca.ensure(tmp_path / "pki")
    assert handshake(pki, ssl.create_default_context(cafile=str(pki.ca_crt))) == "registry.local"
    with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer certificate"):
        handshake(pki, ssl.create_default_context())
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        handshake(pki, ssl.create_default_context(cafile=str(pki.ca_crt)), name="other.local")


def test_a_certificate_close_to_expiry_is_renewed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pki, _ = registry_ca.ensure(tmp_path / "pki")
    old = pki.crt.read_bytes()
    monkeypatch.setattr(registry_ca, "MIN_VALIDITY", datetime.timedelta(days=400))
    _, made = registry_ca.ensure(tmp_path / "pki")
    assert made == ["server certificate for registry.local, gitlab.local"], "the 10-year CA is kept"
    assert pki.crt.read_bytes() != old


def test_trust_files_install_once(tmp_path: Path) -> None:
    pki, _ = registry_ca.ensure(tmp_path / "pki")
    root = tmp_path / "host"
    changed = registry_ca.install(pki, root)
    assert sorted(changed) == sorted(registry_ca.files(pki))
    assert registry_ca.install(pki, root) == []
    hosts = (root / "etc/containerd/certs.d/registry.local/hosts.toml").read_text()
    assert 'ca = "/etc/containerd/certs.d/registry.local/ca.crt"' in hosts and "skip_verify" not in hosts
    assert (root / "etc/containerd/certs.d/registry.local/ca.crt").read_bytes() == pki.ca_crt.read_bytes()
    assert (root / "etc/gitlab-runner/certs/registry.local.crt").read_bytes() == pki.ca_crt.read_bytes()
    assert (root / "etc/boutique/registry/tls.key").stat().st_mode & 0o777 == 0o600


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert registry_ca.main([str(tmp_path / "pki"), "--root", str(tmp_path / "host")]) == 0
    assert capsys.readouterr().out.startswith("made: CA, server certificate")
    assert registry_ca.main([str(tmp_path / "pki"), "--root", str(tmp_path / "host")]) == 0
    assert capsys.readouterr().out == "made: nothing; installed: nothing\n"
