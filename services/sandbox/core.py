"""What every simulated system shares: the Sandbox object on app.state, body parsing, small helpers."""

from __future__ import annotations

import json
import re
import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import Request

from .errors import SandboxError
from .faults import Faults
from .sessions import Sessions
from .settings import Settings
from .store import Store

_BAD_BODY = {"crm": "JSON_PARSER_ERROR", "billing": "parameter_invalid_empty", "erp": "INVALID_CONTENT"}
_MISSING = {"crm": "REQUIRED_FIELD_MISSING", "billing": "parameter_missing", "erp": "USER_ERROR"}
_INVALID = {"crm": "INVALID_FIELD", "billing": "parameter_invalid", "erp": "INVALID_FLD_VALUE"}


@dataclass
class Sandbox:
    settings: Settings
    store: Store
    faults: Faults
    erp_limit: int
    erp_in_flight: int = 0
    erp_rejected: int = 0
    #: while the generator writes a book, the background billing clock waits (its plan assumes no renewal
    #: runs between creating a subscription and amending it)
    generating: int = 0
    sessions: Sessions = field(default_factory=Sessions)
    #: the CRM's daily API allowance and what today's calls used of it
    crm_daily_limit: int = 100_000
    crm_api_usage: dict[str, Any] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)


def sandbox(request: Request) -> Sandbox:
    value: Sandbox = request.app.state.sandbox
    return value


#: Stripe takes form-encoded bodies with bracket notation, every value a string; these parameters are numbers
#: or booleans, as Stripe's own parameter types say, everything else stays a string.
_FORM_INTS = {
    "unit_amount",
    "quantity",
    "amount",
    "billing_cycle_anchor",
    "cancel_at",
    "proration_date",
    "backdate_start_date",
    "timestamp",
    "refund_amount",
    "interval_count",
}
_FORM_BOOLS = {"auto_advance", "prorate", "invoice_now", "paid_out_of_band", "deleted"}
_FORM_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


def form_to_json(raw: bytes) -> dict[str, Any]:
    """`items[0][price_data][unit_amount]=500&metadata[k]=v` → the JSON body the handlers take."""
    root: dict[str, Any] = {}
    for key, value in urllib.parse.parse_qsl(raw.decode(), keep_blank_values=True, strict_parsing=False):
        match = _FORM_KEY.match(key)
        if match is None:
            raise SandboxError(400, "parameter_unknown", f"Received unknown parameter: {key}", param=key)
        parts = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        node: dict[str, Any] = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise SandboxError(400, "parameter_invalid", f"{key} mixes a value and a hash", param=key)
        leaf = parts[-1]
        if leaf == "":
            leaf = str(len(node))
        name = next((p for p in reversed(parts) if p and not p.isdigit()), parts[0])
        typed: Any = value
        if name in _FORM_INTS:
            try:
                typed = int(value)
            except ValueError:
                raise SandboxError(400, "parameter_invalid_integer", f"Invalid integer: {value}", param=key) from None
        elif name in _FORM_BOOLS:
            if value not in ("true", "false"):
                raise SandboxError(400, "parameter_invalid_boolean", f"Invalid boolean: {value}", param=key)
            typed = value == "true"
        node[leaf] = typed
    return _listify(root)  # type: ignore[no-any-return]


def _listify(node: Any) -> Any:
    if isinstance(node, dict):
        if node and all(k.isdigit() for k in node):
            return [_listify(node[k]) for k in sorted(node, key=int)]
        return {k: _listify(v) for k, v in node.items()}
    return node


async def body(request: Request, system: str) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    if system == "billing" and request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return form_to_json(raw)
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise SandboxError(400, _BAD_BODY[system], f"the body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise SandboxError(400, _BAD_BODY[system], "the body must be a JSON object")
    return data


def need(data: dict[str, Any], name: str, system: str, kind: type | tuple[type, ...] = str) -> Any:
    if name not in data or data[name] is None or data[name] == "":
        raise SandboxError(400, _MISSING[system], f"Required field missing: {name}", param=name)
    return check(data, name, system, kind)


def check(data: dict[str, Any], name: str, system: str, kind: type | tuple[type, ...]) -> Any:
    value = data.get(name)
    if value is None:
        return None
    if kind in (int, float) or kind == (int, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SandboxError(400, _INVALID[system], f"{name} must be a number, got {value!r}", param=name)
        return value
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise SandboxError(400, _INVALID[system], f"{name} must be a {names}, got {value!r}", param=name)
    return value


def money(data: dict[str, Any], name: str, system: str, *, required: bool = True) -> Decimal | None:
    if not required and data.get(name) is None:
        return None
    value = need(data, name, system, (int, float, str))
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise SandboxError(
            400, _INVALID[system], f"{name} must be a decimal amount, got {value!r}", param=name
        ) from None
    if not amount.is_finite():
        raise SandboxError(400, _INVALID[system], f"{name} must be finite", param=name)
    return amount.quantize(Decimal("0.01"))


def a_date(data: dict[str, Any], name: str, system: str, *, required: bool = True) -> date | None:
    if not required and data.get(name) is None:
        return None
    value = need(data, name, system)
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        raise SandboxError(
            400, _INVALID[system], f"{name} must be a date YYYY-MM-DD, got {value!r}", param=name
        ) from None


def a_datetime(value: str, name: str, system: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise SandboxError(
            400, _INVALID[system], f"{name} must be an ISO 8601 timestamp, got {value!r}", param=name
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def num(value: Decimal) -> float:
    """Money as the JSON number Salesforce and NetSuite send (two decimals)."""
    return float(value.quantize(Decimal("0.01")))


def add_months(day: date, months: int) -> date:
    """Calendar arithmetic that clamps to the month's last day (Jan 31 + 1 month = Feb 28/29)."""
    import calendar

    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))
