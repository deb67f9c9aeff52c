"""The catalogue of wrong changes a person might commit to gitops-repo or app-repo, each named with the
scenarios expected to catch it (``boutique_suite.actions.mutants`` runs them). A mutation is an edit of one
file of that repository's content; it must change something, or it is an error."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from boutique_suite.clients.gitops_repo import set_image_tag
from boutique_suite.expectations.cicd import IMAGE_PREFIX

# --- the wrong changes ------------------------------------------------------------------------------------


def edit_object(kind: str, name: str, change: Callable[[dict[str, Any]], None]) -> Callable[[str], str]:
    """An edit of a multi-document YAML file: ``change`` the object ``kind``/``name`` in place."""

    def edit(text: str) -> str:
        docs = list(yaml.safe_load_all(text))
        found = [d for d in docs if d and d.get("kind") == kind and d["metadata"]["name"] == name]
        if not found:
            raise MutationError(f"no {kind} {name} to mutate")
        for doc in found:
            change(doc)
        return yaml.safe_dump_all(docs, sort_keys=False)

    return edit


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    return deployment["spec"]["template"]["spec"]["containers"][0]


def _readiness_path(deployment: dict[str, Any]) -> None:
    _container(deployment)["readinessProbe"]["httpGet"]["path"] = "/healthz"  # the stand-in serves /_healthz


def _no_resources(deployment: dict[str, Any]) -> None:
    _container(deployment).pop("resources")


def _self_heal_off(application: dict[str, Any]) -> None:
    application["spec"]["syncPolicy"]["automated"]["selfHeal"] = False


def _max_one(hpa: dict[str, Any]) -> None:
    hpa["spec"]["maxReplicas"] = 1


def _selects_nothing(service: dict[str, Any]) -> None:
    service["spec"]["selector"] = {"app": "productcatalog"}  # a typo of the Deployment's label


def _no_pull_secret(component: dict[str, Any]) -> None:
    component.pop("patches")  # the patch that gives every ServiceAccount imagePullSecrets


def _deny_checkout_to_payment(policy: dict[str, Any]) -> None:
    policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]["app"] = "checkout"


def edit_document(change: Callable[[dict[str, Any]], None]) -> Callable[[str], str]:
    """An edit of a one-document YAML file (a kustomization)."""

    def edit(text: str) -> str:
        doc = yaml.safe_load(text)
        change(doc)
        return yaml.safe_dump(doc, sort_keys=False)

    return edit


def replace_all(old: str, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        if old not in text:
            raise MutationError(f"{old!r} is not in the file")
        return text.replace(old, new)

    return edit


GITOPS_REPO, APP_REPO = "gitops-repo", "app-repo"


class MutationError(Exception):
    """A mutation that cannot be applied to the content it was written for (the file moved or changed)."""


@dataclass(frozen=True)
class Mutation:
    name: str
    what: str  # the wrong change, as the commit message a person would write
    path: str  # the file of gitops-repo it changes
    edit: Callable[[str], str] = field(repr=False, compare=False)
    catchers: tuple[str, ...]  # parts of the names of the scenarios expected to fail (pytest -k)
    fast: bool = False  # in CI's subset: caught within a few minutes of the run's start
    lab_blind: str = ""  # why the lab cannot catch it today (it is still applied and reported)
    repo: str = GITOPS_REPO  # the repository whose content it changes: gitops-repo or app-repo

    def apply(self, content: Path) -> None:
        path = content / self.path
        before = path.read_text()
        after = self.edit(before)
        if after == before:
            raise MutationError(f"mutation {self.name} changes nothing in {self.path}")
        path.write_text(after)


SYNC_POLICY = "the_application_syncs_automatically_prunes_and_heals"
BUILD_AND_PUSH = "the_pipeline_builds_and_pushes_the_changed_services_image_to_the_registry"
SHIPS_BY_SHA = "a_commit_to_apprepo_ships_an_image_tagged_with_its_commit_sha"
HPAS = "hpas_guard_the_frontend_and_currencyservice"
CRASH_ALERT = "a_crashlooping_pod_raises_a_slack_alert"
JOURNEY = "a_short_headless_locust_run_covers_the_shopper_journey"
NETWORK_FLOWS = "the_networkpolicies_let_every_call_of_the_boutique_through_and_keep_the_others_out"

CATALOGUE: tuple[Mutation, ...] = (
    Mutation(
        "self-heal-off",
        "online-boutique-dev: switch self-heal off while debugging",
        "platform/apps/online-boutique-dev.yaml",
        edit_object("Application", "online-boutique-dev", _self_heal_off),
        (SYNC_POLICY,),
        fast=True,
    ),
    Mutation(
        "readiness-probe-wrong-path",
        "frontend: readiness probe on /healthz",
        "base/frontend.yaml",
        edit_object("Deployment", "frontend", _readiness_path),
        (SYNC_POLICY, "a_commit_to_gitopsrepo_reaches_the_cluster"),
        fast=True,
    ),
    Mutation(
        "hpa-max-1",
        "frontend HPA: cap it at one replica",
        "components/autoscaling/hpa.yaml",
        edit_object("HorizontalPodAutoscaler", "frontend", _max_one),
        (HPAS,),
        fast=True,
    ),
    Mutation(
        "service-selects-no-pods",
        "productcatalogservice: Service selector app=productcatalog",
        "base/productcatalogservice.yaml",
        edit_object("Service", "productcatalogservice", _selects_nothing),
        # Not the shopper journey: the frontend's gRPC connections made before the change keep their pod
        # (kube-proxy leaves established flows alone), so the journey still passes; running it only cost
        # its minute of load.
        ("all_online_boutique_services_are_deployed_and_available",),
        fast=True,
    ),
    Mutation(
        "requests-removed",
        "frontend: drop the resources block",
        "base/frontend.yaml",
        edit_object("Deployment", "frontend", _no_resources),
        (HPAS, "prometheus_scrapes_the_boutiques_replicas_and_resource_requests"),
    ),
    Mutation(
        "slack-channel-changed",
        "alertmanager: send to #boutique-alerts-old",
        "platform/values/kube-prometheus-stack-alertmanager.yaml",
        replace_all("channel: '#boutique-alerts'", "channel: '#boutique-alerts-old'"),
        (CRASH_ALERT,),
    ),
    Mutation(
        "alert-never-fires",
        "BoutiquePodCrashLooping: only after 1000 restarts",
        "platform/config/monitoring/boutique-alerts.yaml",
        replace_all("restarts_total[5m]) > 2)", "restarts_total[5m]) > 1000)"),
        (CRASH_ALERT,),
    ),
    Mutation(
        "pull-secret-dropped",
        "registry-pull: ServiceAccounts without the pull secret",
        "components/registry-pull/kustomization.yaml",
        edit_document(_no_pull_secret),
        ("serviceaccounts_pull_from_the_private_registry",),
    ),
    Mutation(
        "network-policy-denies-checkout-to-payment",
        "network policies: paymentservice only from app=checkout",
        "components/network-policies/network-policies.yaml",
        edit_object("NetworkPolicy", "allow-ingress-to-paymentservice", _deny_checkout_to_payment),
        # The journey fails only where a CNI enforces the policies (not the lab's nodes yet, issue #30);
        # the flow check reads the policies themselves on every target.
        (NETWORK_FLOWS, JOURNEY),
    ),
    Mutation(
        "images-tagged-by-branch",
        "ci: tag images with the branch name",
        ".gitlab-ci.yml",
        replace_all("IMAGE_TAG: $CI_COMMIT_SHORT_SHA", "IMAGE_TAG: $CI_COMMIT_REF_SLUG"),
        (BUILD_AND_PUSH, SHIPS_BY_SHA),
        repo=APP_REPO,
    ),
    Mutation(
        "push-without-credentials",
        "ci: push anonymously, the registry is on the LAN",
        "ci/push-images.sh",
        replace_all(
            'printf \'%s\' "$REGISTRY_PASSWORD" | crane auth login "$registry" -u "$REGISTRY_USER"'
            " --password-stdin\n",
            "",
        ),
        (BUILD_AND_PUSH,),
        repo=APP_REPO,
    ),
    Mutation(
        "wrong-image-tag",
        "frontend: image tag 0000000",
        "overlays/dev/kustomization.yaml",
        set_image_tag(f"{IMAGE_PREFIX}/frontend", "0000000"),
        (SYNC_POLICY,),
    ),
)
