"""Credentials as each real system asks for them, so connectors carry real authentication code.

- Billing: a secret API key, `Authorization: Bearer sk_test_…` (or HTTP Basic with the key as user name),
  as Stripe. Any `sk_test_` key is accepted; anything else is 401 in Stripe's shape.
- CRM: OAuth 2.0 client credentials at `POST /crm/services/oauth2/token` → `access_token` and
  `instance_url`; requests carry `Authorization: Bearer <token>`. Sessions expire after 2 hours of sandbox
  time; an unknown or expired token is 401 `INVALID_SESSION_ID`, and the client must fetch a new one.
- ERP: OAuth 2.0 client credentials at `POST /erp/services/rest/auth/oauth2/v1/token` → a bearer token
  valid 60 minutes of sandbox time; otherwise 401 `INVALID_LOGIN`, as NetSuite.

Tokens live in memory: a restart of the sandbox (or `POST /admin/tokens/revoke`) ends every session, as a
revoked or expired session would. Any non-empty client id and secret get a token.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request

from .core import sandbox
from .errors import SandboxError
from .sessions import LIFETIME, Sessions
from .store import iso

router = APIRouter()
CRM_TOKEN_PATH = "/crm/services/oauth2/token"
ERP_TOKEN_PATH = "/erp/services/rest/auth/oauth2/v1/token"
TOKEN_PATHS = {CRM_TOKEN_PATH, ERP_TOKEN_PATH}


def check(system: str, request: Request, sessions: Sessions, now: datetime) -> SandboxError | None:
    """None when the request carries valid credentials for `system`, else the error to answer with."""
    header = request.headers.get("authorization", "")
    scheme, _, credential = header.partition(" ")
    if system == "billing":
        key = credential.strip()
        if scheme.lower() == "basic":
            try:
                key = base64.b64decode(key).decode().partition(":")[0]
            except (ValueError, UnicodeDecodeError):
                key = ""
        if not header:
            return SandboxError(
                401,
                "api_key_missing",
                "You did not provide an API key. You need to provide your API key in the Authorization header, "
                "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
            )
        if not key.startswith("sk_test_"):
            shown = key[:8] + "*" * max(len(key) - 12, 0) + key[-4:] if len(key) > 12 else "***"
            return SandboxError(401, "invalid_api_key", f"Invalid API Key provided: {shown}")
        return None
    if scheme.lower() == "bearer" and sessions.valid(system, credential.strip(), now):
        return None
    if system == "crm":
        return SandboxError(401, "INVALID_SESSION_ID", "Session expired or invalid")
    return SandboxError(
        401,
        "INVALID_LOGIN",
        "Invalid login attempt. For more details, see the Login Audit Trail in the NetSuite UI at Setup > Users/Roles "
        "> User Management > View Login Audit Trail.",
    )


async def _client_credentials(request: Request) -> dict[str, str]:
    raw = (await request.body()).decode(errors="replace")
    from urllib.parse import parse_qsl

    form = dict(parse_qsl(raw))
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            form.setdefault("client_id", user)
            form.setdefault("client_secret", password)
        except (ValueError, UnicodeDecodeError):
            pass
    return form


@router.post(CRM_TOKEN_PATH)
async def crm_token(request: Request) -> dict[str, Any]:
    form = await _client_credentials(request)
    if form.get("grant_type") not in ("client_credentials", "password"):
        raise SandboxError(400, "unsupported_grant_type", "grant type not supported")
    if not form.get("client_id") or not form.get("client_secret"):
        raise SandboxError(400, "invalid_client", "invalid client credentials")
    box = sandbox(request)
    now = box.store.clock.now()
    token = box.sessions.issue("crm", now)
    base = str(request.base_url).rstrip("/")
    return {
        "access_token": token,
        "instance_url": f"{base}/crm",
        "id": f"{base}/crm/id/00D5g0000000001/0055g0000000001",
        "token_type": "Bearer",
        "issued_at": str(int(now.timestamp() * 1000)),
        "expires_at": iso(now + LIFETIME["crm"]),
    }


@router.post(ERP_TOKEN_PATH)
async def erp_token(request: Request) -> dict[str, Any]:
    form = await _client_credentials(request)
    if form.get("grant_type") != "client_credentials":
        raise SandboxError(400, "unsupported_grant_type", "grant_type must be client_credentials")
    if not form.get("client_id") and not form.get("client_assertion"):
        raise SandboxError(400, "invalid_client", "invalid client credentials")
    box = sandbox(request)
    token = box.sessions.issue("erp", box.store.clock.now())
    return {"access_token": token, "expires_in": int(LIFETIME["erp"].total_seconds()), "token_type": "Bearer"}
