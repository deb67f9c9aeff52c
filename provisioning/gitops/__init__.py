"""The gitops-repo content (base, components, overlays, platform, bootstrap) and its static checks (checks/)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent
