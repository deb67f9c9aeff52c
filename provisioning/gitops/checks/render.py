"""kustomize builds with the kustomize built into the lab's pinned kubectl."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from provisioning.gitops import ROOT
from provisioning.gitops.checks import Finding
from provisioning.lab import build

# Every kustomization a user or Argo CD builds: overlays, the app-of-apps and what its Applications sync.
BUILDS = (
    "base",
    "overlays/dev",
    "overlays/prod",
    "bootstrap",
    "platform",
    "platform/config/metallb",
    "platform/config/argocd",
    "platform/config/monitoring",
)
OVERLAYS = {"dev": "boutique-dev", "prod": "boutique-prod"}


class BuildFailed(Exception):
    pass


def kubectl() -> Path:
    return build.bin_dir("kubernetes") / "kubectl"


def kustomize(path: str, root: Path = ROOT) -> list[dict]:
    """Render ``root/path`` and return its objects; BuildFailed carries kustomize's message."""
    proc = subprocess.run(
        [str(kubectl()), "kustomize", str(root / path)], capture_output=True, text=True, timeout=120
    )
    if proc.returncode != 0:
        raise BuildFailed(proc.stderr.strip() or proc.stdout.strip())
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def check(root: Path = ROOT, builds: tuple[str, ...] = BUILDS) -> list[Finding]:
    findings = []
    for path in builds:
        try:
            kustomize(path, root)
        except BuildFailed as exc:
            findings.append(Finding("Kustomization", "", path, "kustomize-build", str(exc)))
    return findings
