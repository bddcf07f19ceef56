"""Errors in each simulated system's own shape, so a connector meets the bodies the real one sends.

- CRM (Salesforce REST): a JSON list `[{"message": ..., "errorCode": ..., "fields": [...]}]`.
- Billing (Stripe): `{"error": {"type": ..., "code": ..., "message": ..., "param": ...}}`.
- ERP (NetSuite REST): `{"type": ..., "title": ..., "status": ..., "o:errorDetails": [{"detail", "o:errorCode"}]}`.
- Admin: RFC 9457 problem+json, as accord's own APIs answer.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi.responses import JSONResponse

_STRIPE_TYPES = {400: "invalid_request_error", 402: "card_error", 404: "invalid_request_error"}


class SandboxError(Exception):
    """An error a simulated system answers with; rendered by `render` in that system's shape."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        param: str | None = None,
        error_type: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.param = param
        self.error_type = error_type
        self.headers = headers or {}
        self.extra = extra or {}


def system_of(path: str) -> str:
    for system in ("crm", "billing", "erp", "admin"):
        if path == f"/{system}" or path.startswith(f"/{system}/"):
            return system
    return "admin"


def body_for(system: str, err: SandboxError) -> Any:
    if system == "crm":
        item: dict[str, Any] = {"message": err.message, "errorCode": err.code}
        if err.param:
            item["fields"] = [err.param]
        return [item]
    if system == "billing":
        error: dict[str, Any] = {
            "type": err.error_type or _STRIPE_TYPES.get(err.status, "api_error"),
            "code": err.code,
            "message": err.message,
        }
        if err.param:
            error["param"] = err.param
        error.update(err.extra)
        return {"error": error}
    title = HTTPStatus(err.status).phrase
    if system == "erp":
        detail: dict[str, Any] = {"detail": err.message, "o:errorCode": err.code}
        if err.param:
            detail["o:errorPath"] = err.param
        return {
            "type": "https://www.rfc-editor.org/rfc/rfc9110.html#section-15",
            "title": title,
            "status": err.status,
            "o:errorDetails": [detail],
        }
    return {"type": "about:blank", "title": title, "status": err.status, "detail": err.message, "code": err.code}


def render(path: str, err: SandboxError) -> JSONResponse:
    system = system_of(path)
    media = "application/problem+json" if system == "admin" else "application/json"
    if system == "erp":
        media = "application/vnd.oracle.resource+json; type=error"
    return JSONResponse(body_for(system, err), status_code=err.status, headers=err.headers, media_type=media)
