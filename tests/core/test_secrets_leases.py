"""Leased secrets, lease renewal and revocation, token renewal and re-login, on a real OpenBao.

Dynamic credentials need a system to create them in. OpenBao's RabbitMQ engine talks to the
RabbitMQ management HTTP API, which a tiny local server stands in for here (the only fake: it
accepts user creation and deletion and records them). Leases, renewals and revocations are
OpenBao's own. PKI certificates (``generate_lease``) are a second, fully real, leased secret.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from guardflow.errors import VaultAuthError, VaultPermissionError
from guardflow.secrets import AppRoleAuth, SecretCache, TokenAuth, VaultClient
from guardflow.testing.vault_server import VaultServer, assert_secret_absent


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    """Poll ``condition`` until true (renewals run on the server's clock; nothing to await)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


class FakeRabbitManagement:
    """Stands in for RabbitMQ's management API: accepts every call and records it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        calls = self.calls

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                calls.append((self.command, self.path))
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_PUT = do_DELETE = do_POST = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def deleted(self, username: str) -> bool:
        return ("DELETE", f"/api/users/{username}") in self.calls

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def rabbit(vault_server: VaultServer) -> Iterator[FakeRabbitManagement]:
    fake = FakeRabbitManagement()
    vault_server.request("POST", "sys/mounts/rabbitmq", json={"type": "rabbitmq"})
    vault_server.request(
        "POST",
        "rabbitmq/config/connection",
        json={
            "connection_uri": fake.url,
            "username": "admin",
            "password": "admin",
            "verify_connection": False,
        },
    )
    vault_server.request("POST", "rabbitmq/config/lease", json={"ttl": 3, "max_ttl": 600})
    vault_server.request(
        "POST",
        "rabbitmq/roles/app",
        json={"vhosts": json.dumps({"/": {"configure": ".*", "write": ".*", "read": ".*"}})},
    )
    yield fake
    fake.close()


@pytest.fixture
def vault(vault_config: Any) -> Iterator[VaultClient]:
    config = vault_config.model_copy(update={"renew_fraction": 0.5})
    with VaultClient(config, cache=SecretCache()) as client:
        yield client


def _server_ttl(vault_server: VaultServer, lease_id: str) -> int:
    body = vault_server.request("PUT", "sys/leases/lookup", json={"lease_id": lease_id})
    return int(body["data"]["ttl"])


def test_read_lease_returns_masked_credentials_with_their_lease(
    vault: VaultClient,
    rabbit: FakeRabbitManagement,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    secret = vault.read_lease("rabbitmq/creds/app")
    print(secret, secret["password"])
    assert sorted(secret) == ["password", "username"]
    assert secret.lease is not None
    assert secret.lease.lease_id.startswith("rabbitmq/creds/app/")
    assert secret.lease.renewable
    assert secret.lease.duration == 3
    assert secret.lease in vault.leases()
    password = secret["password"].reveal()
    assert_secret_absent(password, caplog.text, capsys.readouterr().out, repr(secret.lease))


def test_lease_is_renewed_in_the_background_before_it_expires(
    vault_server: VaultServer, vault: VaultClient, rabbit: FakeRabbitManagement
) -> None:
    lease = vault.read_lease("rabbitmq/creds/app").lease
    assert lease is not None
    issued = time.monotonic()
    wait_for(lambda: lease.renewals >= 3)
    assert time.monotonic() - issued > 3  # outlived its first 3-second lease...
    assert _server_ttl(vault_server, lease.lease_id) > 0  # ...and the server still holds it


def test_renew_extends_the_lease_now(
    vault_server: VaultServer, vault: VaultClient, rabbit: FakeRabbitManagement
) -> None:
    lease = vault.read_lease("rabbitmq/creds/app").lease
    assert lease is not None
    vault.renew(lease, increment=120)
    assert lease.duration == 120
    assert _server_ttl(vault_server, lease.lease_id) > 60


def test_revoke_deletes_the_credentials_and_stops_renewal(
    vault_server: VaultServer, vault: VaultClient, rabbit: FakeRabbitManagement
) -> None:
    secret = vault.read_lease("rabbitmq/creds/app")
    assert secret.lease is not None
    vault.revoke(secret.lease)
    assert rabbit.deleted(secret["username"].reveal())
    assert secret.lease not in vault.leases()
    assert f"lease:{secret.lease.lease_id}" not in vault._conn.renewer.scheduled()


def test_close_revokes_leases_marked_revoke_on_close(
    vault_config: Any, rabbit: FakeRabbitManagement
) -> None:
    with VaultClient(vault_config, cache=SecretCache()) as vault:
        kept = vault.read_lease("rabbitmq/creds/app")
        dropped = vault.read_lease("rabbitmq/creds/app", revoke_on_close=True)
    assert rabbit.deleted(dropped["username"].reveal())
    assert not rabbit.deleted(kept["username"].reveal())


def test_pki_certificate_lease_is_tracked_and_revocable(
    vault_server: VaultServer, vault: VaultClient
) -> None:
    if "pki/" not in vault_server.request("GET", "sys/mounts")["data"]:
        vault_server.request("POST", "sys/mounts/pki", json={"type": "pki"})
        vault_server.request(
            "POST", "pki/root/generate/internal", json={"common_name": "example.com"}
        )
        vault_server.request(
            "POST",
            "pki/roles/web",
            json={
                "allowed_domains": "example.com",
                "allow_subdomains": True,
                "generate_lease": True,
            },
        )
    secret = vault.read_lease("pki/issue/web", data={"common_name": "a.example.com", "ttl": "1h"})
    assert secret.lease is not None
    assert not secret.lease.renewable  # certificates cannot be extended
    assert "certificate" in secret
    assert not any(job.startswith("lease:") for job in vault._conn.renewer.scheduled())
    vault.revoke(secret.lease)
    serial = secret["serial_number"].reveal()
    cert = vault_server.request("GET", f"pki/cert/{serial}")
    assert cert["data"]["revocation_time"] > 0


def test_token_is_renewed_in_the_background(vault_server: VaultServer) -> None:
    token = vault_server.create_token(["root"], ttl=3)
    config = vault_server.config(TokenAuth.model_validate({"token": token}), renew_fraction=0.5)
    with VaultClient(config, cache=SecretCache()) as vault:
        vault.write("leases/token", {"k": "v"})
        wait_for(lambda: vault.token_renewals >= 3)
        assert vault.read_key("leases/token", "k", use_cache=False).reveal() == "v"
    info = vault_server.request("GET", "auth/token/lookup-self", token=token)
    assert info["data"]["ttl"] > 0


def test_approle_token_is_renewed_without_logging_in_again(vault_server: VaultServer) -> None:
    role_id, secret_id = vault_server.create_approle(
        "short", ["admin"], token_ttl="3s", token_max_ttl="10m"
    )
    auth = AppRoleAuth.model_validate({"role_id": role_id, "secret_id": secret_id})
    with VaultClient(vault_server.config(auth, renew_fraction=0.5), cache=SecretCache()) as vault:
        vault.write("leases/approle", {"k": "v"})
        wait_for(lambda: vault.token_renewals >= 3)
        assert vault.read_key("leases/approle", "k", use_cache=False).reveal() == "v"
        assert vault.logins == 1


def test_revoked_token_leads_to_one_new_login(vault_server: VaultServer) -> None:
    role_id, secret_id = vault_server.create_approle("relogin", ["admin"])
    auth = AppRoleAuth.model_validate({"role_id": role_id, "secret_id": secret_id})
    with VaultClient(vault_server.config(auth), cache=SecretCache()) as vault:
        vault.write("leases/relogin", {"k": "v"})
        vault_server.request("POST", "auth/token/revoke", json={"token": vault._conn.token()})
        assert vault.read_key("leases/relogin", "k", use_cache=False).reveal() == "v"
        assert vault.logins == 2


def test_denied_path_logs_in_again_once_then_raises_permission_error(
    vault_server: VaultServer, caplog: pytest.LogCaptureFixture
) -> None:
    planted = f"planted-{secrets.token_hex(8)}"
    vault_server.request("POST", "secret/data/leases/denied", json={"data": {"k": planted}})
    vault_server.write_policy(
        "nothing-here", 'path "secret/data/elsewhere" { capabilities = ["read"] }'
    )
    role_id, secret_id = vault_server.create_approle("denied", ["nothing-here"])
    auth = AppRoleAuth.model_validate({"role_id": role_id, "secret_id": secret_id})
    with VaultClient(vault_server.config(auth, kv_version=2), cache=SecretCache()) as vault:
        with pytest.raises(VaultPermissionError, match="secret/data/leases/denied") as info:
            vault.read("leases/denied")
        assert vault.logins == 2
    assert info.value.path == "secret/data/leases/denied"
    assert_secret_absent(planted, str(info.value), caplog.text)
    assert_secret_absent(secret_id, str(info.value), caplog.text)


def test_revoked_token_with_token_auth_is_an_auth_error(vault_server: VaultServer) -> None:
    token = vault_server.create_token(["root"])
    config = vault_server.config(TokenAuth.model_validate({"token": token}), kv_version=2)
    with VaultClient(config, cache=SecretCache()) as vault:
        vault_server.request("POST", "auth/token/revoke", json={"token": token})
        with pytest.raises(VaultAuthError, match="set a fresh VAULT_TOKEN") as info:
            vault.read("leases/anything")
    assert_secret_absent(token, str(info.value))
