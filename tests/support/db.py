"""Databases of a test's own on the session's PostgreSQL server."""

from __future__ import annotations

import uuid

import asyncpg


async def create_database(server_url: str) -> str:
    """A fresh, empty database on the server of `server_url`; returns its URL."""
    name = f"test_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base, _, _ = server_url.rpartition("/")
    return f"{base}/{name}"


async def drop_database(server_url: str, url: str) -> None:
    name = url.rpartition("/")[2]
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
