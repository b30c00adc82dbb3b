"""Tables, column types and engines of the gate store (SQLAlchemy 2 Core, no ORM).

Kept apart from :mod:`guardflow.gates.store` so the store reads as the gate semantics only.
Datetimes are stored as naive UTC (``timestamp without time zone`` on PostgreSQL, ISO text on
SQLite) and come back tz-aware UTC; JSON is stored as ``Text`` so every dialect behaves the same.

SQLite: WAL, a 30 s busy timeout, and SQLAlchemy (not the ``sqlite3`` module) emits ``BEGIN``:
``BEGIN IMMEDIATE`` for every read-modify-write so concurrent writers in threads and processes
queue on the database lock instead of failing to upgrade a read lock. PostgreSQL: the store locks
the gate row with ``SELECT ... FOR UPDATE`` (rendered as nothing on SQLite).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from guardflow.errors import ConfigurationError, GateError, MissingExtraError

try:
    import sqlalchemy as sa
    from sqlalchemy import event
    from sqlalchemy.engine import Connection, Dialect, Engine
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingExtraError(module="sqlalchemy", extra="gates") from exc

__all__ = [
    "BUSY_TIMEOUT_S",
    "JSONText",
    "UTCDateTime",
    "default_url",
    "dispose_engine",
    "engine_for",
    "events",
    "gates",
    "items",
    "metadata",
    "notifications",
    "read_tx",
    "safe_url",
    "used_tokens",
    "utc",
    "votes",
    "write_tx",
]

BUSY_TIMEOUT_S = 30.0


def utc(value: datetime | None) -> datetime | None:
    """Return ``value`` as tz-aware UTC; a naive datetime is taken to be UTC already."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A datetime stored as naive UTC and returned tz-aware UTC, on every dialect."""

    impl = sa.DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        aware = utc(value)
        return aware.replace(tzinfo=None) if aware is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return value.replace(tzinfo=timezone.utc) if value is not None else None


def _json_default(value: Any) -> Any:
    from guardflow.tables import json_default

    return json_default(value)


class JSONText(sa.types.TypeDecorator[Any]):
    """JSON kept as ``Text`` (dialect-independent); secrets are written masked, never revealed."""

    impl = sa.Text()
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return json.dumps(value, default=_json_default, sort_keys=True, ensure_ascii=False)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        return None if value is None else json.loads(value)


metadata = sa.MetaData()
_ID = sa.String(255)
_NAME = sa.String(255)

gates = sa.Table(
    "gates",
    metadata,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False, default=""),
    sa.Column("context", JSONText, nullable=False),
    sa.Column("policy", JSONText, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("outcome", _NAME),
    sa.Column("orchestrator", sa.String(32), nullable=False),
    sa.Column("pipeline", _NAME, nullable=False, index=True),
    sa.Column("run_id", _NAME, nullable=False),
    sa.Column("task_id", _NAME, nullable=False),
    sa.Column("map_index", sa.Integer, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False, index=True),
    sa.Column("expires_at", UTCDateTime, index=True),
    sa.Column("resolved_at", UTCDateTime),
    sa.Column("resolution_channel", sa.String(32)),
    sa.Column("escalation_level", sa.Integer, nullable=False),
    sa.Column("external", JSONText, nullable=False),
    sa.Column("item_count", sa.Integer, nullable=False),
    sa.Column("passed_count", sa.Integer, nullable=False),
)

votes = sa.Table(
    "votes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("gate_id", _ID, sa.ForeignKey("gates.id", ondelete="CASCADE"), nullable=False),
    sa.Column("reviewer", _NAME, nullable=False),
    sa.Column("option", _NAME, nullable=False),
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("comment", sa.Text),
    sa.Column("decided_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("gate_id", "reviewer", name="uq_votes_gate_reviewer"),
)

items = sa.Table(
    "items",
    metadata,
    sa.Column("gate_id", _ID, sa.ForeignKey("gates.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("item_id", _NAME, primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("data", JSONText, nullable=False),
    sa.Column("prediction", JSONText),
    sa.Column("score", sa.Float),
    sa.Column("label", JSONText),
    sa.Column("corrected", sa.Boolean, nullable=False, default=False),
    sa.Column("corrected_by", _NAME),
    sa.Column("corrected_at", UTCDateTime),
)

notifications = sa.Table(
    "notifications",
    metadata,
    sa.Column("gate_id", _ID, sa.ForeignKey("gates.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("key", _NAME, primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

used_tokens = sa.Table(
    "used_tokens",
    metadata,
    sa.Column("nonce", _NAME, primary_key=True),
    sa.Column("gate_id", _ID, nullable=False),
    sa.Column("reviewer", _NAME, nullable=False),
    sa.Column("used_at", UTCDateTime, nullable=False),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("gate_id", _ID, sa.ForeignKey("gates.id", ondelete="CASCADE"), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("actor", _NAME),
    sa.Column("channel", sa.String(32)),
    sa.Column("detail", JSONText),
    sa.Index("ix_events_gate", "gate_id", "id"),
)


def default_url() -> str:
    """Return ``$GUARDFLOW_GATES_DB`` or ``sqlite:///<home>/.guardflow/gates.db``."""
    env = os.environ.get("GUARDFLOW_GATES_DB")
    if env:
        return env
    return f"sqlite:///{Path.home() / '.guardflow' / 'gates.db'}"


def safe_url(url: str | sa.URL) -> str:
    """Return the URL as text with its password hidden (safe for logs and messages)."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<invalid URL>"


_LOCK = threading.Lock()
_ENGINES: dict[tuple[int, str], Engine] = {}


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # Take BEGIN away from the sqlite3 module (its legacy mode defers and skips BEGINs);
        # the "begin" hook below emits it instead (SQLAlchemy's documented recipe).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        # Writers take the write lock up front so two deciders never both read "pending" and
        # then race to upgrade; plain reads stay deferred and run beside writers under WAL.
        read_only = conn.get_execution_options().get("guardflow_read_only", False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def engine_for(url: str) -> Engine:
    """Return this process's engine for ``url`` (created once, tables created if missing).

    Raises:
        ConfigurationError: The URL is not a SQLAlchemy URL or its driver is not installed.
    """
    key = (os.getpid(), url)
    with _LOCK:
        engine = _ENGINES.get(key)
        if engine is not None:
            return engine
        try:
            parsed = sa.make_url(url)
        except sa.exc.ArgumentError:
            raise ConfigurationError(
                "the gate store URL is not a valid SQLAlchemy URL; use e.g. "
                "sqlite:////path/gates.db or postgresql+psycopg://user@host/db"
            ) from None
        is_sqlite = parsed.get_backend_name() == "sqlite"
        kwargs: dict[str, Any] = {}
        if is_sqlite:
            database = parsed.database or ""
            if database and database != ":memory:" and not database.startswith("file:"):
                Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": BUSY_TIMEOUT_S}
        else:
            kwargs["pool_pre_ping"] = True
        try:
            engine = sa.create_engine(parsed, **kwargs)
        except (ImportError, sa.exc.NoSuchModuleError) as exc:
            raise ConfigurationError(
                f"no database driver for the gate store URL {safe_url(parsed)}: install the "
                f"driver named in the URL (e.g. psycopg for postgresql+psycopg)"
            ) from exc
        if is_sqlite:
            _sqlite_setup(engine)
        try:
            # Serialised by BEGIN IMMEDIATE on SQLite, so processes creating one file at once
            # do not trip over each other's CREATE TABLE.
            with engine.begin() as conn:
                metadata.create_all(conn)
        except sa.exc.OperationalError as exc:
            engine.dispose()
            raise _unavailable(safe_url(parsed)) from exc
        except sa.exc.IntegrityError:
            # Another process created the tables at the same instant (PostgreSQL catalog race).
            with engine.begin() as conn:
                metadata.create_all(conn)
        _ENGINES[key] = engine
        return engine


def dispose_engine(url: str) -> None:
    """Close this process's pooled connections for ``url`` and forget its engine."""
    with _LOCK:
        engine = _ENGINES.pop((os.getpid(), url), None)
    if engine is not None:
        engine.dispose()


def _unavailable(url: str) -> GateError:
    return GateError(
        f"the gate store {url} is unavailable or locked (waited up to {BUSY_TIMEOUT_S:.0f} s); "
        "check that the database is reachable and writable, then retry",
        retryable=True,
    )


@contextmanager
def write_tx(engine: Engine) -> Iterator[Connection]:
    """Run a read-modify-write transaction (``BEGIN IMMEDIATE`` on SQLite); commit on success."""
    try:
        with engine.begin() as conn:
            yield conn
    except sa.exc.OperationalError as exc:
        raise _unavailable(safe_url(engine.url)) from exc


@contextmanager
def read_tx(engine: Engine) -> Iterator[Connection]:
    """Run a read-only transaction (one consistent snapshot; deferred ``BEGIN`` on SQLite)."""
    try:
        with engine.connect() as conn:
            conn.execution_options(guardflow_read_only=True)
            with conn.begin():
                yield conn
    except sa.exc.OperationalError as exc:
        raise _unavailable(safe_url(engine.url)) from exc
