"""The narrow seam under the store: run SQL in a transaction. Two twins: SQLite
(gateway/store/sqlite.py) and PostgreSQL (here).

SQL is written once with ``?`` placeholders; the PostgreSQL connector numbers them.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def migrations(dialect: str) -> list[tuple[int, Path]]:
    """``NNNN_name.<dialect>.sql`` files, in order. Each is applied once, in one transaction."""
    found = sorted(MIGRATIONS_DIR.glob(f"[0-9][0-9][0-9][0-9]_*.{dialect}.sql"))
    return [(int(p.name[:4]), p) for p in found]


# The schema this code needs; both dialects carry the same numbered migrations.
SCHEMA_VERSION = migrations("sqlite")[-1][0]


class StoreError(RuntimeError):
    pass


def is_store_error(exc: BaseException) -> bool:
    """Did the store (not the caller's logic) fail? Such errors heal by themselves or by an
    operator fixing the database (or configuring a store key); a job that meets one is
    retried, never failed. Exactly the store's own errors: a timeout or an OS error from
    anywhere else is not one."""
    import sqlite3

    import asyncpg

    from gateway.store.sealing import SealingError

    return isinstance(
        exc,
        StoreError | SealingError | sqlite3.Error | asyncpg.PostgresError | asyncpg.InterfaceError
        | asyncpg.PostgresConnectionError | ConnectionRefusedError | ConnectionResetError,
    )


class Tx(Protocol):
    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a statement; the number of rows it changed."""
        ...

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Mapping[str, Any] | None: ...

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Mapping[str, Any]]: ...


class Connector(Protocol):
    dialect: str

    async def open(self, migrate: bool = True) -> None:
        """Connect; with ``migrate``, bring the schema to this code's version first."""
        ...

    async def close(self) -> None: ...

    def write(self) -> contextlib.AbstractAsyncContextManager[Tx]: ...

    def read(self) -> contextlib.AbstractAsyncContextManager[Tx]: ...


async def apply_migrations(tx: Tx, dialect: str) -> None:
    """Bring the schema to SCHEMA_VERSION: every migration newer than the recorded version,
    in order, inside the caller's transaction (so a failed migration leaves nothing half-done)."""
    await tx.execute(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at "
        + ("REAL" if dialect == "sqlite" else "DOUBLE PRECISION")
        + " NOT NULL)"
    )
    row = await tx.fetchone("SELECT MAX(version) AS v FROM schema_version")
    current = int(row["v"]) if row and row["v"] is not None else 0
    if current > SCHEMA_VERSION:
        raise StoreError(f"the store is at schema version {current}, newer than this gateway ({SCHEMA_VERSION})")
    for version, path in migrations(dialect):
        if version <= current:
            continue
        for statement in _statements(path):
            await tx.execute(statement)
        await tx.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", (version, time.time()))


# --- PostgreSQL ---------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\?")


def _numbered(sql: str) -> str:
    counter = iter(range(1, 10_000))
    return _PLACEHOLDER.sub(lambda _: f"${next(counter)}", sql)


class _PgTx:
    def __init__(self, conn: Any) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        status = await self._conn.execute(_numbered(sql), *params)
        tail = str(status).rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Mapping[str, Any] | None:
        row = await self._conn.fetchrow(_numbered(sql), *params)
        return None if row is None else dict(row)

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Mapping[str, Any]]:
        return [dict(r) for r in await self._conn.fetch(_numbered(sql), *params)]


class PostgresConnector:
    """An asyncpg pool. Several gateway replicas share the database; jobs are claimed
    with ``FOR UPDATE SKIP LOCKED`` so no two replicas take the same job."""

    dialect = "postgres"

    def __init__(self, dsn: str, min_size: int = 2, max_size: int = 10, schema: str | None = None) -> None:
        if schema is not None and not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", schema):
            raise StoreError("schema name: lower-case letters, digits and '_' only")
        self.dsn = dsn
        self.schema = schema
        self._pool: Any = None
        self._min, self._max = min_size, max_size

    async def open(self, migrate: bool = True) -> None:
        import asyncpg

        if self.schema and migrate:
            conn = await asyncpg.connect(self.dsn)
            try:
                # Two replicas starting together may race here; the loser's error is harmless.
                with contextlib.suppress(asyncpg.UniqueViolationError, asyncpg.DuplicateSchemaError):
                    await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {self.schema}")
            finally:
                await conn.close()
        settings = {"search_path": self.schema} if self.schema else None
        self._pool = await asyncpg.create_pool(
            self.dsn, min_size=self._min, max_size=self._max, server_settings=settings
        )
        if not migrate:
            return
        async with self._pool.acquire() as conn, conn.transaction():
            # One replica at a time applies the schema.
            await conn.execute("SELECT pg_advisory_xact_lock(4301060001)")
            await apply_migrations(_PgTx(conn), self.dialect)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[Tx]:
        if self._pool is None:
            raise StoreError("store is not open")
        async with self._pool.acquire() as conn, conn.transaction():
            yield _PgTx(conn)

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[Tx]:
        """One snapshot for every statement of the read (an application and its items
        as they were at one moment)."""
        if self._pool is None:
            raise StoreError("store is not open")
        async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            yield _PgTx(conn)


def _statements(path: Path) -> list[str]:
    text = "\n".join(line.split("--", 1)[0] for line in path.read_text(encoding="utf-8").splitlines())
    return [s.strip() for s in text.split(";") if s.strip()]
