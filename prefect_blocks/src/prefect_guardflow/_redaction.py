"""Mask secret values in a Prefect run's logs, whoever logs them.

Prefect redacts only its own API key. guardflow's own code never logs a secret, but a flow that
reads a value from Vault holds it in plain text after ``reveal()``, and one careless
``logger.info("token=%s", value.reveal())`` would send it to the Prefect server and the console.
So every value read through guardflow (the ``read_vault_secret`` tasks, the Vault blocks, the
credentials a block logs in with, a token resolved for inference) is registered here, and one
logging filter replaces each registered value with ``**********``:

- on Prefect's run loggers (``prefect.flow_runs``, ``prefect.task_runs``), so a record is masked
  where it is created, before any handler sees it (the console, the API, ``caplog``);
- on every handler Prefect configured (its console handler on the root logger, the API log handler
  that sends logs to the server, the handlers of ``PREFECT_LOGGING_EXTRA_LOGGERS``) and on the
  API handler guardflow adds to its own logger, so records from any other logger are masked too.

The message is masked after formatting (arguments included), and so are tracebacks. Values
shorter than :data:`MIN_MASKED_LENGTH` characters are not masked (as in Airflow's masker): masking
every ``"abc"`` in every log line would hide more than it protects.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import traceback
from collections.abc import Iterable, Mapping
from typing import Any

from guardflow.secrets.values import MASK

__all__ = [
    "MASK",
    "MIN_MASKED_LENGTH",
    "SecretMaskingFilter",
    "install_log_masking",
    "mask_secrets",
    "register_secret",
]

MIN_MASKED_LENGTH = 5

_RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")


class SecretMaskingFilter(logging.Filter):
    """A logging filter that replaces registered secret values with :data:`MASK`.

    One process-wide instance (:func:`register_secret` feeds it) is attached by
    :func:`install_log_masking`. It never drops a record; it rewrites the message (and the
    traceback text) of records that contain a registered value and leaves the others untouched.

    Examples:
        ```python
        masker = SecretMaskingFilter()
        masker.add("s3cr3t-value")
        assert masker.mask("token=s3cr3t-value") == "token=**********"
        ```
    """

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def add(self, value: str) -> None:
        """Mask ``value`` (and its JSON- and repr-escaped forms) from now on.

        Args:
            value: The plain secret value; ignored when shorter than :data:`MIN_MASKED_LENGTH`.
        """
        forms = {form for form in _forms(value) if len(form) >= MIN_MASKED_LENGTH}
        with self._lock:
            if forms <= self._values:
                return
            self._values |= forms
            longest_first = sorted(self._values, key=len, reverse=True)
            # Swapped in one assignment: filter() on other threads reads either pattern, whole.
            self._pattern = re.compile("|".join(re.escape(v) for v in longest_first))

    def mask(self, text: str) -> str:
        """Return ``text`` with every registered value replaced by :data:`MASK`.

        Args:
            text: Any text.

        Returns:
            The masked text (the same object when nothing matched).
        """
        pattern = self._pattern
        if pattern is None or not pattern.search(text):
            return text
        return pattern.sub(MASK, text)

    def filter(self, record: logging.LogRecord) -> bool:
        """Mask the record's message, traceback and stack text in place; never drop it.

        Args:
            record: The log record.

        Returns:
            Always ``True``.
        """
        if self._pattern is None:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is the handler's to report, as usual
            return True
        masked = self.mask(message)
        if masked is not message:
            record.msg, record.args = masked, None
        self._mask_exception(record)
        if record.stack_info:
            record.stack_info = self.mask(record.stack_info)
        return True

    def _mask_exception(self, record: logging.LogRecord) -> None:
        text = record.exc_text
        if text is None and record.exc_info and record.exc_info[0] is not None:
            text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if text is None:
            return
        masked = self.mask(text)
        if masked is not text:
            # Formatters print exc_text when it is set; exc_info would let one re-render the
            # traceback (JSON formatters do), secret included, so it goes.
            record.exc_text, record.exc_info = masked, None


def _forms(value: str) -> Iterable[str]:
    """The ways a value shows up in log text: as is, JSON-escaped, repr-escaped, line by line."""
    yield value
    yield json.dumps(value)[1:-1]
    yield repr(value)[1:-1]
    if "\n" in value:
        yield from (line.strip() for line in value.splitlines())


_MASKER = SecretMaskingFilter()
_INSTALL_LOCK = threading.Lock()


def _revealed(value: Any) -> list[str]:
    """The plain strings inside a SecretValue, Secret, SecretStr, mapping or string."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if hasattr(value, "get_secret_value"):  # pydantic SecretStr / prefect SecretDict
        return _revealed(value.get_secret_value())
    if hasattr(value, "reveal"):  # guardflow SecretValue -> str, Secret -> dict[str, str]
        return _revealed(value.reveal())
    if isinstance(value, Mapping):
        return [s for item in value.values() for s in _revealed(item)]
    if isinstance(value, (list, tuple, set, frozenset)):
        return [s for item in value for s in _revealed(item)]
    return [str(value)]


def register_secret(value: Any) -> None:
    """Mask ``value`` in this process's Prefect logs from now on.

    Call it as soon as a secret is in hand, before any code could log it. Registering the same
    value again costs a set lookup.

    Args:
        value: A :class:`~guardflow.secrets.SecretValue`, a :class:`~guardflow.secrets.Secret`
            (every value in it), a pydantic ``SecretStr``, a mapping or a plain string; ``None``
            is ignored.

    Examples:
        ```python
        value = read_vault_secret("app/db", "password")
        register_secret(value)  # read_vault_secret already did this
        ```
    """
    for plain in _revealed(value):
        _MASKER.add(plain)
    install_log_masking()


def mask_secrets(text: str) -> str:
    """Replace every registered secret value in ``text`` with :data:`MASK`.

    Args:
        text: Any text (a message, an exception string).

    Returns:
        The masked text.
    """
    return _MASKER.mask(text)


def _prefect_loggers() -> list[logging.Logger]:
    from prefect.settings import PREFECT_LOGGING_EXTRA_LOGGERS

    extra = set(PREFECT_LOGGING_EXTRA_LOGGERS.value())
    loggers = [logging.getLogger()]
    for name, logger in list(logging.Logger.manager.loggerDict.items()):
        if not isinstance(logger, logging.Logger):
            continue
        top = name.split(".", 1)[0]
        if top in ("prefect", "guardflow") or name in extra:
            loggers.append(logger)
    return loggers


def _is_prefect_handler(handler: logging.Handler) -> bool:
    return type(handler).__module__.startswith("prefect.")


def install_log_masking() -> None:
    """Attach the masking filter to Prefect's run loggers and to every Prefect log handler.

    Idempotent, and cheap enough to call before each step: Prefect may build new handlers when
    its logging is configured again, and those get the filter on the next call.
    """
    with _INSTALL_LOCK:
        for name in _RUN_LOGGERS:
            logger = logging.getLogger(name)
            if _MASKER not in logger.filters:
                logger.addFilter(_MASKER)
        for logger in _prefect_loggers():
            for handler in list(logger.handlers):
                if _is_prefect_handler(handler) and _MASKER not in handler.filters:
                    handler.addFilter(_MASKER)
