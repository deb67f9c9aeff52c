"""A lab node's cgroups: ``boutique-lab-<name>`` in every cgroup v1 controller (the kubelet's cgroupRoot,
which the machines' processes join too), made before the node starts, emptied and removed when it stops."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
from pathlib import Path

from boutique_suite.run import waits
from provisioning.lab import processes

CGROUP_ROOT = Path("/sys/fs/cgroup")


def cgroup_parent(name: str) -> str:
    return f"boutique-lab-{name}"


def controllers() -> list[Path]:
    return [
        p
        for p in sorted(CGROUP_ROOT.iterdir())
        if p.is_dir() and not p.is_symlink() and (p / "cgroup.procs").exists()
    ]


def present(name: str) -> list[Path]:
    """The node's cgroups that exist, one per controller."""
    return [c / cgroup_parent(name) for c in controllers() if (c / cgroup_parent(name)).exists()]


def ensure_cgroups(name: str) -> None:
    """The kubelet's cgroupRoot must exist in every v1 controller; a new cpuset starts empty."""
    for controller in controllers():
        path = controller / cgroup_parent(name)
        path.mkdir(exist_ok=True)
        if controller.name == "cpuset":
            for knob in ("cpuset.cpus", "cpuset.mems"):
                if not (path / knob).read_text().strip():
                    (path / knob).write_text((controller / knob).read_text())


def join_cgroups(name: str) -> None:
    """Move the calling process into the node's cgroups (a ``preexec`` of processes.start)."""
    for controller in controllers():
        (controller / cgroup_parent(name) / "cgroup.procs").write_text(str(os.getpid()))


def remove_cgroups(name: str) -> list[str]:
    """Kill what is left inside the node's cgroups, then remove them deepest first."""
    removed = []
    for controller in controllers():
        top = controller / cgroup_parent(name)
        if not top.exists():
            continue
        dirs = sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True)
        for cgroup in [*dirs, top]:
            with contextlib.suppress(waits.WaitTimeout):  # best effort, 5 s per cgroup
                waits.until(functools.partial(_emptied, cgroup), timeout=5, what=str(cgroup), interval=0.1)
        removed.append(str(top))
    return removed


def _emptied(cgroup: Path) -> waits.Check:
    """Kill what runs in ``cgroup`` and remove it; pending while it still exists."""
    processes.kill(_pids_in(cgroup), signal.SIGKILL)
    with contextlib.suppress(OSError):
        cgroup.rmdir()
    return waits.pending("still there") if cgroup.exists() else waits.succeeded()


def _pids_in(cgroup: Path) -> list[int]:
    with contextlib.suppress(OSError):
        return [int(p) for p in (cgroup / "cgroup.procs").read_text().split()]
    return []
