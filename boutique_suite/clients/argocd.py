"""Argo CD through its own REST API (the same calls on the lab and on-prem): login, version, repositories,
Applications, their history, and sync-policy changes that scenarios make and revert."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from boutique_suite.run import waits

OPERATION_IN_PROGRESS = "another operation is already in progress"
REFRESH_SECONDS = 90  # a full comparison: manifests from the repo-server, then the live state


class ArgoCDUnavailable(Exception):
    """The Argo CD API cannot be used; the message says why."""


@dataclass
class ArgoCDClient:
    url: str
    token: str = field(repr=False)  # never in a traceback or a log
    session: requests.Session = field(default_factory=requests.Session)

    @classmethod
    def login(cls, url: str, username: str, password: str, ca_file: Path | None = None) -> ArgoCDClient:
        """A session for ``username``; over HTTPS the server's certificate is verified against ``ca_file``
        (the platform CA) when given, else against the system's trust store."""
        verify: str | bool = str(ca_file) if ca_file else True
        try:
            resp = requests.post(
                f"{url}/api/v1/session",
                json={"username": username, "password": password},
                timeout=10,
                verify=verify,
            )
        except requests.RequestException as exc:
            raise ArgoCDUnavailable(f"cannot reach Argo CD at {url}: {exc}") from None
        if resp.status_code != 200:
            raise ArgoCDUnavailable(f"Argo CD at {url} refused the login of {username!r}: {resp.status_code}")
        client = cls(url, resp.json()["token"])
        client.session.verify = verify
        if ca_file:  # otherwise REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE in the environment override the CA
            client.session.trust_env = False
        client.session.headers["Authorization"] = f"Bearer {client.token}"
        return client

    def get(self, path: str, timeout: float = 15, **params: Any) -> Any:
        resp = self.session.get(f"{self.url}{path}", params=params, timeout=timeout)
        resp.raise_for_status()
        return resp.json()

    def version(self) -> dict[str, str]:
        return self.get("/api/version")

    def repositories(self, force_refresh: bool = True) -> list[dict]:
        return self.get("/api/v1/repositories", forceRefresh=str(force_refresh).lower()).get("items") or []

    def application(self, name: str) -> dict:
        return self.get(f"/api/v1/applications/{name}")

    def refresh(self, name: str) -> dict:
        """Argo CD's server answers once its controller has compared the Application anew."""
        return self.get(f"/api/v1/applications/{name}", timeout=REFRESH_SECONDS, refresh="normal")

    def sync(self, name: str) -> dict | None:
        """Start a sync; None when Argo CD is already running one (e.g. the auto-sync that switching
        self-heal back on triggers), which converges the Application just as well."""
        resp = self.session.post(
            f"{self.url}/api/v1/applications/{name}/sync", json={"prune": True}, timeout=15
        )
        if resp.status_code == 400 and OPERATION_IN_PROGRESS in resp.text:
            return None
        if resp.status_code != 200:
            raise AssertionError(f"sync of {name} refused: {resp.status_code} {resp.text[:300]}")
        return resp.json()

    def set_self_heal(self, name: str, enabled: bool) -> None:
        self._change_sync_policy(name, {"automated": {"selfHeal": enabled}})

    def set_automated(self, name: str, automated: dict | None) -> None:
        """Suspend auto-sync (None) or restore a saved ``syncPolicy.automated``."""
        self._change_sync_policy(name, {"automated": automated})

    def _change_sync_policy(self, name: str, sync_policy: dict) -> None:
        """Returns once the controller acts on the new policy. Its informer may still hold the old one for
        seconds, and a change made meanwhile is self-healed under it (seen in CI). A refresh requested after
        the patch is cleared only by a reconcile that read a later version of the Application, and the
        controller reconciles an Application one at a time, so after it nothing can act on the old policy."""
        self._patch(name, {"spec": {"syncPolicy": sync_policy}})
        self.refresh(name)

    def rollback(self, name: str, history_id: int) -> dict:
        resp = self.session.post(
            f"{self.url}/api/v1/applications/{name}/rollback",
            json={"name": name, "id": history_id, "prune": True},
            timeout=15,
        )
        if resp.status_code != 200:
            raise AssertionError(f"rollback of {name} refused: {resp.status_code} {resp.text[:300]}")
        return resp.json()

    def _patch(self, name: str, body: dict) -> None:
        patch = json.dumps(body)
        resp = self.session.patch(
            f"{self.url}/api/v1/applications/{name}",
            json={"name": name, "patch": patch, "patchType": "merge"},
            timeout=15,
        )
        resp.raise_for_status()

    def project_exists(self, name: str) -> bool:
        resp = self.session.get(f"{self.url}/api/v1/projects/{name}", timeout=15)
        if resp.status_code in (403, 404):  # Argo CD answers 403 for a project that does not exist
            return False
        resp.raise_for_status()
        return True

    def managed_resources(self, name: str) -> list[dict]:
        return self.get(f"/api/v1/applications/{name}/managed-resources").get("items") or []


_MISSING_PROJECT = re.compile(r"referencing project (\S+) which does not exist")


def _missing_projects(conditions: list[str]) -> list[str]:
    return [m.group(1) for c in conditions if (m := _MISSING_PROJECT.search(c))]


def _reason(exc: requests.RequestException) -> str:
    """The innermost cause of a transport error, without urllib3's pool and retry wrapping."""
    cause: BaseException = exc
    while cause.__cause__ is not None or (cause.args and isinstance(cause.args[0], BaseException)):
        cause = cause.__cause__ or cause.args[0]
    return f"{type(cause).__name__}: {cause}"


def sync_and_health(app: dict) -> tuple[str, str, str]:
    status = app.get("status", {})
    return (
        status.get("sync", {}).get("status", "Unknown"),
        status.get("health", {}).get("status", "Unknown"),
        status.get("sync", {}).get("revision", ""),
    )


def synced_and_healthy(client: ArgoCDClient, name: str, revision: str | None = None) -> waits.Probe:
    """Three outcomes: Synced + Healthy (at ``revision`` if given) succeeds; a failed sync operation or a
    Degraded health fails at once with Argo CD's own message; anything else is pending. Argo CD's API not
    answering is pending too: its server's pod moves when its node is drained, and the deadline turns an
    API that never comes back into a failure naming the error."""

    def probe() -> waits.Check:
        try:
            app = client.application(name)
        except (requests.ConnectionError, requests.Timeout) as exc:
            return waits.pending(f"{name}: Argo CD's API at {client.url} did not answer: {_reason(exc)}")
        sync, health, rev = sync_and_health(app)
        status = app.get("status", {})
        op = status.get("operationState") or {}
        conditions = [
            f"{c.get('type')}: {c.get('message')}"
            for c in status.get("conditions") or []
            if c.get("type", "").endswith("Error")
        ]
        detail = f"{name}: sync {sync}, health {health}, revision {rev[:8]}"
        if revision is not None and rev != revision:
            return waits.pending(f"{detail}; waiting for revision {revision[:8]}")
        unseen = [p for p in _missing_projects(conditions) if client.project_exists(p)]
        if unseen:  # a controller that just started says so until its cache has the project: not an error
            return waits.pending(f"{detail}; the controller has not loaded project {', '.join(unseen)} yet")
        if conditions:
            return waits.failed(f"{detail}; {'; '.join(conditions)}")
        if op.get("phase") in ("Failed", "Error") and op.get("syncResult", {}).get("revision") == rev:
            return waits.failed(f"{detail}; sync operation {op.get('phase')}: {op.get('message')}")
        failed_resources = [
            r.get("message", "")
            for r in (op.get("syncResult") or {}).get("resources") or []
            if r.get("status") == "SyncFailed"
        ]
        if failed_resources and op.get("retryCount", 0) >= 1:
            # Argo CD retries an automated sync; the same apply error on a retry will not go away by waiting.
            return waits.failed(f"{detail}; sync failed and is being retried: {op.get('message')}")
        if op.get("phase") in ("Running", "Terminating"):
            return waits.pending(f"{detail}; sync operation {op.get('phase')}")
        if health == "Degraded":
            return waits.failed(f"{detail}; {status.get('health', {}).get('message', '')}")
        if sync == "Synced" and health == "Healthy" and (revision is None or rev == revision):
            return waits.succeeded(detail, app)
        return waits.pending(detail)

    return probe


def wait_synced_and_healthy(
    client: ArgoCDClient,
    name: str,
    timeout: float,
    revision: str | None = None,
) -> waits.Waited:
    return waits.until(
        synced_and_healthy(client, name, revision),
        timeout=timeout,
        interval=2,
        what=f"Application {name} Synced and Healthy",
    )


def history(app: dict) -> list[dict]:
    return app.get("status", {}).get("history") or []


def seconds_since(timestamp: float) -> float:
    return time.monotonic() - timestamp
