"""Which images the lab serves: the stand-in under every Boutique image name and tag that gitops-repo's
overlays name, the suite's probe image, and the pods' sandbox (pause) image."""

from __future__ import annotations

from pathlib import Path

import yaml

from provisioning.lab import images, registry

OVERLAYS = Path(__file__).resolve().parents[1] / "gitops" / "overlays"
PROBE_IMAGE = "registry.local/boutique/suite-probe:v1"  # boutique_suite.faults.PROBE_IMAGE


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


def wanted() -> dict[str, str]:
    """Every image the lab must hold at start, mapped to the stand-in role it plays."""
    tags = {image: service_of(image) for image in overlay_images()}
    tags[PROBE_IMAGE] = "pause"
    tags[images.PAUSE_IMAGE] = "pause"
    return tags


def _split(image: str) -> tuple[str, str]:
    """``registry.local/boutique/frontend:abc`` -> (``boutique/frontend``, ``abc``)."""
    name, tag = image.rsplit(":", 1)
    return name.removeprefix(f"{registry.NAME}/"), tag


def push_all(reg: registry.Registry) -> list[str]:
    """Push the stand-in under every image the lab must hold (one shared layer, a config per role)."""
    layer = images.layer_tar(images.build_standin())
    layer_digest = registry.digest(layer)
    pushed = []
    for image, role in wanted().items():
        repo, tag = _split(image)
        registry.push_image(reg, repo, tag, images.image_config(role, layer_digest), [layer])
        pushed.append(image)
    return pushed


def publish(image: str) -> None:
    """Make ``registry.local/boutique/<service>:<tag>`` pullable from the lab's registry: the stand-in of that
    service under a new tag (what the pipeline's build and push give on-prem)."""
    repo, tag = _split(image)
    source = next((_split(known) for known in wanted() if _split(known)[0] == repo), None)
    if source is None:
        raise ValueError(f"the lab's catalog has no image of {repo}")
    registry.tag_image(running(), repo, source[1], tag)


def running() -> registry.Registry:
    """The lab's registry (started with the real nodes)."""
    from provisioning.lab import manager

    return registry.ensure(manager.NET.gateway, manager.SETTINGS["platform_ports"]["registry"])
