"""The lab's OCI registry: CNCF Distribution (``registry``, built from the Go module proxy) serving
``registry.local/boutique/<svc>:<tag>`` over TLS to the lab's kubelets (containerd), the way on-prem nodes
pull from GitLab's registry.

- ``ensure(host, port)`` starts it (idempotent: a running one with the same config is returned as is) with
  storage under ``<state>/storage`` and a config file it writes; ``stop()`` ends it.
- Its certificate is signed by the lab's platform CA (the git server's, ``provisioning/lab/pki.py``) for
  DNS ``registry.local`` and the IP it listens on, so containerd can reach it by IP (no DNS in the lab).
- A small client over the registry HTTP API (push, tag, list, delete, exists), always verifying TLS with the
  platform CA.
- ``containerd_hosts_toml`` / ``write_certs_d``: containerd's ``certs.d/<host>/hosts.toml`` for
  registry.local and each mirrored upstream registry (``MIRRORED_UPSTREAMS``), resolving its images at the
  registry's IP and port only (no fallback to DNS) and trusting the CA.

    python -m provisioning.lab.registry up [--host H] [--port P] | down
"""

from __future__ import annotations

import argparse
import hashlib
import io
import ipaddress
import json
import os
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urljoin, urlsplit

import requests

from provisioning.lab import build, gitserver, locks, pki, processes

NAME = "registry.local"
# Upstream registries the lab's registry answers for, as an air-gapped site's mirror does: the nodes'
# containerd pulls ``registry.k8s.io/<repo>:<tag>`` from the lab's registry as ``<repo>:<tag>``.
MIRRORED_UPSTREAMS = (
    "registry.k8s.io",  # CoreDNS (kubeadm's addon)
    "quay.io",  # Argo CD
    "public.ecr.aws",  # redis (Argo CD's install.yaml)
    "us-central1-docker.pkg.dev",  # the Online Boutique's own images (the stand-in answers under them)
)
PROCESS = "registry"
STATE = processes.PLATFORM / "registry"
HOST = "127.0.0.1"
PORT = 28500
START_TIMEOUT = 30.0
HTTP_TIMEOUT = 30.0

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"  # uncompressed: containerd 1.6 pulls and unpacks it
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_TYPES = (OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST)


class RegistryError(Exception):
    """The registry cannot be started or answered unexpectedly; the message says what happened."""


@dataclass(frozen=True)
class Registry:
    host: str
    port: int
    ca_file: Path
    state: Path
    pid: int | None
    log: Path

    @property
    def url(self) -> str:
        """The mirror URL, by IP: what containerd's hosts.toml points at."""
        host = f"[{self.host}]" if ipaddress.ip_address(self.host).version == 6 else self.host
        return f"https://{host}:{self.port}"


# --- files under the state directory ---------------------------------------------------------------


def _config_file(state: Path) -> Path:
    return state / "config.yml"


def _storage(state: Path) -> Path:
    return state / "storage"


def _lock(state: Path) -> Path:
    return state / "registry.lock"


def config_yaml(host: str, port: int, storage: Path, cert: pki.ServerCert) -> str:
    """Distribution's configuration (JSON-quoted strings are valid YAML)."""
    q = json.dumps
    return "\n".join(
        [
            "# Written by provisioning/lab/registry.py: the lab's OCI registry.",
            "# No auth section: pulls are anonymous. The lab's imagePullSecrets (registry-credentials,",
            "# sealed) are checked elsewhere (provisioning/lab/boutique.py), not by this registry.",
            "version: 0.1",
            "log:",
            "  level: warn",
            "storage:",
            "  filesystem:",
            f"    rootdirectory: {q(str(storage))}",
            "  delete:",
            "    enabled: true",
            "http:",
            f"  addr: {q(f'{host}:{port}')}",
            "  tls:",
            f"    certificate: {q(str(cert.crt))}",
            f"    key: {q(str(cert.key))}",
            "  # No debug section: no debug/metrics listener on any other address.",
            "",
        ]
    )


def _write_if_changed(path: Path, text: str) -> None:
    if path.exists() and path.read_text() == text:
        return
    pki.write_private(path, text.encode(), mode=0o644)


# --- lifecycle --------------------------------------------------------------------------------------


def _binary() -> Path:
    return build.ensure_all(["distribution"])["distribution"] / "registry"


def _env() -> dict[str, str]:
    """A clean environment: no inherited REGISTRY_* override, no OpenTelemetry exporter dialling out."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "OTEL_TRACES_EXPORTER": "none"}


def answers(reg: Registry, timeout: float = 2.0) -> bool:
    """True when ``GET /v2/`` answers 200 over TLS verified with the platform CA."""
    try:
        return _request(reg, "GET", "/v2/", timeout=timeout).status_code == 200
    except requests.RequestException:
        return False


def ensure(host: str = HOST, port: int = PORT, state: Path = STATE, ca_dir: Path | None = None) -> Registry:
    """A running registry on ``host``:``port`` with its storage in ``state``; starts one only when needed.
    ``ca_dir`` holds the platform CA (default: the git server's, made when missing)."""
    ipaddress.ip_address(host)  # an address, not a name: containerd reaches it by IP
    ca = pki.ensure_ca(ca_dir or gitserver.pki_dir())
    with locks.exclusive(_lock(state)):
        cert = pki.ensure_server_cert(ca, state / "tls" / "registry", names=[NAME], ips=[host])
        _storage(state).mkdir(parents=True, exist_ok=True)
        _write_if_changed(_config_file(state), config_yaml(host, port, _storage(state), cert))
        reg = Registry(host, port, ca.crt, state, None, processes.log_path(PROCESS))
        argv = [str(_binary()), "serve", str(_config_file(state))]
        try:
            proc = processes.start(
                PROCESS,
                argv,
                _env(),
                port if host == "127.0.0.1" else None,
                wait=START_TIMEOUT,
                not_before=max(_config_file(state).stat().st_mtime, cert.crt.stat().st_mtime),
                ready=lambda: answers(reg),
            )
        except processes.ProcessError as exc:
            raise RegistryError(str(exc)) from None
        return Registry(host, port, ca.crt, state, proc.pid, proc.log)


def stop(state: Path = STATE) -> bool:
    """Stop the registry (its storage stays). True when one was running."""
    with locks.exclusive(_lock(state)):
        return processes.stop(PROCESS)


# --- client over the HTTP API -----------------------------------------------------------------------


def _request(reg: Registry, method: str, path_or_url: str, **kwargs: object) -> requests.Response:
    url = urljoin(reg.url, path_or_url)
    if urlsplit(url).netloc != urlsplit(reg.url).netloc:
        raise RegistryError(f"the registry sent us to another host: {url}")
    kwargs.setdefault("timeout", HTTP_TIMEOUT)
    verify = str(reg.ca_file)  # always the platform CA, never unverified
    return requests.request(method, url, verify=verify, allow_redirects=False, **kwargs)  # type: ignore[arg-type]


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
    resp = _expect(_request(reg, "HEAD", f"/v2/{repo}/blobs/{blob_digest}"), 200, 404)
    return resp.status_code == 200


def _upload(reg: Registry, repo: str, blob_digest: str, data: bytes | BinaryIO) -> str:
    """Upload a blob (bytes, or a file streamed) in one request (POST then a single PUT); its digest."""
    started = _expect(_request(reg, "POST", f"/v2/{repo}/blobs/uploads/"), 202)
    location = started.headers["Location"]
    headers = {"Content-Type": "application/octet-stream"}
    put = _request(reg, "PUT", location, params={"digest": blob_digest}, data=data, headers=headers)
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
    resp = _request(
        reg, "PUT", f"/v2/{repo}/manifests/{tag}", data=body, headers={"Content-Type": media_type}
    )
    return _expect(resp, 201).headers.get("Docker-Content-Digest", digest(body))


def get_manifest(reg: Registry, repo: str, reference: str) -> tuple[bytes, str]:
    """The manifest bytes of ``repo:reference`` (a tag or a digest) and its media type."""
    resp = _request(
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
        resp = _request(reg, "GET", next_page)
        if resp.status_code == 404:
            return []
        _expect(resp, 200)
        found += resp.json().get("tags") or []
        next_page = resp.links.get("next", {}).get("url")
    return sorted(found)


def has_manifest(reg: Registry, repo: str, tag: str) -> bool:
    headers = {"Accept": ", ".join(MANIFEST_TYPES)}
    resp = _expect(_request(reg, "HEAD", f"/v2/{repo}/manifests/{tag}", headers=headers), 200, 404)
    return resp.status_code == 200


def delete_tag(reg: Registry, repo: str, tag: str) -> bool:
    """Remove the tag (the manifest and blobs stay for other tags). True when it existed."""
    resp = _expect(_request(reg, "DELETE", f"/v2/{repo}/manifests/{tag}"), 202, 404)
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


# --- containerd -------------------------------------------------------------------------------------


def containerd_hosts_toml(mirror_url: str, ca: Path) -> str:
    """``certs.d/registry.local/hosts.toml``: containerd resolves and pulls ``registry.local/...`` at
    ``mirror_url`` (https://<ip>:<port>, no DNS), verifying its certificate with ``ca``.

    The mirror is both the ``[host]`` and the ``server``: with ``server = "https://registry.local"``
    containerd falls back to that name after a 404 from the mirror, and with no DNS for it a missing tag
    fails as "lookup registry.local: no such host" instead of "<ref>: not found" (the pull-failure scenario
    needs the latter). containerd 1.6 rejects a hosts.toml without a ``[host]`` table ("invalid `host`
    tree"), so the server alone is not enough either. The top-level ``ca`` is the server's trust."""
    parts = urlsplit(mirror_url)
    if parts.scheme != "https" or not parts.port:
        raise ValueError(f"mirror URL must be https://<ip>:<port>, got {mirror_url!r}")
    mirror = mirror_url.rstrip("/")
    trust = f'capabilities = ["pull", "resolve"]\nca = {json.dumps(str(ca))}\n'
    return f"server = {json.dumps(mirror)}\n{trust}\n[host.{json.dumps(mirror)}]\n" + "".join(
        f"  {line}\n" for line in trust.splitlines()
    )


def write_certs_d(certs_d_dir: Path, mirror_url: str, ca: Path) -> list[Path]:
    """Write ``<certs_d_dir>/<host>/hosts.toml`` for registry.local and every upstream registry the lab
    mirrors (only when its content changes); their paths, registry.local's first."""
    paths = [certs_d_dir / host / "hosts.toml" for host in (NAME, *MIRRORED_UPSTREAMS)]
    for path in paths:
        _write_if_changed(path, containerd_hosts_toml(mirror_url, ca))
    return paths


# --- command line -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m provisioning.lab.registry", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help=f"ensure the registry of {STATE}")
    up.add_argument("--host", default=HOST)
    up.add_argument("--port", type=int, default=PORT)
    sub.add_parser("down", help="stop the registry (storage is kept)")
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            reg = ensure(args.host, args.port)
            print(f"{reg.url} ca={reg.ca_file} pid={reg.pid} log={reg.log}")
        else:
            print("stopped" if stop() else "not running")
    except (RegistryError, build.BuildError) as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
