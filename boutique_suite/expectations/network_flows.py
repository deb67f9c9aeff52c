"""The Boutique's network flows as its NetworkPolicies decide them, read from the objects the overlay
builds (a static check: what the policies say, not what a CNI enforces). Kubernetes' own rules: a flow
passes when the source's egress allows it (or no Egress policy selects the source) and the destination's
ingress allows it (or no Ingress policy selects the destination); rules are ORed, peers match pods by
label in the policy's namespace or namespaces by label; ports match by number and protocol.

The flows the Boutique needs come from its services' addresses (shared/reference/online-boutique.md);
the refused ones are what the platform's plan keeps out."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from boutique_suite.reporting import evidence
from provisioning.gitops.checks import render


@dataclass(frozen=True)
class Pod:
    namespace: str
    labels: dict[str, str]
    name: str = ""

    @property
    def shown(self) -> str:
        return self.name or f"{self.labels.get('app', '?')} ({self.namespace})"


@dataclass(frozen=True)
class Flow:
    source: Pod
    destination: Pod
    port: int
    protocol: str = "TCP"

    @property
    def shown(self) -> str:
        return f"{self.source.shown} -> {self.destination.shown}:{self.port}"


def boutique_pod(app: str, namespace: str) -> Pod:
    return Pod(namespace, {"app": app}, app)


# (caller, callee, the callee's container port): every call the Online Boutique makes.
CALLS = (
    ("loadgenerator", "frontend", 8080),
    ("frontend", "productcatalogservice", 3550),
    ("frontend", "currencyservice", 7000),
    ("frontend", "cartservice", 7070),
    ("frontend", "recommendationservice", 8080),
    ("frontend", "shippingservice", 50051),
    ("frontend", "checkoutservice", 5050),
    ("frontend", "adservice", 9555),
    ("checkoutservice", "productcatalogservice", 3550),
    ("checkoutservice", "shippingservice", 50051),
    ("checkoutservice", "paymentservice", 50051),
    ("checkoutservice", "emailservice", 8080),
    ("checkoutservice", "currencyservice", 7000),
    ("checkoutservice", "cartservice", 7070),
    ("cartservice", "redis-cart", 6379),
    ("recommendationservice", "productcatalogservice", 3550),
)


def needed(namespace: str) -> list[Flow]:
    """Every call the Boutique makes, and every service's DNS lookups to the cluster's DNS."""
    dns = Pod("kube-system", {"k8s-app": "kube-dns"}, "kube-dns")
    callers = sorted({a for a, _, _ in CALLS} | {b for _, b, _ in CALLS})
    calls = [Flow(boutique_pod(a, namespace), boutique_pod(b, namespace), port) for a, b, port in CALLS]
    return calls + [Flow(boutique_pod(app, namespace), dns, 53, "UDP") for app in callers]


def forbidden(namespace: str) -> list[Flow]:
    """What the policies keep out: a pod of another namespace calling redis-cart, and the load generator
    calling a backend directly instead of through the storefront."""
    stranger = Pod("suite-scratch", {"app": "suite-probe"}, "a pod of another namespace")
    loadgen = boutique_pod("loadgenerator", namespace)
    return [
        Flow(stranger, boutique_pod("redis-cart", namespace), 6379),
        Flow(loadgen, boutique_pod("paymentservice", namespace), 50051),
        Flow(loadgen, boutique_pod("cartservice", namespace), 7070),
        Flow(loadgen, boutique_pod("productcatalogservice", namespace), 3550),
    ]


def _selects(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """A LabelSelector (matchLabels and matchExpressions); an empty selector selects everything."""
    selector = selector or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        present = key in labels
        if (
            (op == "In" and labels.get(key) not in values)
            or (op == "NotIn" and present and labels[key] in values)
            or (op == "Exists" and not present)
            or (op == "DoesNotExist" and present)
        ):
            return False
    return True


def _peer_matches(peer: dict[str, Any], policy_ns: str, pod: Pod) -> bool:
    if "ipBlock" in peer:
        return False  # pods are matched by selectors; an ipBlock is for addresses outside the cluster
    if "namespaceSelector" in peer:
        if not _selects(peer["namespaceSelector"], {"kubernetes.io/metadata.name": pod.namespace}):
            return False
    elif pod.namespace != policy_ns:
        return False
    return _selects(peer.get("podSelector"), pod.labels)


def _ports_match(ports: list[dict[str, Any]] | None, port: int, protocol: str) -> bool:
    if not ports:
        return True
    for p in ports:
        if p.get("protocol", "TCP") != protocol:
            continue
        if "port" not in p:
            return True
        if isinstance(p["port"], int) and p["port"] <= port <= p.get("endPort", p["port"]):
            return True
    return False


def _types(policy: dict[str, Any]) -> set[str]:
    spec = policy.get("spec") or {}
    if spec.get("policyTypes"):
        return set(spec["policyTypes"])
    return {"Ingress"} | ({"Egress"} if spec.get("egress") else set())


def _direction_allows(
    policies: Iterable[dict[str, Any]], subject: Pod, other: Pod, port: int, protocol: str, direction: str
) -> tuple[bool, list[str]]:
    """Whether ``subject``'s policies of ``direction`` ("Ingress"/"Egress") let ``other`` through: the policy
    whose rule allows it, or every policy that selects ``subject`` and none of whose rules does."""
    key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    selecting = [
        p
        for p in policies
        if p["metadata"].get("namespace", subject.namespace) == subject.namespace
        and direction in _types(p)
        and _selects(p["spec"].get("podSelector"), subject.labels)
    ]
    if not selecting:
        return True, []  # not isolated in this direction
    for policy in selecting:
        ns = policy["metadata"].get("namespace", subject.namespace)
        for rule in policy["spec"].get(key) or []:
            peers = rule.get(peers_key)
            if (not peers or any(_peer_matches(peer, ns, other) for peer in peers)) and _ports_match(
                rule.get("ports"), port, protocol
            ):
                return True, [policy["metadata"]["name"]]
    return False, [p["metadata"]["name"] for p in selecting]


@dataclass(frozen=True)
class Verdict:
    flow: Flow
    allowed: bool
    why: str


def decide(policies: list[dict[str, Any]], flow: Flow) -> Verdict:
    src, dst, port, proto = flow.source, flow.destination, flow.port, flow.protocol
    out, out_by = _direction_allows(policies, src, dst, port, proto, "Egress")
    into, in_by = _direction_allows(policies, dst, src, port, proto, "Ingress")
    if out and into:
        return Verdict(flow, True, "allowed by " + (", ".join(out_by + in_by) or "no policy"))
    refused = ([f"egress ({', '.join(out_by)})"] if not out else []) + (
        [f"ingress ({', '.join(in_by)})"] if not into else []
    )
    return Verdict(flow, False, "refused by " + " and ".join(refused))


def overlay_policies(overlay: str, namespace: str) -> list[dict[str, Any]]:
    """The NetworkPolicies ``overlay`` builds from the gitops content the target is given (the repository's,
    or a mutant's copy while the suite measures itself)."""
    from provisioning import gitops

    return network_policies(render.kustomize(overlay, gitops.source()), namespace)


def network_policies(objects: list[dict[str, Any]], namespace: str) -> list[dict[str, Any]]:
    """The overlay's NetworkPolicies, each in ``namespace`` unless it names its own."""
    return [
        {**o, "metadata": {"namespace": namespace, **o["metadata"]}}
        for o in objects
        if o.get("kind") == "NetworkPolicy"
    ]


def expect_flows(
    policies: list[dict[str, Any]], flows: list[Flow], allowed: bool, what: str
) -> list[Verdict]:
    """Each of ``flows`` is allowed (or refused) by ``policies``; the flow matrix goes to the report first."""
    assert policies, "the overlay has no NetworkPolicy"
    verdicts = [decide(policies, flow) for flow in flows]
    evidence.attach_text(f"flow matrix: {what}", matrix(verdicts, allowed))
    wrong = [f"{v.flow.shown}: {v.why}" for v in verdicts if v.allowed != allowed]
    state = "refused" if allowed else "allowed"
    assert not wrong, f"{len(wrong)} of the {what} {'are' if len(wrong) > 1 else 'is'} {state}: {wrong}"
    return verdicts


def matrix(verdicts: Iterable[Verdict], expected: bool) -> str:
    """The flows as a table: source, destination and port, expected, what the policies decide, and why."""
    rows = ["| source | destination:port | expected | policies | why |", "|---|---|---|---|---|"]
    for v in verdicts:
        want, got = ("allowed" if expected else "refused"), ("allowed" if v.allowed else "refused")
        mark = "" if want == got else " **(differs)**"
        where = f"{v.flow.destination.shown}:{v.flow.port}"
        rows.append(f"| {v.flow.source.shown} | {where} | {want} | {got}{mark} | {v.why} |")
    return "\n".join(rows)
