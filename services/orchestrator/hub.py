"""What the workflows share: pure rules and the shapes of the hub's requests. No I/O.

Decisions written down:
- The legal entity comes from the billing country (the CRM's `Legal_Entity__c`, when set, must agree).
- A customer of the EU or UK entity needs a VAT id of its own country; a customer whose VAT id is of another
  country than the entity's home is invoiced under the reverse charge (tax exempt in billing).
- A request's id is a uuid5 of what it asks and its attempt: the same step asks with the same id (the
  connector's idempotency key); a retry after a failure asks again under the next attempt.
- Retryable failures (outages, a customer or subscription not there yet) are retried on a schedule of
  delays; when it is spent, a person gets a case. Non-retryable failures go to a person at once.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from accord.events import (
    CustomerProvisionRequested,
    Event,
    ProvisioningCompleted,
    ProvisioningFailed,
    SourceSystem,
    SubscriptionProvisionRequested,
    new_meta,
)
from accord.runtime import Outgoing
from accord.workflows import Wait, field_of

COMPLETED = ProvisioningCompleted.AVRO_NAME
FAILED = ProvisioningFailed.AVRO_NAME
#: namespace of the hub's request ids (fixed forever: changing it re-identifies every request)
REQUEST_NAMESPACE = uuid.UUID("0c6f3a4e-8d2b-4c41-9a7e-3b5d1f2e6a90")

#: legal entity → (home country, currencies it invoices in)
ENTITIES: Mapping[str, tuple[str, frozenset[str]]] = {
    "US": ("US", frozenset({"USD"})),
    "EU": ("NL", frozenset({"EUR", "USD"})),
    "UK": ("GB", frozenset({"GBP"})),
}
EU_COUNTRIES = frozenset(
    [
        "AT",
        "BE",
        "BG",
        "CY",
        "CZ",
        "DE",
        "DK",
        "EE",
        "ES",
        "FI",
        "FR",
        "GR",
        "HR",
        "HU",
        "IE",
        "IT",
        "LT",
        "LU",
        "LV",
        "MT",
        "NL",
        "PL",
        "PT",
        "RO",
        "SE",
        "SI",
        "SK",
    ]
)
_VAT = re.compile(r"^[A-Z]{2}[0-9A-Z]{2,13}$")


@dataclass(frozen=True)
class HubConfig:
    """The hub's business settings (see settings.py for their environment names)."""

    #: a contract whose total value is above this (in its own currency) waits for a credit review
    credit_review_threshold: Decimal = Decimal("250000")
    #: delays between retries of a retryable failure; when spent, a person gets a case
    retry_delays: Sequence[timedelta] = field(
        default_factory=lambda: [timedelta(seconds=s) for s in (2, 5, 10, 20, 30, 60, 60, 120, 300, 600)]
    )
    #: how long a connector may take to answer a request before the hub asks again
    answer_sla: timedelta = timedelta(minutes=10)
    #: from the subscription provisioned to its first invoice, and from the invoice to its journal entry
    first_invoice_sla: timedelta = timedelta(hours=1)
    posting_sla: timedelta = timedelta(hours=1)

    #: how long a request may wait for what it needs to exist first (the customer, the contract's subscriptions,
    #: e.g. while the activation waits for a credit review) before a person is asked: it is no failure before
    prerequisite_patience: timedelta = timedelta(hours=24)

    def retry_delay(self, attempt: int, code: str | None = None) -> timedelta | None:
        """The delay before attempt `attempt + 1`, or None when the retries are spent. A failure that only says a
        prerequisite is not there yet keeps being retried at the last delay for `prerequisite_patience`."""
        if attempt < len(self.retry_delays):
            return self.retry_delays[attempt]
        last = self.retry_delays[-1]
        extra = math.ceil(self.prerequisite_patience / max(last, timedelta(seconds=1)))
        if code in PREREQUISITE_CODES and attempt < len(self.retry_delays) + extra:
            return last
        return None


#: the connectors' answers that mean "not yet": what the request needs does not exist yet
PREREQUISITE_CODES = frozenset({"customer-missing", "no-subscriptions"})


def legal_entity_of(country: str) -> str | None:
    if country in ("US", "CA"):
        return "US"
    if country == "GB":
        return "UK"
    if country in EU_COUNTRIES:
        return "EU"
    return None


def reverse_charge(entity: str, country: str, tax_id: str | None) -> bool:
    """A VAT-registered business buying from an entity in another country pays no VAT on the invoice."""
    return entity in ("EU", "UK") and bool(tax_id) and country != ENTITIES[entity][0]


@dataclass(frozen=True)
class CustomerMaster:
    """The account as the hub validated it: what billing and the ERP are asked to hold."""

    account_id: str
    name: str
    country: str
    currency: str
    legal_entity: str
    tax_id: str | None
    tax_exempt: bool
    parent_account_id: str | None
    payment_method: str | None

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def validate(account: Mapping[str, Any]) -> tuple[CustomerMaster | None, list[str]]:
    """The customer master of an upserted account, or the problems a person must fix in the CRM."""
    problems = []
    name = str(account.get("name") or "").strip()
    country = str(account.get("country_code") or "").upper()
    currency = str(account.get("currency") or "").upper()
    tax_id = account.get("tax_id") or None
    if not name:
        problems.append("the account has no name")
    entity = legal_entity_of(country)
    if entity is None:
        problems.append(f"no legal entity sells to billing country {country or '(none)'}")
    crm_entity = account.get("legal_entity")
    if entity is not None and crm_entity and crm_entity != entity:
        problems.append(f"the CRM books the account in {crm_entity}, but billing country {country} is {entity}'s")
    if entity is not None and currency not in ENTITIES[entity][1]:
        problems.append(f"{entity} does not invoice in {currency or '(none)'}")
    if entity in ("EU", "UK"):
        if not tax_id:
            problems.append(f"a customer of {entity} needs a VAT id")
        elif not _VAT.match(str(tax_id)) or not str(tax_id).startswith(country):
            problems.append(f"VAT id {tax_id} is not a {country} VAT id")
    if problems or entity is None:
        return None, problems
    master = CustomerMaster(
        account_id=str(account["account_id"]),
        name=name,
        country=country,
        currency=currency,
        legal_entity=entity,
        tax_id=tax_id,
        tax_exempt=bool(account.get("tax_exempt")) or reverse_charge(entity, country, tax_id),
        parent_account_id=account.get("parent_account_id") or None,
        payment_method=account.get("payment_method") or None,
    )
    return master, []


def tax_mismatch(master: CustomerMaster, taxable: Decimal, tax: Decimal) -> str | None:
    """What is wrong with the tax billing charged on a document of this customer, or None.

    A reverse-charge or exempt customer pays no tax; a taxable customer of the EU or UK entity pays VAT. (US sales
    tax depends on nexus the hub does not know: no rule.) A document with nothing taxable says nothing."""
    if taxable == 0:
        return None
    if master.tax_exempt and tax != 0:
        return f"billing charged {tax} tax to a customer who is tax exempt (reverse charge)"
    if not master.tax_exempt and master.legal_entity in ("EU", "UK") and tax == 0:
        return f"billing charged no VAT to a taxable customer of {master.legal_entity} in {master.country}"
    return None


def request_id(*parts: object) -> str:
    return str(uuid.uuid5(REQUEST_NAMESPACE, "/".join(str(p) for p in parts)))


def answer_waits(request: str, sla: timedelta) -> list[Wait]:
    """Both answers a request may get; the completion carries the answer deadline."""
    return [Wait(COMPLETED, request, deadline=sla), Wait(FAILED, request)]


def answer_deadline(request: str) -> str:
    return Wait(COMPLETED, request).timer_name


def outgoing(event: Event) -> Outgoing:
    return Outgoing(event.TOPIC, event.key(), event)


def _meta(cls: type[Event], request: str, correlation: str, cause: str | None, entity: str | None, attempt: int) -> Any:
    return new_meta(
        cls,
        source_system=SourceSystem.ACCORD,
        source_id=request,
        correlation_id=correlation,
        causation_id=cause,
        legal_entity=entity,
        entity_version=attempt,
    )


def customer_request(
    master: CustomerMaster, target: SourceSystem, *, request: str, workflow_id: str, cause: str | None, attempt: int
) -> CustomerProvisionRequested:
    return CustomerProvisionRequested(
        meta=_meta(CustomerProvisionRequested, request, master.account_id, cause, master.legal_entity, attempt),
        request_id=request,
        workflow_id=workflow_id,
        account_id=master.account_id,
        target_system=target,
        name=master.name,
        country_code=master.country,
        currency=master.currency,
        legal_entity=master.legal_entity,
        tax_exempt=master.tax_exempt,
        tax_id=master.tax_id,
        parent_account_id=master.parent_account_id,
        payment_method=master.payment_method,
    )


def subscription_request(
    contract: Mapping[str, Any],
    *,
    action: str,
    request: str,
    workflow_id: str,
    cause: str | None,
    attempt: int,
    start_date: str,
    end_date: str,
    lines: Sequence[Mapping[str, Any]],
    proration: str = "PRORATE_DAILY",
    amendment_id: str | None = None,
) -> SubscriptionProvisionRequested:
    return SubscriptionProvisionRequested.model_validate(
        {
            "meta": _meta(
                SubscriptionProvisionRequested,
                request,
                contract["contract_id"],
                cause,
                contract.get("legal_entity"),
                attempt,
            ),
            "request_id": request,
            "workflow_id": workflow_id,
            "account_id": contract["account_id"],
            "action": action,
            "contract_id": contract["contract_id"],
            "currency": contract["currency"],
            "start_date": start_date,
            "end_date": end_date,
            "lines": list(lines),
            "proration_policy": proration,
            "amendment_id": amendment_id,
            "legal_entity": contract.get("legal_entity"),
        }
    )


def failure(event: Any) -> dict[str, Any]:
    """What a ProvisioningFailed says, for state and evidence (no personal data travels in it)."""
    return {
        "code": str(field_of(event, "error_code")),
        "message": str(field_of(event, "error_message")),
        "retryable": bool(field_of(event, "retryable")),
    }
