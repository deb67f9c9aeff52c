"""The registry client against an in-memory registry that speaks the distribution API's token flow."""

from __future__ import annotations

import json
from types import SimpleNamespace as NS

import pytest

from boutique_suite.clients import registry


class FakeRegistry:
    """Blobs and manifests in dicts; every request without the bearer token gets the challenge."""

    def __init__(self, corrupt: bool = False) -> None:
        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[str, bytes] = {}
        self.headers: dict[str, str] = {}
        self.verify: object = True
        self.corrupt = corrupt

    def request(
        self, method: str, url: str, data: bytes = b"", headers: dict | None = None, **_: object
    ) -> NS:
        if self.headers.get("Authorization") != "Bearer t0k":
            challenge = 'Bearer realm="https://gitlab.local/jwt/auth",service="container_registry"'
            return NS(status_code=401, headers={"WWW-Authenticate": challenge}, text="")
        path = url.split("registry.local", 1)[1]
        if "/blobs/uploads/" in path and method == "POST":
            return NS(
                status_code=202, headers={"Location": "/v2/boutique/suite-probe/blobs/uploads/u1?state=x"}
            )
        if "/blobs/uploads/" in path and method == "PUT":
            wanted = path.split("digest=")[1]
            assert registry.digest(data) == wanted
            self.blobs[wanted] = data
            return NS(status_code=201, headers={}, text="")
        if "/blobs/" in path:
            return NS(status_code=200 if path.rsplit("/", 1)[1] in self.blobs else 404, headers={})
        if "/manifests/" in path and method == "PUT":
            manifest = json.loads(data)
            assert all(layer["digest"] in self.blobs for layer in manifest["layers"])
            self.manifests[path.rsplit("/", 1)[1]] = data
            return NS(status_code=201, headers={"Docker-Content-Digest": registry.digest(data)}, text="")
        if "/manifests/" in path and method == "GET":
            body = self.manifests[path.rsplit("/", 1)[1]] + (b" " if self.corrupt else b"")
            return NS(status_code=200, headers={}, content=body)
        if path.endswith("/tags/list"):
            return NS(status_code=200, json=lambda: {"tags": sorted(self.manifests)})
        raise AssertionError(f"unexpected {method} {path}")


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> registry.Registry:
    logins = []

    def token(url: str, params: dict, auth: tuple, **_: object) -> NS:
        logins.append((url, params["scope"], auth[0]))
        return NS(status_code=200, json=lambda: {"token": "t0k"})

    monkeypatch.setattr(registry.requests, "get", token)
    found = registry.Registry("registry.local", "boutique/suite-probe", "suite", "secret-" + "x", None)
    found.session = FakeRegistry()  # type: ignore[assignment]
    found.logins = logins  # type: ignore[attr-defined]
    return found


def test_a_pushed_image_is_listed_and_pulls_back_with_its_digest(client: registry.Registry) -> None:
    image = registry.test_image("run-1")
    pushed = client.push(image, "run-1")
    assert pushed == image.digest == registry.test_image("run-1").digest
    registry.expect_tag_listed(client, "boutique/suite-probe", "run-1")
    registry.expect_pulls_back(client, "run-1", pushed)
    assert client.logins == [  # type: ignore[attr-defined]
        ("https://gitlab.local/jwt/auth", "repository:boutique/suite-probe:push,pull,delete", "suite")
    ]


def test_a_registry_serving_other_bytes_for_the_tag_fails(client: registry.Registry) -> None:
    pushed = client.push(registry.test_image("run-2"), "run-2")
    client.session.corrupt = True  # type: ignore[attr-defined]
    with pytest.raises(AssertionError, match="was pushed"):
        registry.expect_pulls_back(client, "run-2", pushed)


def test_a_tag_the_registry_does_not_list_fails(client: registry.Registry) -> None:
    with pytest.raises(AssertionError, match="not run-3"):
        registry.expect_tag_listed(client, "boutique/suite-probe", "run-3")
