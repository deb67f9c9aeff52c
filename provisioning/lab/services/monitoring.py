"""The lab's monitoring: real kube-state-metrics, Prometheus and Alertmanager, and the Slack-compatible
receiver, as local processes on 127.0.0.1.

- kube-state-metrics (built from the Go module proxy) reads the lab's API server with its kubeconfig.
- Prometheus (Debian's) scrapes it, itself, Alertmanager, the lab's kube-apiserver and the platform's
  Argo CD and Sealed Secrets metrics, and evaluates the rules gitops-repo deploys: the PrometheusRules of
  `kustomize build platform/config/monitoring`, not the sources (provisioning/observability/publish.py).
- Alertmanager (Debian's) runs the config gitops-repo gives kube-prometheus-stack (its values file),
  rendered for a bot token posting to the lab receiver's chat.postMessage; gossip is off.
- The receiver (provisioning/lab/services/slack.py) accepts a bot token generated per lab (0600 file).

ensure() is idempotent: configs are rewritten only when they differ (then hot-reloaded), and processes
that already run with the same arguments on the current cluster are left alone.
"""

from __future__ import annotations

import re
import secrets
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import yaml

from boutique_suite.run import waits
from provisioning.gitops import source as gitops_source
from provisioning.lab import build, lab_status, layout, locks, manager, processes, recipes
from provisioning.observability import alertmanager as am_config
from provisioning.observability import publish

HOME = processes.PLATFORM / "monitoring"
SLACK_HOME = processes.PLATFORM / "slack"
TOKEN_FILE = SLACK_HOME / "bot.token"
PORTS: dict[str, int] = manager.SETTINGS["platform_ports"]
CFG: dict[str, Any] = manager.SETTINGS["monitoring"]
HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parents[3]
COMPONENTS = ("slack-receiver", "kube-state-metrics", "alertmanager", "prometheus")
PROMETHEUS_BIN = "/usr/bin/prometheus"
ALERTMANAGER_BIN = "/usr/bin/prometheus-alertmanager"


class MonitoringError(Exception):
    """The lab's monitoring cannot be started; the message says why and what to do."""


@dataclass(frozen=True)
class Monitoring:
    prometheus_url: str
    alertmanager_url: str
    slack_api_url: str
    pids: dict[str, int]
    changed: list[str]  # components started or reloaded by this ensure


def url(component: str) -> str:
    return f"http://{HOST}:{PORTS[component]}"


def slack_api_url() -> str:
    return f"{url('slack')}/api/"


def _scrape(job: str, port_key: str, **extra: Any) -> dict[str, Any]:
    return {"job_name": job, "static_configs": [{"targets": [f"{HOST}:{PORTS[port_key]}"]}], **extra}


def _cadvisor_job(tls_config: dict[str, str]) -> list[dict[str, Any]]:
    """The real kubelets' cAdvisor metrics (CPU, throttling, memory per container), through the API server's
    node proxy as kube-prometheus-stack does; none on KWOK nodes, which have no kubelet to ask."""
    runtime = lab_status.node_runtime()
    if runtime is None or runtime.kind != "real":
        return []
    apiserver = f"{HOST}:{manager.SETTINGS['ports']['kube_apiserver']}"
    return [
        {
            "job_name": "kubelet-cadvisor",
            "scheme": "https",
            "tls_config": tls_config,
            "static_configs": [
                {
                    "targets": [apiserver],
                    "labels": {
                        "__metrics_path__": f"/api/v1/nodes/{node}/proxy/metrics/cadvisor",
                        "node": node,
                    },
                }
                for node in manager.SETTINGS["hosts"]["addresses"]
            ],
        }
    ]


# Argo CD's metrics Services of install.yaml: (job, Service, port).
ARGOCD_METRICS = (
    ("argocd-application-controller", "argocd-metrics", 8082),
    ("argocd-server", "argocd-server-metrics", 8083),
    ("argocd-repo-server", "argocd-repo-server", 8084),
)


def _argocd_jobs(tls_config: dict[str, str]) -> list[dict[str, Any]]:
    """Argo CD's metrics, through the API server's proxy to its metrics Services (Argo CD runs in the
    cluster; Prometheus runs beside the API server)."""
    apiserver = f"{HOST}:{manager.SETTINGS['ports']['kube_apiserver']}"
    ns = manager.SETTINGS["argocd"]["namespace"]
    return [
        {
            "job_name": job,
            "scheme": "https",
            "tls_config": tls_config,
            "metrics_path": f"/api/v1/namespaces/{ns}/services/{service}:{port}/proxy/metrics",
            "static_configs": [{"targets": [apiserver]}],
        }
        for job, service, port in ARGOCD_METRICS
    ]


def prometheus_config(rule_files: list[Path]) -> dict[str, Any]:
    pki = manager.WORKDIR / "pki"
    tls_config = {
        "ca_file": str(pki / "ca.crt"),
        "cert_file": str(pki / "admin.crt"),
        "key_file": str(pki / "admin.key"),
    }
    return {
        "global": {
            "scrape_interval": CFG["scrape_interval"],
            "evaluation_interval": CFG["evaluation_interval"],
            "external_labels": {"cluster": manager.NAME},
        },
        "rule_files": [str(p) for p in rule_files],
        "alerting": {"alertmanagers": [{"static_configs": _scrape("", "alertmanager")["static_configs"]}]},
        "scrape_configs": [
            _scrape("prometheus", "prometheus"),
            _scrape("alertmanager", "alertmanager"),
            # honor_labels keeps kube-state-metrics' own namespace/pod labels (as kube-prometheus-stack does).
            _scrape("kube-state-metrics", "kube_state_metrics", honor_labels=True),
            {
                "job_name": "apiserver",
                "static_configs": [{"targets": [f"{HOST}:{manager.SETTINGS['ports']['kube_apiserver']}"]}],
                "scheme": "https",
                "tls_config": tls_config,
            },
            *_cadvisor_job(tls_config),
            *_argocd_jobs(tls_config),
            _scrape("sealed-secrets", "sealed_secrets_metrics"),
        ],
    }


def alertmanager_config(channel: str | None, gitops: Path = publish.GITOPS) -> dict[str, Any]:
    """The platform's config with the lab's receiver and short grouping; only a token *file* in it. The
    Slack channel is gitops-repo's (as on-prem) unless ``channel`` overrides it."""
    rendered, _ = publish.rendered_alertmanager(gitops)  # what gitops-repo gives the chart
    config = am_config.render(
        config=rendered,
        bot_token_file=str(TOKEN_FILE),
        api_url=f"{slack_api_url()}chat.postMessage",
        channel=channel,
        templates_glob=str(HOME / "alertmanager" / "*.tmpl"),
    )
    config["route"]["group_wait"] = CFG["group_wait"]
    config["route"]["group_interval"] = CFG["group_interval"]
    for route in config["route"].get("routes", []):
        route.pop("group_wait", None)
    return config


def _write_if_changed(path: Path, text: str) -> bool:
    if path.exists() and path.read_text() == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return True


def _token() -> str:
    if not TOKEN_FILE.exists():
        SLACK_HOME.mkdir(parents=True, exist_ok=True)
        TOKEN_FILE.touch(mode=0o600)
        TOKEN_FILE.write_text(f"xoxb-lab-{secrets.token_hex(16)}\n")
    return TOKEN_FILE.read_text().strip()


def _argv() -> dict[str, list[str]]:
    ksm = build.bin_dir("kube-state-metrics") / "kube-state-metrics"
    return {
        "slack-receiver": [
            sys.executable,
            "-m",
            "provisioning.lab.services.slack",
            "--port",
            str(PORTS["slack"]),
            "--token-file",
            str(TOKEN_FILE),
            *(arg for ch in CFG["slack_channels"] for arg in ("--channel", ch)),
        ],
        "kube-state-metrics": [
            str(ksm),
            f"--kubeconfig={layout.KUBECONFIG}",
            f"--host={HOST}",
            f"--port={PORTS['kube_state_metrics']}",
            f"--telemetry-host={HOST}",
            f"--telemetry-port={PORTS['kube_state_metrics_telemetry']}",
        ],
        "alertmanager": [
            ALERTMANAGER_BIN,
            f"--config.file={HOME / 'alertmanager' / 'alertmanager.yml'}",
            f"--storage.path={HOME / 'alertmanager' / 'data'}",
            f"--web.listen-address={HOST}:{PORTS['alertmanager']}",
            f"--web.external-url={url('alertmanager')}",
            "--cluster.listen-address=",  # a single instance: no gossip port
        ],
        "prometheus": [
            PROMETHEUS_BIN,
            f"--config.file={HOME / 'prometheus' / 'prometheus.yml'}",
            f"--storage.tsdb.path={HOME / 'prometheus' / 'data'}",
            "--storage.tsdb.retention.time=1d",
            f"--web.listen-address={HOST}:{PORTS['prometheus']}",
            f"--web.external-url={url('prometheus')}",
            "--web.enable-lifecycle",  # POST /-/reload after a config change
        ],
    }


_DURATION_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def duration_seconds(duration: str) -> float:
    """Seconds of a Prometheus duration such as "1m30s"."""
    if not re.fullmatch(f"(?:{_DURATION_PART.pattern})+", duration.strip()):
        raise MonitoringError(f"not a Prometheus duration: {duration!r}")
    return sum(int(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(duration))


def lab_for(duration: str) -> str:
    """The `for:` the lab's Prometheus evaluates for a rule whose own is ``duration``."""
    cap = CFG["alert_for_at_most"]
    return cap if duration_seconds(duration) > duration_seconds(cap) else duration


def _with_lab_for(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {**g, "rules": [{**r, "for": lab_for(r["for"])} if "for" in r else r for r in g["rules"]]}
        for g in groups
    ]


def _write_rendered_rules(rules_dir: Path, gitops: Path = publish.GITOPS) -> list[Path]:
    """The PrometheusRules gitops-repo renders (kustomize build of platform/config/monitoring), one plain
    rule file each, with the lab's shorter `for:` (lab_for); files of rules no longer rendered are removed."""
    rules_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, rendered in publish.rendered_rule_groups(gitops).items():
        groups = _with_lab_for(rendered)
        path = rules_dir / f"{name}.rules.yaml"
        _write_if_changed(path, yaml.safe_dump({"groups": groups}, sort_keys=False))
        written.append(path)
    for path in set(rules_dir.glob("*.yaml")) - set(written):
        path.unlink()
    return written


def _write_configs(channel: str | None) -> set[str]:
    """Write the configs; the names of the components whose config changed."""
    changed = set()
    rules_dir = HOME / "prometheus" / "rules"
    before = {p.name: p.read_text() for p in rules_dir.glob("*.yaml")} if rules_dir.exists() else {}
    written = _write_rendered_rules(rules_dir, gitops_source())
    if {p.name: p.read_text() for p in written} != before:
        changed.add("prometheus")
    prom = yaml.safe_dump(prometheus_config(written), sort_keys=False)
    if _write_if_changed(HOME / "prometheus" / "prometheus.yml", prom):
        changed.add("prometheus")
    am_dir = HOME / "alertmanager"
    _, template = publish.rendered_alertmanager(gitops_source())
    if _write_if_changed(am_dir / publish.TEMPLATE, template):
        changed.add("alertmanager")
    am = yaml.safe_dump(alertmanager_config(channel, gitops_source()), sort_keys=False)
    if _write_if_changed(am_dir / "alertmanager.yml", am):
        changed.add("alertmanager")
    return changed


def _reload(component: str) -> None:
    resp = requests.post(f"{url(component)}/-/reload", timeout=30)
    if resp.status_code != 200:
        detail = resp.text.strip()[:300]
        raise MonitoringError(f"{component} refused its new config: {resp.status_code} {detail}")


def _require_debian_binaries() -> None:
    for binary, package in ((PROMETHEUS_BIN, "prometheus"), (ALERTMANAGER_BIN, "prometheus-alertmanager")):
        if not Path(binary).exists():
            raise MonitoringError(f"{binary} is missing: apt-get install {package} (./run setup does it)")


def ensure(channel: str | None = None) -> Monitoring:
    """Idempotent; the lab must be up (layer 2). Alerts go to the Slack channel gitops-repo names, as on
    the platform (the target's ``slack.channel`` is where the suite reads them), unless ``channel``."""
    _require_debian_binaries()
    try:
        build.ensure_all(["kube-state-metrics"])
    except recipes.BuildError as exc:
        raise MonitoringError(str(exc)) from None
    with locks.exclusive(processes.PLATFORM / "monitoring.lock"):
        _token()
        changed_configs = _write_configs(channel)
        cluster_since = (lab_status.read_stamp() or {}).get("ready_at", 0.0)
        env = {"PATH": "/usr/bin:/bin", "HOME": str(HOME), "PYTHONPATH": str(ROOT)}
        ports = {
            "slack-receiver": PORTS["slack"],
            "kube-state-metrics": PORTS["kube_state_metrics"],
            "alertmanager": PORTS["alertmanager"],
            "prometheus": PORTS["prometheus"],
        }
        changed = []
        argv = _argv()
        if not processes.info("alertmanager").alive:
            _forget_notifications()
        for name, port in ports.items():
            before = processes.info(name).pid
            try:
                proc = processes.start(name, argv[name], env, port, wait=60, not_before=cluster_since)
            except processes.ProcessError as exc:
                raise MonitoringError(str(exc)) from None
            if proc.pid != before:
                changed.append(name)
            elif name in changed_configs:
                _reload(name)
                changed.append(f"{name} (reloaded)")
        _wait_ready()
    return Monitoring(
        prometheus_url=url("prometheus"),
        alertmanager_url=url("alertmanager"),
        slack_api_url=slack_api_url(),
        pids={n: processes.info(n).pid or 0 for n in COMPONENTS},
        changed=changed,
    )


def _forget_notifications() -> None:
    """A new Alertmanager starts without the notification log of one that ran before it (a lab stopped or
    killed with alerts firing): that log would take a new firing of the same alert for one already sent
    and stay silent until repeat_interval (4 h); seen in CI after an interrupted run."""
    shutil.rmtree(HOME / "alertmanager" / "data", ignore_errors=True)


def _wait_ready(timeout: float = 60) -> None:
    pending = {"prometheus": "/-/ready", "alertmanager": "/-/ready", "kube_state_metrics": "/healthz"}

    def ready() -> waits.Check:
        for component, path in list(pending.items()):
            try:
                if requests.get(f"{url(component)}{path}", timeout=2).status_code == 200:
                    del pending[component]
            except requests.RequestException:
                pass
        return (
            waits.pending(f"not ready: {', '.join(pending)} (logs in {HOME})")
            if pending
            else waits.succeeded()
        )

    waits.until(ready, timeout=timeout, what="monitoring", interval=0.5, error=MonitoringError)


def stop() -> list[str]:
    return [name for name in COMPONENTS if processes.stop(name)]
