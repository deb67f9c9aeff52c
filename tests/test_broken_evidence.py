"""What a broken layer shows, offline: Argo CD's unhealthy resources named one per line, the Application's
status cut to what explains it, and a collector that fails says so instead of hiding the cause."""

from __future__ import annotations

import json

from boutique_suite.reporting import broken_evidence

DEGRADED = 'Deployment "frontend" exceeded its progress deadline'
RESOURCES = [
    {"kind": "Service", "name": "frontend", "status": "Synced", "health": {"status": "Healthy"}},
    {"kind": "Deployment", "name": "frontend", "status": "Synced",
     "health": {"status": "Degraded", "message": DEGRADED}},
    {"kind": "ConfigMap", "name": "frontend-config", "status": "OutOfSync"},
]  # fmt: skip
APP = {
    "status": {
        "sync": {"status": "Synced", "revision": "49c5375b", "comparedTo": {"source": {"path": "overlays"}}},
        "health": {"status": "Degraded"},
        "conditions": None,
        "operationState": {
            "phase": "Succeeded",
            "message": "successfully synced (all tasks run)",
            "syncResult": {"resources": [{"kind": "Namespace", "status": "Synced"}] * 40},
        },
        "resources": [{**r, "namespace": "boutique-dev"} for r in RESOURCES],
    }
}


def test_unhealthy_resources_are_named_with_argo_cds_message() -> None:
    assert broken_evidence.unhealthy_resources(APP) == [
        f"Deployment/frontend in boutique-dev: health Degraded, sync Synced: {DEGRADED}",
        "ConfigMap/frontend-config in boutique-dev: health -, sync OutOfSync",
    ]


def test_the_status_keeps_what_explains_it_and_drops_the_sync_result() -> None:
    found = broken_evidence.application(lambda name: APP, "online-boutique-dev")
    status = json.loads(found["Argo CD online-boutique-dev status"])
    assert status["sync"] == {"status": "Synced", "revision": "49c5375b"}
    assert status["health"] == {"status": "Degraded"}
    assert status["operation"]["message"] == "successfully synced (all tasks run)"
    assert "syncResult" not in found["Argo CD online-boutique-dev status"]
    assert found["Argo CD online-boutique-dev unhealthy resources"].count("\n") == 1


def test_a_collector_that_fails_says_so() -> None:
    def unreachable(name: str) -> dict:
        raise OSError("connection refused")

    found = broken_evidence.application(unreachable, "online-boutique-dev")
    why = "collecting Argo CD online-boutique-dev failed: OSError: connection refused"
    assert found == {"Argo CD online-boutique-dev (not collected)": why}
