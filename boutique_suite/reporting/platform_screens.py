"""The platform's screens a reader of the report expects: the storefront from outside, Argo CD's application
after a sync or a rollback, the Slack alert as posted. Each caption says whether it is the real page or a page
the suite rendered from an API's answer."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

from boutique_suite.clients import slack
from boutique_suite.clients.argocd import ArgoCDClient
from boutique_suite.reporting import screens

if TYPE_CHECKING:
    from boutique_suite.reporting.cicd_trace import Trace

PRODUCT_LINK = 'a[href^="/product/"]'


def storefront(url: str, host: str | None, standin: bool) -> list[Path | None]:
    """The home page, then the first product's page, as a shopper's browser shows them."""
    what = "the lab's stand-in frontend" if standin else "the Online Boutique frontend"
    where = f"{host} at {url}" if host else url
    return [
        screens.page("storefront-home", f"storefront home: {what}, {where}", url, host=host),
        screens.page(
            "storefront-product",
            f"storefront product page: {what}, first product of the home page",
            url,
            host=host,
            wait_for="body",
            click=PRODUCT_LINK,
        ),
    ]


def argocd_serves_ui(argocd: ArgoCDClient) -> bool:
    """Argo CD's web UI is served (its index names it); a server built without the UI assets is not."""
    try:
        answer = argocd.session.get(f"{argocd.url}/applications", timeout=10)
    except requests.RequestException:
        return False
    return answer.status_code == 200 and "<title>Argo CD</title>" in answer.text


def argocd_application(argocd: ArgoCDClient, app: str, moment: str) -> Path | None:
    """Argo CD's application page (the real UI, logged in with the suite's session) or, where the server
    serves no UI, the same facts rendered from its API."""
    name = f"argocd-{app}-{moment}"
    if argocd_serves_ui(argocd):
        cookie = {"name": "argocd.token", "value": argocd.token, "url": argocd.url}
        return screens.page(
            name,
            f"Argo CD UI: application {app} {moment}",
            f"{argocd.url}/applications/argocd/{app}?view=tree",
            wait_for=".application-details",
            cookies=[cookie],
        )
    return screens.rendering(
        name,
        f"rendered by the suite from Argo CD's API (/api/v1/applications/{app}): this Argo CD serves no UI",
        f"Argo CD application {app} {moment}",
        application_html(argocd.application(app)),
    )


def application_html(app: dict[str, Any]) -> str:
    status = app.get("status") or {}
    sync, health = status.get("sync") or {}, status.get("health") or {}
    source = (app.get("spec") or {}).get("source") or {}
    e = html.escape

    def badge(value: str, good: str) -> str:
        return f'<span class="{"ok" if value == good else "bad"}">{e(value or "?")}</span>'

    head = (
        f"<p>sync {badge(sync.get('status', ''), 'Synced')}"
        f" at revision <code>{e(sync.get('revision', ''))}</code>"
        f" &middot; health {badge(health.get('status', ''), 'Healthy')}<br>"
        f"source {e(source.get('repoURL', ''))} path <code>{e(source.get('path', ''))}</code>"
        f" ({e(source.get('targetRevision', ''))})</p>"
    )
    resources = "".join(
        f"<tr><td>{e(r.get('kind', ''))}</td><td>{e(r.get('name', ''))}</td>"
        f"<td>{badge(r.get('status', ''), 'Synced')}</td>"
        f"<td>{badge((r.get('health') or {}).get('status', 'Healthy'), 'Healthy')}</td></tr>"
        for r in status.get("resources") or []
    )
    history = "".join(
        f"<tr><td>{e(str(h.get('id', '')))}</td><td><code>{e(str(h.get('revision', '')))}</code></td>"
        f"<td>{e(str(h.get('deployedAt', '')))}</td></tr>"
        for h in reversed(status.get("history") or [])
    )
    return (
        head
        + "<h3>History (newest first)</h3><table><tr><th>id</th><th>revision</th><th>deployed at</th></tr>"
        + history
        + "</table><h3>Resources</h3><table><tr><th>kind</th><th>name</th><th>sync</th><th>health</th></tr>"
        + resources
        + "</table>"
    )


ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
LOG_LINES = 80


GRAFANA_PANELS = ".react-grid-layout"


def grafana_dashboards(url: str, token: str, uids: dict[str, str]) -> list[Path | None]:
    """Each dashboard as Grafana draws it (kiosk mode, the last hour), the service-account token sent as a
    bearer header to the browser process on its stdin."""
    return [
        screens.page(
            f"grafana-{uid}",
            f"Grafana dashboard {title} (the real page)",
            f"{url.rstrip('/')}/d/{uid}?orgId=1&from=now-1h&to=now&kiosk",
            wait_for=GRAFANA_PANELS,
            headers={"Authorization": f"Bearer {token}"},
        )
        for title, uid in uids.items()
    ]


def job_log(job: str, returncode: int, seconds: float, log: str, commit: str, runner: str) -> Path | None:
    """The pipeline job as its page shows it: status, duration and the end of its log (rendered: on the lab
    the job ran in gitlab-ci-local, which has no page)."""
    lines = ANSI.sub("", log).strip().splitlines()
    shown = lines[-LOG_LINES:]
    cut = len(lines) - len(shown)
    body = f"<p>{'passed' if returncode == 0 else f'failed (exit code {returncode})'} in {seconds:.1f} s"
    body += f", its last {len(shown)} of {len(lines)} lines</p>" if cut else "</p>"
    body += f'<pre class="card">{html.escape(chr(10).join(shown))}</pre>'
    return screens.rendering(
        f"job-{job}-{commit[:8]}",
        f"rendered by the suite from the {job} job's log ({runner}); on-prem GitLab shows it on its job page",
        f"job {job} at app-repo {commit[:8]}",
        body,
    )


def at_failure(argocd: ArgoCDClient | None, app: str, storefront: str | None, host: str | None) -> None:
    """What the shopper and Argo CD showed when the chaos scenario failed, before its faults are reverted."""
    if storefront is not None:
        caption = "storefront when the scenario failed, before the revert"
        screens.page("failure-storefront", caption, storefront, host=host)
    if argocd is not None:
        argocd_application(argocd, app, "when the scenario failed, before the revert")


def slack_message(channel: str, message: dict[str, Any], lab: bool) -> Path | None:
    """The alert as the channel holds it: its text and attachments, rendered (Slack's own client needs a
    person's login, which the suite does not have)."""
    source = "the lab's Slack-compatible receiver" if lab else "Slack's conversations.history"
    return screens.rendering(
        f"slack-{channel}-{message.get('ts', '')}",
        f"rendered by the suite from the message as {source} returned it",
        f"#{channel.lstrip('#')}",
        f'<div class="card">{html.escape(slack.message_text(message))}</div>',
    )


def pipeline_job(trace: Trace) -> Path | None:
    """job_log of the pipeline job the CI/CD scenario ran, titled with what ran it."""
    assert trace.job is not None, "no pipeline job ran in this scenario"
    job = trace.job
    return job_log(job.job, job.returncode, job.seconds, job.log, trace.app_commit, trace.runner)
