"""The lab's kubectl: the one runner (boutique_suite.clients.kubectl) with the pinned build and the lab's
kubeconfig.

Module-level ``run``/``apply``/``apply_objects`` use it; ``Kubectl`` and ``KubectlError`` are the runner's.
"""

from __future__ import annotations

from boutique_suite.clients.kubectl import Kubectl, KubectlError, stream
from provisioning.lab import build, layout

__all__ = ["Kubectl", "KubectlError", "apply", "apply_objects", "lab", "run"]

FIELD_MANAGER = "boutique-lab"


def lab() -> Kubectl:
    """The pinned kubectl against the lab's kubeconfig."""
    return Kubectl([str(build.bin_dir("kubernetes") / "kubectl"), "--kubeconfig", str(layout.KUBECONFIG)])


def run(*args: str, stdin: str | None = None, timeout: float | None = None) -> str:
    return lab().run(*args, stdin=stdin, timeout=timeout)


def apply(*args: str, stdin: str | None = None) -> None:
    """Server-side apply (idempotent): ``apply("-k", dir)``, ``apply("-f", path)``."""
    run("apply", "--server-side", "--force-conflicts", f"--field-manager={FIELD_MANAGER}", *args, stdin=stdin)


def apply_objects(objects: list[dict]) -> None:
    apply("-f", "-", stdin=stream(objects))
