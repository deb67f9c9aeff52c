"""The gitops-repo content (base, components, overlays, platform, bootstrap); its static checks in checks/."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent
# A copy of this content with one wrong change in it (boutique_suite.actions.mutants): what the lab
# publishes as gitops-repo and renders its monitoring config from, for the run that must catch that change.
SOURCE_ENV = "BOUTIQUE_GITOPS_SOURCE"


def source() -> Path:
    """The gitops-repo content the lab publishes: this directory, or the mutant $BOUTIQUE_GITOPS_SOURCE."""
    override = os.environ.get(SOURCE_ENV)
    return Path(override) if override else ROOT
