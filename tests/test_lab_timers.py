"""The lab's shortened timers: the `for:` its Prometheus evaluates, and the report's table beside on-prem."""

from __future__ import annotations

import pytest
import yaml

from provisioning.lab import manager, timers
from provisioning.lab.services import boutique, monitoring
from provisioning.observability import publish


def test_a_long_for_is_cut_to_the_labs_cap_and_a_short_one_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(monitoring.CFG, "alert_for_at_most", "20s")
    assert monitoring.lab_for("2m") == "20s"
    assert monitoring.lab_for("15s") == "15s"
    assert monitoring.lab_for("1m30s") == "20s"
    assert monitoring.duration_seconds("1h2m3s") == 3723


def test_a_duration_prometheus_would_refuse_is_one_clear_error() -> None:
    with pytest.raises(monitoring.MonitoringError, match="not a Prometheus duration: 'two minutes'"):
        monitoring.lab_for("two minutes")


def test_the_labs_rule_files_keep_every_rule_but_its_for(tmp_path) -> None:  # type: ignore[no-untyped-def]
    written = monitoring._write_rendered_rules(tmp_path)
    lab = [r for p in written for g in yaml.safe_load(p.read_text())["groups"] for r in g["rules"]]
    gitops = [r for groups in publish.rendered_rule_groups().values() for g in groups for r in g["rules"]]
    assert [{k: v for k, v in r.items() if k != "for"} for r in lab] == [
        {k: v for k, v in r.items() if k != "for"} for r in gitops
    ]
    cap = monitoring.duration_seconds(monitoring.CFG["alert_for_at_most"])
    assert all(monitoring.duration_seconds(r["for"]) <= cap for r in lab if "for" in r)
    assert any(monitoring.duration_seconds(r.get("for", "0s")) > cap for r in gitops), "nothing was shortened"


def test_the_report_lists_each_shortened_timer_beside_its_onprem_value() -> None:
    rows = {t.name: t for t in timers.table()}
    assert rows["HPA sync period"].onprem.startswith("15s")
    crash = rows["`for:` of BoutiquePodCrashLooping"]
    assert (crash.lab, crash.onprem) == ("20s", "1m (gitops-repo)")
    assert all(t.lab != t.onprem.split(" ")[0] for t in rows.values())
    assert "| HPA sync period | 5s | 15s (Kubernetes default) |" in timers.page()
    assert rows["kubelet crash-loop back-off cap"].lab == "5s"


HPA = """\
spec:
  behavior:
    scaleUp:
      stabilizationWindowSeconds: 0
      policies:
        - type: Pods
          value: 2
          periodSeconds: 15
    scaleDown:
      stabilizationWindowSeconds: 60
      policies:
        - type: Percent
          value: 50
          periodSeconds: 30
  minReplicas: 1   # after the block
---
spec:
  progressDeadlineSeconds: 120
  template: {}
---
spec:
  progressDeadlineSeconds: 20
"""


def test_the_labs_gitops_repo_shortens_deadlines_and_scale_down_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(manager.SETTINGS["gitops"], "hpa_scale_down_stabilization_at_most", 30)
    monkeypatch.setitem(manager.SETTINGS["gitops"], "hpa_scale_down_period_at_most", 15)
    monkeypatch.setitem(manager.SETTINGS["gitops"], "progress_deadline_at_most", 60)
    hpa, slow, quick = yaml.safe_load_all(boutique.lab_timers(HPA))
    assert hpa["spec"]["behavior"]["scaleUp"] == next(yaml.safe_load_all(HPA))["spec"]["behavior"]["scaleUp"]
    down = hpa["spec"]["behavior"]["scaleDown"]
    assert (down["stabilizationWindowSeconds"], down["policies"][0]["periodSeconds"]) == (30, 15)
    assert (slow["spec"]["progressDeadlineSeconds"], quick["spec"]["progressDeadlineSeconds"]) == (60, 20)
    assert "  minReplicas: 1   # after the block\n" in boutique.lab_timers(HPA)  # the rest stays as written


def test_the_report_lists_the_gitops_timers_the_lab_shortens() -> None:
    rows = {t.name: t for t in timers.table()}
    deadline = rows["progressDeadlineSeconds of Deployment frontend"]
    assert (deadline.onprem, int(deadline.lab.rstrip("s")) < 120) == ("120s (gitops-repo)", True)
    assert rows[
        "behavior.scaleDown.stabilizationWindowSeconds of HorizontalPodAutoscaler frontend"
    ].onprem == ("60s (gitops-repo)")
    assert not [name for name in rows if "scaleUp" in name]
