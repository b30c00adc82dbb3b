"""Reading, renewing and revoking leased secrets for a :class:`~guardflow.secrets.VaultClient`."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from guardflow.secrets._connection import Connection
from guardflow.secrets._hvac import Operation
from guardflow.secrets.leases import Lease, lease_label
from guardflow.secrets.values import Secret

__all__ = ["LeaseTracker"]

_log = logging.getLogger("guardflow.secrets")


class LeaseTracker:
    """The leases one client read: renewal jobs on the connection's renewer, revoke on close.

    Args:
        conn: The client's connection.
    """

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._lock = threading.Lock()
        self._leases: dict[str, Lease] = {}
        self._revoke_on_close: set[str] = set()

    def read(self, path: str, *, data: Mapping[str, Any] | None, revoke_on_close: bool) -> Secret:
        """Read a dynamic secret and track its lease (see ``VaultClient.read_lease``)."""
        path = path.strip("/")
        mount = path.split("/", 1)[0]
        op = Operation(
            api_path=path,
            capability="read" if data is None else "update",
            mount=mount,
            path=path,
            kind="lease",
        )
        if data is None:
            body = self._conn.request("GET", path, op=op) or {}
        else:
            body = self._conn.request("POST", path, op=op, json=dict(data)) or {}
        lease = None
        if body.get("lease_id") or float(body.get("lease_duration") or 0) > 0:
            lease = Lease(
                lease_id=str(body.get("lease_id") or ""),
                duration=float(body.get("lease_duration") or 0),
                renewable=bool(body.get("renewable")),
            )
        secret = Secret(body.get("data") or {}, path=path, mount=mount, lease=lease)
        if lease is not None and lease.lease_id:
            with self._lock:
                self._leases[lease.lease_id] = lease
                if revoke_on_close:
                    self._revoke_on_close.add(lease.lease_id)
            self._schedule(lease)
        return secret

    def renew(self, lease: Lease, *, increment: float | None = None) -> Lease:
        """Renew ``lease`` now (see ``VaultClient.renew``)."""
        body: dict[str, Any] = {"lease_id": lease.lease_id}
        if increment is not None:
            body["increment"] = int(increment)
        op = Operation(api_path="sys/leases/renew", capability="update", kind="lease")
        answer = self._conn.request("PUT", "sys/leases/renew", op=op, json=body) or {}
        lease.extend(float(answer.get("lease_duration") or 0))
        lease.renewable = bool(answer.get("renewable", lease.renewable))
        return lease

    def revoke(self, lease: Lease) -> None:
        """Revoke ``lease`` now and stop renewing it (see ``VaultClient.revoke``)."""
        self._conn.renewer.cancel(f"lease:{lease.lease_id}")
        op = Operation(api_path="sys/leases/revoke", capability="update", kind="lease")
        self._conn.request("PUT", "sys/leases/revoke", op=op, json={"lease_id": lease.lease_id})
        with self._lock:
            self._leases.pop(lease.lease_id, None)
            self._revoke_on_close.discard(lease.lease_id)

    def leases(self) -> list[Lease]:
        """The tracked leases."""
        with self._lock:
            return list(self._leases.values())

    def revoke_marked(self) -> None:
        """Revoke the leases read with ``revoke_on_close``; failures are logged, not raised."""
        with self._lock:
            doomed = [self._leases[i] for i in self._revoke_on_close if i in self._leases]
        for lease in doomed:
            try:
                self.revoke(lease)
            except Exception as exc:  # closing must finish; the lease expires on its own
                _log.warning(
                    "could not revoke Vault lease %s: %s", lease_label(lease.lease_id), exc
                )

    def _schedule(self, lease: Lease) -> None:
        if not lease.renewable or lease.duration <= 0:
            return
        fraction = self._conn.config.renew_fraction

        def job() -> float | None:
            previous = lease.duration
            self.renew(lease)
            _log.debug(
                "renewed Vault lease %s for %gs", lease_label(lease.lease_id), lease.duration
            )
            # The server stops extending at the lease's max TTL: stop once it grants less.
            if not lease.renewable or lease.duration <= 0 or lease.duration < previous * fraction:
                return None
            return lease.duration * fraction

        self._conn.renewer.schedule(f"lease:{lease.lease_id}", lease.duration * fraction, job)
