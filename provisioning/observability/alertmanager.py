"""The Alertmanager config: rendering for each place it runs, amtool route tests, inhibition semantics.

python -m provisioning.observability.alertmanager render DIR [--webhook-url-file F]
                                                      [--bot-token-file F --api-url URL] [--channel C]
python -m provisioning.observability.alertmanager test   # amtool check-config + every route case
"""

from __future__ import annotations

import argparse
import copy
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from provisioning.observability import HERE
from provisioning.observability.tools import run

AM_DIR = HERE / "alertmanager"
CONFIG = AM_DIR / "alertmanager.yaml"
TEMPLATE = AM_DIR / "slack.tmpl"
ROUTE_TESTS = AM_DIR / "route-tests.yaml"
SLACK_RECEIVERS = ("slack-boutique", "slack-platform")
SLACK_POST_MESSAGE = "https://slack.com/api/chat.postMessage"


def load(path: Path = CONFIG) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def slack_configs(config: dict[str, Any]) -> list[dict[str, Any]]:
    return [sc for r in config["receivers"] for sc in r.get("slack_configs", [])]


def render(
    *,
    webhook_url_file: str | None = None,
    bot_token_file: str | None = None,
    api_url: str = SLACK_POST_MESSAGE,
    channel: str | None = None,
    templates_glob: str | None = None,
    path: Path = CONFIG,
    config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The config with the Slack credentials' location changed; only file paths, never a secret value.

    webhook_url_file: a file holding an incoming-webhook URL. bot_token_file: a file holding a bot token,
    sent as a Bearer token to api_url (chat.postMessage of Slack, or of the lab's Slack-compatible receiver).
    config: the config to start from (default: the source file at ``path``).
    """
    if webhook_url_file and bot_token_file:
        raise ValueError("give either webhook_url_file or bot_token_file, not both")
    config = copy.deepcopy(config if config is not None else load(path))
    for sc in slack_configs(config):
        if webhook_url_file:
            sc["api_url_file"] = webhook_url_file
        elif bot_token_file:
            sc.pop("api_url_file", None)
            sc["api_url"] = api_url
            sc["http_config"] = {"authorization": {"type": "Bearer", "credentials_file": bot_token_file}}
        if channel:
            sc["channel"] = channel
    if templates_glob:
        config["templates"] = [templates_glob]
    return config


def write(dest: Path, **render_args: Any) -> Path:
    """Write alertmanager.yml and slack.tmpl into dest, the config pointing at that template."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(TEMPLATE, dest / TEMPLATE.name)
    config = render(templates_glob=str(dest / "*.tmpl"), **render_args)
    out = dest / "alertmanager.yml"
    out.write_text(yaml.safe_dump(config, sort_keys=False))
    return out


def helm_values() -> dict[str, Any]:
    """kube-prometheus-stack values carrying this config: publish writes them into gitops-repo's
    platform/values/kube-prometheus-stack-alertmanager.yaml, which Helm merges over the chart's values."""
    return {"alertmanager": {"config": load(), "templateFiles": {TEMPLATE.name: TEMPLATE.read_text()}}}


@dataclass(frozen=True)
class RouteCase:
    why: str
    labels: dict[str, str]
    receivers: list[str]

    def amtool_args(self, config_file: Path) -> list[str]:
        return [
            "config",
            "routes",
            "test",
            f"--config.file={config_file}",
            f"--verify.receivers={','.join(self.receivers)}",
            *(f"{k}={v}" for k, v in sorted(self.labels.items())),
        ]


def route_cases(path: Path = ROUTE_TESTS) -> list[RouteCase]:
    return [
        RouteCase(c["why"], {k: str(v) for k, v in c["labels"].items()}, c["receivers"])
        for c in yaml.safe_load(path.read_text())
    ]


def check_config(config_file: Path) -> subprocess.CompletedProcess[str]:
    return run("amtool", "check-config", str(config_file))


def check_route(config_file: Path, case: RouteCase) -> subprocess.CompletedProcess[str]:
    return run("amtool", *case.amtool_args(config_file))


# Alertmanager's matcher syntax as used in this config: name, operator, double-quoted value.
MATCHER = re.compile(r'^\s*(\w+)\s*(=~|!~|!=|=)\s*"(.*)"\s*$')


def matches(matcher: str, labels: dict[str, str]) -> bool:
    m = MATCHER.match(matcher)
    if m is None:
        raise ValueError(f"unsupported matcher {matcher!r}")
    name, op, value = m.groups()
    actual = labels.get(name, "")
    if op in ("=~", "!~"):
        found = re.fullmatch(value, actual) is not None
        return found if op == "=~" else not found
    return (actual == value) if op == "=" else (actual != value)


def inhibits(config: dict[str, Any], source: dict[str, str], target: dict[str, str]) -> bool:
    """Whether a firing source alert mutes target under the config's inhibit_rules (Alertmanager's rule:
    source and target matchers match, the equal labels have the same value, missing counting as empty)."""
    for rule in config.get("inhibit_rules", []):
        if (
            all(matches(m, source) for m in rule.get("source_matchers", []))
            and all(matches(m, target) for m in rule.get("target_matchers", []))
            and all(source.get(k, "") == target.get(k, "") for k in rule.get("equal", []))
        ):
            return True
    return False


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m provisioning.observability.alertmanager")
    sub = parser.add_subparsers(dest="cmd", required=True)
    rend = sub.add_parser("render")
    rend.add_argument("dest", type=Path)
    rend.add_argument("--webhook-url-file")
    rend.add_argument("--bot-token-file")
    rend.add_argument("--api-url", default=SLACK_POST_MESSAGE)
    rend.add_argument("--channel")
    sub.add_parser("test")
    args = parser.parse_args(argv)
    if args.cmd == "render":
        print(
            write(
                args.dest,
                webhook_url_file=args.webhook_url_file,
                bot_token_file=args.bot_token_file,
                api_url=args.api_url,
                channel=args.channel,
            )
        )
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        config_file = write(Path(tmp), webhook_url_file="/nonexistent/slack-webhook-url")
        failed = 0
        proc = check_config(config_file)
        print(proc.stdout + proc.stderr)
        failed += proc.returncode != 0
        for case in route_cases():
            proc = check_route(config_file, case)
            print(f"{'ok  ' if proc.returncode == 0 else 'FAIL'} {case.why}: {proc.stdout.strip()}")
            failed += proc.returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
