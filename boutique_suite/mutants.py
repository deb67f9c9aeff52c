"""The suite measures itself: a catalogue of wrong changes a person might commit to gitops-repo (mutations),
each with the scenarios expected to catch it. The run applies one mutation, runs its catchers against the
target, reverts, and tells whether the suite noticed: a mutation no scenario catches is a gap in the suite.

    python -m boutique_suite.mutants [--fast] [--only NAME ...] [--list]     (./run mutants)

On the lab a mutation is applied as the platform's gitops content: a copy of provisioning/gitops with the
wrong change, named by $BOUTIQUE_GITOPS_SOURCE, which the lab publishes to gitops-repo as a commit (Argo CD
syncs it from there) and renders its monitoring config from, for the whole catcher run. The revert is the
lab's layers ensured again without it. The results go to ``reports/mutants.md`` and ``reports/mutants.json``.
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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from boutique_suite import targets
from boutique_suite.cicd import IMAGE_PREFIX
from boutique_suite.gitops_repo import set_image_tag
from boutique_suite.sites import site_for

ROOT = targets.ROOT
SCENARIOS = "steps/test_scenarios.py"
CATCHER_TIMEOUT = 1800  # seconds for one mutation's catcher run, whatever its scenarios' own timeouts


# --- the wrong changes ------------------------------------------------------------------------------------


def edit_object(kind: str, name: str, change: Callable[[dict[str, Any]], None]) -> Callable[[str], str]:
    """An edit of a multi-document YAML file: ``change`` the object ``kind``/``name`` in place."""

    def edit(text: str) -> str:
        docs = list(yaml.safe_load_all(text))
        found = [d for d in docs if d and d.get("kind") == kind and d["metadata"]["name"] == name]
        if not found:
            raise MutationError(f"no {kind} {name} to mutate")
        for doc in found:
            change(doc)
        return yaml.safe_dump_all(docs, sort_keys=False)

    return edit


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    return deployment["spec"]["template"]["spec"]["containers"][0]


def _readiness_path(deployment: dict[str, Any]) -> None:
    _container(deployment)["readinessProbe"]["httpGet"]["path"] = "/healthz"  # the stand-in serves /_healthz


def _no_resources(deployment: dict[str, Any]) -> None:
    _container(deployment).pop("resources")


def _self_heal_off(application: dict[str, Any]) -> None:
    application["spec"]["syncPolicy"]["automated"]["selfHeal"] = False


def _max_one(hpa: dict[str, Any]) -> None:
    hpa["spec"]["maxReplicas"] = 1


def _selects_nothing(service: dict[str, Any]) -> None:
    service["spec"]["selector"] = {"app": "productcatalog"}  # a typo of the Deployment's label


def _no_pull_secret(component: dict[str, Any]) -> None:
    component.pop("patches")  # the patch that gives every ServiceAccount imagePullSecrets


def _deny_checkout_to_payment(policy: dict[str, Any]) -> None:
    policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]["app"] = "checkout"


def edit_document(change: Callable[[dict[str, Any]], None]) -> Callable[[str], str]:
    """An edit of a one-document YAML file (a kustomization)."""

    def edit(text: str) -> str:
        doc = yaml.safe_load(text)
        change(doc)
        return yaml.safe_dump(doc, sort_keys=False)

    return edit


def replace_all(old: str, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        if old not in text:
            raise MutationError(f"{old!r} is not in the file")
        return text.replace(old, new)

    return edit


class MutationError(Exception):
    """A mutation that cannot be applied to the content it was written for (the file moved or changed)."""


@dataclass(frozen=True)
class Mutation:
    name: str
    what: str  # the wrong change, as the commit message a person would write
    path: str  # the file of gitops-repo it changes
    edit: Callable[[str], str] = field(repr=False, compare=False)
    catchers: tuple[str, ...]  # parts of the names of the scenarios expected to fail (pytest -k)
    fast: bool = False  # in CI's subset: caught within a few minutes of the run's start
    lab_blind: str = ""  # why the lab cannot catch it today (it is still applied and reported)

    def apply(self, content: Path) -> None:
        path = content / self.path
        before = path.read_text()
        after = self.edit(before)
        if after == before:
            raise MutationError(f"mutation {self.name} changes nothing in {self.path}")
        path.write_text(after)


SYNC_POLICY = "the_application_syncs_automatically_prunes_and_heals"
HPAS = "hpas_guard_the_frontend_and_currencyservice"
CRASH_ALERT = "a_crashlooping_pod_raises_a_slack_alert"
JOURNEY = "a_short_headless_locust_run_covers_the_shopper_journey"

CATALOGUE: tuple[Mutation, ...] = (
    Mutation(
        "self-heal-off",
        "online-boutique-dev: switch self-heal off while debugging",
        "platform/apps/online-boutique-dev.yaml",
        edit_object("Application", "online-boutique-dev", _self_heal_off),
        (SYNC_POLICY,),
        fast=True,
    ),
    Mutation(
        "readiness-probe-wrong-path",
        "frontend: readiness probe on /healthz",
        "base/frontend.yaml",
        edit_object("Deployment", "frontend", _readiness_path),
        (SYNC_POLICY, "a_commit_to_gitopsrepo_reaches_the_cluster"),
        fast=True,
    ),
    Mutation(
        "hpa-max-1",
        "frontend HPA: cap it at one replica",
        "components/autoscaling/hpa.yaml",
        edit_object("HorizontalPodAutoscaler", "frontend", _max_one),
        (HPAS,),
        fast=True,
    ),
    Mutation(
        "service-selects-no-pods",
        "productcatalogservice: Service selector app=productcatalog",
        "base/productcatalogservice.yaml",
        edit_object("Service", "productcatalogservice", _selects_nothing),
        # Not the shopper journey: the frontend's gRPC connections made before the change keep their pod
        # (kube-proxy leaves established flows alone), so the journey still passes; running it only cost
        # its minute of load.
        ("all_online_boutique_services_are_deployed_and_available",),
        fast=True,
    ),
    Mutation(
        "requests-removed",
        "frontend: drop the resources block",
        "base/frontend.yaml",
        edit_object("Deployment", "frontend", _no_resources),
        (HPAS, "prometheus_scrapes_the_boutiques_replicas_and_resource_requests"),
    ),
    Mutation(
        "slack-channel-changed",
        "alertmanager: send to #boutique-alerts-old",
        "platform/values/kube-prometheus-stack-alertmanager.yaml",
        replace_all("channel: '#boutique-alerts'", "channel: '#boutique-alerts-old'"),
        (CRASH_ALERT,),
    ),
    Mutation(
        "alert-never-fires",
        "BoutiquePodCrashLooping: only after 1000 restarts",
        "platform/config/monitoring/boutique-alerts.yaml",
        replace_all("restarts_total[5m]) > 2)", "restarts_total[5m]) > 1000)"),
        (CRASH_ALERT,),
    ),
    Mutation(
        "pull-secret-dropped",
        "registry-pull: ServiceAccounts without the pull secret",
        "components/registry-pull/kustomization.yaml",
        edit_document(_no_pull_secret),
        ("serviceaccounts_pull_from_the_private_registry",),
    ),
    Mutation(
        "network-policy-denies-checkout-to-payment",
        "network policies: paymentservice only from app=checkout",
        "components/network-policies/network-policies.yaml",
        edit_object("NetworkPolicy", "allow-ingress-to-paymentservice", _deny_checkout_to_payment),
        (JOURNEY,),
        lab_blind="the lab's nodes enforce no NetworkPolicy yet (issue #30): checkout still reaches payment",
    ),
    Mutation(
        "wrong-image-tag",
        "frontend: image tag 0000000",
        "overlays/dev/kustomization.yaml",
        set_image_tag(f"{IMAGE_PREFIX}/frontend", "0000000"),
        (SYNC_POLICY,),
    ),
)


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


def mutated_content(mutation: Mutation, into: Path) -> Path:
    """A copy of the gitops content with ``mutation`` applied (the suite's static checks left out)."""
    from provisioning import gitops

    content = into / "gitops"
    shutil.copytree(gitops.ROOT, content, ignore=shutil.ignore_patterns("checks", "*.py", "__pycache__"))
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
    from provisioning.gitops import SOURCE_ENV

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
        env = {**os.environ, SOURCE_ENV: str(content), "BOUTIQUE_REPORTS": str(out)}
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
    """The platform as the suite's own content has it: gitops-repo republished, Argo CD synced and healthy,
    the monitoring config rendered again (layers 4 and 6 ensured without the mutant)."""
    from provisioning import LayerRunner

    LayerRunner(target).require(6)  # this process never sets $BOUTIQUE_GITOPS_SOURCE: the suite's content


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
    parser = argparse.ArgumentParser(prog="python -m boutique_suite.mutants", description=__doc__)
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
