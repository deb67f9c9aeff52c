"""Phase 1 on-prem: the container registry stores and serves an image, spoken to through the OCI
distribution API (what docker, crane and containerd use), verified against the registry CA.

The test image is made here: one small layer and its config, pushed as an OCI manifest tagged with the run
id, and deleted afterwards.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin

import requests
from requests.adapters import HTTPAdapter

from boutique_suite.clients import tls
from boutique_suite.run.targets import RegistryAccess, Target
from boutique_suite.run.undo import UndoStack

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CHALLENGE = re.compile(r'(\w+)="([^"]*)"')


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class TestImage:
    layer: bytes
    config: bytes
    manifest: bytes

    @property
    def digest(self) -> str:
        return digest(self.manifest)


def test_image(run_id: str) -> TestImage:
    """A one-file image whose content names the run; the same run id gives the same digest."""
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as archive:
        data = f"boutique-suite registry probe {run_id}\n".encode()
        info = tarfile.TarInfo("probe.txt")
        info.size, info.mtime = len(data), 0
        archive.addfile(info, io.BytesIO(data))
    layer = gzip.compress(tar.getvalue(), mtime=0)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [digest(tar.getvalue())]},
        },
        sort_keys=True,
    ).encode()
    return image_of(layer, config, "application/vnd.oci.image.layer.v1.tar+gzip")


def image_of(
    layer: bytes, config: bytes, layer_type: str = "application/vnd.oci.image.layer.v1.tar"
) -> TestImage:
    """An OCI image of one layer (uncompressed by default, as the lab's stand-in is built)."""
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": digest(config),
            "size": len(config),
        },
        "layers": [{"mediaType": layer_type, "digest": digest(layer), "size": len(layer)}],
    }
    return TestImage(layer, config, json.dumps(manifest, sort_keys=True).encode())


class _Named(HTTPAdapter):
    """TLS to an address, verified (and SNI sent) for ``name``: the registry's name need not resolve here."""

    def __init__(self, name: str) -> None:
        self._name = name
        super().__init__()

    def init_poolmanager(self, *args: object, **kwargs: object) -> None:
        kwargs.update(server_hostname=self._name, assert_hostname=self._name)
        super().init_poolmanager(*args, **kwargs)  # type: ignore[arg-type]


class Registry:
    """A client of one registry host and repository with the token flow of the distribution spec."""

    def __init__(
        self,
        host: str,
        repository: str,
        user: str,
        password: str,
        ca_file: str | None,
        address: tuple[str, int] | None = None,
    ) -> None:
        self.base = f"https://{address[0]}:{address[1]}" if address else f"https://{host}"
        self.repository = repository
        self.session = requests.Session()
        if address:
            self.session.mount(f"{self.base}/", _Named(host))
        self.session.verify = os.path.expanduser(ca_file) if ca_file else True
        # Otherwise REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE in the environment override the target's CA.
        self.session.trust_env = False
        self._auth = (user, password)

    def _request(self, method: str, url: str, **kwargs: object) -> requests.Response:
        answer = self.session.request(method, urljoin(self.base, url), timeout=30, **kwargs)  # type: ignore[arg-type]
        if answer.status_code == 401 and "Authorization" not in self.session.headers:
            self._login(answer.headers.get("WWW-Authenticate", ""))
            answer = self.session.request(method, urljoin(self.base, url), timeout=30, **kwargs)  # type: ignore[arg-type]
        return answer

    def _login(self, challenge: str) -> None:
        scheme = challenge.split(" ", 1)[0].lower()
        if scheme == "basic":
            self.session.headers["Authorization"] = requests.auth._basic_auth_str(*self._auth)
            return
        params = dict(CHALLENGE.findall(challenge))
        assert scheme == "bearer" and "realm" in params, f"the registry asks for {challenge!r}"
        scope = f"repository:{self.repository}:push,pull,delete"
        answer = requests.get(
            params["realm"],
            params={"service": params.get("service", ""), "scope": scope},
            auth=self._auth,
            verify=self.session.verify,
            timeout=30,
        )
        assert answer.status_code == 200, (
            f"the registry's token service refused the login: HTTP {answer.status_code}"
        )
        body = answer.json()
        self.session.headers["Authorization"] = f"Bearer {body.get('token') or body['access_token']}"

    def push_blob(self, data: bytes) -> None:
        where = f"/v2/{self.repository}/blobs/{digest(data)}"
        if self._request("HEAD", where).status_code == 200:
            return
        started = self._request("POST", f"/v2/{self.repository}/blobs/uploads/")
        assert started.status_code == 202, (
            f"starting an upload: HTTP {started.status_code} {started.text[:200]}"
        )
        location = started.headers["Location"]
        separator = "&" if "?" in location else "?"
        done = self._request(
            "PUT",
            f"{location}{separator}digest={digest(data)}",
            data=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert done.status_code == 201, f"uploading {digest(data)}: HTTP {done.status_code} {done.text[:200]}"

    def push(self, image: TestImage, tag: str) -> str:
        for blob in (image.layer, image.config):
            self.push_blob(blob)
        answer = self._request(
            "PUT",
            f"/v2/{self.repository}/manifests/{tag}",
            data=image.manifest,
            headers={"Content-Type": MANIFEST},
        )
        assert answer.status_code == 201, (
            f"pushing the manifest: HTTP {answer.status_code} {answer.text[:200]}"
        )
        return answer.headers.get("Docker-Content-Digest", image.digest)

    def tags(self) -> list[str]:
        answer = self._request("GET", f"/v2/{self.repository}/tags/list")
        if answer.status_code == 404:
            return []  # NAME_UNKNOWN: nothing was pushed to the repository yet
        assert answer.status_code == 200, f"listing {self.repository}'s tags: HTTP {answer.status_code}"
        return answer.json().get("tags") or []

    def pull_manifest(self, tag: str) -> tuple[str, bytes]:
        answer = self._request("GET", f"/v2/{self.repository}/manifests/{tag}", headers={"Accept": MANIFEST})
        assert answer.status_code == 200, f"pulling {self.repository}:{tag}: HTTP {answer.status_code}"
        return answer.headers.get("Docker-Content-Digest", ""), answer.content

    def delete(self, manifest_digest: str) -> None:
        self._request("DELETE", f"/v2/{self.repository}/manifests/{manifest_digest}")


def access(target: Target) -> RegistryAccess:
    """The target's private registry (its registry section, else gitlab's registry fields)."""
    found = target.registry_access()
    assert found is not None, (
        f"target {target.name} names no private registry: add a registry section (host, username, "
        "password_env or password_file, ca_file), or gitlab.registry_user"
    )
    return found


def connect(target: Target, image: str) -> Registry:
    """The registry of ``image`` (host/repository) with the target's registry credentials and CA."""
    reg = access(target)
    host, _, repository = image.partition("/")
    assert host == reg.host, f"{image} is not in the target's registry {reg.host}"
    address = reg.dial if reg.address else None
    return Registry(host, repository, reg.username, reg.password(), reg.ca_file, address)


def _dial(reg: RegistryAccess, host: str) -> dict:
    """port and address to reach ``host`` (the registry's own, when ``host`` is the registry)."""
    if host != reg.host:
        return {"port": 443, "address": None}
    address, port = reg.dial
    return {"port": port, "address": address if reg.address else None}


def expect_certificate_from_ca(target: Target, host: str) -> None:
    """``host`` presents a certificate that chains to the registry CA the target file names."""
    reg = access(target)
    tls.expect_issued_by(host, reg.ca_file, **_dial(reg, host))


def expect_certificate_valid_for(target: Target, host: str, name: str, days: int) -> float:
    reg = access(target)
    return tls.expect_valid_for(host, reg.ca_file, name, days, **_dial(reg, host))


def expect_public_cas_refuse(target: Target, host: str) -> None:
    tls.expect_public_cas_refuse(host, **_dial(access(target), host))


def expect_tag_listed(registry: Registry, repository: str, tag: str) -> None:
    assert registry.repository == repository, (
        f"the test image went to {registry.repository}, not {repository}"
    )
    tags = registry.tags()
    assert tag in tags, f"{registry.repository} lists {sorted(tags)[:10]}, not {tag}"


def expect_pulls_back(registry: Registry, tag: str, pushed: str) -> None:
    header, body = registry.pull_manifest(tag)
    assert digest(body) == pushed, f"{registry.repository}:{tag} serves {digest(body)}, {pushed} was pushed"
    assert header in ("", pushed), f"the registry reports the digest {header}, {pushed} was pushed"


def ensure_image(client: Registry, tag: str, build: Callable[[], TestImage]) -> str | None:
    """Push ``build()`` as ``tag`` unless the repository already lists it; the digest pushed, or None when
    nothing was (a second run changes nothing)."""
    if tag in client.tags():
        return None
    return client.push(build(), tag)


def push_test_image(target: Target, image: str, tag: str, undo: UndoStack) -> dict:
    """Push the test image as ``image:tag`` (deleted by ``undo``); returns its client, tag and digest."""
    client = connect(target, image)
    pushed = client.push(test_image(tag), tag)
    undo.push(f"delete {image}:{tag}", lambda: client.delete(pushed))
    return {"client": client, "tag": tag, "digest": pushed}
