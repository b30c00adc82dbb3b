"""The ``with`` protocol shared by the testing plugin's servers and helpers."""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["StartStop"]


class StartStop:
    """Base of a service a test starts and stops: ``with Service() as s:`` starts it, then stops
    it on the way out, whatever happened inside."""

    def start(self) -> Self:
        """Start the service and return it (subclasses implement this)."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop the service (subclasses implement this)."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
