"""Phase 0 and the nodes' own configuration: the platform's machines, read over SSH (on-prem)."""

from __future__ import annotations

import pytest
from pytest_bdd import given, parsers, then

from boutique_suite.clients import hosts
from boutique_suite.clients.hosts import PlanHost, Run
from boutique_suite.clients.kube import PROBE_IMAGE
from boutique_suite.reporting.evidence import Execution
from boutique_suite.run.targets import Target
from boutique_suite.run.touches import Touches, touches

PROBE_TAG = PROBE_IMAGE.rsplit(":", 1)[1]


@pytest.fixture
def on_host(target: Target) -> Run:
    return hosts.ssh_runner(target)


@given("the hosts of the plan:", target_fixture="plan")
@touches()
def hosts_of_the_plan(target: Target, datatable: list[list[str]]) -> list[PlanHost]:
    return hosts.plan_hosts(target, datatable)


@then("every host has the IPv4 address the target file gives it, configured statically and not by DHCP")
@touches(Touches.hosts)
def static_addresses(on_host: Run, plan: list[PlanHost]) -> None:
    hosts.expect_static_addresses(on_host, plan)


@then("every host resolves the name of every other host to that address through /etc/hosts")
@touches(Touches.hosts)
def resolve_each_other(on_host: Run, plan: list[PlanHost]) -> None:
    hosts.expect_resolve_each_other(on_host, plan)


@then(parsers.parse('every cluster node resolves "{first}" and "{second}" to the {server} host'))
@touches(Touches.hosts)
def nodes_resolve(on_host: Run, plan: list[PlanHost], first: str, second: str, server: str) -> None:
    hosts.expect_nodes_resolve(on_host, plan, [first, second], server)


@then("every host reaches every other host by name with ping")
@touches(Touches.hosts)
def ping(on_host: Run, plan: list[PlanHost]) -> None:
    hosts.expect_ping(on_host, plan)


@then("chronyd is active and enabled on every host")
@touches(Touches.hosts)
def chronyd(on_host: Run, plan: list[PlanHost]) -> None:
    hosts.expect_chronyd(on_host, plan)


@then(parsers.parse("chrony reports every host as synchronised with a system clock offset below {ms:d} ms"))
@touches(Touches.hosts)
def synchronised(on_host: Run, plan: list[PlanHost], ms: int) -> None:
    hosts.expect_synchronised(on_host, plan, ms)


@then(parsers.parse("the clocks of any two hosts differ by less than {ms:d} ms"))
@touches(Touches.hosts)
def clock_spread(on_host: Run, plan: list[PlanHost], execution: Execution, ms: int) -> None:
    execution.timing("clock_spread_seconds", hosts.expect_clock_spread(on_host, plan, ms) / 1000)


@then(parsers.parse('host "{name}" has at least {cpus:d} CPUs'))
@touches(Touches.hosts)
def cpus(on_host: Run, plan: list[PlanHost], name: str, cpus: int) -> None:
    hosts.expect_cpus(on_host, plan, name, cpus)


@then(
    parsers.parse(
        'host "{name}" has at least {gib:d} GiB of memory, allowing {pct:d}% for the kernel and firmware'
    )
)
@touches(Touches.hosts)
def memory(on_host: Run, plan: list[PlanHost], name: str, gib: int, pct: int) -> None:
    hosts.expect_memory(on_host, plan, name, gib, pct)


@then(parsers.parse('host "{name}" has at least {gib:d} GiB free on the filesystem that holds "{path}"'))
@touches(Touches.hosts)
def disk(on_host: Run, plan: list[PlanHost], name: str, gib: int, path: str) -> None:
    hosts.expect_disk_free(on_host, plan, name, gib, path)


@then(parsers.parse("swap is off on {first}, {second} and {third}"))
@touches(Touches.hosts)
def swap_off(on_host: Run, plan: list[PlanHost], first: str, second: str, third: str) -> None:
    hosts.expect_swap_off(on_host, hosts.nodes(plan, [first, second, third]))


@then(parsers.parse('the kernel modules "{first}" and "{second}" are loaded on each of them'))
@touches(Touches.hosts)
def modules(on_host: Run, plan: list[PlanHost], first: str, second: str) -> None:
    hosts.expect_modules(on_host, hosts.nodes(plan), [first, second])


@then(parsers.parse('the sysctls "{first}" and "{second}" are {value} on each of them'))
@touches(Touches.hosts)
def sysctls(on_host: Run, plan: list[PlanHost], first: str, second: str, value: str) -> None:
    hosts.expect_sysctls(on_host, hosts.nodes(plan), [first, second], value)


@then(parsers.parse('containerd on every node has a hosts.toml for "{registry}" that names the registry CA'))
@touches(Touches.hosts)
def containerd_trust(on_host: Run, target: Target, registry: str) -> None:
    hosts.expect_registry_trust(on_host, hosts.target_nodes(target), registry)


@then(parsers.parse('every node pulls "{image}" with crictl without skipping TLS verification'))
@touches(Touches.hosts, Touches.registry, Touches.node_runtime)
def nodes_pull(on_host: Run, target: Target, image: str) -> None:
    hosts.expect_nodes_pull(on_host, hosts.target_nodes(target), f"{image}:{PROBE_TAG}")
