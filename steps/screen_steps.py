"""Screens of the platform's pages, attached to the scenario that proves what they show."""

from __future__ import annotations

from pytest_bdd import parsers, then

from boutique_suite.clients import grafana
from boutique_suite.clients.argocd import ArgoCDClient
from boutique_suite.clients.kube import Kube
from boutique_suite.context.sites import site_for
from boutique_suite.expectations import gateway
from boutique_suite.reporting import platform_screens
from boutique_suite.reporting.cicd_trace import Trace
from boutique_suite.run.targets import Target
from boutique_suite.run.touches import touches


@then("the storefront's home page and a product page are captured as screens")
@touches()
def storefront_screens(kube: Kube, target: Target, app_ns: str, loadbalancer: dict) -> None:
    url, host = gateway.storefront_url(kube, target, app_ns, loadbalancer)
    platform_screens.storefront(url, host, standin=site_for(target).standin_storefront)


@then(parsers.parse('Argo CD\'s page of the Application "{app}" is captured as a screen {moment}'))
@touches()
def argocd_screen(argocd: ArgoCDClient, app: str, moment: str) -> None:
    platform_screens.argocd_application(argocd, app, moment)


@then(parsers.parse('that Slack message in "{channel}" is captured as a screen'))
@touches()
def slack_screen(target: Target, alarm: dict, channel: str) -> None:
    platform_screens.slack_message(channel, alarm["message"], lab=site_for(target).local_slack)


@then("that job's log is captured as a screen")
@touches()
def job_screen(trace: Trace) -> None:
    platform_screens.pipeline_job(trace)


@then("each of those dashboards is captured as a screen")
@touches()
def grafana_screens(target: Target, dashboards: dict[str, str]) -> None:
    client = grafana.connect(target)
    platform_screens.grafana_dashboards(client.url, client.token, dashboards)
