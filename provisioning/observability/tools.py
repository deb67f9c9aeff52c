"""Runs promtool and amtool, failing with the fix when they are missing."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

INSTALL_HINT = "apt-get install -y prometheus prometheus-alertmanager"


class ToolMissingError(RuntimeError):
    pass


def require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise ToolMissingError(f"{tool} is not on PATH; install it with: {INSTALL_HINT}")
    return path


def run(
    tool: str, *args: str, cwd: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require(tool), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
