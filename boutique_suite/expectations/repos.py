"""Phase 1's repository split: app-repo holds code, Dockerfiles and CI; gitops-repo holds manifests.

Both are cloned over HTTPS as the target names them: on the lab from its git server (lab CA, token header),
on-prem from GitLab (gitlab.url, the CA in gitlab.ca_file, the token in gitlab.token_env). The token goes
through git's environment config, never into a URL, a command line or a .git/config.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from boutique_suite.run.targets import Target

SOURCE_SUFFIXES = frozenset({".go", ".py", ".js", ".ts", ".cs", ".java", ".csproj", ".proto"})


def git_env(extra: dict[str, str]) -> dict[str, str]:
    """The process environment with git config ``extra`` (never on a command line or in .git/config)."""
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_COUNT": str(len(extra))}
    for n, (key, value) in enumerate(extra.items()):
        env[f"GIT_CONFIG_KEY_{n}"], env[f"GIT_CONFIG_VALUE_{n}"] = key, value
    return env


def remote(target: Target, repo: str) -> tuple[str, dict[str, str]]:
    """(HTTPS URL, client environment) of ``repo`` on the target's git server."""
    from boutique_suite.context.sites import site_for

    return site_for(target).git_remote(repo)


@contextmanager
def clone(target: Target, repo: str) -> Iterator[Path]:
    url, env = remote(target, repo)
    assert url.startswith("https://"), f"{repo} is served at {url}, not over HTTPS"
    with tempfile.TemporaryDirectory(prefix=f"{repo}-") as tmp:
        work = Path(tmp) / repo
        proc = subprocess.run(
            ["git", "-c", "http.sslVerify=true", "clone", "--quiet", "--depth=1", url, str(work)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, f"cloning {repo} over HTTPS failed: {proc.stderr.strip()[-300:]}"
        yield work


def files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and ".git" not in p.relative_to(root).parts)


def is_manifest(path: Path) -> bool:
    """A YAML file holding a Kubernetes object (apiVersion and kind)."""
    if path.suffix not in (".yaml", ".yml") or path.name == ".gitlab-ci.yml":
        return False
    try:
        docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    except (yaml.YAMLError, UnicodeDecodeError):
        return False
    return any(isinstance(d, dict) and {"apiVersion", "kind"} <= set(d) for d in docs)


def expect_app_repo_content(root: Path) -> list[str]:
    """Each service under src/ has its Dockerfile and source files; .gitlab-ci.yml at the root; no
    Kubernetes manifest anywhere. Returns the services."""
    services = (
        sorted(p.name for p in (root / "src").iterdir() if p.is_dir()) if (root / "src").is_dir() else []
    )
    assert services, "app-repo has no src/<service> directory"
    assert (root / ".gitlab-ci.yml").is_file(), "app-repo has no .gitlab-ci.yml"
    for service in services:
        own = files(root / "src" / service)
        assert any(p.name == "Dockerfile" for p in own), f"src/{service} has no Dockerfile"
        assert any(p.suffix in SOURCE_SUFFIXES for p in own), f"src/{service} holds no source file"
    manifests = [str(p.relative_to(root)) for p in files(root) if is_manifest(p)]
    assert not manifests, f"app-repo holds Kubernetes manifests: {manifests[:5]}"
    return services


def expect_gitops_repo_content(root: Path, *dirs: str) -> None:
    """``dirs`` exist; no Dockerfile and no application source file anywhere."""
    missing = [d for d in dirs if not (root / d.rstrip("/")).is_dir()]
    assert not missing, f"gitops-repo has no {missing}"
    code = [
        str(p.relative_to(root)) for p in files(root) if p.name == "Dockerfile" or p.suffix in SOURCE_SUFFIXES
    ]
    assert not code, f"gitops-repo holds application source or Dockerfiles: {code[:5]}"


def expect_both_clone(target: Target, *repos: str) -> None:
    for repo in repos:
        with clone(target, repo) as work:
            assert (work / ".git").is_dir() and files(work), f"{repo} cloned empty"


def expect_app_repo_content_in(target: Target) -> list[str]:
    """expect_app_repo_content on a fresh clone of the target's app-repo."""
    with clone(target, "app-repo") as root:
        return expect_app_repo_content(root)
