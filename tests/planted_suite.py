"""The head of a planted project's conftest.py: the suite's own conftest loaded from its file and the named
hooks and fixtures taken from it, so a planted feature runs with the suite's wiring and no cluster."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from boutique_suite.run import targets

HOOKS = (
    "pytest_addoption", "pytest_configure", "target", "execution", "pytest_bdd_before_scenario",
    "pytest_bdd_before_step", "pytest_runtest_makereport", "pytest_bdd_after_scenario",
)  # fmt: skip


def conftest(extra: Iterable[str] = ()) -> str:
    """Source of a conftest.py that borrows the suite's ``HOOKS`` and ``extra``; the planted project adds its
    own lines after it (imports of the suite's modules come after it too: Locust must be imported first)."""
    names = ", ".join(repr(name) for name in (*HOOKS, *extra))
    return f"""
import importlib.util
from pathlib import Path

import pytest

spec = importlib.util.spec_from_file_location("suite_conftest", {str(targets.ROOT / "conftest.py")!r})
suite = importlib.util.module_from_spec(spec)
spec.loader.exec_module(suite)
for name in ({names},):
    globals()[name] = getattr(suite, name)
"""


def run(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    conftest_source: str,
    feature: str,
    steps: str,
    alluredir: str,
) -> pytest.RunResult:
    """Plant the project (conftest, planted.feature, its steps) and run it against the lab target file in a
    child pytest that imports the suite from this checkout: no cluster is touched, the suite's hooks do the
    rest."""
    monkeypatch.setenv("PYTHONPATH", str(targets.ROOT))
    pytester.makeconftest(conftest_source)
    pytester.makefile(".feature", planted=feature)
    pytester.makepyfile(test_planted=steps)
    target = f"--target={targets.ROOT / 'targets' / 'lab.yaml'}"
    return pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-p", "no:allure_pytest", f"--alluredir={alluredir}", target
    )
