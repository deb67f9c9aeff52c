"""Phase 1's checks against stand-ins made here: a TLS server with its own CA, repository trees, GitLab's
readiness answer and runner details. No lab, no GitLab."""

from __future__ import annotations

import datetime
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from boutique_suite.clients import tls
from boutique_suite.expectations import gitlab_checks, repos
from boutique_suite.run import waits


def _cert(subject: str, key, issuer_key, issuer: str, days: int, ca: bool) -> x509.Certificate:  # type: ignore[no-untyped-def]
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(params=[365, 10], ids=["valid-a-year", "valid-10-days"])
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[int, str, int]]:
    """(port, CA file, days left) of a TLS server on localhost whose certificate a private CA issued."""
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = _cert("platform CA", ca_key, ca_key, "platform CA", 3650, ca=True)
    leaf = _cert("localhost", key, ca_key, "platform CA", request.param, ca=False)
    (tmp_path / "ca.crt").write_bytes(_pem(ca))
    (tmp_path / "server.pem").write_bytes(
        _pem(leaf)
        + key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "server.pem")
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(5)

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            try:
                with context.wrap_socket(conn, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                conn.close()

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1], str(tmp_path / "ca.crt"), request.param
    server.close()


def test_the_registry_ca_verifies_the_certificate_and_the_public_cas_refuse_it(registry) -> None:  # type: ignore[no-untyped-def]
    port, ca_file, _ = registry
    assert tls.expect_issued_by("localhost", ca_file, port)["subject"]
    tls.expect_public_cas_refuse("localhost", port)


def test_a_certificate_expiring_within_30_days_fails(registry) -> None:  # type: ignore[no-untyped-def]
    port, ca_file, days = registry
    if days >= 30:
        assert tls.expect_valid_for("localhost", ca_file, "localhost", 30, port) > 300
    else:
        with pytest.raises(AssertionError, match="fewer than 30"):
            tls.expect_valid_for("localhost", ca_file, "localhost", 30, port)


def test_a_name_the_certificate_does_not_hold_fails(registry) -> None:  # type: ignore[no-untyped-def]
    port, ca_file, _ = registry
    with pytest.raises(AssertionError, match=r"not registry\.local"):
        tls.expect_valid_for("localhost", ca_file, "registry.local", 1, port)


def test_a_certificate_from_another_ca_fails(registry, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    port, _, _ = registry
    other_key = ec.generate_private_key(ec.SECP256R1())
    other = tmp_path / "other.crt"
    other.write_bytes(_pem(_cert("other CA", other_key, other_key, "other CA", 30, ca=True)))
    with pytest.raises(AssertionError, match="does not verify"):
        tls.expect_issued_by("localhost", str(other), port)


def _tree(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    return root


APP = {
    ".gitlab-ci.yml": "stages: [test]\n",
    "src/frontend/Dockerfile": "FROM scratch\n",
    "src/frontend/main.go": "",
}


def test_app_repo_with_sources_dockerfiles_and_ci_passes(tmp_path: Path) -> None:
    assert repos.expect_app_repo_content(_tree(tmp_path, APP)) == ["frontend"]


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ({"k8s/deploy.yaml": "apiVersion: apps/v1\nkind: Deployment\n"}, "Kubernetes manifests"),
        ({"src/cartservice/Dockerfile": "FROM scratch\n"}, "src/cartservice holds no source file"),
    ],
)
def test_app_repo_without_sources_or_with_manifests_fails(tmp_path: Path, extra: dict, problem: str) -> None:
    with pytest.raises(AssertionError, match=problem):
        repos.expect_app_repo_content(_tree(tmp_path, {**APP, **extra}))


def test_gitops_repo_with_a_dockerfile_fails_and_without_passes(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"base/a.yaml": "kind: x\n", "overlays/dev/kustomization.yaml": "resources: []\n"})
    repos.expect_gitops_repo_content(root, "base/", "overlays/")
    _tree(root, {"src/frontend/Dockerfile": "FROM scratch\n"})
    with pytest.raises(AssertionError, match="Dockerfiles"):
        repos.expect_gitops_repo_content(root, "base/", "overlays/")


def test_the_lab_git_remote_is_never_given_a_token_in_the_url(monkeypatch: pytest.MonkeyPatch) -> None:
    from boutique_suite.run import targets

    target = targets.load(str(targets.TARGETS_DIR / "onprem.example.yaml"))
    monkeypatch.setenv("GITLAB_TOKEN", "t-" + "x" * 8)
    url, env = repos.remote(target, "app-repo")
    assert url == "https://gitlab.local/boutique/app-repo.git"
    assert "t-xxxxxxxx" not in url
    assert env["GIT_CONFIG_KEY_0"] == "http.extraHeader"


class _Answer:
    def __init__(self, body: dict) -> None:
        self.status_code, self._body = 200, body

    def json(self) -> dict:
        return self._body


@pytest.mark.parametrize(
    ("body", "outcome"),
    [
        (
            {"status": "ok", "db_check": [{"status": "ok"}], "redis_check": [{"status": "ok"}]},
            waits.Outcome.SUCCEEDED,
        ),
        ({"status": "failed", "db_check": [{"status": "failed"}]}, waits.Outcome.PENDING),
        ({"status": "ok"}, waits.Outcome.PENDING),
    ],
)
def test_readiness_succeeds_only_when_every_check_is_ok(
    monkeypatch: pytest.MonkeyPatch, body: dict, outcome: waits.Outcome
) -> None:
    monkeypatch.setattr(gitlab_checks.requests, "get", lambda *a, **k: _Answer(body))
    assert gitlab_checks.readiness("https://gitlab.local/-/readiness", "ok", True)().outcome is outcome


def test_a_paused_or_silent_runner_fails() -> None:
    now = datetime.datetime.now(datetime.UTC)
    runner = {"id": 7, "status": "online", "paused": False, "contacted_at": now.isoformat()}
    gitlab_checks.expect_runner_status(runner, "online")
    assert gitlab_checks.expect_contacted_within(runner, 120) < 5
    with pytest.raises(AssertionError, match="paused"):
        gitlab_checks.expect_runner_status({**runner, "paused": True}, "online")
    old = (now - datetime.timedelta(minutes=10)).isoformat()
    with pytest.raises(AssertionError, match="over 120 s"):
        gitlab_checks.expect_contacted_within({**runner, "contacted_at": old}, 120)
