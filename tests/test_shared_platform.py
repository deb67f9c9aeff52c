"""Two runs of the suite started together on one platform: both finish green, neither sweeps the other's
objects (nor those of a third run that is still alive), and their destructive scenarios never overlap."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from boutique_suite.actions.journal import Journal
from boutique_suite.clients.kube import Kube, connect_to
from boutique_suite.run import runlabel, targets
from provisioning.lab import manager

pytestmark = pytest.mark.lab
LAB = targets.load("lab")
# a non-destructive scenario that makes run-labelled objects (a test Deployment in a scratch namespace) and
# a destructive one (the platform-wide lock): both runs run both, at the same time
SCENARIOS = (
    "test_a_deleted_pod_is_replaced_by_its_replicaset"
    " or (test_forcedeleted_pods_of_a_deployment_come_back_on_their_own and redis)"
)
DESTRUCTIVE = "Force-deleted pods of a Deployment come back on their own"


def as_run(run_id: str) -> Kube:
    return connect_to(LAB, run_id)


def start(run_id: str, reports: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "BOUTIQUE_RUN_ID": run_id, "BOUTIQUE_REPORTS": str(reports)}
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "steps", "-k", SCENARIOS, "-p", "no:cacheprovider", "-q"],
        cwd=targets.ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def steps_window(reports: Path, scenario: str) -> tuple[int, int]:
    """When the scenario's steps ran (ms): inside the time its run held the destructive lock."""
    for path in (reports / "allure-results").glob("*-result.json"):
        result = json.loads(path.read_text())
        if result.get("name", "").startswith(scenario) and result.get("steps"):
            return result["steps"][0]["start"], result["steps"][-1]["stop"]
    raise AssertionError(f"{scenario!r} has no steps in {reports}")


def test_two_runs_started_together_both_pass_without_touching_each_other(tmp_path: Path) -> None:
    manager.up()
    third = as_run(f"alive-{runlabel.new_run_id()}")
    lease = Journal(third).open()
    canary = third.create_namespace("suite")  # a live run's object: both runs' sweeps must spare it
    first, second = f"first-{runlabel.new_run_id()}", f"second-{runlabel.new_run_id()}"
    try:
        runs = {run_id: start(run_id, tmp_path / run_id) for run_id in (first, second)}
        outputs = {run_id: proc.communicate(timeout=1200)[0] for run_id, proc in runs.items()}
        for run_id, proc in runs.items():
            assert proc.returncode == 0, f"run {run_id}:\n{outputs[run_id][-3000:]}"
            summary = json.loads((tmp_path / run_id / "summary.json").read_text())
            outcomes = sorted(e["outcome"] for e in summary["scenarios"].values())
            assert outcomes == ["passed", "passed"], f"run {run_id}: {summary['scenarios']}"
        one, two = (steps_window(tmp_path / run_id, DESTRUCTIVE) for run_id in (first, second))
        assert one[1] <= two[0] or two[1] <= one[0], f"destructive scenarios overlapped: {one} and {two}"
        assert third.core.read_namespace(canary).status.phase == "Active"
        for run_id in (first, second):  # each run removed its own objects, nobody else's
            left = third.core.list_namespace(label_selector=runlabel.selector(run_id)).items
            assert [n.metadata.name for n in left if n.status.phase == "Active"] == []
    finally:
        for proc in runs.values() if "runs" in locals() else ():
            proc.kill()
        third.delete_namespace(canary)
        lease.close()
