"""`guardflow secrets get` as a user runs it: a real process, real OpenBao, exit codes, masking.

Every test runs the CLI in its own Python process with only the ``VAULT_*`` variables it sets, and
checks that the planted value shows on neither stdout nor stderr unless ``--reveal`` asked for it.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from guardflow.testing.vault_server import VaultServer

MASK = "**********"


@dataclass
class Run:
    """The outcome of one ``guardflow`` process."""

    code: int
    out: str
    err: str


def _cli(*args: str, env: dict[str, str]) -> Run:
    """Run ``python -m guardflow.cli ARGS`` with the given ``VAULT_*`` variables and no others."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    done = subprocess.run(
        [sys.executable, "-m", "guardflow.cli", *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr)


def _env(server: VaultServer, token: str | None = None) -> dict[str, str]:
    return {"VAULT_ADDR": server.url, "VAULT_TOKEN": token or server.root_token}


def _planted() -> str:
    return f"planted-{secrets.token_hex(12)}"


@pytest.fixture
def secret_path(vault_server: VaultServer) -> Iterator[tuple[str, str, str]]:
    """A KV v2 secret ``secret/cli/<random>`` with keys ``token`` and ``user``.

    Yields:
        (path, token value, user value); the secret is deleted afterwards.
    """
    path = f"cli/{secrets.token_hex(6)}"
    token, user = _planted(), _planted()
    kv = vault_server.client().secrets.kv.v2
    kv.create_or_update_secret(
        path=path, secret={"token": token, "user": user}, mount_point="secret"
    )
    yield path, token, user
    kv.delete_metadata_and_all_versions(path=path, mount_point="secret")


def _hidden(run: Run, *values: str) -> bool:
    return not any(v in run.out or v in run.err for v in values)


def test_get_key_prints_mask_by_default(
    vault_server: VaultServer, secret_path: tuple[str, str, str]
) -> None:
    path, token, user = secret_path
    run = _cli("secrets", "get", path, "--key", "token", env=_env(vault_server))
    assert (run.code, run.out) == (0, MASK + "\n"), run.err
    assert _hidden(run, token, user)


def test_get_key_with_reveal_prints_the_value_alone(
    vault_server: VaultServer, secret_path: tuple[str, str, str]
) -> None:
    path, token, user = secret_path
    run = _cli("secrets", "get", path, "--key", "token", "--reveal", env=_env(vault_server))
    assert (run.code, run.out) == (0, token + "\n"), run.err
    assert user not in run.out and token not in run.err


def test_get_whole_secret_lists_key_names_with_masked_values(
    vault_server: VaultServer, secret_path: tuple[str, str, str]
) -> None:
    path, token, user = secret_path
    run = _cli("secrets", "get", path, env=_env(vault_server))
    assert run.code == 0, run.err
    lines = sorted(line.split() for line in run.out.splitlines())
    assert lines == [["token", MASK], ["user", MASK]]
    assert _hidden(run, token, user)


def test_get_whole_secret_as_json_with_reveal(
    vault_server: VaultServer, secret_path: tuple[str, str, str]
) -> None:
    path, token, user = secret_path
    run = _cli("secrets", "get", path, "--format", "json", "--reveal", env=_env(vault_server))
    assert run.code == 0, run.err
    out = json.loads(run.out)
    assert out["data"] == {"token": token, "user": user}
    assert (out["mount"], out["path"], out["version"]) == ("secret", path, 1)


def test_get_json_masks_values_without_reveal(
    vault_server: VaultServer, secret_path: tuple[str, str, str]
) -> None:
    path, token, user = secret_path
    run = _cli("secrets", "get", path, "--key", "user", "--format", "json", env=_env(vault_server))
    assert run.code == 0, run.err
    assert json.loads(run.out)["value"] == MASK
    assert _hidden(run, token, user)


def test_get_accepts_a_vault_ref_as_path(
    vault_server: VaultServer, secret_path: tuple[str, str, str]
) -> None:
    path, token, _user = secret_path
    ref = f"vault://secret/{path}#token"
    run = _cli("secrets", "get", ref, "--reveal", env=_env(vault_server))
    assert (run.code, run.out) == (0, token + "\n"), run.err


def test_get_reads_an_older_version(vault_server: VaultServer) -> None:
    path, first, second = f"cli/{secrets.token_hex(6)}", _planted(), _planted()
    kv = vault_server.client().secrets.kv.v2
    kv.create_or_update_secret(path=path, secret={"k": first}, mount_point="secret")
    kv.create_or_update_secret(path=path, secret={"k": second}, mount_point="secret")
    run = _cli(
        "secrets", "get", path, "--key", "k", "--version", "1", "--reveal", env=_env(vault_server)
    )
    assert (run.code, run.out) == (0, first + "\n"), run.err
    assert second not in run.out + run.err


def test_get_reads_kv_v1_with_mount_given_apart_from_path(vault_server: VaultServer) -> None:
    path, value = f"cli/{secrets.token_hex(6)}", _planted()
    vault_server.client().secrets.kv.v1.create_or_update_secret(
        path=path, secret={"k": value}, mount_point="kv1"
    )
    run = _cli(
        "secrets",
        "get",
        path,
        "--mount",
        "kv1",
        "--kv-version",
        "1",
        "--key",
        "k",
        "--reveal",
        env=_env(vault_server),
    )
    assert (run.code, run.out) == (0, value + "\n"), run.err


def test_get_logs_in_with_approle_from_env(
    vault_server: VaultServer, secret_path: tuple[str, str, str]
) -> None:
    path, token, _user = secret_path
    vault_server.write_policy("cli-read", 'path "secret/data/cli/*" { capabilities = ["read"] }')
    role_id, secret_id = vault_server.create_approle("cli-approle", ["cli-read"])
    env = {"VAULT_ADDR": vault_server.url, "VAULT_ROLE_ID": role_id, "VAULT_SECRET_ID": secret_id}
    run = _cli("secrets", "get", path, "--key", "token", "--reveal", env=env)
    assert (run.code, run.out) == (0, token + "\n"), run.err
    assert secret_id not in run.err


def test_missing_path_exits_1_naming_path(vault_server: VaultServer) -> None:
    run = _cli("secrets", "get", "cli/does-not-exist", env=_env(vault_server))
    assert run.code == 1
    assert run.err.startswith("error: ") and "cli/does-not-exist" in run.err
    assert run.out == ""


def test_missing_key_exits_1_naming_the_keys_that_exist(
    vault_server: VaultServer, secret_path: tuple[str, str, str]
) -> None:
    path, token, user = secret_path
    run = _cli("secrets", "get", path, "--key", "nope", "--reveal", env=_env(vault_server))
    assert run.code == 1
    assert "nope" in run.err and "token" in run.err and "user" in run.err
    assert run.out == ""
    assert _hidden(run, token, user)


def test_engine_not_mounted_exits_1_naming_mount(vault_server: VaultServer) -> None:
    run = _cli("secrets", "get", "x", "--mount", "no-such-mount", env=_env(vault_server))
    assert run.code == 1
    assert "no-such-mount" in run.err
    assert run.out == ""


def test_missing_vault_addr_exits_2_naming_the_variable() -> None:
    run = _cli("secrets", "get", "x", env={"VAULT_TOKEN": "t"})
    assert run.code == 2
    assert "VAULT_ADDR" in run.err


def test_contradicting_ref_and_flag_exits_2() -> None:
    env = {"VAULT_ADDR": "http://127.0.0.1:9", "VAULT_TOKEN": "t"}
    run = _cli("secrets", "get", "vault://secret/x#a", "--key", "b", env=env)
    assert run.code == 2
    assert "--key" in run.err


def test_closed_port_exits_3_naming_the_address() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    token = _planted()
    run = _cli("secrets", "get", "x", env={"VAULT_ADDR": url, "VAULT_TOKEN": token})
    assert run.code == 3
    assert url in run.err
    assert token not in run.err


def test_sealed_server_exits_3_and_says_to_unseal(
    vault_server: VaultServer, secret_path: tuple[str, str, str]
) -> None:
    path, token, user = secret_path
    vault_server.seal()
    try:
        run = _cli("secrets", "get", path, env=_env(vault_server))
    finally:
        vault_server.unseal()
    assert run.code == 3
    assert "unseal" in run.err
    assert _hidden(run, token, user)


def test_bad_token_exits_4(vault_server: VaultServer, secret_path: tuple[str, str, str]) -> None:
    path, token, user = secret_path
    bad = _planted()
    run = _cli("secrets", "get", path, env=_env(vault_server, token=bad))
    assert run.code == 4
    assert _hidden(run, token, user, bad)


def test_denied_by_policy_exits_4_naming_the_path(
    vault_server: VaultServer, secret_path: tuple[str, str, str]
) -> None:
    path, token, user = secret_path
    vault_server.write_policy(
        "cli-elsewhere", 'path "secret/data/elsewhere/*" { capabilities = ["read"] }'
    )
    limited = vault_server.create_token(["cli-elsewhere"])
    run = _cli("secrets", "get", path, "--key", "token", env=_env(vault_server, token=limited))
    assert run.code == 4
    assert path in run.err
    assert _hidden(run, token, user, limited)
