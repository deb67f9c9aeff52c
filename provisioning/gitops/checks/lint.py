"""yamllint over every YAML file of the content, with the rules in .yamllint.yaml beside the content."""

from __future__ import annotations

from pathlib import Path

from yamllint import linter
from yamllint.config import YamlLintConfig

from provisioning.gitops import ROOT
from provisioning.gitops.checks import Finding

CONFIG = ROOT / ".yamllint.yaml"


def yaml_files(root: Path) -> list[Path]:
    return sorted(
        p for p in root.rglob("*.y*ml") if p.suffix in (".yaml", ".yml") and "checks" not in p.parts
    )


def check(root: Path = ROOT) -> list[Finding]:
    conf = YamlLintConfig(file=str(CONFIG))
    findings = []
    for path in yaml_files(root):
        for problem in linter.run(path.read_text(), conf, str(path)):
            where = f"{path.relative_to(root)}:{problem.line}:{problem.column}"
            findings.append(Finding("File", "", where, f"yamllint/{problem.rule}", problem.desc))
    return findings
