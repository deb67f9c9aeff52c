"""The lab's Git server: smart HTTP(S) on 127.0.0.1, hosting app-repo and gitops-repo with credentials.

A ThreadingHTTPServer runs ``git http-backend`` (CGI) for fetch and push behind HTTP Basic auth (user
``boutique-suite``, a random token kept in ``<state>/credentials.json``, mode 0600) and TLS with a
certificate for 127.0.0.1 / localhost signed by the lab's platform CA (``<state>/pki/ca.crt``). Clients
trust it with ``git -c http.sslCAInfo=<ca.crt>``; Argo CD with the CA in argocd-tls-certs-cm keyed
"127.0.0.1" (as a local process: a file named ``127.0.0.1`` in ``$ARGOCD_TLS_DATA_PATH``).

``ensure()`` is idempotent: a live server that answers an authenticated request is left alone, a dead or
hung one is restarted, a port held by something else is a clear error. The token is never printed or
logged: clients get it through the environment (``client_env``), never in a URL.

    python -m provisioning.lab.gitserver serve --port P --root DIR    # the server, in the foreground
    python -m provisioning.lab.gitserver up | down                    # ensure() / stop() on the default state
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hmac
import http.client
import http.server
import io
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from provisioning.lab import locks, pki, ports

STATE = Path(os.environ.get("KWOK_WORKDIR", Path.home() / ".kwok")) / "boutique-lab-platform" / "git"
PORT = 28443
HOST = "127.0.0.1"
USERNAME = "boutique-suite"
REALM = "boutique-lab"
REPOS = ("app-repo", "gitops-repo")
AUTHOR = ("boutique-suite", "suite@boutique.local")
HEALTH_PATH = "/-/health"
START_TIMEOUT = 10.0
GIT_TIMEOUT = 120.0
CHUNK = 64 * 1024
_REPO_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class GitServerError(Exception):
    """The Git server cannot be started or used; the message says what to do."""


@dataclass(frozen=True)
class GitServer:
    """A running server. The token is not a field, so it never shows in a repr, a log or an assertion."""

    url: str
    username: str
    ca_file: Path
    pid: int
    log: Path
    root: Path
    credentials_file: Path

    def token(self) -> str:
        return _read_credentials(self.credentials_file)["token"]

    def repo_url(self, name: str) -> str:
        return f"{self.url}/{_repo_name(name)}.git"


# --- files under the state directory --------------------------------------------------------------


def _paths(state: Path) -> dict[str, Path]:
    pki = state / "pki"
    return {
        "root": state / "repos",
        "credentials": state / "credentials.json",
        "ca_crt": pki / "ca.crt",
        "ca_key": pki / "ca.key",
        "crt": pki / "git.crt",
        "key": pki / "git.key",
        "log": state / "gitserver.log",
        "record": state / "gitserver.json",
        "lock": state / "gitserver.lock",
    }


def pki_dir(state: Path = STATE) -> Path:
    """Where the lab's platform CA (``ca.crt``, ``ca.key``) lives; the registry's certificate uses it too."""
    return _paths(state)["ca_crt"].parent


def _read_credentials(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text())
        return {"username": str(data["username"]), "token": str(data["token"])}
    except (OSError, ValueError, KeyError) as exc:
        raise GitServerError(f"cannot read the Git server credentials {path}: {exc}") from None


def _ensure_credentials(path: Path) -> None:
    if path.exists():
        _read_credentials(path)  # fail early on a damaged file rather than serve with no valid token
        return
    doc = {"username": USERNAME, "token": secrets.token_urlsafe(32)}
    pki.write_private(path, json.dumps(doc).encode())


# --- PKI: the platform CA and the server certificate --------------------------------------------


def _ensure_pki(state: Path) -> None:
    p = _paths(state)
    ca = pki.ensure_ca(p["ca_crt"].parent)
    server = p["crt"].with_suffix("")
    pki.ensure_server_cert(ca, server, names=["localhost"], ips=[HOST], common_name="boutique-lab git")


# --- the server (runs in the daemon) ------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _GitHTTPServer
    timeout = 300  # seconds of silence before a stalled client's thread gives up

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: object) -> None:
        # The request line carries path and query only; headers (Authorization) are never logged.
        sys.stderr.write(f"{self.log_date_time_string()} {self.client_address[0]} {format % args}\n")

    def _serve(self) -> None:
        self.close_connection = True  # one request per connection keeps the body handling simple
        if not self._authorized():
            self._send_plain(401, "authentication required\n", {"WWW-Authenticate": f'Basic realm="{REALM}"'})
            return
        path, _, query = self.path.partition("?")
        if path == HEALTH_PATH:
            self._send_plain(200, "ok\n")
            return
        self._run_backend(path, query)

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        ok_user = hmac.compare_digest(user.encode(), self.server.username.encode())
        ok_token = hmac.compare_digest(password.encode(), self.server.token.encode())
        return ok_user and ok_token

    def _send_plain(self, code: int, body: str, headers: dict[str, str] | None = None) -> None:
        data = body.encode()
        self.send_response(code)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def _cgi_env(self, path: str, query: str, body_length: str) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.server.root.parent),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "http.receivepack",
            "GIT_CONFIG_VALUE_0": "true",
            "GIT_PROJECT_ROOT": str(self.server.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": body_length,
            "REMOTE_USER": self.server.username,
            "REMOTE_ADDR": self.client_address[0],
        }
        if "Git-Protocol" in self.headers:  # protocol v2 is negotiated through this header
            env["HTTP_GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        return env

    def _run_backend(self, path: str, query: str) -> None:
        gzipped = self.headers.get("Content-Encoding", "").lower() in ("gzip", "x-gzip")
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        length = int(self.headers.get("Content-Length") or 0)
        # We hand git the decoded body: its length is only known up front when neither gzip nor chunked,
        # otherwise CONTENT_LENGTH stays empty and http-backend reads until EOF.
        body_length = "" if (gzipped or chunked) else str(length)
        proc = subprocess.Popen(
            ["git", "http-backend"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=self._cgi_env(path, query, body_length),
        )
        assert proc.stdin is not None and proc.stdout is not None
        feeder = threading.Thread(
            target=_feed_body, args=(self.rfile, proc.stdin, chunked, length, gzipped), daemon=True
        )
        feeder.start()
        try:
            self._relay_response(proc.stdout)
        finally:
            feeder.join(timeout=self.timeout)
            proc.stdout.close()
            proc.wait()

    def _relay_response(self, out: io.BufferedReader) -> None:
        code, reason, headers = 200, "OK", []
        while True:
            raw = out.readline()
            if not raw and code == 200 and not headers:  # http-backend died before a word: see the log
                code, reason = 502, "git http-backend gave no response"
            line = raw.decode("latin-1").rstrip("\r\n")
            if not line:
                break
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status, _, reason = value.strip().partition(" ")
                code = int(status)
            else:
                headers.append((name, value.strip()))
        self.send_response(code, reason or None)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        while data := out.read1(CHUNK):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.write(b"0\r\n\r\n")


def _request_chunks(rfile: BinaryIO, chunked: bool, length: int) -> Iterator[bytes]:
    """The request body as it arrives, with HTTP chunked framing removed."""
    if not chunked:
        while length > 0:
            data = rfile.read(min(CHUNK, length))
            if not data:
                return
            length -= len(data)
            yield data
        return
    while True:
        size = int(rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while rfile.readline().strip():  # trailers, up to the blank line
                pass
            return
        yield rfile.read(size)
        rfile.readline()  # the CRLF after each chunk


def _feed_body(rfile: BinaryIO, sink: BinaryIO, chunked: bool, length: int, gzipped: bool) -> None:
    """Stream the request body into http-backend's stdin, inflating gzip on the way."""
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzipped else None
    try:
        for data in _request_chunks(rfile, chunked, length):
            sink.write(inflate.decompress(data) if inflate else data)
        if inflate:
            sink.write(inflate.flush())
    except (OSError, ValueError, zlib.error) as exc:
        sys.stderr.write(f"request body not delivered to git http-backend: {exc}\n")
    finally:
        with contextlib.suppress(OSError):
            sink.close()


class _GitHTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_port = False

    def __init__(self, port: int, root: Path, tls: ssl.SSLContext, username: str, token: str) -> None:
        self.root = root
        self.tls = tls
        self.username = username
        self.token = token
        super().__init__((HOST, port), _Handler)

    def finish_request(self, request: socket.socket, client_address: tuple[str, int]) -> None:
        # The TLS handshake runs here, in the request's thread, so one slow or failing client cannot
        # block the accept loop; a failed handshake is one log line, not a traceback.
        request.settimeout(30)
        try:
            conn = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            sys.stderr.write(f"TLS handshake with {client_address[0]} failed: {exc}\n")
            request.close()
            return
        try:
            super().finish_request(conn, client_address)
        except (ssl.SSLError, OSError) as exc:
            sys.stderr.write(f"connection from {client_address[0]} ended: {exc}\n")
        finally:
            conn.close()


def _tls_context(state: Path) -> ssl.SSLContext:
    p = _paths(state)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(["http/1.1"])
    ctx.load_cert_chain(p["crt"], p["key"])
    return ctx


def serve(port: int, root: Path, *, daemon_log: Path | None = None) -> None:
    """Serve ``root`` on 127.0.0.1:``port`` until killed. With ``daemon_log``: bind first (so a taken
    port fails here, in the caller's sight), then detach into its own session, print the pid and return
    in the parent."""
    state = root.parent
    root.mkdir(parents=True, exist_ok=True)
    _ensure_credentials(_paths(state)["credentials"])
    _ensure_pki(state)
    creds = _read_credentials(_paths(state)["credentials"])
    try:
        server = _GitHTTPServer(port, root, _tls_context(state), creds["username"], creds["token"])
    except OSError as exc:
        raise GitServerError(f"cannot listen on {HOST}:{port}: {exc.strerror or exc}") from None
    if daemon_log is not None and _detach(daemon_log):
        server.socket.close()
        return
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    sys.stderr.write(f"git server on https://{HOST}:{port} serving {root} (pid {os.getpid()})\n")
    sys.stderr.flush()
    with server:
        server.serve_forever()


def _detach(log: Path) -> bool:
    """Fork; True in the parent (after printing the child's pid), False in the detached child."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        print(pid, flush=True)
        return True
    os.setsid()
    log_fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(devnull)
    os.close(log_fd)
    return False


# --- lifecycle (the caller's side) ----------------------------------------------------------------


def _alive(pid: int | None) -> bool:
    """True when ``pid`` is a live (not zombie) git server process."""
    if not pid:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z" and b"provisioning.lab.gitserver" in cmdline


def _read_record(state: Path) -> dict[str, int]:
    try:
        data = json.loads(_paths(state)["record"].read_text())
        return {"pid": int(data["pid"]), "port": int(data["port"])}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _server(state: Path, port: int, pid: int) -> GitServer:
    p = _paths(state)
    return GitServer(
        url=f"https://{HOST}:{port}",
        username=_read_credentials(p["credentials"])["username"],
        ca_file=p["ca_crt"],
        pid=pid,
        log=p["log"],
        root=p["root"],
        credentials_file=p["credentials"],
    )


def _healthy(server: GitServer, timeout: float = 2.0) -> str | None:
    """None when the server answers an authenticated request, else why not."""
    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    host, port = server.url.removeprefix("https://").split(":")
    conn = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=timeout)
    try:
        conn.request("GET", HEALTH_PATH, headers={"Authorization": _basic_auth(server)})
        status = conn.getresponse().status
    except (OSError, ssl.SSLError, http.client.HTTPException) as exc:
        return f"{server.url}{HEALTH_PATH}: {exc}"
    finally:
        conn.close()
    return None if status == 200 else f"{server.url}{HEALTH_PATH}: HTTP {status}"


def running(state: Path = STATE) -> GitServer | None:
    """The git server when it runs and answers an authenticated request, else None."""
    record = _read_record(state)
    if not record or not _alive(record["pid"]):
        return None
    server = _server(state, record["port"], record["pid"])
    return server if _healthy(server) is None else None


def _basic_auth(server: GitServer) -> str:
    pair = f"{server.username}:{server.token()}".encode()
    return "Basic " + base64.b64encode(pair).decode()


def _port_error(port: int) -> GitServerError:
    return GitServerError(
        f"{HOST}:{port} (git server) is already in use{ports.owner(port)}: stop what holds it, "
        "or start the git server on another port"
    )


def _exclusive(state: Path) -> contextlib.AbstractContextManager[None]:
    """One ensure/stop at a time per state directory, across processes."""
    return locks.exclusive(_paths(state)["lock"])


def ensure(state: Path = STATE, port: int = PORT) -> GitServer:
    """A running, answering git server for ``state`` on ``port``; starts one only when needed."""
    with _exclusive(state):
        record = _read_record(state)
        if record.get("port") == port and _alive(record.get("pid")):
            running = _server(state, port, record["pid"])
            if _healthy(running) is None:
                return running
        _stop(state)
        return _start(state, port)


def _start(state: Path, port: int) -> GitServer:
    p = _paths(state)
    if ports.taken(port):
        raise _port_error(port)
    _ensure_credentials(p["credentials"])
    _ensure_pki(state)
    cmd = [sys.executable, "-m", "provisioning.lab.gitserver", "serve", "--port", str(port)]
    cmd += ["--root", str(p["root"]), "--daemon-log", str(p["log"])]
    cwd = Path(__file__).resolve().parents[2]  # so `-m provisioning.lab.gitserver` resolves
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30, cwd=cwd)
    except subprocess.TimeoutExpired:
        raise GitServerError(f"git server launcher did not return in 30s (log: {p['log']})") from None
    if proc.returncode != 0:
        if ports.taken(port):
            raise _port_error(port)
        raise GitServerError(f"git server did not start: {proc.stderr.strip()[-400:]} (log: {p['log']})")
    pid = int(proc.stdout.split()[-1])
    pki.write_private(p["record"], json.dumps({"pid": pid, "port": port}).encode(), mode=0o644)
    server = _server(state, port, pid)
    _wait_ready(server)
    return server


def _wait_ready(server: GitServer) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        problem = _healthy(server, timeout=1.0)
        if problem is None:
            return
        if not _alive(server.pid):
            raise GitServerError(f"git server exited during start (log: {server.log})")
        if time.monotonic() >= deadline:
            raise GitServerError(
                f"git server did not answer within {START_TIMEOUT:g}s: {problem} (log: {server.log})"
            )
        time.sleep(0.1)


def stop(state: Path = STATE) -> bool:
    """Stop the server of ``state``, leaving no process. True when one was running."""
    with _exclusive(state):
        return _stop(state)


def _stop(state: Path) -> bool:
    pid = _read_record(state).get("pid")
    _paths(state)["record"].unlink(missing_ok=True)
    if not _alive(pid):
        _wait_exited(pid)
        return False
    assert pid is not None
    # The server leads its own session: signalling the group also ends in-flight http-backend children.
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(pid):
        _signal_group(pid, signal.SIGKILL)
        while _alive(pid) and time.monotonic() < deadline + 5:
            time.sleep(0.05)
    _wait_exited(pid)
    return True


def _wait_exited(pid: int | None, timeout: float = 5.0) -> None:
    """A killed server is gone from ``_alive`` (its cmdline empties) a moment before the kernel has
    closed its listening socket: wait for that, so a restart does not find its own port taken."""
    deadline = time.monotonic() + timeout
    while pid and time.monotonic() < deadline:
        try:
            exiting = Path(f"/proc/{pid}/cmdline").read_bytes() == b""
            zombie = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
        except OSError:
            return
        if zombie or not exiting:
            return
        time.sleep(0.02)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


# --- repositories ---------------------------------------------------------------------------------


def _repo_name(name: str) -> str:
    name = name.removesuffix(".git")
    if not _REPO_NAME.match(name) or ".." in name:
        raise GitServerError(f"invalid repository name {name!r}: use letters, digits, '.', '_' and '-'")
    return name


def create_repo(server: GitServer, name: str) -> Path:
    """A bare repository ``<name>.git`` with default branch main (left alone when it exists)."""
    path = server.root / f"{_repo_name(name)}.git"
    if (path / "HEAD").exists():
        return path
    server.root.mkdir(parents=True, exist_ok=True)
    _git(None, "init", "--quiet", "--bare", "--initial-branch=main", str(path))
    _git(path, "config", "http.receivepack", "true")
    return path


def client_env(server: GitServer, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a git client of ``server``: trusts the lab CA and authenticates with an extra
    header passed as environment config, so the token is neither in a URL, on a command line nor in
    any .git/config (git redacts the header in its traces)."""
    env = dict(os.environ if base is None else base)
    extra = {
        "http.sslCAInfo": str(server.ca_file),
        "http.extraHeader": f"Authorization: {_basic_auth(server)}",
        "credential.helper": "",
    }
    count = int(env.get("GIT_CONFIG_COUNT", "0") or 0)
    for i, (key, value) in enumerate(extra.items(), start=count):
        env[f"GIT_CONFIG_KEY_{i}"] = key
        env[f"GIT_CONFIG_VALUE_{i}"] = value
    env["GIT_CONFIG_COUNT"] = str(count + len(extra))
    env["GIT_SSL_CAINFO"] = str(server.ca_file)  # this variable beats http.sslCAInfo, so never inherit it
    env["GIT_TERMINAL_PROMPT"] = "0"
    return env


def _git(cwd: Path | None, *args: str, env: dict[str, str] | None = None) -> str:
    cmd = ["git", *args]
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=GIT_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise GitServerError(f"`git {args[0]}` did not finish in {GIT_TIMEOUT:g}s") from None
    if proc.returncode != 0:
        raise GitServerError(f"`git {args[0]}` failed: {(proc.stderr or proc.stdout).strip()[-600:]}")
    return proc.stdout


def head(server: GitServer, repo: str, branch: str = "main") -> str:
    """The commit SHA of ``branch`` in ``repo`` as the server reports it (git ls-remote)."""
    out = _git(None, "ls-remote", server.repo_url(repo), f"refs/heads/{branch}", env=client_env(server))
    if not out.strip():
        raise GitServerError(f"{repo} has no branch {branch!r} yet")
    return out.split()[0]


def tree(server: GitServer, repo: str, branch: str = "main") -> str:
    """The tree hash of ``branch``: equal trees are equal content, whatever commits led there."""
    bare = server.root / f"{_repo_name(repo)}.git"
    return _git(None, "--git-dir", str(bare), "rev-parse", f"{branch}^{{tree}}").strip()


def commit_tree(server: GitServer, repo: str, source_dir: Path, message: str, *, subdir: str = "") -> str:
    """Make ``source_dir``'s content the tree of main (or of ``subdir`` in it), push, return the SHA.
    Without changes nothing is committed and the current head is returned."""
    source_dir = Path(source_dir)
    if not source_dir.is_dir():
        raise GitServerError(f"{source_dir} is not a directory")
    env = client_env(server)
    env.update(_author_env())
    with tempfile.TemporaryDirectory(prefix="boutique-git-") as tmp:
        work = Path(tmp) / "work"
        _git(None, "clone", "--quiet", server.repo_url(repo), str(work), env=env)
        empty = subprocess.run(["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=work, capture_output=True)
        if empty.returncode != 0:
            _git(work, "symbolic-ref", "HEAD", "refs/heads/main", env=env)
        _replace_tree(work, source_dir, subdir)
        _git(work, "add", "--all", env=env)
        changed = subprocess.run(["git", "diff", "--cached", "--quiet"], cwd=work).returncode != 0
        if not changed and empty.returncode == 0:
            return _git(work, "rev-parse", "HEAD", env=env).strip()
        _git(work, "-c", "commit.gpgsign=false", "commit", "--quiet", "--allow-empty", "-m", message, env=env)
        _git(work, "push", "--quiet", "origin", "HEAD:refs/heads/main", env=env)
        return _git(work, "rev-parse", "HEAD", env=env).strip()


def _author_env() -> dict[str, str]:
    name, email = AUTHOR
    return {
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": name,
        "GIT_COMMITTER_EMAIL": email,
    }


def _replace_tree(work: Path, source_dir: Path, subdir: str) -> None:
    target = (work / subdir).resolve() if subdir else work
    if target != work and work not in target.parents:
        raise GitServerError(f"subdir {subdir!r} points outside the repository")
    if target.exists():
        for entry in target.iterdir():
            if target == work and entry.name == ".git":
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    target.mkdir(parents=True, exist_ok=True)
    shutil.copytree(
        source_dir, target, symlinks=True, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".git")
    )


# --- command line ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m provisioning.lab.gitserver", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("serve", help="run the server in the foreground")
    run.add_argument("--port", type=int, default=PORT)
    run.add_argument("--root", type=Path, required=True, help="directory of the bare repositories")
    run.add_argument("--daemon-log", type=Path, help="detach into its own session, logging here")
    sub.add_parser("up", help=f"ensure the server of {STATE} on port {PORT} with {', '.join(REPOS)}")
    sub.add_parser("down", help="stop the server, leave no process")
    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            serve(args.port, args.root.resolve(), daemon_log=args.daemon_log)
        elif args.command == "up":
            server = ensure()
            for name in REPOS:
                create_repo(server, name)
            print(
                f"{server.url} user={server.username} ca={server.ca_file} pid={server.pid} log={server.log}"
            )
        else:
            print("stopped" if stop() else "not running")
    except GitServerError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
