"""What a broken layer shows, gathered once when the layer is found broken: Argo CD's view of the
Application (its conditions and the resources that are not Healthy or not Synced) and, in its namespace,
each pod that is not Ready with its last events and the tail of its logs.

Every function returns ``{attachment name: text}`` and never raises: evidence must not hide the cause.
Secrets are never read (no Secret objects, no environment of pods).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from kubernetes.client.exceptions import ApiException

from boutique_suite.clients.kube import Kube

EVENTS_PER_POD = 10
LOG_LINES = 40


def _guarded(what: str, collect: Callable[[], dict[str, str]]) -> dict[str, str]:
    try:
        return collect()
    except Exception as exc:  # evidence must never hide the real failure
        return {f"{what} (not collected)": f"collecting {what} failed: {exc.__class__.__name__}: {exc}"}


def unhealthy_resources(app: Mapping[str, Any]) -> list[str]:
    """One line per resource of the Application that is not Healthy or not Synced, as Argo CD reports it."""
    lines = []
    for res in (app.get("status") or {}).get("resources") or []:
        health = (res.get("health") or {}).get("status")
        sync = res.get("status")
        if health in (None, "Healthy") and sync in (None, "Synced"):
            continue
        message = (res.get("health") or {}).get("message") or ""
        lines.append(
            f"{res.get('kind')}/{res.get('name')} in {res.get('namespace') or '-'}: "
            f"health {health or '-'}, sync {sync or '-'}" + (f": {message}" if message else "")
        )
    return lines


def application(get_application: Callable[[str], Mapping[str, Any]], name: str) -> dict[str, str]:
    """The Application's sync, health, conditions and operation, and its unhealthy resources."""

    def collect() -> dict[str, str]:
        app = get_application(name)
        status = app.get("status") or {}
        operation = status.get("operationState") or {}
        part = {
            "sync": {k: (status.get("sync") or {}).get(k) for k in ("status", "revision")},
            "health": status.get("health"),
            "conditions": status.get("conditions"),
            "operation": {k: operation.get(k) for k in ("phase", "message", "startedAt", "finishedAt")},
        }
        bad = unhealthy_resources(app)
        return {
            f"Argo CD {name} status": json.dumps(part, indent=2, default=str),
            f"Argo CD {name} unhealthy resources": "\n".join(bad) or "(every resource Healthy and Synced)",
        }

    return _guarded(f"Argo CD {name}", collect)


def _pod_not_ready(pod: Any) -> bool:
    conditions = {c.type: c.status for c in (pod.status.conditions or [])}
    return pod.status.phase != "Succeeded" and conditions.get("Ready") != "True"


def pods_not_ready(kube: Kube, namespace: str) -> dict[str, str]:
    """Each pod of ``namespace`` that is not Ready: its container states, last events and log tail."""

    def collect() -> dict[str, str]:
        pods = [p for p in kube.core.list_namespaced_pod(namespace).items if _pod_not_ready(p)]
        events = sorted(kube.events(namespace), key=event_time)
        found: dict[str, str] = {}
        for pod in pods:
            name = pod.metadata.name
            states = [
                f"{c.name}: ready={c.ready} restarts={c.restart_count} state={_state(c.state)}"
                for c in pod.status.container_statuses or []
            ]
            mine = [
                f"{e.last_timestamp or e.event_time} {e.type} {e.reason}: {e.message}"
                for e in events
                if e.involved_object.kind == "Pod" and e.involved_object.name == name
            ][-EVENTS_PER_POD:]
            logs = _log_tail(kube, namespace, name)
            lines = [f"phase {pod.status.phase}", *states, "", "last events:", *(mine or ["(none)"])]
            found[f"pod {namespace}/{name} (not Ready)"] = "\n".join([*lines, "", "logs:", logs])
        return found or {f"pods {namespace}": "(every pod Ready)"}

    return _guarded(f"pods of {namespace}", collect)


def event_time(event: Any) -> float:
    """When an event last happened, in seconds: events carry last_timestamp, event_time or first_timestamp."""
    stamp = event.last_timestamp or event.event_time or event.first_timestamp
    return stamp.timestamp() if stamp is not None else 0.0


def _state(state: Any) -> str:
    for kind in ("waiting", "terminated", "running"):
        detail = getattr(state, kind, None) if state else None
        if detail is not None:
            reason = getattr(detail, "reason", None)
            return f"{kind}" + (f" ({reason})" if reason else "")
    return "unknown"


def _log_tail(kube: Kube, namespace: str, pod: str) -> str:
    try:
        return kube.core.read_namespaced_pod_log(pod, namespace, tail_lines=LOG_LINES) or "(empty)"
    except ApiException as exc:
        return f"(logs unavailable: {exc.status} {exc.reason})"
