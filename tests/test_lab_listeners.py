"""Nothing the lab starts listens beyond loopback or the lab's own hosts. With every layer up, each TCP
socket listening in this machine's network namespace that belongs to a lab process (the cluster's
binaries, the platform's processes and everything in their sessions) is bound to 127.0.0.0/8 or to an
address of the lab's subnet, never to all interfaces. Node processes run in their hosts' own namespaces."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import pytest

from boutique_suite.run import targets
from provisioning import LayerRunner
from provisioning.lab import manager, processes
from provisioning.lab.machines import hosts

pytestmark = pytest.mark.lab


def listening_sockets() -> dict[int, tuple[str, int]]:
    """Socket inode -> (address, port) of every TCP socket listening in this network namespace."""
    found = {}
    for table, width in (("tcp", 8), ("tcp6", 32)):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            cols = line.split()
            if cols[3] != "0A":  # LISTEN
                continue
            address, port = cols[1].split(":")
            raw = bytes.fromhex(address)
            # /proc/net prints each 32-bit word in host (little-endian) order
            words = b"".join(raw[i : i + 4][::-1] for i in range(0, width // 2, 4))
            found[int(cols[9])] = (str(ipaddress.ip_address(words)), int(port, 16))
    return found


def session_of(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[3])
    except (OSError, ValueError, IndexError):
        return None


def lab_processes() -> dict[int, str]:
    """PID -> name of every lab process in this network namespace, with the processes of their sessions."""
    roots = dict(processes.running_from(manager.WORKDIR / "bin"))
    for name in processes.recorded():
        pid = processes.info(name).pid
        if pid:
            roots[pid] = name
    own_net = os.readlink("/proc/self/ns/net")
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        pid = int(proc.name)
        root = pid if pid in roots else session_of(pid)
        if root not in roots:
            continue
        try:
            if os.readlink(proc / "ns" / "net") == own_net:
                found[pid] = roots[root]
        except OSError:
            continue
    return found


def sockets_of(pid: int) -> set[int]:
    inodes = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(int(target[8:-1]))
    except OSError:
        pass
    return inodes


@pytest.fixture(scope="module")
def lab_up() -> None:
    LayerRunner(targets.load("lab")).require(7)


def test_every_lab_listener_is_on_loopback_or_the_lab_subnet(lab_up: None) -> None:
    subnet = hosts.network().subnet
    listening = listening_sockets()
    owners = lab_processes()
    seen, wide = [], []
    for pid, name in owners.items():
        for inode in sockets_of(pid) & listening.keys():
            address, port = listening[inode]
            ip = ipaddress.ip_address(address)
            mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
            ip = mapped or ip
            seen.append((name, address, port))
            if not (ip.is_loopback or (ip.version == 4 and ip in subnet)):
                wide.append(f"{name} (pid {pid}) listens on {address}:{port}")
    assert seen, "no lab process listens on anything: the check found nothing to check"
    assert not wide, "lab processes listening beyond loopback and the lab subnet:\n" + "\n".join(
        sorted(set(wide))
    )
