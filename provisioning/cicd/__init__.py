"""The platform's CI/CD content: app-repo (each service's Dockerfile, the CI scripts, ``.gitlab-ci.yml``),
the CI tools image and the suite's own pipeline."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent
APP_REPO = ROOT / "app-repo"
# A copy of app-repo's content with one wrong change in it (boutique_suite.actions.mutants): what the lab
# publishes as app-repo for the run that must catch that change.
APP_SOURCE_ENV = "BOUTIQUE_APP_SOURCE"


def app_source() -> Path:
    """The app-repo content the lab publishes: app-repo/ here, or the mutant $BOUTIQUE_APP_SOURCE."""
    override = os.environ.get(APP_SOURCE_ENV)
    return Path(override) if override else APP_REPO
