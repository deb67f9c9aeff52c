"""The suite measures itself: a catalogue of wrong changes a person might commit to gitops-repo or app-repo
(mutations), each with the scenarios expected to catch it. The run applies one mutation, runs its catchers
against the target, reverts, and tells whether the suite noticed: a mutation no scenario catches is a gap in
the suite.

    python -m boutique_suite.actions.mutants [--fast] [--only NAME ...] [--list]     (./run mutants)

On the lab a mutation is applied as the platform's gitops content: a copy of provisioning/gitops with the
wrong change, named by $BOUTIQUE_GITOPS_SOURCE, which the lab publishes to gitops-repo as a commit (Argo CD
syncs it from there) and renders its monitoring config from, for the whole catcher run; an app-repo
mutation likewise, as a copy of provisioning/cicd/app-repo named by $BOUTIQUE_APP_SOURCE, which the lab
publishes as app-repo (its pipeline runs from there). The revert is the lab's layers ensured again without
it. The results go to ``reports/mutants.md`` and ``reports/mutants.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from boutique_suite.actions.mutations import APP_REPO, CATALOGUE, Mutation, MutationError
from boutique_suite.context.sites import site_for
from boutique_suite.run import targets

ROOT = targets.ROOT
SCENARIOS = "steps/test_scenarios.py"
CATCHER_TIMEOUT = 1800  # seconds for one mutation's catcher run, whatever its scenarios' own timeouts


# --- the run ------------------------------------------------------------------------------------------------


@dataclass
class Result:
    mutation: str
    what: str
    expected: list[str]
    caught_by: list[str]  # the scenarios that failed while it was applied
    seconds_to_catch: float | None  # from the run's start to the end of the first scenario that failed
    seconds: float  # the whole catcher run
    lab_blind: str = ""
    error: str = ""  # the mutation could not be applied or its run did not finish

    @property
    def caught(self) -> bool:
        return bool(self.caught_by)


def own_content(mutation: Mutation) -> tuple[Path, str]:
    """The suite's own content of the repository ``mutation`` changes, and the variable that names a
    mutant copy of it to the lab."""
    from provisioning import cicd, gitops

    if mutation.repo == APP_REPO:
        return cicd.APP_REPO, cicd.APP_SOURCE_ENV
    return gitops.ROOT, gitops.SOURCE_ENV


def mutated_content(mutation: Mutation, into: Path) -> Path:
    """A copy of the content of the repository ``mutation`` changes, with it applied (gitops-repo's without
    the suite's static checks and Python, which are not part of it)."""
    source, _ = own_content(mutation)
    content = into / mutation.repo
    left_out = ("__pycache__",) if mutation.repo == APP_REPO else ("checks", "*.py", "__pycache__")
    shutil.copytree(source, content, ignore=shutil.ignore_patterns(*left_out))
    mutation.apply(content)
    return content


def _failures(junit: Path) -> tuple[list[str], float | None]:
    """The failed test cases of a JUnit file in run order, and the seconds until the first one ended."""
    if not junit.is_file():
        return [], None
    failed, elapsed, first = [], 0.0, None
    for case in ET.parse(junit).getroot().iter("testcase"):
        elapsed += float(case.get("time") or 0)
        if case.find("failure") is not None or case.find("error") is not None:
            failed.append(str(case.get("name")))
            first = elapsed if first is None else first
    return failed, first


def run_catchers(mutation: Mutation, target: str, reports: Path) -> Result:
    """Apply ``mutation`` for one pytest run of its catchers against ``target``; what they caught."""
    _, source_env = own_content(mutation)
    out = reports / mutation.name
    shutil.rmtree(out, ignore_errors=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"mutant-{mutation.name}-") as tmp:
        try:
            content = mutated_content(mutation, Path(tmp))
        except (MutationError, OSError, KeyError, yaml.YAMLError) as exc:
            return Result(
                mutation.name, mutation.what, list(mutation.catchers), [], None, 0.0, error=str(exc)
            )
        env = {**os.environ, source_env: str(content), "BOUTIQUE_REPORTS": str(out)}
        command = [
            sys.executable, "-m", "pytest", SCENARIOS, "-p", "no:cacheprovider", "-q", "--no-header",
            f"--target={target}", "-k", " or ".join(mutation.catchers),
            f"--junitxml={out / 'junit.xml'}", f"--alluredir={out / 'allure-results'}",
        ]  # fmt: skip
        try:
            proc = subprocess.run(
                command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=CATCHER_TIMEOUT
            )
            error = (
                "" if proc.returncode in (0, 1) else f"pytest exited {proc.returncode}: {proc.stdout[-500:]}"
            )
        except subprocess.TimeoutExpired:
            error = f"the catcher run did not end within {CATCHER_TIMEOUT} s"
    failed, first = _failures(out / "junit.xml")
    return Result(
        mutation.name,
        mutation.what,
        list(mutation.catchers),
        failed,
        first,
        round(time.monotonic() - started, 1),
        mutation.lab_blind,
        error,
    )


def restore(target: targets.Target) -> None:
    """The platform as the suite's own content has it: gitops-repo and app-repo republished, Argo CD synced
    and healthy, the monitoring config rendered again (layers 4 to 6 ensured without the mutant)."""
    from provisioning import LayerRunner

    LayerRunner(target).require(6)  # this process sets neither variable: the suite's own content


def run(target_name: str, mutations: Iterable[Mutation], reports: Path) -> list[Result]:
    """Each mutation in turn: applied, its catchers run; the suite's own content restored after the last one
    (also when the run is interrupted). Not between two mutations: every catcher run ensures the layers its
    scenarios need from its own copy of the content, which replaces what the mutation before it published,
    so a restore in between only cost a sync and a rollout (about 30 s each)."""
    target = targets.load(target_name)
    if missing := site_for(target).mutations_missing():
        raise MutationError(f"target {target.name}: {missing}")
    results = []
    try:
        for mutation in mutations:
            print(
                f"mutants: {mutation.name}: {mutation.what}; catchers: {', '.join(mutation.catchers)}",
                flush=True,
            )
            result = run_catchers(mutation, target_name, reports)
            results.append(result)
            verdict = "caught" if result.caught else ("ERROR " + result.error if result.error else "ESCAPED")
            print(f"mutants: {mutation.name}: {verdict} in {result.seconds:.0f} s", flush=True)
    finally:
        restore(target)
    return results


def table(results: Sequence[Result]) -> str:
    """The run's table in Markdown: mutation, expected catchers, caught by, time to catch; then the score."""
    lines = [
        "| mutation | expected catchers | caught by | time to catch | run |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        if r.caught:
            caught = "; ".join(r.caught_by)
        elif r.error:
            caught = f"**error**: {r.error}"
        else:
            caught = "**escaped**" + (f" ({r.lab_blind})" if r.lab_blind else "")
        to_catch = f"{r.seconds_to_catch:.0f} s" if r.seconds_to_catch is not None else "-"
        lines.append(
            f"| {r.mutation}: {r.what} | {'; '.join(r.expected)} | {caught} | {to_catch} "
            f"| {r.seconds:.0f} s |"
        )
    score = sum(r.caught for r in results)
    lines += ["", f"Mutation score: {score}/{len(results)} caught."]
    return "\n".join(lines)


def write(results: Sequence[Result], reports: Path) -> Path:
    reports.mkdir(parents=True, exist_ok=True)
    (reports / "mutants.json").write_text(
        json.dumps([asdict(r) | {"caught": r.caught} for r in results], indent=2)
    )
    path = reports / "mutants.md"
    path.write_text("# Mutations of the platform and what caught them\n\n" + table(results) + "\n")
    return path


def selected(only: Sequence[str], fast: bool) -> list[Mutation]:
    names = {m.name for m in CATALOGUE}
    unknown = sorted(set(only) - names)
    if unknown:
        raise MutationError(
            f"no mutation named {', '.join(unknown)}; the catalogue: {', '.join(sorted(names))}"
        )
    return [m for m in CATALOGUE if (not only or m.name in only) and (m.fast or not fast)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m boutique_suite.actions.mutants", description=__doc__)
    parser.add_argument("--target", default="lab")
    parser.add_argument("--fast", action="store_true", help="only the mutations caught fast (CI's subset)")
    parser.add_argument("--only", nargs="*", default=[], metavar="NAME", help="these mutations only")
    parser.add_argument("--list", action="store_true", help="print the catalogue and stop")
    args = parser.parse_args(argv)
    try:
        chosen = selected(args.only, args.fast)
        if args.list:
            for m in chosen:
                blind = f" [lab blind: {m.lab_blind}]" if m.lab_blind else ""
                print(f"{m.name}{' (fast)' if m.fast else ''}: {m.what} -> {', '.join(m.catchers)}{blind}")
            return 0
        results = run(args.target, chosen, targets.REPORTS / "mutants")
    except (MutationError, targets.TargetError) as exc:
        print(f"mutants: {exc}", file=sys.stderr)
        return 2
    path = write(results, targets.REPORTS)
    print(table(results))
    print(f"mutants: table in {path}")
    return 0 if all(r.caught or r.lab_blind for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
