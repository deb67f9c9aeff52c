"""Phase 6 and the alert themes: Prometheus scrapes, alert rules, Alertmanager routing, Slack delivery."""

from __future__ import annotations

import time

import pytest
from pytest_bdd import parsers, then, when

from boutique_suite.clients import alerting, slack
from boutique_suite.clients.kube import Kube
from boutique_suite.expectations import alert_config, alert_messages
from boutique_suite.reporting import evidence
from boutique_suite.reporting.evidence import Execution
from boutique_suite.run import waits
from boutique_suite.run.targets import ROOT, Target
from boutique_suite.run.touches import Touches, touches
from boutique_suite.run.undo import UndoStack
from provisioning.observability import promql


@pytest.fixture
def prometheus(target: Target) -> alerting.Prometheus:
    return alerting.connect(target)[0]


@pytest.fixture
def alertmanager(target: Target) -> alerting.Alertmanager:
    return alerting.connect(target)[1]


@pytest.fixture
def alarm() -> dict:
    """What the alert scenario injected and observed: the subject (pod or node), times, the alert."""
    return {"since": time.time()}


def wait(probe: waits.Probe, seconds: float, what: str) -> waits.Waited:
    return waits.until(probe, timeout=seconds, interval=2, what=what)


# --- rules -----------------------------------------------------------------------------------------


@then("promtool accepts every rule file of the platform")
@touches(Touches.file_only)
def promtool_check() -> None:
    alert_config.expect_promtool_accepts_rules()


@then("promtool's unit tests show each alert firing on its condition and staying quiet without it:")
@touches(Touches.file_only)
def promtool_unit_tests(datatable: list[list[str]]) -> None:
    alert_config.expect_unit_tests({row[0]: row[2] for row in datatable[1:]})


# --- scrapes ---------------------------------------------------------------------------------------


@then(parsers.parse('Prometheus has the target "{job}" up'))
@touches(Touches.monitoring)
def target_up(prometheus: alerting.Prometheus, target: Target, job: str) -> None:
    wait(alerting.target_up(prometheus, job), target.timeouts.assertion, f"Prometheus target {job} up")


@then(parsers.parse("every Prometheus target is up within {seconds:d} seconds"))
@touches(Touches.monitoring)
def all_targets_up(prometheus: alerting.Prometheus, seconds: int) -> None:
    wait(alerting.all_targets_up(prometheus), seconds, "every Prometheus target up")


@then(
    parsers.parse(
        'Prometheus has available-replica series for all {count:d} Deployments in "{namespace}" '
        "within {seconds:d} seconds"
    )
)
@touches(Touches.monitoring)
def replica_series(
    prometheus: alerting.Prometheus, kube: Kube, count: int, namespace: str, seconds: int
) -> None:
    deployments = alerting.expect_deployments(kube, namespace, count)
    query = f'kube_deployment_status_replicas_available{{namespace="{namespace}"}}'
    wait(alerting.series_cover(prometheus, query, "deployment", deployments), seconds, query)


@then("Prometheus has CPU and memory request series for every Boutique container")
@touches(Touches.monitoring)
def request_series(prometheus: alerting.Prometheus, kube: Kube, target: Target) -> None:
    alerting.expect_request_series(prometheus, kube, target.namespaces.dev, target.timeouts.assertion)


@then("every metric the alert rules and dashboards name has series in Prometheus")
@touches(Touches.monitoring)
def named_metrics_have_series(prometheus: alerting.Prometheus, target: Target) -> None:
    excused = alerting.expect_named_metrics_have_series(prometheus, target, promql.named_metrics())
    evidence.note("metrics not checked here", alerting.excused_text(excused))


# --- Alertmanager and Slack ------------------------------------------------------------------------


@then(
    parsers.parse(
        'Alertmanager routes alerts of severity "{first}" and "{second}" to the receiver "{receiver}"'
    )
)
@touches(Touches.monitoring)
def routes(
    alertmanager: alerting.Alertmanager, target: Target, first: str, second: str, receiver: str
) -> None:
    alert_config.expect_severities_routed(alertmanager, (first, second), target.namespaces.dev, receiver)


@then("Alertmanager reads the Slack URL from a Secret, not from a file in git")
@touches(Touches.monitoring)
def slack_credentials(alertmanager: alerting.Alertmanager) -> None:
    alert_config.expect_slack_credentials_outside_git(alertmanager, ROOT)


@when(parsers.parse('a test alert "{name}" carrying the run id is posted to Alertmanager'))
@touches(Touches.monitoring)
def post_test_alert(
    alertmanager: alerting.Alertmanager, target: Target, undo: UndoStack, alarm: dict, run_id: str, name: str
) -> None:
    alarm.update(subject=run_id, fired_at=time.time())
    labels = alerting.post_test_alert(alertmanager, name, run_id, target.namespaces.dev)
    undo.push(f"resolve {name}", lambda: alertmanager.post(labels, {}, ends_in=0))


@then(parsers.parse('a message with the run id appears in "{channel}" within {seconds:d} seconds'))
@touches(Touches.slack)
def run_id_message(
    target: Target, execution: Execution, alarm: dict, run_id: str, channel: str, seconds: int
) -> None:
    found = slack.wait_for_message(slack.Channel.open(target, channel), alarm["since"], (run_id,), seconds)
    alarm["message"] = found["message"]
    execution.timing("post_to_slack_seconds", found["seconds"], budget=seconds)


@when(
    parsers.parse(
        "every alert rule's firing example from its unit tests is posted to Alertmanager with the run id, "
        "the inhibiting ones after the others' messages arrived ({seconds:d} seconds at most)"
    )
)
@touches(Touches.monitoring, Touches.slack)
def post_every_example(
    alertmanager: alerting.Alertmanager,
    target: Target,
    undo: UndoStack,
    alarm: dict,
    run_id: str,
    seconds: int,
) -> None:
    posted = alert_messages.Posted(alertmanager, run_id)
    undo.push("resolve every posted example", posted.resolve)
    alarm["delivery"] = posted.in_waves(slack.Channel.open(target), seconds)


@then(
    parsers.parse(
        'each example has a message in "{channel}" naming its alert, severity, run id, summary '
        "and runbook link"
    )
)
@touches(Touches.slack)
def message_per_example(alarm: dict, channel: str) -> None:
    alarm["delivery"].expect_all_rendered(channel)


@then("each of those messages is attached to the report")
@touches()
def attach_messages(alarm: dict) -> None:
    alarm["delivery"].attach()
