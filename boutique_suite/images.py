"""Images the scenarios need to exist where the target's nodes pull from."""

from __future__ import annotations

from boutique_suite.targets import Target

LAB_PUBLISHED = "the image is the lab's stand-in under a new tag (no registry, no build from app-repo)"


def ensure_pullable(target: Target, image: str) -> None:
    """On the lab, the stand-in of that service is tagged ``image`` on every node; on-prem the image must
    already be in the registry (pushed by the pipeline), so nothing is done."""
    if target.is_lab:
        from provisioning.lab import catalog

        catalog.publish(image)
