"""Known failures of this platform, recognised in what a failure says, written the way the platform's own
plan asks (troubleshooting, §11): cause → fix → prevention, with the command that confirms it.

A failed scenario's message, and a broken layer's cause and evidence, are matched against the signatures
below; the first that matches is attached to the report, written into ``reports/summary.json`` and named in
the nightly Slack summary. A signature is a set of regular expressions over the text the platform's own
components print (containerd's pull errors, kubectl's and the Kubernetes client's, Argo CD's conditions,
Go's TLS errors); each is tested on its planted fault and on the others' (tests/test_diagnosis.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Diagnosis:
    name: str
    seen: tuple[str, ...]  # regular expressions over the failure's text; any one matching is the signature
    cause: str
    confirm: str  # the command that confirms it
    fix: str
    prevention: str

    def matches(self, text: str) -> str | None:
        """The line of ``text`` that shows this failure, or None."""
        for pattern in self.seen:
            found = re.search(pattern, text, re.IGNORECASE | re.MULTILINE)
            if found:
                start = text.rfind("\n", 0, found.start()) + 1
                end = text.find("\n", found.end())
                return text[start : end if end >= 0 else len(text)].strip()[:300]
        return None

    def text(self, seen: str) -> str:
        return (
            f"Diagnosis: {self.name}\n"
            f"Seen: {seen}\n"
            f"Cause: {self.cause}\n"
            f"Confirm: {self.confirm}\n"
            f"Fix: {self.fix}\n"
            f"Prevention: {self.prevention}"
        )


KNOWN: tuple[Diagnosis, ...] = (
    Diagnosis(
        "registry refuses the login",
        (
            r"denied: access forbidden",
            r"pull access denied",
            r"unauthorized: (authentication required|HTTP Basic: Access denied)",
            r"failed to (fetch|authorize).{0,200}\b401 Unauthorized",
        ),
        "the registry refused the credentials: the pull secret (or the CI job's token) is missing, "
        "expired or for another project",
        "kubectl get sa -n <namespace> -o jsonpath='{.items[*].imagePullSecrets}'; kubectl get secret"
        " registry-credentials -n <namespace>; docker login <registry> with the deploy token",
        "reseal the registry-credentials SealedSecret with a valid deploy token (read_registry) and "
        "make sure every ServiceAccount lists it (components/registry-pull)",
        "a deploy token per cluster with an expiry alarm; the 'ServiceAccounts pull from the private "
        "registry' scenario in the nightly run",
    ),
    Diagnosis(
        "the node does not trust the registry's certificate",
        (
            r"x509: certificate signed by unknown authority",
            r"tls: failed to verify certificate: x509: certificate signed by unknown",
        ),
        "containerd on the node does not trust the platform CA that signed the registry's certificate",
        "on the node: ls /etc/containerd/certs.d/<registry>/; crictl pull <registry>/<image>:<tag>",
        "install the platform CA as /etc/containerd/certs.d/<registry>/ca.crt (hosts.toml names it) "
        "and restart containerd (the containerd role does both)",
        "the containerd role on every node (phase 2) and the 'nodes pull from the registry' check "
        "after adding a node",
    ),
    Diagnosis(
        "kubectl points at the wrong cluster or context",
        (
            r"The connection to the server localhost:8080 was refused",
            r"context \S+ does not exist",
            r"context was not found for specified context",
            r"Invalid kube-config file\. No configuration found",
            r"Expected object with name \S+ in \S+/contexts list",
        ),
        "the kubeconfig in use is not kubeadm's admin.conf, or its current context is another cluster's",
        "kubectl config get-contexts; kubectl config current-context; kubectl cluster-info",
        "copy /etc/kubernetes/admin.conf to ~/.kube/config (chown to the user) and select its "
        "context, or fix the target file's cluster.kubeconfig / cluster.context",
        "the target file names its kubeconfig and context explicitly; the suite never relies on the "
        "current context",
    ),
    Diagnosis(
        "Argo CD cannot authenticate to gitops-repo",
        (
            r"authentication required",
            r"Unable to (fetch|resolve|ls-remote).{0,200}(403|401|Authentication failed|permission denied)",
            r"repository not found",
            r"ssh: handshake failed",
        ),
        "Argo CD's repository credentials for gitops-repo are missing, wrong or expired (PAT / deploy key)",
        "argocd repo list; kubectl -n argocd get secret -l argocd.argoproj.io/secret-type=repository",
        "update the repository secret (read-only deploy token or deploy key) and refresh the Application",
        "a read-only deploy token per Argo CD with its expiry tracked; the 'Argo CD reads gitops-repo"
        " with its own credentials' scenario",
    ),
    Diagnosis(
        "the storefront is not reachable through Ingress / MetalLB",
        (
            r"external IP.{0,80}(pending|<pending>|not assigned|none)",
            r"no available IPs",
            r"storefront.{0,200}(Connection refused|timed out|No route to host)",
        ),
        "MetalLB assigned no address (pool exhausted or not announced), or ingress-nginx / the "
        "frontend does not answer behind it",
        "kubectl get svc -A | grep LoadBalancer; kubectl -n metallb-system logs -l app=metallb; "
        "arping <VIP> from the LAN; curl -H 'Host: boutique.local' http://<VIP>/",
        "give the IPAddressPool free addresses of the nodes' L2 segment with an L2Advertisement; "
        "check the speaker runs on the nodes; check the Ingress host and the frontend's endpoints",
        "keep the pool out of the DHCP range; the 'client on the LAN reaches the storefront' scenario"
        " nightly",
    ),
    Diagnosis(
        "clocks out of sync",
        (
            r"x509: certificate has expired or is not yet valid",
            r"certificate is not valid yet",
            r"clock skew",
        ),
        "a host's clock is off: certificates look expired or not yet valid, and log lines arrive out "
        "of order",
        "chronyc tracking; timedatectl; date -u on every node and the GitLab host",
        "run chrony against the same NTP source on every host (the foundation role) and restart what "
        "cached a certificate error",
        "the foundation role's chrony check (phase 0) in the nightly run",
    ),
)


def headline(text: str) -> str:
    """The diagnosis' name and fix, for a one-line summary (the nightly Slack message)."""
    lines = dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)
    return f"{lines.get('Diagnosis', '?')} → fix: {lines.get('Fix', '?')}"


def diagnose(texts: Iterable[str]) -> tuple[Diagnosis, str] | None:
    """The first known failure any of ``texts`` shows, with the line that shows it."""
    joined = "\n".join(texts)
    for known in KNOWN:
        seen = known.matches(joined)
        if seen:
            return known, seen
    return None
