"""The lab's repositories as a client of the lab's Git server uses them: the environment a git client
needs, a branch's head and tree, commits pushed over HTTPS, and the push webhooks and their deliveries.
The server itself (its processes, credentials, certificate and bare repositories) is gitserver.py's."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from provisioning.lab import pki
from provisioning.lab.services.gitserver import (
    GitServer,
    GitServerError,
    basic_auth,
    paths,
    repo_name,
    run_git,
)

AUTHOR = ("boutique-suite", "suite@boutique.local")


# --- push webhooks --------------------------------------------------------------------------------


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
    path = paths(server.root.parent)["webhooks"]
    try:
        current = json.loads(path.read_text())
    except (OSError, ValueError):
        current = {}
    hook = {"repo": repo_name(repo), "url": url, "token": token}
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
    path = paths(server.root.parent)["deliveries"]
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    found = [json.loads(line) for line in lines if line.strip()]
    return [d for d in found if after is None or d.get("after") == after]


# --- git as a client -----------------------------------------------------------------------------


def client_env(server: GitServer, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a git client of ``server``: trusts the lab CA and authenticates with an extra
    header passed as environment config, so the token is neither in a URL, on a command line nor in
    any .git/config (git redacts the header in its traces)."""
    env = dict(os.environ if base is None else base)
    extra = {
        "http.sslCAInfo": str(server.ca_file),
        "http.extraHeader": f"Authorization: {basic_auth(server)}",
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


def head(server: GitServer, repo: str, branch: str = "main") -> str:
    """The commit SHA of ``branch`` in ``repo`` as the server reports it (git ls-remote)."""
    out = run_git(None, "ls-remote", server.repo_url(repo), f"refs/heads/{branch}", env=client_env(server))
    if not out.strip():
        raise GitServerError(f"{repo} has no branch {branch!r} yet")
    return out.split()[0]


def tree(server: GitServer, repo: str, branch: str = "main") -> str:
    """The tree hash of ``branch``: equal trees are equal content, whatever commits led there."""
    bare = server.root / f"{repo_name(repo)}.git"
    return run_git(None, "--git-dir", str(bare), "rev-parse", f"{branch}^{{tree}}").strip()


def commit_tree(server: GitServer, repo: str, source_dir: Path, message: str, *, subdir: str = "") -> str:
    """Make ``source_dir``'s content the tree of main (or of ``subdir`` in it), push, return the SHA.
    Without changes nothing is committed and the current head is returned."""
    source_dir = Path(source_dir)
    if not source_dir.is_dir():
        raise GitServerError(f"{source_dir} is not a directory")
    env = client_env(server)
    env.update(author_env())
    with tempfile.TemporaryDirectory(prefix="boutique-git-") as tmp:
        work = Path(tmp) / "work"
        run_git(None, "clone", "--quiet", server.repo_url(repo), str(work), env=env)
        empty = subprocess.run(["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=work, capture_output=True)
        if empty.returncode != 0:
            run_git(work, "symbolic-ref", "HEAD", "refs/heads/main", env=env)
        _replace_tree(work, source_dir, subdir)
        run_git(work, "add", "--all", env=env)
        changed = subprocess.run(["git", "diff", "--cached", "--quiet"], cwd=work).returncode != 0
        if not changed and empty.returncode == 0:
            return run_git(work, "rev-parse", "HEAD", env=env).strip()
        run_git(
            work, "-c", "commit.gpgsign=false", "commit", "--quiet", "--allow-empty", "-m", message, env=env
        )
        run_git(work, "push", "--quiet", "origin", "HEAD:refs/heads/main", env=env)
        return run_git(work, "rev-parse", "HEAD", env=env).strip()


def author_env() -> dict[str, str]:
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
