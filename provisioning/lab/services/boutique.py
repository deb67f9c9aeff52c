"""The Online Boutique Applications in the lab: gitops-repo's own AppProject and Application manifests,
pointed at the lab's git server, applied to Argo CD; then Argo CD does the rest (sync, prune, self-heal).

What the lab cannot provide is said here and labelled in the report: no ingress-nginx runs, so the lab
publishes the Ingress address itself (what ingress-nginx's status updater does), on loopback.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import yaml

from provisioning.gitops import source as gitops_source
from provisioning.lab import kubectl, manager, processes
from provisioning.lab.services import gitrepos, gitserver, registry

UPSTREAM_REPO = "https://gitlab.local/boutique/gitops-repo.git"
LAB_INGRESS_ADDRESS = "127.0.0.1"
APPLICATIONS = {"online-boutique-dev": "boutique-dev"}
SIMULATED_INGRESS = "Ingress status is published by the lab (no ingress-nginx runs); address 127.0.0.1"
SEALED = processes.PLATFORM / "sealed"
SEALED_HEADER = "# Sealed for the lab's controller by provisioning/lab/services/boutique.py\n"
_TIMER = re.compile(
    r"^(?P<head>[\s-]*(?P<key>progressDeadlineSeconds|stabilizationWindowSeconds|periodSeconds):\s*)"
    r"(?P<value>\d+)(?P<tail>\s*)$"
)


def publish_gitops_content(
    git: gitserver.GitServer,
    edits: dict[str, Callable[[str], str]] | None = None,
    message: str = "gitops-repo content from provisioning/gitops",
) -> str:
    """gitops-repo holds provisioning/gitops without the checks, with the lab's resealed secrets where they
    exist, the lab's shorter timers (lab_timers), and ``edits`` ({path: text -> text}) applied. The same
    content makes no commit (idempotent). Returns the head commit."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "gitops-repo"
        shutil.copytree(gitops_source(), tree, ignore=shutil.ignore_patterns("checks", "*.py", "__pycache__"))
        for relative, text in cached_sealed_secrets().items():
            (tree / relative).write_text(text)
        for manifest in tree.rglob("*.yaml"):
            manifest.write_text(lab_timers(manifest.read_text()))
        for relative, edit in (edits or {}).items():
            path = tree / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(edit(path.read_text() if path.exists() else ""))
        return gitrepos.commit_tree(git, "gitops-repo", tree, message)


def lab_timers(text: str) -> str:
    """``text`` (a gitops-repo manifest) with the lab's shorter platform timers (settings.toml [gitops]):
    every progressDeadlineSeconds, and each HPA's scale-down stabilisation window and policy periods, at
    most the lab's. Line by line, so the file stays as written apart from those numbers."""
    cfg = manager.SETTINGS["gitops"]
    caps = {
        "progressDeadlineSeconds": int(cfg["progress_deadline_at_most"]),
        "stabilizationWindowSeconds": int(cfg["hpa_scale_down_stabilization_at_most"]),
        "periodSeconds": int(cfg["hpa_scale_down_period_at_most"]),
    }
    lines, scale_down = [], None  # the indent of the scaleDown: block the line is in, if any
    for line in text.splitlines(keepends=True):
        indent = len(line) - len(line.lstrip())
        if scale_down is not None and line.strip() and indent <= scale_down:
            scale_down = None
        if line.strip() == "scaleDown:":
            scale_down = indent
        found = _TIMER.match(line)
        if found and (found["key"] == "progressDeadlineSeconds" or scale_down is not None):
            value = min(int(found["value"]), caps[found["key"]])
            line = f"{found['head']}{value}{found['tail']}"
        lines.append(line)
    return "".join(lines)


def registry_dockerconfigjson() -> str:
    """Pull credentials for registry.local: the ones its htpasswd holds (made once per lab, 0600)."""
    username, password = registry.credentials()
    auth = base64.b64encode(f"{username}:{password}".encode()).decode()
    return json.dumps({"auths": {registry.NAME: {"auth": auth}}})


def _sealed_path(overlay: str, cert: bytes) -> Path:
    """Keyed by the controller's certificate and the credentials: a new key or new credentials reseal."""
    key = hashlib.sha256(cert + registry_dockerconfigjson().encode()).hexdigest()[:16]
    return SEALED / f"registry-credentials-{overlay}-{key}.yaml"


def cached_sealed_secrets() -> dict[str, str]:
    """Sealed secrets already made for the running controller's key ({path in gitops-repo: YAML})."""
    from provisioning.lab.services import sealedsecrets

    try:
        cert = sealedsecrets.cert_pem()
    except Exception:  # controller not running: publish what git has
        return {}
    found = {}
    for overlay in APPLICATIONS.values():
        env = overlay.removeprefix("boutique-")
        path = _sealed_path(env, cert)
        if path.exists():
            doc = _with_committed_metadata(yaml.safe_load(path.read_text()), env)
            relative = f"overlays/{env}/registry-credentials.sealedsecret.yaml"
            found[relative] = SEALED_HEADER + yaml.safe_dump(doc)
    return found


def _with_committed_metadata(doc: dict, env: str) -> dict:
    """The lab's ciphertext under the metadata gitops-repo commits (its annotations: the sync wave...)."""
    committed = yaml.safe_load(
        (gitops_source() / "overlays" / env / "registry-credentials.sealedsecret.yaml").read_text()
    ).get("metadata", {})
    sealed = doc.get("metadata", {})
    annotations = {**committed.get("annotations", {}), **sealed.get("annotations", {})}
    return {**doc, "metadata": {**committed, **sealed, "annotations": annotations}}


def reseal_registry_credentials() -> None:
    """Seal registry-credentials with the lab controller's certificate (once per key), for each overlay
    the lab deploys; gitops-repo's committed ciphertext is a placeholder for on-prem to reseal."""
    from provisioning.lab.services import sealedsecrets

    sealedsecrets.ensure()
    cert = sealedsecrets.cert_pem()
    for namespace in APPLICATIONS.values():
        env = namespace.removeprefix("boutique-")
        path = _sealed_path(env, cert)
        if path.exists():
            continue
        doc = sealedsecrets.seal(
            "registry-credentials",
            namespace,
            {".dockerconfigjson": registry_dockerconfigjson()},
            type="kubernetes.io/dockerconfigjson",
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(SEALED_HEADER + yaml.safe_dump(doc))


def _for_lab(doc: dict, repo_url: str) -> dict:
    text = json.dumps(doc).replace(UPSTREAM_REPO, repo_url)
    return json.loads(text)


def manifests(git: gitserver.GitServer) -> list[dict]:
    """The AppProject "boutique" and the Applications, as gitops-repo has them, with the URL Argo CD's pods
    reach the lab's git server at."""
    repo = git.repo_url("gitops-repo", manager.NET.gateway)
    content = gitops_source()
    projects = [d for d in yaml.safe_load_all((content / "platform" / "projects.yaml").read_text()) if d]
    docs = [_for_lab(d, repo) for d in projects if d["metadata"]["name"] == "boutique"]
    for app in APPLICATIONS:
        doc = yaml.safe_load((content / "platform" / "apps" / f"{app}.yaml").read_text())
        docs.append(_for_lab(doc, repo))
    return docs


def apply_applications(git: gitserver.GitServer) -> None:
    kubectl.apply_objects(manifests(git))


def publish_ingress_status(namespace: str) -> list[str]:
    """Set status.loadBalancer of every nginx-class Ingress in ``namespace``, as ingress-nginx would."""
    listing = json.loads(kubectl.run("get", "ingress", "-n", namespace, "-o", "json"))
    published = []
    for ing in listing.get("items", []):
        if ing["spec"].get("ingressClassName") != "nginx":
            continue
        if ing.get("status", {}).get("loadBalancer", {}).get("ingress"):
            continue
        patch = {"status": {"loadBalancer": {"ingress": [{"ip": LAB_INGRESS_ADDRESS}]}}}
        kubectl.run(
            "patch",
            "ingress",
            ing["metadata"]["name"],
            "-n",
            namespace,
            "--subresource=status",
            "--type=merge",
            "-p",
            json.dumps(patch),
        )
        published.append(ing["metadata"]["name"])
    return published
