"""Which images the lab serves: the stand-in under every Boutique image name and tag that gitops-repo's
overlays name, the suite's probe image, and the pods' sandbox (pause) image."""

from __future__ import annotations

from pathlib import Path

import yaml

from provisioning.lab import images

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


def publish(image: str) -> None:
    """Make ``registry.local/boutique/<service>:<tag>`` pullable on the lab's nodes: the stand-in of that
    service under a new tag (what the pipeline's build and push give on-prem)."""
    from provisioning.lab import manager, nodes

    repository = image.rsplit(":", 1)[0]
    source = next((known for known in wanted() if known.rsplit(":", 1)[0] == repository), None)
    if source is None:
        raise ValueError(f"the lab's catalog has no image of {repository}")
    if manager.node_runtime() is not None and manager.node_runtime().kind == "real":
        nodes.tag_image(manager.NET, source, image)
