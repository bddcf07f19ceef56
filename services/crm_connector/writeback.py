"""The write-back executor: a recorded `crm/account_status` command → `PATCH sobjects/Account/{id}`.

Run by `accord.commands.CommandWorker` (rate limit, retries with backoff, read-back of in-doubt calls). Per call:

1. take the account's PostgreSQL advisory lock (transaction scoped, so it is let go whatever happens): two
   write-backs of one account never overlap, whichever worker or process runs them;
2. read the account's current decision version (`aggregate_state`): a command older than it is superseded and
   is NOT sent (the newer command carries the newer state) — an older state can never overwrite a newer one;
3. PATCH the fields with `Sforce-Call-Options: client=<our id>` (the CRM marks the change as ours and the
   mapper ignores it when it comes back as a change event).

Answers: 2xx → done; 429, 503, 403 REQUEST_LIMIT_EXCEEDED, no connection → TransientError (retried after
backoff, Retry-After honoured); 500/502/504 or a timeout after sending → InDoubtError (the worker reads the
Account back first: the fields already there → done, else sent again, which is safe: absolute values);
any other 4xx → CrmRejected (permanent: a deleted account, a field the org lacks).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from typing import Any

import asyncpg
import httpx

from accord.commands import Command
from accord.errors import InDoubtError, TransientError
from accord.runtime import schema_name

from .crm_client import CALL_OPTIONS, DATA, CrmClient, CrmRejected, error_detail
from .status import AGGREGATE

_IN_DOUBT = {500, 502, 504}
_TRANSIENT = {408, 429, 503}


def _lock_id(schema: str, account_id: str) -> int:
    # A signed 64-bit key from a stable hash (hashtext() is not guaranteed stable across PostgreSQL versions).
    return zlib.crc32(f"{schema}/writeback/{account_id}".encode()) - 2**31


class AccountStatusWriter:
    """The `Executor` of `crm/account_status` commands (see the module docstring for the steps)."""

    def __init__(self, client: CrmClient, pool: asyncpg.Pool, *, schema: str) -> None:
        self.client = client
        self.pool = pool
        self.schema = schema_name(schema)

    async def _current_version(self, conn: asyncpg.Connection, account_id: str) -> int | None:
        value = await conn.fetchval(
            f"""SELECT (data->>'version')::bigint FROM {self.schema}.aggregate_state
                WHERE aggregate = $1 AND key = $2""",
            AGGREGATE,
            account_id,
        )
        return None if value is None else int(value)

    async def execute(self, command: Command) -> Mapping[str, Any]:
        account_id = str(command.payload["account_id"])
        version = int(command.payload["version"])
        fields = dict(command.payload["fields"])
        async with self.pool.acquire() as conn, conn.transaction():
            # 1. One write-back of this account at a time (released with the transaction).
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _lock_id(self.schema, account_id))
            # 2. Superseded: a newer decision exists, and its own command writes the newer state.
            current = await self._current_version(conn, account_id)
            if current is not None and current > version:
                return {"superseded_by": current, "version": version}
            # 3. The write.
            await self._patch(account_id, fields)
        return {"written": fields, "version": version}

    async def _patch(self, account_id: str, fields: Mapping[str, Any]) -> None:
        path = f"{DATA}/sobjects/Account/{account_id}"
        http = self.client.http
        request = http.build_request(
            "PATCH", path, json=dict(fields), headers={CALL_OPTIONS: f"client={self.client.client_id}"}
        )
        try:
            response = await http.send(request, auth=self.client.auth)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise TransientError(f"PATCH {path}: not sent ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise InDoubtError(f"PATCH {path}: no answer ({type(exc).__name__}); it may have been applied") from exc
        status = response.status_code
        if status < 300:
            return
        code, detail = error_detail(response)
        if status in _TRANSIENT or code == "REQUEST_LIMIT_EXCEEDED":
            after = response.headers.get("Retry-After")
            raise TransientError(
                f"HTTP {status} {code} from PATCH {path}: {detail}",
                retry_after=float(after) if after and after.isdigit() else None,
            )
        if status in _IN_DOUBT:
            raise InDoubtError(f"HTTP {status} {code} from PATCH {path}; the write may have been applied")
        if status >= 500:
            raise TransientError(f"HTTP {status} {code} from PATCH {path}: {detail}")
        raise CrmRejected(code, f"HTTP {status} from PATCH {path}: {detail}", status=status)

    async def read_back(self, command: Command) -> Mapping[str, Any] | None:
        """The Account already holds the command's fields → done; otherwise None (send it again)."""
        account_id = str(command.payload["account_id"])
        fields = dict(command.payload["fields"])
        record = await self.client.record("Account", account_id)
        if record is None:
            raise CrmRejected("NOT_FOUND", f"Account {account_id} no longer exists in the CRM", status=404)
        if all(record.get(name) == value for name, value in fields.items()):
            return {"written": fields, "version": int(command.payload["version"]), "read_back": True}
        return None
