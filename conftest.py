"""Suite wiring: the target, the layers each scenario needs, cleanup, reverts and evidence.

Scenarios ask for their layer through their phase tag (``@phase3`` → layers 0, 1, 2 are ensured, then 3).
The layer is ensured at the start of the scenario (pytest-bdd's before-scenario hook), so a scenario the
target cannot provide still shows in the Allure report as skipped, with the reason.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

# Locust monkey-patches the standard library with gevent when imported; that must happen before anything
# imports ssl (kubernetes, requests), else Locust's runs inside pytest die in a RecursionError in ssl.
import locust  # noqa: F401  (first import on purpose: loadtests.runner runs Locust in-process)
import pytest
from pytest_bdd.scenario import get_step_function

from boutique_suite.actions import load, reverts
from boutique_suite.actions.journal import Journal, acquire_lock, live_runs, release_lock
from boutique_suite.clients.kube import ClusterUnreachable, Kube, connect_to
from boutique_suite.context import sites
from boutique_suite.expectations import gitops_checks
from boutique_suite.expectations.steady import (
    KEEPS_SERVING,
    KEEPS_SERVING_MAX_OUTAGE,
    During,
    SteadyState,
    watch_service_name,
)
from boutique_suite.reporting import evidence, flakiness, overview, resilience, timings, traceability
from boutique_suite.run import runlabel, targets
from boutique_suite.run.touches import Touches, declared
from boutique_suite.run.undo import UndoStack
from boutique_suite.run.waits import WaitFailed
from provisioning import LAYERS, LayerRunner
from provisioning.layer import LayerBroken, LayerUnavailable

pytest_plugins = list(traceability.STEP_MODULES)  # the step definitions

TARGET_KEY = pytest.StashKey[targets.Target]()
RUN_KEY = pytest.StashKey[str]()
SKIPPED_KEY = evidence.SKIPPED_KEY
SCENARIO_KEY = evidence.SCENARIO_KEY
EXECUTION_KEY = pytest.StashKey[evidence.Execution]()
JOURNAL_KEY = pytest.StashKey[Journal]()
LAYERS_KEY = pytest.StashKey[LayerRunner]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("boutique", "Online Boutique GitOps platform suite")
    group.addoption(
        "--target",
        default="lab",
        help="target name in targets/ or a path to a target file (default: lab, the offline lab)",
    )
    group.addoption(
        "--keep-on-failure",
        action="store_true",
        help="keep the objects and faults of a failed scenario for debugging (no revert, no cleanup)",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The suite's own tests that need no lab are ``offline``: ./run tests runs them beside the lab. A test
    that wipes the lab runs first, before any layer above the cluster is built that it would wipe too."""
    for item in items:
        if item.nodeid.startswith("tests/") and item.get_closest_marker("lab") is None:
            item.add_marker(pytest.mark.offline)
    items.sort(key=lambda item: item.get_closest_marker("wipes_lab") is None)


@pytest.hookimpl(tryfirst=True)  # before allure and junitxml open their files
def pytest_configure(config: pytest.Config) -> None:
    _reports_in(config, targets.REPORTS)
    try:
        config.stash[TARGET_KEY] = targets.load(config.getoption("--target"))
    except targets.TargetError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[RUN_KEY] = runlabel.new_run_id()


def _reports_in(config: pytest.Config, reports: Path) -> None:
    """pytest.ini writes Allure results and JUnit under reports/; BOUTIQUE_REPORTS moves both there."""
    if reports == targets.ROOT / "reports":
        return
    if config.option.allure_report_dir == "reports/allure-results":
        config.option.allure_report_dir = str(reports / "allure-results")
    if config.option.xmlpath == "reports/junit.xml":
        config.option.xmlpath = str(reports / "junit.xml")


@pytest.fixture(scope="session")
def target(pytestconfig: pytest.Config) -> targets.Target:
    return pytestconfig.stash[TARGET_KEY]


@pytest.fixture(scope="session")
def run_id(pytestconfig: pytest.Config) -> str:
    return pytestconfig.stash[RUN_KEY]


@pytest.fixture(scope="session")
def layers(pytestconfig: pytest.Config, target: targets.Target) -> LayerRunner:
    runner = pytestconfig.stash[LAYERS_KEY] = LayerRunner(target)  # its ensure times go to the timing page
    return runner


@pytest.fixture(scope="session")
def kube(request: pytest.FixtureRequest, layers: LayerRunner, target: targets.Target, run_id: str) -> Kube:
    try:
        layers.require(2)
    except LayerBroken as exc:
        pytest.fail(str(exc), pytrace=False)
    except LayerUnavailable as exc:
        pytest.skip(str(exc))
    try:
        kube = connect_to(target, run_id)
    except ClusterUnreachable as exc:
        pytest.fail(str(exc), pytrace=False)
    # The run's Lease, held from its first use of the cluster: no other run's sweep touches its objects.
    held = Journal(kube).open()
    request.config.stash[JOURNAL_KEY] = held
    yield kube
    held.close()


@pytest.fixture(scope="session")
def journal(kube: Kube, pytestconfig: pytest.Config) -> Journal:
    """This run's revert journal on the target (see boutique_suite.actions.journal)."""
    return pytestconfig.stash[JOURNAL_KEY]


@pytest.fixture
def undo(request: pytest.FixtureRequest, target: targets.Target) -> UndoStack:
    """The scenario's reverts. A chaos scenario's steady state is taken before the first fault, watched
    during it (the storefront, from phase 4) and must hold again after the reverts, or the scenario fails
    naming what did not come back (or, for @keeps_serving, that the storefront stopped answering)."""
    journal = lambda: request.getfixturevalue("journal")  # noqa: E731  (opened only when a fault is journaled)
    watch_undo = UndoStack(journal=journal)  # the Service the storefront is watched through
    steady_state = None
    try:
        steady_state = _steady_state_before_the_fault(request, target, watch_undo)
        stack = UndoStack(journal=journal)
        yield stack
        if _keep(request):
            return
        if steady_state and request.node.stash.get(evidence.FAILED_KEY, False):
            steady_state.capture_failure_screens()
        errors = stack.drain()
        during = steady_state.during() if steady_state else None
        if errors:
            pytest.fail("reverting faults failed: " + "; ".join(errors), pytrace=False)
        if steady_state:
            _expect_hypothesis_after(request, steady_state, during, target)
    finally:
        if steady_state:
            steady_state.during()  # the watch stops on every exit path
        watch_undo.drain()


def _steady_state_before_the_fault(
    request: pytest.FixtureRequest, target: targets.Target, undo: UndoStack
) -> SteadyState | None:
    phase = _phase(request.node) or 0
    if not request.node.get_closest_marker("chaos") or phase < 2:
        return None
    kube = request.getfixturevalue("kube")
    argocd, storefront = None, None
    if phase >= 4:
        argocd = gitops_checks.argocd_client(target)
        if target.provides(Touches.data_plane):
            service = watch_service_name(kube.run_id)
            storefront = load.storefront(
                kube, target, target.namespaces.dev, undo, target.timeouts.rollout, service
            )
    return SteadyState.take(target, kube, argocd, target.application, storefront)


def _expect_hypothesis_after(
    request: pytest.FixtureRequest, steady_state: SteadyState, during: During | None, target: targets.Target
) -> None:
    if during is not None:
        request.node.stash[EXECUTION_KEY].timing("storefront_longest_outage_seconds", during.longest_outage)
        evidence.note("storefront during the fault", during.describe())
        if during.longest_outage > KEEPS_SERVING_MAX_OUTAGE and request.node.get_closest_marker(
            KEEPS_SERVING
        ):
            pytest.fail(
                f"@{KEEPS_SERVING} (no outage over {KEEPS_SERVING_MAX_OUTAGE:g} s), but {during.describe()}",
                pytrace=False,
            )
    try:
        steady_state.expect_serving_again(target.timeouts.rollout)
        steady_state.expect_restored(target.timeouts.rollout)
    except WaitFailed as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def scenario_ns(request: pytest.FixtureRequest, kube: Kube, target: targets.Target) -> str:
    """A throwaway namespace carrying the run labels; leftovers of earlier runs are removed first."""
    kube.delete_leftovers(live_runs(kube))
    name = kube.create_namespace(target.namespaces.scratch_prefix)
    yield name
    if request.node.stash.get(evidence.FAILED_KEY, False):
        evidence.attach_namespace(kube, name)
    if not _keep(request):
        kube.delete_namespace(name)


def _phase(item: pytest.Item) -> int | None:
    """The scenario's phase tag (``@phase4`` → 4)."""
    return next((int(m.name[5:]) for m in item.iter_markers() if m.name[:5] == "phase"), None)


def _tags(item: pytest.Item) -> set[str]:
    """The scenario's Gherkin tags as pytest-bdd turned them into markers (phase, chaos, nightly, ...)."""
    return {m.name for m in item.iter_markers() if m.name not in ("parametrize", "usefixtures")}


def _keep(request: pytest.FixtureRequest) -> bool:
    return request.config.getoption("--keep-on-failure") and request.node.stash.get(
        evidence.FAILED_KEY, False
    )


@pytest.hookimpl(trylast=True)
def pytest_bdd_before_scenario(request: pytest.FixtureRequest, feature, scenario) -> None:  # type: ignore[no-untyped-def]
    """Label the scenario with its target, then ensure its layer: skip with the reason when the target does
    not provide it, fail with the layer's evidence when the target has it and it is broken."""
    item = request.node
    item.stash[SCENARIO_KEY] = scenario.name
    evidence.remember_tags(item.nodeid, _tags(item))
    target: targets.Target = request.config.stash[TARGET_KEY]
    item.stash[EXECUTION_KEY] = evidence.Execution(provided=target.execution)
    evidence.label_target(target)
    phase = _phase(item)
    reason = None
    onprem_only = item.get_closest_marker("onprem_only") and sites.site_for(target).onprem_only_missing()
    if onprem_only:
        reason = onprem_only
    elif item.get_closest_marker("destructive") and not target.allow_destructive:
        reason = f"destructive scenario: target {target.name} does not set allow_destructive: true"
    elif cannot := _first_step_that_cannot_run(request, scenario, target):
        reason = cannot  # before any layer is ensured, any load started or any fault injected
    elif phase is not None:
        try:
            request.getfixturevalue("layers").require(phase)
        except LayerBroken as exc:
            evidence.fail_on_broken_layer(request, str(exc), exc.evidence)
        except LayerUnavailable as exc:
            reason = str(exc)
        else:
            if phase >= 2:  # before the scenario: undo what earlier, interrupted runs left in the cluster
                kube = request.getfixturevalue("kube")
                reverts.clean_leftovers(kube, target)
                if item.get_closest_marker("destructive"):
                    reason = _take_destructive_lock(item, kube, target)
    if reason:
        evidence.mark_skipped(item.nodeid, scenario.name, reason)
        item.stash[SKIPPED_KEY] = True
        pytest.skip(reason)


def _take_destructive_lock(item: pytest.Item, kube: Kube, target: targets.Target) -> str | None:
    """One destructive scenario at a time on a platform: wait for another run's to end, else skip."""
    asked = time.monotonic()
    holder = acquire_lock(kube, "destructive", timeout=target.timeouts.rollout)
    item.stash[EXECUTION_KEY].timing("destructive_lock_wait_seconds", time.monotonic() - asked)
    if holder:
        return (
            f"another run ({holder}) holds the platform's destructive lock: waited {target.timeouts.rollout}s"
        )
    item.addfinalizer(lambda: release_lock(kube, "destructive"))  # after the reverts
    return None


def _first_step_that_cannot_run(
    request: pytest.FixtureRequest, scenario, target: targets.Target
) -> str | None:  # type: ignore[no-untyped-def]
    """Why the scenario would stop at one of its steps: the step has no binding, or it touches what the
    target does not provide (the same reasons pytest_bdd_before_step gives, known before the scenario)."""
    for step in scenario.steps:
        func = get_step_function(request, step)  # the lookup pytest-bdd makes before each step
        if func is None:
            return f"step not implemented yet: {step.keyword} {step.name}"
        absent = evidence.Execution(provided=target.execution).step(step.name, declared(func.step_func))
        if absent:
            return "; ".join(absent)
    return None


def pytest_bdd_step_func_lookup_error(request, feature, scenario, step, exception) -> None:  # type: ignore[no-untyped-def]
    """A step the suite has no binding for yet: the scenario is skipped and names that step, never passed.
    tests/test_step_coverage.py lists these per phase, so none goes unnoticed."""
    evidence.skip_scenario(request, f"step not implemented yet: {step.keyword} {step.name}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> object:
    outcome = yield
    report = outcome.get_result()
    timings.record(item.nodeid, report.when, report.duration)
    if report.failed:
        item.stash[evidence.FAILED_KEY] = True
    name = item.stash.get(SCENARIO_KEY, None)
    if name is None or item.stash.get(SKIPPED_KEY, False) or item.stash.get(evidence.BROKEN_KEY, False):
        return
    if report.skipped:
        item.stash[SKIPPED_KEY] = True
        evidence.record_skip(item.nodeid, name, evidence.skip_reason(report))
    elif report.when == "call":
        run = item.stash.get(EXECUTION_KEY, None) or evidence.Execution()
        run.record(item.nodeid, name, report.outcome, _tags(item))
        if report.failed:
            evidence.record_diagnosis(item.nodeid, report.longreprtext)


@pytest.fixture
def execution(request: pytest.FixtureRequest) -> evidence.Execution:
    """How the scenario runs: derived from its steps' touches; steps may downgrade it with simulated()."""
    return request.node.stash.setdefault(EXECUTION_KEY, evidence.Execution())


def pytest_bdd_before_step(request, feature, scenario, step, step_func) -> None:  # type: ignore[no-untyped-def]
    """Record what the step touches; a step touching what the target lacks skips with the reason."""
    timings.step_started(request.node.nodeid)
    run = request.node.stash.setdefault(EXECUTION_KEY, evidence.Execution())
    absent = run.step(f"{step.keyword} {step.name}", declared(step_func))
    if absent:
        evidence.skip_scenario(request, "; ".join(absent))


def pytest_bdd_after_step(request, feature, scenario, step, step_func, step_func_args) -> None:  # type: ignore[no-untyped-def]
    timings.step_ended(request.node.nodeid, f"{step.keyword} {step.name}")


def pytest_bdd_step_error(request, feature, scenario, step, step_func, step_func_args, exception) -> None:  # type: ignore[no-untyped-def]
    timings.step_ended(request.node.nodeid, f"{step.keyword} {step.name}")


@pytest.hookimpl(tryfirst=True)
def pytest_bdd_after_scenario(request: pytest.FixtureRequest, feature, scenario) -> None:  # type: ignore[no-untyped-def]
    if request.node.stash.get(SKIPPED_KEY, False) or request.node.stash.get(evidence.BROKEN_KEY, False):
        return  # a skipped scenario keeps its "skipped" label and reason, a broken platform's its own
    run = request.node.stash.get(EXECUTION_KEY, None) or evidence.Execution()
    run.publish()


def _publish_timers(target: targets.Target) -> None:
    try:
        if page := sites.site_for(target).shortened_timers_page():
            evidence.publish_run_page("lab-timers.md", page)
    except Exception as exc:  # a document must never hide the run's own outcome
        print(f"lab-timers.md not written: {exc}", file=sys.stderr)


def _publish_pins() -> None:
    """The version each component runs in the lab and on-prem (provisioning/pins.py)."""
    from provisioning import pins

    try:
        evidence.publish_run_page("pins.md", "# One version per component\n\n" + pins.markdown(pins.table()))
    except Exception as exc:  # a document must never hide the run's own outcome
        print(f"pins.md not written: {exc}", file=sys.stderr)


def pytest_sessionfinish(session: pytest.Session) -> None:
    runner = session.config.stash.get(LAYERS_KEY, None)
    seconds = runner.seconds if runner else {}
    timings.publish({f"layer {p} ({LAYERS[p].NAME})": s for p, s in seconds.items()})
    if broken := evidence.broken_layers():
        evidence.publish_run_page("broken-platform.md", evidence.broken_platform_page(broken))
    if TARGET_KEY in session.config.stash:
        _publish_timers(session.config.stash[TARGET_KEY])
    if evidence.write_summary(session.config):
        overview.write()
        _publish_pins()
        for document in (traceability, resilience, flakiness):
            try:
                document.publish()
            except Exception as exc:  # a document must never hide the run's own outcome
                print(f"{document.__name__} not written: {exc}", file=sys.stderr)
