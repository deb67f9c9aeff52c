"""What a step touches, declared on its binding, and how a target provides each of those things.

A scenario's execution label is derived from these declarations and the target file's ``execution``
section (see ``evidence.Execution``); it is never assumed.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from types import ModuleType
from typing import TypeVar

F = TypeVar("F", bound=Callable[..., object])


class Touches(StrEnum):
    control_plane = "control_plane"
    """The Kubernetes API and its controllers (objects, admission, scheduling, ReplicaSets, HPA)."""
    node_runtime = "node_runtime"
    """What nodes do and report: kubelet, containers, CNI, storage provisioning, node facts."""
    data_plane = "data_plane"
    """Traffic reaching the application inside the cluster: pods, Services, load generation, real usage."""
    load_balancer = "load_balancer"
    """LoadBalancer addresses announced on the LAN by MetalLB's speaker (L2: ARP)."""
    ingress = "ingress"
    """Traffic from outside through the ingress controller (ingress-nginx) at the ingress VIP."""
    storage = "storage"
    """Volume provisioning: the default StorageClass and the provisioner behind it."""
    git = "git"
    ci = "ci"
    """Pipeline jobs of .gitlab-ci.yml run by a CI runner."""
    argocd = "argocd"
    monitoring = "monitoring"
    slack = "slack"
    registry = "registry"
    gitlab = "gitlab"
    hosts = "hosts"
    """The platform's machines over SSH (addresses, names, time, resources)."""
    hypervisor = "hypervisor"
    """The libvirt daemon Terraform's provider plans and creates the machines on."""
    file_only = "file_only"
    """Files of the repository only (static checks): the scenario is labelled ``static``."""


NOTHING: frozenset[Touches] = frozenset()


def touches(*what: Touches) -> Callable[[F], F]:
    """Declare what a step binding touches; put it under ``@given/@when/@then``. ``touches()`` with no
    argument is a precondition that checks nothing by itself."""

    def mark(func: F) -> F:
        func.__touches__ = frozenset(Touches(w) for w in what)  # type: ignore[attr-defined]
        return func

    return mark


def declared(func: Callable[..., object] | None) -> frozenset[Touches] | None:
    """The touches a binding declares; None when it declares nothing (unknown: never real)."""
    return getattr(func, "__touches__", None)


def understated(binding: Callable[..., object]) -> frozenset[Touches]:
    """What the domain functions a binding calls declare they touch and the binding does not: a binding
    that claims ``control_plane`` while reading a node fact (``node_runtime``) would be reported real."""
    names = getattr(binding, "__code__", None)
    if names is None:
        return NOTHING
    scope = binding.__globals__  # type: ignore[attr-defined]
    modules = [
        m for m in scope.values() if isinstance(m, ModuleType) and m.__name__.startswith("boutique_suite")
    ]
    called = set()
    for name in names.co_names:
        for candidate in (scope.get(name), *(getattr(m, name, None) for m in modules)):
            if (found := declared(candidate)) is not None and candidate is not binding:
                called |= found
    return frozenset(called - (declared(binding) or NOTHING))
