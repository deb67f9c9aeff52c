"""The suite's own offline tests, run beside the lab's session.

``./run tests`` starts a second pytest over the tests that need no lab (marker ``offline``, given by
conftest.py to every test under tests/ without ``lab``) with its reports in ``reports/offline/``, while the
main session builds the lab and runs everything that needs it: the lab spends most of its time waiting on
platform timers, so the offline tests cost the run almost nothing. When both have finished, ``merge`` puts
the offline results into the run's Allure results and timing table, and says how they went.

    python -m boutique_suite.reporting.beside <reports> <exit code of the offline session>
"""

from __future__ import annotations

import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from boutique_suite.reporting import timings

SIDE = "offline"  # reports/<SIDE>/: the offline session's allure-results, junit.xml, timings.json, pytest.log


def _counts(junit: Path) -> dict[str, int]:
    root = ET.parse(junit).getroot()
    suites = [root] if root.tag == "testsuite" else list(root)
    return {
        key: sum(int(s.get(key, 0)) for s in suites) for key in ("tests", "failures", "errors", "skipped")
    }


def _failed(junit: Path) -> list[str]:
    return [
        f"{case.get('classname')}::{case.get('name')}"
        for case in ET.parse(junit).getroot().iter("testcase")
        if case.find("failure") is not None or case.find("error") is not None
    ]


def merge(reports: Path) -> None:
    """The offline session's Allure results and timings into the run's own."""
    side = reports / SIDE
    results = side / "allure-results"
    if results.is_dir():
        (reports / "allure-results").mkdir(parents=True, exist_ok=True)
        for item in results.iterdir():
            shutil.copy2(item, reports / "allure-results" / item.name)
    table = [row for session in (reports, side) for row in timings.read(session) or []]
    if table:
        timings.write(sorted(table, key=lambda row: -row[2]), reports)


def summary(reports: Path, returncode: int) -> str:
    """One line on the offline session (and each failed test), from its JUnit file."""
    side = reports / SIDE
    junit = side / "junit.xml"
    if not junit.exists():
        return f"offline tests: no result (exit {returncode}); see {side / 'pytest.log'}"
    c = _counts(junit)
    passed = c["tests"] - c["failures"] - c["errors"] - c["skipped"]
    lines = [
        f"offline tests (beside the lab, {side / 'pytest.log'}): {passed} passed, {c['failures']} failed, "
        f"{c['errors']} errors, {c['skipped']} skipped"
    ]
    lines += [f"  FAILED {name}" for name in _failed(junit)]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    reports, returncode = Path(argv[1]), int(argv[2])
    merge(reports)
    print(summary(reports, returncode))
    return returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv))
