"""Where the running lab lives and how it is addressed: its settings, name, work directory, kubeconfig,
stamps and network. Constants only, so the modules that run the lab (manager, kubectl, catalog, nodes) all
read them from here without importing each other."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from provisioning.lab import recipes
from provisioning.lab.machines import hosts

HERE = Path(__file__).resolve().parent
SETTINGS = tomllib.loads((HERE / "settings.toml").read_text())
NAME: str = SETTINGS["cluster_name"]
KWOK_HOME = Path(os.environ.get("KWOK_WORKDIR", Path.home() / ".kwok"))
WORKDIR = KWOK_HOME / "clusters" / NAME
KUBECONFIG = WORKDIR / "kubeconfig.yaml"
CONTEXT = f"kwok-{NAME}"
STAMP = KWOK_HOME / f"{NAME}.ready.json"
CREATED_WITH = KWOK_HOME / f"{NAME}.config.sha256"  # digest of the config the running lab was created from
RENDERED_CONFIG = recipes.CACHE_ROOT / f"kwokctl-{NAME}.yaml"
RUNTIME_FILE = KWOK_HOME / f"{NAME}.nodes.json"  # which nodes the running lab has, and why
NET = hosts.network(SETTINGS)
