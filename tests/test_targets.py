"""Target loading: the shipped files load; every kind of bad file gives one line naming file and field."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from boutique_suite.run import targets

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "targets" / "onprem.example.yaml"


def write(tmp_path: Path, data: object, name: str = "t.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def example() -> dict:
    return yaml.safe_load(EXAMPLE.read_text())


def test_lab_target_loads_by_name() -> None:
    lab = targets.load("lab")
    assert lab.kind == "lab"
    assert lab.cluster.kubeconfig_path.name == "kubeconfig.yaml"
    assert lab.timeouts.assertion == 60


def test_the_application_comes_from_the_target(tmp_path: Path) -> None:
    assert targets.load("lab").application == "online-boutique-dev"  # the default
    data = example()
    data["application"] = "boutique-staging"
    assert targets.load(str(write(tmp_path, data))).application == "boutique-staging"
    data["application"] = "Not A Name"
    with pytest.raises(targets.TargetError, match="application: String should match pattern"):
        targets.load(str(write(tmp_path, data)))


def test_onprem_example_loads_with_all_hosts() -> None:
    onprem = targets.load(str(EXAMPLE))
    assert set(targets.REQUIRED_HOSTS) <= set(onprem.hosts)
    assert onprem.hosts["k8s-worker2"].ip == "192.168.10.13"
    assert onprem.allow_destructive is False
    assert onprem.gitlab is not None and onprem.gitlab.token_env == "GITLAB_TOKEN"


@pytest.mark.parametrize(
    ("mutate", "field", "expectation"),
    [
        (lambda d: d["hosts"]["k8s-master"].update(ip="10.0.0.300"), "hosts.k8s-master.ip", "IPv4"),
        (
            lambda d: d["slack"].update(token_env="xoxb-fake"),
            "slack.token_env",
            "NAME of an environment",
        ),
        (lambda d: d["slack"].update(token="xoxb-123"), "slack.token", "unknown field"),
        (lambda d: d.pop("cluster"), "cluster", "required field is missing"),
        (lambda d: d.update(kind="cloud"), "kind", "'lab' or 'onprem'"),
        (lambda d: d["hosts"].pop("k8s-worker2"), "(top level)", "k8s-worker2"),
        (lambda d: d["timeouts"].update({"assert": -5}), "timeouts.assert", "greater than 0"),
        (lambda d: d.update(allow_destructive="maybe"), "allow_destructive", "boolean"),
        (
            lambda d: d["gateway"].update(addresses=["192.168.10.220-192.168.10.200"]),
            "gateway.addresses.0",
            "IPv4 range",
        ),
        (lambda d: d["gateway"].update(ingress_vip="192.168.10.50"), "gateway", "not in the pool"),
        (lambda d: d["slack"].update(token_file="/tmp/t"), "slack", "exactly one of token_env"),
        (lambda d: d["slack"].update(api_url="slack.com/api"), "slack.api_url", "should match"),
        (lambda d: d["monitoring"].pop("alertmanager_url"), "monitoring.alertmanager_url", "missing"),
    ],
    ids=[
        "bad-ip",
        "secret-in-env-field",
        "inline-secret",
        "missing-cluster",
        "bad-kind",
        "missing-host",
        "negative-timeout",
        "bad-bool",
        "backwards-pool-range",
        "vip-outside-pool",
        "two-slack-tokens",
        "slack-api-url",
        "monitoring-without-alertmanager",
    ],
)
def test_each_bad_field_is_named(tmp_path: Path, mutate, field: str, expectation: str) -> None:  # type: ignore[no-untyped-def]
    data = example()
    mutate(data)
    path = write(tmp_path, data)
    with pytest.raises(targets.TargetError) as err:
        targets.load(str(path))
    lines = str(err.value).splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{path}: {field}: "), lines[0]
    assert expectation in lines[0]


def test_gateway_pool_and_vip() -> None:
    lab = targets.load("lab")
    assert lab.gateway is not None and lab.gateway.pool == "boutique-pool"
    assert lab.gateway.contains(lab.gateway.ingress_vip) and lab.gateway.contains("10.213.77.220")
    assert not lab.gateway.contains("10.213.77.221") and not lab.gateway.contains("192.168.10.200")
    onprem = targets.load(str(EXAMPLE))
    assert onprem.gateway is not None and onprem.gateway.contains("192.168.10.200")


def test_lab_pool_outside_the_lab_subnet_is_refused(tmp_path: Path) -> None:
    data = yaml.safe_load((ROOT / "targets" / "lab.yaml").read_text())
    data["gateway"].update(addresses=["192.168.10.0/24"], ingress_vip="192.168.10.200")
    path = write(tmp_path, data)
    with pytest.raises(targets.TargetError) as err:
        targets.load(str(path))
    assert str(err.value) == (
        f"{path}: (top level): gateway.addresses: the lab's pool must lie in the lab's own subnet "
        "10.213.77.0/24 (provisioning/lab/settings.toml hosts.subnet), not ['192.168.10.0/24']"
    )


def test_several_bad_fields_give_one_line_each(tmp_path: Path) -> None:
    data = example()
    data["hosts"]["mini-pc"]["ip"] = "nope"
    data["cluster"].pop("context")
    path = write(tmp_path, data)
    with pytest.raises(targets.TargetError) as err:
        targets.load(str(path))
    lines = str(err.value).splitlines()
    assert [line.split(": ")[1] for line in lines] == ["hosts.mini-pc.ip", "cluster.context"]


def test_malformed_yaml_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, "name: lab\nkind: [lab\ncluster: {}\n")
    with pytest.raises(targets.TargetError, match=r"not valid YAML at line \d+"):
        targets.load(str(path))


def test_not_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "- just\n- a list\n")
    with pytest.raises(targets.TargetError, match="expected a mapping"):
        targets.load(str(path))


def test_unknown_target_lists_known_ones() -> None:
    with pytest.raises(targets.TargetError, match=r"no such target file \(known targets: .*lab"):
        targets.load("no-such-target")


def test_pytest_refuses_bad_target_in_one_line_without_traceback(tmp_path: Path) -> None:
    data = example()
    data["hosts"]["k8s-master"]["ip"] = "not-an-ip"
    path = write(tmp_path, data)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--target",
            str(path),
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/test_waits.py",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.strip()]
    assert errors == [
        f"ERROR: {path}: hosts.k8s-master.ip: expected an IPv4 address like 192.168.10.11, got 'not-an-ip'"
    ], proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


def test_secret_named_but_absent_is_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    onprem = targets.load(str(EXAMPLE))
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    with pytest.raises(
        targets.TargetError, match=r"^slack: environment variable SLACK_BOT_TOKEN .* not set$"
    ):
        onprem.slack.token()
    lab = targets.Target.model_validate(
        {
            **yaml.safe_load((ROOT / "targets" / "lab.yaml").read_text()),
            "slack": {"channel": "#x", "token_file": str(tmp_path / "absent.token")},
        }
    )
    with pytest.raises(targets.TargetError, match=r"absent.token \(Slack bot token\) does not exist"):
        lab.slack.token()
    from_env = f"value-{time.time_ns()}"
    monkeypatch.setenv("SLACK_BOT_TOKEN", from_env)
    assert onprem.slack.token() == from_env


def test_the_private_registry_comes_from_its_section_else_from_gitlab(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab = targets.load("lab").registry_access()
    assert lab is not None and (lab.host, lab.dial, lab.username) == (
        "registry.local",
        ("10.213.77.1", 28501),
        "boutique-pull",
    )
    onprem = targets.load(str(EXAMPLE)).registry_access()
    assert onprem is not None
    assert (onprem.host, onprem.dial, onprem.username, onprem.password_env) == (
        "registry.local",
        ("registry.local", 443),
        "boutique-suite",
        "GITLAB_TOKEN",
    )
    monkeypatch.setenv("GITLAB_TOKEN", "t0ken")
    assert onprem.password() == "t0ken"
    data = example()
    data["gitlab"].pop("registry_user")
    assert targets.load(str(write(tmp_path, data))).registry_access() is None
    data["registry"] = {"host": "registry.local", "address": "registry.local:5000", "username": "u"}
    with pytest.raises(targets.TargetError, match=r"registry\.address"):
        targets.load(str(write(tmp_path, data, "bad.yaml")))
    data["registry"] = {"host": "registry.local", "username": "u", "password_file": str(tmp_path / "none")}
    with pytest.raises(targets.TargetError, match=r"^registry: .*none \(password\) does not exist"):
        targets.load(str(write(tmp_path, data, "nofile.yaml"))).registry_access().password()  # type: ignore[union-attr]
