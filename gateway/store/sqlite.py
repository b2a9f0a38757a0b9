"""The SQLite connector: one writer connection and one reader connection, each on a thread
of its own, so the event loop never waits for SQLite or an fsync.

Writers take turns (``BEGIN IMMEDIATE``; SQLite's file lock also keeps other processes
out). The hot write — accepting an application — can instead be *grouped*: a function
that does the whole transaction's work runs on the writer's thread in one hop, together
with every other grouped write that arrived meanwhile, each in a SAVEPOINT of its own
(so one failing undoes only itself), under one ``COMMIT`` and one fsync. Each caller
returns only after the commit that made its own write durable, so a 202 still means on
disk; under load, many applications share that fsync instead of queuing for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from gateway.store.connectors import StoreError, Tx, apply_migrations

T = TypeVar("T")
_PRAGMAS = ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", "busy_timeout=10000")


class _Thread:
    """A sqlite3 connection used only from its own single thread."""

    def __init__(self, path: Path, name: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._path = path
        self.conn: sqlite3.Connection | None = None

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def open(self) -> None:
        def connect() -> sqlite3.Connection:
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            for pragma in _PRAGMAS:
                conn.execute(f"PRAGMA {pragma}")
            return conn

        self.conn = await self.call(connect)

    async def close(self) -> None:
        if self.conn is not None:
            await self.call(self.conn.close)
            self.conn = None
        self._executor.shutdown(wait=True)


class _ThreadTx:
    def __init__(self, thread: _Thread) -> None:
        self._thread = thread

    def _conn(self) -> sqlite3.Connection:
        if self._thread.conn is None:
            raise StoreError("store is not open")
        return self._thread.conn

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return await self._thread.call(lambda: int(self._conn().execute(sql, tuple(params)).rowcount))

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Mapping[str, Any] | None:
        def one() -> Mapping[str, Any] | None:
            row = self._conn().execute(sql, tuple(params)).fetchone()
            return None if row is None else dict(row)

        return await self._thread.call(one)

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Mapping[str, Any]]:
        return await self._thread.call(lambda: [dict(r) for r in self._conn().execute(sql, tuple(params))])


GroupedWrite = Callable[[sqlite3.Connection], Any]


class SqliteConnector:
    """Writers are serialised here and by SQLite's file lock (``BEGIN IMMEDIATE``), so
    several processes may share the file (one machine only: never a network file system)."""

    dialect = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer = _Thread(path, "sqlite-writer")
        self._reader = _Thread(path, "sqlite-reader")
        self._open = False
        self._lock = asyncio.Lock()
        self._read_lock = asyncio.Lock()
        self._pending: list[tuple[GroupedWrite, asyncio.Future[Any]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def open(self, migrate: bool = True) -> None:
        if not migrate and not self.path.exists():
            raise StoreError(f"no store at {self.path}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        await self._writer.open()
        self._open = True
        tx = _ThreadTx(self._writer)
        mode = (await tx.fetchone("PRAGMA journal_mode")) or {}
        sync = (await tx.fetchone("PRAGMA synchronous")) or {}
        if str(next(iter(mode.values()), "")).lower() != "wal" or int(next(iter(sync.values()), 0)) != 2:
            raise StoreError("SQLite must run with journal_mode=WAL and synchronous=FULL")
        if migrate:
            async with self.write() as w:
                await apply_migrations(w, self.dialect)
        # Reads get their own connection: under WAL it sees only committed data, never a
        # write transaction still in progress on the writer (which may yet roll back).
        await self._reader.open()

    async def close(self) -> None:
        self._open = False  # no new work; what is under way finishes first
        if self._flusher is not None:
            with contextlib.suppress(Exception):
                await self._flusher
        async with self._lock, self._read_lock:
            await self._reader.close()
            await self._writer.close()

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[Tx]:
        if not self._open:
            raise StoreError("store is not open")
        tx = _ThreadTx(self._writer)
        async with self._lock:
            try:
                await self._writer.call(_begin, self._writer.conn, "BEGIN IMMEDIATE")
                yield tx
            except BaseException:
                await _finish_shielded(self._writer, commit=False)
                raise
            await _finish_shielded(self._writer, commit=True)

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[Tx]:
        if not self._open:
            raise StoreError("store is not open")
        tx = _ThreadTx(self._reader)
        async with self._read_lock:
            try:
                await self._reader.call(_begin, self._reader.conn, "BEGIN")  # one snapshot for the whole read
                yield tx
            finally:
                await _finish_shielded(self._reader, commit=True)

    async def write_grouped(self, fn: GroupedWrite) -> Any:
        """Run ``fn(connection)`` in the next group commit; its result once it is durable."""
        if not self._open:
            raise StoreError("store is not open")
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((fn, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await done

    async def _flush(self) -> None:
        while self._pending:
            # The lock is taken per batch, so ordinary writers (claims, heartbeats) waiting
            # for it get their turn between batches instead of after the whole burst.
            async with self._lock:
                batch, self._pending = self._pending, []
                try:
                    results = await self._writer.call(_transaction, self._writer.conn, [fn for fn, _ in batch])
                except BaseException as exc:  # the commit itself failed: nobody's write is durable
                    for _, done in batch:
                        if not done.done():
                            done.set_exception(exc)
                    if not isinstance(exc, Exception):
                        raise
                    continue
                for (_, done), (ok, value) in zip(batch, results, strict=True):
                    if not done.done():
                        if ok:
                            done.set_result(value)
                        else:
                            done.set_exception(value)


def _begin(conn: sqlite3.Connection | None, statement: str) -> None:
    """On the connection's thread. A transaction left open by a caller that was cancelled
    at the wrong moment is rolled back first, so one cancellation cannot wedge the store."""
    if conn is None:
        raise StoreError("store is not open")
    if conn.in_transaction:
        conn.rollback()
    conn.execute(statement)


def _end(conn: sqlite3.Connection | None, commit: bool) -> None:
    if conn is not None and conn.in_transaction:
        conn.execute("COMMIT" if commit else "ROLLBACK")


async def _finish_shielded(thread: _Thread, commit: bool) -> None:
    """COMMIT or ROLLBACK runs to its end on the thread even if the caller is cancelled."""
    await asyncio.shield(thread.call(_end, thread.conn, commit))


def _transaction(conn: sqlite3.Connection | None, fns: list[GroupedWrite]) -> list[tuple[bool, Any]]:
    """On the writer's thread: every function in its own SAVEPOINT, one COMMIT for all."""
    if conn is None:
        raise StoreError("store is not open")
    out: list[tuple[bool, Any]] = []
    _begin(conn, "BEGIN IMMEDIATE")
    try:
        for fn in fns:
            conn.execute("SAVEPOINT grouped")
            try:
                out.append((True, fn(conn)))
                conn.execute("RELEASE grouped")
            except Exception as exc:
                conn.execute("ROLLBACK TO grouped")
                conn.execute("RELEASE grouped")
                out.append((False, exc))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return out
