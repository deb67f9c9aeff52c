"""The platform's machines as hosts of their own: one network namespace per host on a lab bridge.

Each host (``k8s-master``, ``k8s-worker1``, ``k8s-worker2``) gets a network namespace
``/var/run/netns/boutique-<host>`` with ``eth0`` (a veth whose peer sits in the bridge) holding its own
address. The root namespace keeps the bridge's first address, the lab's gateway, and forwards the API
server's port from it to 127.0.0.1 (a DNAT in the chain ``BOUTIQUE-LAB``): the control plane stays on
loopback and the hosts reach it at ``<gateway>:<apiserver port>``. Nothing here routes beyond the lab.

Processes enter a host with ``nsenter --net=<path>`` only: ``ip netns exec`` also remounts /sys, which hides
the cgroup mounts from the kubelet.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shutil
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]  # provisioning/lab: settings.toml
SETTINGS = tomllib.loads((HERE / "settings.toml").read_text())
NETNS_DIR = Path("/var/run/netns")
CHAIN = "BOUTIQUE-LAB"  # nat PREROUTING: what comes in from the bridge
LOCAL_CHAIN = "BOUTIQUE-LAB-LOCAL"  # nat OUTPUT: what this machine sends to the gateway itself
HOOKS = ((CHAIN, "PREROUTING"), (LOCAL_CHAIN, "OUTPUT"))


class HostError(Exception):
    """The lab's hosts cannot be made here; the message says why and what to change."""


CLUSTER_DOMAIN = "cluster.local"  # kubeadm's default, served by CoreDNS, set in every kubelet


def cluster_dns_ip(service_cidr: str) -> str:
    """kubeadm's choice: the tenth address of the Service range (10.96.0.10 for 10.96.0.0/16)."""
    return str(ipaddress.ip_network(service_cidr)[10])


@dataclass(frozen=True)
class Host:
    name: str
    address: str
    netns: str

    @property
    def netns_path(self) -> Path:
        return NETNS_DIR / self.netns

    @property
    def veth(self) -> str:
        return f"bl-{self.name.removeprefix('k8s-')}"[:15]

    def enter(self) -> list[str]:
        """The argv prefix that runs a command inside this host's network namespace only."""
        return ["nsenter", f"--net={self.netns_path}", "--"]


@dataclass(frozen=True)
class Network:
    subnet: ipaddress.IPv4Network
    bridge: str
    gateway: str
    cluster_cidr: ipaddress.IPv4Network
    service_cidr: ipaddress.IPv4Network
    hosts: tuple[Host, ...]

    def host(self, name: str) -> Host:
        return next(h for h in self.hosts if h.name == name)


def network(settings: dict | None = None) -> Network:
    cfg = (settings or SETTINGS)["hosts"]
    try:
        subnet = ipaddress.IPv4Network(cfg["subnet"])
    except ValueError as exc:
        raise HostError(f"provisioning/lab/settings.toml: hosts.subnet: {exc}") from None
    hosts = tuple(
        Host(name, str(subnet.network_address + offset), f"boutique-{name}")
        for name, offset in cfg["addresses"].items()
    )
    return Network(
        subnet=subnet,
        bridge=cfg["bridge"],
        gateway=str(subnet.network_address + 1),
        cluster_cidr=ipaddress.IPv4Network(cfg["cluster_cidr"]),
        service_cidr=ipaddress.IPv4Network(cfg["service_cidr"]),
        hosts=hosts,
    )


def run(argv: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if check and proc.returncode != 0:
        raise HostError(f"`{' '.join(argv)}` failed: {(proc.stderr or proc.stdout).strip()[:300]}")
    return proc


def missing_tools() -> list[str]:
    return [tool for tool in ("ip", "nsenter", "iptables") if shutil.which(tool) is None]


def unavailable_reason() -> str | None:
    """Why this machine cannot make the lab's hosts (not root, no tools, no network namespaces), or None."""
    if os.geteuid() != 0:
        return "real nodes need root (network namespaces, cgroups, containers)"
    if missing := missing_tools():
        return f"missing {', '.join(missing)} (Debian: iproute2, util-linux, iptables)"
    if not Path("/sys/fs/cgroup/cpu").is_dir() and not Path("/sys/fs/cgroup/cgroup.controllers").exists():
        return "no cgroup hierarchy under /sys/fs/cgroup"
    probe = f"boutique-probe-{os.getpid()}"  # its own: two processes probing at once must not collide
    made = run(["ip", "netns", "add", probe], check=False)
    run(["ip", "netns", "del", probe], check=False)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip()[:200]}"
    return None


def _routes() -> list[dict]:
    return json.loads(run(["ip", "-j", "-4", "route", "show", "table", "all"]).stdout or "[]")


def check_collisions(net: Network) -> None:
    """One clear error when the lab's subnet or pod/service ranges overlap a route this machine has."""
    ours = {net.bridge}
    for route in _routes():
        dst = route.get("dst", "")
        if dst in ("default", "") or route.get("dev") in ours or route.get("type") in ("local", "broadcast"):
            continue
        with contextlib.suppress(ValueError):
            theirs = ipaddress.IPv4Network(dst, strict=False)
            for label, mine in (
                ("hosts.subnet", net.subnet),
                ("hosts.cluster_cidr", net.cluster_cidr),
                ("hosts.service_cidr", net.service_cidr),
            ):
                if theirs.overlaps(mine) and not (
                    label == "hosts.cluster_cidr" and _is_pod_route(route, net)
                ):
                    raise HostError(
                        f"provisioning/lab/settings.toml: {label} {mine} overlaps this machine's route to "
                        f"{dst} (dev {route.get('dev')}): pick a free range"
                    )


def _is_pod_route(route: dict, net: Network) -> bool:
    return route.get("gateway") in {h.address for h in net.hosts}


def _link_exists(name: str) -> bool:
    return run(["ip", "link", "show", name], check=False).returncode == 0


def _sysctl(path: str, value: str, host: Host | None = None) -> None:
    prefix = host.enter() if host else []
    run([*prefix, "sh", "-c", f"echo {value} > /proc/sys/{path}"])


def ensure_bridge(net: Network) -> bool:
    changed = False
    if not _link_exists(net.bridge):
        run(["ip", "link", "add", net.bridge, "type", "bridge"])
        changed = True
    addr = f"{net.gateway}/{net.subnet.prefixlen}"
    shown = run(["ip", "-j", "-4", "addr", "show", "dev", net.bridge]).stdout
    if addr.split("/")[0] not in shown:
        run(["ip", "addr", "add", addr, "dev", net.bridge])
        changed = True
    run(["ip", "link", "set", net.bridge, "up"])
    # The DNAT to the loopback API server needs the bridge to accept 127.0.0.0/8 as a destination.
    _sysctl(f"net/ipv4/conf/{net.bridge}/route_localnet", "1")
    return changed


def ensure_host(net: Network, host: Host) -> bool:
    changed = False
    if not host.netns_path.exists():
        run(["ip", "netns", "add", host.netns])
        changed = True
    inside = run([*host.enter(), "ip", "-j", "-4", "addr", "show", "dev", "eth0"], check=False)
    if inside.returncode != 0:
        if _link_exists(host.veth):
            run(["ip", "link", "del", host.veth])
        run(["ip", "link", "add", host.veth, "type", "veth", "peer", "name", f"{host.veth}-p"])
        run(["ip", "link", "set", f"{host.veth}-p", "netns", host.netns])
        run([*host.enter(), "ip", "link", "set", f"{host.veth}-p", "name", "eth0"])
        changed = True
    run(["ip", "link", "set", host.veth, "master", net.bridge, "up"])
    if host.address not in inside.stdout:
        run([*host.enter(), "ip", "addr", "replace", f"{host.address}/{net.subnet.prefixlen}", "dev", "eth0"])
        changed = True
    run([*host.enter(), "ip", "link", "set", "lo", "up"])
    run([*host.enter(), "ip", "link", "set", "eth0", "up"])
    run([*host.enter(), "ip", "route", "replace", "default", "via", net.gateway])
    _sysctl("net/ipv4/ip_forward", "1", host)
    return changed


def _iptables(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run(["iptables", "-w", "5", *args], check=check)


def _ensure_rule(chain: str, hook: str, rule: list[str]) -> bool:
    """``rule`` in nat ``chain``, the chain jumped to from ``hook``; True when something was added."""
    changed = False
    if _iptables("-t", "nat", "-L", chain, "-n", check=False).returncode != 0:
        _iptables("-t", "nat", "-N", chain)
        changed = True
    if _iptables("-t", "nat", "-C", hook, "-j", chain, check=False).returncode != 0:
        _iptables("-t", "nat", "-A", hook, "-j", chain)
        changed = True
    if _iptables("-t", "nat", "-C", chain, *rule, check=False).returncode != 0:
        _iptables("-t", "nat", "-A", chain, *rule)
        changed = True
    return changed


def ensure_forward(net: Network, port: int, local: bool = False) -> bool:
    """DNAT <gateway>:<port> from the bridge to 127.0.0.1:<port>: the hosts (and their pods) reach a server of
    the root namespace that listens on loopback only (the API server, the git server). ``local``: this
    machine's own connections to <gateway>:<port> too, so one URL serves the pods and the suite."""
    to = ["-d", net.gateway, "-p", "tcp", "--dport", str(port), "-j", "DNAT", "--to-destination"]
    to.append(f"127.0.0.1:{port}")
    changed = _ensure_rule(CHAIN, "PREROUTING", ["-i", net.bridge, *to])
    return (local and _ensure_rule(LOCAL_CHAIN, "OUTPUT", to)) or changed


def ensure(net: Network, apiserver_port: int) -> bool:
    """Make the bridge, every host and the API server forward. True when something changed."""
    check_collisions(net)
    changed = ensure_bridge(net)
    for host in net.hosts:
        changed = ensure_host(net, host) or changed
    return ensure_forward(net, apiserver_port) or changed


def ensure_pod_routes(net: Network, pod_cidrs: dict[str, str]) -> None:
    """Each node's pod range is reached through that node's address: from the root namespace and from the
    other hosts (what flannel's host-gw does, for one L2 segment). The root namespace reaches Services too."""
    # Service addresses from the root namespace: through a worker, whose kube-proxy rules answer them.
    run(["ip", "route", "replace", str(net.service_cidr), "via", net.host("k8s-worker1").address])
    for name, cidr in pod_cidrs.items():
        via = net.host(name).address
        run(["ip", "route", "replace", cidr, "via", via, "dev", net.bridge])
        for other in net.hosts:
            if other.name != name:
                run([*other.enter(), "ip", "route", "replace", cidr, "via", via, "dev", "eth0"])


def remove(net: Network) -> list[str]:
    """Delete every host namespace, veth, the bridge (its routes go with it) and the iptables chain."""
    removed = []
    for host in net.hosts:
        if host.netns_path.exists():
            run(["ip", "netns", "del", host.netns], check=False)
            removed.append(f"netns {host.netns}")
        if _link_exists(host.veth):
            run(["ip", "link", "del", host.veth], check=False)
    if _link_exists(net.bridge):
        run(["ip", "link", "del", net.bridge], check=False)
        removed.append(f"bridge {net.bridge}")
    if shutil.which("iptables"):
        for chain, hook in HOOKS:
            while _iptables("-t", "nat", "-D", hook, "-j", chain, check=False).returncode == 0:
                removed.append(f"iptables nat {hook} -> {chain}")
            if _iptables("-t", "nat", "-F", chain, check=False).returncode == 0:
                _iptables("-t", "nat", "-X", chain, check=False)
                removed.append(f"iptables chain {chain}")
    return removed


def leftovers(net: Network) -> list[str]:
    """What of the hosts' network still exists (for `lab down`'s test and status)."""
    found = [f"netns {h.netns}" for h in net.hosts if h.netns_path.exists()]
    found += [f"link {name}" for name in [net.bridge, *(h.veth for h in net.hosts)] if _link_exists(name)]
    if shutil.which("iptables"):
        for chain, _ in HOOKS:
            if _iptables("-t", "nat", "-L", chain, "-n", check=False).returncode == 0:
                found.append(f"iptables chain {chain}")
    found += [f"route {r['dst']}" for r in _routes() if r.get("dev") == net.bridge]
    return found
