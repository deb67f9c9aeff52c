"""The alerting config as the platform ships it: promtool checks the rules and runs their unit tests, amtool
routes label sets through the config Alertmanager is running now, and every Slack credential is read from a
file outside git. Nothing here prints a credential."""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml

from boutique_suite.clients.alerting import Alertmanager


def expect_promtool_accepts_rules() -> str:
    from provisioning.observability import rules

    with tempfile.TemporaryDirectory() as tmp:
        proc = rules.run_check(Path(tmp))
    assert proc.returncode == 0, f"promtool check rules failed:\n{proc.stdout}{proc.stderr}"
    return proc.stdout


def expect_unit_tests(expected: dict[str, str]) -> str:
    """Each alert (name -> ``for``) has its rule and firing + quiet unit tests, and promtool passes them."""
    from provisioning.observability import rules

    problems = [p for name, duration in expected.items() for p in rules.coverage_problems(name, duration)]
    assert not problems, "; ".join(problems)
    with tempfile.TemporaryDirectory() as tmp:
        proc = rules.run_unit_tests(Path(tmp))
    assert proc.returncode == 0, f"promtool test rules failed:\n{proc.stdout}{proc.stderr}"
    return proc.stdout


def expect_routes(am: Alertmanager, labels: dict[str, str], receiver: str) -> str:
    """``amtool config routes test`` on the config Alertmanager is running now (not the file in git)."""
    from provisioning.observability import alertmanager as am_config

    with tempfile.TemporaryDirectory() as tmp:
        live = Path(tmp) / "live.yml"
        live.write_text(yaml.safe_dump(am.config()))
        case = am_config.RouteCase("live", labels, [receiver])
        proc = am_config.check_route(live, case)
    assert proc.returncode == 0, (
        f"{labels} is not routed to {receiver}: {proc.stdout.strip()} {proc.stderr.strip()}"
    )
    return proc.stdout.strip()


def expect_slack_credentials_outside_git(am: Alertmanager, repo_root: Path) -> list[str]:
    """Every Slack receiver of the running config reads its URL or token from a file that a Secret (or,
    on the lab, a 0600 file) provides, outside the repository; none is written inline."""
    from provisioning.observability import alertmanager as am_config

    found = []
    configs = am_config.slack_configs(am.config())
    assert configs, "the running Alertmanager config has no Slack receiver"
    for sc in configs:
        inline = sc.get("api_url", "")
        assert "hooks.slack.com" not in inline, "a Slack webhook URL is written inline in the config"
        auth = (sc.get("http_config") or {}).get("authorization") or {}
        assert auth.get("credentials", "<secret>") == "<secret>", "a bot token is written inline"
        path = sc.get("api_url_file") or auth.get("credentials_file")
        assert path, f"Slack receiver for {sc.get('channel')} names no api_url_file or credentials_file"
        resolved = Path(path).resolve()
        assert not resolved.is_relative_to(repo_root), f"{path} is inside the repository"
        if resolved.exists():
            mode = resolved.stat().st_mode & 0o777
            assert mode & 0o077 == 0, f"{path} is readable by others (mode {mode:o})"
        found.append(path)
    return sorted(set(found))


def expect_severities_routed(
    am: Alertmanager, severities: tuple[str, ...], namespace: str, receiver: str
) -> list[str]:
    """expect_routes for an alert of each severity in ``namespace``."""
    return [expect_routes(am, {"severity": s, "namespace": namespace}, receiver) for s in severities]
