"""The lab's buildkitd for real: ensured twice it is the same process, and a buildkitd killed in the middle
of a build leaves overlay mounts under its root that ``stop`` (what ``lab down`` calls) removes, after which
it starts again and builds from the mirrored base images."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from boutique_suite.run import waits
from provisioning.lab import manager, processes
from provisioning.lab.services import buildkit, catalog, upstream_images

pytestmark = pytest.mark.lab
SLOW_BUILD = "FROM golang:{tag}\nRUN echo building && sleep 60\n"


@pytest.fixture(scope="module")
def kit() -> buildkit.BuildKit:
    manager.up()
    mirror = catalog.running()
    for reference in upstream_images.BUILD_BASE_IMAGES:
        upstream_images.push(mirror, reference)
    return buildkit.ensure(mirror)


def build(context: Path, kit: buildkit.BuildKit) -> subprocess.Popen[str]:
    argv = [str(buildkit.binaries() / "buildctl"), "--addr", kit.address, "build"]
    argv += ["--frontend", "dockerfile.v0", "--no-cache"]
    argv += ["--local", f"context={context}", "--local", f"dockerfile={context}"]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_buildkitd_is_ensured_once(kit: buildkit.BuildKit) -> None:
    again = buildkit.ensure(catalog.running())
    assert again.pid == kit.pid
    assert buildkit.running() == again


def test_a_buildkitd_killed_mid_build_leaves_no_mount_after_stop(
    kit: buildkit.BuildKit, tmp_path: Path
) -> None:
    tag = upstream_images.BUILD_BASE_IMAGES[0].rpartition(":")[2]
    (tmp_path / "Dockerfile").write_text(SLOW_BUILD.format(tag=tag))
    client = build(tmp_path, kit)
    try:

        def mounted() -> waits.Check:
            if client.poll() is not None:
                return waits.failed(f"the build ended first: {client.stdout.read() if client.stdout else ''}")
            found = buildkit.leftover_mounts()
            if not found:
                return waits.pending("no mount under buildkitd's root yet")
            return waits.succeeded(f"{len(found)} mounts", found)

        waits.until(mounted, timeout=120, what="the build's RUN step mounted under buildkitd's root")
        assert kit.pid is not None
        processes.kill([kit.pid], signal.SIGKILL, group=True)
        processes.wait_gone([kit.pid], 10)
        assert buildkit.leftover_mounts(), "a killed buildkitd leaves its mounts"
        buildkit.stop()
        assert buildkit.leftover_mounts() == []
        assert buildkit.leftover_containers() == []
    finally:
        client.kill()
        client.wait(10)
    restarted = buildkit.ensure(catalog.running())
    assert restarted.pid != kit.pid
    result = subprocess.run(
        [str(buildkit.binaries() / "buildctl"), "--addr", restarted.address, "du"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr
