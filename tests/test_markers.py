"""Marker selection: `pytest -m phaseN` selects exactly the scenarios tagged @phaseN."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from test_traceability import ROOT, SCENARIOS, ScenarioRef

OUTLINE_PARAM = re.compile(r"\[.*\]$")


def collected(marker: str, *paths: str) -> list[str]:
    """Node ids pytest collects for ``marker`` (in ``paths``; default: the scenarios), in run order."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            *(paths or ("steps",)),
            "-m",
            marker,
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode in (0, 5), proc.stdout + proc.stderr
    return [line for line in proc.stdout.splitlines() if "::" in line]


def function_name(scenario: ScenarioRef) -> str:
    """pytest-bdd's test name for a scenario: test_ + the name lowercased, non-word characters dropped."""
    words = re.sub(r"[^\w\s]", "", scenario.name.lower()).split()
    return "test_" + "_".join(words)


@pytest.mark.parametrize("phase", range(8))
def test_phase_marker_selects_exactly_its_scenarios(phase: int) -> None:
    expected = sorted(function_name(s) for s in SCENARIOS if f"phase{phase}" in s.tags)
    got = sorted({OUTLINE_PARAM.sub("", line.split("::")[-1]) for line in collected(f"phase{phase}")})
    assert got == expected


def test_phase3_selection_has_no_other_phase() -> None:
    lines = collected("phase3")
    assert lines, "no phase-3 scenario collected"
    others = collected("phase3 and (phase0 or phase1 or phase2 or phase4 or phase5 or phase6 or phase7)")
    assert others == []


def test_a_test_that_wipes_the_lab_runs_before_every_other_lab_test() -> None:
    """Run later, it would wipe the layers that the tests before it built, built again after it."""
    ids = collected("not offline", "tests", "steps")
    wiping = "tests/test_lab.py::test_down_leaves_no_process_and_up_restores"
    assert wiping in ids and ids[0] == wiping, ids[:3]
