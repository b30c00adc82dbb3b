"""A stand-in reviewer for tests of pipelines that contain approval gates.

A pipeline with a gate waits for people. In a test, :class:`GateDecider` plays those people: a
background thread watches a gate store and votes on every pending gate, as an eligible reviewer
(the first one the gate's policy allows, or ``reviewer`` when anyone may vote), through the same
:meth:`~guardflow.gates.service.Gate.decide` path as the CLI and the review page. The
``gate_decider`` fixture points ``$GUARDFLOW_GATES_DB`` at a fresh SQLite store for the test and
starts deciders on request; they stop when the test ends.

Examples:
    >>> def test_pipeline_delivers(gate_decider):  # doctest: +SKIP
    ...     decider = gate_decider(option="approve")
    ...     result = run_my_pipeline()  # opens a gate on $GUARDFLOW_GATES_DB and waits
    ...     assert decider.decided and result == "delivered"
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from guardflow.testing._service import StartStop

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["GateDecider", "gate_decider"]

_log = logging.getLogger(__name__)


class GateDecider(StartStop):
    """Votes on every pending gate of a store from a background thread.

    Args:
        store_url: The gate store to watch.
        option: The option to choose.
        reviewer: Who votes when the gate lets anyone vote; otherwise the first eligible
            reviewer (sorted by name) votes, so the vote counts.
        channel: The channel recorded with the vote.
        comment: The comment recorded with the vote.
        interval: Seconds between looks at the store.
        only: Decide only gates whose id this returns true for (default: every gate).

    Attributes:
        decided: Ids of the gates this decider voted on, in order.
        errors: Errors raised while voting (a refused vote is recorded here, not raised).
    """

    def __init__(
        self,
        store_url: str,
        *,
        option: str = "approve",
        reviewer: str = "test-reviewer",
        channel: str = "api",
        comment: str | None = None,
        interval: float = 0.2,
        only: Callable[[str], bool] | None = None,
    ) -> None:
        self.store_url = store_url
        self.option = option
        self.reviewer = reviewer
        self.channel = channel
        self.comment = comment
        self.interval = interval
        self.only = only
        self.decided: list[str] = []
        self.errors: list[BaseException] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="gate-decider", daemon=True)

    def start(self) -> Self:
        """Start watching; returns ``self``."""
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop watching and wait for the thread."""
        self._done.set()
        if self._thread.is_alive():
            self._thread.join(timeout=timeout)

    def _watch(self) -> None:
        from guardflow.gates.models import GateStatus
        from guardflow.gates.service import Gate
        from guardflow.gates.store import GateStore

        store = GateStore(self.store_url)
        seen: set[str] = set()
        while not self._done.wait(self.interval):
            try:
                pending = store.list(status=GateStatus.PENDING)
            except Exception as exc:  # the store file may not exist yet
                _log.debug("gate decider: store not readable yet (%s)", type(exc).__name__)
                continue
            for record in pending:
                if record.id in seen or (self.only is not None and not self.only(record.id)):
                    continue
                seen.add(record.id)
                eligible = record.policy.eligible_reviewers(record.escalation_level)
                reviewer = sorted(eligible)[0] if eligible else self.reviewer
                try:
                    Gate(record.policy, store=store).decide(
                        record.id,
                        reviewer=reviewer,
                        option=self.option,
                        channel=self.channel,
                        comment=self.comment,
                    )
                    self.decided.append(record.id)
                except Exception as exc:
                    self.errors.append(exc)


@pytest.fixture
def gate_decider(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., GateDecider]]:
    """Point ``$GUARDFLOW_GATES_DB`` at a fresh SQLite store and start deciders on request.

    Yields:
        A factory: ``gate_decider(option="approve", **kwargs)`` starts a :class:`GateDecider`
        on that store (keyword arguments as for the class) and returns it. Every decider
        started is stopped when the test ends.
    """
    url = f"sqlite:///{tmp_path / 'gates.db'}"
    monkeypatch.setenv("GUARDFLOW_GATES_DB", url)
    started: list[GateDecider] = []

    def start(option: str = "approve", **kwargs: Any) -> GateDecider:
        decider = GateDecider(url, option=option, **kwargs).start()
        started.append(decider)
        return decider

    try:
        yield start
    finally:
        for decider in started:
            decider.stop()
