"""The gitops-repo content passes every offline check (yamllint, kustomize builds, schemas, policy, Argo CD
wiring), and each check catches a defect planted in a temporary copy of the content."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from provisioning.gitops import ROOT
from provisioning.gitops.checks import Finding, argocd, lint, policy, render, report, schema

OVERLAYS = sorted(render.OVERLAYS)


@pytest.fixture
def content(tmp_path: Path) -> Path:
    """A private copy of the content to plant defects in."""
    copy = tmp_path / "gitops"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns("checks", "__pycache__", "*.py"))
    return copy


def edit(path: Path, change: Callable[[list[dict]], None]) -> None:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    change(docs)
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))


def doc(docs: list[dict], kind: str, name: str | None = None) -> dict:
    return next(d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name))


def overlay_policy(root: Path, overlay: str) -> list[Finding]:
    return policy.check(render.kustomize(f"overlays/{overlay}", root), require_pdb=overlay == "prod")


def only(findings: list[Finding], rule: str) -> list[str]:
    return [str(f) for f in findings if f.rule == rule]


# --- the real content passes -------------------------------------------------------------------------


def test_real_content_passes_yamllint() -> None:
    assert not lint.check(), report(lint.check())


def test_every_kustomization_builds() -> None:
    assert not render.check(), report(render.check())


@pytest.mark.parametrize("path", render.BUILDS)
def test_every_rendered_object_validates_against_its_schema(path: str) -> None:
    findings = schema.check(render.kustomize(path))
    assert not findings, report(findings)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_passes_policy(overlay: str) -> None:
    objects = render.kustomize(f"overlays/{overlay}")
    findings = overlay_policy(ROOT, overlay)
    assert not findings, report(findings)
    namespaced = [o for o in objects if o["kind"] != "Namespace"]
    assert {o["metadata"]["namespace"] for o in namespaced} == {render.OVERLAYS[overlay]}
    services = {"frontend", "cartservice", "productcatalogservice", "currencyservice", "paymentservice"}
    services |= {"shippingservice", "emailservice", "checkoutservice", "recommendationservice", "adservice"}
    services |= {"redis-cart"}
    assert services <= {o["metadata"]["name"] for o in objects if o["kind"] == "Deployment"}
    assert services <= {o["metadata"]["name"] for o in objects if o["kind"] == "Service"}


def test_app_of_apps_passes_argocd_rules() -> None:
    findings = argocd.check()
    assert not findings, report(findings)


def test_names_the_other_parts_rely_on() -> None:
    dev = render.kustomize("overlays/dev")
    hpas = {h["metadata"]["name"]: h["spec"] for h in dev if h["kind"] == "HorizontalPodAutoscaler"}
    assert (hpas["frontend"]["minReplicas"], hpas["frontend"]["maxReplicas"]) == (1, 5)
    assert (hpas["currencyservice"]["minReplicas"], hpas["currencyservice"]["maxReplicas"]) == (1, 4)
    assert {"productcatalogservice", "cartservice", "recommendationservice"} <= set(hpas)
    frontend = doc(dev, "Deployment", "frontend")
    assert frontend["spec"]["progressDeadlineSeconds"] == 120
    assert doc(dev, "Ingress", "frontend")["spec"]["ingressClassName"] == "nginx"
    assert doc(dev, "Ingress", "frontend")["spec"]["rules"][0]["host"] == "boutique.local"
    assert all(
        sa.get("imagePullSecrets") == [{"name": "registry-credentials"}]
        for sa in dev
        if sa["kind"] == "ServiceAccount"
    )
    platform = render.kustomize("platform")
    app = doc(platform, "Application", "online-boutique-dev")["spec"]
    assert app["source"]["path"] == "overlays/dev" and app["destination"]["namespace"] == "boutique-dev"
    assert doc(render.kustomize("platform/config/metallb"), "IPAddressPool", "boutique-pool")
    assert (
        doc(render.kustomize("platform/config/argocd"), "Ingress")["spec"]["rules"][0]["host"]
        == "argocd.local"
    )
    kustomization = yaml.safe_load((ROOT / "overlays/dev/kustomization.yaml").read_text())
    assert {"name": "registry.local/boutique/frontend", "newTag": "5f3c2a1b"} in kustomization["images"]


# --- each check catches a planted defect ------------------------------------------------------------


def test_yamllint_catches_a_duplicate_key(content: Path) -> None:
    path = content / "base/frontend.yaml"
    path.write_text(path.read_text().replace("  name: frontend\n", "  name: frontend\n  name: again\n", 1))
    findings = lint.check(content)
    assert any(f.rule == "yamllint/key-duplicates" and "base/frontend.yaml" in f.name for f in findings)


def test_build_catches_a_missing_resource(content: Path) -> None:
    (content / "overlays/prod/pdb.yaml").unlink()
    findings = render.check(content)
    assert [f.name for f in findings] == ["overlays/prod"] and findings[0].rule == "kustomize-build"


def test_schema_catches_an_unknown_field_in_a_builtin_kind(content: Path) -> None:
    edit(content / "base/cartservice.yaml", lambda d: doc(d, "Deployment")["spec"].update(replica=2))
    findings = schema.check(render.kustomize("overlays/dev", content))
    assert only(findings, "schema") == [
        "Deployment/boutique-dev/cartservice: [schema] spec: Additional properties are not allowed "
        "('replica' was unexpected)"
    ]


def test_schema_catches_a_bad_custom_resource(content: Path) -> None:
    edit(
        content / "platform/config/metallb/pool.yaml",
        lambda d: doc(d, "IPAddressPool")["spec"].pop("addresses"),
    )
    edit(
        content / "platform/apps/metallb.yaml",
        lambda d: d[0]["spec"]["syncPolicy"]["automated"].update(prune="yes"),
    )
    findings = [str(f) for f in schema.check(render.kustomize("platform/config/metallb", content))]
    assert (
        "IPAddressPool/metallb-system/boutique-pool: [schema] spec: 'addresses' is a required property"
        in findings
    )
    findings = [str(f) for f in schema.check(render.kustomize("platform", content))]
    assert (
        "Application/argocd/metallb: [schema] spec.syncPolicy.automated.prune: 'yes' is not of type 'boolean'"
        in findings
    )


def test_policy_catches_a_latest_image(content: Path) -> None:
    path = content / "overlays/prod/kustomization.yaml"
    path.write_text(path.read_text().replace("newTag: 5f3c2a1b", "newTag: latest", 1))
    findings = overlay_policy(content, "prod")
    assert only(findings, "image-tag") == [
        "Deployment/boutique-prod/frontend: [image-tag] container server image "
        "'registry.local/boutique/frontend:latest' uses 'latest'"
    ]


def test_policy_catches_an_untagged_image_from_elsewhere(content: Path) -> None:
    edit(
        content / "base/adservice.yaml",
        lambda d: doc(d, "Deployment")["spec"]["template"]["spec"]["containers"][0].update(
            image="docker.io/library/redis"
        ),
    )
    findings = overlay_policy(content, "dev")
    assert {f.rule for f in findings} == {"image-tag", "image-registry"}
    assert all(f.name == "adservice" for f in findings)


def test_policy_catches_a_missing_probe(content: Path) -> None:
    edit(
        content / "base/emailservice.yaml",
        lambda d: doc(d, "Deployment")["spec"]["template"]["spec"]["containers"][0].pop("readinessProbe"),
    )
    findings = overlay_policy(content, "dev")
    assert [str(f) for f in findings] == [
        "Deployment/boutique-dev/emailservice: [probes] container server has no readinessProbe"
    ]


def test_policy_catches_root_privilege_escalation_and_missing_limits(content: Path) -> None:
    def loosen(docs: list[dict]) -> None:
        pod = doc(docs, "Deployment")["spec"]["template"]["spec"]
        pod["securityContext"].pop("runAsNonRoot")
        pod["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
        pod["containers"][0]["resources"].pop("limits")

    edit(content / "base/paymentservice.yaml", loosen)
    rules = {f.rule for f in overlay_policy(content, "dev")}
    assert rules == {"run-as-non-root", "privilege-escalation", "resources"}


def test_policy_catches_a_dangling_configmap_reference(content: Path) -> None:
    edit(
        content / "base/checkoutservice.yaml",
        lambda d: doc(d, "ConfigMap").update(metadata={"name": "checkout-settings"}),
    )
    findings = overlay_policy(content, "dev")
    assert [str(f) for f in findings] == [
        "Deployment/boutique-dev/checkoutservice: [reference] refers to ConfigMap 'checkoutservice-config', "
        "which the overlay does not have"
    ]


def test_policy_catches_a_pull_secret_that_is_not_sealed(content: Path) -> None:
    (content / "overlays/dev/registry-credentials.sealedsecret.yaml").write_text(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: registry-credentials\n"
        "type: Opaque\nstringData:\n  password: x\n"
    )
    findings = overlay_policy(content, "dev")
    assert only(findings, "sealed-only") == [
        "Secret/boutique-dev/registry-credentials: [sealed-only] "
        "plain Secret in gitops-repo: commit a SealedSecret"
    ]


def test_policy_catches_a_missing_secret(content: Path) -> None:
    path = content / "overlays/dev/kustomization.yaml"
    path.write_text(path.read_text().replace("- registry-credentials.sealedsecret.yaml\n", ""))
    findings = overlay_policy(content, "dev")
    assert findings and {f.rule for f in findings} == {"reference"}
    assert (
        "ServiceAccount/boutique-dev/default: [reference] refers to Secret 'registry-credentials'"
        in report(findings)
    )


def test_policy_catches_an_hpa_on_a_missing_target(content: Path) -> None:
    edit(
        content / "components/autoscaling/hpa.yaml",
        lambda d: doc(d, "HorizontalPodAutoscaler", "cartservice")["spec"]["scaleTargetRef"].update(
            name="carts"
        ),
    )
    findings = overlay_policy(content, "prod")
    assert [str(f) for f in findings] == [
        "HorizontalPodAutoscaler/boutique-prod/cartservice: [hpa-target] "
        "targets Deployment carts, which is not in the overlay"
    ]


def test_policy_catches_a_service_selecting_no_pods(content: Path) -> None:
    edit(
        content / "base/shippingservice.yaml",
        lambda d: doc(d, "Service")["spec"].update(selector={"app": "shipping"}),
    )
    findings = overlay_policy(content, "dev")
    assert [str(f) for f in findings] == [
        "Service/boutique-dev/shippingservice: [service-selects-pods] "
        "selector {'app': 'shipping'} matches no pod template"
    ]


def test_policy_catches_a_prod_deployment_without_pdb(content: Path) -> None:
    edit(content / "overlays/prod/pdb.yaml", lambda d: d.remove(doc(d, "PodDisruptionBudget", "adservice")))
    findings = overlay_policy(content, "prod")
    assert [str(f) for f in findings] == [
        "Deployment/boutique-prod/adservice: [pdb] no PodDisruptionBudget selects its pods"
    ]


def test_argocd_rules_catch_an_unpinned_chart_and_a_fought_hpa(content: Path) -> None:
    edit(
        content / "platform/apps/loki.yaml", lambda d: d[0]["spec"]["sources"][0].update(targetRevision="6.*")
    )
    edit(
        content / "platform/apps/online-boutique-prod.yaml",
        lambda d: d[0]["spec"]["ignoreDifferences"].pop(1),
    )
    edit(
        content / "platform/apps/ingress-nginx.yaml",
        lambda d: d[0]["spec"]["syncPolicy"]["automated"].pop("selfHeal"),
    )
    assert sorted(str(f) for f in argocd.check(content)) == [
        "Application/argocd/ingress-nginx: [auto-sync] syncPolicy.automated needs prune and selfHeal",
        "Application/argocd/loki: [helm-pinned] chart loki is not pinned: '6.*'",
        "Application/argocd/online-boutique-prod: [hpa-replicas-ignored] "
        "Deployment currencyservice has an HPA",
    ]


def test_argocd_rules_catch_a_kind_the_project_does_not_permit(content: Path) -> None:
    (content / "overlays/dev/quota.yaml").write_text(
        "apiVersion: v1\nkind: ResourceQuota\nmetadata:\n  name: q\nspec:\n  hard:\n    pods: '50'\n"
    )
    path = content / "overlays/dev/kustomization.yaml"
    path.write_text(path.read_text().replace("- ingress.yaml\n", "- ingress.yaml\n- quota.yaml\n"))
    assert [str(f) for f in argocd.check(content)] == [
        "Application/argocd/online-boutique-dev: [project] "
        "project boutique does not permit ResourceQuota (core)"
    ]


def test_an_environment_edit_renders_into_the_deployment_and_keeps_its_other_variables(
    tmp_path: Path,
) -> None:
    from boutique_suite.clients import gitops_repo

    root = tmp_path / "gitops"
    shutil.copytree(ROOT, root)
    kustomization = root / "overlays" / "dev" / "kustomization.yaml"
    before = {
        o["metadata"]["name"]: o for o in render.kustomize("overlays/dev", root) if o["kind"] == "Deployment"
    }
    kustomization.write_text(
        gitops_repo.set_env("productcatalogservice", "EXTRA_LATENCY", "600ms")(kustomization.read_text())
    )
    after = {
        o["metadata"]["name"]: o for o in render.kustomize("overlays/dev", root) if o["kind"] == "Deployment"
    }
    env = {
        e["name"]: e.get("value")
        for e in after["productcatalogservice"]["spec"]["template"]["spec"]["containers"][0].get("env", [])
    }
    old = {
        e["name"]: e.get("value")
        for e in before["productcatalogservice"]["spec"]["template"]["spec"]["containers"][0].get("env", [])
    }
    assert env == {**old, "EXTRA_LATENCY": "600ms"}
    assert {name: d for name, d in after.items() if name != "productcatalogservice"} == {
        name: d for name, d in before.items() if name != "productcatalogservice"
    }
