"""Provisioning requests → billing commands, and command outcomes → result events. Pure: no I/O here.

What a request becomes in billing (Stripe's API shape, the sandbox's /billing/v1):

- `CustomerProvisionRequested` (target BILLING) → one `provision_customer` command: the customer found by
  `metadata.crm_account_id` is updated, else one is created, with `metadata.crm_account_id` / `legal_entity`,
  `address.country`, `currency` (lower case), `tax_exempt` "reverse" or "none", and
  `invoice_settings.default_payment_method` when the request names a payment method.
- `SubscriptionProvisionRequested` → one `provision_subscriptions` command, planned per cadence group (as
  the sandbox's generator books them): Annual → yearly licensed prices, Monthly (and lines without a
  frequency: the CRM's default) → monthly licensed, Quarterly / Semi-annual → every 3 / 6 months licensed,
  usage-based lines → monthly metered ("Usage"). Amounts go in the currency's minor unit.
  CREATE: one subscription per group, `backdate_start_date` = start date at midnight UTC, metadata
  crm_contract_id / legal_entity / frequency. AMEND: per changed line, the item of its group's subscription
  whose product matches gets the new quantity (and price), an unknown product is added (ADD); quantity 0
  removes the item; `proration_date` = effective date at midnight UTC. CANCEL: `cancel_at` = effective
  date at midnight UTC, `proration_behavior` none. Without `billing_customer_id` the customer is the one
  whose `metadata.crm_account_id` is the account (none yet: a retryable customer-missing answer); without a
  legal entity, the customer's.

A request that can never succeed as written (no BILLING target is not one: it is ignored) is answered at
once by `ProvisioningFailed` (invalid-request, not retryable) instead of a command.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from accord.events import (
    BillingFrequency,
    ContractLine,
    CustomerProvisionRequested,
    Meta,
    ProrationPolicy,
    ProvisioningCompleted,
    ProvisioningFailed,
    SourceSystem,
    SubscriptionAction,
    SubscriptionProvisionRequested,
)

SYSTEM = "billing"
CUSTOMER_KIND = "provision_customer"
SUBSCRIPTIONS_KIND = "provision_subscriptions"
REQUEST_TOPIC = CustomerProvisionRequested.TOPIC
_IDS = uuid.UUID("3c1b7e0a-5d7e-4f43-9a0e-2b8f6a1d4c59")  # namespace of the event ids this connector derives

#: Stripe's zero-decimal currencies (amounts in whole units); every other currency here has two decimals,
#: except the three-decimal ones below.
_ZERO_DECIMAL = frozenset(
    "BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF".split()  # noqa: SIM905 - a list to read
)
_THREE_DECIMAL = frozenset("BHD JOD KWD OMR TND".split())  # noqa: SIM905


class Cadence(StrEnum):
    """A subscription's cadence group: the value of its `metadata.frequency` (as the generator writes it)."""

    ANNUAL = "Annual"
    SEMI_ANNUAL = "Semiannual"
    QUARTERLY = "Quarterly"
    MONTHLY = "Monthly"
    USAGE = "Usage"


#: cadence → (recurring.interval, interval_count, usage_type); also the order subscriptions are created in
RECURRING: dict[Cadence, tuple[str, int, str]] = {
    Cadence.ANNUAL: ("year", 1, "licensed"),
    Cadence.SEMI_ANNUAL: ("month", 6, "licensed"),
    Cadence.QUARTERLY: ("month", 3, "licensed"),
    Cadence.MONTHLY: ("month", 1, "licensed"),
    Cadence.USAGE: ("month", 1, "metered"),
}
_CADENCES = {
    BillingFrequency.ANNUAL: Cadence.ANNUAL,
    BillingFrequency.SEMI_ANNUAL: Cadence.SEMI_ANNUAL,
    BillingFrequency.QUARTERLY: Cadence.QUARTERLY,
    BillingFrequency.MONTHLY: Cadence.MONTHLY,
    None: Cadence.MONTHLY,  # "null: the contract's frequency"; the CRM's default cadence is Monthly
}
#: proration policy → (proration_behavior, charge from the start of the current period instead of the date)
PRORATION: dict[ProrationPolicy, tuple[str, bool]] = {
    ProrationPolicy.PRORATE_DAILY: ("create_prorations", False),
    # Stripe prorates to the second: a monthly proration is approximated by the daily one.
    ProrationPolicy.PRORATE_MONTHLY: ("create_prorations", False),
    ProrationPolicy.NO_PRORATION: ("none", False),
    # The change charged (and the old terms credited) for the whole current period, invoiced now.
    ProrationPolicy.CHARGE_FULL_PERIOD: ("always_invoice", True),
    ProrationPolicy.UNKNOWN: ("create_prorations", False),  # Stripe's default
}


class InvalidRequest(ValueError):
    """A request that cannot be carried out as written; `code` names why (the ProvisioningFailed error_code)."""

    def __init__(self, message: str, *, code: str = "invalid-request") -> None:
        super().__init__(message)
        self.code = code


def derived_id(*parts: str) -> uuid.UUID:
    return uuid.uuid5(_IDS, "/".join(parts))


def midnight(day: date) -> int:
    """Unix seconds of `day` at 00:00 UTC."""
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def minor_units(amount: Decimal, currency: str, *, what: str) -> int:
    """`amount` in the currency's smallest unit, as Stripe wants it; an amount finer than that is refused."""
    exponent = 0 if currency.upper() in _ZERO_DECIMAL else 3 if currency.upper() in _THREE_DECIMAL else 2
    scaled = amount.scaleb(exponent)
    if scaled != scaled.to_integral_value():
        raise InvalidRequest(f"{what}: {amount} {currency} is finer than the currency's smallest unit")
    if scaled < 0:
        raise InvalidRequest(f"{what}: a unit price cannot be negative")
    return int(scaled)


def cadence_of(line: ContractLine) -> Cadence:
    if line.usage_based:
        return Cadence.USAGE
    cadence = _CADENCES.get(line.billing_frequency)
    if cadence is None:
        raise InvalidRequest(
            f"line {line.line_id}: billing frequency {line.billing_frequency} has no billing cadence "
            "(use ANNUAL, SEMI_ANNUAL, QUARTERLY or MONTHLY, or mark the line usage-based)",
            code="unsupported-frequency",
        )
    return cadence


def item_of(line: ContractLine, currency: str) -> dict[str, Any]:
    """The subscription item of a line: `price_data` for its cadence, quantity (licensed), line id."""
    cadence = cadence_of(line)
    what = f"line {line.line_id}"
    if line.unit_price.currency.upper() != currency.upper():
        raise InvalidRequest(f"{what}: priced in {line.unit_price.currency}, the contract in {currency}")
    interval, count, usage = RECURRING[cadence]
    item: dict[str, Any] = {
        "price_data": {
            "currency": currency.lower(),
            "unit_amount": minor_units(line.unit_price.amount, currency, what=what),
            "product": line.product_code,
            "recurring": {"interval": interval, "interval_count": count, "usage_type": usage},
        },
        "metadata": {"crm_line_id": line.line_id},
    }
    if usage == "licensed":
        if line.quantity != line.quantity.to_integral_value() or line.quantity < 0:
            raise InvalidRequest(f"{what}: quantity {line.quantity} is not a whole number of units")
        item["quantity"] = int(line.quantity)
    return item


def groups_of(lines: Sequence[ContractLine], currency: str) -> list[dict[str, Any]]:
    """The lines' items grouped by cadence, in the fixed order of RECURRING (one subscription per group)."""
    by_cadence: dict[Cadence, list[dict[str, Any]]] = {}
    for line in lines:
        by_cadence.setdefault(cadence_of(line), []).append(item_of(line, currency))
    return [{"frequency": c.value, "items": by_cadence[c]} for c in RECURRING if c in by_cadence]


def customer_payload(request: CustomerProvisionRequested) -> dict[str, Any]:
    """The `provision_customer` command: the customer's fields as billing takes them."""
    if not re.fullmatch(r"[A-Za-z]{3}", request.currency):
        raise InvalidRequest(f"currency {request.currency!r} is not an ISO 4217 code")
    if not re.fullmatch(r"[A-Za-z]{2}", request.country_code):
        raise InvalidRequest("country_code is not an ISO 3166-1 alpha-2 code")
    customer: dict[str, Any] = {
        "name": request.name,
        "currency": request.currency.lower(),
        "address": {"country": request.country_code.upper()},
        "tax_exempt": "reverse" if request.tax_exempt else "none",
        "metadata": {"crm_account_id": request.account_id, "legal_entity": request.legal_entity},
    }
    if request.parent_account_id:
        customer["metadata"]["crm_parent_account_id"] = request.parent_account_id
    if request.payment_method:
        customer["invoice_settings"] = {"default_payment_method": request.payment_method}
    return {"account_id": request.account_id, "customer": customer}


def subscriptions_payload(request: SubscriptionProvisionRequested) -> dict[str, Any]:
    """The `provision_subscriptions` command: what to do to the contract's subscriptions, per cadence."""
    if request.action is SubscriptionAction.UNKNOWN:
        raise InvalidRequest("action UNKNOWN: a newer writer's action this connector does not know")
    if not re.fullmatch(r"[A-Za-z]{3}", request.currency):
        raise InvalidRequest(f"currency {request.currency!r} is not an ISO 4217 code")
    payload: dict[str, Any] = {
        "action": request.action.value,
        "contract_id": request.contract_id,
        "account_id": request.account_id,
        # null: the executor finds the account's customer (and its legal entity) in billing
        "customer": request.billing_customer_id,
        "legal_entity": request.legal_entity or request.meta.legal_entity,
        "currency": request.currency.lower(),
        "effective": midnight(request.start_date),
        # the day after the last day: a co-termed line ends when the contract does
        "ends": midnight(request.end_date) + 86_400,
    }
    if request.end_date < request.start_date:
        raise InvalidRequest("end_date is before start_date")
    if request.action is SubscriptionAction.CANCEL:
        return payload
    if not request.lines:
        raise InvalidRequest(f"{request.action.value} needs at least one line")
    behaviour, from_period_start = PRORATION.get(request.proration_policy, PRORATION[ProrationPolicy.UNKNOWN])
    payload["groups"] = groups_of(request.lines, request.currency)
    if request.action is SubscriptionAction.AMEND:
        payload["proration_behavior"] = behaviour
        payload["prorate_from_period_start"] = from_period_start
    return payload


# -- the decider --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Planned:
    """A request to carry out: the command's kind and payload (the key is derived from the request id)."""

    kind: str
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class Refused:
    code: str
    message: str


Plan = Planned | Refused | None


def plan(request: Any) -> Plan:
    """What a request becomes: a command to run, a refusal to answer at once, or None (not ours)."""
    try:
        if isinstance(request, CustomerProvisionRequested):
            if request.target_system is not SourceSystem.BILLING:
                return None
            return Planned(CUSTOMER_KIND, customer_payload(request))
        if isinstance(request, SubscriptionProvisionRequested):
            return Planned(SUBSCRIPTIONS_KIND, subscriptions_payload(request))
    except InvalidRequest as exc:
        return Refused(exc.code, str(exc))
    return None


def command_key(request_id: str) -> str:
    """The command's idempotency key; each call to billing adds its own suffix to it."""
    return f"billing:{request_id}"


def reply_context(request: Any) -> dict[str, Any]:
    """What the result event repeats from the request (kept in the command, so the answer needs no lookup)."""
    meta: Meta = request.meta
    legal_entity = getattr(request, "legal_entity", None) or meta.legal_entity
    return {
        "request_id": request.request_id,
        "workflow_id": request.workflow_id,
        "account_id": request.account_id,
        "request_type": type(request).AVRO_NAME,
        "event_id": str(meta.event_id),
        "correlation_id": meta.correlation_id,
        "legal_entity": legal_entity,
        "entity_version": meta.entity_version,
    }


def completed(
    reply: Mapping[str, Any], *, system_ids: Sequence[str], created: bool, now: datetime
) -> ProvisioningCompleted:
    return ProvisioningCompleted(
        meta=_meta(reply, ProvisioningCompleted.AVRO_NAME, source=SourceSystem.BILLING, now=now),
        request_id=str(reply["request_id"]),
        workflow_id=str(reply["workflow_id"]),
        account_id=str(reply["account_id"]),
        target_system=SourceSystem.BILLING,
        request_type=str(reply["request_type"]),
        system_ids=list(system_ids),
        created=created,
    )


def failed(reply: Mapping[str, Any], *, code: str, message: str, retryable: bool, now: datetime) -> ProvisioningFailed:
    return ProvisioningFailed(
        meta=_meta(reply, ProvisioningFailed.AVRO_NAME, source=SourceSystem.ACCORD, now=now),
        request_id=str(reply["request_id"]),
        workflow_id=str(reply["workflow_id"]),
        account_id=str(reply["account_id"]),
        target_system=SourceSystem.BILLING,
        request_type=str(reply["request_type"]),
        error_code=code,
        error_message=message[:1000],
        retryable=retryable,
    )


def _meta(reply: Mapping[str, Any], event_type: str, *, source: SourceSystem, now: datetime) -> Meta:
    # One answer per request id: the same id whatever the outcome, so even two answers would dedupe downstream.
    return Meta(
        event_id=derived_id(str(reply["request_id"]), "answer"),
        event_type=event_type,
        occurred_at=now,
        source_system=source,
        source_id=str(reply["request_id"]),
        correlation_id=str(reply["correlation_id"]),
        causation_id=str(reply["event_id"]),
        legal_entity=reply.get("legal_entity"),
        entity_version=int(reply["entity_version"]),
    )
