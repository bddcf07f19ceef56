"""The state reconciliation's pull: each system's read API → `model.Observation`s, changed since a moment.

    billing = BillingSnapshots(httpx.AsyncClient(base_url=url), api_key=key)
    snapshot = Snapshot.start(System.BILLING, since=last_run.until)
    async for observation in billing.pull(snapshot):            # paginated, 429s retried, progress in `snapshot`
        ...
    snapshot.until                                              # the next run's `since`
    await billing.read(BillingObject.INVOICE, "in_…")           # one record read back (a repair's check)

One reader per system, each an async generator of observations with the SAME key, kind, status words, amount (major
units, 4 places as the events' Money), currency, period, legal entity and account as `model.observe` gives for the
event the connector would have published for that record. The mapping functions are pure (`invoice_observations`,
`credit_note_observations`, `refund_observations`, `journal_entry_observations`, `account_observation`); the
readers around them do the paging, the retries and the look-ups (customer, charge, failed charges, subsidiary,
period), each for one pull.

How each system tells what changed since `since` (a pull re-reads from `since - overlap`, so a record committed
late with an earlier stamp is not missed; re-reading a record is harmless, `MatchState.add` keeps one copy):

- billing (Stripe): its lists filter on creation only (`created[gte]`), never on change. New invoices, credit notes
  and refunds come from the lists; records changed after their creation (an invoice paid, voided, written off or
  edited in the dashboard, a charge refunded) are found in the Events API (`/events?created[gte]=…`, newest first,
  kept 30 days by Stripe) and read again by id, so what is reported is the record as it is now. A `since` older
  than the events' retention needs a full pull (`since=None`).
- ERP (NetSuite): `GET /journalEntry?q=lastModifiedDate ON_OR_AFTER "…"` with limit/offset paging; a person's
  edit moves lastModifiedDate, so it is found.
- CRM (Salesforce): SOQL `SELECT … FROM Account WHERE LastModifiedDate >= …`, following `nextRecordsUrl`.

What a snapshot cannot say (so the observation leaves it empty, and the rules treat it as unknown):

- `version`: the events' version is the billing event's sequence number (`mapping.entity_version`), which no record
  carries. Snapshot observations have `version=None`, except an ERP entry carrying `custbody_accord_version` (the
  billing document's version, if the ERP connector writes it). `MatchState.latest_per_record` ranks by version
  first, so a snapshot (None) would never outrank an event-derived observation of the same record: pass snapshot
  observations through `align_versions(state, observations)` before adding them to a key's event-derived state.
- a failed payment's history: an unpaid invoice says only its latest failed attempt (`<invoice>/attempt/<n>`, at
  its failed charge's `created`; an attempt without a payment method makes no charge, so it has no time and no
  outcome). The account relation compares the latest outcome only, which is what the snapshot gives.
- a void or write-off is observed a microsecond after the issue of the same invoice, so that `recency` (version,
  then observed_at) ranks it newest without a version.
- summarized ERP entries (several documents in one entry): no one document's posting; counted as skipped.
"""

from __future__ import annotations

import asyncio
import datetime
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

import httpx

from accord import oauth
from accord.commands import RetryPolicy, parse_retry_after
from accord.errors import AccordError

from .model import (
    MatchState,
    Observation,
    RecordKind,
    Relation,
    Status,
    System,
    crm_account_status,
    journal_key,
    match_key,
    period_of,
)

UTC = datetime.UTC
#: Stripe's zero-decimal currencies: the integer amount is already in major units (as the billing connector's mapping)
ZERO_DECIMAL = frozenset(
    "BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF".split()  # noqa: SIM905
)
#: the events' Money carries 4 places (Avro decimal(18,4)); observations from snapshots carry the same
_PLACES = Decimal("0.0001")
BILLING_PATH = "/billing/v1"
ERP_RECORD = "/erp/services/rest/record/v1"
ERP_TOKEN_PATH = "/erp/services/rest/auth/oauth2/v1/token"
CRM_DATA = "/crm/services/data/v60.0"
CRM_TOKEN_PATH = "/crm/services/oauth2/token"
#: billing event types whose object changed after it was created (what the Events API is read for)
BILLING_CHANGES = ("invoice.*", "credit_note.*", "charge.refunded")
DEFAULT_OVERLAP = datetime.timedelta(minutes=2)


class PullError(AccordError):
    """A system's read API refused the pull, or kept failing after the retries. `retryable` says whether a later
    run may succeed (throttling, 5xx, no connection) or the request must change (credentials, a bad filter)."""

    def __init__(self, system: System, message: str, *, status: int | None = None, retryable: bool = False) -> None:
        super().__init__(f"{system.value} snapshot: {message}")
        self.system = system
        self.status = status
        self.retryable = retryable


class BillingObject(StrEnum):
    """The billing collections a snapshot reads (Stripe's list names)."""

    INVOICE = "invoices"
    CREDIT_NOTE = "credit_notes"
    REFUND = "refunds"
    CHARGE = "charges"
    CUSTOMER = "customers"


# -- the summary of one pull -------------------------------------------------------------------------------------


@dataclass
class Snapshot:
    """One pull of one system: what it read, for the CLI's progress and summary. Counters move while it runs.

    `until` is the newest change stamp the pull saw (the next run's `since`); it stays `since` when nothing changed.
    """

    system: System
    since: datetime.datetime | None
    started_at: datetime.datetime
    until: datetime.datetime | None = None
    finished_at: datetime.datetime | None = None
    records: int = 0  # records read (each list item or single read)
    observations: int = 0
    pages: int = 0
    requests: int = 0
    throttled: int = 0  # 429 (or the CRM's REQUEST_LIMIT_EXCEEDED) answers absorbed by a retry
    retried: int = 0  # other transient failures absorbed (5xx, dropped connections)
    skipped: dict[str, int] = field(default_factory=dict)  # reason → records that yield no observation

    @classmethod
    def start(cls, system: System, since: datetime.datetime | None = None) -> Snapshot:
        if since is not None and since.tzinfo is None:
            raise ValueError(f"since {since.isoformat()} has no time zone: pass an aware UTC datetime")
        return cls(system=system, since=since, until=since, started_at=datetime.datetime.now(UTC))

    def saw(self, moment: datetime.datetime | None) -> None:
        if moment is not None and (self.until is None or moment > self.until):
            self.until = moment

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    @property
    def done(self) -> bool:
        return self.finished_at is not None

    def describe(self) -> str:
        window = f"since {self.since.isoformat()}" if self.since else "full"
        text = (
            f"{self.system.value.lower()}: {self.records} records → {self.observations} observations ({window}), "
            f"{self.pages} pages, {self.requests} requests, {self.throttled} throttled, {self.retried} retried"
        )
        if self.skipped:
            text += "; skipped " + ", ".join(f"{n} {why}" for why, n in sorted(self.skipped.items()))
        return text


# -- small conversions -------------------------------------------------------------------------------------------


def major(minor: Any, currency: str) -> Decimal:
    """Stripe's integer minor units → major units, 4 places as the events' Money."""
    if not isinstance(minor, int) or isinstance(minor, bool):
        raise ValueError(f"amount {minor!r} is not an integer of minor units")
    code = currency.upper()
    value = Decimal(minor) if code in ZERO_DECIMAL else Decimal(minor).scaleb(-2)
    return value.quantize(_PLACES)


def from_unix(value: Any) -> datetime.datetime:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"timestamp {value!r} is not unix seconds")
    return datetime.datetime.fromtimestamp(value, UTC)


def parse_stamp(value: Any) -> datetime.datetime | None:
    """An ISO 8601 stamp (`…Z` or with an offset) as an aware UTC datetime; None when absent."""
    if not value:
        return None
    moment = datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def stamp(moment: datetime.datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# -- billing records → observations (pure) ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BillingCustomer:
    """What a billing record's customer says about keys: the canonical account and the legal entity."""

    customer_id: str
    account_id: str | None
    legal_entity: str | None

    @classmethod
    def of(cls, customer: Mapping[str, Any]) -> BillingCustomer:
        metadata = customer.get("metadata") or {}
        return cls(
            customer_id=str(customer["id"]),
            account_id=metadata.get("crm_account_id") or None,
            legal_entity=metadata.get("legal_entity") or None,
        )


def _line_taxes(amounts: list[int], total_tax: int, rate: Decimal) -> list[int]:
    """Per-line taxes in minor units as the billing connector splits them: the invoice's rate on each line, the
    rounding rest on the last line."""
    if not total_tax:
        return [0 for _ in amounts]
    shares = [int((Decimal(a) * rate).quantize(Decimal("1"))) for a in amounts]
    if shares:
        shares[-1] += total_tax - sum(shares)
    return shares


def _billing_common(customer: BillingCustomer, observed_at: datetime.datetime) -> dict[str, Any]:
    return {
        "system": System.BILLING,
        "observed_at": observed_at,
        "legal_entity": customer.legal_entity,
        "account_id": customer.account_id,
    }


def _outcome(
    customer: BillingCustomer,
    payment_id: str,
    status: Status,
    when: datetime.datetime,
    amount: Decimal,
    currency: str,
    observed_at: datetime.datetime,
) -> Observation:
    """The account relation's billing side (model._payment_outcome)."""
    return Observation(
        key=match_key(Relation.ACCOUNT, customer.account_id or ""),
        kind=RecordKind.PAYMENT,
        record_id=payment_id,
        amount=amount,
        currency=currency,
        status=status,
        occurred_at=when,
        extra={"outcome_at": when.astimezone(UTC).isoformat()},
        **_billing_common(customer, observed_at),
    )


def invoice_observations(
    invoice: Mapping[str, Any],
    customer: BillingCustomer,
    *,
    observed_at: datetime.datetime,
    failed_at: datetime.datetime | None = None,
) -> list[Observation]:
    """A billing invoice as it is now: issued (once finalized), and voided, written off or paid (by a charge); while
    it is unpaid after a failed attempt, the account's latest outcome 'Failed' (PaymentFailed of attempt n).

    A draft is no fact yet (the connector reports an invoice from `invoice.finalized`); a payment without a charge
    (a credit, out of band) is no payment the connector reports. `failed_at` is when the latest attempt failed (its
    failed charge's `created`): the invoice does not keep it, and an outcome without its time cannot be ordered.
    """
    transitions = invoice.get("status_transitions") or {}
    status = invoice.get("status")
    if status == "draft":
        return []
    inv_id = str(invoice["id"])
    currency = str(invoice["currency"]).upper()
    key = journal_key(customer.legal_entity, inv_id)
    number = str(invoice.get("number") or inv_id)
    common = _billing_common(customer, observed_at)
    issued_at = from_unix(transitions.get("finalized_at") or invoice["created"])
    lines = (invoice.get("lines") or {}).get("data") or []
    amounts = [int(line["amount"]) for line in lines]
    taxes = _line_taxes(amounts, int(invoice.get("tax") or 0), Decimal(str(invoice.get("tax_rate") or "0")))
    prorated = sum(
        (major(a, currency) for a, ln in zip(amounts, lines, strict=True) if ln.get("proration")), Decimal(0)
    )
    # A line has a tax line only when the invoice is taxed (the connector's TaxLine list is empty otherwise): an
    # untaxed invoice's proration tax is Decimal(0), written "0"; a taxed one's sums 4-place amounts, "0.0000".
    prorated_tax = Decimal(0)
    if int(invoice.get("tax") or 0):
        prorated_tax = sum(
            (major(t, currency) for t, ln in zip(taxes, lines, strict=True) if ln.get("proration")), Decimal(0)
        )
    out = [
        Observation(
            key=key,
            kind=RecordKind.INVOICE,
            record_id=inv_id,
            amount=major(invoice["total"], currency),
            currency=currency,
            status=Status.ISSUED,
            period=period_of(issued_at.date()),
            occurred_at=issued_at,
            extra={
                "document_date": issued_at.date().isoformat(),
                "number": number,
                "subtotal": str(major(invoice["subtotal"], currency)),
                "tax": str(major(int(invoice.get("tax") or 0), currency)),
                "proration": str(prorated),
                "proration_tax": str(prorated_tax),
                "lines": str(len(lines)),
            },
            **common,
        )
    ]
    left = invoice.get("amount_remaining", invoice.get("amount_due"))
    # A void or write-off is a later statement of the same record: learned a microsecond after its issue, so that
    # `Observation.recency` (version, then observed_at) ranks it newest without a version, as the events' do.
    later = observed_at + datetime.timedelta(microseconds=1)
    if status == "void":
        voided_at = from_unix(transitions.get("voided_at") or invoice["created"])
        out.append(
            Observation(
                key=key,
                kind=RecordKind.INVOICE,
                record_id=inv_id,
                amount=major(left, currency),
                currency=currency,
                status=Status.VOIDED,
                period=period_of(voided_at.date()),
                occurred_at=voided_at,
                extra={"number": number},
                **{**common, "observed_at": later},
            )
        )
    elif status == "uncollectible":
        written_off = transitions.get("marked_uncollectible_at")
        out.append(
            Observation(
                key=key,
                kind=RecordKind.INVOICE,
                record_id=inv_id,
                amount=major(left, currency),
                currency=currency,
                status=Status.UNCOLLECTIBLE,
                occurred_at=None if written_off is None else from_unix(written_off),
                extra={"number": number},
                **{**common, "observed_at": later},
            )
        )
    elif status == "paid" and invoice.get("charge") and transitions.get("paid_at"):
        charge = str(invoice["charge"])
        paid_at = from_unix(transitions["paid_at"])
        amount = major(invoice["amount_paid"], currency)
        out.append(
            Observation(
                key=journal_key(customer.legal_entity, charge),
                kind=RecordKind.PAYMENT,
                record_id=charge,
                amount=amount,
                currency=currency,
                status=Status.COLLECTED,
                period=period_of(paid_at.date()),
                occurred_at=paid_at,
                extra={
                    "document_date": paid_at.date().isoformat(),
                    "outcome_at": paid_at.isoformat(),
                    "invoice_id": inv_id,
                },
                **common,
            )
        )
        if customer.account_id:
            out.append(_outcome(customer, charge, Status.SUCCEEDED, paid_at, amount, currency, observed_at))
    attempts = int(invoice.get("attempt_count") or 0)
    if (
        status in ("open", "uncollectible")
        and attempts
        and invoice.get("last_payment_error")
        and failed_at is not None
        and customer.account_id
    ):
        # as mapping.payment_failed: the attempt of the invoice names the failed payment, what remains is its amount
        out.append(
            _outcome(
                customer,
                f"{inv_id}/attempt/{attempts}",
                Status.FAILED,
                failed_at,
                major(left, currency),
                currency,
                observed_at,
            )
        )
    return out


def latest_failures(charges: Iterable[Mapping[str, Any]]) -> dict[str, datetime.datetime]:
    """invoice id → when its latest failed charge was made (the time of its latest failed attempt)."""
    out: dict[str, datetime.datetime] = {}
    for charge in charges:
        if charge.get("status") != "failed" or not charge.get("invoice") or not isinstance(charge.get("created"), int):
            continue
        when = from_unix(charge["created"])
        invoice = str(charge["invoice"])
        if invoice not in out or when > out[invoice]:
            out[invoice] = when
    return out


def credit_note_observations(
    note: Mapping[str, Any], customer: BillingCustomer, *, observed_at: datetime.datetime
) -> list[Observation]:
    """A credit note (CreditNoteIssued): its amount is its total, untaxed, one line."""
    note_id = str(note["id"])
    currency = str(note["currency"]).upper()
    amount = major(note["amount"], currency)
    issued_at = from_unix(note["created"])
    return [
        Observation(
            key=journal_key(customer.legal_entity, note_id),
            kind=RecordKind.CREDIT_NOTE,
            record_id=note_id,
            amount=amount,
            currency=currency,
            status=Status.ISSUED,
            period=period_of(issued_at.date()),
            occurred_at=issued_at,
            extra={
                "document_date": issued_at.date().isoformat(),
                "number": str(note.get("number") or note_id),
                "invoice_id": str(note["invoice"]),
                "subtotal": str(amount),
                "tax": str(Decimal(0).quantize(_PLACES)),
                "lines": "1",
            },
            **_billing_common(customer, observed_at),
        )
    ]


def refund_observations(
    refund: Mapping[str, Any], customer: BillingCustomer, *, observed_at: datetime.datetime
) -> list[Observation]:
    """A refund of a charge (PaymentRefunded): the refund document, and the account's latest outcome 'Refunded'."""
    if refund.get("status") not in (None, "succeeded"):
        return []
    refund_id, charge = str(refund["id"]), str(refund["charge"])
    currency = str(refund["currency"]).upper()
    amount = major(refund["amount"], currency)
    when = from_unix(refund["created"])
    out = [
        Observation(
            key=journal_key(customer.legal_entity, refund_id),
            kind=RecordKind.REFUND,
            record_id=refund_id,
            amount=amount,
            currency=currency,
            status=Status.REFUNDED,
            period=period_of(when.date()),
            occurred_at=when,
            extra={"document_date": when.date().isoformat(), "payment_id": charge},
            **_billing_common(customer, observed_at),
        )
    ]
    if customer.account_id:
        out.append(_outcome(customer, charge, Status.PAYMENT_REFUNDED, when, amount, currency, observed_at))
    return out


# -- ERP journal entries → observations (pure) --------------------------------------------------------------------


def documents_of(entry: Mapping[str, Any]) -> list[str]:
    """The billing documents an ERP entry posts (its lineage field, written by the ERP connector)."""
    raw = str(entry.get("custbody_accord_documents") or "")
    return [d for d in (part.strip() for part in raw.split(",")) if d]


def journal_entry_observations(
    entry: Mapping[str, Any],
    *,
    legal_entity: str,
    period: str,
    observed_at: datetime.datetime,
) -> list[Observation]:
    """An ERP journal entry as JournalPosted says it: keyed by legal entity and its one source document, total in
    the entry's currency (2 places, as the connector reads it back), the posting period, the request (externalId).

    `legal_entity` is the subsidiary's externalId and `period` the posting period's YYYY-MM (the reader resolves
    both references). An entry of several documents (a summary) or of none (not accord's) gives nothing.
    """
    documents = documents_of(entry)
    if len(documents) != 1:
        return []
    version = entry.get("custbody_accord_version")
    extra = {"journal_request_id": str(entry.get("externalId") or "")}
    created = parse_stamp(entry.get("createdDate"))
    if created is not None:
        extra["posted_at"] = created.isoformat()
    total = Decimal(str(entry["total"])).quantize(Decimal("0.01")).quantize(_PLACES)
    return [
        Observation(
            key=journal_key(legal_entity, documents[0]),
            system=System.ERP,
            kind=RecordKind.JOURNAL_ENTRY,
            record_id=str(entry["id"]),
            amount=total,
            currency=str(entry.get("currency") or ""),
            status=Status.POSTED,
            legal_entity=legal_entity,
            period=period,
            version=int(version) if isinstance(version, int | str) and str(version).isdigit() else None,
            observed_at=observed_at,
            occurred_at=parse_stamp(entry.get("lastModifiedDate")),
            extra=extra,
        )
    ]


# -- CRM accounts → observations (pure) ---------------------------------------------------------------------------


def account_observation(account: Mapping[str, Any], *, observed_at: datetime.datetime) -> Observation:
    """A CRM Account's write-back fields (model.crm_account_status); the canonical account id is the CRM's Id."""
    return crm_account_status(
        str(account["Id"]),
        account.get("Payment_Status__c") or None,
        observed_at=observed_at,
        invoice_status=account.get("Invoice_Status__c") or None,
    )


# -- HTTP: one GET with the retries a read may take -------------------------------------------------------------


Clock = Callable[[], datetime.datetime]
Sleep = Callable[[float], Awaitable[None]]


def _now() -> datetime.datetime:
    return datetime.datetime.now(UTC)


def error_detail(response: httpx.Response) -> str:
    """The system's own error code and words (Stripe's, NetSuite's or Salesforce's shape), else the HTTP reason."""
    try:
        body: Any = response.json()
    except ValueError:
        return response.reason_phrase
    if isinstance(body, list) and body and isinstance(body[0], Mapping):
        body = body[0]
    if isinstance(body, Mapping):
        details = body.get("o:errorDetails")
        if isinstance(details, list) and details and isinstance(details[0], Mapping):
            return f"{details[0].get('o:errorCode')}: {details[0].get('detail')}"[:500]
        nested = body.get("error")
        inner: Mapping[str, Any] = nested if isinstance(nested, Mapping) else body
        code = inner.get("code") or inner.get("errorCode") or inner.get("title")
        message = inner.get("message") or inner.get("detail") or ""
        if code or message:
            return f"{code}: {message}"[:500]
    return response.reason_phrase


def _throttled(response: httpx.Response) -> bool:
    if response.status_code == 429:
        return True
    # Salesforce answers its request limit with 403 REQUEST_LIMIT_EXCEEDED (the sandbox's 429 knob does too)
    return response.status_code == 403 and "REQUEST_LIMIT_EXCEEDED" in response.text


class _Reader:
    """GETs of one system with retries: 429 (after its Retry-After) and 5xx/transport errors, with full jitter."""

    system: System

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        auth: httpx.Auth | None,
        headers: Mapping[str, str] | None = None,
        retry: RetryPolicy | None = None,
        clock: Clock = _now,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
        overlap: datetime.timedelta = DEFAULT_OVERLAP,
    ) -> None:
        self.http = http
        self.auth = auth
        self.headers = dict(headers or {})
        self.retry = retry or RetryPolicy(max_attempts=8, base=0.5, cap=30.0)
        self.clock = clock
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.overlap = overlap
        self.last: Snapshot | None = None

    def _from(self, since: datetime.datetime | None) -> datetime.datetime | None:
        return None if since is None else since - self.overlap

    async def get(
        self,
        path: str,
        snapshot: Snapshot | None,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        missing_ok: bool = False,
    ) -> Any:
        """The JSON answer of `GET path`; None for a 404 when `missing_ok`. Raises PullError."""
        where = f"GET {path}"
        attempt = 0
        while True:
            attempt += 1
            retry_after: float | None = None
            try:
                response = await self.http.get(
                    path, params=params, headers={**self.headers, **(headers or {})}, auth=self._auth()
                )
            except httpx.TransportError as exc:
                problem = f"{where}: no answer ({type(exc).__name__})"
                kind = "retried"
            else:
                if snapshot is not None:
                    snapshot.requests += 1
                if response.status_code < 300:
                    return response.json()
                if response.status_code == 404 and missing_ok:
                    return None
                problem = f"{where}: HTTP {response.status_code} {error_detail(response)}"
                if _throttled(response):
                    kind, retry_after = "throttled", parse_retry_after(response.headers.get("Retry-After"))
                elif response.status_code >= 500 or response.status_code == 408:
                    kind = "retried"
                else:
                    if response.status_code in (401, 403):
                        problem += f"; check the {self.system.value} credentials (API key, client id and secret)"
                    raise PullError(self.system, problem, status=response.status_code)
            if attempt >= self.retry.max_attempts:
                raise PullError(self.system, f"{problem}; gave up after {attempt} attempts", retryable=True)
            if snapshot is not None:
                setattr(snapshot, kind, getattr(snapshot, kind) + 1)
            await self.sleep(self.retry.delay(attempt, self.rng, retry_after))

    def _auth(self) -> httpx.Auth | None:
        return self.auth

    def _begin(
        self, since: datetime.datetime | None, snapshot: Snapshot | None
    ) -> tuple[Snapshot, datetime.datetime | None]:
        """The pull's summary and its `since` (the snapshot's when only the snapshot says it)."""
        if snapshot is None:
            snapshot = Snapshot.start(self.system, since)
        elif snapshot.system is not self.system:
            raise ValueError(f"a {snapshot.system.value} snapshot passed to the {self.system.value} pull")
        elif since is None:
            since = snapshot.since
        elif since != snapshot.since:
            raise ValueError(f"pull since {since.isoformat()} with a snapshot since {snapshot.since}: pass one")
        self.last = snapshot
        return snapshot, since

    @staticmethod
    def _end(snapshot: Snapshot) -> None:
        snapshot.finished_at = _now()


# -- billing ------------------------------------------------------------------------------------------------------


class BillingSnapshots(_Reader):
    """Billing (Stripe-shaped, under /billing/v1): invoices, credit notes and refunds, with their customers."""

    system = System.BILLING

    def __init__(self, http: httpx.AsyncClient, *, api_key: str, page_size: int = 100, **options: Any) -> None:
        if not 1 <= page_size <= 100:
            raise ValueError(f"page_size {page_size}: Stripe lists take 1..100")
        super().__init__(http, auth=None, headers={"Authorization": f"Bearer {api_key}"}, **options)
        self.page_size = page_size
        self._forget()

    def _forget(self) -> None:
        """Look-ups live for one pull or read: a customer's metadata or a charge may change between runs."""
        self._customers: dict[str, BillingCustomer] = {}
        self._charges: dict[str, dict[str, Any]] = {}
        self._failures: dict[str, dict[str, datetime.datetime]] = {}  # customer → invoice → latest failure
        self._all_failures: dict[str, datetime.datetime] | None = None  # every invoice's, when read in one list

    async def pull(
        self, since: datetime.datetime | None = None, snapshot: Snapshot | None = None
    ) -> AsyncIterator[Observation]:
        """Every invoice, credit note and refund (since=None), or those created or changed since `since`."""
        snap, since = self._begin(since, snapshot)
        self._forget()
        start = self._from(since)
        seen: set[tuple[BillingObject, str]] = set()
        if start is None:
            async for customer in self._list(BillingObject.CUSTOMER, None, snap):
                self._customers[str(customer["id"])] = BillingCustomer.of(customer)
            failed = [c async for c in self._list(BillingObject.CHARGE, None, snap, status="failed")]
            self._all_failures = latest_failures(failed)
        for collection in (BillingObject.INVOICE, BillingObject.CREDIT_NOTE, BillingObject.REFUND):
            async for obj in self._list(collection, start, snap):
                seen.add((collection, str(obj["id"])))
                for observation in await self._observe(collection, obj, snap):
                    yield observation
        if start is not None:
            async for collection, obj_id in self._changed(start, snap):
                if (collection, obj_id) in seen:
                    continue
                seen.add((collection, obj_id))
                obj = await self.get(f"{BILLING_PATH}/{collection.value}/{obj_id}", snap, missing_ok=True)
                if obj is None:
                    snap.skip(f"{collection.value} gone since its event")
                    continue
                for observation in await self._observe(collection, obj, snap):
                    yield observation
        self._end(snap)

    async def read(self, collection: BillingObject, object_id: str) -> list[Observation]:
        """One record as billing holds it now (a repair's read-back); [] when billing has no such record."""
        self._forget()
        obj = await self.get(f"{BILLING_PATH}/{collection.value}/{object_id}", None, missing_ok=True)
        return [] if obj is None else await self._observe(collection, obj, None)

    async def _list(
        self, collection: BillingObject, created_from: datetime.datetime | None, snap: Snapshot | None, **match: str
    ) -> AsyncIterator[dict[str, Any]]:
        params: dict[str, Any] = {"limit": self.page_size, **match}
        if created_from is not None:
            params["created[gte]"] = int(created_from.timestamp())
        while True:
            page = await self.get(f"{BILLING_PATH}/{collection.value}", snap, params=params)
            if snap is not None:
                snap.pages += 1
            items = [i for i in page.get("data") or [] if isinstance(i, dict)]
            for item in items:
                yield item
            if not page.get("has_more") or not items:
                return
            params["starting_after"] = items[-1]["id"]

    async def _changed(
        self, created_from: datetime.datetime, snap: Snapshot
    ) -> AsyncIterator[tuple[BillingObject, str]]:
        """(collection, id) of records an event since `created_from` changed, newest first, each once."""
        found: set[tuple[BillingObject, str]] = set()
        for event_type in BILLING_CHANGES:
            params: dict[str, Any] = {
                "limit": self.page_size,
                "type": event_type,
                "created[gte]": int(created_from.timestamp()),
            }
            while True:
                page = await self.get(f"{BILLING_PATH}/events", snap, params=params)
                snap.pages += 1
                events = [e for e in page.get("data") or [] if isinstance(e, dict)]
                for event in events:
                    snap.saw(from_unix(event["created"]))
                    obj = (event.get("data") or {}).get("object") or {}
                    targets: list[tuple[BillingObject, str]] = []
                    if obj.get("object") == "invoice":
                        targets = [(BillingObject.INVOICE, str(obj["id"]))]
                    elif obj.get("object") == "credit_note":
                        targets = [(BillingObject.CREDIT_NOTE, str(obj["id"]))]
                    elif obj.get("object") == "charge":
                        self._charges[str(obj["id"])] = obj
                        targets = [(BillingObject.REFUND, str(r)) for r in obj.get("refunds") or []]
                    for target in targets:
                        if target not in found:
                            found.add(target)
                            yield target
                if not page.get("has_more") or not events:
                    break
                params["starting_after"] = events[-1]["id"]

    async def _customer(self, customer_id: str, snap: Snapshot | None) -> BillingCustomer | None:
        if customer_id not in self._customers:
            found = await self.get(f"{BILLING_PATH}/customers/{customer_id}", snap, missing_ok=True)
            if found is None:
                return None
            self._customers[customer_id] = BillingCustomer.of(found)
        return self._customers[customer_id]

    async def _failures_of(self, customer_id: str, snap: Snapshot | None) -> Mapping[str, datetime.datetime]:
        if self._all_failures is not None:
            return self._all_failures
        if customer_id not in self._failures:
            charges = [
                c async for c in self._list(BillingObject.CHARGE, None, snap, customer=customer_id, status="failed")
            ]
            self._failures[customer_id] = latest_failures(charges)
        return self._failures[customer_id]

    async def _observe(
        self, collection: BillingObject, obj: Mapping[str, Any], snap: Snapshot | None
    ) -> list[Observation]:
        if snap is not None:
            snap.records += 1
            snap.saw(from_unix(obj["created"]) if isinstance(obj.get("created"), int) else None)
        customer_id = obj.get("customer")
        if collection is BillingObject.REFUND:
            charge = self._charges.get(str(obj["charge"]))
            if charge is None:
                charge = await self.get(f"{BILLING_PATH}/charges/{obj['charge']}", snap, missing_ok=True) or {}
                self._charges[str(obj["charge"])] = charge
            customer_id = charge.get("customer")
        customer = None if not customer_id else await self._customer(str(customer_id), snap)
        if customer is None or not customer.account_id:
            if snap is not None:
                snap.skip("billing records whose customer has no metadata.crm_account_id")
            return []
        observed_at = self.clock()
        if collection is BillingObject.INVOICE:
            failed_at = None
            if obj.get("status") in ("open", "uncollectible") and obj.get("attempt_count"):
                failed_at = (await self._failures_of(customer.customer_id, snap)).get(str(obj["id"]))
                if failed_at is None and snap is not None:
                    snap.skip("failed payments without a failed charge (no time to order the outcome by)")
            out = invoice_observations(obj, customer, observed_at=observed_at, failed_at=failed_at)
        elif collection is BillingObject.CREDIT_NOTE:
            out = credit_note_observations(obj, customer, observed_at=observed_at)
        elif collection is BillingObject.REFUND:
            out = refund_observations(obj, customer, observed_at=observed_at)
        else:
            raise ValueError(
                f"billing {collection.value} are not observed by a snapshot: read invoices, credit_notes or refunds"
            )
        if snap is not None:
            snap.observations += len(out)
            if not out:
                snap.skip(f"{collection.value} with nothing to report (draft, failed)")
        return out


# -- ERP ----------------------------------------------------------------------------------------------------------


class ErpSnapshots(_Reader):
    """The ERP (NetSuite-shaped REST records): journal entries, with their subsidiary and posting period resolved."""

    system = System.ERP

    def __init__(
        self, http: httpx.AsyncClient, *, client_id: str, client_secret: str, page_size: int = 1000, **options: Any
    ) -> None:
        if not 1 <= page_size <= 1000:
            raise ValueError(f"page_size {page_size}: NetSuite collections take 1..1000")

        def refused(answer: httpx.Response) -> Exception:
            return PullError(
                System.ERP,
                f"the ERP refused client credentials of {client_id!r} (HTTP {answer.status_code}: "
                f"{error_detail(answer)}): check the ERP client id and secret",
                status=answer.status_code,
            )

        auth = oauth.ClientCredentials(client_id, client_secret, token_path=ERP_TOKEN_PATH, refused=refused)
        super().__init__(http, auth=auth, **options)
        self.page_size = page_size
        self._entities: dict[str, str] = {}  # subsidiary internal id → its externalId (the legal entity code)
        self._periods: dict[str, str] = {}  # accounting period internal id → YYYY-MM

    async def pull(
        self, since: datetime.datetime | None = None, snapshot: Snapshot | None = None
    ) -> AsyncIterator[Observation]:
        """Every journal entry (since=None), or those whose lastModifiedDate is at or after `since`."""
        snap, since = self._begin(since, snapshot)
        start = self._from(since)
        query = None if start is None else f'lastModifiedDate ON_OR_AFTER "{stamp(start)}"'
        offset = 0
        while True:
            params: dict[str, Any] = {"limit": self.page_size, "offset": offset}
            if query is not None:
                params["q"] = query
            page = await self.get(f"{ERP_RECORD}/journalEntry", snap, params=params)
            snap.pages += 1
            items = [i for i in page.get("items") or [] if isinstance(i, dict)]
            for entry in items:
                for observation in await self._observe(entry, snap):
                    yield observation
            if not page.get("hasMore") or not items:
                break
            offset += len(items)
        self._end(snap)

    async def read(self, key: str) -> list[Observation]:
        """One journal entry by internal id or `eid:<externalId>` (a repair's read-back); [] when there is none."""
        entry = await self.get(f"{ERP_RECORD}/journalEntry/{key}", None, missing_ok=True)
        return [] if entry is None else await self._observe(entry, None)

    async def _observe(self, entry: Mapping[str, Any], snap: Snapshot | None) -> list[Observation]:
        if snap is not None:
            snap.records += 1
            snap.saw(parse_stamp(entry.get("lastModifiedDate")))
        documents = documents_of(entry)
        if len(documents) != 1:
            if snap is not None:
                snap.skip("journal entries of no accord document" if not documents else "summary journal entries")
            return []
        entity = await self._entity(str((entry.get("subsidiary") or {}).get("id") or ""), snap)
        period = await self._period(str((entry.get("postingPeriod") or {}).get("id") or ""), entry, snap)
        out = journal_entry_observations(entry, legal_entity=entity, period=period, observed_at=self.clock())
        if snap is not None:
            snap.observations += len(out)
        return out

    async def _entity(self, subsidiary_id: str, snap: Snapshot | None) -> str:
        if subsidiary_id not in self._entities:
            record = await self.get(f"{ERP_RECORD}/subsidiary/{subsidiary_id}", snap, missing_ok=True)
            # a subsidiary without an externalId is none of accord's legal entities: keyed as the ERP's own id
            code = (record or {}).get("externalId") or f"erp-subsidiary-{subsidiary_id}"
            self._entities[subsidiary_id] = str(code)
        return self._entities[subsidiary_id]

    async def _period(self, period_id: str, entry: Mapping[str, Any], snap: Snapshot | None) -> str:
        if period_id not in self._periods:
            record = await self.get(f"{ERP_RECORD}/accountingPeriod/{period_id}", snap, missing_ok=True)
            start = (record or {}).get("startDate") or entry.get("tranDate")
            self._periods[period_id] = str(start)[:7]
        return self._periods[period_id]


# -- CRM ----------------------------------------------------------------------------------------------------------


class CrmSnapshots(_Reader):
    """The CRM (Salesforce-shaped): each Account's write-back fields, read by SOQL."""

    system = System.CRM
    FIELDS = "Id, Payment_Status__c, Invoice_Status__c, LastModifiedDate"

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        client_id: str,
        client_secret: str,
        batch_size: int | None = None,
        **options: Any,
    ) -> None:
        def refused(answer: httpx.Response) -> Exception:
            return PullError(
                System.CRM,
                f"the CRM refused client credentials of {client_id!r} (HTTP {answer.status_code}: "
                f"{error_detail(answer)}): check the CRM client id and secret",
                status=answer.status_code,
            )

        auth = oauth.ClientCredentials(client_id, client_secret, token_path=CRM_TOKEN_PATH, refused=refused)
        # Sforce-Call-Options names accord, so its reads are told apart from people's in the CRM's logs
        headers = {"Sforce-Call-Options": f"client={client_id}"}
        if batch_size is not None:
            # Salesforce takes 200..2000; the sandbox also reads `sandboxBatchSize` so tests can page small
            headers["Sforce-Query-Options"] = (
                f"batchSize={max(200, min(2000, batch_size))}, sandboxBatchSize={batch_size}"
            )
        super().__init__(http, auth=auth, headers=headers, **options)

    async def pull(
        self, since: datetime.datetime | None = None, snapshot: Snapshot | None = None
    ) -> AsyncIterator[Observation]:
        """Every Account (since=None), or those modified at or after `since`."""
        snap, since = self._begin(since, snapshot)
        start = self._from(since)
        soql = f"SELECT {self.FIELDS} FROM Account"
        if start is not None:
            soql += f" WHERE LastModifiedDate >= {stamp(start)}"
        body = await self.get(f"{CRM_DATA}/query", snap, params={"q": soql})
        while True:
            snap.pages += 1
            for account in body.get("records") or []:
                snap.records += 1
                snap.saw(parse_stamp(account.get("LastModifiedDate")))
                snap.observations += 1
                yield account_observation(account, observed_at=self.clock())
            if body.get("done", True) or not body.get("nextRecordsUrl"):
                break
            body = await self.get(str(body["nextRecordsUrl"]), snap)
        self._end(snap)

    async def read(self, account_id: str) -> list[Observation]:
        """One Account as the CRM holds it now; [] when it does not exist."""
        account = await self.get(f"{CRM_DATA}/sobjects/Account/{account_id}", None, missing_ok=True)
        return [] if account is None else [account_observation(account, observed_at=self.clock())]


def align_versions(state: MatchState, observations: Iterable[Observation]) -> list[Observation]:
    """Snapshot observations made comparable with the event-derived ones of `state`, before `state.add` them.

    `MatchState.latest_per_record` (and `rules`) rank a record's statements by version first, so a snapshot's
    (version None) would never outrank what the stream said, and a person's edit in the ERP would stay invisible to
    the rules. A record read now reflects at least every version the stream has told of it: each observation takes the
    highest version `state` holds for the same record and status (else for the same record; None when the stream never
    told of it), and, read later, wins the tie. Re-reading an unchanged record gives the same identity, so it is not
    added twice.
    """
    by_status: dict[tuple[Any, ...], int] = {}
    by_record: dict[tuple[Any, ...], int] = {}
    for o in state.observations:
        if o.version is None:
            continue
        for table, ident in (
            (by_status, (o.system, o.kind, o.record_id, o.status)),
            (by_record, (o.system, o.kind, o.record_id)),
        ):
            table[ident] = max(table.get(ident, o.version), o.version)
    out = []
    for o in observations:
        if o.version is None:
            known = by_status.get((o.system, o.kind, o.record_id, o.status))
            if known is None:
                known = by_record.get((o.system, o.kind, o.record_id))
            if known is not None:
                o = o.model_copy(update={"version": known})
        out.append(o)
    return out


async def collect(pull: AsyncIterator[Observation]) -> list[Observation]:
    """Every observation of a pull, in order (for tests and small books)."""
    return [o async for o in pull]


def by_key(observations: Iterable[Observation]) -> dict[str, list[Observation]]:
    """Observations grouped by match key, in order."""
    out: dict[str, list[Observation]] = {}
    for o in observations:
        out.setdefault(o.key, []).append(o)
    return out


__all__ = [
    "BILLING_CHANGES",
    "BillingCustomer",
    "BillingObject",
    "BillingSnapshots",
    "CrmSnapshots",
    "ErpSnapshots",
    "PullError",
    "Snapshot",
    "account_observation",
    "align_versions",
    "by_key",
    "collect",
    "credit_note_observations",
    "documents_of",
    "invoice_observations",
    "journal_entry_observations",
    "latest_failures",
    "refund_observations",
]
