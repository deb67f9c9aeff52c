"""The lab's Git server (nginx, fcgiwrap, git http-backend): idempotent ensure, repositories, clone/push
over HTTPS with the lab CA, Basic auth, TLS verification, a taken port, stop and recovery after SIGKILL. Each
test uses its own state directory and a free port, never the default state, and the supervisor's records and
logs stay in tmp (marker ``standalone``: real processes, never the lab's, so they run beside its session)."""

from __future__ import annotations

import base64
import gzip
import http.client
import json
import os
import re
import signal
import socket
import ssl
import stat
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from ports import free_port

from provisioning.lab import processes
from provisioning.lab.services import gitrepos, gitserver

pytestmark = pytest.mark.standalone

ASKPASS = (
    '#!/bin/sh\ncase "$1" in\n  Username*) echo "$LAB_GIT_USER" ;;\n  *) echo "$LAB_GIT_PASSWORD" ;;\nesac\n'
)


def processes_of(state: Path) -> list[int]:
    """Live processes whose command line mentions ``state``."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes()
            zombie = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
        except OSError:
            continue
        if str(state).encode() in cmdline and not zombie:
            found.append(int(proc.name))
    return found


@pytest.fixture(scope="module", autouse=True)
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The process supervisor's records and logs for this module, apart from the lab's."""
    base = tmp_path_factory.mktemp("platform")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(processes, "PLATFORM", base)
        yield base


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[gitserver.GitServer]:
    state = tmp_path_factory.mktemp("gitlab-state") / "git"
    srv = gitserver.ensure(state=state, port=free_port())
    yield srv
    gitserver.stop(state)


@pytest.fixture
def own_state(tmp_path: Path) -> Iterator[Path]:
    """A state directory for one test; whatever the test starts there is stopped, pass or fail."""
    state = tmp_path / "git"
    yield state
    gitserver.stop(state)


@pytest.fixture
def git_env(tmp_path: Path) -> dict[str, str]:
    """A git client with no user or system config and no way to prompt."""
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(HOME=str(home), GIT_CONFIG_NOSYSTEM="1", GIT_TERMINAL_PROMPT="0", LC_ALL="C")
    return env


def askpass_env(git_env: dict[str, str], tmp_path: Path, user: str, password: str) -> dict[str, str]:
    script = tmp_path / "askpass.sh"
    script.write_text(ASKPASS)
    script.chmod(0o700)
    return {**git_env, "GIT_ASKPASS": str(script), "LAB_GIT_USER": user, "LAB_GIT_PASSWORD": password}


def git(*args: str, env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60)


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(root).parts
    }


def write_files(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def test_ensure_twice_starts_nothing_and_keeps_secrets_private(server: gitserver.GitServer) -> None:
    again = gitserver.ensure(state=server.root.parent, port=int(server.url.rsplit(":", 1)[1]))
    assert again.pid == server.pid
    assert again.url.startswith("https://127.0.0.1:")
    assert server.username == "boutique-suite"
    assert server.token() not in repr(server)
    pki = server.ca_file.parent
    for private in (server.credentials_file, pki / "ca.key", pki / "git.key"):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600, private
    assert {p.name for p in pki.iterdir()} == {"ca.crt", "ca.key", "git.crt", "git.key"}


def test_server_is_nginx_configured_for_loopback_and_holds_no_token(server: gitserver.GitServer) -> None:
    run = server.root.parent / "server"
    port = server.url.rsplit(":", 1)[1]
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*")}
    assert gitserver.ensure(state=server.root.parent, port=int(port)).pid == server.pid
    assert {p: p.stat().st_mtime_ns for p in run.rglob("*")} == before, "a second ensure wrote files"
    assert Path(f"/proc/{server.pid}/exe").resolve().name == "nginx"
    conf = (run / "nginx.conf").read_text()
    assert re.search(r"\{\{\w+\}\}", conf) is None, "a value left unrendered"
    listens = [line.split() for line in conf.splitlines() if line.strip().startswith("listen ")]
    assert listens == [["listen", f"127.0.0.1:{port}", "ssl;"]]
    htpasswd = (run / "htpasswd").read_text()
    assert htpasswd.startswith("boutique-suite:{SSHA}")
    assert stat.S_IMODE((run / "htpasswd").stat().st_mode) == 0o600
    for path in run.rglob("*"):
        if path.is_file():
            assert server.token() not in path.read_text(errors="replace"), path
    assert sorted(processes.recorded()) == sorted(gitserver._names(server.root.parent))


def test_create_repo_twice_is_fine(server: gitserver.GitServer) -> None:
    first = gitserver.create_repo(server, "app-repo")
    assert gitserver.create_repo(server, "app-repo") == first
    assert (first / "HEAD").read_text().strip() == "ref: refs/heads/main"


def test_commit_then_clone_gives_same_files_and_sha(
    server: gitserver.GitServer, tmp_path: Path, git_env: dict[str, str]
) -> None:
    gitserver.create_repo(server, "gitops-repo")
    files = {"README.md": b"gitops\n", "apps/base/kustomization.yaml": b"resources: []\n"}
    source = write_files(tmp_path / "src", files)
    sha = gitrepos.commit_tree(server, "gitops-repo", source, "initial content")
    assert gitrepos.head(server, "gitops-repo") == sha

    env = askpass_env(git_env, tmp_path, server.username, server.token())
    clone = tmp_path / "clone"
    proc = git(
        "-c", f"http.sslCAInfo={server.ca_file}", "clone", server.repo_url("gitops-repo"), str(clone), env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert tree(clone) == files
    assert git("rev-parse", "HEAD", env=env, cwd=clone).stdout.strip() == sha
    author = git("log", "-1", "--format=%an <%ae>", env=env, cwd=clone).stdout.strip()
    assert author == "boutique-suite <suite@boutique.local>"
    # the same content again: no new commit
    assert gitrepos.commit_tree(server, "gitops-repo", source, "no change") == sha


def test_second_commit_moves_head_and_large_push_works(
    server: gitserver.GitServer, tmp_path: Path, git_env: dict[str, str]
) -> None:
    gitserver.create_repo(server, "app-repo")
    first = gitrepos.commit_tree(server, "app-repo", write_files(tmp_path / "v1", {"a.txt": b"1\n"}), "v1")
    # 2 MiB of incompressible data: git pushes it with a chunked request body (above http.postBuffer)
    blob = os.urandom(2 * 1024 * 1024)
    second_src = write_files(tmp_path / "v2", {"kustomization.yaml": b"images: []\n", "blob.bin": blob})
    second = gitrepos.commit_tree(server, "app-repo", second_src, "v2", subdir="deploy")
    assert second != first
    assert gitrepos.head(server, "app-repo") == second

    env = gitrepos.client_env(server, git_env)
    clone = tmp_path / "clone"
    assert git("clone", "--quiet", server.repo_url("app-repo"), str(clone), env=env).returncode == 0
    assert tree(clone) == {
        "a.txt": b"1\n",
        "deploy/kustomization.yaml": b"images: []\n",
        "deploy/blob.bin": blob,
    }
    assert git("rev-list", "--count", "HEAD", env=env, cwd=clone).stdout.strip() == "2"


def test_gzip_and_chunked_request_bodies_reach_git(server: gitserver.GitServer, tmp_path: Path) -> None:
    gitserver.create_repo(server, "gzip-repo")
    sha = gitrepos.commit_tree(server, "gzip-repo", write_files(tmp_path / "src", {"f": b"f\n"}), "one")
    host, port = server.url.removeprefix("https://").split(":")
    conn = http.client.HTTPSConnection(
        host, int(port), context=ssl.create_default_context(cafile=server.ca_file)
    )
    body = gzip.compress(b"0014command=ls-refs\n" + b"0001" + b"0000")
    auth = base64.b64encode(f"{server.username}:{server.token()}".encode()).decode()
    headers = {
        "Authorization": f"Basic {auth}",
        "Content-Type": "application/x-git-upload-pack-request",
        "Content-Encoding": "gzip",
        "Git-Protocol": "version=2",
    }
    conn.request("POST", "/gzip-repo.git/git-upload-pack", body=iter([body[:10], body[10:]]), headers=headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    assert response.status == 200
    assert response.getheader("Content-Type") == "application/x-git-upload-pack-result"
    assert f"{sha} refs/heads/main".encode() in data


def test_missing_or_wrong_credentials_get_401_and_token_never_shows(
    server: gitserver.GitServer, tmp_path: Path, git_env: dict[str, str]
) -> None:
    gitserver.create_repo(server, "app-repo")
    token = server.token()
    secrets_ = (token, base64.b64encode(f"{server.username}:{token}".encode()).decode())
    url = server.repo_url("app-repo")
    trusted = {**git_env, "GIT_SSL_CAINFO": str(server.ca_file), "GIT_TRACE_CURL": "1"}
    trusted["GIT_TRACE_CURL_NO_DATA"] = "1"

    anonymous = git("ls-remote", url, env=trusted)
    assert anonymous.returncode != 0
    assert "<= Recv header: HTTP/1.1 401 Unauthorized" in anonymous.stderr
    assert "could not read Username" in anonymous.stderr
    assert 'Recv header: WWW-Authenticate: Basic realm="boutique-lab"' in anonymous.stderr

    wrong = git("ls-remote", url, env=askpass_env(trusted, tmp_path, server.username, "not-the-token"))
    assert wrong.returncode != 0
    assert "Authentication failed" in wrong.stderr

    # the right credentials, traced: git redacts the header; the token is in no output, log or URL
    good = git("ls-remote", url, env=gitrepos.client_env(server, trusted))
    assert good.returncode == 0, good.stderr
    assert "Authorization: Basic <redacted>" in good.stderr
    outputs = [p.stdout + p.stderr for p in (anonymous, wrong, good)] + [server.log.read_text()]
    for text in outputs:
        assert not any(secret in text for secret in secrets_)


def test_client_without_the_lab_ca_fails_tls_verification(
    server: gitserver.GitServer, tmp_path: Path, git_env: dict[str, str]
) -> None:
    env = askpass_env(git_env, tmp_path, server.username, server.token())
    proc = git("ls-remote", server.repo_url("app-repo"), env=env)
    assert proc.returncode != 0
    assert "SSL certificate problem" in proc.stderr or "certificate verif" in proc.stderr, proc.stderr
    with pytest.raises(ssl.SSLCertVerificationError):
        socket_ = socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1])))
        with ssl.create_default_context().wrap_socket(socket_, server_hostname="127.0.0.1"):
            pass


def test_taken_port_is_a_clear_error(own_state: Path) -> None:
    state = own_state
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(
            gitserver.GitServerError, match=rf"127\.0\.0\.1:{port} \(git server\) is already in use"
        ):
            gitserver.ensure(state=state, port=port)
    assert processes_of(state) == []


def test_stop_leaves_no_process_and_sigkill_is_recovered(own_state: Path, tmp_path: Path) -> None:
    state = own_state
    port = free_port()
    first = gitserver.ensure(state=state, port=port)
    gitserver.create_repo(first, "app-repo")

    os.kill(first.pid, signal.SIGKILL)  # and ensure right away, while the kernel may still be tearing it down
    second = gitserver.ensure(state=state, port=port)
    assert second.pid != first.pid
    assert gitrepos.commit_tree(second, "app-repo", write_files(tmp_path / "src", {"x": b"x"}), "after kill")

    assert gitserver.stop(state) is True
    assert processes_of(state) == []
    assert not (state / "server").exists()
    assert not set(gitserver._names(state)) & set(processes.recorded())
    assert not [name for name in gitserver._names(state) if processes.log_path(name).exists()]
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0
    assert gitserver.stop(state) is False


def test_a_push_is_posted_as_gitlabs_push_hook_to_each_registered_webhook(
    own_state: Path, tmp_path: Path
) -> None:
    received: list[tuple[dict[str, str], dict]] = []
    srv = gitserver.ensure(state=own_state, port=free_port())
    for repo in ("gitops-repo", "app-repo"):
        gitserver.create_repo(srv, repo)
    first = gitrepos.commit_tree(srv, "gitops-repo", write_files(tmp_path / "v1", {"a.yaml": b"1\n"}), "v1")
    assert gitrepos.webhook_deliveries(srv) == []  # nothing registered: a push posts nothing

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.append((dict(self.headers.items()), body))
            self.send_response(200 if self.path == "/api/webhook" else 404)
            self.send_header("Content-Length", "0")
            self.end_headers()

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{receiver.server_address[1]}"
    try:
        assert gitrepos.add_webhook(srv, "gitops-repo", f"{url}/api/webhook", "hook-secret") is True
        assert gitrepos.add_webhook(srv, "gitops-repo", f"{url}/api/webhook", "hook-secret") is False
        files = {"a.yaml": b"2\n", "new/b.yaml": b"b\n"}
        second = gitrepos.commit_tree(srv, "gitops-repo", write_files(tmp_path / "v2", files), "v2")
        gitrepos.commit_tree(srv, "app-repo", write_files(tmp_path / "app", {"x": b"x"}), "not hooked")
    finally:
        receiver.shutdown()
        receiver.server_close()
    ((headers, event),) = received
    assert headers["X-Gitlab-Event"] == "Push Hook" and headers["X-Gitlab-Token"] == "hook-secret"
    assert (event["ref"], event["before"], event["after"]) == ("refs/heads/main", first, second)
    assert event["project"]["web_url"] == f"{srv.url}/gitops-repo"
    assert event["project"]["default_branch"] == "main"
    ((commit,),) = [event["commits"]]
    assert (commit["id"], commit["added"], commit["modified"]) == (second, ["new/b.yaml"], ["a.yaml"])
    (delivery,) = gitrepos.webhook_deliveries(srv, after=second)
    assert delivery["status"] == "200" and "hook-secret" not in json.dumps(delivery)
    assert stat.S_IMODE((own_state / "webhooks.json").stat().st_mode) == 0o600
    gitserver.stop(own_state)
    assert not (own_state / "server" / "hooks").exists()  # no hook outlives the server


def test_the_certificate_names_the_lab_gateway_and_an_older_one_is_replaced(own_state: Path) -> None:
    """The cluster's pods reach the server at the lab's gateway: a server started with a certificate that
    does not name it (made before) is started again with one that does."""
    from provisioning.lab import pki
    from provisioning.lab.machines import hosts

    port = free_port()
    first = gitserver.ensure(state=own_state, port=port)
    crt = own_state / "pki" / "git.crt"
    wanted = {"localhost", "127.0.0.1", hosts.network().gateway}
    assert pki.subject_alt_names(crt) == wanted
    ca = pki.ensure_ca(own_state / "pki")
    old = pki.ServerCert(crt, own_state / "pki" / "git.key")
    pki.write_server_cert(ca, old, ["localhost"], ["127.0.0.1"], "boutique-lab git")
    second = gitserver.ensure(state=own_state, port=port)
    assert second.pid != first.pid
    assert pki.subject_alt_names(crt) == wanted
    assert gitserver.ensure(state=own_state, port=port).pid == second.pid
    assert second.repo_url("gitops-repo", hosts.network().gateway) == (
        f"https://{hosts.network().gateway}:{port}/gitops-repo.git"
    )


def test_an_https_receiver_is_verified_against_the_given_ca_and_events_name_the_given_base_url(
    own_state: Path, tmp_path: Path
) -> None:
    """As the lab's Argo CD receives it: over TLS signed by the platform CA, the repository named by the URL
    Argo CD reads it at. Without the CA the delivery fails verification (recorded, the push goes through)."""
    from provisioning.lab import pki

    srv = gitserver.ensure(state=own_state, port=free_port())
    gitserver.create_repo(srv, "gitops-repo")
    ca = pki.ensure_ca(own_state / "pki")
    cert = pki.ensure_server_cert(ca, tmp_path / "receiver", ["localhost"], ["127.0.0.1"])
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert.crt, cert.key)
    received: list[dict] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    receiver.socket = tls.wrap_socket(receiver.socket, server_side=True)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    url = f"https://127.0.0.1:{receiver.server_address[1]}/api/webhook"
    base = "https://10.0.0.1:443"
    try:
        gitrepos.add_webhook(srv, "gitops-repo", url, "t", base_url=base)  # no CA: the system's store
        untrusted = gitrepos.commit_tree(srv, "gitops-repo", write_files(tmp_path / "a", {"a": b"1"}), "a")
        gitrepos.add_webhook(srv, "gitops-repo", url, "t", base_url=base, ca_file=ca.crt)
        trusted = gitrepos.commit_tree(srv, "gitops-repo", write_files(tmp_path / "b", {"a": b"2"}), "b")
    finally:
        receiver.shutdown()
        receiver.server_close()
    (refused,) = gitrepos.webhook_deliveries(srv, after=untrusted)
    assert "CERTIFICATE_VERIFY_FAILED" in refused["status"], refused
    (delivered,) = gitrepos.webhook_deliveries(srv, after=trusted)
    assert delivered["status"] == "200"
    (event,) = received
    assert event["after"] == trusted and event["project"]["web_url"] == f"{base}/gitops-repo"
