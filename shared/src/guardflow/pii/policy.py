"""PII policies: which columns to scan, which hold one entity type, and what to do with each.

A :class:`PIIPolicy` is a pydantic model, loadable from YAML with :meth:`PIIPolicy.from_yaml`.
Columns named in :attr:`PIIPolicy.columns` with an ``entity`` are known to hold that type and are
transformed whole, without detection; ``free_text_columns`` (and rules with ``free_text: true``
or no ``entity``) are scanned and each span found is replaced by its action's output. A policy
with neither scans every string column as free text.

Examples:
    >>> policy = PIIPolicy.model_validate({
    ...     "columns": {"email": {"entity": "EMAIL_ADDRESS", "action": "hash"}},
    ...     "free_text_columns": ["notes"],
    ...     "actions": {"CREDIT_CARD": "mask"},
    ...     "hash_key": "not-a-real-key",
    ... })
    >>> policy.action_for(EntityType.CREDIT_CARD).value, policy.action_for(EntityType.URL).value
    ('mask', 'replace')
"""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from guardflow.errors import PIIPolicyError
from guardflow.pii._records import parse_path
from guardflow.pii.entities import NER_TYPES, PATTERN_TYPES, EntityType

__all__ = ["Action", "ColumnRule", "PIIPolicy"]


class Action(str, Enum):
    """What to do with a detected value.

    - ``redact``: remove it.
    - ``replace``: put ``<TYPE>`` in its place (e.g. ``<EMAIL_ADDRESS>``).
    - ``mask``: keep the last ``mask_keep_last`` characters, ``*`` for the others.
    - ``hash``: HMAC-SHA256 (hex) with the policy's key: same input and key, same output, so
      hashed columns still join.
    - ``tokenize``: a deterministic, reversible ``tok_...`` token from a Vault transit convergent
      key (see :func:`guardflow.pii.detokenize`).
    - ``keep``: leave it (it is still counted).
    """

    REDACT = "redact"
    REPLACE = "replace"
    MASK = "mask"
    HASH = "hash"
    TOKENIZE = "tokenize"
    KEEP = "keep"

    def __str__(self) -> str:
        return self.value


class ColumnRule(BaseModel):
    """How one column is handled.

    Args:
        entity: The one entity type the column holds: its values are transformed whole, with no
            detection. ``None``: the column is free text and is scanned.
        action: The action for this column (default: the policy's action for each type).
        free_text: Scan the column for every configured type (implied when ``entity`` is None).
        json_paths: For columns holding nested records (structs, dicts or JSON strings): the
            paths to transform, e.g. ``$.user.email`` or ``$.items[*].note`` (default: every
            string inside the value). An unsupported path makes the policy invalid when it
            loads (the error names ``columns.NAME.json_paths``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    entity: EntityType | None = None
    action: Action | None = None
    free_text: bool = False
    json_paths: list[str] = Field(default_factory=list)

    @field_validator("json_paths")
    @classmethod
    def _check_paths(cls, paths: list[str]) -> list[str]:
        # At load time, so the error names the column's field (columns.NAME.json_paths).
        for path in paths:
            try:
                parse_path(path)
            except PIIPolicyError as exc:
                raise ValueError(exc.message) from None
        return paths

    @property
    def whole(self) -> bool:
        """Whether values are transformed whole (the column holds one known type)."""
        return self.entity is not None and not self.free_text


class PIIPolicy(BaseModel):
    """What to scan and how to mask it.

    Args:
        entities: Types to detect; ``None`` = every pattern type (plus the NER types with
            ``ner``).
        columns: Per-column rules (see :class:`ColumnRule`).
        free_text_columns: Columns to scan for every configured type.
        actions: The action per entity type.
        default_action: The action for types not in ``actions``.
        mask_keep_last: Characters kept by ``mask``.
        hash_key: The HMAC key for ``hash`` (a literal; prefer ``hash_key_ref``).
        hash_key_ref: A ``vault://MOUNT/PATH#KEY`` reference to the HMAC key.
        transit_key: The Vault transit key used by ``tokenize`` (created convergent if missing).
        transit_mount: The transit mount point.
        min_score: Detections below this score are ignored.
        context: Let context words around a candidate raise or lower its score.
        ner: Run the NER stage (``ner`` extra) for PERSON, LOCATION and ORGANIZATION.
        allow: Scan only: types allowed per column (not reported as violations).

    Raises:
        PIIPolicyError: From :meth:`from_yaml` / :meth:`load` when the policy is invalid.
    """

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    entities: list[EntityType] | None = None
    columns: dict[str, ColumnRule] = Field(default_factory=dict)
    free_text_columns: list[str] = Field(default_factory=list)
    actions: dict[EntityType, Action] = Field(default_factory=dict)
    default_action: Action = Action.REPLACE
    mask_keep_last: int = Field(default=4, ge=0)
    hash_key: SecretStr | None = None
    hash_key_ref: str | None = None
    transit_key: str = Field(default="guardflow-pii", min_length=1)
    transit_mount: str = Field(default="transit", min_length=1)
    min_score: float = Field(default=0.5, ge=0.0, le=1.0)
    context: bool = True
    ner: bool = False
    allow: dict[str, list[EntityType]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> PIIPolicy:
        if self.hash_key_ref is not None and not self.hash_key_ref.startswith("vault://"):
            raise ValueError("hash_key_ref must be a vault://MOUNT/PATH#KEY reference")
        if self.hash_key is not None and self.hash_key_ref is not None:
            raise ValueError("give hash_key or hash_key_ref, not both")
        if Action.HASH in self.used_actions() and self.hash_key is None and not self.hash_key_ref:
            raise ValueError("the hash action needs hash_key or hash_key_ref (vault://...)")
        if self.hash_key is not None and not self.hash_key.get_secret_value():
            raise ValueError("hash_key is empty")
        return self

    # --- loading -----------------------------------------------------------------------------

    @classmethod
    def load(cls, source: PIIPolicy | dict[str, Any] | str | os.PathLike[str] | None) -> PIIPolicy:
        """Return a policy from a policy, a dict, a YAML path, or ``None`` (the default policy).

        Raises:
            PIIPolicyError: The policy is invalid or the file cannot be read.
        """
        if source is None:
            return cls()
        if isinstance(source, PIIPolicy):
            return source
        if isinstance(source, dict):
            return cls._validate(source, what="PII policy")
        return cls.from_yaml(source)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str]) -> PIIPolicy:
        """Load a policy from a YAML file.

        Args:
            path: The YAML file (a mapping with the fields of :class:`PIIPolicy`).

        Returns:
            The validated policy.

        Raises:
            PIIPolicyError: The file is missing, not YAML, or not a valid policy (the message
                names fields and rules, never values).
        """
        import yaml

        where = Path(path)
        try:
            data = yaml.safe_load(where.read_text(encoding="utf-8"))
        except OSError as exc:
            raise PIIPolicyError(f"cannot read PII policy {os.fspath(path)!r}: {exc}") from None
        except yaml.YAMLError:
            raise PIIPolicyError(
                f"PII policy {os.fspath(path)!r} is not valid YAML; check its syntax"
            ) from None
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise PIIPolicyError(f"PII policy {os.fspath(path)!r} must be a YAML mapping")
        return cls._validate(data, what=f"PII policy {os.fspath(path)!r}")

    @classmethod
    def _validate(cls, data: dict[str, Any], *, what: str) -> PIIPolicy:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            error = PIIPolicyError.from_validation(exc, what=what)
            raise PIIPolicyError(error.message) from None

    # --- queries -----------------------------------------------------------------------------

    def detected_types(self) -> list[EntityType]:
        """The entity types detection looks for."""
        if self.entities is not None:
            return list(self.entities)
        return list(PATTERN_TYPES) + (list(NER_TYPES) if self.ner else [])

    def action_for(self, entity: EntityType, column: str | None = None) -> Action:
        """The action for ``entity`` found in ``column`` (column rule, then type, then default)."""
        rule = self.columns.get(column) if column is not None else None
        if rule is not None and rule.action is not None:
            return rule.action
        return self.actions.get(entity, self.default_action)

    def used_actions(self) -> set[Action]:
        """Every action the policy can apply."""
        used = {self.default_action, *self.actions.values()}
        used.update(rule.action for rule in self.columns.values() if rule.action is not None)
        return used

    def needs_vault(self) -> bool:
        """Whether applying the policy needs a Vault client.

        Returns:
            ``True`` when an action is ``tokenize`` (Vault transit) or the hash key is a
            ``vault://`` reference (``hash_key_ref``).
        """
        return Action.TOKENIZE in self.used_actions() or self.hash_key_ref is not None

    def allowed(self, column: str) -> set[EntityType]:
        """Types a scan allows in ``column`` (``allow``; ``"*"`` applies to every column)."""
        return set(self.allow.get(column, [])) | set(self.allow.get("*", []))
