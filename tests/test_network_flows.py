"""The NetworkPolicy evaluator behind the flow matrix: Kubernetes' rules on planted policies, the dev
overlay's real policies, and the wrong commit of the mutation catalogue (checkout can no longer reach
payment) named by flow and policy."""

from __future__ import annotations

from pathlib import Path

import pytest

from boutique_suite.actions import mutants, mutations
from boutique_suite.expectations import network_flows as nf
from boutique_suite.reporting import evidence
from provisioning.gitops.checks import render

NS = "shop"


def policy(name: str, selector: dict, types: list[str] | None = None, **rules: list) -> dict:
    spec: dict = {"podSelector": selector, **rules}
    if types is not None:
        spec["policyTypes"] = types
    return {"kind": "NetworkPolicy", "metadata": {"name": name, "namespace": NS}, "spec": spec}


def flow(src: str, dst: str, port: int, src_ns: str = NS, protocol: str = "TCP") -> nf.Flow:
    return nf.Flow(nf.Pod(src_ns, {"app": src}), nf.Pod(NS, {"app": dst}), port, protocol)


@pytest.fixture(autouse=True)
def no_allure(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    attached: list[str] = []
    monkeypatch.setattr(evidence, "attach_text", lambda name, text: attached.append(text))
    return attached


def test_no_policy_allows_and_default_deny_refuses() -> None:
    assert nf.decide([], flow("a", "b", 80)).allowed
    deny = policy("deny", {}, ["Ingress", "Egress"])
    verdict = nf.decide([deny], flow("a", "b", 80))
    assert not verdict.allowed and verdict.why == "refused by egress (deny) and ingress (deny)"


def test_a_rule_allows_by_pod_label_port_and_protocol_only() -> None:
    ingress = [{"from": [{"podSelector": {"matchLabels": {"app": "a"}}}], "ports": [{"port": 80}]}]
    rules = [policy("deny", {}, ["Ingress"]), policy("to-b", {"matchLabels": {"app": "b"}}, ingress=ingress)]
    assert nf.decide(rules, flow("a", "b", 80)).why == "allowed by to-b"
    assert not nf.decide(rules, flow("c", "b", 80)).allowed
    assert not nf.decide(rules, flow("a", "b", 81)).allowed
    assert not nf.decide(rules, flow("a", "b", 80, protocol="UDP")).allowed
    assert not nf.decide(rules, flow("a", "b", 80, src_ns="elsewhere")).allowed  # podSelector: same namespace


def test_namespace_selectors_expressions_ranges_and_ip_blocks() -> None:
    peer = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "elsewhere"}},
        "podSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["a", "x"]}]},
    }
    ingress = [
        {"from": [peer, {"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"port": 8000, "endPort": 8100}]}
    ]
    rules = [policy("b", {"matchLabels": {"app": "b"}}, ingress=ingress)]
    assert nf.decide(rules, flow("a", "b", 8080, src_ns="elsewhere")).allowed
    assert not nf.decide(rules, flow("a", "b", 8080)).allowed  # not the selected namespace
    assert not nf.decide(rules, flow("z", "b", 8080, src_ns="elsewhere")).allowed  # not In [a, x]
    assert not nf.decide(rules, flow("a", "b", 8200, src_ns="elsewhere")).allowed  # past endPort
    exists = policy("e", {"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, ["Ingress"])
    assert nf.decide([exists], flow("a", "b", 80)).allowed  # b has no label tier: not selected


def test_a_policy_without_types_isolates_ingress_and_egress_only_when_it_has_egress_rules() -> None:
    ingress_only = policy("i", {"matchLabels": {"app": "a"}}, ingress=[])
    assert nf.decide([ingress_only], flow("a", "b", 80)).allowed  # a's egress stays open
    assert not nf.decide([ingress_only], flow("b", "a", 80)).allowed


def test_the_dev_overlays_policies_allow_every_call_and_refuse_the_others(no_allure: list[str]) -> None:
    policies = nf.network_policies(render.kustomize("overlays/dev"), "boutique-dev")
    nf.expect_flows(policies, nf.needed("boutique-dev"), True, "flows the Boutique needs")
    nf.expect_flows(policies, nf.forbidden("boutique-dev"), False, "flows the policies keep out")
    assert "| checkoutservice | paymentservice:50051 | allowed | allowed |" in no_allure[0]
    assert "| a pod of another namespace | redis-cart:6379 | refused | refused |" in no_allure[1]


def test_the_catalogues_wrong_policy_commit_is_caught_and_named(tmp_path: Path, no_allure: list[str]) -> None:
    wrong = next(m for m in mutations.CATALOGUE if m.name == "network-policy-denies-checkout-to-payment")
    assert mutations.NETWORK_FLOWS in wrong.catchers and not wrong.lab_blind
    content = mutants.mutated_content(wrong, tmp_path)
    policies = nf.network_policies(render.kustomize("overlays/dev", content), "boutique-dev")
    with pytest.raises(AssertionError) as caught:
        nf.expect_flows(policies, nf.needed("boutique-dev"), True, "flows the Boutique needs")
    assert "1 of the flows the Boutique needs is refused" in str(caught.value)
    assert (
        "checkoutservice -> paymentservice:50051: refused by ingress (allow-ingress-to-paymentservice"
        in str(caught.value)
    )
    assert "| checkoutservice | paymentservice:50051 | allowed | refused **(differs)** |" in no_allure[0]


def test_the_policies_are_read_from_the_mutants_copy_when_one_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = next(m for m in mutations.CATALOGUE if m.name == "network-policy-denies-checkout-to-payment")
    monkeypatch.setenv("BOUTIQUE_GITOPS_SOURCE", str(mutants.mutated_content(wrong, tmp_path)))
    policies = nf.overlay_policies("overlays/dev", "boutique-dev")
    checkout = nf.Flow(
        nf.boutique_pod("checkoutservice", "boutique-dev"),
        nf.boutique_pod("paymentservice", "boutique-dev"),
        50051,
    )
    assert not nf.decide(policies, checkout).allowed
