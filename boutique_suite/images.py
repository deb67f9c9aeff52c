"""Images the scenarios need to exist where the target's nodes pull from."""

from __future__ import annotations

from boutique_suite.targets import Target

LAB_PUSHED = (
    "the lab pushes its stand-in image under the commit's tag: the build and push jobs need a container "
    "engine"
)


def ensure_pullable(target: Target, image: str) -> None:
    """On the lab, the stand-in of that service is tagged ``image`` in the lab's registry; on-prem the image
    must already be in the registry (pushed by the pipeline), so nothing is done."""
    if target.is_lab:
        from provisioning.lab import catalog

        catalog.publish(image)
