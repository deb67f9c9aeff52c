"""The report's first page says what the run proved: real / simulated / static / skipped / failed / broken-
platform counts per phase and the mutation score (boutique_suite.reporting.overview), and the run's own pages
are attached to the run, not counted as scenarios. The real Allure 3 generator renders a planted run."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

from boutique_suite.reporting import overview
from boutique_suite.run import targets

ROOT = targets.ROOT
SUMMARY = {
    "target": "lab",
    "broken": [{"cause": "layer 4 (GitOps) broken: health Degraded", "scenarios": ["b"], "evidence": []}],
    "scenarios": {
        "a": {"scenario": "a", "outcome": "passed", "execution": "real", "tags": ["phase2", "nightly"]},
        "s": {"scenario": "s", "outcome": "passed", "execution": "simulated", "tags": ["phase2"]},
        "k": {"scenario": "k", "outcome": "skipped", "execution": "skipped", "tags": ["phase6"]},
        "b": {"scenario": "b", "outcome": "failed", "execution": "broken-platform", "tags": ["phase4"]},
        "f": {"scenario": "f", "outcome": "failed", "execution": "real", "tags": ["phase4"]},
        "t": {"scenario": "t", "outcome": "passed", "execution": "static", "tags": []},
    },
}
MUTANTS = [{"mutation": "hpa-max-1", "caught": True}, {"mutation": "np-deny", "caught": False}]


def test_the_first_page_counts_each_phase_and_gives_the_mutation_score() -> None:
    found = overview.variables(SUMMARY, MUTANTS)
    assert found["scenarios"] == "1 real · 1 simulated · 1 static · 1 skipped · 1 failed · 1 broken platform"
    assert found["phase 2"] == "1 real · 1 simulated · 0 static · 0 skipped · 0 failed · 0 broken platform"
    assert found["phase 4"] == "0 real · 0 simulated · 0 static · 0 skipped · 1 failed · 1 broken platform"
    assert found["no phase"].startswith("0 real · 0 simulated · 1 static")
    assert found["platform"] == "broken: layer 4 (GitOps) broken: health Degraded"
    assert found["mutation score"] == "1/2 caught; escaped: np-deny"
    assert overview.variables({"scenarios": {}}, None)["mutation score"].startswith("not measured")


def widget(html: str, name: str) -> object:
    encoded = re.search(rf'd\("widgets/{re.escape(name)}","([^"]*)"\)', html)
    assert encoded, f"no widget {name} in the report"
    return json.loads(base64.b64decode(encoded.group(1)))


def test_allure_shows_the_counts_first_and_attaches_the_run_pages_to_the_run(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    results = reports / "allure-results"
    results.mkdir(parents=True)
    (results / "1-result.json").write_text(
        json.dumps({"uuid": "1", "name": "one scenario", "status": "passed", "start": 1, "stop": 2})
    )
    (reports / "summary.json").write_text(json.dumps(SUMMARY))
    (reports / "mutants.json").write_text(json.dumps(MUTANTS))
    overview.write(reports)
    pages = reports / "run-pages"
    pages.mkdir()
    (pages / "traceability.md").write_text("| item | scenario |")
    env = {**os.environ, "BOUTIQUE_REPORTS": str(reports)}
    subprocess.run(
        [shutil.which("npx") or "npx", "--no-install", "allure", "generate", str(results), "--config",
         str(ROOT / "allurerc.mjs")],
        cwd=ROOT, env=env, check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    html = (reports / "allure-report" / "index.html").read_text()
    assert widget(html, "variables.json") == overview.variables(SUMMARY, MUTANTS)
    assert [a["name"] for a in widget(html, "globals.json")["attachments"]] == ["traceability.md"]  # type: ignore[index]
    assert widget(html, "statistic.json")["total"] == 1  # type: ignore[index]
