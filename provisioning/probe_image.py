"""The suite's probe image (``<registry>/boutique/suite-probe:v1``, the pods the suite starts for its checks
and faults): the stand-in binary in its ``pause`` role, built here (Go, cached with the lab's images) and
pushed on-prem by layer 1 when the registry does not list the tag yet. Never assumed to exist."""

from __future__ import annotations

from boutique_suite.clients import registry
from boutique_suite.clients.kube import PROBE_IMAGE
from boutique_suite.run.targets import Target
from provisioning.lab.services import images

REPOSITORY = PROBE_IMAGE.split("/", 1)[1].rsplit(":", 1)[0]  # boutique/suite-probe
TAG = PROBE_IMAGE.rsplit(":", 1)[1]


def build() -> registry.TestImage:
    layer = images.layer_tar(images.build_standin())
    return registry.image_of(layer, images.image_config("pause", registry.digest(layer)))


def ensure(client: registry.Registry) -> str | None:
    """Push the probe image unless the repository lists its tag; the digest pushed, or None."""
    return registry.ensure_image(client, TAG, build)


def ensure_on_target(target: Target) -> str | None:
    return ensure(registry.connect(target, f"{registry.access(target).host}/{REPOSITORY}"))
