"""Policy on a rendered overlay: images, resources, probes, pod security, PDBs, HPA targets, Services
that select pods, and references (ConfigMaps, Secrets, ServiceAccounts, Ingress backends) that resolve."""

from __future__ import annotations

import re
from collections.abc import Iterator

from provisioning.gitops.checks import Finding, finding

REGISTRY = "registry.local/"
NO_PROBES = "policy.boutique.local/no-probes"  # annotation on a workload: the reason it has no probes
SECRETISH = re.compile(r"PASSWORD|PASSWD|TOKEN|SECRET|API_?KEY|PRIVATE_?KEY|CREDENTIAL", re.I)


def _by_kind(objects: list[dict], kind: str) -> list[dict]:
    return [o for o in objects if o.get("kind") == kind]


def _names(objects: list[dict], kind: str) -> set[str]:
    return {o["metadata"]["name"] for o in _by_kind(objects, kind)}


def _pod(workload: dict) -> dict:
    return workload.get("spec", {}).get("template", {}).get("spec", {})


def _containers(pod: dict) -> Iterator[dict]:
    yield from pod.get("initContainers", [])
    yield from pod.get("containers", [])


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def images(objects: list[dict]) -> list[Finding]:
    out = []
    for d in _by_kind(objects, "Deployment"):
        for c in _containers(_pod(d)):
            image = c.get("image", "")
            _, _, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "")
            if "@sha256:" in image:
                continue
            if not tag:
                out.append(finding(d, "image-tag", f"container {c['name']} image {image!r} has no tag"))
            elif tag == "latest":
                out.append(finding(d, "image-tag", f"container {c['name']} image {image!r} uses 'latest'"))
            if not image.startswith(REGISTRY):
                out.append(
                    finding(d, "image-registry", f"container {c['name']} image {image!r} not from {REGISTRY}")
                )
    return out


def containers(objects: list[dict]) -> list[Finding]:
    out = []
    for d in _by_kind(objects, "Deployment"):
        pod = _pod(d)
        pod_sc = pod.get("securityContext", {})
        exempt = (d["metadata"].get("annotations") or {}).get(NO_PROBES)
        for c in _containers(pod):
            name, sc, res = c["name"], c.get("securityContext", {}), c.get("resources", {})
            for kind in ("requests", "limits"):
                missing = [r for r in ("cpu", "memory") if r not in res.get(kind, {})]
                if missing:
                    out.append(
                        finding(d, "resources", f"container {name} has no {kind} for {', '.join(missing)}")
                    )
            if not exempt:
                for probe in ("readinessProbe", "livenessProbe"):
                    if probe not in c:
                        out.append(finding(d, "probes", f"container {name} has no {probe}"))
            if not sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")):
                out.append(finding(d, "run-as-non-root", f"container {name} may run as root"))
            if sc.get("allowPrivilegeEscalation") is not False:
                out.append(
                    finding(d, "privilege-escalation", f"container {name} allows privilege escalation")
                )
            if sc.get("privileged"):
                out.append(finding(d, "privileged", f"container {name} is privileged"))
            if sc.get("readOnlyRootFilesystem") is not True:
                out.append(finding(d, "read-only-root", f"container {name} has a writable root filesystem"))
            for env in c.get("env", []):
                if "value" in env and SECRETISH.search(env["name"]):
                    out.append(
                        finding(d, "secret-literal", f"container {name} sets {env['name']} as a literal")
                    )
    return out


def sealed_only(objects: list[dict]) -> list[Finding]:
    out = [
        finding(s, "sealed-only", "plain Secret in gitops-repo: commit a SealedSecret")
        for s in _by_kind(objects, "Secret")
    ]
    for cm in _by_kind(objects, "ConfigMap"):
        for key in cm.get("data") or {}:
            if SECRETISH.search(key):
                out.append(
                    finding(cm, "secret-literal", f"key {key} looks like a credential: use a SealedSecret")
                )
    return out


def pdbs(objects: list[dict]) -> list[Finding]:
    selectors = [
        p["spec"].get("selector", {}).get("matchLabels", {}) for p in _by_kind(objects, "PodDisruptionBudget")
    ]
    out = []
    for d in _by_kind(objects, "Deployment"):
        labels = d["spec"]["template"]["metadata"].get("labels", {})
        if not any(_matches(s, labels) for s in selectors):
            out.append(finding(d, "pdb", "no PodDisruptionBudget selects its pods"))
    return out


def hpas(objects: list[dict]) -> list[Finding]:
    deployments = {d["metadata"]["name"]: d for d in _by_kind(objects, "Deployment")}
    out = []
    for h in _by_kind(objects, "HorizontalPodAutoscaler"):
        ref = h["spec"]["scaleTargetRef"]
        target = deployments.get(ref["name"]) if ref.get("kind") == "Deployment" else None
        if target is None:
            out.append(
                finding(
                    h, "hpa-target", f"targets {ref.get('kind')} {ref['name']}, which is not in the overlay"
                )
            )
            continue
        for c in _pod(target).get("containers", []):
            if "cpu" not in c.get("resources", {}).get("requests", {}):
                out.append(
                    finding(h, "hpa-target", f"container {c['name']} of {ref['name']} has no CPU request")
                )
    return out


def services(objects: list[dict]) -> list[Finding]:
    out = []
    templates = [d["spec"]["template"] for d in _by_kind(objects, "Deployment")]
    for s in _by_kind(objects, "Service"):
        selector = s["spec"].get("selector", {})
        pods = [t for t in templates if _matches(selector, t["metadata"].get("labels", {}))]
        if not pods:
            out.append(finding(s, "service-selects-pods", f"selector {selector} matches no pod template"))
            continue
        ports = {p.get("name") for t in pods for c in t["spec"]["containers"] for p in c.get("ports", [])}
        numbers = {
            p["containerPort"] for t in pods for c in t["spec"]["containers"] for p in c.get("ports", [])
        }
        for p in s["spec"].get("ports", []):
            target = p.get("targetPort", p["port"])
            if target not in numbers and target not in ports:
                out.append(finding(s, "service-selects-pods", f"targetPort {target} is no container port"))
    return out


def references(objects: list[dict]) -> list[Finding]:
    config_maps = _names(objects, "ConfigMap")
    sealed = {
        (s["spec"].get("template", {}).get("metadata", {}) or {}).get("name") or s["metadata"]["name"]
        for s in _by_kind(objects, "SealedSecret")
    }
    secrets = _names(objects, "Secret") | sealed
    accounts = _names(objects, "ServiceAccount") | {"default"}
    out = []

    def need(obj: dict, kind: str, name: str, have: set[str], optional: bool = False) -> None:
        if name not in have and not optional:
            out.append(
                finding(obj, "reference", f"refers to {kind} {name!r}, which the overlay does not have")
            )

    for d in _by_kind(objects, "Deployment"):
        pod = _pod(d)
        need(d, "ServiceAccount", pod.get("serviceAccountName", "default"), accounts)
        for ref in pod.get("imagePullSecrets", []):
            need(d, "Secret", ref["name"], secrets)
        for v in pod.get("volumes", []):
            if "configMap" in v:
                need(
                    d, "ConfigMap", v["configMap"]["name"], config_maps, v["configMap"].get("optional", False)
                )
            if "secret" in v:
                need(d, "Secret", v["secret"]["secretName"], secrets, v["secret"].get("optional", False))
        for c in _containers(pod):
            for src in c.get("envFrom", []):
                if "configMapRef" in src:
                    need(
                        d,
                        "ConfigMap",
                        src["configMapRef"]["name"],
                        config_maps,
                        src["configMapRef"].get("optional", False),
                    )
                if "secretRef" in src:
                    need(
                        d,
                        "Secret",
                        src["secretRef"]["name"],
                        secrets,
                        src["secretRef"].get("optional", False),
                    )
            for env in c.get("env", []):
                ref = env.get("valueFrom", {})
                if "configMapKeyRef" in ref:
                    need(
                        d,
                        "ConfigMap",
                        ref["configMapKeyRef"]["name"],
                        config_maps,
                        ref["configMapKeyRef"].get("optional", False),
                    )
                if "secretKeyRef" in ref:
                    need(
                        d,
                        "Secret",
                        ref["secretKeyRef"]["name"],
                        secrets,
                        ref["secretKeyRef"].get("optional", False),
                    )
    for sa in _by_kind(objects, "ServiceAccount"):
        for ref in sa.get("imagePullSecrets", []):
            need(sa, "Secret", ref["name"], secrets)
    service_names = _names(objects, "Service")
    for ing in _by_kind(objects, "Ingress"):
        for rule in ing["spec"].get("rules", []):
            for path in rule.get("http", {}).get("paths", []):
                need(ing, "Service", path["backend"]["service"]["name"], service_names)
    return out


RULES = (images, containers, sealed_only, hpas, services, references)


def check(objects: list[dict], require_pdb: bool = False) -> list[Finding]:
    """Every rule on one rendered overlay; ``require_pdb`` for prod."""
    rules = (*RULES, pdbs) if require_pdb else RULES
    return [f for rule in rules for f in rule(objects)]
