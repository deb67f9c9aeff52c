"""The reverts a journal can name, and the replay of journals whose run died mid-fault.

A revert here is data (a kind and its arguments), so a process that did not inject the fault can
undo it. Each kind is the same call the injecting scenario pushes on its UndoStack.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

from boutique_suite.actions import faults, journal
from boutique_suite.clients.kube import Kube, delete_pod_if_present
from boutique_suite.run import runlabel
from boutique_suite.run.targets import Target

log = logging.getLogger(__name__)


@dataclass
class Platform:
    """What a revert may need, built only when a revert asks for it."""

    target: Target
    kube: Kube

    @cached_property
    def argocd(self):  # type: ignore[no-untyped-def]
        from boutique_suite.expectations import gitops_checks

        return gitops_checks.argocd_client(self.target)


REVERTS: dict[str, Callable[..., object]] = {}


def kind(name: str) -> Callable[[Callable[..., object]], Callable[..., object]]:
    def register(func: Callable[..., object]) -> Callable[..., object]:
        REVERTS[name] = func
        return func

    return register


@kind("uncordon")
def _uncordon(platform: Platform, node: str) -> None:
    faults.uncordon(platform.kube, node)


@kind("delete_namespace")
def _delete_namespace(platform: Platform, namespace: str) -> None:
    platform.kube.delete_namespace(namespace, wait=platform.target.timeouts.cleanup)


@kind("delete_service")
def _delete_service(platform: Platform, namespace: str, name: str) -> None:
    from boutique_suite.expectations import gateway

    gateway.delete_test_service(platform.kube, namespace, name)


@kind("delete_pod")
def _delete_pod(platform: Platform, namespace: str, name: str) -> None:
    delete_pod_if_present(platform.kube, namespace, name)


@kind("scale")
def _scale(platform: Platform, namespace: str, deployment: str, replicas: int) -> None:
    platform.kube.apps.patch_namespaced_deployment_scale(
        deployment, namespace, {"spec": {"replicas": replicas}}
    )


@kind("self_heal_on")
def _self_heal_on(platform: Platform, app: str) -> None:
    platform.argocd.set_self_heal(app, True)


@kind("auto_sync")
def _auto_sync(platform: Platform, app: str, automated: dict | None) -> None:
    platform.argocd.set_automated(app, automated)


@kind("restore_gitops")
def _restore_gitops(platform: Platform, app: str) -> None:
    from boutique_suite.expectations import cicd

    cicd.restore_gitops(platform.target, platform.argocd, app)


@kind("sync")
def _sync(platform: Platform, app: str) -> None:
    from boutique_suite.clients.argocd import wait_synced_and_healthy

    platform.argocd.sync(app)
    wait_synced_and_healthy(platform.argocd, app, platform.target.timeouts.rollout)


@kind("restore_app_repo")
def _restore_app_repo(platform: Platform) -> None:
    from boutique_suite.context.sites import site_for

    site_for(platform.target).pipelines().restore_app_repo("restore app-repo after an interrupted run")


@kind("delete_sealed_secret")
def _delete_sealed_secret(platform: Platform, namespace: str, name: str) -> None:
    from boutique_suite.actions import sealing

    sealing.delete(platform.kube, namespace, name)


@kind("start_argocd_controller")
def _start_argocd_controller(platform: Platform, replicas: int) -> None:
    from boutique_suite.actions import disruption

    disruption.start_controller(platform.target, platform.kube, replicas)


@dataclass
class Replay:
    undone: list[str]
    failed: list[str]


def replay_orphans(target: Target, kube: Kube) -> Replay:
    """Undo, newest first, every pending fault of runs whose Lease is gone. A revert that fails stays
    in its journal (the next run tries again) and is reported."""
    undone: list[str] = []
    failures: list[str] = []
    platform = Platform(target, kube)
    for run_id, entries in journal.orphaned(kube).items():
        left = 0
        for entry in reversed(entries):
            what = f"{entry.description} (left by run {run_id})"
            try:
                REVERTS[entry.kind](platform, **entry.args)
            except Exception as exc:
                left += 1
                failures.append(f"{what}: {exc}")
                log.error("replaying the journal of %s: %s failed: %s", run_id, entry.description, exc)
                continue
            journal.forget(kube, run_id, entry.key)
            undone.append(what)
            log.info("reverted from the journal: %s", what)
        if not left:
            journal.drop(kube, run_id)
    return Replay(undone, failures)


def clean_leftovers(kube: Kube, target: Target) -> list[str]:
    """Undo what runs whose Lease is gone left behind: the faults in their journals (replayed newest
    first), their cordons and their namespaces (with their pods). Runs still alive are not touched."""
    replay = replay_orphans(target, kube)
    if replay.failed:
        raise LeftoverFault("could not undo what an earlier run left: " + "; ".join(replay.failed))
    undone = list(replay.undone)
    alive = journal.live_runs(kube)
    for node in kube.nodes():
        by = (node.metadata.annotations or {}).get(runlabel.FAULT_BY)
        if by and by not in alive:
            faults.uncordon(kube, node.metadata.name)
            undone.append(f"node/{node.metadata.name} uncordoned (left by run {by})")
    undone += [f"namespace/{ns} deleted" for ns in kube.delete_leftovers(alive)]
    return undone


class LeftoverFault(Exception):
    """A fault an earlier run left could not be undone: the platform is not in its steady state."""


def main(argv: list[str] | None = None) -> int:
    """``./run revert``: replay the journals of runs whose Lease is gone, then sweep their leftovers."""
    import argparse

    from boutique_suite.clients.kube import ClusterUnreachable, connect_to
    from boutique_suite.run import targets

    parser = argparse.ArgumentParser(prog="./run revert", description=main.__doc__)
    parser.add_argument("--target", default="lab", help="target name in targets/ or a target file")
    args = parser.parse_args(argv)
    try:
        target = targets.load(args.target)
        kube = connect_to(target, runlabel.new_run_id())
        undone = clean_leftovers(kube, target)
    except (targets.TargetError, ClusterUnreachable, LeftoverFault) as exc:
        print(f"revert: {exc}", file=sys.stderr)
        return 1
    print("\n".join(undone) if undone else "nothing left by earlier runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
