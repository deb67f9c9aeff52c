"""The platform timers the lab shortens so its scenarios wait seconds, beside the values on-prem keeps.

On-prem runs the platform's own values: the defaults of Kubernetes, Argo CD and kube-prometheus-stack, and
what gitops-repo sets (Alertmanager's grouping, each alert rule's `for:`). The lab's come from
settings.toml. The report shows this table as the run page "lab-timers.md", so a lab result is never read
as proof of an on-prem latency.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from provisioning.gitops import source as gitops_source
from provisioning.lab import manager
from provisioning.lab.services import boutique, monitoring
from provisioning.observability import publish


@dataclass(frozen=True)
class Timer:
    name: str
    lab: str
    onprem: str


def _fixed() -> list[Timer]:
    ctl, argo, mon = (manager.SETTINGS[k] for k in ("controllers", "argocd", "monitoring"))
    return [
        Timer("HPA sync period", ctl["hpa_sync_period"], "15s (Kubernetes default)"),
        Timer("HPA scale-down stabilisation", ctl["hpa_downscale_stabilization"], "5m (Kubernetes default)"),
        Timer("metrics-server resolution", ctl["metric_resolution"], "15s (metrics-server default)"),
        Timer(
            "kubelet crash-loop back-off cap",
            manager.SETTINGS["nodes"]["crash_loop_back_off_max"],
            "10s doubling up to 300s (Kubernetes default)",
        ),
        Timer("Argo CD timeout.reconciliation", f"{argo['app_resync_seconds']}s", "180s (Argo CD default)"),
        Timer(
            "Argo CD self-heal backoff",
            f"{argo['self_heal_backoff_timeout_seconds']}s x{argo['self_heal_backoff_factor']} "
            f"up to {argo['self_heal_backoff_cap_seconds']}s",
            "2s x2 up to 5m (Argo CD default)",
        ),
        Timer("Prometheus scrape interval", mon["scrape_interval"], "30s (kube-prometheus-stack default)"),
        Timer("Prometheus evaluation interval", mon["evaluation_interval"], "30s (kube-prometheus-stack)"),
    ]


def _alertmanager() -> list[Timer]:
    route = publish.rendered_alertmanager()[0]["route"]
    mon = manager.SETTINGS["monitoring"]
    return [
        Timer(
            "Alertmanager group_wait", mon["group_wait"], f"{route.get('group_wait', '30s')} (gitops-repo)"
        ),
        Timer(
            "Alertmanager group_interval",
            mon["group_interval"],
            f"{route.get('group_interval')} (gitops-repo)",
        ),
    ]


def _alert_for() -> list[Timer]:
    rules = (r for groups in publish.rendered_rule_groups().values() for g in groups for r in g["rules"])
    alerts = [
        (r["alert"], r["for"], monitoring.lab_for(r["for"])) for r in rules if "alert" in r and "for" in r
    ]
    return [
        Timer(f"`for:` of {name}", lab, f"{own} (gitops-repo)") for name, own, lab in alerts if lab != own
    ]


def _gitops_timers() -> list[Timer]:
    """The timers gitops-repo's manifests set that the lab's copy shortens (boutique.lab_timers)."""
    found = []
    for manifest in sorted(gitops_source().rglob("*.yaml")):
        text = manifest.read_text()
        for own, lab in zip(
            yaml.safe_load_all(text), yaml.safe_load_all(boutique.lab_timers(text)), strict=True
        ):
            if not isinstance(own, dict) or own.get("kind") not in ("Deployment", "HorizontalPodAutoscaler"):
                continue
            name = f"{own['kind']} {own['metadata']['name']}"
            for key, own_value, lab_value in _differences(own.get("spec"), lab.get("spec")):
                found.append(Timer(f"{key} of {name}", f"{lab_value}s", f"{own_value}s (gitops-repo)"))
    return found


def _differences(own: object, lab: object, path: str = "") -> list[tuple[str, object, object]]:
    if isinstance(own, dict) and isinstance(lab, dict):
        return [d for key in own for d in _differences(own[key], lab.get(key), f"{path}.{key}".strip("."))]
    if isinstance(own, list) and isinstance(lab, list):
        return [
            d
            for i, (o, la) in enumerate(zip(own, lab, strict=False))
            for d in _differences(o, la, f"{path}[{i}]")
        ]
    return [(path, own, lab)] if own != lab else []


def table() -> list[Timer]:
    """Every timer the lab runs shorter (or differently) than on-prem."""
    every = (*_fixed(), *_alertmanager(), *_alert_for(), *_gitops_timers())
    return [t for t in every if t.lab != t.onprem.split(" ")[0]]


def page() -> str:
    lines = [
        "# The lab's shortened timers",
        "",
        "The lab shortens these so its scenarios wait seconds instead of minutes. On-prem keeps the "
        "platform's own values (right column); promtool's unit tests prove each alert's own `for:`.",
        "",
        "| timer | lab | on-prem |",
        "|---|---|---|",
        *(f"| {t.name} | {t.lab} | {t.onprem} |" for t in table()),
    ]
    return "\n".join(lines) + "\n"
