"""The lab's BuildKit: ``buildkitd`` built from the pinned module (versions.toml), as root with the runc
worker and overlayfs snapshots, on a unix socket. app-repo's build job reaches it as ``BUILDKIT_HOST``, the
way a GitLab job reaches a buildkitd service on-prem.

- The Dockerfiles' base images are pulled under their upstream names (``docker.io/library/golang``,
  ``gcr.io/distroless/...``) from the lab's mirror, trusting only the platform CA: ``config_toml``.
- RUN steps share the host's network (no CNI for builds): a Go build stage fetches its modules from the
  module proxy, as the lab's own builds do.
- Its cache stays under ``<state>/root`` between labs, so an unchanged service rebuilds from cache. ``stop``
  ends it and unmounts whatever a killed buildkitd left mounted under its root.

Phase 5's ensure starts it (through the lab's mirror, ``catalog.running()``); ``lab down`` stops it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from provisioning.lab import build, locks, processes
from provisioning.lab.services import registry

PROCESS = "buildkitd"
STATE = processes.PLATFORM / "buildkit"
START_TIMEOUT = 60.0


class BuildKitError(Exception):
    """buildkitd cannot be started or answered unexpectedly; the message says what happened."""


@dataclass(frozen=True)
class BuildKit:
    address: str  # unix://<state>/buildkitd.sock: BUILDKIT_HOST for buildctl
    state: Path
    pid: int | None
    log: Path


def binaries() -> Path:
    """The directory holding buildkitd and buildctl (built once per pinned version)."""
    return build.ensure_all(["buildkit"])["buildkit"]


def address(state: Path = STATE) -> str:
    return f"unix://{state / 'buildkitd.sock'}"


def config_toml(state: Path, mirror: registry.Registry) -> str:
    """buildkitd.toml: the runc worker only, host network for RUN, every mirrored upstream registry at the
    lab's mirror, which is trusted through the platform CA and nothing else."""
    mirror_host = f"{mirror.host}:{mirror.port}"
    lines = [
        f'root = "{state / "root"}"',
        "",
        "[grpc]",
        f'  address = ["{address(state)}"]',
        "",
        "[worker.oci]",
        "  enabled = true",
        '  snapshotter = "overlayfs"',
        '  networkMode = "host"',
        "  gc = true",
        "",
        "[worker.containerd]",
        "  enabled = false",
    ]
    for upstream in registry.MIRRORED_UPSTREAMS:
        lines += ["", f'[registry."{upstream}"]', f'  mirrors = ["{mirror_host}"]']
    # https even on a loopback address (buildkitd would try plain http there), verified with the CA only
    lines += ["", f'[registry."{mirror_host}"]', "  http = false", f'  ca = ["{mirror.ca_file}"]']
    return "\n".join(lines) + "\n"


def can_run() -> bool:
    """buildkitd's runc worker needs root (overlayfs mounts, namespaces) and runc."""
    return os.geteuid() == 0 and shutil.which("runc") is not None


def ensure(mirror: registry.Registry, state: Path = STATE) -> BuildKit:
    """A running buildkitd pulling through ``mirror``; starts one only when needed (idempotent: a running one
    with the same config is returned as is)."""
    if not can_run():
        raise BuildKitError("buildkitd's runc worker needs root and runc (Debian's runc: ./run setup)")
    bin_dir = binaries()
    with locks.exclusive(state / "buildkit.lock"):
        (state / "root").mkdir(parents=True, exist_ok=True)
        config = state / "buildkitd.toml"
        text = config_toml(state, mirror)
        if not config.exists() or config.read_text() != text:
            config.write_text(text)
        argv = [str(bin_dir / "buildkitd"), "--config", str(config)]
        try:
            proc = processes.start(
                PROCESS,
                argv,
                {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")},  # runc from Debian
                None,
                wait=START_TIMEOUT,
                not_before=config.stat().st_mtime,
                ready=lambda: answers(state),
            )
        except processes.ProcessError as exc:
            raise BuildKitError(str(exc)) from None
        return BuildKit(address(state), state, proc.pid, proc.log)


def answers(state: Path = STATE) -> bool:
    """True when buildkitd lists its worker over the socket."""
    if not (state / "buildkitd.sock").exists():
        return False
    proc = subprocess.run(
        [str(binaries() / "buildctl"), "--addr", address(state), "debug", "workers"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    return proc.returncode == 0 and "linux/amd64" in proc.stdout


def running(state: Path = STATE) -> BuildKit | None:
    """The running buildkitd, or None."""
    proc = processes.info(PROCESS)
    if not proc.alive or not answers(state):
        return None
    return BuildKit(address(state), state, proc.pid, proc.log)


def leftover_mounts(state: Path = STATE) -> list[str]:
    """Mount points under buildkitd's root, deepest first."""
    root = str((state / "root").resolve())
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == root or point.startswith(root + "/"):
            found.append(point)
    return sorted(found, key=len, reverse=True)


def leftover_containers(state: Path = STATE) -> list[str]:
    """The runc containers of RUN steps a killed buildkitd left (its runc worker's state directory)."""
    executor = _executor(state)
    if not executor.is_dir():
        return []
    listed = subprocess.run(
        ["runc", "--root", str(executor), "list", "--quiet"], capture_output=True, text=True, timeout=30
    )
    return listed.stdout.split() if listed.returncode == 0 else []


def _executor(state: Path) -> Path:
    return state / "root" / "runc-overlayfs" / "executor"


def stop(state: Path = STATE) -> bool:
    """Stop buildkitd (its cache stays), then kill the RUN steps' containers and unmount what a killed one
    left. True when one was running."""
    stopped = processes.stop(PROCESS, grace=20)
    for container in leftover_containers(state):
        subprocess.run(
            ["runc", "--root", str(_executor(state)), "delete", "--force", container],
            capture_output=True,
            timeout=30,
        )
    for point in leftover_mounts(state):
        subprocess.run(["umount", "--lazy", point], capture_output=True, timeout=30)
    return stopped
