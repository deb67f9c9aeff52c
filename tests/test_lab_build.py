"""Building the lab's binaries: no Go toolchain, an interrupted build, a corrupt cache entry.

Builds go to a temporary cache so the real one is never touched; Go's own build cache keeps the
rebuilds short.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from provisioning.lab import build, recipes

pytestmark = pytest.mark.standalone
ROOT = Path(__file__).resolve().parent.parent
REAL_CACHE = recipes.CACHE_ROOT


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(recipes, "CACHE_ROOT", tmp_path)
    return tmp_path


def cli(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "provisioning.lab", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def test_missing_go_toolchain_is_one_clear_line(tmp_path: Path) -> None:
    python_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": python_dir, "BOUTIQUE_LAB_CACHE": str(tmp_path)}
    proc = cli("build", env=env)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert err.strip().splitlines() == [
        "lab build: the Go toolchain is missing: install Go >= 1.26 (https://go.dev/doc/install) "
        "and put `go` on PATH"
    ], err
    assert "Traceback" not in out + err


def test_interrupted_build_is_never_used_and_is_rebuilt(cache: Path) -> None:
    kwok = recipes.components()["kwok"]
    env = {**os.environ, "BOUTIQUE_LAB_CACHE": str(cache)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "provisioning.lab.build", "kwok"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    log = cache / f"build-kwok-{kwok.version}.log"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and "go build" not in (log.read_text() if log.exists() else ""):
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the build and its go children, as a power cut would
    proc.wait(timeout=30)
    assert list(cache.glob(".build-kwok@*")), "the interrupted build should leave only its scratch dir"
    assert build.verify(kwok) == "not built"

    build.ensure_all(["kwok"])
    assert build.verify(kwok) is None
    assert not list(cache.glob(".build-*@*"))


def test_corrupt_cache_entry_is_detected_and_rebuilt(cache: Path) -> None:
    kwok = recipes.components()["kwok"]
    built = REAL_CACHE / kwok.directory.name
    if (built / build.MANIFEST).exists():
        shutil.copytree(built, kwok.directory)
    else:
        build.ensure_all(["kwok"])  # into the temporary cache
    assert build.verify(kwok) is None
    binary = kwok.directory / "bin" / "kwokctl"
    data = bytearray(binary.read_bytes())
    data[len(data) // 2] ^= 0xFF
    binary.write_bytes(bytes(data))
    assert build.verify(kwok) == "kwokctl corrupt (sha256 mismatch)"

    build.ensure_all(["kwok"])
    assert build.verify(kwok) is None
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30).stdout
    assert kwok.version in out
