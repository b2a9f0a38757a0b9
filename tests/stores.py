"""Both store implementations for the contract tests: SQLite in tmp_path, PostgreSQL in a
fresh schema of the machine's database (127.0.0.1:5432, trust auth, database ``test``)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest

from gateway.store.sql import SqlStore, open_store

PG_URL = os.environ.get("GATEWAY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
KINDS = ("sqlite", "postgres")


def store_url(kind: str, tmp_path: Path, schema: str) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'gateway.db'}"
    return f"{PG_URL}?schema={schema}"


@asynccontextmanager
async def fresh_url(kind: str, tmp_path: Path) -> AsyncIterator[str]:
    """A store URL nobody else uses; the PostgreSQL schema is dropped afterwards."""
    schema = "t_" + uuid.uuid4().hex[:12]
    try:
        yield store_url(kind, tmp_path, schema)
    finally:
        if kind == "postgres":
            conn = await asyncpg.connect(PG_URL)
            try:
                await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            finally:
                await conn.close()


@asynccontextmanager
async def opened(url: str, base_dir: Path) -> AsyncIterator[SqlStore]:
    store = open_store(url, base_dir)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


# Fixtures (registered in conftest.py): every contract test runs once per store kind.


@pytest.fixture(params=KINDS)
async def url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    async with fresh_url(request.param, tmp_path) as u:
        yield u


@pytest.fixture
async def store(url: str, tmp_path: Path) -> AsyncIterator[SqlStore]:
    async with opened(url, tmp_path) as s:
        yield s
