"""The CI/CD trace: what a CI/CD scenario did, step by step (``Trace``), and the trace in the report: app-repo
commit -> pipeline job -> gitops-repo commit -> Argo CD history entry -> ReplicaSet, each link checked
against the next before it is attached."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from boutique_suite.clients.argocd import ArgoCDClient
from boutique_suite.context.sites import JobRun
from boutique_suite.reporting import evidence


@dataclass
class Trace:
    """What a CI/CD scenario did, step by step: the evidence of the report's trace."""

    service: str = ""
    app_commit: str = ""
    pushed_at: float = 0.0
    job: JobRun | None = None
    runner: str = ""  # how the job ran
    application: str = ""  # the Argo CD Application that deploys the commit (the target's)
    job_ended: float = 0.0
    gitops_commit: str = ""
    scratch_repo: str = ""
    scratch_base: str = ""
    checked_path: str = ""
    app_checkout: Path | None = None
    steps: dict[str, Any] = field(default_factory=dict)

    @property
    def short_sha(self) -> str:
        return self.app_commit[:8]


def attach_trace(argocd: ArgoCDClient, trace: Trace) -> dict[str, Any]:
    """The whole trace in the report: app-repo commit -> gitops-repo commit -> Argo CD revision -> ReplicaSet,
    each link checked against the next."""
    app = argocd.application(trace.application)
    entries = [
        h for h in app.get("status", {}).get("history") or [] if h.get("revision") == trace.gitops_commit
    ]
    assert entries, f"Argo CD's history of {trace.application} has no entry for {trace.gitops_commit[:8]}"
    gitops = trace.steps["gitops_commit"]
    rs = trace.steps["replicaset"]
    assert trace.job is not None, "no pipeline job ran in this scenario"
    assert rs["image"].endswith(f":{trace.short_sha}"), f"the ReplicaSet runs {rs['image']}"
    doc = {
        "app-repo commit": {"sha": trace.app_commit, "service": trace.service, "tag": trace.short_sha},
        "pipeline job": {
            "job": trace.job.job,
            "seconds": round(trace.job.seconds, 2),
            "runner": trace.runner,
        },
        "gitops-repo commit": {
            "sha": trace.gitops_commit,
            "parents": gitops["parents"],
            "author": gitops["author"],
            "message": gitops["message"],
            "files": gitops["files"],
        },
        "Argo CD": {
            "application": trace.application,
            "history id": entries[-1].get("id"),
            "revision": entries[-1].get("revision"),
            "deployedAt": entries[-1].get("deployedAt"),
            "initiatedBy": entries[-1].get("initiatedBy"),
        },
        "ReplicaSet": rs,
    }
    lines = [
        f"app-repo commit    {trace.app_commit}  ({trace.service} changed)",
        f"  -> {trace.job.job} job   {trace.job.seconds:.1f}s, {trace.runner}",
        f"gitops-repo commit {trace.gitops_commit}  {str(gitops['message']).splitlines()[0]}",
        f"  -> Argo CD {trace.application} history #{entries[-1].get('id')} "
        f"revision {entries[-1].get('revision')} "
        f"at {entries[-1].get('deployedAt')}",
        f"ReplicaSet         {rs['name']} (revision {rs['revision']}) image {rs['image']}, "
        f"{rs['ready']}/{rs['replicas']} ready",
    ]
    evidence.attach_text("trace: app commit -> gitops commit -> Argo CD -> ReplicaSet", "\n".join(lines))
    evidence.attach_json("trace.json", doc)
    evidence.attach_text("gitops-repo commit diff", str(gitops["diff"]))
    return doc
