"""Images the scenarios need to exist where the target's nodes pull from."""

from __future__ import annotations

from boutique_suite.context.sites import site_for
from boutique_suite.run.targets import Target


def ensure_pullable(target: Target, image: str) -> str | None:
    """``image`` made pullable the target's way: on the lab the stand-in of that service is tagged
    ``image`` in the lab's registry; on-prem the pipeline pushed it already, so nothing is done.
    Returns why the image is only simulated (None when it is the real one)."""
    return site_for(target).ensure_pullable(image)
