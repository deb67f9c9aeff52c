"""An OCI distribution client for the lab's registry (provisioning/lab/services/registry.py): blobs, manifests
and tags over the registry HTTP API (push, tag, list, delete, exists), and the images the lab pushes built in
memory (reproducible uncompressed tar layers, their OCI config)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import requests

from provisioning.lab.services.registry import NAME, Registry, RegistryError, request

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"  # uncompressed: containerd 1.6 pulls and unpacks it
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_TYPES = (OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST)


def _expect(resp: requests.Response, *codes: int) -> requests.Response:
    if resp.status_code not in codes:
        raise RegistryError(
            f"{resp.request.method} {resp.url}: HTTP {resp.status_code} (expected {codes}): {resp.text[:300]}"
        )
    return resp


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _descriptor(media_type: str, data: bytes) -> dict[str, object]:
    return {"mediaType": media_type, "digest": digest(data), "size": len(data)}


def has_blob(reg: Registry, repo: str, blob_digest: str) -> bool:
    resp = _expect(request(reg, "HEAD", f"/v2/{repo}/blobs/{blob_digest}"), 200, 404)
    return resp.status_code == 200


def _upload(reg: Registry, repo: str, blob_digest: str, data: bytes | BinaryIO) -> str:
    """Upload a blob (bytes, or a file streamed) in one request (POST then a single PUT); its digest."""
    started = _expect(request(reg, "POST", f"/v2/{repo}/blobs/uploads/"), 202)
    location = started.headers["Location"]
    headers = {"Content-Type": "application/octet-stream"}
    put = request(reg, "PUT", location, params={"digest": blob_digest}, data=data, headers=headers)
    _expect(put, 201)
    return blob_digest


def push_blob(reg: Registry, repo: str, data: bytes) -> str:
    """Upload ``data`` unless the registry has it; its digest."""
    blob_digest = digest(data)
    return blob_digest if has_blob(reg, repo, blob_digest) else _upload(reg, repo, blob_digest, data)


@dataclass(frozen=True)
class LayerFile:
    """An uncompressed tar layer on disk whose digest is already known: pushed without reading it when the
    registry has it."""

    path: Path
    digest: str

    def descriptor(self) -> dict[str, object]:
        return {"mediaType": OCI_LAYER, "digest": self.digest, "size": self.path.stat().st_size}


def push_layer_file(reg: Registry, repo: str, layer: LayerFile) -> str:
    if has_blob(reg, repo, layer.digest):  # the file is not even opened
        return layer.digest
    with layer.path.open("rb") as data:
        return _upload(reg, repo, layer.digest, data)


def _put_image(reg: Registry, repo: str, tag: str, config: bytes, layers: list[dict[str, object]]) -> str:
    push_blob(reg, repo, config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": _descriptor(OCI_CONFIG, config),
        "layers": layers,
    }
    return _put_manifest(reg, repo, tag, json.dumps(manifest).encode(), OCI_MANIFEST)


def push_image_files(reg: Registry, repo: str, tag: str, config: bytes, layers: list[LayerFile]) -> str:
    """push_image for layers on disk (see LayerFile); the manifest's digest."""
    for layer in layers:
        push_layer_file(reg, repo, layer)
    return _put_image(reg, repo, tag, config, [layer.descriptor() for layer in layers])


def push_image(reg: Registry, repo: str, tag: str, config: bytes, layers: list[bytes]) -> str:
    """Push an OCI image (config and uncompressed tar layers) as ``repo:tag``; the manifest's digest."""
    for layer in layers:
        push_blob(reg, repo, layer)
    return _put_image(reg, repo, tag, config, [_descriptor(OCI_LAYER, layer) for layer in layers])


def _put_manifest(reg: Registry, repo: str, tag: str, body: bytes, media_type: str) -> str:
    resp = request(reg, "PUT", f"/v2/{repo}/manifests/{tag}", data=body, headers={"Content-Type": media_type})
    return _expect(resp, 201).headers.get("Docker-Content-Digest", digest(body))


def get_manifest(reg: Registry, repo: str, reference: str) -> tuple[bytes, str]:
    """The manifest bytes of ``repo:reference`` (a tag or a digest) and its media type."""
    resp = request(
        reg, "GET", f"/v2/{repo}/manifests/{reference}", headers={"Accept": ", ".join(MANIFEST_TYPES)}
    )
    if resp.status_code == 404:
        raise RegistryError(f"{NAME}/{repo}:{reference}: not found")
    _expect(resp, 200)
    return resp.content, resp.headers.get("Content-Type", OCI_MANIFEST).split(";")[0]


def tag_image(reg: Registry, repo: str, src_tag: str, new_tag: str) -> str:
    """Give ``repo:src_tag``'s manifest the tag ``new_tag`` too (no blob is uploaded); its digest."""
    body, media_type = get_manifest(reg, repo, src_tag)
    return _put_manifest(reg, repo, new_tag, body, media_type)


def tags(reg: Registry, repo: str) -> list[str]:
    """The tags of ``repo``, sorted; an unknown repository has none."""
    found: list[str] = []
    next_page: str | None = f"/v2/{repo}/tags/list"
    while next_page:
        resp = request(reg, "GET", next_page)
        if resp.status_code == 404:
            return []
        _expect(resp, 200)
        found += resp.json().get("tags") or []
        next_page = resp.links.get("next", {}).get("url")
    return sorted(found)


def has_manifest(reg: Registry, repo: str, tag: str) -> bool:
    headers = {"Accept": ", ".join(MANIFEST_TYPES)}
    resp = _expect(request(reg, "HEAD", f"/v2/{repo}/manifests/{tag}", headers=headers), 200, 404)
    return resp.status_code == 200


def delete_tag(reg: Registry, repo: str, tag: str) -> bool:
    """Remove the tag (the manifest and blobs stay for other tags). True when it existed."""
    resp = _expect(request(reg, "DELETE", f"/v2/{repo}/manifests/{tag}"), 202, 404)
    return resp.status_code == 202


# --- image content helpers ---------------------------------------------------------------------------


def layer_tar(files: dict[str, bytes], mode: int = 0o755) -> bytes:
    """An uncompressed, reproducible layer tar holding ``files`` ({path in the image: content})."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, content in sorted(files.items()):
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode, info.mtime = len(content), mode, 0
            tar.addfile(info, io.BytesIO(content))
    return out.getvalue()


def image_config(
    layers: list[bytes] | list[str],
    entrypoint: list[str] | None = None,
    arch: str = "amd64",
    settings: dict[str, object] | None = None,
) -> bytes:
    """An OCI image config for uncompressed ``layers`` (their diff IDs are their digests; given as the
    layers' bytes or their digests); ``settings`` are the config's run settings (User, Env, WorkingDir, Cmd,
    Labels) beside the entrypoint."""
    diff_ids = [layer if isinstance(layer, str) else digest(layer) for layer in layers]
    doc = {
        "architecture": arch,
        "os": "linux",
        "config": ({"Entrypoint": entrypoint} if entrypoint else {}) | (settings or {}),
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    return json.dumps(doc, sort_keys=True).encode()


def push_binary_image(reg: Registry, repo: str, tag: str, binary: Path, entrypoint: str) -> str:
    """``binary`` as a one-layer image whose entrypoint is ``/<entrypoint>`` (a static Go program needs no
    more), pushed as ``repo:tag``; its manifest digest."""
    layer = layer_tar({entrypoint: binary.read_bytes()})
    return push_image(reg, repo, tag, image_config([layer], entrypoint=[f"/{entrypoint}"]), [layer])
