"""Phase 0 and the nodes' own configuration, read on the platform's machines over SSH.

Every check takes a ``Run`` (host name, shell command -> stdout) so it reads the same against real hosts
(``ssh_runner``) and against recorded answers in the tests.
"""

from __future__ import annotations

import os
import re
import shlex
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import testinfra
import testinfra.host
from testinfra.backend.base import CommandResult

from boutique_suite.run.targets import Target

Run = Callable[[str, str], str]
CLUSTER_ROLES = frozenset({"control-plane", "worker"})


@dataclass(frozen=True)
class PlanHost:
    name: str
    """The name the plan (and every /etc/hosts) uses."""
    role: str
    aliases: tuple[str, ...]
    ip: str
    target_name: str
    """The host's key in the target file (the plan's "gitlab" is the target's host with the gitlab role)."""

    @property
    def is_node(self) -> bool:
        return self.role in CLUSTER_ROLES


def plan_hosts(target: Target, table: list[list[str]]) -> list[PlanHost]:
    """The plan's host table (host, role, also known as) matched to the target file's hosts."""
    found = []
    for name, role, aliases in (row[:3] for row in table[1:]):
        key = (
            name
            if name in target.hosts
            else next((k for k, h in target.hosts.items() if name in h.roles), None)
        )
        assert key is not None, f"the target file has no host {name!r} (nor one with the role {name!r})"
        split = tuple(a.strip() for a in aliases.split(",") if a.strip())
        found.append(PlanHost(name, role, split, target.hosts[key].ip, key))
    return found


def target_nodes(target: Target) -> list[PlanHost]:
    """The target file's cluster nodes, for checks that need no plan table."""
    return [
        PlanHost(name, next(r for r in h.roles if r in CLUSTER_ROLES), (), h.ip, name)
        for name, h in target.hosts.items()
        if CLUSTER_ROLES & set(h.roles)
    ]


def testinfra_host(target: Target, name: str, timeout: int = 10) -> testinfra.host.Host:
    """testinfra's host for the target's ``name`` over ssh (BatchMode: keys only, never a password prompt)."""
    ssh = target.ssh
    key = os.environ.get(ssh.private_key_file_env, "") if ssh and ssh.private_key_file_env else ""
    entry = target.hosts[name]
    return testinfra.get_host(
        f"ssh://{entry.ssh_user}@{entry.ip}:{ssh.port if ssh else 22}",
        ssh_identity_file=key or None,
        ssh_extra_args=" ".join(["-o BatchMode=yes", *_known_hosts(target)]),
        timeout=timeout,
    )


def _known_hosts(target: Target) -> list[str]:
    known = target.ssh.known_hosts_file if target.ssh else None
    return [f"-o UserKnownHostsFile={os.path.expanduser(known)}"] if known else []


def ssh_runner(target: Target, timeout: int = 30) -> Run:
    """Runs a command on a target host through testinfra's ssh backend."""
    connections: dict[str, testinfra.host.Host] = {}

    def run(host: str, command: str) -> str:
        if host not in connections:
            connections[host] = testinfra_host(target, host, timeout)
        result = _run(connections[host], command)
        assert result.rc == 0, f"{host}: `{command}` exited {result.rc}: {result.stderr.strip()[-300:]}"
        return result.stdout

    return run


def _run(host: testinfra.host.Host, command: str) -> CommandResult:
    """testinfra's run, with ssh's own failure (exit 255, which testinfra raises) as a result too."""
    try:
        return host.run(command)
    except RuntimeError as exc:
        if exc.args and isinstance(exc.args[0], CommandResult):
            return exc.args[0]
        raise


def unreachable(target: Target, timeout: int = 10, only: Iterable[str] | None = None) -> str | None:
    """The first of the target's hosts (or of ``only``) that does not answer over ssh, with why; None when
    all answer."""
    names = list(target.hosts) if only is None else list(only)
    for name in names:
        entry = target.hosts[name]
        result = _run(testinfra_host(target, name, timeout), "true")
        if result.rc != 0:
            why = (result.stderr or result.stdout).strip().splitlines()[-1:] or [f"exit {result.rc}"]
            return (
                f"{name} ({entry.ip}) does not answer over ssh as {entry.ssh_user}: {why[0][:200]} "
                "(check hosts: and ssh: in the target file)"
            )
    return None


def _each(hosts: Iterable[PlanHost], check: Callable[[PlanHost], str | None]) -> None:
    problems = [problem for host in hosts if (problem := check(host))]
    assert not problems, "; ".join(problems)


def hosts_file(text: str) -> dict[str, str]:
    """name -> address of an /etc/hosts (the first line naming it wins, as the resolver does)."""
    names: dict[str, str] = {}
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        for name in fields[1:]:
            names.setdefault(name, fields[0])
    return names


def expect_static_addresses(run: Run, hosts: list[PlanHost]) -> None:
    def check(host: PlanHost) -> str | None:
        lines = [
            line
            for line in run(host.target_name, "ip -4 -o addr show").splitlines()
            if f" {host.ip}/" in line
        ]
        if not lines:
            return f"{host.name} has no address {host.ip}"
        return f"{host.name}: {host.ip} is leased by DHCP (dynamic)" if "dynamic" in lines[0] else None

    _each(hosts, check)


def expect_resolve_each_other(run: Run, hosts: list[PlanHost]) -> None:
    def check(host: PlanHost) -> str | None:
        names = hosts_file(run(host.target_name, "cat /etc/hosts"))
        wrong = [
            f"{o.name} -> {names.get(o.name)}" for o in hosts if o is not host and names.get(o.name) != o.ip
        ]
        return f"{host.name}'s /etc/hosts: {', '.join(wrong)}" if wrong else None

    _each(hosts, check)


def expect_nodes_resolve(run: Run, hosts: list[PlanHost], names: Iterable[str], server: str) -> None:
    ip = next(h.ip for h in hosts if h.name == server)
    names = list(names)

    def check(host: PlanHost) -> str | None:
        have = hosts_file(run(host.target_name, "cat /etc/hosts"))
        wrong = [f"{n} -> {have.get(n)}" for n in names if have.get(n) != ip]
        return f"{host.name}'s /etc/hosts: {', '.join(wrong)} (want {ip})" if wrong else None

    _each([h for h in hosts if h.is_node], check)


def expect_ping(run: Run, hosts: list[PlanHost]) -> None:
    def check(host: PlanHost) -> str | None:
        failed = []
        for other in (o for o in hosts if o is not host):
            try:
                run(host.target_name, f"ping -c 1 -W 2 {shlex.quote(other.name)}")
            except AssertionError:
                failed.append(other.name)
        return f"{host.name} cannot ping {failed}" if failed else None

    _each(hosts, check)


def expect_chronyd(run: Run, hosts: list[PlanHost]) -> None:
    command = "systemctl is-active chrony || systemctl is-active chronyd; systemctl is-enabled chrony || true"

    def check(host: PlanHost) -> str | None:
        out = run(host.target_name, f"sh -c {shlex.quote(command)}").split()
        return None if out[:1] == ["active"] and "enabled" in out else f"{host.name}: chrony is {out}"

    _each(hosts, check)


TRACKING = re.compile(r"^System time\s*:\s*(?P<seconds>[\d.]+) seconds (?:fast|slow)", re.MULTILINE)


def expect_synchronised(run: Run, hosts: list[PlanHost], max_ms: float) -> None:
    def check(host: PlanHost) -> str | None:
        out = run(host.target_name, "chronyc tracking")
        if not re.search(r"^Leap status\s*:\s*Normal", out, re.MULTILINE):
            return f"{host.name}: chrony is not synchronised"
        match = TRACKING.search(out)
        if not match:
            return f"{host.name}: chronyc tracking shows no system time offset"
        offset = float(match["seconds"]) * 1000
        return f"{host.name}: clock offset {offset:.1f} ms, over {max_ms} ms" if offset >= max_ms else None

    _each(hosts, check)


def clock_offsets(
    run: Run, hosts: list[PlanHost], clock: Callable[[], float] = time.time
) -> dict[str, float]:
    """Each host's clock minus ours (seconds), read at the middle of the command's round trip."""
    offsets = {}
    for host in hosts:
        before = clock()
        remote = float(run(host.target_name, "date +%s.%N").strip())
        offsets[host.name] = remote - (before + clock()) / 2
    return offsets


def expect_clock_spread(run: Run, hosts: list[PlanHost], max_ms: float) -> float:
    offsets = clock_offsets(run, hosts)
    spread = (max(offsets.values()) - min(offsets.values())) * 1000
    assert spread < max_ms, f"clocks differ by {spread:.0f} ms (offsets {offsets}), not less than {max_ms} ms"
    return spread


def _host(hosts: list[PlanHost], name: str) -> PlanHost:
    found = [h for h in hosts if h.name == name]
    assert found, f"{name} is not a host of the plan"
    return found[0]


def expect_cpus(run: Run, hosts: list[PlanHost], name: str, cpus: int) -> int:
    have = int(run(_host(hosts, name).target_name, "nproc").strip())
    assert have >= cpus, f"{name} has {have} CPUs, fewer than {cpus}"
    return have


def expect_memory(run: Run, hosts: list[PlanHost], name: str, gib: int, allowance_pct: int) -> float:
    text = run(_host(hosts, name).target_name, "cat /proc/meminfo")
    kib = int(re.search(r"^MemTotal:\s*(\d+) kB", text, re.MULTILINE)[1])  # type: ignore[index]
    have = kib / 1024**2
    assert have >= gib * (1 - allowance_pct / 100), (
        f"{name} has {have:.1f} GiB, under {gib} GiB - {allowance_pct}%"
    )
    return have


def expect_disk_free(run: Run, hosts: list[PlanHost], name: str, gib: int, path: str) -> float:
    """Free space of the filesystem that holds ``path`` (its nearest existing parent if it does not exist)."""
    script = (
        f'p={shlex.quote(path)}; while [ ! -e "$p" ]; do p=$(dirname "$p"); done; df -B1 --output=avail "$p"'
    )
    out = run(_host(hosts, name).target_name, f"sh -c {shlex.quote(script)}")
    have = int(out.split()[-1]) / 1024**3
    assert have >= gib, f"{name} has {have:.1f} GiB free for {path}, less than {gib} GiB"
    return have


def nodes(hosts: list[PlanHost], names: Iterable[str] | None = None) -> list[PlanHost]:
    wanted = set(names) if names is not None else None
    found = [h for h in hosts if h.is_node and (wanted is None or h.name in wanted)]
    assert wanted is None or {h.name for h in found} == wanted, f"not cluster nodes of the plan: {wanted}"
    return found


def expect_swap_off(run: Run, hosts: list[PlanHost]) -> None:
    def check(host: PlanHost) -> str | None:
        active = run(host.target_name, "cat /proc/swaps").splitlines()[1:]
        return f"{host.name} has swap on: {active}" if active else None

    _each(hosts, check)


# A module built into the kernel has no /sys/module entry unless it takes parameters: what it provides shows.
MODULE_PROVIDES = {"br_netfilter": "/proc/sys/net/bridge", "overlay": "/sys/module/overlay"}


def expect_modules(run: Run, hosts: list[PlanHost], modules: Iterable[str]) -> None:
    modules = list(modules)

    def active(host: PlanHost, module: str) -> bool:
        provides = MODULE_PROVIDES.get(module)
        return (
            bool(provides)
            and run(host.target_name, f"test -e {provides} && echo yes || true").strip() == "yes"
        )

    def check(host: PlanHost) -> str | None:
        present = run(host.target_name, "ls /sys/module").split()
        missing = [m for m in modules if m not in present and not active(host, m)]
        return f"{host.name} lacks the kernel modules {missing}" if missing else None

    _each(hosts, check)


def expect_sysctls(run: Run, hosts: list[PlanHost], names: Iterable[str], value: str) -> None:
    names = list(names)

    def check(host: PlanHost) -> str | None:
        values = run(host.target_name, "sysctl -n " + " ".join(map(shlex.quote, names))).split()
        wrong = [f"{n}={v}" for n, v in zip(names, values, strict=False) if v != value]
        return f"{host.name}: {wrong}, expected {value}" if wrong or len(values) != len(names) else None

    _each(hosts, check)


def expect_registry_trust(run: Run, hosts: list[PlanHost], registry: str) -> None:
    """containerd's /etc/containerd/certs.d/<registry>/hosts.toml names a CA file that exists on the node,
    and does not skip verification."""
    path = f"/etc/containerd/certs.d/{registry}/hosts.toml"

    def check(host: PlanHost) -> str | None:
        text = run(host.target_name, f"cat {shlex.quote(path)}")
        if re.search(r"skip_verify\s*=\s*true", text):
            return f"{host.name}: {path} skips TLS verification"
        ca = re.search(r'^\s*ca\s*=\s*(?:\[\s*)?"([^"]+)"', text, re.MULTILINE)
        if not ca:
            return f"{host.name}: {path} names no ca"
        run(host.target_name, f"test -s {shlex.quote(ca[1])}")
        return None

    _each(hosts, check)


def expect_nodes_pull(run: Run, hosts: list[PlanHost], image: str) -> None:
    """crictl pulls ``image`` on every node through containerd (whose hosts.toml verifies TLS)."""

    def check(host: PlanHost) -> str | None:
        try:
            run(host.target_name, f"sudo -n crictl pull {shlex.quote(image)}")
        except AssertionError as exc:
            return str(exc)
        return None

    _each(hosts, check)
