"""The one error tree of guardflow.

Every error guardflow raises derives from :class:`GuardflowError`. Messages say what went wrong and
what to do about it; context is passed keyword-only and never holds raw data, secrets or PII.

```
GuardflowError
├── ConfigurationError            bad policy, endpoint or argument; fix the configuration
│   └── MissingExtraError         an optional dependency is not installed; pip install the extra
├── InputDataError                input missing, unreadable, empty or of the wrong shape
├── OutputWriteError              an output could not be written atomically
└── InferenceError                anything that went wrong talking to a model server
    ├── EndpointNotReadyError     readiness probe failed: server down or model not loaded
    ├── InferenceRequestError     one request failed for good (after retries, if retryable)
    │   ├── InferenceTimeoutError connect/read/write/pool timeout
    │   ├── InferenceConnectError the server could not be reached
    │   └── InferenceHTTPError    the server answered with an error status
    ├── MalformedResponseError    the answer could not be parsed or did not match the batch
    └── InferenceFailedRowsError  rows ended in the dead-letter output beyond the failure policy
```
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ConfigurationError",
    "EndpointNotReadyError",
    "GuardflowError",
    "InferenceConnectError",
    "InferenceError",
    "InferenceFailedRowsError",
    "InferenceHTTPError",
    "InferenceRequestError",
    "InferenceTimeoutError",
    "InputDataError",
    "MalformedResponseError",
    "MissingExtraError",
    "OutputWriteError",
]


class GuardflowError(Exception):
    """Base class of every error raised by guardflow.

    Args:
        message: What went wrong and what to do about it. Never includes raw data or secrets.
        retryable: Whether repeating the same step may succeed (orchestrators retry only these).
    """

    retryable: bool = False

    def __init__(self, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(message)
        self.message = message
        if retryable is not None:
            self.retryable = retryable

    def __str__(self) -> str:
        return self.message


class ConfigurationError(GuardflowError):
    """A policy, endpoint or argument is invalid; the fix is in the configuration."""

    @classmethod
    def from_validation(cls, exc: Any, *, what: str) -> ConfigurationError:
        """Describe a pydantic ``ValidationError`` by field and rule, never echoing values.

        Args:
            exc: The ``pydantic.ValidationError``.
            what: What was being validated, e.g. ``"inference config 'x.yaml'"``.
        """
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}"
            for err in exc.errors(include_input=False, include_url=False)
        )
        return cls(f"invalid {what}: {problems}")


class MissingExtraError(ConfigurationError):
    """An optional dependency is missing.

    Args:
        module: The module that failed to import.
        extra: The guardflow extra that provides it.
        package: The distribution to install the extra on (default ``guardflow``).
    """

    def __init__(self, *, module: str, extra: str, package: str = "guardflow") -> None:
        self.module = module
        self.extra = extra
        super().__init__(
            f"{module!r} is not installed; it comes with the {extra!r} extra: "
            f"pip install '{package}[{extra}]'"
        )


class InputDataError(GuardflowError):
    """Input data is missing, unreadable, empty or does not have the expected shape."""


class OutputWriteError(GuardflowError):
    """An output could not be written; nothing partial was left at the destination."""

    retryable = True


class InferenceError(GuardflowError):
    """Something went wrong talking to a model server."""


class EndpointNotReadyError(InferenceError):
    """The readiness probe failed: the server is down or the model is not loaded.

    Args:
        url: The probed URL (credentials are never part of it).
        status_code: The HTTP status the probe got, if the server answered at all.
    """

    retryable = True

    def __init__(self, message: str, *, url: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.status_code = status_code


class InferenceRequestError(InferenceError):
    """A request to the model server failed for good.

    Args:
        url: The request URL.
        attempts: How many attempts were made before giving up.
    """

    def __init__(
        self,
        message: str,
        *,
        url: str,
        attempts: int = 1,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message, retryable=retryable)
        self.url = url
        self.attempts = attempts


class InferenceTimeoutError(InferenceRequestError):
    """A connect, read, write or pool timeout expired."""

    retryable = True


class InferenceConnectError(InferenceRequestError):
    """The model server could not be reached."""

    retryable = True


class InferenceHTTPError(InferenceRequestError):
    """The model server answered with an error status.

    Args:
        status_code: The HTTP status code.
    """

    def __init__(
        self,
        message: str,
        *,
        url: str,
        status_code: int,
        attempts: int = 1,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message, url=url, attempts=attempts, retryable=retryable)
        self.status_code = status_code


class MalformedResponseError(InferenceError):
    """The server's answer could not be parsed, or did not have one prediction per row.

    Args:
        url: The request URL.
        detail: What was wrong (shape, type), never the payload itself.
    """

    def __init__(self, message: str, *, url: str, detail: str = "") -> None:
        super().__init__(message)
        self.url = url
        self.detail = detail


class InferenceFailedRowsError(InferenceError):
    """More rows failed than the failure policy allows; they are in the dead-letter output.

    Args:
        summary: The step's JSON-safe summary (counts, URIs), also returned on success.
    """

    def __init__(self, message: str, *, summary: dict[str, Any]) -> None:
        super().__init__(message)
        self.summary = summary
