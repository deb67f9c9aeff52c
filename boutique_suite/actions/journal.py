"""A revert journal that outlives the process, and the lease that says whether its run is alive.

Every fault is written to the target before it is injected: a ConfigMap ``journal-<run>`` in the
``boutique-suite`` namespace, one key per fault (what it was, the kind of revert and its arguments).
Beside it the run holds a Lease ``run-<run>`` that a thread renews. A run killed with SIGKILL leaves
both; the next run sees the Lease expired (or its holder's process gone, on the same host) and
replays the journal (``reverts.replay_orphans``). Objects of runs whose Lease is alive are never
touched, so runs that share a platform leave each other alone.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubernetes import client

from boutique_suite.clients.kube import Kube
from boutique_suite.run import runlabel, waits

log = logging.getLogger(__name__)

NAMESPACE = "boutique-suite"
PART_OF = {"app.kubernetes.io/part-of": runlabel.SUITE}
LEASE_SECONDS = 60
RENEW_SECONDS = 10


@dataclass(frozen=True)
class Entry:
    key: str
    description: str
    kind: str
    args: dict[str, Any]


def object_name(prefix: str, run_id: str) -> str:
    return f"{prefix}-{re.sub(r'[^a-z0-9-]', '-', run_id.lower())}"[:63].rstrip("-")


def holder_identity(pid: int | None = None) -> str:
    """host/pid/start time of the process: a pid reused by another process does not look alive."""
    pid = pid or os.getpid()
    return f"{socket.gethostname()}/{pid}/{_start_time(pid)}"


def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def lease_alive(lease: client.V1Lease, now: datetime | None = None) -> bool:
    """A holder on this host is alive exactly while its process runs; elsewhere the Lease must have
    been renewed within its duration."""
    spec = lease.spec
    host, _, rest = (spec.holder_identity or "").partition("/")
    if host == socket.gethostname() and rest:
        pid, _, started = rest.partition("/")
        return pid.isdigit() and str(_start_time(int(pid))) == started
    renewed = spec.renew_time or spec.acquire_time
    if renewed is None:
        return False
    now = now or datetime.now(UTC)
    return (now - renewed).total_seconds() < (spec.lease_duration_seconds or LEASE_SECONDS)


def coordination(kube: Kube) -> client.CoordinationV1Api:
    return client.CoordinationV1Api(kube.api)


def live_runs(kube: Kube) -> set[str]:
    """Run ids whose Lease is alive (this run's own included)."""
    leases = coordination(kube).list_namespaced_lease(NAMESPACE, label_selector=runlabel.RUN_ID).items
    alive = {lease.metadata.labels[runlabel.RUN_ID] for lease in leases if lease_alive(lease)}
    return alive | {kube.run_id}


def ensure_namespace(kube: Kube) -> None:
    """The suite's own namespace: no run-id label, so no run's sweep ever deletes it."""
    try:
        kube.core.create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE, labels=PART_OF))
        )
    except client.ApiException as exc:
        if exc.status != 409:
            raise


@dataclass
class Journal:
    kube: Kube
    lease_seconds: int = LEASE_SECONDS
    _count: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _renewer: threading.Thread | None = None

    @property
    def run_id(self) -> str:
        return self.kube.run_id

    @property
    def name(self) -> str:
        return object_name("journal", self.run_id)

    @property
    def lease_name(self) -> str:
        return object_name("run", self.run_id)

    def open(self) -> Journal:
        ensure_namespace(self.kube)
        labels = {**PART_OF, runlabel.RUN_ID: self.run_id}
        now = datetime.now(UTC)
        lease = client.V1Lease(
            metadata=client.V1ObjectMeta(name=self.lease_name, labels=labels),
            spec=client.V1LeaseSpec(
                holder_identity=holder_identity(),
                lease_duration_seconds=self.lease_seconds,
                acquire_time=now,
                renew_time=now,
            ),
        )
        _create_or_replace(
            lambda: coordination(self.kube).create_namespaced_lease(NAMESPACE, lease),
            lambda: coordination(self.kube).replace_namespaced_lease(self.lease_name, NAMESPACE, lease),
        )
        cm = client.V1ConfigMap(metadata=client.V1ObjectMeta(name=self.name, labels=labels), data={})
        _create_or_replace(
            lambda: self.kube.core.create_namespaced_config_map(NAMESPACE, cm),
            lambda: None,  # a journal of this run id already exists: keep its entries
        )
        self._renewer = threading.Thread(target=self._renew, name="journal-lease", daemon=True)
        self._renewer.start()
        return self

    def _renew(self) -> None:
        while not self._stop.wait(min(RENEW_SECONDS, self.lease_seconds / 3)):
            try:
                coordination(self.kube).patch_namespaced_lease(
                    self.lease_name, NAMESPACE, {"spec": {"renewTime": _micro_time(datetime.now(UTC))}}
                )
            except Exception as exc:  # the next renewal may succeed; the lease lasts several periods
                log.warning("renewing lease %s failed: %s", self.lease_name, exc)

    def record(self, description: str, kind: str, args: dict[str, Any]) -> str:
        """Write the fault's revert before the fault is injected; returns its key."""
        self._count += 1
        key = f"{time.time_ns()}-{self._count:04d}"
        value = json.dumps({"description": description, "kind": kind, "args": args})
        self.kube.core.patch_namespaced_config_map(self.name, NAMESPACE, {"data": {key: value}})
        return key

    def resolve(self, key: str) -> None:
        self.kube.core.patch_namespaced_config_map(self.name, NAMESPACE, {"data": {key: None}})

    def pending(self) -> list[Entry]:
        return entries(self.kube, self.name)

    def close(self) -> None:
        """Release the Lease. Entries still pending (a revert that failed) stay for the next run."""
        self._stop.set()
        if self._renewer:
            self._renewer.join(timeout=5)
        if not self.pending():
            _delete_if_present(lambda: self.kube.core.delete_namespaced_config_map(self.name, NAMESPACE))
        _delete_if_present(
            lambda: coordination(self.kube).delete_namespaced_lease(self.lease_name, NAMESPACE)
        )


def entries(kube: Kube, configmap: str) -> list[Entry]:
    """The journal's pending entries, oldest first."""
    try:
        data = kube.core.read_namespaced_config_map(configmap, NAMESPACE).data or {}
    except client.ApiException as exc:
        if exc.status == 404:
            return []
        raise
    return [Entry(key, **json.loads(value)) for key, value in sorted(data.items())]


def orphaned(kube: Kube) -> dict[str, list[Entry]]:
    """Journals of runs whose Lease is gone, by run id (an empty list: nothing left to undo)."""
    try:
        maps = kube.core.list_namespaced_config_map(NAMESPACE, label_selector=runlabel.RUN_ID).items
    except client.ApiException as exc:
        if exc.status == 404:
            return {}
        raise
    alive = live_runs(kube)
    return {
        cm.metadata.labels[runlabel.RUN_ID]: entries(kube, cm.metadata.name)
        for cm in maps
        if cm.metadata.labels[runlabel.RUN_ID] not in alive
    }


def forget(kube: Kube, run_id: str, key: str) -> None:
    kube.core.patch_namespaced_config_map(object_name("journal", run_id), NAMESPACE, {"data": {key: None}})


def drop(kube: Kube, run_id: str) -> None:
    """Remove a finished orphan's journal and its expired Lease."""
    name = object_name("journal", run_id)
    _delete_if_present(lambda: kube.core.delete_namespaced_config_map(name, NAMESPACE))
    lease = object_name("run", run_id)
    _delete_if_present(lambda: coordination(kube).delete_namespaced_lease(lease, NAMESPACE))


def _micro_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _create_or_replace(create, replace) -> None:  # type: ignore[no-untyped-def]
    try:
        create()
    except client.ApiException as exc:
        if exc.status != 409:
            raise
        replace()


def _delete_if_present(delete) -> None:  # type: ignore[no-untyped-def]
    try:
        delete()
    except client.ApiException as exc:
        if exc.status != 404:
            raise


def acquire_lock(kube: Kube, name: str, timeout: float, interval: float = 2) -> str | None:
    """Take the platform-wide lock ``name`` (a Lease held by a run id). Waits while a live run holds it,
    takes it over from a run whose Lease is gone. None when taken; the holder's run id after ``timeout``."""
    ensure_namespace(kube)
    lock = object_name("lock", name)
    body = client.V1Lease(
        metadata=client.V1ObjectMeta(name=lock, labels=PART_OF),
        spec=client.V1LeaseSpec(holder_identity=kube.run_id, acquire_time=datetime.now(UTC)),
    )
    holders: list[str] = []

    def taken() -> waits.Check:
        try:
            coordination(kube).create_namespaced_lease(NAMESPACE, body)
            return waits.succeeded()
        except client.ApiException as exc:
            if exc.status != 409:
                raise
        held = _read_lease(kube, lock)
        if held is None:  # released between the two calls: try again
            return waits.pending("released")
        holder = held.spec.holder_identity
        if holder == kube.run_id:
            return waits.succeeded()
        if holder in live_runs(kube):
            holders.append(holder)
            return waits.pending(f"held by live run {holder}")
        body.metadata.resource_version = held.metadata.resource_version
        try:  # the resourceVersion makes a takeover by two runs at once fail for one of them
            coordination(kube).replace_namespaced_lease(lock, NAMESPACE, body)
            return waits.succeeded()
        except client.ApiException as exc:
            if exc.status not in (404, 409):
                raise
        body.metadata.resource_version = None
        return waits.pending(f"takeover from {holder} lost")

    try:
        waits.until(taken, timeout=timeout, what=f"lock {name}", interval=interval)
    except waits.WaitTimeout:
        return holders[-1] if holders else "unknown"
    return None


def release_lock(kube: Kube, name: str) -> None:
    lock = object_name("lock", name)
    held = _read_lease(kube, lock)
    if held is not None and held.spec.holder_identity == kube.run_id:
        _delete_if_present(lambda: coordination(kube).delete_namespaced_lease(lock, NAMESPACE))


def _read_lease(kube: Kube, name: str) -> client.V1Lease | None:
    try:
        return coordination(kube).read_namespaced_lease(name, NAMESPACE)
    except client.ApiException as exc:
        if exc.status == 404:
            return None
        raise
