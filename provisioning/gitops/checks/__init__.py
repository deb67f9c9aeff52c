"""The layered static check of the gitops-repo content.

Each layer is a function that returns a list of :class:`Finding` (empty = passes): yamllint (lint),
kustomize builds (render), schemas (schema), policy (policy), Argo CD wiring (argocd), server-side dry-run
against the lab (dryrun) and capacity on the lab's workers (capacity).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Finding:
    """One broken rule on one object (or file)."""

    kind: str
    namespace: str
    name: str
    rule: str
    message: str

    def __str__(self) -> str:
        where = "/".join(p for p in (self.kind, self.namespace, self.name) if p)
        return f"{where}: [{self.rule}] {self.message}"


def finding(obj: dict, rule: str, message: str) -> Finding:
    meta = obj.get("metadata") or {}
    return Finding(obj.get("kind", "?"), meta.get("namespace", ""), meta.get("name", "?"), rule, message)


def report(findings: list[Finding]) -> str:
    return "\n".join(str(f) for f in findings)
