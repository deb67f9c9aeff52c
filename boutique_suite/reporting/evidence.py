"""Evidence for the report: target and execution labels, timings, and what a failure leaves behind.

Nothing here attaches a Secret's data: objects are attached as YAML only for kinds that hold no secrets.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import allure
import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from boutique_suite.reporting import broken_evidence, diagnosis
from boutique_suite.run import targets
from boutique_suite.run.targets import Provision
from boutique_suite.run.touches import Touches

FAILED_KEY = pytest.StashKey[bool]()
SCENARIO_KEY = pytest.StashKey[str]()
SKIPPED_KEY = pytest.StashKey[bool]()
BROKEN_KEY = pytest.StashKey[bool]()
BROKEN_PLATFORM = "broken-platform"  # the execution label of a scenario failed by a broken layer
REPORTS = targets.REPORTS
_SUMMARY: dict[str, dict[str, object]] = {}
_BROKEN: dict[str, BrokenLayer] = {}  # root cause -> the broken layer
_TAGS: dict[str, list[str]] = {}  # nodeid -> the scenario's tags
RUN_PAGES = "run-pages"


@dataclass
class Execution:
    """How a scenario ran, derived from what its steps touched and what the target provides.

    ``real``: every step touched only what the target provides for real; ``static``: the steps only read
    files; ``simulated``: something was simulated, undeclared, or nothing was checked (``reasons`` says
    which). Steps may still downgrade the scenario at run time with ``simulated(why)``.
    """

    provided: Mapping[Touches, Provision] = field(default_factory=dict)
    simulated_parts: list[str] = field(default_factory=list)
    steps: list[tuple[str, frozenset[Touches] | None]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    budgets: dict[str, float] = field(default_factory=dict)

    def step(self, text: str, touched: frozenset[Touches] | None) -> list[str]:
        """Record a step; returns the reasons it cannot run here (touches the target does not provide)."""
        self.steps.append((text, touched))
        return [self._provision(t).why for t in sorted(touched or ()) if self._provision(t).mode == "absent"]

    def _provision(self, touched: Touches) -> Provision:
        if touched is Touches.file_only:
            return Provision(mode="real")
        return self.provided.get(touched) or Provision(
            mode="absent", why=f"the target does not provide {touched}"
        )

    @property
    def touched(self) -> frozenset[Touches]:
        return frozenset(t for _, ts in self.steps for t in ts or ())

    @property
    def reasons(self) -> list[str]:
        found = list(self.simulated_parts)
        for text, touched in self.steps:
            if touched is None:
                found.append(f"step {text!r} does not declare what it touches")
        for t in sorted(self.touched):
            provision = self._provision(t)
            if provision.mode != "real":
                found.append(f"{t}: {provision.why}")
        if self.steps and not self.touched and all(ts is not None for _, ts in self.steps):
            found.append("no step checked anything")
        return list(dict.fromkeys(found))

    @property
    def mode(self) -> str:
        if self.reasons:
            return "simulated"
        return "static" if self.touched == {Touches.file_only} else "real"

    @property
    def label(self) -> str:
        return f"simulated ({'; '.join(self.reasons)})" if self.reasons else self.mode

    def simulated(self, what: str) -> None:
        if what not in self.simulated_parts:
            self.simulated_parts.append(what)

    def timing(self, name: str, seconds: float, budget: float | None = None) -> float:
        """A measured time; ``budget``: the most the scenario allows for it (its "within N seconds")."""
        self.timings[name] = round(seconds, 3)
        shown = f"{seconds:.2f} s"
        if budget is not None:
            self.budgets[name] = float(budget)
            shown += f" of {budget:g} s"
        allure.dynamic.parameter(name, shown)
        return seconds

    def publish(self) -> None:
        allure.dynamic.label("execution", self.mode)
        allure.dynamic.tag(f"execution:{self.mode}")
        allure.dynamic.parameter("execution", self.label)
        if self.reasons:
            allure.dynamic.description("Not real: " + "; ".join(self.reasons))

    def record(self, nodeid: str, name: str, outcome: str, tags: Iterable[str] = ()) -> None:
        _SUMMARY[nodeid] = {
            "scenario": name,
            "tags": sorted(tags),
            "outcome": outcome,
            "execution": self.mode,
            "label": self.label,
            "simulated": self.reasons,
            "touches": sorted(self.touched),
            "timings_seconds": self.timings,
            "budgets_seconds": self.budgets,
        }


def label_target(target: targets.Target) -> None:
    allure.dynamic.label("target", target.name)
    allure.dynamic.tag(f"target:{target.name}")
    allure.dynamic.parameter("target", f"{target.name} ({target.kind})")
    if target.workload:
        allure.dynamic.parameter("workload", target.workload)


def mark_skipped(nodeid: str, name: str, reason: str) -> None:
    allure.dynamic.label("execution", "skipped")
    allure.dynamic.tag("execution:skipped")
    record_skip(nodeid, name, reason)


def record_skip(nodeid: str, name: str, reason: str) -> None:
    _SUMMARY[nodeid] = {"scenario": name, "outcome": "skipped", "execution": "skipped", "reason": reason}


@dataclass
class BrokenLayer:
    """A layer the target has that its ensure found unhealthy, with its evidence and what it failed."""

    cause: str
    evidence: dict[str, str]
    scenarios: list[str] = field(default_factory=list)
    diagnosis: str = ""  # cause -> fix -> prevention, when the failure is a known one


def fail_on_broken_layer(request: pytest.FixtureRequest, cause: str, found: Mapping[str, str]) -> None:
    """Fail the scenario: a layer it needs is on the target and unhealthy. The layer's evidence is attached
    once per run, to the first scenario it fails (and to the run's "Broken platform" page)."""
    item = request.node
    name = item.stash.get(SCENARIO_KEY, item.name)
    root = cause.split(" (needed by layer")[0]
    first = root not in _BROKEN
    broken = _BROKEN.setdefault(root, BrokenLayer(root, dict(found)))
    broken.scenarios.append(name)
    if first:
        known = diagnosis.diagnose([root, *found.values()])
        broken.diagnosis = known[0].text(known[1]) if known else ""
        if broken.diagnosis:
            attach_text("diagnosis", broken.diagnosis)
        for title, text in found.items():
            attach_text(title, text)
    allure.dynamic.label("execution", BROKEN_PLATFORM)
    allure.dynamic.tag(f"execution:{BROKEN_PLATFORM}")
    _SUMMARY[item.nodeid] = {
        "scenario": name,
        "outcome": "failed",
        "execution": BROKEN_PLATFORM,
        "reason": cause,
    }
    item.stash[BROKEN_KEY] = True
    where = "attached here" if first else f"attached to '{broken.scenarios[0]}'"
    known = f"\n{broken.diagnosis}" if broken.diagnosis else ""
    pytest.fail(f"{cause} (the platform is broken; evidence {where}){known}", pytrace=False)


def record_diagnosis(nodeid: str, failure: str) -> str | None:
    """The diagnosis of a failed scenario's message, when it shows a known failure; kept in the summary."""
    known = diagnosis.diagnose([failure])
    if known is None or nodeid not in _SUMMARY:
        return None
    text = known[0].text(known[1])
    _SUMMARY[nodeid]["diagnosis"] = text
    return text


def broken_layers() -> list[BrokenLayer]:
    """The run's broken layers, the first found first."""
    return list(_BROKEN.values())


def broken_platform_page(broken: Iterable[BrokenLayer]) -> str:
    """The run's "Broken platform" page in Markdown: each cause, the scenarios it failed and its evidence."""
    lines = ["# Broken platform", ""]
    for layer in broken:
        lines += [f"## {layer.cause}", "", f"Failed {len(layer.scenarios)} scenario(s): "]
        lines += [f"- {scenario}" for scenario in layer.scenarios] + [""]
        if layer.diagnosis:
            lines += ["### Diagnosis", "", "```", layer.diagnosis, "```", ""]
        for title, text in layer.evidence.items():
            lines += [f"### {title}", "", "```", text, "```", ""]
    return "\n".join(lines)


def skip_scenario(request: pytest.FixtureRequest, reason: str) -> None:
    """Skip the rest of the scenario with ``reason`` (a step the target cannot make real)."""
    item = request.node
    mark_skipped(item.nodeid, item.stash.get(SCENARIO_KEY, item.name), reason)
    item.stash[SKIPPED_KEY] = True
    pytest.skip(reason)


def skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    return str(longrepr[2]).removeprefix("Skipped: ") if isinstance(longrepr, tuple) else str(longrepr)


def note(name: str, text: str) -> None:
    """A fact about the scenario shown among its parameters in the report."""
    allure.dynamic.parameter(name, text)


def attach_text(name: str, text: str) -> None:
    """A plain-text attachment (a job log, a trace, a diff). Callers pass no secret: tokens stay in env."""
    allure.attach(text or "(empty)", name, allure.attachment_type.TEXT)


def attach_json(name: str, doc: object) -> None:
    allure.attach(json.dumps(doc, indent=2, default=str), name, allure.attachment_type.JSON)


def attach_png(name: str, path: Path) -> None:
    allure.attach.file(str(path), name, allure.attachment_type.PNG)


def attach_namespace(kube, namespace: str) -> None:  # type: ignore[no-untyped-def]
    """Events, pod logs and object YAML of a namespace, for a failed scenario."""
    try:
        events = sorted(kube.events(namespace), key=broken_evidence.event_time)
        lines = [
            f"{e.last_timestamp or e.event_time} {e.type} {e.reason} "
            f"{e.involved_object.kind}/{e.involved_object.name}: {e.message}"
            for e in events
        ]
        allure.attach("\n".join(lines) or "(no events)", f"events {namespace}", allure.attachment_type.TEXT)
        api = kube.api
        objects = {
            "deployments": kube.apps.list_namespaced_deployment(namespace).items,
            "replicasets": kube.apps.list_namespaced_replica_set(namespace).items,
            "pods": kube.core.list_namespaced_pod(namespace).items,
            "hpas": kube.autoscaling.list_namespaced_horizontal_pod_autoscaler(namespace).items,
        }
        for kind, items in objects.items():
            docs = [api.sanitize_for_serialization(i) for i in items]
            allure.attach(
                yaml.safe_dump_all(docs, sort_keys=False) or "(none)",
                f"{kind} {namespace}.yaml",
                allure.attachment_type.YAML,
            )
        for pod in objects["pods"]:
            try:
                logs = kube.core.read_namespaced_pod_log(pod.metadata.name, namespace, tail_lines=200)
            except ApiException as exc:
                logs = f"(logs unavailable: {exc.status} {exc.reason})"
            allure.attach(logs or "(empty)", f"logs {pod.metadata.name}", allure.attachment_type.TEXT)
    except Exception as exc:  # evidence must never hide the real failure
        allure.attach(f"collecting evidence failed: {exc}", "evidence error", allure.attachment_type.TEXT)


def attach_application(client, name: str) -> None:  # type: ignore[no-untyped-def]
    """Argo CD's view of a failed scenario's Application: status, conditions, operation, history."""
    try:
        app = client.application(name)
        status = app.get("status", {})
        part = {k: status.get(k) for k in ("sync", "health", "conditions", "operationState", "history")}
        allure.attach(json.dumps(part, indent=2), f"Argo CD {name} status", allure.attachment_type.JSON)
        events = client.get(f"/api/v1/applications/{name}/events").get("items") or []
        lines = [
            f"{e.get('lastTimestamp')} {e.get('type')} {e.get('reason')}: {e.get('message')}" for e in events
        ]
        allure.attach(
            "\n".join(lines) or "(no events)", f"Argo CD {name} events", allure.attachment_type.TEXT
        )
    except Exception as exc:  # evidence must never hide the real failure
        allure.attach(
            f"collecting Argo CD evidence failed: {exc}", "evidence error", allure.attachment_type.TEXT
        )


def publish_run_page(filename: str, text: str, pages: Path | None = None) -> Path:
    """A Markdown page about the whole run (the traceability table, the resilience summary, the broken
    platform), written to reports/run-pages/: the report attaches these to the run itself (allurerc.mjs,
    globalAttachments), so they are never counted as scenarios."""
    pages = pages or REPORTS / RUN_PAGES
    pages.mkdir(parents=True, exist_ok=True)
    path = pages / filename
    path.write_text(text, encoding="utf-8")
    return path


def remember_tags(nodeid: str, tags: Iterable[str]) -> None:
    """The scenario's tags, for its summary entry whatever its outcome (the overview counts per phase)."""
    _TAGS[nodeid] = sorted(tags)


def write_summary(config: pytest.Config) -> Path | None:
    """reports/summary.json: per scenario outcome, execution mode and measured timings."""
    if not _SUMMARY:
        return None
    REPORTS.mkdir(parents=True, exist_ok=True)
    path = REPORTS / "summary.json"
    target = config.getoption("--target", "lab")
    counts: dict[str, int] = {}
    for nodeid, entry in _SUMMARY.items():
        entry.setdefault("tags", _TAGS.get(nodeid, []))
        key = f"{entry['outcome']}:{entry['execution']}"
        counts[key] = counts.get(key, 0) + 1
    path.write_text(
        json.dumps(
            {
                "target": target,
                "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "counts": counts,
                "broken": [
                    {
                        "cause": b.cause,
                        "scenarios": b.scenarios,
                        "evidence": sorted(b.evidence),
                        "diagnosis": b.diagnosis,
                    }
                    for b in _BROKEN.values()
                ],
                "scenarios": _SUMMARY,
            },
            indent=2,
        )
    )
    return path
