"""Layer 0, foundation: hosts with static IPs and names, time sync, resources.

lab: the local machine only (resources and tools the lab needs); node checks are onprem only.
onprem: every host answers over ssh, then the ``foundation`` role (provisioning/ansible/phase0.yml) runs
against the inventory made from the target file, and testinfra checks what it set: swap off, chrony
running, every host's name resolving on every host.
"""

from __future__ import annotations

import os
import shutil

from boutique_suite.clients import hosts
from boutique_suite.context.sites import through_site
from boutique_suite.run.targets import Target
from provisioning import playbooks
from provisioning.layer import LayerState

PHASE = 0
NAME = "foundation"
LAB_MIN_CPUS = 2
LAB_MIN_MEMORY_GIB = 4
LAB_MIN_FREE_DISK_GIB = 5
NEEDS: tuple[int, ...] = ()


needs, check, ensure = through_site(PHASE)


def _memory_gib() -> float:
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / (1024 * 1024)
    return 0.0


def check_local_host() -> LayerState:
    problems = []
    cpus = os.cpu_count() or 0
    memory = _memory_gib()
    cache = os.path.expanduser("~")
    free = shutil.disk_usage(cache).free / 2**30
    if cpus < LAB_MIN_CPUS:
        problems.append(f"{cpus} CPUs (need {LAB_MIN_CPUS})")
    if memory < LAB_MIN_MEMORY_GIB:
        problems.append(f"{memory:.1f} GiB memory (need {LAB_MIN_MEMORY_GIB})")
    if free < LAB_MIN_FREE_DISK_GIB:
        problems.append(f"{free:.1f} GiB free in {cache} (need {LAB_MIN_FREE_DISK_GIB})")
    components = {"cpus": str(cpus), "memory_gib": f"{memory:.1f}", "free_disk_gib": f"{free:.0f}"}
    detail = "; ".join(problems) or f"{cpus} CPUs, {memory:.1f} GiB memory, {free:.0f} GiB free disk"
    return LayerState(PHASE, NAME, not problems, detail, components)


def check_onprem(target: Target) -> LayerState:
    if not target.builds_hosts:
        detail = "the target lists no hosts: nothing for the suite to build or check over ssh"
        return LayerState(PHASE, NAME, True, detail)
    if why := hosts.unreachable(target):
        return LayerState(PHASE, NAME, False, why)
    problems = []
    for name in target.hosts:
        host = hosts.testinfra_host(target, name)
        if host.run("swapon --noheadings --show").stdout.strip():
            problems.append(f"{name}: swap is on")
        if not host.service("chrony").is_running:
            problems.append(f"{name}: chrony is not running")
        # /etc/hosts itself: resolving a missing name would wait on DNS, and phase 0 wants the file anyway
        names = hosts.hosts_file(host.run("cat /etc/hosts 2>/dev/null || true").stdout)
        unresolved = [other for other, entry in target.hosts.items() if names.get(other) != str(entry.ip)]
        if unresolved:
            problems.append(f"{name}: does not resolve {', '.join(unresolved)}")
    detail = "; ".join(problems) or f"{len(target.hosts)} hosts answer over ssh, swap off, chrony running"
    return LayerState(PHASE, NAME, not problems, detail)


def ensure_onprem(target: Target) -> LayerState:
    return playbooks.build_layer(target, PHASE, NAME, "phase0.yml", check_onprem, list(target.hosts))
