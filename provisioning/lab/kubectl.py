"""The pinned kubectl against the lab's kubeconfig: how the lab's platform modules change the cluster."""

from __future__ import annotations

import subprocess

import yaml

from provisioning.lab import build, manager

FIELD_MANAGER = "boutique-lab"


class KubectlError(Exception):
    """kubectl refused; the message is its own, first 400 characters."""


def run(*args: str, stdin: str | None = None, timeout: float = 120) -> str:
    cmd = [str(build.bin_dir("kubernetes") / "kubectl"), "--kubeconfig", str(manager.KUBECONFIG), *args]
    proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise KubectlError(f"kubectl {' '.join(args[:2])}: {proc.stderr.strip()[:400]}")
    return proc.stdout


def apply(*args: str, stdin: str | None = None) -> None:
    """Server-side apply (idempotent): ``apply("-k", dir)``, ``apply("-f", path)``."""
    run("apply", "--server-side", "--force-conflicts", f"--field-manager={FIELD_MANAGER}", *args, stdin=stdin)


def apply_objects(objects: list[dict]) -> None:
    apply("-f", "-", stdin=yaml.safe_dump_all(objects))
