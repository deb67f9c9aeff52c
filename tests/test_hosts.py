"""Host checks against recorded command answers (what ssh would return); no host is contacted."""

from __future__ import annotations

import pytest

from boutique_suite.clients import hosts
from boutique_suite.run import targets

ONPREM = targets.load(str(targets.TARGETS_DIR / "onprem.example.yaml"))
TABLE = [
    ["host", "role", "also known as"],
    ["k8s-master", "control-plane", ""],
    ["k8s-worker1", "worker", ""],
    ["k8s-worker2", "worker", ""],
    ["gitlab", "platform", "gitlab.local, registry.local"],
]
PLAN = hosts.plan_hosts(ONPREM, TABLE)
ETC_HOSTS = """127.0.0.1 localhost
192.168.10.11 k8s-master
192.168.10.12 k8s-worker1
192.168.10.13 k8s-worker2
192.168.10.10 gitlab gitlab.local registry.local  # the mini PC
"""


def answers(table: dict[str, str | dict[str, str]]):  # type: ignore[no-untyped-def]
    """A Run answering each command from ``table`` (per host where the value is a dict)."""

    def run(host: str, command: str) -> str:
        for prefix, answer in table.items():
            if command.startswith(prefix) or prefix in command:
                value = answer[host] if isinstance(answer, dict) else answer
                if value is None:
                    raise AssertionError(f"{host}: `{command}` exited 1")
                return value
        raise AssertionError(f"unexpected command on {host}: {command}")

    return run


def test_the_plans_gitlab_host_is_the_target_host_with_the_gitlab_role() -> None:
    gitlab = PLAN[-1]
    assert (gitlab.target_name, gitlab.ip, gitlab.aliases) == (
        "mini-pc",
        "192.168.10.10",
        ("gitlab.local", "registry.local"),
    )
    assert [h.name for h in PLAN if h.is_node] == ["k8s-master", "k8s-worker1", "k8s-worker2"]


def _addr(ip: str, dynamic: bool) -> str:
    return f"2: eth0    inet {ip}/24 brd 192.168.10.255 scope global {'dynamic ' if dynamic else ''}eth0\n"


def test_a_dhcp_lease_is_not_a_static_address() -> None:
    static = {h.target_name: _addr(h.ip, False) for h in PLAN}
    hosts.expect_static_addresses(answers({"ip -4": static}), PLAN)
    with pytest.raises(AssertionError, match=r"k8s-worker2: 192\.168\.10\.13 is leased by DHCP"):
        hosts.expect_static_addresses(
            answers({"ip -4": {**static, "k8s-worker2": _addr("192.168.10.13", True)}}), PLAN
        )


def test_every_host_must_name_every_other_host_in_etc_hosts() -> None:
    hosts.expect_resolve_each_other(answers({"cat /etc/hosts": ETC_HOSTS}), PLAN)
    hosts.expect_nodes_resolve(
        answers({"cat /etc/hosts": ETC_HOSTS}), PLAN, ["gitlab.local", "registry.local"], "gitlab"
    )
    wrong = ETC_HOSTS.replace("192.168.10.12 k8s-worker1", "192.168.10.99 k8s-worker1")
    with pytest.raises(AssertionError, match=r"k8s-worker1 -> 192\.168\.10\.99"):
        hosts.expect_resolve_each_other(answers({"cat /etc/hosts": wrong}), PLAN)


TRACKING = """Reference ID    : C0A80A01 (ntp.local)
Stratum         : 3
System time     : {offset} seconds fast of NTP time
Leap status     : {leap}
"""


@pytest.mark.parametrize(
    ("offset", "leap", "problem"),
    [
        ("0.000120", "Normal", None),
        ("0.250000", "Normal", "offset 250.0 ms"),
        ("0.0", "Not synchronised", "not synch"),
    ],
)
def test_chrony_must_be_synchronised_with_a_small_offset(offset: str, leap: str, problem: str | None) -> None:
    run = answers({"chronyc tracking": TRACKING.format(offset=offset, leap=leap)})
    if problem is None:
        hosts.expect_synchronised(run, PLAN, 100)
    else:
        with pytest.raises(AssertionError, match=problem):
            hosts.expect_synchronised(run, PLAN, 100)


def test_the_clock_spread_compares_the_hosts_with_each_other() -> None:
    dates = {
        "k8s-master": "1000.000",
        "k8s-worker1": "1000.100",
        "k8s-worker2": "1000.050",
        "mini-pc": "1000.000",
    }
    offsets = hosts.clock_offsets(answers({"date": dates}), PLAN, clock=lambda: 1000.0)
    assert round(max(offsets.values()) - min(offsets.values()), 3) == 0.1


def test_memory_allows_for_the_kernel_and_disk_is_read_where_the_path_would_live() -> None:
    run = answers(
        {"cat /proc/meminfo": "MemTotal:        7990000 kB\n", "df -B1": "     Avail\n 64424509440\n"}
    )
    assert hosts.expect_memory(run, PLAN, "k8s-worker1", 8, 5) > 7.6
    with pytest.raises(AssertionError, match="under 8 GiB - 1%"):
        hosts.expect_memory(run, PLAN, "k8s-worker1", 8, 1)
    assert hosts.expect_disk_free(run, PLAN, "k8s-worker1", 50, "/var/lib/containerd") == 60
    with pytest.raises(AssertionError, match="less than 100 GiB"):
        hosts.expect_disk_free(run, PLAN, "gitlab", 100, "/srv/gitlab")


def test_kubeadm_prerequisites_name_the_node_that_misses_them() -> None:
    nodes = hosts.nodes(PLAN, ["k8s-master", "k8s-worker1", "k8s-worker2"])
    swaps = "Filename Type Size Used Priority\n"
    hosts.expect_swap_off(answers({"/proc/swaps": swaps}), nodes)
    with pytest.raises(AssertionError, match="k8s-master has swap on"):
        hosts.expect_swap_off(
            answers(
                {
                    "/proc/swaps": {
                        **{h.target_name: swaps for h in nodes},
                        "k8s-master": swaps + "/swap.img file 1 0 -2\n",
                    }
                }
            ),
            nodes,
        )
    with pytest.raises(AssertionError, match=r"lacks the kernel modules \['br_netfilter'\]"):
        hosts.expect_modules(
            answers({"ls /sys/module": "overlay ext4", "test -e /proc/sys/net/bridge": ""}),
            nodes,
            ["overlay", "br_netfilter"],
        )
    # built into the kernel: no /sys/module entry, but its sysctls exist
    hosts.expect_modules(
        answers({"ls /sys/module": "overlay ext4", "test -e /proc/sys/net/bridge": "yes\n"}),
        nodes,
        ["overlay", "br_netfilter"],
    )
    with pytest.raises(AssertionError, match=r"net\.ipv4\.ip_forward=0"):
        hosts.expect_sysctls(
            answers({"sysctl": "0\n1\n"}),
            nodes,
            ["net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables"],
            "1",
        )


def test_containerd_must_name_an_existing_ca_and_never_skip_verification() -> None:
    nodes = hosts.target_nodes(ONPREM)
    good = (
        '[host."https://registry.local"]\n'
        '  capabilities = ["pull", "resolve"]\n'
        '  ca = "/etc/containerd/certs.d/registry.local/ca.crt"\n'
    )
    hosts.expect_registry_trust(answers({"cat ": good, "test -s": ""}), nodes, "registry.local")
    with pytest.raises(AssertionError, match="skips TLS verification"):
        hosts.expect_registry_trust(
            answers({"cat ": good + "  skip_verify = true\n", "test -s": ""}), nodes, "registry.local"
        )
    with pytest.raises(AssertionError, match="exited 1"):
        hosts.expect_registry_trust(answers({"cat ": good, "test -s": None}), nodes, "registry.local")  # type: ignore[dict-item]


def test_a_node_that_cannot_pull_is_named() -> None:
    nodes = hosts.target_nodes(ONPREM)
    pulls = {h.target_name: "Image is up to date\n" for h in nodes}
    hosts.expect_nodes_pull(answers({"crictl pull": pulls}), nodes, "registry.local/boutique/suite-probe:v1")
    with pytest.raises(AssertionError, match="k8s-worker2"):
        hosts.expect_nodes_pull(
            answers({"crictl pull": {**pulls, "k8s-worker2": None}}), nodes, "registry.local/x:v1"
        )
