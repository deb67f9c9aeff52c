"""The app-of-apps: every Application syncs automatically (prune, selfHeal, retry), Helm sources are pinned
to a chart version with values files that exist in the repo, git paths build, the HPAs' Deployments have
their replicas ignored, and each Application's project permits its destination and every kind it renders."""

from __future__ import annotations

import re
from pathlib import Path

from provisioning.gitops import ROOT
from provisioning.gitops.checks import Finding, finding
from provisioning.gitops.checks.render import BuildFailed, kustomize

SEMVER = re.compile(r"^v?\d+\.\d+\.\d+$")


def _sources(app: dict) -> list[dict]:
    spec = app["spec"]
    return spec.get("sources") or ([spec["source"]] if "source" in spec else [])


def _sync(app: dict) -> list[Finding]:
    policy = app["spec"].get("syncPolicy") or {}
    auto = policy.get("automated") or {}
    out = []
    if not (auto.get("prune") and auto.get("selfHeal")):
        out.append(finding(app, "auto-sync", "syncPolicy.automated needs prune and selfHeal"))
    if not policy.get("retry"):
        out.append(finding(app, "auto-sync", "syncPolicy.retry is missing"))
    return out


def _source(app: dict, src: dict, root: Path) -> tuple[list[Finding], list[dict]]:
    if "chart" in src:
        out = []
        if not SEMVER.match(str(src.get("targetRevision", ""))):
            out.append(
                finding(
                    app, "helm-pinned", f"chart {src['chart']} is not pinned: {src.get('targetRevision')!r}"
                )
            )
        for vf in src.get("helm", {}).get("valueFiles", []):
            if not (vf.startswith("$values/") and (root / vf.removeprefix("$values/")).is_file()):
                out.append(finding(app, "helm-pinned", f"values file {vf} is not in the repo"))
        return out, []
    if "path" not in src:
        return [], []
    try:
        return [], kustomize(src["path"], root)
    except BuildFailed as exc:
        return [finding(app, "app-path", f"path {src['path']} does not build: {exc}")], []


def _ignored_replicas(app: dict, objects: list[dict]) -> list[Finding]:
    ignored = {
        d.get("name")
        for d in app["spec"].get("ignoreDifferences", [])
        if d.get("kind") == "Deployment" and "/spec/replicas" in d.get("jsonPointers", [])
    }
    return [
        finding(app, "hpa-replicas-ignored", f"Deployment {h['spec']['scaleTargetRef']['name']} has an HPA")
        for h in objects
        if h.get("kind") == "HorizontalPodAutoscaler" and h["spec"]["scaleTargetRef"]["name"] not in ignored
    ]


def _permitted(app: dict, project: dict | None, objects: list[dict]) -> list[Finding]:
    if project is None:
        return [finding(app, "project", f"project {app['spec']['project']!r} is not defined in the repo")]
    spec = project["spec"]
    dest = app["spec"]["destination"].get("namespace")
    out = []
    if not any(d.get("namespace") in (dest, "*") for d in spec.get("destinations", [])):
        out.append(
            finding(app, "project", f"project {project['metadata']['name']} does not allow namespace {dest}")
        )
    cluster = {(g.get("group", ""), g["kind"]) for g in spec.get("clusterResourceWhitelist", [])}
    namespaced = spec.get("namespaceResourceWhitelist")
    allowed_ns = None if namespaced is None else {(g.get("group", ""), g["kind"]) for g in namespaced}
    for obj in objects:
        key = (obj["apiVersion"].rpartition("/")[0], obj["kind"])
        cluster_scoped = obj["kind"] in (
            "Namespace",
            "ClusterRole",
            "ClusterRoleBinding",
            "CustomResourceDefinition",
        )
        allowed = cluster if cluster_scoped else allowed_ns
        if allowed is not None and key not in allowed:
            out.append(
                finding(
                    app,
                    "project",
                    f"project {project['metadata']['name']} does not permit {key[1]} ({key[0] or 'core'})",
                )
            )
    return out


def check(root: Path = ROOT, app_of_apps: str = "platform") -> list[Finding]:
    objects = kustomize(app_of_apps, root)
    projects = {p["metadata"]["name"]: p for p in objects if p["kind"] == "AppProject"}
    out: list[Finding] = []
    for app in (o for o in objects if o["kind"] == "Application"):
        out += _sync(app)
        rendered: list[dict] = []
        for src in _sources(app):
            found, objs = _source(app, src, root)
            out += found
            rendered += objs
        out += _ignored_replicas(app, rendered)
        out += _permitted(app, projects.get(app["spec"]["project"]), rendered)
    return out
