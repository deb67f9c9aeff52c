"""Nightly as code: the one Slack message a run ends with, and gitops-repo's scheduled ``nightly`` job run on
the lab through gitlab-ci-local exactly as the schedule runs it (a real pytest run of the suite against the
lab, its report as the job's artifact, its summary posted to the lab's Slack receiver)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from boutique_suite.clients import slack
from boutique_suite.reporting import nightly
from boutique_suite.run import targets
from provisioning.lab import manager
from provisioning.lab.services import monitoring, pipeline

LAB = targets.load("lab")
SCENARIO = "test_all_online_boutique_services_are_deployed_and_available"


def summary(failed: int = 0) -> dict:
    scenarios = {
        "drift": {
            "scenario": "Argo CD reverts a wrong change made by hand",
            "tags": ["chaos", "nightly"],
            "outcome": "passed",
            "execution": "real",
            "timings_seconds": {"drift_recovery_seconds": 42.25},
            "budgets_seconds": {"drift_recovery_seconds": 120},
        },
        "ci": {"scenario": "The deploy job", "outcome": "passed", "execution": "simulated", "tags": []},
        "lint": {"scenario": "Lint", "outcome": "passed", "execution": "static", "tags": []},
        "gone": {"scenario": "Registry", "outcome": "skipped", "execution": "skipped", "reason": "x"},
    }
    for n in range(failed):
        scenarios[f"f{n}"] = {"scenario": f"Broken {n}", "outcome": "failed", "execution": "real", "tags": []}
    return {"target": "onprem", "finished": "2026-12-03T02:41:00Z", "scenarios": scenarios}


def test_the_message_gives_counts_slowest_recoveries_and_the_report() -> None:
    text = nightly.message(summary(), "https://gitlab.local/boutique/gitops-repo/-/jobs/7/artifacts")
    assert text.splitlines() == [
        "*Nightly verification of `onprem` :large_green_circle: passed* (2026-12-03T02:41:00Z)",
        "3 passed (1 real, 1 simulated, 1 static) · 0 failed · 1 skipped",
        "Slowest recoveries: drift_recovery_seconds 42.2 s of 120 s"
        " (Argo CD reverts a wrong change made by hand)",
        "Report: https://gitlab.local/boutique/gitops-repo/-/jobs/7/artifacts",
    ]


def test_a_failed_run_names_its_failures_and_says_how_many_more() -> None:
    text = nightly.message(summary(failed=7), "r")
    assert ":red_circle: failed" in text and "· 7 failed ·" in text
    assert "Failed: Broken 0; Broken 1; Broken 2; Broken 3; Broken 4 and 2 more" in text


def test_a_broken_platform_says_so_with_its_first_cause() -> None:
    broken = summary(failed=2)
    cause = "layer 4 (GitOps) broken: Application online-boutique-dev: health Degraded"
    broken["broken"] = [
        {"cause": cause, "scenarios": ["Broken 0", "Broken 1"], "evidence": []},
        {"cause": "layer 6 (observability) broken: Prometheus not ready", "scenarios": [], "evidence": []},
    ]
    text = nightly.message(broken, "r")
    assert ":red_circle: platform broken" in text.splitlines()[0]
    assert f"First cause: {cause} (failed 2 scenarios;" in text
    assert "layer 6" not in text
    assert "platform broken" not in nightly.message(summary(failed=2), "r")


def test_a_run_that_wrote_no_summary_still_says_so(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = nightly.main(["--summary", str(tmp_path / "missing.json"), "--target", "lab", "--dry-run"])
    assert code == 0
    assert "did not run" in capsys.readouterr().out


def test_an_unreachable_slack_is_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    source = tmp_path / "summary.json"
    source.write_text(json.dumps(summary()))
    code = nightly.main(["--summary", str(source), "--target", str(tmp_path / "nowhere.yaml")])
    assert code == 1
    assert "the summary was not posted to Slack" in capsys.readouterr().err


# --- the scheduled job on the lab ------------------------------------------------------------------------


def git(cwd: Path, *args: str) -> None:
    env = {"GIT_AUTHOR_NAME": "dev", "GIT_AUTHOR_EMAIL": "dev@boutique.local", "PATH": "/usr/bin:/bin"}
    env |= {"GIT_COMMITTER_NAME": "dev", "GIT_COMMITTER_EMAIL": "dev@boutique.local", "HOME": str(cwd)}
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


@pytest.fixture
def gitops_ci(tmp_path: Path) -> Path:
    """A checkout of gitops-repo's pipeline as the schedule sees it (the job needs no other content)."""
    work = tmp_path / "gitops-repo"
    work.mkdir()
    shutil.copy(pipeline.ROOT / "provisioning" / "cicd" / "gitops-repo" / ".gitlab-ci.yml", work)
    git(work, "init", "--quiet", "--initial-branch=main")
    git(work, "add", "--all")
    git(work, "commit", "--quiet", "-m", "the pipeline")
    return work


@pytest.mark.lab
def test_the_nightly_schedule_runs_the_suite_keeps_the_report_and_posts_one_message(gitops_ci: Path) -> None:
    if missing := pipeline.missing_tools():
        pytest.skip("; ".join(missing))
    manager.up()
    monitoring.ensure(channel=LAB.slack.channel)  # the Slack receiver
    channel = slack.Channel.open(LAB)
    since = time.time()
    report = gitops_ci / "report"
    result = pipeline.run_pipeline(
        gitops_ci,
        ["nightly"],
        {
            "CI_PIPELINE_SOURCE": "schedule",
            "SCHEDULE": "nightly",
            "SUITE_DIR": str(pipeline.ROOT),
            "TARGET": "lab",
            "NIGHTLY_PYTEST_ARGS": f"-k {SCENARIO} -p no:cacheprovider",
            "NIGHTLY_REPORT_URL": report.joinpath("allure-report", "index.html").as_uri(),
        },
        timeout=900,
    )
    assert result.passed, result.log[-4000:]
    ran = json.loads((report / "summary.json").read_text())
    assert [(e["outcome"], e["execution"]) for e in ran["scenarios"].values()] == [("passed", "real")]
    assert (report / "allure-report" / "index.html").is_file()
    assert (report / "resilience.md").is_file()
    posted = [
        m for m in channel.messages_since(since) if "Nightly verification of `lab`" in m.get("text", "")
    ]
    assert len(posted) == 1, posted
    assert "1 passed (1 real, 0 simulated, 0 static) · 0 failed · 0 skipped" in posted[0]["text"]
    assert report.joinpath("allure-report", "index.html").as_uri() in posted[0]["text"]
