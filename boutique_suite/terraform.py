"""Terraform modules of the platform (provisioning/terraform/*): formatted and valid, checked offline with
the terraform CLI. Until the repository has modules, or where setup installed no terraform, the scenario
skips with that reason."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from boutique_suite.targets import ROOT

MODULES = ROOT / "provisioning" / "terraform"
NO_MODULES = (
    "no Terraform module in the repository yet (provisioning/terraform/ holds no *.tf file) and "
    "./run setup installs no terraform binary: nothing for terraform fmt / validate to check"
)
NO_BINARY = "terraform is not installed (./run setup does not install it): put terraform on PATH"


def modules(root: Path = MODULES) -> list[Path]:
    """Every directory under ``root`` holding *.tf files (a Terraform module)."""
    if not root.is_dir():
        return []
    return sorted({p.parent for p in root.rglob("*.tf") if ".terraform" not in p.parts})


def unavailable(root: Path = MODULES) -> str | None:
    """Why the Terraform checks cannot run here, or None."""
    if not modules(root):
        return NO_MODULES
    if shutil.which("terraform") is None:
        return NO_BINARY
    return None


def _terraform(module: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["terraform", f"-chdir={module}", *args], capture_output=True, text=True, timeout=timeout
    )


def expect_formatted(root: Path = MODULES) -> None:
    unformatted = {}
    for module in modules(root):
        proc = _terraform(module, "fmt", "-check", "-recursive", "-no-color")
        if proc.returncode != 0:
            unformatted[str(module.relative_to(root))] = proc.stdout.split() or proc.stderr.strip()[:200]
    assert not unformatted, f"terraform fmt would change: {unformatted}"


def expect_valid(root: Path = MODULES) -> None:
    invalid = {}
    for module in modules(root):
        init = _terraform(module, "init", "-backend=false", "-input=false", "-no-color")
        proc = init if init.returncode != 0 else _terraform(module, "validate", "-no-color")
        if proc.returncode != 0:
            invalid[str(module.relative_to(root))] = (proc.stderr or proc.stdout).strip()[-400:]
    assert not invalid, f"terraform validate failed: {invalid}"
