"""The one error tree of guardflow.

Every error guardflow raises derives from :class:`GuardflowError`. Messages say what went wrong and
what to do about it; context is passed keyword-only and never holds raw data, secrets or PII.

```
GuardflowError
├── ConfigurationError            bad policy, endpoint or argument; fix the configuration
│   ├── MissingExtraError         an optional dependency is not installed; pip install the extra
│   └── PIIPolicyError            a PII policy is invalid or needs what was not given (a Vault)
├── InputDataError                input missing, unreadable, empty or of the wrong shape
│   └── DriftInputError           drift inputs empty, all-null, mismatched or of unusable types
├── OutputWriteError              an output could not be written atomically
├── DriftError                    a drift check could not run or found drift
│   └── DriftDetectedError        the dataset drifted (carries the DriftReport as .report)
├── DataQualityError              a data-quality suite failed (carries the QualitySummary)
├── TrackingError                 results could not be logged to the MLflow tracking server
├── PIIError                      PII masking or scanning could not run
│   └── PIIFoundError             a scan found PII where the policy allows none (carries .report)
├── GateError                     a human approval gate could not be opened, decided or waited on
│   ├── GateNotFoundError         no gate with this id in the store
│   ├── GateClosedError           the gate is resolved or expired; a late decision is refused
│   ├── GateVoteRefusedError      not an assignee, already voted, or not one of the gate's options
│   ├── GateTokenError            a decision link is forged, expired or already used
│   ├── GateRejectedError         the gate was rejected and the step is configured to fail
│   ├── GateTimeoutError          the gate expired and its on-timeout action is "fail"
│   └── NotificationError         a notifier failed after its retries
├── SecretsError                  anything that went wrong reading secrets from Vault / OpenBao
│   ├── VaultUnreachableError     the server could not be reached (retryable)
│   ├── VaultSealedError          the server is sealed; unseal it (retryable)
│   ├── VaultAuthError            login failed or the token is invalid, expired or revoked
│   ├── VaultPermissionError      the token's policies do not grant this path
│   ├── SecretNotFoundError       nothing is stored at this path (or this version)
│   ├── SecretKeyMissingError     the secret exists but has no such key
│   ├── SecretEngineNotMountedError  no secrets engine is mounted at this mount point
│   └── TransitError              a transit encrypt/decrypt/key request failed
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

import functools
from typing import Any

__all__ = [
    "ConfigurationError",
    "DataQualityError",
    "DriftDetectedError",
    "DriftError",
    "DriftInputError",
    "EndpointNotReadyError",
    "GateClosedError",
    "GateError",
    "GateNotFoundError",
    "GateRejectedError",
    "GateTimeoutError",
    "GateTokenError",
    "GateVoteRefusedError",
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
    "NotificationError",
    "OutputWriteError",
    "PIIError",
    "PIIFoundError",
    "PIIPolicyError",
    "SecretEngineNotMountedError",
    "SecretKeyMissingError",
    "SecretNotFoundError",
    "SecretsError",
    "TrackingError",
    "TransitError",
    "VaultAuthError",
    "VaultPermissionError",
    "VaultSealedError",
    "VaultUnreachableError",
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


# --- Secrets (Vault / OpenBao) -------------------------------------------------------------------


class SecretsError(GuardflowError):
    """Something went wrong reading or writing secrets in Vault or OpenBao.

    Messages name the server URL, mount, path and key names when useful; never a token or a value.
    """


class VaultUnreachableError(SecretsError):
    """The Vault server could not be reached (connection refused, DNS, TLS, timeout).

    Args:
        url: The server address that was tried.
    """

    retryable = True

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url


class VaultSealedError(SecretsError):
    """The Vault server is sealed and serves no secrets until it is unsealed.

    Args:
        url: The server address.
    """

    retryable = True

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url


class VaultAuthError(SecretsError):
    """Login failed, or the token is invalid, expired or revoked.

    Args:
        method: The auth method (``token``, ``approle``, ``kubernetes``, ``jwt``, ``userpass``).
        mount: The auth mount point, when the method has one.
    """

    def __init__(self, message: str, *, method: str, mount: str | None = None) -> None:
        super().__init__(message)
        self.method = method
        self.mount = mount


class VaultPermissionError(SecretsError):
    """The token is valid but its policies do not grant the operation on this path.

    Args:
        path: The full API path that was denied (e.g. ``secret/data/app/db``).
    """

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(message)
        self.path = path


class SecretNotFoundError(SecretsError):
    """Nothing is stored at this path (or the requested version was deleted or destroyed).

    Args:
        path: The secret path inside its mount.
        mount: The mount point of the secrets engine.
    """

    def __init__(self, message: str, *, path: str, mount: str | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.mount = mount


class SecretKeyMissingError(SecretsError):
    """The secret exists but has no such key.

    Args:
        path: The secret path inside its mount.
        key: The key that was asked for.
        available: The key names the secret has (names only, never values).
    """

    def __init__(self, message: str, *, path: str, key: str, available: list[str]) -> None:
        super().__init__(message)
        self.path = path
        self.key = key
        self.available = available


class SecretEngineNotMountedError(SecretsError):
    """No secrets engine is mounted at this mount point.

    Args:
        mount: The mount point that was used.
    """

    def __init__(self, message: str, *, mount: str) -> None:
        super().__init__(message)
        self.mount = mount


class TransitError(SecretsError):
    """A transit request (key creation, encrypt, decrypt) failed.

    Args:
        key: The transit key name.
        mount: The transit mount point.
    """

    def __init__(self, message: str, *, key: str, mount: str = "transit") -> None:
        super().__init__(message)
        self.key = key
        self.mount = mount


# --- drift (guardflow.drift) ---------------------------------------------------------------------


class DriftError(GuardflowError):
    """A drift check could not run, or found drift (see :class:`DriftDetectedError`)."""


class DriftInputError(InputDataError):
    """Drift inputs cannot be compared: empty, all-null, mismatched schemas or unusable types.

    Args:
        columns: The columns concerned (names only, never values).
    """

    def __init__(self, message: str, *, columns: list[str] | None = None) -> None:
        super().__init__(message)
        self.columns = list(columns or [])


class DriftDetectedError(DriftError):
    """The current data drifted from the reference; raised by adapters whose policy is ``fail``.

    Args:
        report: The :class:`guardflow.drift.DriftReport` that found the drift.
    """

    def __init__(self, message: str, *, report: Any) -> None:
        super().__init__(message)
        self.report = report


# --- data quality and tracking (guardflow.quality, guardflow.tracking) ---------------------------


class DataQualityError(GuardflowError):
    """A data-quality suite failed; raised by adapters (and ``summary.raise_for_failure()``).

    Args:
        summary: The :class:`guardflow.quality.QualitySummary` of the run: counts and the failed
            expectations, never data values.
    """

    def __init__(self, message: str, *, summary: Any) -> None:
        super().__init__(message)
        self.summary = summary

    def __reduce__(self) -> tuple[Any, ...]:
        # Orchestrators pickle failed states; keep the keyword-only summary through the trip.
        return (functools.partial(type(self), summary=self.summary), (self.message,))


class TrackingError(GuardflowError):
    """Results could not be logged to the MLflow tracking server.

    Args:
        tracking_uri: The tracking URI, without credentials or query string.
    """

    def __init__(
        self, message: str, *, tracking_uri: str | None = None, retryable: bool | None = None
    ) -> None:
        super().__init__(message, retryable=retryable)
        self.tracking_uri = tracking_uri


# --- PII (guardflow.pii) -------------------------------------------------------------------------


class PIIError(GuardflowError):
    """PII masking or scanning could not run, or found PII (see :class:`PIIFoundError`)."""


class PIIFoundError(PIIError):
    """A scan found PII of types the policy does not allow; raised by ``fail`` scan policies.

    Args:
        report: The :class:`guardflow.pii.PIIReport` of the scan: counts, never values.
    """

    def __init__(self, message: str, *, report: Any) -> None:
        super().__init__(message)
        self.report = report

    def __reduce__(self) -> tuple[Any, ...]:
        # Orchestrators pickle failed states; keep the keyword-only report through the trip.
        return (functools.partial(type(self), report=self.report), (self.message,))


class PIIPolicyError(ConfigurationError):
    """A PII policy is invalid, or needs something that was not given (a Vault client, a key)."""


# --- Approval gates (guardflow.gates) -------------------------------------------------------------


class GateError(GuardflowError):
    """A human approval gate could not be opened, decided or waited on.

    Args:
        message: What went wrong and what to do about it.
        gate_id: The gate concerned, when there is one.
    """

    def __init__(
        self, message: str, *, gate_id: str | None = None, retryable: bool | None = None
    ) -> None:
        super().__init__(message, retryable=retryable)
        self.gate_id = gate_id

    def __reduce__(self) -> tuple[Any, ...]:
        # Orchestrators pickle failed states; keep the keyword-only gate id through the trip.
        return (functools.partial(type(self), gate_id=self.gate_id), (self.message,))


class GateNotFoundError(GateError):
    """No gate with this id exists in the store (wrong id, or another store URL)."""


class GateClosedError(GateError):
    """The gate is already resolved or expired; the decision was refused and nothing changed."""


class GateVoteRefusedError(GateError):
    """The vote was refused: the reviewer is not an assignee, already voted, or chose no option."""


class GateTokenError(GateError):
    """A decision link's token is forged, expired or was already used; nothing was decided."""


class GateRejectedError(GateError):
    """The gate was rejected and the step is configured to fail on rejection."""


class GateTimeoutError(GateError):
    """The gate expired without a decision and its on-timeout action is ``fail``."""


class NotificationError(GateError):
    """A notifier could not deliver its message after its retries.

    The message names the notifier kind and the HTTP status or SMTP reply code, never the webhook
    URL (it is a credential) or the message body.
    """
