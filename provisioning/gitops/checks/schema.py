"""Schema validation of rendered objects: built-in kinds against the Kubernetes OpenAPI bundled in
kubernetes-validate (strict: unknown fields are errors), custom resources against the CRDs of the
projects pinned in schemas.toml, read from their Go modules at test time and cached as JSON schemas."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

from provisioning.gitops.checks import Finding, finding
from provisioning.lab import recipes

PINS = Path(__file__).with_name("schemas.toml")
CACHE = recipes.CACHE_ROOT / "schemas"


def pins() -> dict[str, Any]:
    return tomllib.loads(PINS.read_text())


def module_dir(module: str, version: str) -> Path:
    """Download (only) the module through the Go module proxy and return its directory in the module cache."""
    env = {**os.environ, "GOFLAGS": "-mod=mod", "GOPROXY": recipes.go_proxy()}
    proc = subprocess.run(
        ["go", "mod", "download", "-json", f"{module}@{version}"],
        capture_output=True, text=True, timeout=600, env=env, cwd=CACHE.parent,
    )  # fmt: skip
    info = json.loads(proc.stdout or "{}")
    if proc.returncode != 0 or "Dir" not in info:
        raise RuntimeError(f"go mod download {module}@{version}: {info.get('Error') or proc.stderr.strip()}")
    return Path(info["Dir"])


def _strict(node: Any) -> Any:
    """OpenAPI v3 (structural CRD schema) → JSON schema that rejects unknown fields, like strict field
    validation does, and accepts null where the schema says nullable."""
    if isinstance(node, list):
        return [_strict(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _strict(v) for k, v in node.items() if not k.startswith("x-kubernetes-") or k == "properties"}
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    preserve = node.get("x-kubernetes-preserve-unknown-fields")
    if "properties" in node and "additionalProperties" not in node and not preserve:
        out["additionalProperties"] = False
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    return out


def _derive(name: str, spec: dict[str, Any]) -> Path:
    target = CACHE / f"{name}-{spec['version']}"
    stamp = target / "schemas.json"
    if stamp.is_file():
        return stamp
    root = module_dir(spec["module"], spec["version"])
    schemas: dict[str, Any] = {}
    for rel in spec["files"]:
        for crd in yaml.safe_load_all((root / rel).read_text()):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for ver in crd["spec"]["versions"]:
                if ver.get("served", True):
                    schemas[f"{group}/{ver['name']}/{kind}"] = _strict(ver["schema"]["openAPIV3Schema"])
    target.mkdir(parents=True, exist_ok=True)
    tmp = stamp.with_suffix(".tmp")
    tmp.write_text(json.dumps(schemas))
    tmp.replace(stamp)
    return stamp


@cache
def crd_schemas() -> dict[str, Any]:
    """``group/version/Kind`` → JSON schema, for every CRD pinned in schemas.toml."""
    out: dict[str, Any] = {}
    for name, spec in pins()["crds"].items():
        out.update(json.loads(_derive(name, spec).read_text()))
    return out


def _where(path: Any) -> str:
    return ".".join(str(p) for p in path) or "(root)"


def validate(obj: dict, kube_version: str | None = None) -> list[Finding]:
    version = kube_version or pins()["kubernetes"]
    api, kind = obj.get("apiVersion", ""), obj.get("kind", "")
    key = f"{api}/{kind}" if "/" in api else f"/{api}/{kind}"
    if key in crd_schemas():
        validator = jsonschema.Draft7Validator(crd_schemas()[key])
        body = copy.deepcopy(obj)
        return [
            finding(obj, "schema", f"{_where(e.absolute_path)}: {e.message}")
            for e in sorted(validator.iter_errors(body), key=lambda e: list(map(str, e.absolute_path)))
        ]
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        return [finding(obj, "schema", f"no schema for {api} {kind} (Kubernetes {version} or pinned CRDs)")]
    except kubernetes_validate.ValidationError as exc:
        return [finding(obj, "schema", f"{_where(exc.path)}: {exc.message}")]
    return []


def check(objects: list[dict], kube_version: str | None = None) -> list[Finding]:
    return [f for obj in objects for f in validate(obj, kube_version)]
