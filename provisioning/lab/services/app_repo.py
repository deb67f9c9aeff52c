"""What the lab's app-repo holds: ``provisioning/cicd/app-repo`` (each service's Dockerfile, the CI scripts,
``.gitlab-ci.yml``) with one service made buildable from source. The Online Boutique's sources cannot be
fetched here, so ``src/frontend`` holds the stand-in's own Go source (``provisioning/lab/standin``, which
answers as the frontend), its modules vendored (the build stage needs no network, as on an air-gapped site)
and the stand-in's multi-stage Dockerfile in place of the frontend's.

The tree is made once per content under ``~/.cache/boutique-lab/app-repo/<digest>``: the same sources give
the same tree, so publishing it again makes no commit.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from provisioning import cicd
from provisioning.lab import recipes

ROOT = Path(__file__).resolve().parents[3]
SOURCE = cicd.APP_REPO
STANDIN = ROOT / "provisioning" / "lab" / "standin"
BUILT_FROM_SOURCE = "frontend"  # the service the lab's pipeline really builds (from the stand-in's source)
CACHE = recipes.CACHE_ROOT / "app-repo"


class AppRepoError(RuntimeError):
    """The lab's app-repo content cannot be made; the message says why."""


def _files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def digest() -> str:
    """A digest of every file the content is made from."""
    h = hashlib.sha256()
    for base in (cicd.app_source(), STANDIN):
        for path in _files(base):
            h.update(f"{base.name}/{path.relative_to(base)}\0".encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def content() -> Path:
    """The directory to publish as app-repo (made when missing)."""
    tree = CACHE / digest()
    if tree.is_dir():
        return tree
    partial = tree.with_name(tree.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(cicd.app_source(), partial, ignore=shutil.ignore_patterns("__pycache__"))
    service = partial / "src" / BUILT_FROM_SOURCE
    for path in _files(STANDIN):
        target = service / path.relative_to(STANDIN)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    _vendor(service)
    for stale in CACHE.iterdir():  # a mutant's tree keeps the suite's own one (and goes when that changes)
        if stale.name != partial.name and cicd.APP_SOURCE_ENV not in os.environ:
            shutil.rmtree(stale, ignore_errors=True)
    partial.rename(tree)
    return tree


def _vendor(module: Path) -> None:
    env = {**os.environ, "GOFLAGS": "-mod=mod", "GOWORK": "off", "GOTOOLCHAIN": "local"}
    proc = subprocess.run(
        ["go", "mod", "vendor"], cwd=module, env=env, capture_output=True, text=True, timeout=600
    )
    if proc.returncode != 0:
        raise AppRepoError(
            f"go mod vendor for the stand-in's source failed: {proc.stderr.strip()[-400:]} "
            "(is the Go module proxy reachable?)"
        )
