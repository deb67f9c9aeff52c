"""The gitops-repo content (base, components, overlays, platform, bootstrap); its static checks in checks/."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent
