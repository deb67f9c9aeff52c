"""The catalogue of wrong changes (boutique_suite.actions.mutants), offline: every mutation applies to today's
gitops content and still renders (a wrong change, not a broken file), every catcher names a scenario that
exists, the table and score say what escaped, and bad input gets one clear message."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from boutique_suite.actions import mutants, mutations
from provisioning.cicd import APP_REPO
from provisioning.gitops import ROOT as GITOPS
from provisioning.gitops.checks import render

GITOPS_MUTATIONS = [m for m in mutations.CATALOGUE if m.repo == mutations.GITOPS_REPO]
APP_MUTATIONS = [m for m in mutations.CATALOGUE if m.repo == mutations.APP_REPO]


@pytest.mark.parametrize("mutation", GITOPS_MUTATIONS, ids=lambda m: m.name)
def test_each_mutation_changes_its_file_and_the_content_still_renders(
    mutation: mutations.Mutation, tmp_path: Path
) -> None:
    content = mutants.mutated_content(mutation, tmp_path)
    before, after = (GITOPS / mutation.path).read_text(), (content / mutation.path).read_text()
    assert after != before
    list(yaml.safe_load_all(after))
    for path in ("overlays/dev", "platform/config/monitoring"):
        assert render.kustomize(path, content)  # BuildFailed would say why
    untouched = [p for p in GITOPS.rglob("*.yaml") if "checks" not in p.parts]
    changed = [p for p in untouched if (content / p.relative_to(GITOPS)).read_text() != p.read_text()]
    assert [p.relative_to(GITOPS).as_posix() for p in changed] == [mutation.path]


@pytest.mark.parametrize("mutation", APP_MUTATIONS, ids=lambda m: m.name)
def test_each_app_repo_mutation_changes_only_its_file_and_the_pipeline_still_parses(
    mutation: mutations.Mutation, tmp_path: Path
) -> None:
    content = mutants.mutated_content(mutation, tmp_path)
    own = [p for p in APP_REPO.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    changed = [
        p.relative_to(APP_REPO).as_posix()
        for p in own
        if (content / p.relative_to(APP_REPO)).read_bytes() != p.read_bytes()
    ]
    assert changed == [mutation.path]
    assert yaml.safe_load((content / ".gitlab-ci.yml").read_text())["stages"]
    if mutation.path.endswith(".sh"):
        assert subprocess.run(["sh", "-n", str(content / mutation.path)]).returncode == 0


def test_an_app_repo_mutant_is_what_the_lab_publishes_as_app_repo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from provisioning import cicd

    content = mutants.mutated_content(APP_MUTATIONS[0], tmp_path)
    assert cicd.app_source() == APP_REPO
    monkeypatch.setenv(cicd.APP_SOURCE_ENV, str(content))
    assert cicd.app_source() == content


def test_a_mutation_that_no_longer_applies_says_which_and_why(tmp_path: Path) -> None:
    stale = mutations.Mutation(
        "stale", "x", "base/frontend.yaml", mutations.replace_all("no such text", "y"), ("x",)
    )
    with pytest.raises(mutations.MutationError, match="'no such text' is not in the file"):
        mutants.mutated_content(stale, tmp_path)
    gone = mutations.Mutation(
        "gone", "x", "base/frontend.yaml", mutations.edit_object("Deployment", "nobody", dict), ("x",)
    )
    with pytest.raises(mutations.MutationError, match="no Deployment nobody to mutate"):
        mutants.mutated_content(gone, tmp_path / "2")


@pytest.fixture(scope="module")
def scenario_names() -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", mutants.SCENARIOS, "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=mutants.ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    names = [line for line in proc.stdout.splitlines() if "::" in line]
    assert names, proc.stdout[-2000:] + proc.stderr[-2000:]
    return names


@pytest.mark.parametrize("mutation", mutations.CATALOGUE, ids=lambda m: m.name)
def test_every_catcher_names_a_scenario_of_the_suite(mutation: mutations.Mutation, scenario_names) -> None:  # type: ignore[no-untyped-def]
    for catcher in mutation.catchers:
        assert any(catcher in name for name in scenario_names), f"no scenario matches {catcher}"


def test_the_catalogue_covers_what_the_platform_gets_wrong() -> None:
    names = {m.name for m in mutations.CATALOGUE}
    assert len(names) == len(mutations.CATALOGUE)
    assert {
        "self-heal-off",
        "readiness-probe-wrong-path",
        "hpa-max-1",
        "service-selects-no-pods",
        "requests-removed",
        "slack-channel-changed",
        "alert-never-fires",
        "pull-secret-dropped",
        "network-policy-denies-checkout-to-payment",
        "wrong-image-tag",
        "images-tagged-by-branch",
        "push-without-credentials",
    } <= names
    assert [m.name for m in mutants.selected([], fast=True)] == [
        m.name for m in mutations.CATALOGUE if m.fast
    ]


def test_the_table_gives_catchers_time_to_catch_escapes_and_the_score() -> None:
    results = [
        mutants.Result("hpa-max-1", "cap", ["hpas_guard"], ["test_hpas_guard"], 41.2, 60.0),
        mutants.Result("np", "deny", ["journey"], [], None, 30.0, lab_blind="no enforcer"),
        mutants.Result("gone", "x", ["y"], [], None, 0.0, error="no Deployment nobody to mutate"),
    ]
    text = mutants.table(results)
    assert "| hpa-max-1: cap | hpas_guard | test_hpas_guard | 41 s | 60 s |" in text
    assert "**escaped** (no enforcer)" in text and "**error**: no Deployment nobody" in text
    assert text.endswith("Mutation score: 1/3 caught.")


def test_failures_are_read_in_run_order_with_the_time_to_the_first(tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    junit.write_text(
        '<testsuites><testsuite><testcase name="a" time="10.5"/>'
        '<testcase name="b" time="20"><failure message="layer 4 broken"/></testcase>'
        '<testcase name="c" time="5"><failure message="x"/></testcase></testsuite></testsuites>'
    )
    assert mutants._failures(junit) == (["b", "c"], 30.5)
    assert mutants._failures(tmp_path / "missing.xml") == ([], None)


def test_bad_input_gets_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert mutants.main(["--only", "no-such-mutation"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mutants: no mutation named no-such-mutation; the catalogue: ")
    assert err.count("\n") == 1
    assert mutants.main(["--target", "targets/onprem.example.yaml", "--only", "hpa-max-1"]) == 2
    assert "mutations are applied through the lab's gitops and app content" in capsys.readouterr().err


def test_the_content_is_restored_once_after_the_last_mutation_also_when_a_run_is_interrupted(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Each catcher run publishes its own copy of the content, replacing the mutation before it: one restore
    at the end, and one when a run is interrupted."""
    events: list[str] = []

    class Site:
        def mutations_missing(self) -> str:
            return ""

    def catchers(mutation: mutations.Mutation, target: str, reports: Path) -> mutants.Result:
        events.append(mutation.name)
        if mutation.name == "interrupted":
            raise KeyboardInterrupt
        return mutants.Result(mutation.name, mutation.what, [], ["caught"], 1.0, 2.0)

    monkeypatch.setattr(mutants.targets, "load", lambda name: name)
    monkeypatch.setattr(mutants, "site_for", lambda target: Site())
    monkeypatch.setattr(mutants, "run_catchers", catchers)
    monkeypatch.setattr(mutants, "restore", lambda target: events.append(f"restore {target}"))
    first, second = mutations.CATALOGUE[:2]
    assert [r.mutation for r in mutants.run("lab", [first, second], tmp_path)] == [first.name, second.name]
    assert events == [first.name, second.name, "restore lab"]

    events.clear()
    interrupted = mutations.Mutation("interrupted", "stopped by a person", first.path, first.edit, ())
    with pytest.raises(KeyboardInterrupt):
        mutants.run("lab", [first, interrupted, second], tmp_path)
    assert events == [first.name, "interrupted", "restore lab"]
