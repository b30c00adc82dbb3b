"""GateTrigger: waits in Airflow's triggerer until a human approval gate is decided.

:class:`~guardflow_airflow.operators.gates.ApprovalGateOperator` opens a gate and defers to this
trigger, so no worker slot is held while reviewers think. The trigger polls the gate store (the
single source of truth for every channel: signed link, review page, CLI, timeout) from a thread,
so the triggerer's event loop never blocks on the database. It fires once:

- ``{"gate_id": ..., "status": "resolved" | "expired"}`` when the gate is no longer pending
  (reading the store applies a due expiry, so an expired gate is seen on the first poll after
  ``expires_at``);
- ``{"gate_id": ..., "status": "wake"}`` when ``wake_at`` passes first (an escalation is due):
  the task resumes, sends the escalation, and defers again.

Its arguments are stored in Airflow's metadata database, so they hold only the gate id, a store
URL without a password, the poll interval and the wake-up time; never a secret.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

if TYPE_CHECKING:
    from guardflow.gates.store import GateStore

__all__ = ["GateTrigger", "check_store_url"]

# Consecutive failed reads of the store tolerated (a database restart, a locked file) before the
# trigger gives up and the task fails with the error type.
_MAX_READ_ERRORS = 5


def check_store_url(url: str) -> None:
    """Refuse a store URL that carries a password: trigger arguments are stored in Airflow's DB.

    Args:
        url: The SQLAlchemy URL of the gate store.

    Raises:
        ConfigurationError: The URL holds a password (the message never shows it).
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from guardflow.errors import ConfigurationError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigurationError(
            "the gate store URL is not a valid SQLAlchemy URL; check store_url, the policy's "
            "store_url or $GUARDFLOW_GATES_DB"
        ) from None
    if parsed.password is not None:
        raise ConfigurationError(
            "the gate store URL holds a password, and a deferred task's trigger arguments are "
            "stored in Airflow's metadata database; use a URL without one and give the password "
            "to the database driver another way (PostgreSQL: PGPASSWORD or ~/.pgpass on the "
            "workers and the triggerer)"
        )


class GateTrigger(BaseTrigger):
    """Fire when a gate is resolved or expired, or when its next escalation is due.

    Args:
        gate_id: The gate to wait on.
        store_url: SQLAlchemy URL of the gate store, without a password (refused otherwise).
        poll_interval: Seconds between reads of the store.
        wake_at: ISO 8601 time (UTC) at which to fire ``"wake"`` even if the gate is pending;
            ``None`` waits until it closes.

    Raises:
        ConfigurationError: ``store_url`` holds a password, or ``poll_interval`` is not positive.

    Examples:
        >>> GateTrigger("0f3a", "sqlite:////var/lib/guardflow/gates.db").serialize()[0]
        'guardflow_airflow.triggers.gates.GateTrigger'
    """

    def __init__(
        self,
        gate_id: str,
        store_url: str,
        poll_interval: float = 5.0,
        wake_at: str | None = None,
    ) -> None:
        super().__init__()
        from guardflow.errors import ConfigurationError

        check_store_url(store_url)
        if not poll_interval > 0:
            raise ConfigurationError("poll_interval must be a positive number of seconds")
        self.gate_id = gate_id
        self.store_url = store_url
        self.poll_interval = float(poll_interval)
        self.wake_at = wake_at

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Return the class path and the arguments that rebuild this trigger (no secrets).

        Returns:
            ``("guardflow_airflow.triggers.gates.GateTrigger", {gate_id, store_url,
            poll_interval, wake_at})``.
        """
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "gate_id": self.gate_id,
                "store_url": self.store_url,
                "poll_interval": self.poll_interval,
                "wake_at": self.wake_at,
            },
        )

    def _wake_time(self) -> datetime | None:
        if self.wake_at is None:
            return None
        wake = datetime.fromisoformat(self.wake_at)
        return wake if wake.tzinfo else wake.replace(tzinfo=timezone.utc)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll the store until the gate closes or ``wake_at`` passes, then fire once.

        Yields:
            One :class:`~airflow.triggers.base.TriggerEvent` with ``gate_id`` and ``status``
            (``resolved``, ``expired`` or ``wake``).

        Raises:
            GateNotFoundError: The gate is not in this store (wrong URL, or it was deleted).
            Exception: The store could not be read several times in a row.
        """
        from guardflow.errors import GateNotFoundError

        wake = self._wake_time()
        store = await asyncio.to_thread(self._open_store)
        errors = 0
        try:
            while True:
                try:
                    record = await asyncio.to_thread(store.get, self.gate_id)
                    errors = 0
                except GateNotFoundError:
                    raise
                except Exception as exc:
                    errors += 1
                    if errors >= _MAX_READ_ERRORS:
                        raise
                    self.log.warning(
                        "gate %s: reading the store failed (%s); retrying",
                        self.gate_id,
                        type(exc).__name__,
                    )
                else:
                    if not record.is_open:
                        yield TriggerEvent({"gate_id": self.gate_id, "status": record.status.value})
                        return
                now = datetime.now(timezone.utc)
                if wake is not None and now >= wake:
                    yield TriggerEvent({"gate_id": self.gate_id, "status": "wake"})
                    return
                delay = self.poll_interval
                if wake is not None:
                    delay = min(delay, max((wake - now).total_seconds(), 0.0))
                await asyncio.sleep(delay)
        finally:
            store.dispose()

    def _open_store(self) -> GateStore:
        from guardflow.gates.store import GateStore

        return GateStore(self.store_url)
