"""The PrometheusRule manifests, their plain rule groups, and promtool's unit tests for them.

python -m provisioning.observability.rules extract DIR   # plain rule files for Prometheus / promtool
python -m provisioning.observability.rules test          # promtool check rules + test rules
"""

from __future__ import annotations

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

RULES_DIR = HERE / "rules"
TESTS_DIR = HERE / "rule-tests"


@dataclass(frozen=True)
class Alert:
    name: str
    group: str
    expr: str
    duration: str
    labels: dict[str, str]
    annotations: dict[str, str]


def manifests(rules_dir: Path = RULES_DIR) -> list[dict[str, Any]]:
    docs = []
    for path in sorted(rules_dir.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        if doc.get("kind") != "PrometheusRule":
            raise ValueError(f"{path}: expected kind PrometheusRule, got {doc.get('kind')!r}")
        docs.append(doc)
    return docs


def rule_file_name(manifest: dict[str, Any]) -> str:
    """The plain rule file a manifest extracts to; the promtool test files name it in rule_files."""
    return f"{manifest['metadata']['name']}.rules.yaml"


def extract(dest: Path, rules_dir: Path = RULES_DIR) -> list[Path]:
    """Write each PrometheusRule's spec.groups as a plain Prometheus rule file into dest."""
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for manifest in manifests(rules_dir):
        path = dest / rule_file_name(manifest)
        path.write_text(yaml.safe_dump({"groups": manifest["spec"]["groups"]}, sort_keys=False))
        written.append(path)
    return written


def alerts(rules_dir: Path = RULES_DIR) -> list[Alert]:
    found = []
    for manifest in manifests(rules_dir):
        for group in manifest["spec"]["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    found.append(
                        Alert(
                            name=rule["alert"],
                            group=group["name"],
                            expr=rule["expr"],
                            duration=rule.get("for", "0s"),
                            labels=rule.get("labels", {}),
                            annotations=rule.get("annotations", {}),
                        )
                    )
    return found


def unit_test_files(tests_dir: Path = TESTS_DIR) -> list[Path]:
    return sorted(tests_dir.glob("*.test.yaml"))


def unit_test_cases(tests_dir: Path = TESTS_DIR) -> list[dict[str, Any]]:
    """Every alert_rule_test case of every promtool test file."""
    cases = []
    for path in unit_test_files(tests_dir):
        for test in yaml.safe_load(path.read_text())["tests"]:
            cases += test.get("alert_rule_test", [])
    return cases


def coverage_problems(name: str, duration: str) -> list[str]:
    """What is missing for alert ``name``: the rule with that ``for``, a firing and a quiet test case."""
    rules_found = [a for a in alerts() if a.name == name]
    if not rules_found:
        return [f"{name}: no such alert rule"]
    problems = [
        f"{name}: `for` is {a.duration}, expected {duration}" for a in rules_found if a.duration != duration
    ]
    cases = [c for c in unit_test_cases() if c["alertname"] == name]
    if not any(c.get("exp_alerts") for c in cases):
        problems.append(f"{name}: no promtool test shows it firing")
    if not any(not c.get("exp_alerts") for c in cases):
        problems.append(f"{name}: no promtool test shows it staying quiet")
    return problems


def run_check(workdir: Path, rules_dir: Path = RULES_DIR) -> subprocess.CompletedProcess[str]:
    """promtool check rules on the extracted rule files (syntax, PromQL, templates)."""
    files = extract(workdir, rules_dir)
    return run("promtool", "check", "rules", *(str(f) for f in files))


def run_unit_tests(
    workdir: Path, rules_dir: Path = RULES_DIR, tests_dir: Path = TESTS_DIR
) -> subprocess.CompletedProcess[str]:
    """Run promtool's unit tests against the rules extracted from rules_dir, both copied into workdir."""
    extract(workdir, rules_dir)
    names = []
    for test in unit_test_files(tests_dir):
        shutil.copy(test, workdir / test.name)
        names.append(test.name)
    return run("promtool", "test", "rules", *names, cwd=workdir)


def main(argv: list[str]) -> int:
    if argv[:1] == ["extract"] and len(argv) == 2:
        for path in extract(Path(argv[1])):
            print(path)
        return 0
    if argv == ["test"]:
        with tempfile.TemporaryDirectory() as tmp:
            for proc in (run_check(Path(tmp) / "check"), run_unit_tests(Path(tmp) / "test")):
                print(proc.stdout + proc.stderr)
                if proc.returncode:
                    return proc.returncode
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
