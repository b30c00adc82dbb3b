"""Core test fixtures: the fault server, an audit trail kept out of $HOME, and a fake clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone

import pytest

from guardflow.inference.retry import RetryClock
from guardflow.testing.fault_server import fault_server

__all__ = ["FakeClock", "fault_server"]


@pytest.fixture(autouse=True)
def _audit_in_tmp(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    audit = tmp_path_factory.mktemp("audit") / "audit.jsonl"
    monkeypatch.setenv("GUARDFLOW_AUDIT_PATH", str(audit))
    yield


class FakeClock:
    """Time that only moves when the retry loop sleeps; records every delay it was asked for."""

    def __init__(self, *, jitter: float = 0.5, utcnow: datetime | None = None) -> None:
        self.now = 0.0
        self.slept: list[float] = []
        self._utcnow = utcnow or datetime(2015, 10, 21, 7, 28, tzinfo=timezone.utc)
        self.clock = RetryClock(
            sleep=self._sleep,
            async_sleep=self._async_sleep,
            monotonic=lambda: self.now,
            utcnow=lambda: self._utcnow,
            random=lambda: jitter,
        )

    def _sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    async def _async_sleep(self, seconds: float) -> None:
        self._sleep(seconds)


@pytest.fixture
def fake_clock() -> FakeClock:
    """A :class:`FakeClock` with jitter 0.5 and "now" at 2015-10-21 07:28:00 UTC."""
    return FakeClock()
