"""The Go toolchain of the lab's golang image: the official linux-amd64 distribution as the Go module proxy
serves it (``golang.org/toolchain``, what ``GOTOOLCHAIN`` downloads), fetched and checked against the
checksum database by ``go mod download`` into the module cache."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from provisioning.lab import recipes

MODULE = "golang.org/toolchain"


def goroot(version: str) -> Path:
    """The unpacked toolchain of Go ``version`` (read-only, in the module cache: copy it, never change it)."""
    module = f"{MODULE}@v0.0.1-go{version}.linux-amd64"
    proc = subprocess.run(
        ["go", "mod", "download", "-json", module], capture_output=True, text=True, timeout=900, env=_env()
    )
    try:
        found = json.loads(proc.stdout or "{}")
    except json.JSONDecodeError:
        found = {}
    if proc.returncode != 0 or not found.get("Dir"):
        why = found.get("Error") or proc.stderr.strip()[-400:]
        raise recipes.BuildError(
            f"cannot download the Go toolchain {module}: {why} (is the module proxy reachable?)"
        )
    root = Path(found["Dir"])
    if not (root / "bin" / "go").is_file():
        raise recipes.BuildError(f"{module} at {root} has no bin/go")
    return root


def _env() -> dict[str, str]:
    return {**os.environ, "GOFLAGS": "", "GO111MODULE": "on"}
