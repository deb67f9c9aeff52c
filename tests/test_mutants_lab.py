"""CI's subset of the mutation catalogue, on the lab: each fast mutation is committed to the lab's gitops-repo
as the platform's content, its catcher scenarios run against the real platform (a pytest run of their own)
and fail, and the platform is restored afterwards. The readiness probe on a wrong path is the broken-platform
case: the Boutique turns unhealthy, and the phase-4 scenarios fail naming layer 4, not skip."""

from __future__ import annotations

import json

import pytest

from boutique_suite.actions import mutants
from boutique_suite.run import targets
from provisioning import phase4_gitops
from provisioning.lab.services import boutique, gitrepos, gitserver

pytestmark = pytest.mark.lab
LAB = targets.load("lab")


@pytest.fixture(scope="module")
def results() -> list[mutants.Result]:
    found = mutants.run("lab", mutants.selected([], fast=True), targets.REPORTS / "mutants")
    mutants.write(found, targets.REPORTS)
    print(mutants.table(found))
    return found


def test_every_fast_mutation_is_caught_by_the_scenarios_it_names(results: list[mutants.Result]) -> None:
    assert [r.mutation for r in results if not r.caught] == [], mutants.table(results)
    for result in results:
        assert not result.error, result.error
        names = " ".join(result.caught_by)
        assert any(catcher in names for catcher in result.expected), (result.mutation, result.caught_by)


def test_a_boutique_made_unhealthy_by_a_commit_fails_its_scenarios_as_a_broken_platform(
    results: list[mutants.Result],
) -> None:
    run = targets.REPORTS / "mutants" / "readiness-probe-wrong-path"
    summary = json.loads((run / "summary.json").read_text())
    entries = list(summary["scenarios"].values())
    assert entries and all(e["outcome"] == "failed" for e in entries), entries
    assert all(e["execution"] == "broken-platform" for e in entries), entries
    assert all(e["reason"].startswith("layer 4 (GitOps) broken: ") for e in entries), entries
    [broken] = summary["broken"]
    assert "frontend" in " ".join(broken["evidence"]), broken  # the pod that is not Ready, with its events
    page = (run / "run-pages" / "broken-platform.md").read_text()
    assert "Readiness probe failed" in page or "/healthz" in page, page[:2000]


def test_the_platform_is_restored_after_the_mutations(results: list[mutants.Result]) -> None:
    server = gitserver.running()
    assert server is not None
    assert gitrepos.head(server, "gitops-repo") == boutique.publish_gitops_content(server)  # no new commit
    state = phase4_gitops.check_application(LAB)
    assert state.ready, state.detail
