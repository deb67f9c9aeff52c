"""Which images the lab serves: the stand-in under every Boutique image name and tag that gitops-repo's
overlays name and under the Online Boutique's own upstream names (so Google's release manifest deploys
unchanged through the nodes' registry mirror), the suite's probe image, and the pods' sandbox (pause)
image."""

from __future__ import annotations

from pathlib import Path

import yaml

from provisioning.lab import layout
from provisioning.lab.services import images, oci, registry

OVERLAYS = Path(__file__).resolve().parents[2] / "gitops" / "overlays"
PROBE_IMAGE = "registry.local/boutique/suite-probe:v1"  # boutique_suite.clients.kube.PROBE_IMAGE
# The Boutique's release images (../shared/reference/online-boutique.md: the public path serves up to
# v0.10.5).
UPSTREAM_REPOSITORY = "us-central1-docker.pkg.dev/google-samples/microservices-demo"
UPSTREAM_TAG = "v0.10.5"
NOT_UPSTREAM = ("redis-cart",)  # upstream's manifest runs redis:alpine from docker.io for it


def service_of(image: str) -> str:
    """The role the stand-in plays for ``registry.local/boutique/<service>[:tag]``."""
    name = image.rsplit("/", 1)[-1].split(":", 1)[0]
    return name if name in images.BOUTIQUE_SERVICES else "pause"


def overlay_images() -> list[str]:
    found = set()
    for kustomization in sorted(OVERLAYS.glob("*/kustomization.yaml")):
        for entry in yaml.safe_load(kustomization.read_text()).get("images", []):
            if entry["name"].startswith(f"{images.BOUTIQUE_REPOSITORY}/") and entry.get("newTag"):
                found.add(f"{entry['name']}:{entry['newTag']}")
    return sorted(found)


def upstream_images() -> list[str]:
    """The Online Boutique's own image names at the pinned release, one per service."""
    services = (s for s in images.BOUTIQUE_SERVICES if s not in NOT_UPSTREAM)
    return [f"{UPSTREAM_REPOSITORY}/{service}:{UPSTREAM_TAG}" for service in services]


def wanted() -> dict[str, str]:
    """Every image the lab must hold at start, mapped to the stand-in role it plays."""
    tags = {image: service_of(image) for image in (*overlay_images(), *upstream_images())}
    tags[PROBE_IMAGE] = "pause"
    tags[images.PAUSE_IMAGE] = "pause"
    return tags


def _split(image: str) -> tuple[str, str]:
    """``registry.local/boutique/frontend:abc`` -> (``boutique/frontend``, ``abc``); an upstream registry's
    name loses its host the same way (the mirror serves its repositories at the root)."""
    name, tag = image.rsplit(":", 1)
    host, _, path = name.partition("/")
    if host not in (registry.NAME, *registry.MIRRORED_UPSTREAMS):
        raise ValueError(f"{image}: the lab's registry serves neither {host} nor mirrors it")
    return path, tag


def push_all(mirror: registry.Registry, local: registry.Registry) -> list[str]:
    """Push the stand-in under every image the lab must hold (one shared layer, a config per role):
    registry.local's names to ``local``, the upstream names to ``mirror``."""
    layer = images.layer_tar(images.build_standin())
    layer_digest = oci.digest(layer)
    pushed = []
    for image, role in wanted().items():
        repo, tag = _split(image)
        reg = local if image.startswith(f"{registry.NAME}/") else mirror
        oci.push_image(reg, repo, tag, images.image_config(role, layer_digest), [layer])
        pushed.append(image)
    return pushed


def publish(image: str) -> None:
    """Make ``registry.local/boutique/<service>:<tag>`` pullable from registry.local: the stand-in of that
    service under a new tag (what the pipeline's build and push give on-prem)."""
    repo, tag = _split(image)
    source = next((_split(known) for known in wanted() if _split(known)[0] == repo), None)
    if source is None:
        raise ValueError(f"the lab's catalog has no image of {repo}")
    oci.tag_image(local(), repo, source[1], tag)


def running() -> registry.Registry:
    """The lab's mirror of the upstream registries (started with the real nodes)."""
    return registry.ensure(layout.NET.gateway, layout.SETTINGS["platform_ports"]["registry"])


def local() -> registry.Registry:
    """registry.local, the lab's GitLab registry (credentials needed), started with the real nodes."""
    return registry.ensure_local(layout.NET.gateway, layout.SETTINGS["platform_ports"]["registry_local"])
