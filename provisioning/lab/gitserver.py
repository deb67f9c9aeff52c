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
clients get it through the environment (``client_env``), never in a URL.

    python -m provisioning.lab.gitserver up | down     # ensure() / stop() on the default state
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
import tempfile
from dataclasses import dataclass
from pathlib import Path

from boutique_suite import waits
from provisioning.lab import hosts, locks, pki, ports, processes

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
        return f"https://{address}:{self.url.rsplit(':', 1)[1]}/{_repo_name(name)}.git"


# --- files under the state directory --------------------------------------------------------------


def _paths(state: Path) -> dict[str, Path]:
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


def _htpasswd(username: str, token: str) -> bytes:
    """nginx's salted SHA-1 entry ({SSHA}): the token itself never reaches nginx's files."""
    salt = secrets.token_bytes(8)
    digest = hashlib.sha1(token.encode() + salt).digest()
    return f"{username}:{{SSHA}}{base64.b64encode(digest + salt).decode()}\n".encode()


def addresses() -> list[str]:
    """The addresses the server's certificate names: loopback, and the lab's gateway."""
    return [HOST, hosts.network().gateway]


def _ensure_pki(state: Path) -> None:
    p = _paths(state)
    ca = pki.ensure_ca(p["ca_crt"].parent)
    server = p["crt"].with_suffix("")
    pki.ensure_server_cert(ca, server, names=["localhost"], ips=addresses(), common_name="boutique-lab git")


def _certificate_current(state: Path) -> bool:
    """The certificate nginx serves names the addresses it must (a server started before a change of them
    is started again)."""
    crt = _paths(state)["crt"]
    return crt.exists() and pki.subject_alt_names(crt) == {"localhost", *addresses()}


def render(state: Path, port: int) -> str:
    """The nginx configuration for ``state`` on ``port``: the template with every {{value}} filled in."""
    p = _paths(state)
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
    """The git server when nginx runs and answers an authenticated request, else None."""
    nginx = processes.info(_names(state)[0])
    if not (nginx.alive and nginx.pid and nginx.port):
        return None
    server = _server(state, nginx.port, nginx.pid)
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
        current = running(state)
        if current is not None and current.url.endswith(f":{port}") and _certificate_current(state):
            return current
        return _start(state, port)


def _start(state: Path, port: int) -> GitServer:
    p = _paths(state)
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
    shutil.rmtree(_paths(state)["run"], ignore_errors=True)
    for name in _names(state):  # nginx and fcgiwrap log to <state>/gitserver.log; an empty file tells nothing
        log = processes.log_path(name)
        if log.exists() and log.stat().st_size == 0:
            log.unlink()
    return any(stopped)


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


def _write_hooks(hooks: Path, webhooks: Path) -> None:
    """The post-receive hook every served repository runs (githook.py: GitLab's push webhook)."""
    hooks.mkdir(parents=True, exist_ok=True)
    script = hooks / "post-receive"
    script.write_text(f"#!/bin/sh\nexec {sys.executable} {GITHOOK} {webhooks}\n")
    script.chmod(0o755)


def add_webhook(
    server: GitServer,
    repo: str,
    url: str,
    token: str,
    base_url: str | None = None,
    ca_file: Path | None = None,
) -> bool:
    """Register a push webhook for ``repo`` (as a GitLab project hook: every push to it is POSTed to
    ``url`` with ``token`` in X-Gitlab-Token). The events name the repository under ``base_url`` (default:
    the server's URL; the receiver matches it against the URL it reads the repository at), and an HTTPS
    receiver's certificate is verified against ``ca_file`` (default: the system's trust store).
    Idempotent: True when this changed the registration."""
    path = _paths(server.root.parent)["webhooks"]
    try:
        current = json.loads(path.read_text())
    except (OSError, ValueError):
        current = {}
    hook = {"repo": _repo_name(repo), "url": url, "token": token}
    others = [h for h in current.get("hooks", []) if (h.get("repo"), h.get("url")) != (hook["repo"], url)]
    wanted = {"base_url": base_url or server.url, "ca_file": str(ca_file) if ca_file else None}
    wanted["hooks"] = [*others, hook]
    if wanted == current:
        return False
    pki.write_private(path, json.dumps(wanted, indent=2).encode())
    return True


def webhook_deliveries(server: GitServer, after: str | None = None) -> list[dict[str, str]]:
    """The push webhook's deliveries, oldest first (each: at, repo, ref, after, url, status), optionally
    only those of the push that moved a branch to commit ``after``."""
    path = _paths(server.root.parent)["deliveries"]
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    found = [json.loads(line) for line in lines if line.strip()]
    return [d for d in found if after is None or d.get("after") == after]


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
