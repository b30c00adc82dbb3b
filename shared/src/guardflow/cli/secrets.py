"""``guardflow secrets get``: read a secret from Vault or OpenBao, masked unless revealed.

Address and credentials come from the standard variables (``VAULT_ADDR``, ``VAULT_TOKEN`` or
``VAULT_ROLE_ID`` + ``VAULT_SECRET_ID``, ``VAULT_NAMESPACE``, ``VAULT_CACERT``), never from the
command line, where they would end up in shell history and process listings.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from guardflow.errors import ConfigurationError

if TYPE_CHECKING:
    from guardflow.secrets import Secret, SecretRef, SecretValue

__all__ = ["register", "run_get"]


def register(sub: Any) -> None:
    """Add the ``secrets`` subcommand (and its ``get`` action) to the CLI's subparsers."""
    secrets: argparse.ArgumentParser = sub.add_parser(
        "secrets",
        help="read secrets from Vault or OpenBao",
        description="Read secrets from HashiCorp Vault or OpenBao.",
    )
    actions = secrets.add_subparsers(dest="secrets_command", required=True, metavar="ACTION")
    p: argparse.ArgumentParser = actions.add_parser(
        "get",
        help="read a KV secret, or one key of it",
        description=(
            "Read the KV secret at PATH (or one key of it with --key) and print it masked; "
            "--reveal prints the value itself. PATH is relative to the mount (--mount, default "
            "'secret'), or a vault:// reference such as vault://secret/ml/inference#token. "
            "The server and credentials come from VAULT_ADDR and VAULT_TOKEN (or VAULT_ROLE_ID "
            "and VAULT_SECRET_ID for AppRole), plus VAULT_NAMESPACE and VAULT_CACERT."
        ),
    )
    p.add_argument("path", metavar="PATH", help="secret path under the mount, or a vault:// ref")
    p.add_argument("--key", help="print only this key of the secret")
    p.add_argument("--mount", help="KV mount point (default 'secret'; never part of PATH)")
    p.add_argument(
        "--kv-version",
        type=int,
        choices=[1, 2],
        help="KV engine version (default: detected from the mount, else 2)",
    )
    p.add_argument("--version", type=int, help="secret version to read (KV v2 only)")
    p.add_argument("--reveal", action="store_true", help="print values in clear (default masked)")
    p.add_argument(
        "--format", choices=["text", "json"], default="text", help="output format (text)"
    )
    p.add_argument(
        "--verbose", "-v", action="store_true", default=argparse.SUPPRESS, help="log details"
    )
    p.set_defaults(handler=run_get)


def _merge(name: str, from_ref: Any, from_flag: Any) -> Any:
    """One value from the ref or the flag; both given and different is a usage error."""
    if from_flag is None:
        return from_ref
    if from_ref is not None and from_ref != from_flag:
        raise ConfigurationError(
            f"--{name} contradicts the {name} in the vault:// reference; give it once"
        )
    return from_flag


def _ref(args: argparse.Namespace) -> SecretRef:
    from pydantic import ValidationError

    from guardflow.secrets import SecretRef

    given = SecretRef.parse(args.path) if SecretRef.is_ref(args.path) else SecretRef(path="-")
    try:
        return SecretRef(
            mount=_merge("mount", given.mount, args.mount),
            path=given.path if SecretRef.is_ref(args.path) else args.path,
            key=_merge("key", given.key, args.key),
            version=_merge("version", given.version, args.version),
            kv_version=_merge("kv-version", given.kv_version, args.kv_version),
        )
    except ValidationError as exc:
        raise ConfigurationError.from_validation(exc, what="secret reference") from None


def _text(ref: SecretRef, secret: Secret, value: SecretValue | None, reveal: bool) -> str:
    if value is not None:
        return value.reveal() if reveal else str(value)
    width = max((len(k) for k in secret), default=0)
    shown = secret.reveal() if reveal else {k: str(v) for k, v in secret.items()}
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in shown.items())


def _json(ref: SecretRef, secret: Secret, value: SecretValue | None, reveal: bool) -> str:
    out: dict[str, Any] = {"mount": secret.mount, "path": secret.path, "version": secret.version}
    if value is not None:
        out["key"] = ref.key
        out["value"] = value.reveal() if reveal else str(value)
    else:
        out["data"] = secret.reveal() if reveal else {k: str(v) for k, v in secret.items()}
    return json.dumps(out, indent=2)


def run_get(args: argparse.Namespace) -> int:
    """Execute ``guardflow secrets get``; print the secret (masked unless ``--reveal``) on stdout.

    Args:
        args: The parsed arguments of ``guardflow secrets get``.

    Returns:
        0; failures raise the errors of :mod:`guardflow.errors`, which the CLI maps to exit codes
        (1 not found, 2 configuration, 3 unreachable or sealed, 4 denied).

    Raises:
        ConfigurationError: A variable is missing or the arguments contradict each other.
        SecretsError: Vault refused or failed the read.
    """
    from guardflow.secrets import VaultClient, VaultConfig

    ref = _ref(args)
    config = VaultConfig.from_env()
    with VaultClient(config) as client:
        secret = client.read(
            ref.path, mount=ref.mount, kv_version=ref.kv_version, version=ref.version
        )
        # read_key is served from the cache the read above filled, and raises the core's own
        # SecretKeyMissingError (naming the keys that exist) when the key is not there.
        value = (
            client.read_key(
                ref.path, ref.key, mount=ref.mount, kv_version=ref.kv_version, version=ref.version
            )
            if ref.key is not None
            else None
        )
    render = _json if args.format == "json" else _text
    sys.stdout.write(render(ref, secret, value, args.reveal) + "\n")
    return 0
