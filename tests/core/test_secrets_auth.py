"""Every auth method OpenBao can serve here, logged in through VaultClient against the real server.

Kubernetes auth needs a Kubernetes API to answer TokenReview: that one part is a tiny local HTTP
server (the only fake in these tests), because no Kubernetes cluster runs here. OpenBao itself,
its kubernetes auth plugin and the login request are real. JWTs are signed with a locally
generated RSA key that OpenBao trusts through ``jwt_validation_pubkeys``.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from guardflow.errors import SecretNotFoundError, VaultAuthError
from guardflow.secrets import (
    AppRoleAuth,
    JWTAuth,
    KubernetesAuth,
    SecretCache,
    UserpassAuth,
    VaultClient,
)
from guardflow.testing.vault_server import VaultServer, assert_secret_absent

READ_ALL = 'path "secret/data/*" { capabilities = ["read"] }'


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def sign_jwt(key: rsa.RSAPrivateKey, claims: dict[str, Any]) -> str:
    """An RS256 JWT built by hand with cryptography (PyJWT is not in every environment)."""
    now = int(time.time())
    claims = {"iat": now, "nbf": now - 5, "exp": now + 600, **claims}
    header = _b64url(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    payload = _b64url(json.dumps(claims).encode())
    signature = key.sign(f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{header}.{payload}.{_b64url(signature)}"


@pytest.fixture(scope="module")
def planted_secret(vault_server: VaultServer) -> str:
    value = f"planted-{secrets.token_hex(8)}"
    vault_server.write_policy("read-all", READ_ALL)
    vault_server.request("POST", "secret/data/auth/app", json={"data": {"password": value}})
    return value


def _read(config: Any) -> str:
    with VaultClient(config, cache=SecretCache()) as vault:
        return vault.read_key("auth/app", "password").reveal()


def test_approle_login_reads_the_secret(vault_server: VaultServer, planted_secret: str) -> None:
    role_id, secret_id = vault_server.create_approle("app", ["read-all"])
    auth = AppRoleAuth.model_validate({"role_id": role_id, "secret_id": secret_id})
    assert _read(vault_server.config(auth)) == planted_secret


def test_approle_bad_secret_id_is_an_auth_error(
    vault_server: VaultServer, planted_secret: str, caplog: pytest.LogCaptureFixture
) -> None:
    role_id, _ = vault_server.create_approle("app", ["read-all"])
    bad = f"bad-{secrets.token_hex(8)}"
    auth = AppRoleAuth.model_validate({"role_id": role_id, "secret_id": bad})
    with pytest.raises(VaultAuthError, match="approle login at auth/approle failed") as info:
        _read(vault_server.config(auth))
    assert info.value.method == "approle"
    assert_secret_absent(bad, str(info.value), caplog.text)
    assert_secret_absent(planted_secret, str(info.value), caplog.text)


def test_userpass_login_reads_the_secret(vault_server: VaultServer, planted_secret: str) -> None:
    password = secrets.token_hex(8)
    vault_server.create_user("alice", password, ["read-all"])
    auth = UserpassAuth.model_validate({"username": "alice", "password": password})
    assert _read(vault_server.config(auth)) == planted_secret


def test_userpass_wrong_password_is_an_auth_error(
    vault_server: VaultServer, planted_secret: str
) -> None:
    vault_server.create_user("bob", secrets.token_hex(8), ["read-all"])
    wrong = secrets.token_hex(8)
    auth = UserpassAuth.model_validate({"username": "bob", "password": wrong})
    with pytest.raises(VaultAuthError, match="invalid username or password") as info:
        _read(vault_server.config(auth))
    assert_secret_absent(wrong, str(info.value))


@pytest.fixture(scope="module")
def jwt_auth_mount(vault_server: VaultServer, signing_key: rsa.RSAPrivateKey) -> str:
    public = signing_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    vault_server.request("POST", "sys/auth/jwt", json={"type": "jwt"})
    vault_server.request(
        "POST", "auth/jwt/config", json={"jwt_validation_pubkeys": [public.decode()]}
    )
    vault_server.request(
        "POST",
        "auth/jwt/role/ci",
        json={
            "role_type": "jwt",
            "user_claim": "sub",
            "bound_audiences": ["guardflow"],
            "token_policies": ["read-all"],
        },
    )
    return "jwt"


def test_jwt_login_reads_the_secret(
    vault_server: VaultServer,
    jwt_auth_mount: str,
    signing_key: rsa.RSAPrivateKey,
    planted_secret: str,
) -> None:
    token = sign_jwt(signing_key, {"sub": "ci-pipeline", "aud": "guardflow"})
    auth = JWTAuth.model_validate({"role": "ci", "jwt": token})
    assert _read(vault_server.config(auth)) == planted_secret


def test_jwt_login_reads_the_token_from_a_file(
    vault_server: VaultServer,
    jwt_auth_mount: str,
    signing_key: rsa.RSAPrivateKey,
    planted_secret: str,
    tmp_path: Path,
) -> None:
    token_file = tmp_path / "jwt"
    token_file.write_text(sign_jwt(signing_key, {"sub": "ci", "aud": "guardflow"}) + "\n")
    auth = JWTAuth.model_validate({"role": "ci", "jwt_path": str(token_file)})
    assert _read(vault_server.config(auth)) == planted_secret


def test_jwt_signed_by_another_key_is_refused(
    vault_server: VaultServer, jwt_auth_mount: str, planted_secret: str
) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = sign_jwt(stranger, {"sub": "ci", "aud": "guardflow"})
    auth = JWTAuth.model_validate({"role": "ci", "jwt": token})
    with pytest.raises(VaultAuthError, match="jwt login at auth/jwt failed") as info:
        _read(vault_server.config(auth))
    assert_secret_absent(token, str(info.value))


class FakeTokenReview:
    """A stand-in for the Kubernetes API's TokenReview endpoint (no cluster runs here).

    Answers every review as authenticated for ``system:serviceaccount:<ns>:<name>`` and records
    the requests OpenBao sent.
    """

    def __init__(self, namespace: str = "default", name: str = "app") -> None:
        self.reviews: list[dict[str, Any]] = []
        username = f"system:serviceaccount:{namespace}:{name}"
        reviews = self.reviews

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                reviews.append({"path": self.path, "body": body})
                answer = {
                    "apiVersion": "authentication.k8s.io/v1",
                    "kind": "TokenReview",
                    "status": {
                        "authenticated": True,
                        "user": {"username": username, "uid": "uid-1", "groups": []},
                        "audiences": body["spec"].get("audiences") or [],
                    },
                }
                out = json.dumps(answer).encode()
                self.send_response(201)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _self_signed_ca(key: rsa.RSAPrivateKey) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-kubernetes")])
    now = datetime.now(timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture(scope="module")
def token_review(
    vault_server: VaultServer, signing_key: rsa.RSAPrivateKey
) -> Iterator[FakeTokenReview]:
    review = FakeTokenReview()
    vault_server.request("POST", "sys/auth/kubernetes", json={"type": "kubernetes"})
    vault_server.request(
        "POST",
        "auth/kubernetes/config",
        json={
            "kubernetes_host": review.url,
            "disable_local_ca_jwt": True,
            "kubernetes_ca_cert": _self_signed_ca(signing_key),  # required; unused over http
        },
    )
    vault_server.request(
        "POST",
        "auth/kubernetes/role/app",
        json={
            "bound_service_account_names": ["app"],
            "bound_service_account_namespaces": ["default"],
            "audience": "vault",
            "token_policies": ["read-all"],
        },
    )
    yield review
    review.close()


def _service_account_token(key: rsa.RSAPrivateKey, audience: str, tmp_path: Path) -> Path:
    claims = {
        "iss": "https://kubernetes.default.svc",
        "aud": [audience],
        "sub": "system:serviceaccount:default:app",
        "kubernetes.io": {
            "namespace": "default",
            "serviceaccount": {"name": "app", "uid": "uid-1"},
        },
    }
    path = tmp_path / "token"
    path.write_text(sign_jwt(key, claims))
    return path


def test_kubernetes_login_sends_the_token_for_review_with_the_audience(
    vault_server: VaultServer,
    token_review: FakeTokenReview,
    signing_key: rsa.RSAPrivateKey,
    planted_secret: str,
    tmp_path: Path,
) -> None:
    jwt_path = _service_account_token(signing_key, "vault", tmp_path)
    auth = KubernetesAuth.model_validate(
        {"role": "app", "jwt_path": str(jwt_path), "audience": "vault"}
    )
    before = len(token_review.reviews)
    assert _read(vault_server.config(auth)) == planted_secret
    review = token_review.reviews[before]
    assert review["path"] == "/apis/authentication.k8s.io/v1/tokenreviews"
    assert review["body"]["spec"]["token"] == jwt_path.read_text()
    assert review["body"]["spec"]["audiences"] == ["vault"]


def test_kubernetes_token_for_another_audience_fails_before_login(
    vault_server: VaultServer,
    token_review: FakeTokenReview,
    signing_key: rsa.RSAPrivateKey,
    tmp_path: Path,
) -> None:
    jwt_path = _service_account_token(signing_key, "https://kubernetes.default.svc", tmp_path)
    auth = KubernetesAuth.model_validate(
        {"role": "app", "jwt_path": str(jwt_path), "audience": "vault"}
    )
    before = len(token_review.reviews)
    with pytest.raises(VaultAuthError, match="expects 'vault'") as info:
        _read(vault_server.config(auth))
    assert len(token_review.reviews) == before  # refused locally: no login request was sent
    assert_secret_absent(jwt_path.read_text(), str(info.value))


def test_kubernetes_audience_mismatch_is_refused_by_the_server_too(
    vault_server: VaultServer,
    token_review: FakeTokenReview,
    signing_key: rsa.RSAPrivateKey,
    tmp_path: Path,
) -> None:
    jwt_path = _service_account_token(signing_key, "other", tmp_path)
    auth = KubernetesAuth.model_validate({"role": "app", "jwt_path": str(jwt_path)})
    with pytest.raises(VaultAuthError, match="audience") as info:
        _read(vault_server.config(auth))
    assert info.value.method == "kubernetes"


def test_kubernetes_missing_token_file_is_an_auth_error(
    vault_server: VaultServer, tmp_path: Path
) -> None:
    auth = KubernetesAuth.model_validate({"role": "app", "jwt_path": str(tmp_path / "nope")})
    with pytest.raises(VaultAuthError, match="cannot read the kubernetes login token"):
        _read(vault_server.config(auth))


def test_namespace_scopes_every_request(vault_server: VaultServer, vault_config: Any) -> None:
    vault_server.request("POST", "sys/namespaces/team-a", json={})
    headers_token = vault_server.root_token
    with VaultClient(vault_server.config(namespace="team-a"), cache=SecretCache()) as vault:
        vault.hvac.sys.enable_secrets_engine("kv", path="secret", options={"version": "2"})
        vault.write("ns/app", {"k": "in-namespace"})
        assert vault.read_key("ns/app", "k").reveal() == "in-namespace"
    body = vault_server.request("GET", "team-a/secret/data/ns/app", token=headers_token)
    assert body["data"]["data"] == {"k": "in-namespace"}
    with (
        VaultClient(vault_config, cache=SecretCache()) as root_ns,
        pytest.raises(SecretNotFoundError, match="ns/app"),
    ):
        root_ns.read("ns/app")
