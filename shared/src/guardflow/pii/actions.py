"""Masking actions, applied to a whole column's values at once.

:class:`Masker` turns the values found for one entity type into their masked form in one call,
so ``tokenize`` sends each distinct value to Vault transit once, in batches, however many rows
repeat it. Tokens look like ``tok_v1_<base64url>``: recognisable in text (``TOKEN_PATTERN``) and
reversible by :meth:`Masker.detokenize` for callers whose Vault policy grants ``decrypt``.

Examples:
    >>> from guardflow.pii.policy import PIIPolicy
    >>> masker = Masker(PIIPolicy(mask_keep_last=4))
    >>> masker.apply(Action.MASK, EntityType.CREDIT_CARD, ["4111111111111111"])
    ['************1111']
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from guardflow.errors import PIIPolicyError, TransitError
from guardflow.pii.entities import EntityType
from guardflow.pii.policy import Action, PIIPolicy

if TYPE_CHECKING:
    from guardflow.secrets.client import VaultClient
    from guardflow.secrets.transit import TransitKey

__all__ = ["TOKEN_PATTERN", "Masker", "from_token", "to_token"]

#: A token made by ``tokenize``, as it appears in masked text.
TOKEN_PATTERN = re.compile(r"tok_v(\d+)_([A-Za-z0-9_\-]+)")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_VAULT_CIPHERTEXT = re.compile(r"^vault:v(\d+):([A-Za-z0-9+/]+=*)$")


def to_token(ciphertext: str) -> str:
    """Turn a transit ciphertext (``vault:v1:<base64>``) into a ``tok_v1_<base64url>`` token."""
    match = _VAULT_CIPHERTEXT.match(ciphertext)
    if match is None:
        raise TransitError("transit returned a ciphertext of an unknown form", key="(pii)")
    body = match.group(2).rstrip("=").replace("+", "-").replace("/", "_")
    return f"tok_v{match.group(1)}_{body}"


def from_token(token: str) -> str:
    """Turn a ``tok_v1_...`` token back into the transit ciphertext it encodes.

    Raises:
        PIIPolicyError: ``token`` is not a token (the message does not quote it).
    """
    match = TOKEN_PATTERN.fullmatch(token)
    if match is None:
        raise PIIPolicyError("a value to detokenize is not a tok_v<N>_... token")
    body = match.group(2).replace("-", "+").replace("_", "/")
    return f"vault:v{match.group(1)}:{body}{'=' * (-len(body) % 4)}"


class Masker:
    """Applies a policy's actions; holds the resolved hash key and the transit key handle.

    Args:
        policy: The policy (``mask_keep_last``, ``hash_key``/``hash_key_ref``, transit key).
        vault: A Vault client, needed for ``tokenize`` and for ``hash_key_ref``.
    """

    def __init__(self, policy: PIIPolicy, vault: VaultClient | None = None) -> None:
        self.policy = policy
        self.vault = vault
        self._hash_key: bytes | None = None
        self._transit: TransitKey | None = None

    # --- keys ------------------------------------------------------------------------------

    def _need_vault(self, what: str) -> VaultClient:
        if self.vault is None:
            raise PIIPolicyError(
                f"the PII policy uses {what}, which needs Vault: pass vault=VaultClient(...)"
            )
        return self.vault

    def hash_key(self) -> bytes:
        """The HMAC key: ``hash_key``, or the value ``hash_key_ref`` names in Vault.

        Raises:
            PIIPolicyError: No key is configured, the ref names a whole secret, or no Vault.
            SecretsError: Vault refused or failed the read.
        """
        if self._hash_key is not None:
            return self._hash_key
        policy = self.policy
        if policy.hash_key is not None:
            self._hash_key = policy.hash_key.get_secret_value().encode("utf-8")
        elif policy.hash_key_ref:
            from guardflow.secrets.values import SecretValue

            value = self._need_vault("hash_key_ref").get(policy.hash_key_ref)
            if not isinstance(value, SecretValue):
                raise PIIPolicyError("hash_key_ref must name one key: vault://MOUNT/PATH#KEY")
            self._hash_key = value.reveal().encode("utf-8")
        else:
            raise PIIPolicyError("the hash action needs hash_key or hash_key_ref in the policy")
        return self._hash_key

    def transit(self) -> TransitKey:
        """The policy's convergent transit key, created if missing."""
        if self._transit is None:
            key = self._need_vault("tokenize").transit(
                self.policy.transit_key, mount=self.policy.transit_mount, convergent=True
            )
            key.ensure_key()
            self._transit = key
        return self._transit

    # --- actions ---------------------------------------------------------------------------

    def apply(self, action: Action, entity: EntityType | None, values: Sequence[str]) -> list[str]:
        """Return the masked form of each of ``values`` (same order).

        Args:
            action: The action.
            entity: The values' type (for ``replace``; ``None`` gives ``<PII>``).
            values: The values found (never empty strings for tokenize; they are kept).

        Returns:
            One output per value.
        """
        if not values:
            return []
        if action is Action.KEEP:
            return list(values)
        if action is Action.REDACT:
            return ["" for _ in values]
        if action is Action.REPLACE:
            label = f"<{entity.value if entity is not None else 'PII'}>"
            return [label for _ in values]
        if action is Action.MASK:
            keep = self.policy.mask_keep_last
            return [_mask(v, keep) for v in values]
        if action is Action.HASH:
            key = self.hash_key()
            cache: dict[str, str] = {}
            out = []
            for v in values:
                digest = cache.get(v)
                if digest is None:
                    data = v.encode("utf-8", "surrogatepass")  # a lone surrogate hashes too
                    digest = hmac.new(key, data, hashlib.sha256).hexdigest()
                    cache[v] = digest
                out.append(digest)
            return out
        if action is Action.TOKENIZE:
            return self._tokenize(values)
        raise PIIPolicyError(f"unknown PII action {action!r}")  # pragma: no cover

    def is_output(self, action: Action, entity: EntityType | None, value: str) -> bool:
        """Whether ``value`` has the form ``action`` gives its outputs (an already masked value).

        A scan of masked output uses this on columns known to hold one type: ``<TYPE>``, a
        run of ``*`` with at most ``mask_keep_last`` characters after it, 64 hex digits, a
        ``tok_v<N>_`` token. The empty string (``redact``) is never counted anyway.
        """
        if action is Action.REPLACE:
            return value == f"<{entity.value if entity is not None else 'PII'}>"
        if action is Action.MASK:
            keep = max(self.policy.mask_keep_last, 0)
            head = value[: len(value) - keep] if len(value) > keep else value
            return bool(head) and head == "*" * len(head)
        if action is Action.HASH:
            return _HEX64.fullmatch(value) is not None
        if action is Action.TOKENIZE:
            return TOKEN_PATTERN.fullmatch(value) is not None
        return False

    def _tokenize(self, values: Sequence[str]) -> list[str]:
        present = [v for v in values if v]
        if not present:
            return list(values)
        ciphertexts = self.transit().encrypt_many(present)
        tokens = iter(to_token(c) for c in ciphertexts)
        return [next(tokens) if v else v for v in values]

    def detokenize(self, tokens: Sequence[str]) -> list[str]:
        """Decrypt ``tok_...`` tokens back to their values (Vault ``decrypt`` permission needed).

        Raises:
            PIIPolicyError: A value is not a token.
            VaultPermissionError: The caller's Vault policy does not grant decrypt.
            TransitError: A token is from another key or was altered.
        """
        if not tokens:
            return []
        ciphertexts = [from_token(t) for t in tokens]
        key = self._need_vault("detokenize").transit(
            self.policy.transit_key, mount=self.policy.transit_mount, convergent=True
        )
        return key.decrypt_many(ciphertexts)


def _mask(value: str, keep: int) -> str:
    if keep <= 0:
        return "*" * len(value)
    if len(value) <= keep:
        # Too short to show anything without showing it all.
        return "*" * len(value)
    return "*" * (len(value) - keep) + value[-keep:]
