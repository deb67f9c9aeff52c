"""Argo CD's word that gitops-repo's push webhook reached it: a "refreshing app ... from webhook" line in the
server's log, at or after the push, in JSON (the lab) or logfmt (install.yaml's default)."""

from __future__ import annotations

import datetime
import json
from types import SimpleNamespace

import pytest

from boutique_suite.context import sites
from boutique_suite.expectations import gitops_checks
from boutique_suite.run import targets, waits

PUSHED = datetime.datetime(2026, 12, 6, 14, 9, 0, 500000, tzinfo=datetime.UTC)
LAB = targets.load("lab")
REFRESH = "refreshing app 'online-boutique-dev' from webhook"


def with_log(monkeypatch: pytest.MonkeyPatch, log: str) -> None:
    site = SimpleNamespace(argocd_server_log=lambda kube, since_seconds: log)
    monkeypatch.setattr(sites, "site_for", lambda target: site)


@pytest.mark.parametrize(
    "line",
    [
        json.dumps({"level": "info", "msg": REFRESH, "time": "2026-12-06T14:09:00Z"}),
        f'time="2026-12-06T14:09:03Z" level=info msg="{REFRESH}"',
    ],
)
def test_a_refresh_from_the_webhook_after_the_push_is_found(
    monkeypatch: pytest.MonkeyPatch, line: str
) -> None:
    with_log(monkeypatch, f"noise\n{line}\n")
    assert gitops_checks.expect_webhook_refresh(LAB, None, "online-boutique-dev", PUSHED, timeout=1) == line  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "log",
    [
        json.dumps({"msg": REFRESH, "time": "2026-12-06T14:08:59Z"}),  # before the push
        '{"msg":"refreshing app \'other-app\' from webhook","time":"2026-12-06T14:09:05Z"}',  # another app
        '{"msg":"Requested app \'online-boutique-dev\' refresh","time":"2026-12-06T14:09:05Z"}',  # by hand
        "",
    ],
)
def test_no_webhook_refresh_of_the_app_since_the_push_times_out(
    monkeypatch: pytest.MonkeyPatch, log: str
) -> None:
    with_log(monkeypatch, log)
    with pytest.raises(waits.WaitTimeout, match="has not logged"):
        gitops_checks.expect_webhook_refresh(LAB, None, "online-boutique-dev", PUSHED, timeout=0.5)  # type: ignore[arg-type]
