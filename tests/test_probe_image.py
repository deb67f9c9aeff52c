"""The suite's probe image is built here and pushed by the on-prem registry client (token flow, TLS verified
with the CA) to a real registry: CNCF Distribution, the lab's build, started on 127.0.0.1 with its own
state. A second ensure pushes nothing. Marker ``standalone``: real processes, not the lab."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from ports import free_port

from boutique_suite.clients import registry as client_registry
from provisioning import probe_image
from provisioning.lab import processes
from provisioning.lab.services import registry

pytestmark = pytest.mark.standalone


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[client_registry.Registry]:
    base = tmp_path_factory.mktemp("probe-registry")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(processes, "PLATFORM", base / "platform")
        state = base / "registry"
        running = registry.ensure("127.0.0.1", free_port(), state=state, ca_dir=base / "pki")
        try:
            yield client_registry.Registry(
                f"127.0.0.1:{running.port}", probe_image.REPOSITORY, "", "", str(running.ca_file)
            )
        finally:
            registry.stop(state)


def test_the_probe_image_is_pushed_once(client: client_registry.Registry) -> None:
    pushed = probe_image.ensure(client)
    assert pushed is not None and probe_image.TAG in client.tags()
    assert probe_image.ensure(client) is None, "a second ensure pushed again"
    _, manifest = client.pull_manifest(probe_image.TAG)
    assert client_registry.digest(manifest) == pushed


def test_the_probe_image_runs_the_stand_in_in_its_pause_role(client: client_registry.Registry) -> None:
    probe_image.ensure(client)
    _, manifest = client.pull_manifest(probe_image.TAG)
    config_digest = json.loads(manifest)["config"]["digest"]
    answer = client._request("GET", f"/v2/{client.repository}/blobs/{config_digest}")
    config = json.loads(answer.content)
    assert config["config"]["Entrypoint"][0] == "/standin"
    assert "pause" in json.dumps(config["config"])
