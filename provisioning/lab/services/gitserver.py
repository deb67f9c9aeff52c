"""The lab's Git server: Debian's nginx with ``git http-backend`` behind it (through fcgiwrap), on
127.0.0.1, hosting app-repo and gitops-repo. Configuration, not code: ``gitserver-nginx.conf`` beside this
file, rendered with one state directory's paths, port and certificate.

HTTPS with a certificate for 127.0.0.1 / localhost and the lab's gateway (where the cluster's pods reach the
server through the lab's forward, ``hosts.ensure_forward``) signed by the lab's platform CA
(``<state>/pki/ca.crt``, made by provisioning/lab/pki.py); HTTP Basic auth for one user, ``boutique-suite``,
whose password is a random token kept in ``<state>/credentials.json`` (mode 0600) and given to nginx as a
salted hash (``<state>/server/htpasswd``). Clients trust the server with ``git -c http.sslCAInfo=<ca.crt>``;
Argo CD with the CA in argocd-tls-certs-cm keyed "127.0.0.1" (as a local process: a file named ``127.0.0.1``
in ``$ARGOCD_TLS_DATA_PATH``).

nginx and fcgiwrap are the lab's process supervisor's (provisioning/lab/processes.py) to start and stop.
``ensure()`` is idempotent: a server that answers an authenticated request is left alone, a dead or hung
one is restarted, a port held by something else is a clear error. The token is never printed or logged:
clients get it through the environment (``gitrepos.client_env``), never in a URL.

    python -m provisioning.lab.services.gitserver up | down     # ensure() / stop() on the default state
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import http.client
import json
import os
import re
import secrets
import shutil
import ssl
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from boutique_suite.run import waits
from provisioning.lab import locks, pki, ports, processes
from provisioning.lab.machines import hosts

STATE = Path(os.environ.get("KWOK_WORKDIR", Path.home() / ".kwok")) / "boutique-lab-platform" / "git"
PORT = 28443
HOST = "127.0.0.1"
USERNAME = "boutique-suite"
REALM = "boutique-lab"
REPOS = ("app-repo", "gitops-repo")
HEALTH_PATH = "/-/health"
START_TIMEOUT = 10.0
GIT_TIMEOUT = 120.0
CONFIG = Path(__file__).with_name("gitserver-nginx.conf")
GITHOOK = Path(__file__).with_name("githook.py")
BACKEND = "/usr/lib/git-core/git-http-backend"
FCGI_PROCESSES = 4  # requests git http-backend serves at once
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
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

    def repo_url(self, name: str, address: str = HOST) -> str:
        """The repository's URL at ``address``, one of ``addresses()`` (the gateway: for the pods)."""
        return f"https://{address}:{self.url.rsplit(':', 1)[1]}/{repo_name(name)}.git"


# --- files under the state directory --------------------------------------------------------------


def paths(state: Path) -> dict[str, Path]:
    """The files and directories of the server of ``state``, by role."""
    pki = state / "pki"
    run = state / "server"  # what nginx and fcgiwrap need while they run; removed by stop()
    return {
        "root": state / "repos",
        "credentials": state / "credentials.json",
        "ca_crt": pki / "ca.crt",
        "ca_key": pki / "ca.key",
        "crt": pki / "git.crt",
        "key": pki / "git.key",
        "log": state / "gitserver.log",
        "lock": state / "gitserver.lock",
        "run": run,
        "conf": run / "nginx.conf",
        "htpasswd": run / "htpasswd",
        "socket": run / "fcgiwrap.sock",
        "hooks": run / "hooks",  # core.hooksPath of every repository served: no hook outlives stop()
        "webhooks": state / "webhooks.json",  # registered push webhooks (url + secret token), mode 0600
        "deliveries": state / "webhook-deliveries.jsonl",  # githook.py's record of each delivery
    }


def pki_dir(state: Path = STATE) -> Path:
    """Where the lab's platform CA (``ca.crt``, ``ca.key``) lives; the registry's certificate uses it too."""
    return paths(state)["ca_crt"].parent


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


def _htpasswd(username: str, token: str) -> bytes:
    """nginx's salted SHA-1 entry ({SSHA}): the token itself never reaches nginx's files."""
    salt = secrets.token_bytes(8)
    digest = hashlib.sha1(token.encode() + salt).digest()
    return f"{username}:{{SSHA}}{base64.b64encode(digest + salt).decode()}\n".encode()


def addresses() -> list[str]:
    """The addresses the server's certificate names: loopback, and the lab's gateway."""
    return [HOST, hosts.network().gateway]


def _ensure_pki(state: Path) -> None:
    p = paths(state)
    ca = pki.ensure_ca(p["ca_crt"].parent)
    server = p["crt"].with_suffix("")
    pki.ensure_server_cert(ca, server, names=["localhost"], ips=addresses(), common_name="boutique-lab git")


def _certificate_current(state: Path) -> bool:
    """The certificate nginx serves names the addresses it must (a server started before a change of them
    is started again)."""
    crt = paths(state)["crt"]
    return crt.exists() and pki.subject_alt_names(crt) == {"localhost", *addresses()}


def render(state: Path, port: int) -> str:
    """The nginx configuration for ``state`` on ``port``: the template with every {{value}} filled in."""
    p = paths(state)
    values = {
        "host": HOST,
        "port": str(port),
        "realm": REALM,
        "health_path": HEALTH_PATH,
        "run": str(p["run"]),
        "log": str(p["log"]),
        "crt": str(p["crt"]),
        "key": str(p["key"]),
        "htpasswd": str(p["htpasswd"]),
        "root": str(p["root"]),
        "home": str(state),
        "hooks": str(p["hooks"]),
    }
    return re.sub(r"\{\{(\w+)\}\}", lambda m: values[m.group(1)], CONFIG.read_text())


# --- lifecycle: nginx and fcgiwrap under the lab's process supervisor -----------------------------


def _names(state: Path) -> tuple[str, str]:
    """The supervisor's names for nginx and fcgiwrap: plain for the lab's state, with a digest of the
    directory for any other (a test's), so the two never meet."""
    own = Path(state).absolute() == STATE.absolute()
    suffix = "" if own else "-" + hashlib.sha256(str(Path(state).absolute()).encode()).hexdigest()[:8]
    return f"git-server{suffix}", f"git-fcgiwrap{suffix}"


def _server(state: Path, port: int, pid: int) -> GitServer:
    p = paths(state)
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
        conn.request("GET", HEALTH_PATH, headers={"Authorization": basic_auth(server)})
        status = conn.getresponse().status
    except (OSError, ssl.SSLError, http.client.HTTPException) as exc:
        return f"{server.url}{HEALTH_PATH}: {exc}"
    finally:
        conn.close()
    return None if status == 200 else f"{server.url}{HEALTH_PATH}: HTTP {status}"


def running(state: Path = STATE) -> GitServer | None:
    """The git server when nginx runs and answers an authenticated request, else None."""
    nginx = processes.info(_names(state)[0])
    if not (nginx.alive and nginx.pid and nginx.port):
        return None
    server = _server(state, nginx.port, nginx.pid)
    return server if _healthy(server) is None else None


def basic_auth(server: GitServer) -> str:
    """The Authorization header's value for ``server``'s user (never logged, never in a URL)."""
    pair = f"{server.username}:{server.token()}".encode()
    return "Basic " + base64.b64encode(pair).decode()


def _port_error(port: int) -> GitServerError:
    return GitServerError(
        f"{HOST}:{port} (git server) is already in use{ports.owner(port)}: stop what holds it, "
        "or start the git server on another port"
    )


def _exclusive(state: Path) -> contextlib.AbstractContextManager[None]:
    """One ensure/stop at a time per state directory, across processes."""
    return locks.exclusive(paths(state)["lock"])


def ensure(state: Path = STATE, port: int = PORT) -> GitServer:
    """A running, answering git server for ``state`` on ``port``; starts one only when needed."""
    with _exclusive(state):
        current = running(state)
        if current is not None and current.url.endswith(f":{port}") and _certificate_current(state):
            return current
        return _start(state, port)


def _start(state: Path, port: int) -> GitServer:
    p = paths(state)
    nginx, fcgiwrap = _names(state)
    was = processes.info(nginx).pid
    processes.stop(nginx)  # hung, or on another port
    _wait_released(was, port)
    if ports.taken(port):
        raise _port_error(port)
    _ensure_credentials(p["credentials"])
    _ensure_pki(state)
    creds = _read_credentials(p["credentials"])
    p["root"].mkdir(parents=True, exist_ok=True)
    for sub in ("body", "fastcgi", "proxy", "uwsgi", "scgi"):
        (p["run"] / sub).mkdir(parents=True, exist_ok=True)
    (p["run"] / "health").write_text("ok\n")
    pki.write_private(p["htpasswd"], _htpasswd(creds["username"], creds["token"]))
    pki.write_private(p["conf"], render(state, port).encode(), mode=0o644)
    _write_hooks(p["hooks"], p["webhooks"])
    env = {"PATH": SYSTEM_PATH, "LC_ALL": "C"}
    fcgi_argv = [_installed("fcgiwrap"), "-f", "-c", str(FCGI_PROCESSES), "-s", f"unix:{p['socket']}"]
    fcgi_argv += ["-p", BACKEND]
    nginx_argv = [_installed("nginx"), "-p", str(p["run"]), "-c", str(p["conf"])]
    try:
        if not processes.info(fcgiwrap).alive:
            p["socket"].unlink(missing_ok=True)  # a killed fcgiwrap leaves its socket behind
        processes.start(fcgiwrap, fcgi_argv, env, None, wait=START_TIMEOUT, ready=p["socket"].exists)
        server = _server(state, port, 0)
        ready = lambda: _healthy(server, timeout=1.0) is None  # noqa: E731
        processes.start(nginx, nginx_argv, env, port, wait=START_TIMEOUT, ready=ready)
    except processes.ProcessError as exc:
        _stop(state)
        raise GitServerError(f"git server did not start: {exc} (log: {p['log']})") from None
    pid = processes.info(nginx).pid
    assert pid is not None
    return _server(state, port, pid)


def _installed(program: str) -> str:
    found = shutil.which(program, path=SYSTEM_PATH)
    if found is None:
        raise GitServerError(
            f"{program} is not installed: the lab's git server is Debian's nginx and fcgiwrap "
            "(`./run setup` installs them)"
        )
    return found


def _wait_released(pid: int | None, port: int, timeout: float = 5.0) -> None:
    """A killed nginx is no longer alive to the supervisor a moment before the kernel has closed its
    listening socket: give that moment, so a restart does not find its own port taken."""

    def released() -> waits.Check:
        held = pid and Path(f"/proc/{pid}").exists() and ports.taken(port)
        return waits.pending(f"port {port} still held by pid {pid}") if held else waits.succeeded()

    with contextlib.suppress(waits.WaitTimeout):
        waits.until(released, timeout=timeout, what="the killed git server's port", interval=0.02)


def stop(state: Path = STATE) -> bool:
    """Stop the server of ``state``, leaving no process and no runtime file. True when one was running."""
    with _exclusive(state):
        return _stop(state)


def _stop(state: Path) -> bool:
    stopped = [processes.stop(name) for name in _names(state)]
    shutil.rmtree(paths(state)["run"], ignore_errors=True)
    for name in _names(state):  # nginx and fcgiwrap log to <state>/gitserver.log; an empty file tells nothing
        log = processes.log_path(name)
        if log.exists() and log.stat().st_size == 0:
            log.unlink()
    return any(stopped)


# --- the repositories served (what clients do with them: gitrepos.py) ----------------------------


def repo_name(name: str) -> str:
    """``name`` without .git, or GitServerError when the server would not serve it."""
    name = name.removesuffix(".git")
    if not _REPO_NAME.match(name) or ".." in name:
        raise GitServerError(f"invalid repository name {name!r}: use letters, digits, '.', '_' and '-'")
    return name


def create_repo(server: GitServer, name: str) -> Path:
    """A bare repository ``<name>.git`` with default branch main (left alone when it exists)."""
    path = server.root / f"{repo_name(name)}.git"
    if (path / "HEAD").exists():
        return path
    server.root.mkdir(parents=True, exist_ok=True)
    run_git(None, "init", "--quiet", "--bare", "--initial-branch=main", str(path))
    run_git(path, "config", "http.receivepack", "true")
    return path


def _write_hooks(hooks: Path, webhooks: Path) -> None:
    """The post-receive hook every served repository runs (githook.py: GitLab's push webhook)."""
    hooks.mkdir(parents=True, exist_ok=True)
    script = hooks / "post-receive"
    script.write_text(f"#!/bin/sh\nexec {sys.executable} {GITHOOK} {webhooks}\n")
    script.chmod(0o755)


def run_git(cwd: Path | None, *args: str, env: dict[str, str] | None = None) -> str:
    """git's output, or GitServerError with the end of its message (or its timeout)."""
    cmd = ["git", *args]
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=GIT_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise GitServerError(f"`git {args[0]}` did not finish in {GIT_TIMEOUT:g}s") from None
    if proc.returncode != 0:
        raise GitServerError(f"`git {args[0]}` failed: {(proc.stderr or proc.stdout).strip()[-600:]}")
    return proc.stdout


# --- command line ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m provisioning.lab.services.gitserver", description=__doc__
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help=f"ensure the server of {STATE} on port {PORT} with {', '.join(REPOS)}")
    sub.add_parser("down", help="stop the server, leave no process")
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
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
